"""Container lifecycle, hulld and containerd's CRI interleaved call by call, with CPU time: both
daemons run at once, each in a cgroup of its own (cpuacct) that every process it starts inherits
(hull-conmon and hull-oci; containerd-shim and runc), and every iteration makes the same call on
one then the other.  Per operation: wall time (p50) and the CPU time the daemon and its helpers
spent on it (p50, from cpuacct.usage; the container's own processes live in their own cgroups).
CPU time stays meaningful on a loaded, shared machine where wall times swing; interleaving keeps
the wall times of the two comparable.

Operations: CreateContainer, StartContainer, ContainerStatus, StopContainer (timeout 0),
RemoveContainer in one host-network pod; then pod start (RunPodSandbox + CreateContainer +
StartContainer, CNI bridge) and its teardown.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_lifecycle.py [--containers 30] [--pods 20]

With --ab OTHER_BUILD the second daemon is the hulld of OTHER_BUILD instead of containerd (an
A/B of two Hull builds, interleaved the same way; the ratios are HULL_BUILD / OTHER_BUILD).
"""
import argparse
import os
import random
import shutil
import tempfile
import time

from bench_container import pod_config
from bench_sandbox import bench_netdir, cleanup_host, push_bench_images
from refs import have_containerd, pb, percentile, start_containerd, start_hulld, table

from registry import Registry  # noqa: E402  (tests/integration)

IMAGE = "docker.io/library/busybox:bench"
CPUACCT = "/sys/fs/cgroup/cpuacct"


class Meter:
    """cpuacct cgroup holding one daemon and what it starts."""

    def __init__(self, name, pid):
        self.path = os.path.join(CPUACCT, name)
        os.mkdir(self.path)
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def usage(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read())

    def close(self):
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = f.read().split()
            for p in pids:
                with open(os.path.join(CPUACCT, "cgroup.procs"), "w") as f:
                    f.write(p)
        except OSError:
            pass
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


class Side:
    def __init__(self, name, d, meter):
        self.name, self.d, self.meter = name, d, meter
        self.wall, self.cpu = {}, {}

    def op(self, key, fn):
        u = self.meter.usage()
        t = time.perf_counter()
        r = fn()
        self.wall.setdefault(key, []).append((time.perf_counter() - t) * 1000)
        self.cpu.setdefault(key, []).append((self.meter.usage() - u) / 1e6)
        return r


def container_round(s, pod, pcfg, i):
    rt = s.d.runtime
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{i}"),
                             image=pb.ImageSpec(image=IMAGE), command=["sleep", "1000"],
                             log_path=f"c{i}.log")
    cid = s.op("CreateContainer", lambda: rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg), timeout=300).container_id)
    s.op("StartContainer", lambda: rt.StartContainer(
        pb.StartContainerRequest(container_id=cid), timeout=300))
    s.op("ContainerStatus", lambda: rt.ContainerStatus(
        pb.ContainerStatusRequest(container_id=cid), timeout=300))
    s.op("StopContainer", lambda: rt.StopContainer(
        pb.StopContainerRequest(container_id=cid, timeout=0), timeout=300))
    s.op("RemoveContainer", lambda: rt.RemoveContainer(
        pb.RemoveContainerRequest(container_id=cid), timeout=300))


