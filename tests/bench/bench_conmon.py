"""Memory of idle per-container monitors: hull-conmon vs Debian's conmon, side by side.

Both monitor the same kind of container (busybox `sleep`, runc, one shared rootfs) in the same
run: first one container each, then 50 each.  Per monitor we read /proc/PID/smaps_rollup:
RSS (what `ps` shows; shared libc pages count fully in every process), PSS (shared pages
divided among their users: the honest per-process share) and private (clean + dirty pages
only this process maps: what one more container really costs).

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_conmon.py [--count 50]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import bundle  # noqa: E402
from conmon_util import RUNC, conmon_bin, read_line  # noqa: E402

CONMON = "/usr/bin/conmon"


def mem(pid):
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":"):
                try:
                    vals[parts[0][:-1]] = int(parts[1])
                except ValueError:
                    pass
    return {"rss": vals.get("Rss", 0), "pss": vals.get("Pss", 0),
            "private": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)}


class Runner:
    def __init__(self, base, rootfs):
        self.base = base
        self.rootfs = rootfs
        self.rt_root = os.path.join(base, "rt")
        os.makedirs(self.rt_root, exist_ok=True)
        self.cids = []
        self.pids = []
        self.dirs = {}

    def bundle(self, cid, args=("/bin/sleep", "3600")):
        path = os.path.join(self.base, "b-" + cid)
        bundle.make_bundle(path, list(args), rootfs=self.rootfs)
        return path

    def runc(self, *args):
        return subprocess.run([RUNC, "--root", self.rt_root] + list(args), capture_output=True,
                              timeout=60)

    def start_hull(self, cid, args=("/bin/sleep", "3600")):
        d = os.path.join(self.base, "h-" + cid)
        self.dirs[cid] = d
        r, w = os.pipe()
        t0 = time.monotonic()
        subprocess.run([conmon_bin(), "--cid", cid, "--bundle", self.bundle(cid, args), "--runtime",
                        RUNC, "--runtime-root", self.rt_root, "--socket-dir", d + "/s",
                        "--exit-dir", d + "/x", "--log-path", d + "/ctr.log",
                        "--sync-fd", str(w)], pass_fds=(w,), check=True, timeout=60)
        os.close(w)
        msg = json.loads(read_line(r, 60))
        dt = time.monotonic() - t0
        os.close(r)
        if msg.get("pid", -1) <= 0:
            raise RuntimeError(f"hull-conmon: {msg}")
        return msg["monitor_pid"], dt

    def start_conmon(self, cid, args=("/bin/sleep", "3600")):
        d = os.path.join(self.base, "c-" + cid)
        self.dirs[cid] = d
        os.makedirs(d + "/s")
        os.makedirs(d + "/x")
        r, w = os.pipe()
        env = dict(os.environ, _OCI_SYNCPIPE=str(w))
        t0 = time.monotonic()
        subprocess.run([CONMON, "-b", self.bundle(cid, args), "-c", cid, "-u", cid, "-n", cid,
                        "-r", RUNC, "--runtime-arg", "--root=" + self.rt_root,
                        "-l", "k8s-file:" + d + "/ctr.log", "--exit-dir", d + "/x",
                        "--socket-dir-path", d + "/s", "-P", d + "/conmon.pid",
                        "-p", d + "/ctr.pid", "--log-level", "error"],
                       pass_fds=(w,), env=env, check=True, timeout=60)
        os.close(w)
        msg = json.loads(read_line(r, 60))
        dt = time.monotonic() - t0
        os.close(r)
        if msg.get("pid", msg.get("data", -1)) <= 0:
            raise RuntimeError(f"conmon: {msg}")
        with open(d + "/conmon.pid") as f:
            return int(f.read().strip()), dt

    def start(self, kind, cid, args=("/bin/sleep", "3600")):
        self.cids.append(cid)  # cleaned up even if the monitor fails half-way
        pid, dt = (self.start_hull if kind == "hull" else self.start_conmon)(cid, args)
        self.pids.append(pid)
        p = self.runc("start", cid)
        if p.returncode != 0:
            raise RuntimeError(f"runc start {cid}: {p.stderr.decode()}")
        return pid, dt

    def cleanup(self):
        for cid in self.cids:
            self.runc("delete", "--force", cid)
        deadline = time.time() + 10
        for pid in self.pids:
            while time.time() < deadline and os.path.exists(f"/proc/{pid}/stat"):
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split(") ")[1].startswith("Z"):
                        break
                time.sleep(0.02)


def log_throughput(r, kind, tag, lines):
    """Seconds from `runc start` to the exit file for a container printing `lines` lines."""
    cid = f"bt{kind[0]}-{tag}"
    r.cids.append(cid)
    (r.start_hull if kind == "hull" else r.start_conmon)(cid, ("/bin/seq", "1", str(lines)))
    exit_file = os.path.join(r.dirs[cid], "x", cid)
    t0 = time.monotonic()
    p = r.runc("start", cid)
    if p.returncode != 0:
        raise RuntimeError(f"runc start {cid}: {p.stderr.decode()}")
    while not os.path.exists(exit_file):
        if time.monotonic() - t0 > 120:
            raise RuntimeError(f"{kind}: no exit file")
        time.sleep(0.005)
    dt = time.monotonic() - t0
    size = os.path.getsize(os.path.join(r.dirs[cid], "ctr.log"))
    return dt, size


def summarize(name, pids, dts):
    ms = [mem(p) for p in pids]
    n = len(ms)
    row = {"name": name, "n": n}
    for k in ("rss", "pss", "private"):
        row[k] = sum(m[k] for m in ms)
    row["create_ms"] = statistics.median(dts) * 1000
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--lines", type=int, default=1000000,
                    help="log throughput: lines printed by one container (0 to skip)")
    args = ap.parse_args()
    if not os.path.exists(conmon_bin()):
        sys.exit(f"{conmon_bin()} is not built")
    if not os.path.exists(CONMON):
        sys.exit(f"{CONMON} is not installed")
    with open(conmon_bin(), "rb") as f:
        if b"__asan_init" in f.read():
            print(f"warning: {conmon_bin()} is a sanitizer build; numbers are not meaningful")
    ver = subprocess.run([CONMON, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    base = tempfile.mkdtemp(prefix="hcb", dir="/tmp")
    r = Runner(base, bundle.make_rootfs(os.path.join(base, "rootfs")))
    rows = []
    try:
        tag = str(os.getpid())
        hp, hd = r.start("hull", f"bh0-{tag}")
        cp, cd = r.start("conmon", f"bc0-{tag}")
        time.sleep(1)
        rows.append(summarize("hull-conmon", [hp], [hd]))
        rows.append(summarize(ver or "conmon", [cp], [cd]))
        hpids, hdts, cpids, cdts = [hp], [hd], [cp], [cd]
        for i in range(1, args.count):
            p, d = r.start("hull", f"bh{i}-{tag}")
            hpids.append(p)
            hdts.append(d)
            p, d = r.start("conmon", f"bc{i}-{tag}")
            cpids.append(p)
            cdts.append(d)
        time.sleep(2)
        rows.append(summarize("hull-conmon", hpids, hdts))
        rows.append(summarize(ver or "conmon", cpids, cdts))
        thr = []
        if args.lines:
            for kind, name in (("hull", "hull-conmon"), ("conmon", ver or "conmon")):
                dt, size = log_throughput(r, kind, tag, args.lines)
                thr.append((name, dt, size))
    finally:
        r.cleanup()
        shutil.rmtree(base, ignore_errors=True)

    print("\nidle monitors of busybox `sleep` containers (runc), KiB; total and per monitor")
    hdr = (f"{'monitor':<22} {'n':>3} {'RSS total':>10} {'PSS total':>10} {'priv total':>10}"
           f" {'RSS/each':>9} {'PSS/each':>9} {'priv/each':>9} {'create ms':>9}")
    print(hdr)
    print("-" * len(hdr))
    for row in rows:
        n = row["n"]
        print(f"{row['name']:<22} {n:>3} {row['rss']:>10} {row['pss']:>10} {row['private']:>10}"
              f" {row['rss'] // n:>9} {row['pss'] // n:>9} {row['private'] // n:>9}"
              f" {row['create_ms']:>9.1f}")
    if thr:
        print(f"\nlog throughput: container printing {args.lines} lines (`seq`), "
              "`runc start` to exit file")
        for name, dt, size in thr:
            print(f"{name:<22} {dt:>7.2f} s  {size / dt / 1e6:>7.1f} MB/s of CRI log "
                  f"({size} bytes)")
    ok = all(rows[i]["rss"] < rows[i + 1]["rss"] and rows[i]["pss"] < rows[i + 1]["pss"]
             for i in (0, 2))
    print("\ntarget (hull-conmon below conmon in RSS and PSS, 1 and %d): %s"
          % (args.count, "met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
