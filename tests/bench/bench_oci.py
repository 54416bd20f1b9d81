"""create + start + wait + delete of a `/bin/true` container, hull-oci vs runc side by side.

Both runtimes run the same bundle (busybox rootfs, the default test spec with pid/net/ipc/uts/
mount namespaces, seccomp-free, an absolute cgroupsPath) N times each, interleaved in rounds so
that both see the same machine state.  Reported per runtime: mean/median/p95 wall time of the
whole cycle, and the peak RSS of any runtime process involved (ru_maxrss of create, start and
delete, from wait4).  The target is hull-oci at least 2x faster than runc, with a much smaller
peak RSS.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_oci.py [--count 100]
"""
import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import bundle  # noqa: E402

RUNC = "/usr/sbin/runc"
_libc = ctypes.CDLL(None, use_errno=True)


def hull_oci():
    return os.path.join(os.environ.get("HULL_BUILD", os.path.join(REPO, "build")), "hull-oci")


LAUNCHER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    printf("%d %ld\n", st, ru.ru_maxrss);
    return 0;
}
"""


def build_launcher(tmp):
    """A tiny static fork/exec/wait4 helper: ru_maxrss of a child includes the peak RSS of the
    process it was forked from (exec keeps the old mm's high-water mark), so measuring from
    Python would report Python's size for every runtime."""
    src = os.path.join(tmp, "launch.c")
    out = os.path.join(tmp, "launch")
    with open(src, "w") as f:
        f.write(LAUNCHER_C)
    subprocess.run(["gcc", "-O2", "-static", "-o", out, src], check=True)
    return out


LAUNCHER = None


def spawn(argv):
    """Runs argv through the launcher; returns (wait status, maxrss KiB)."""
    p = subprocess.run([LAUNCHER] + argv, capture_output=True, text=True, check=True)
    st, rss = p.stdout.split()
    return int(st), int(rss)


def cycle(binary, root, bundle_dir, cid, cgroup_leaf):
    t0 = time.perf_counter()
    peak = 0
    st, rss = spawn([binary, "--root", root, "create", "--bundle", bundle_dir,
                     "--pid-file", os.path.join(root, cid + ".pid"), cid])
    peak = max(peak, rss)
    if st != 0:
        raise RuntimeError("%s create failed" % binary)
    with open(os.path.join(root, cid + ".pid")) as f:
        pid = int(f.read())
    st, rss = spawn([binary, "--root", root, "start", cid])
    peak = max(peak, rss)
    if st != 0:
        raise RuntimeError("%s start failed" % binary)
    os.waitpid(pid, 0)  # we are the subreaper: the init is our child now
    st, rss = spawn([binary, "--root", root, "delete", cid])
    peak = max(peak, rss)
    if st != 0:
        raise RuntimeError("%s delete failed" % binary)
    os.unlink(os.path.join(root, cid + ".pid"))
    return time.perf_counter() - t0, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_oci: needs root, skipped")
        return 0
    runtimes = [("hull-oci", hull_oci())]
    if os.path.exists(RUNC):
        runtimes.append(("runc", RUNC))
    for name, b in runtimes:
        if not os.path.exists(b):
            print("bench_oci: %s not built (%s)" % (name, b))
            return 1
    _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    tmp = tempfile.mkdtemp(prefix="hull-bench-oci-")
    global LAUNCHER
    LAUNCHER = build_launcher(tmp)
    cg = "hull-bench-%s" % os.urandom(3).hex()
    try:
        bdir = os.path.join(tmp, "bundle")
        bundle.make_bundle(bdir, ["/bin/true"], linux={"cgroupsPath": "/" + cg + "/c"})
        times = {n: [] for n, _ in runtimes}
        peaks = {n: 0 for n, _ in runtimes}
        roots = {n: os.path.join(tmp, "root-" + n) for n, _ in runtimes}
        # warm-up (page cache, first cgroup creation)
        for n, b in runtimes:
            cycle(b, roots[n], bdir, "warm", cg)
        for i in range(args.count):
            for n, b in runtimes:
                t, p = cycle(b, roots[n], bdir, "c%d" % i, cg)
                times[n].append(t)
                peaks[n] = max(peaks[n], p)
        print("%-10s %6s %10s %10s %10s %12s" % ("runtime", "runs", "mean ms", "median ms",
                                                 "p95 ms", "peak RSS KiB"))
        for n, _ in runtimes:
            ts = sorted(times[n])
            print("%-10s %6d %10.2f %10.2f %10.2f %12d" % (
                n, len(ts), 1000 * statistics.mean(ts), 1000 * statistics.median(ts),
                1000 * ts[int(0.95 * (len(ts) - 1))], peaks[n]))
        if "runc" in times:
            ratio = statistics.mean(times["runc"]) / statistics.mean(times["hull-oci"])
            print("hull-oci is %.2fx faster than runc (mean cycle); peak RSS %.2fx smaller"
                  % (ratio, peaks["runc"] / max(1, peaks["hull-oci"])))
    finally:
        _libc.prctl(36, 0, 0, 0, 0)
        shutil.rmtree(tmp, ignore_errors=True)
        for base in os.listdir("/sys/fs/cgroup"):
            p = os.path.join("/sys/fs/cgroup", base, cg)
            if os.path.isdir(p):
                for sub in os.listdir(p):
                    if os.path.isdir(os.path.join(p, sub)):
                        try:
                            os.rmdir(os.path.join(p, sub))
                        except OSError:
                            pass
                try:
                    os.rmdir(p)
                except OSError:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