def pod_round(s, tag, i):
    rt = s.d.runtime
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=f"lc-{tag}-{i}", namespace="b", uid=f"u{tag}{i}"),
        hostname=f"lc-{i}", log_directory=f"/tmp/hullbench-lc-{tag}")
    cfg.linux.cgroup_parent = f"/hullbench-{tag}/pod{i}"
    ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="main"),
                              image=pb.ImageSpec(image=IMAGE), command=["sleep", "1000"],
                              log_path="main.log")

    def start():
        pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=300).pod_sandbox_id
        cid = rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg), timeout=300).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=300)
        return pod
    pod = s.op("pod start (Run+Create+Start)", start)
    s.op("pod teardown (StopPod+RemovePod)", lambda: (
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=300),
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=300)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=30)
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--ab", metavar="OTHER_BUILD",
                    help="compare with the hulld of another build instead of containerd")
    args = ap.parse_args()
    tag = "%05x" % random.randrange(1 << 20)
    work = tempfile.mkdtemp(prefix="hullbench-lc-")
    reg = Registry()
    bridges, sides, meters = [], [], []

    def netdir(k):
        return bench_netdir(work, k, "hl", tag, 180, bridges)

    try:
        mirror = push_bench_images(reg)
        d = start_hulld("--registry-mirror", f"docker.io={mirror}", "--cni-config-dir",
                        netdir(0), "--cni-plugin-dirs", "/usr/lib/cni", "--cgroup-parent",
                        f"/hullbench-{tag}")
        meters.append(Meter(f"hullbench-cpu-h{tag}", d.proc.pid))
        sides.append(Side("hulld (hull-oci)", d, meters[-1]))
        if args.ab:
            d = start_hulld("--registry-mirror", f"docker.io={mirror}", "--cni-config-dir",
                            netdir(1), "--cni-plugin-dirs", "/usr/lib/cni", "--cgroup-parent",
                            f"/hullbench-{tag}", build=os.path.abspath(args.ab))
            meters.append(Meter(f"hullbench-cpu-b{tag}", d.proc.pid))
            sides.append(Side(f"hulld of {args.ab}", d, meters[-1]))
        elif have_containerd():
            d = start_containerd(mirrors=[mirror], cni_dir=netdir(1),
                                 sandbox_image="docker.io/library/pause:3.6")
            meters.append(Meter(f"hullbench-cpu-c{tag}", d.proc.pid))
            sides.append(Side("containerd 1.6 (runc)", d, meters[-1]))
        else:
            print("containerd not installed: apt-get install containerd for the comparison")
        pods = []
        for k, s in enumerate(sides):
            for ref in (IMAGE, "docker.io/library/pause:3.6"):
                s.d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)),
                                    timeout=300)
            pcfg = pod_config(f"{k}{tag}")
            pods.append((s.d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pcfg),
                                                   timeout=300).pod_sandbox_id, pcfg))
        for s, (pod, pcfg) in zip(sides, pods):  # warm-up, not counted
            container_round(s, pod, pcfg, 9999)
            s.wall, s.cpu = {}, {}
        for i in range(args.containers):
            for s, (pod, pcfg) in zip(sides, pods):
                container_round(s, pod, pcfg, i)
        for s, (pod, _) in zip(sides, pods):
            s.d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=300)
            s.d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod),
                                         timeout=300)
        for i in range(args.pods):
            for k, s in enumerate(sides):
                pod_round(s, f"{k}{tag}", i)
    finally:
        for s in sides:
            s.d.stop()
        for m in meters:
            m.close()
        reg.close()
        cleanup_host(bridges, tag)
        shutil.rmtree(work, ignore_errors=True)
        for k in range(2):
            shutil.rmtree(f"/tmp/hullbench-lc-{k}{tag}", ignore_errors=True)
    ops = list(sides[0].wall) if sides else []
    rows = []
    for op in ops:
        row = [op]
        for s in sides:
            row += [f"{percentile(s.wall[op], 50):.1f}", f"{percentile(s.cpu[op], 50):.1f}"]
        if len(sides) == 2:
            w = [percentile(s.wall[op], 50) for s in sides]
            c = [percentile(s.cpu[op], 50) for s in sides]
            row += [f"{w[0] / w[1]:.2f}x" if w[1] else "-", f"{c[0] / c[1]:.2f}x" if c[1] else "-"]
        rows.append(row)
    pair = []
    for s in sides:
        w = [a + b for a, b in zip(s.wall["CreateContainer"], s.wall["StartContainer"])]
        c = [a + b for a, b in zip(s.cpu["CreateContainer"], s.cpu["StartContainer"])]
        pair.append((percentile(w, 50), percentile(c, 50)))
    if pair:
        row = ["Create+Start (per container)"]
        for w, c in pair:
            row += [f"{w:.1f}", f"{c:.1f}"]
        if len(pair) == 2:
            row += [f"{pair[0][0] / pair[1][0]:.2f}x", f"{pair[0][1] / pair[1][1]:.2f}x"]
        rows.append(row)
    header = ["operation"]
    for s in sides:
        header += [f"{s.name} wall ms", "CPU ms"]
    if len(sides) == 2:
        header += ["wall ratio", "CPU ratio"]
    table(f"Lifecycle interleaved call by call, p50 over {args.containers} containers / "
          f"{args.pods} pods (CPU: daemon + its monitors and runtime processes)", header, rows)


if __name__ == "__main__":
    main()
