#!/bin/bash
# Runs the command the host wrote to /run/hull-vm/cmd (shared by both init modes), stores its
# exit code in /run/hull-vm/rc, prints the HULL-VM-EXIT marker on the console, powers off.
R=/run/hull-vm
mode=$(cat /run/hullvm/mode 2>/dev/null)
exec </dev/null >/dev/console 2>&1
cut -d' ' -f1 /proc/uptime >$R/started
if [ "$mode" = systemd ]; then
    # systemd mounts the cgroup2 tree; every controller it can delegate on in the root (pure
    # cgroup2 only: in the hybrid layout (run.sh --cgroup hybrid) /sys/fs/cgroup is a tmpfs)
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
            echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
        done
    fi
    mountpoint -q /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
    mountpoint -q /var/tmp || mount -t tmpfs -o mode=1777 tmpfs /var/tmp
    mkdir -p /var/lib/hull
    mountpoint -q /var/lib/hull || mount -t tmpfs -o mode=700 tmpfs /var/lib/hull
    echo 16 >/proc/sys/vm/nr_hugepages 2>/dev/null
    modprobe -q virtio_blk
fi
# a command run from a checkout below the host's /tmp or /var/tmp (tmpfs in the guest): that
# directory is bound back from the host's view kept under /run/hull-host
cwd=$(sed -n 's/^cd \(.*\) || exit 125$/\1/p' $R/cmd)
eval "cwd=$cwd"
for d in /tmp /var/tmp; do
    case "$cwd" in
    $d/*)
        if [ ! -d "$cwd" ] && [ -d "/run/hull-host$cwd" ]; then
            mkdir -p "$cwd" && mount --bind "/run/hull-host$cwd" "$cwd"
        fi
        ;;
    esac
done
timeout=$(cat $R/timeout 2>/dev/null || echo 0)
if [ "${timeout:-0}" -gt 0 ]; then
    timeout -k 10 "$timeout" /bin/bash $R/cmd
else
    /bin/bash $R/cmd
fi
rc=$?
echo $rc >$R/rc.tmp && mv $R/rc.tmp $R/rc
cut -d' ' -f1 /proc/uptime >$R/ended
sync
echo "HULL-VM-EXIT=$rc"
if [ "$mode" = systemd ]; then
    # no orderly stop of every unit (minutes under TCG): the result is synced already
    systemctl poweroff --force --force
    exit 0
fi
poweroff -f
