#!/bin/bash
# Stage 2 of the Hull test VM in the minimal mode: PID 1 in the host root (overlay), sets up a
# pure cgroup2 system with every controller enabled, then runs guest-cmd.sh and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
grep -qw hullvm.debug=1 /proc/cmdline && PS4='+ $(cut -d" " -f1 /proc/uptime) ' && set -x
mnt() { mountpoint -q "$3" || mount -t "$1" -o "$4" "$2" "$3"; }
mkdir -p /dev/pts
mnt devpts devpts /dev/pts nosuid,noexec,gid=5,mode=620,ptmxmode=666
mkdir -p /dev/shm /dev/hugepages /dev/mqueue
mnt tmpfs shm /dev/shm nosuid,nodev
mnt mqueue mqueue /dev/mqueue nosuid,nodev,noexec
mnt cgroup2 cgroup2 /sys/fs/cgroup nosuid,nodev,noexec,nsdelegate,memory_recursiveprot
mnt hugetlbfs hugetlbfs /dev/hugepages pagesize=2M
mnt bpf bpf /sys/fs/bpf mode=700
# no nodev: container rootfs and device tests live below /tmp (the host's is under
# /run/hull-host: initramfs-init)
mnt tmpfs tmpfs /tmp mode=1777
mnt tmpfs tmpfs /var/tmp mode=1777
# overlayfs cannot use an overlayfs upper: hull's default root gets a tmpfs
mkdir -p /var/lib/hull
mnt tmpfs tmpfs /var/lib/hull mode=700
mnt securityfs securityfs /sys/kernel/security nosuid,nodev,noexec
ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null
ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null
# every controller in the root's subtree_control
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done
echo 16 >/proc/sys/vm/nr_hugepages 2>/dev/null
hostname hull-vm
ip link set lo up
# devices no uevent helper loads here: the scratch disk (io.max/io.weight) and the rng
modprobe virtio_blk || echo "[vm] modprobe virtio_blk failed"
modprobe -q virtio_rng
for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
/bin/bash /run/hullvm/guest-cmd.sh
# not reached: guest-cmd.sh powers off
poweroff -f
