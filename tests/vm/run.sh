#!/bin/bash
# The Hull VM test bed: runs one command in a pure cgroup v2 guest and returns its exit code.
#
#   tests/vm/run.sh [--systemd [--cgroup v2|hybrid]] [--mem MB] [--smp N] [--timeout SEC]
#                   [--env VAR]... -- CMD [ARGS...]
#
# qemu-system-x86_64 (TCG) boots Debian's own kernel (tests/vm/prepare.sh fetches it into
# $HULL_VM_CACHE, default /var/cache/hull-vm, without installing it) with a small initramfs that
# mounts this host's root read-only over virtio-9p under a tmpfs overlay.  The guest therefore
# runs this checkout's binaries and the host's /usr/bin/python3.  cgroup2 only (cgroup_no_v1=all),
# every controller enabled in the root; a 256 MiB scratch disk at /dev/vda (for io.max).
#   default    a minimal init (bash as PID 1) runs CMD and powers off
#   --systemd  the host's /lib/systemd/systemd is PID 1 and runs CMD as hull-vm-cmd.service
#   --cgroup hybrid  (with --systemd) systemd's hybrid layout instead of pure cgroup2: every v1
#              controller in its own hierarchy under /sys/fs/cgroup (a tmpfs), name=systemd at
#              /sys/fs/cgroup/systemd and an empty cgroup2 at /sys/fs/cgroup/unified
#              (systemd.unified_cgroup_hierarchy=0; systemd 252 needs no other switch)
# CMD runs as root in the current directory, with the caller's PATH, HOME, TERM, LANG and every
# HULL_*, PYTHON*, PYTEST_*, ASAN_*, LSAN_*, UBSAN_* variable (--env VAR adds one).  /tmp,
# /var/tmp and /var/lib/hull are tmpfs in the guest.  Its output comes on the serial console
# (this script's stdout, also saved in the result dir); the exit code through a writable 9p share
# (with a HULL-VM-EXIT=N console marker as fallback).  A hard timeout (default 1800 s, or
# $HULL_VM_TIMEOUT) kills qemu: exit 124.  Exit 125: the VM failed before CMD ran.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
mode=init
cgroup=v2
mem=${HULL_VM_MEM:-3072}
smp=${HULL_VM_SMP:-2}
timeout=${HULL_VM_TIMEOUT:-1800}
extra_env=()
keep=${HULL_VM_KEEP:-0}
while [ $# -gt 0 ]; do
    case $1 in
    --systemd) mode=systemd ;;
    --cgroup) cgroup=$2; shift ;;
    --mem) mem=$2; shift ;;
    --smp) smp=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --env) extra_env+=("$2"); shift ;;
    --keep) keep=1 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ $# -gt 0 ] || { echo "run.sh: no command (usage: run.sh [--systemd] -- CMD...)" >&2; exit 2; }
case $cgroup in
v2) ;;
hybrid) [ $mode = systemd ] || { echo "run.sh: --cgroup hybrid needs --systemd" >&2; exit 2; } ;;
*) echo "run.sh: --cgroup must be v2 or hybrid, not $cgroup" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (9p passthrough of the host root)" >&2; exit 2; }

say() { echo "[vm] $*" >&2; }
t0=$(date +%s.%N)
eval "$("$HERE/prepare.sh" | sed -n 's/^\(KERNEL\|INITRD\|MODULES\)=\(.*\)$/\1=\x27\2\x27/p')"
[ -n "${KERNEL:-}" ] && [ -n "${INITRD:-}" ] || { say "prepare.sh failed"; exit 125; }

res=$(mktemp -d /tmp/hull-vm.XXXXXX)
cleanup() { [ "$keep" = 1 ] && say "result dir kept: $res" || rm -rf "$res"; }
trap cleanup EXIT
truncate -s 256M "$res/disk.img"
echo "$timeout" >"$res/timeout"
{
    echo "# written by tests/vm/run.sh"
    for v in PATH HOME TERM LANG $(compgen -e | grep -E '^(HULL_|PYTHON|PYTEST_|ASAN_|LSAN_|UBSAN_)') "${extra_env[@]}"; do
        [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$res/cmd"

quiet="quiet loglevel=3"
[ "${HULL_VM_DEBUG:-0}" = 1 ] && quiet="hullvm.debug=1"
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can miss its
# window and panic ("IO-APIC + timer doesn't work!")
append="console=ttyS0 $quiet panic=-1 no_timer_check"
if [ $cgroup = hybrid ]; then
    # systemd mounts each v1 controller and keeps its own tracking on cgroup2 (unified)
    append+=" systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0"
else
    append+=" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
fi
append+=" hullvm.mode=$mode hullvm.modules=$MODULES"
if [ $mode = systemd ]; then
    append+=" systemd.unit=hull-vm.target systemd.show_status=0 fstab=no systemd.firstboot=0"
    # slow on 9p under TCG (minutes) and not needed by the command: tmpfiles walks the host's
    # /var; the rest is unused here
    for u in systemd-tmpfiles-setup.service systemd-tmpfiles-clean.timer systemd-binfmt.service \
        systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer man-db.timer \
        dpkg-db-backup.timer e2scrub_all.timer systemd-sysusers.service; do
        append+=" systemd.mask=$u"
    done
fi
say "booting ($mode, cgroup $cgroup, ${smp} CPUs, ${mem} MiB, timeout ${timeout}s): $*"
boot() {
# stdin from /dev/null (the serial console is output only); qemu's own kill on timeout
timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -smp "$smp" -m "$mem" \
    -nodefaults -display none -no-reboot -serial stdio -monitor none -nic none \
    -kernel "$KERNEL" -initrd "$INITRD" -append "$append" \
    -virtfs local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap \
    -virtfs local,path="$res",mount_tag=hullres,security_model=passthrough,multidevs=remap \
    -drive file="$res/disk.img",if=virtio,format=raw,cache=unsafe \
    -device virtio-rng-pci \
    </dev/null 2>"$res/qemu.err" | tee "$res/console.log"
qrc=${PIPESTATUS[0]}
}
boot
# a guest that died before the command started (a kernel panic while booting) is retried once
if [ ! -f "$res/started" ] && [ "$qrc" != 124 ] && [ "$qrc" != 137 ]; then
    say "the guest stopped before the command started (qemu exit $qrc): booting once more"
    cp "$res/console.log" "$res/console-1.log"
    boot
fi
t1=$(date +%s.%N)
if [ -s "$res/qemu.err" ]; then
    grep -v "^$" "$res/qemu.err" | sed 's/^/[vm] qemu: /' >&2
fi
if [ -f "$res/started" ]; then
    boot=$(awk -v a="$t0" -v b="$(stat -c %.9Y "$res/started")" 'BEGIN { printf "%.1f", b - a }')
    say "boot: ${boot}s wall until the command started (guest uptime $(cat "$res/started")s)"
fi
if [ -f "$res/rc" ]; then
    rc=$(cat "$res/rc")
elif m=$(grep -ao 'HULL-VM-EXIT=[0-9]*' "$res/console.log" | tail -1) && [ -n "$m" ]; then
    rc=${m#HULL-VM-EXIT=}
elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    say "TIMEOUT after ${timeout}s: qemu killed"
    rc=124
else
    say "the VM stopped before the command finished (qemu exit $qrc)"
    rc=125
fi
say "exit $rc; total $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s"
exit "$rc"
