#!/usr/bin/env bash
# Installs the Debian 12 packages moor needs to build, test and run, when any
# is missing; does nothing (and needs no network) when all are present.
# Uses sudo when not root.
set -euo pipefail

PKGS=(
	build-essential pkg-config clang clang-format libclang-rt-14-dev
	libuv1-dev libprotobuf-c-dev protobuf-c-compiler librocksdb-dev
	libssl-dev libmicrohttpd-dev libgnutls28-dev libjansson-dev libcurl4-openssl-dev
	libcmocka-dev curl iproute2 procps openssl
)
# Extra packages a caller asks for (bench-compare adds etcd-server, say).
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
if [[ $(id -u) -ne 0 ]]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
