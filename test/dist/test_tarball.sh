#!/usr/bin/env bash
# test_tarball — the offline bundle of `make dist` (dist/mkdist), as a site would use it:
# unpack, `sha256sum -c SHA256SUMS`, the binary and links, `kvnet install` from the bundle
# into a node tree, and the OCI image: `podman load` into a private store, `podman run
# --network none` of `kvnet version`. Everything under one temporary directory.
set -u
cd "$(dirname "$0")/../.."
top=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvnet-tarball.XXXXXX")
pm() {
	CONTAINERS_CONF=$tmp/containers.conf podman --root "$tmp/podman/root" \
		--runroot "$tmp/podman/run" --tmpdir "$tmp/podman/tmp" --storage-driver vfs \
		--events-backend file --cgroup-manager cgroupfs --runtime runc "$@"
}
cleanup() {
	[ -d "$tmp/podman" ] && pm rm -a -f >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | head -n 20 | sed 's/^/# /'; }
check() { if eval "$2"; then ok "$1"; else no "$1" "${3:-}"; fi; }

version=$(cat VERSION)
name=kvnet-$version
[ -x dist/kvnet ] || { no "dist/kvnet is built (make)"; exit 1; }

out=$(dist/mkdist --out "$tmp/out" 2>&1)
check "dist/mkdist makes $name.tar.gz" '[ -f "$tmp/out/$name.tar.gz" ]' "$out"
[ -f "$tmp/out/$name.tar.gz" ] || exit 1

mkdir -p "$tmp/site"
tar -C "$tmp/site" -xzf "$tmp/out/$name.tar.gz"
b=$tmp/site/$name
check "the tarball holds one directory $name/" \
	'[ "$(ls "$tmp/site")" = "$name" ]' "$(ls "$tmp/site")"
sums=$(cd "$b" && sha256sum -c --strict SHA256SUMS 2>&1)
check "sha256sum -c SHA256SUMS" '[ $? -eq 0 ] && (cd "$b" && sha256sum -c --strict --quiet SHA256SUMS)' "$sums"
listed=$(cd "$b" && awk '{print $2}' SHA256SUMS | sort)
files=$(cd "$b" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort)
check "SHA256SUMS lists every file in the bundle" '[ "$listed" = "$files" ]' \
	"$(diff <(echo "$listed") <(echo "$files"))"
missing=""
for f in bin/kvnet crds/ippools.yaml crds/ipamblocks.yaml crds/ipamhandles.yaml \
	crds/ipamconfigs.yaml manifests/rbac.yaml manifests/daemonset.yaml \
	cni/file/10-kvnet.conflist cni/file/kvnet.conf cni/kubernetes/10-kvnet.conflist \
	cni/kubernetes/kvnet.conf systemd/kvnet-agent.service examples/nad-pod-network.yaml \
	examples/vm-pod-network.yaml kvnet.conf DEPLOY.md image/$name.oci.tar; do
	[ -f "$b/$f" ] || missing="$missing $f"
done
check "the bundle has binary, CRDs, manifests, conflists, unit, examples, DEPLOY.md, image" \
	'[ -z "$missing" ]' "missing:$missing"
check "bin/kvnet is dist/kvnet" 'cmp -s "$b/bin/kvnet" dist/kvnet'
links=""
for r in agent ipamctl garp-watch; do
	[ "$(readlink "$b/bin/kvnet-$r")" = kvnet ] || links="$links kvnet-$r"
done
check "role links bin/kvnet-{agent,ipamctl,garp-watch} -> kvnet" '[ -z "$links" ]' "$links"
v=$("$b/bin/kvnet" version 2>&1)
check "bin/kvnet version is $version" 'echo "$v" | grep -q "^kvnet $version "' "$v"
v=$("$b/bin/kvnet-ipamctl" --help 2>&1)
check "bin/kvnet-ipamctl runs the ipamctl role" 'echo "$v" | grep -q "usage: kvnet ipamctl"' "$v"
for f in manifests/rbac.yaml manifests/daemonset.yaml systemd/kvnet-agent.service \
	cni/kubernetes/kvnet.conf; do
	check "$f is dist's" 'cmp -s "$b/$f" "dist/${f#*/}" || cmp -s "$b/$f" "dist/$f"'
done

# a node tree filled from the bundle alone
node=$tmp/node
mkdir -p "$node"
out=$("$b/bin/kvnet" install --root "$node" --conf "$b/cni/kubernetes/kvnet.conf" \
	--conflist "$b/cni/kubernetes/10-kvnet.conflist" 2>&1)
check "bin/kvnet install --root NODE from the bundle" \
	'[ $? -eq 0 ] && cmp -s "$node/opt/cni/bin/kvnet" "$b/bin/kvnet" && cmp -s "$node/etc/systemd/system/kvnet-agent.service" "$b/systemd/kvnet-agent.service" && cmp -s "$node/etc/kvnet/kvnet.conf" "$b/cni/kubernetes/kvnet.conf"' "$out"

# two bundles of the same tree are the same bytes
out=$(dist/mkdist --out "$tmp/out2" 2>&1)
check "dist/mkdist is reproducible (same tarball twice)" \
	'cmp -s "$tmp/out/$name.tar.gz" "$tmp/out2/$name.tar.gz"' "$out"

# the OCI image
ar=$b/image/$name.oci.tar
mt=$(tar -xOf "$ar" index.json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["mediaType"])' 2>&1)
check "image/$name.oci.tar is an OCI archive (index.json)" \
	'[ "$mt" = application/vnd.oci.image.manifest.v1+json ]' "$mt"
if ! command -v podman >/dev/null; then
	echo "ok - podman load and run # SKIP podman is not installed"
	exit 0
fi
mkdir -p "$tmp/podman"/{root,run,tmp}
# this sandbox refuses the RLIMIT_NOFILE and RLIMIT_NPROC podman sets by default; ask for
# what it allows
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$tmp/containers.conf"
out=$(pm load -i "$ar" 2>&1)
check "podman load -i image/$name.oci.tar" '[ $? -eq 0 ]' "$out"
img=localhost/kvnet:$version
insp=$(pm image inspect "$img" --format '{{json .Config.Entrypoint}} {{len .RootFS.Layers}}' 2>&1)
check "the image is $img: entrypoint /kvnet, one layer (FROM scratch)" \
	'[ "$insp" = "[\"/kvnet\"] 1" ]' "$insp"
out=$(pm run --rm --network none "$img" version 2>&1)
check "podman run --network none $img version prints $version" \
	'echo "$out" | grep -q "^kvnet $version "' "$out"
out=$(pm run --rm --network none --entrypoint /kvnet "$img" install --help 2>&1)
check "the image's kvnet knows the install role (the DaemonSet's init container)" \
	'echo "$out" | grep -q "usage: kvnet install"' "$out"
