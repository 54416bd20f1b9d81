#!/bin/bash
# The cgroup v2 phase of `make test`.
#
# This host is hybrid: v1 hierarchies under /sys/fs/cgroup/<controller> and an (almost empty)
# cgroup2 at /sys/fs/cgroup/unified.  For a short window this script moves the idle v1
# controllers (cpu, cpuacct, cpuset, blkio, pids, devices, freezer) to cgroup2: a controller
# becomes free for cgroup2 once its v1 hierarchy has no child cgroup and is mounted nowhere.
# memory is never touched: the tool agent (PID 1, process_api) keeps every shell command in
# memory:/process_api/<id>.  Then it runs
#   1. tests/integration/test_cgroup_v2.py in a private mount namespace where only cgroup2 is
#      mounted at /sys/fs/cgroup (pure v2, as hull sees a unified host), and
#   2. the mixed-layout tests on the host itself (hybrid with some controllers on cgroup2),
# and gives every controller back to v1 (also when the tests fail or the script is
# interrupted: trap).  Usage: tests/cgroup2-env.sh [pytest args...]
set -u
CG=/sys/fs/cgroup
UNI=$CG/unified
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
CANDIDATES=${HULL_CGROUP2_CONTROLLERS:-cpu cpuacct cpuset blkio pids devices freezer}
WAIT_IDLE=${HULL_CGROUP2_WAIT:-90}
moved=()
declare -A why

say() { echo "[cgroup2-env] $*"; }

v2_name() {
    case $1 in
    cpu | cpuset | pids | hugetlb) echo "$1" ;;
    blkio) echo io ;;
    *) echo "" ;; # cpuacct, devices, freezer: nothing to enable (core cgroup2 features / BPF)
    esac
}

hier_id() { awk -v c="$1" '$1 == c { print $2 }' /proc/cgroups; }

is_mountpoint_type() { # path fstype
    awk -v p="$1" -v t="$2" '{ split($0, a, " - "); split(a[1], f, " "); split(a[2], g, " ");
        if (f[5] == p && g[1] == t) found = 1 } END { exit !found }' /proc/self/mountinfo
}

# Stale empty child cgroups (older than a minute, no process) left by earlier tests.
prune_stale() {
    find "$CG/$1" -mindepth 1 -depth -type d -mmin +1 2>/dev/null | while read -r d; do
        [ -s "$d/cgroup.procs" ] || rmdir "$d" 2>/dev/null
    done
}

has_children() { [ -n "$(find "$CG/$1" -mindepth 1 -maxdepth 1 -type d -print -quit 2>/dev/null)" ]; }

remount_v1() {
    local c=$1
    for _ in $(seq 1 100); do
        if mount -t cgroup -o "$c" cgroup "$CG/$c" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    say "ERROR: could not mount the v1 $c hierarchy back on $CG/$c"
    return 1
}

disable_v2() { # controller: off in every cgroup2 subtree_control, deepest first
    find "$UNI" -depth -type d 2>/dev/null | while read -r d; do
        if grep -qw "$1" "$d/cgroup.subtree_control" 2>/dev/null; then
            echo "-$1" >"$d/cgroup.subtree_control" 2>/dev/null
        fi
    done
}

