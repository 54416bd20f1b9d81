#!/bin/bash
# Fetches Debian's kernel and builds the guest initramfs for the VM test bed (tests/vm/run.sh).
# Everything goes to a cache outside the checkout ($HULL_VM_CACHE, default /var/cache/hull-vm);
# the kernel package is only unpacked there (dpkg -x), never installed on the host.
# Prints two lines: KERNEL=<vmlinuz path> and INITRD=<initramfs path> (and MODULES=<dir>).
# Idempotent and safe to run concurrently (flock on the cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${HULL_VM_CACHE:-/var/cache/hull-vm}
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8

say() { echo "[vm-prepare] $*" >&2; }

# The kernel linux-image-amd64 depends on (override: HULL_VM_KERNEL=linux-image-6.1.0-NN-amd64)
pkg=${HULL_VM_KERNEL:-}
if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
if [ -z "$pkg" ]; then
    # offline: the newest kernel already unpacked
    pkg=$(find "$CACHE" -maxdepth 1 -name 'linux-image-*' -type d -printf '%f\n' 2>/dev/null | sort -V | tail -1)
fi
[ -n "$pkg" ] || { say "cannot tell which linux-image package to use (apt-cache depends linux-image-amd64)"; exit 1; }
kver=${pkg#linux-image-}
kdir=$CACHE/$pkg
if [ ! -f "$kdir/.unpacked" ]; then
    say "fetching $pkg with apt-get download (unpacked into $kdir, not installed)"
    tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    (cd "$tmp" && apt-get download -q "$pkg" >&2) 2>&1 | grep -v "download is performed unsandboxed" >&2 || true
    deb=$(ls "$tmp"/*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { rm -rf "$tmp"; say "apt-get download $pkg failed"; exit 1; }
    rm -rf "$kdir"
    dpkg -x "$deb" "$tmp/x"
    depmod -b "$tmp/x" "$kver"
    mv "$tmp/x" "$kdir"
    rm -rf "$tmp"
    touch "$kdir/.unpacked"
fi
kernel=$kdir/boot/vmlinuz-$kver
moddir=$kdir/lib/modules/$kver
[ -f "$kernel" ] || { say "no $kernel"; exit 1; }

# Modules the first stage needs, in load order (the rest autoload from the bound /lib/modules)
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"
BUSYBOX=${HULL_VM_BUSYBOX:-/bin/busybox}
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" ||
    ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic" ||
    { say "$BUSYBOX is not static (install busybox-static)"; exit 1; }

key=$( (echo "$kver $MODS"; cat "$HERE/initramfs-init" "$HERE/guest-init.sh" "$HERE/guest-cmd.sh"; sha256sum "$BUSYBOX") | sha256sum | cut -c1-16)
initrd=$CACHE/initrd-$kver-$key.cpio.gz
if [ ! -f "$initrd" ]; then
    say "building $initrd"
    tmp=$(mktemp -d "$CACHE/.ird.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp"/{bin,dev,proc,sys,mods,host,ovl,newroot,res,hullvm}
    cp "$BUSYBOX" "$tmp/bin/busybox"
    ln -s busybox "$tmp/bin/sh"
    for m in $MODS; do
        f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
        [ -n "$f" ] || { say "module $m not found in $moddir"; exit 1; }
        case $f in
        *.xz) xz -dc "$f" >"$tmp/mods/$m.ko" ;;
        *.zst) zstd -qdc "$f" >"$tmp/mods/$m.ko" ;;
        *) cp "$f" "$tmp/mods/$m.ko" ;;
        esac
    done
    echo "$MODS" >"$tmp/mods/order"
    install -m 755 "$HERE/initramfs-init" "$tmp/init"
    install -m 755 "$HERE/guest-init.sh" "$HERE/guest-cmd.sh" "$tmp/hullvm/"
    (cd "$tmp" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner=0:0 | gzip -1) >"$tmp.cpio.gz"
    mv "$tmp.cpio.gz" "$initrd"
    # older initramfs builds of this kernel
    find "$CACHE" -maxdepth 1 -name "initrd-$kver-*.cpio.gz" ! -name "$(basename "$initrd")" -mmin +60 -delete
fi
echo "KERNEL=$kernel"
echo "INITRD=$initrd"
echo "MODULES=$kdir/lib/modules"
