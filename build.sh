#!/usr/bin/env bash
# build.sh — set up a fresh Debian 12 machine and build dist/kvnet.
#
#   ./build.sh              install build dependencies if missing, then `make`
#   ./build.sh --deps G     install only dependency group G: build, fuzz, test
#
# Packages are installed with apt-get only when missing, so a second run is quiet
# and needs no network.
set -euo pipefail
cd "$(dirname "$0")"

pkgs_build="musl-tools libinih-dev libbearssl-dev libyaml-dev make gcc"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_test="iproute2 python3 python3-yaml python3-jsonschema openssl arping iputils-ping nftables conntrack tcpdump procps psmisc
	containernetworking-plugins file podman runc busybox-static chromium fonts-dejavu-core ncat iperf3 bird2
	qemu-system-x86 cpio"

missing() {
	local p out=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			out+=("$p")
	done
	echo "${out[@]:-}"
}

install_group() {
	local list
	case "$1" in
	build) list=$pkgs_build ;;
	fuzz) list=$pkgs_fuzz ;;
	test) list=$pkgs_test ;;
	*) echo "build.sh: unknown dependency group '$1' (want build, fuzz or test)" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086
	local need; need=$(missing $list)
	[ -z "$need" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "build.sh: missing packages: $need (run as root, or install them)" >&2
		exit 1
	fi
	echo "build.sh: installing: $need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
}

if [ "${1:-}" = "--deps" ]; then
	shift
	for g in "$@"; do install_group "$g"; done
	exit 0
fi

install_group build
make -j"$(nproc)" all
file dist/kvnet 2>/dev/null || true
