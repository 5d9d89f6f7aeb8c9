#!/usr/bin/env bash
# Black-box tests of the multicall dispatch and `make install`, against dist/kvnet.
set -u
cd "$(dirname "$0")/../.."
bin=$PWD/dist/kvnet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; echo "# $2"; }
check() { # check NAME WANT_RC CMD... ; output in $out
	local name=$1 want=$2
	shift 2
	out=$("$@" 2>&1 </dev/null)
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$name"; else no "$name" "exit $rc, want $want: $out"; fi
}

file "$bin" | grep -q 'statically linked' && ok "static binary" || no "static binary" "$(file "$bin")"
file "$bin" | grep -q ', stripped' && ok "stripped binary" || no "stripped binary" "$(file "$bin")"

check "kvnet version" 0 "$bin" version
echo "$out" | grep -qE '^kvnet [0-9]+\.[0-9]+\.[0-9]+ \(' && ok "version format" || no "version format" "$out"
check "kvnet --version" 0 "$bin" --version
check "kvnet help" 0 "$bin" help
for r in cni agent ipamctl garp-watch config version help; do
	echo "$out" | grep -q "^  $r " && ok "help lists $r" || no "help lists $r" "$out"
done
check "no role: usage, exit 2" 2 "$bin"
echo "$out" | grep -q '^usage: kvnet ROLE' && ok "usage text" || no "usage text" "$out"
check "unknown role: exit 2" 2 "$bin" frobnicate
echo "$out" | grep -q "unknown role 'frobnicate'" && ok "unknown role named" || no "unknown role named" "$out"

# argv[0] dispatch, with and without the kvnet- prefix
ln -s "$bin" "$tmp/version"
ln -s "$bin" "$tmp/kvnet-version"
check "argv0 version" 0 "$tmp/version"
check "argv0 kvnet-version" 0 "$tmp/kvnet-version"
ln -s "$bin" "$tmp/kvnet-frob"
check "argv0 unknown kvnet-frob: exit 2" 2 "$tmp/kvnet-frob"

# CNI_COMMAND with basename kvnet selects the cni role even with a role-like argv[1]
ln -s "$bin" "$tmp/kvnet"
out=$(CNI_COMMAND=VERSION "$tmp/kvnet" version 2>&1 </dev/null)
out2=$(CNI_COMMAND=VERSION "$bin" cni 2>&1 </dev/null)
[ "$out" = "$out2" ] && ! echo "$out" | grep -q '^kvnet [0-9]' &&
	ok "CNI_COMMAND set: basename kvnet is the cni role" ||
	no "CNI_COMMAND set: basename kvnet is the cni role" "got '$out' want '$out2'"
out=$(CNI_COMMAND= "$tmp/kvnet" version 2>&1)
echo "$out" | grep -q '^kvnet ' && ok "empty CNI_COMMAND is unset" || no "empty CNI_COMMAND is unset" "$out"

# make install DESTDIR=...
make -s install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null 2>&1
for r in cni agent ipamctl garp-watch; do
	[ "$(readlink "$tmp/root/usr/bin/kvnet-$r")" = kvnet ] && ok "install: kvnet-$r symlink" ||
		no "install: kvnet-$r symlink" "$(ls -l "$tmp/root/usr/bin")"
done
cmp -s "$bin" "$tmp/root/opt/cni/bin/kvnet" && ok "install: /opt/cni/bin/kvnet" ||
	no "install: /opt/cni/bin/kvnet" "$(ls -l "$tmp/root/opt/cni/bin" 2>&1)"
check "installed kvnet runs" 0 "$tmp/root/usr/bin/kvnet" version