restore() {
    local rc=0 c v ok
    [ ${#moved[@]} -eq 0 ] && return 0
    say "restoring v1 hierarchies: ${moved[*]}"
    for c in "${moved[@]}"; do
        v=$(v2_name "$c")
        ok=0
        # a controller can go back to v1 once no cgroup2 cgroup uses it (dying ones included)
        for _ in $(seq 1 300); do
            [ -n "$v" ] && disable_v2 "$v"
            if mount -t cgroup -o "$c" cgroup "$CG/$c" 2>/dev/null; then
                ok=1
                break
            fi
            sleep 0.2
        done
        if [ $ok = 0 ]; then
            say "ERROR: could not mount the v1 $c hierarchy back on $CG/$c"
            rc=1
        fi
    done
    local was=("${moved[@]}")
    moved=()
    for c in "${was[@]}"; do
        if ! is_mountpoint_type "$CG/$c" cgroup; then
            say "ERROR: $CG/$c is not a v1 mount after restore"
            rc=1
        fi
    done
    [ $rc -eq 0 ] && say "host restored: every v1 hierarchy mounted again"
    return $rc
}

all_idle() {
    local c
    for c in $CANDIDATES; do
        is_mountpoint_type "$CG/$c" cgroup && has_children "$c" && return 1
    done
    return 0
}

convert() {
    local c v deadline
    # wait (outside the window) until the hierarchies are idle: other tests use them
    deadline=$((SECONDS + WAIT_IDLE))
    for c in $CANDIDATES; do prune_stale "$c"; done
    while ! all_idle && [ $SECONDS -lt $deadline ]; do
        sleep 0.2
        for c in $CANDIDATES; do prune_stale "$c"; done
    done
    for c in $CANDIDATES; do
        if ! is_mountpoint_type "$CG/$c" cgroup; then
            why[$c]="no v1 hierarchy mounted at $CG/$c"
            continue
        fi
        if has_children "$c"; then
            why[$c]="v1 hierarchy busy (child cgroups: $(find "$CG/$c" -mindepth 1 -maxdepth 1 -type d | head -3 | tr '\n' ' '))"
            continue
        fi
        # plain umount says busy when some process (possibly one we cannot see into, like the
        # tool agent, PID 1) has a file of this mount open: detach lazily then, and the
        # hierarchy dies with its last reference (or not: then it goes back)
        local how=plain
        if ! umount "$CG/$c" 2>/dev/null; then
            how=lazy
            if ! umount -l "$CG/$c"; then
                why[$c]="umount $CG/$c failed"
                continue
            fi
        fi
        moved+=("$c")
        for _ in $(seq 1 50); do
            [ "$(hier_id "$c")" = 0 ] && break
            sleep 0.1
        done
        if [ "$(hier_id "$c")" != 0 ]; then
            # a child appeared meanwhile, or the mount is still referenced
            if [ $how = lazy ]; then
                why[$c]="v1 hierarchy stays alive after umount: its mount is pinned (plain umount said busy: a process holds files of $CG/$c open)"
            else
                why[$c]="v1 hierarchy stays alive after umount (a child cgroup appeared, or another mount of it exists)"
            fi
            unset 'moved[${#moved[@]}-1]'
            moved=("${moved[@]}")
            remount_v1 "$c"
            continue
        fi
        v=$(v2_name "$c")
        if [ -n "$v" ]; then
            if ! echo "+$v" >"$UNI/cgroup.subtree_control"; then
                why[$c]="cannot enable $v in $UNI/cgroup.subtree_control"
                continue
            fi
        fi
        why[$c]="moved to cgroup2${v:+ (controller $v enabled)}"
    done
}

summary() {
    local c
    say "---- controllers for the cgroup v2 phase ----"
    for c in $CANDIDATES memory; do
        if [ "$c" = memory ]; then
            say "memory: NOT moved: memory controller is held by v1 hierarchy with foreign children (process_api keeps every shell command in memory:/process_api/<id>); memory.max, memory.events (OOM) and memory.oom.group are not tested on cgroup2 here, only their code paths without the controller"
        else
            say "$c: ${why[$c]:-not tried}"
        fi
    done
    say "cgroup2 controllers now: $(cat "$UNI/cgroup.controllers")"
}

[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
if ! is_mountpoint_type "$UNI" cgroup2; then
    say "SKIP conversion: no hybrid cgroup2 at $UNI (the host is not hybrid); pure-v2 tests only"
fi

# one v2 phase at a time on this machine
exec 9>/run/hull-cgroup2-phase.lock
flock 9

trap 'restore; exit 130' INT TERM
trap 'restore' EXIT

if is_mountpoint_type "$UNI" cgroup2; then
    convert
fi
start=$SECONDS
summary

rc=0
say "== 1. pure cgroup v2: private mount namespace, only cgroup2 at $CG"
# bounded: the host stays converted while this runs
timeout -k 10 "${HULL_CGROUP2_TIMEOUT:-900}" unshare -m --propagation private -- sh -c "umount -l $CG && mount -t cgroup2 none $CG && \
    exec $PYTHON -m pytest -p no:cacheprovider -v -rs $HERE/integration/test_cgroup_v2.py $*" ||
    rc=1
if [ ${#moved[@]} -gt 0 ]; then
    say "== 2. mixed hybrid on the host: ${moved[*]} on cgroup2, memory on v1"
    timeout -k 10 "${HULL_CGROUP2_TIMEOUT:-900}" \
        $PYTHON -m pytest -p no:cacheprovider -v -rs "$HERE/integration/test_cgroup_v2.py" \
        -k "mixed or hybrid or every_hierarchy" "$@" || rc=1
else
    say "== 2. mixed hybrid: SKIPPED (no controller could be moved to cgroup2)"
fi
restore || rc=1
trap - EXIT INT TERM
say "conversion window: $((SECONDS - start))s; cgroup v2 phase $([ $rc = 0 ] && echo passed || echo FAILED)"
exit $rc
