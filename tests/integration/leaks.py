"""What a hulld left on the host: processes, mounts, cgroups (in every hierarchy), pinned
namespaces and state files.  `leftovers(d, cgroup_parent)` lists them (empty when clean);
`wait_clean(d, cgroup_parent)` waits a little for monitors that exit after their container and
asserts nothing is left.  Call them once every pod and container was removed."""
import os
import re
import time


def cgroup_mounts():
    """Mount points of every cgroup hierarchy (v1 and v2), from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] in ("cgroup", "cgroup2"):
                out.append(left.split()[4].replace("\\040", " "))
    return out


def remove_cgroup_parent(parent):
    """rmdir parent in every cgroup hierarchy, ignoring errors (teardown)."""
    for mnt in cgroup_mounts():
        try:
            os.rmdir(mnt + parent)
        except OSError:
            pass


def cgroups_below(parent):
    """Every cgroup below parent (not parent itself), in every hierarchy."""
    found = []
    for mnt in cgroup_mounts():
        root = mnt + parent
        if os.path.isdir(root):
            found += [os.path.join(dp, n) for dp, dns, _ in os.walk(root) for n in dns]
    return found


def mounts_below(*paths):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split()[4].replace("\\040", " ")
            if any(p == q or p.startswith(q + "/") for q in paths):
                out.append(p)
    return out


def processes_mentioning(*paths, exclude=()):
    """Processes (other than those in exclude) whose command line names one of paths."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in exclude:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(p in a for a in args for p in paths):
            found.append(f"{pid}: {' '.join(args)}")
    return found


def state_entries(d):
    """Per-object files and directories under the daemon's root and state dir."""
    subs = [os.path.join(d.state_dir, "containers"), os.path.join(d.root, "containers"),
            os.path.join(d.state_dir, "s"), os.path.join(d.state_dir, "exits"),
            os.path.join(d.root, "store", "containers"), os.path.join(d.root, "store", "sandboxes"),
            os.path.join(d.state_dir, "sandboxes"), os.path.join(d.root, "sandboxes"),
            os.path.join(d.root, "images", "tmp")]
    for kind in ("net", "ipc", "uts", "pid"):
        subs.append(os.path.join(d.state_dir, "ns", kind))
    rt = os.path.join(d.state_dir, "runtime")
    if os.path.isdir(rt):
        subs += [os.path.join(rt, h) for h in os.listdir(rt)]
    left = []
    for sub in subs:
        if os.path.isdir(sub):
            left += [os.path.join(sub, n) for n in os.listdir(sub)]
    return left


def leftovers(d, cgroup_parent):
    problems = []
    own = {d.proc.pid} if d.proc else set()
    procs = processes_mentioning(d.state_dir, d.root, exclude=own)
    if procs:
        problems.append(f"processes: {procs}")
    mounts = mounts_below(d.state_dir, d.root)
    if mounts:
        problems.append(f"mounts: {mounts}")
    cgs = cgroups_below(cgroup_parent)
    if cgs:
        problems.append(f"cgroups: {cgs}")
    files = state_entries(d)
    if files:
        problems.append(f"state: {files}")
    return problems


def wait_clean(d, cgroup_parent, timeout=10):
    deadline = time.time() + timeout
    while True:
        problems = leftovers(d, cgroup_parent)
        if not problems or time.time() > deadline:
            break
        time.sleep(0.1)
    if problems:
        # the daemon's log lines about the objects left behind
        ids = set(re.findall(r"[0-9a-f]{64}", "\n".join(problems)))
        lines = [ln for ln in d.log().splitlines() if any(i in ln for i in ids)]
        problems.append("log:\n" + "\n".join(lines[-60:]))
    assert problems == [], "\n".join(problems)
