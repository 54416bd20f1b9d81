#!/bin/sh
# Installs every Debian 12 package Hull needs to build, run and test.  Idempotent.
#   contrib/install-deps.sh          install what is missing
#   contrib/install-deps.sh --check  exit 1 if anything is missing (installs nothing)
set -eu

PKGS="
make gcc pkg-config git ca-certificates clang-format clang libclang-rt-14-dev
libgrpc-dev protobuf-compiler-grpc protobuf-c-compiler libprotobuf-c-dev
libyajl-dev libcurl4-openssl-dev libarchive-dev libseccomp-dev libcap-dev zlib1g-dev
libmicrohttpd-dev libcmocka-dev libsystemd-dev
python3 python3-grpcio python3-grpc-tools python3-pytest python3-protobuf
busybox-static docker-registry skopeo umoci containernetworking-plugins runc crun conmon criu
iproute2 iptables procps util-linux curl zstd openssl
qemu-system-x86 cpio kmod
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ "${1:-}" = "--check" ]; then
    if [ -n "$missing" ]; then
        echo "missing:$missing"
        exit 1
    fi
    exit 0
fi

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install:$missing" >&2
    exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
# The packaged registry starts itself where systemd runs; tests start their own.
# kubectl (not a Debian package) is used by the client interop tests when present.
