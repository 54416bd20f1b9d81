"""What a hulld left on the host: processes, mounts, cgroups (in every hierarchy), pinned
namespaces, iptables rules and state files.  `leftovers(d, cgroup_parent)` lists them (empty
when clean); `wait_clean(d, cgroup_parent)` waits a little for monitors that exit after their
container and asserts nothing is left.  Call them once every pod and container was removed.

`daemon_leftovers(d)` is what conftest checks for every test daemon once it stopped: the above
plus its own cgroup parent (which must be removable), then `force_clean(d)` removes what was
found so the next test starts clean."""
import os
import re
import signal
import subprocess
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
            os.path.join(d.root, "images", "tmp"),
            # removed containers' directories, deleted in the background
            os.path.join(d.root, "trash"), os.path.join(d.state_dir, "trash")]
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


def netns_pinned(*paths):
    """Network (or other) namespaces pinned (nsfs bind mounts) at or below paths."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            p = left.split()[4].replace("\\040", " ")
            if right.split(" ", 1)[0] == "nsfs" and any(p == q or p.startswith(q + "/")
                                                        for q in paths):
                out.append(p)
    return out


def iptables_mentioning(*ids):
    """iptables rules and chains (nat and filter tables) that name one of ids (the CNI plugins
    tag theirs with the container id; a chain name carries a hash of it)."""
    ids = [i for i in ids if i]
    if not ids:
        return []
    out = []
    for table in ("nat", "filter"):
        r = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True)
        out += [f"{table}: {ln}" for ln in r.stdout.splitlines() if any(i in ln for i in ids)]
    return out


def cgroup_parent_dirs(parent):
    """The directories of cgroup parent (itself included) in every hierarchy."""
    return [mnt + parent for mnt in cgroup_mounts() if os.path.isdir(mnt + parent)]


def cgroup_pids(parent):
    """Processes in parent or below it, in any hierarchy."""
    pids = set()
    for root in cgroup_parent_dirs(parent):
        for dp, _, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dp, "cgroup.procs")) as f:
                        pids.update(int(p) for p in f.read().split())
                except OSError:
                    pass
    return sorted(pids)


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
    pids = cgroup_pids(cgroup_parent)
    if pids:
        problems.append(f"processes in {cgroup_parent}: {pids}")
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


def daemon_paths(d):
    return sorted({os.path.realpath(p) for p in (d.base, d.root, d.state_dir)})


def daemon_leftovers(d, ids=()):
    """What a stopped test daemon left: processes naming its directories or in its cgroup
    parent, mounts and pinned namespaces below its directories, cgroups below its parent (and
    the parent itself, which must be removable: it is removed here), iptables rules naming one
    of ids (its pods and containers), state files."""
    paths = daemon_paths(d)
    problems = []
    procs = processes_mentioning(*paths)
    if procs:
        problems.append(f"processes: {procs}")
    pids = cgroup_pids(d.cgroup_parent)
    if pids:
        problems.append(f"processes in {d.cgroup_parent}: {pids}")
    mounts = mounts_below(*paths)
    if mounts:
        problems.append(f"mounts: {mounts}")
    cgs = cgroups_below(d.cgroup_parent)
    if cgs:
        problems.append(f"cgroups: {cgs}")
    else:
        for cg in cgroup_parent_dirs(d.cgroup_parent):
            try:
                os.rmdir(cg)
            except OSError as e:
                problems.append(f"cgroup parent {cg} cannot be removed: {e}")
    rules = iptables_mentioning(*ids)
    if rules:
        problems.append(f"iptables: {rules}")
    files = state_entries(d)
    if files:
        problems.append(f"state: {files}")
    return problems


def force_clean(d):
    """Removes what daemon_leftovers found (after it was reported): kills the processes (ours:
    they name our directories or sit in our cgroup parent), unmounts, removes the cgroups."""
    paths = daemon_paths(d)
    for _ in range(3):
        pids = set(cgroup_pids(d.cgroup_parent))
        pids.update(int(p.split(":", 1)[0]) for p in processes_mentioning(*paths))
        pids.discard(os.getpid())
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
    for p in sorted(set(mounts_below(*paths)), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], stderr=subprocess.DEVNULL)
    for root in cgroup_parent_dirs(d.cgroup_parent):
        for dp, _, _ in os.walk(root, topdown=False):
            try:
                os.rmdir(dp)
            except OSError:
                pass
