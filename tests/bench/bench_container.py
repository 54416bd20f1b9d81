"""End-to-end pod start (RunPodSandbox + CreateContainer + StartContainer with a pulled image,
CNI bridge networking) over N pods, with daemon and per-pod memory while they run; then the
container lifecycle: CreateContainer / StartContainer / StopContainer / RemoveContainer latency
over N sequential containers (p50/p95), ExecSync round trip, and memory per running container
(the monitor: hull-conmon for hulld, containerd-shim-runc-v2 for containerd), hulld and
containerd's CRI side by side in one run.  Pods use the host network (no CNI cost in these
numbers; bench_sandbox.py measures pods with CNI).  hulld runs its default runtime (hull-oci)
and also runc as a second handler; containerd runs runc.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_container.py [--containers N] [--pods N]
"""
import argparse
import random
import shutil
import tempfile
import time

from bench_sandbox import bench_netdir, cleanup_host, mem, push_bench_images
from refs import have_containerd, pb, percentile, start_containerd, start_hulld, table

from registry import Registry  # noqa: E402  (tests/integration)


def pod_config(tag):
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"cbench-{tag}", namespace="b",
                                                             uid=f"uid-{tag}"),
                              log_directory=f"/tmp/hull-cbench-{tag}")
    cfg.linux.security_context.namespace_options.network = pb.NODE
    cfg.linux.cgroup_parent = f"/hullbench-c{tag}"
    return cfg


def run(d, n, tag, image, handler, marker):
    pcfg = pod_config(tag)
    pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pcfg, runtime_handler=handler),
                                  timeout=120).pod_sandbox_id
    time.sleep(1)
    base = mem(d.proc.pid, marker)
    ids, t_create, t_start, t_stop, t_rm, t_exec = [], [], [], [], [], []
    for i in range(n):
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"c{i}"),
                                 image=pb.ImageSpec(image=image), command=["sleep", "1000"],
                                 log_path=f"c{i}.log")
        t = time.perf_counter()
        cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg), timeout=120).container_id
        t_create.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
        t_start.append((time.perf_counter() - t) * 1000)
        ids.append(cid)
    for cid in ids[:10]:
        t = time.perf_counter()
        d.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=30))
        t_exec.append((time.perf_counter() - t) * 1000)
    time.sleep(2)
    full = mem(d.proc.pid, marker)
    for cid in ids:
        t = time.perf_counter()
        d.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=120)
        t_stop.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=120)
        t_rm.append((time.perf_counter() - t) * 1000)
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=120)
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=120)
    per = ((full[0] - base[0]) / n, (full[1] - base[1]) / n)
    return t_create, t_start, t_stop, t_rm, t_exec, per


def pod_start(d, n, tag, image, marker):
    """n pods, each RunPodSandbox + CreateContainer + StartContainer (kubelet's order)."""
    times, pods = [], []
    time.sleep(1)
    base = mem(d.proc.pid, marker)
    full = base
    try:
        for i in range(n):
            cfg = pb.PodSandboxConfig(
                metadata=pb.PodSandboxMetadata(name=f"e2e-{tag}-{i}", namespace="b",
                                               uid=f"u{tag}{i}"),
                hostname=f"e2e-{i}", log_directory=f"/tmp/hull-e2e-{tag}")
            cfg.linux.cgroup_parent = f"/hullbench-{tag}/pod{i}"
            ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="main"),
                                      image=pb.ImageSpec(image=image), command=["sleep", "1000"],
                                      log_path="main.log")
            t = time.perf_counter()
            pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                          timeout=120).pod_sandbox_id
            pods.append(pod)
            cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg), timeout=120).container_id
            d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
            times.append((time.perf_counter() - t) * 1000)
        time.sleep(2)
        full = mem(d.proc.pid, marker)
    finally:
        # pods are removed even when a step failed: nothing is left running on the host
        for pod in pods:
            d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=120)
            d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod),
                                       timeout=120)
    shutil.rmtree(f"/tmp/hull-e2e-{tag}", ignore_errors=True)
    return times, ((full[0] - base[0]) / n, (full[1] - base[1]) / n)


def fmt(v):
    return f"{percentile(v, 50):.1f} / {percentile(v, 95):.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--pods", type=int, default=50)
    args = ap.parse_args()
    n, n_pods = args.containers, args.pods
    tag = "%05x" % random.randrange(1 << 20)
    work = tempfile.mkdtemp(prefix="hullbench-e2e-")
    bridges = []
    reg = Registry()

    def netdir(k):
        return bench_netdir(work, k, "he", tag, 220, bridges)

    try:
        mirror = push_bench_images(reg)
        image = "docker.io/library/busybox:bench"
        rows, mem_rows, e2e_rows = [], [], []
        setups = [("hulld (hull-oci)", lambda cni: start_hulld(
                       "--registry-mirror", f"docker.io={mirror}", "--runtime",
                       "runc=/usr/sbin/runc", "--cni-config-dir", cni, "--cni-plugin-dirs",
                       "/usr/lib/cni", "--cgroup-parent", f"/hullbench-{tag}"), "", None),
                  ("hulld (runc)", lambda cni: start_hulld(
                       "--registry-mirror", f"docker.io={mirror}", "--runtime",
                       "runc=/usr/sbin/runc", "--default-runtime", "runc", "--cni-config-dir",
                       cni, "--cni-plugin-dirs", "/usr/lib/cni", "--cgroup-parent",
                       f"/hullbench-{tag}"), "", None)]
        if have_containerd():
            setups.append(("containerd (runc)", lambda cni: start_containerd(
                mirrors=[mirror], cni_dir=cni, sandbox_image="docker.io/library/pause:3.6"),
                "", "ctrd"))
        else:
            print("containerd not installed: apt-get install containerd for the comparison")
        for k, (name, start, handler, _kind) in enumerate(setups):
            d = start(netdir(k))
            marker = d.base  # monitors/shims name the daemon's directories on their command line
            try:
                for ref in (image, "docker.io/library/pause:3.6"):
                    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)),
                                      timeout=300)
                times, per_pod = pod_start(d, n_pods, f"{k}{tag}", image, marker)
                e2e_rows.append([name, fmt(times), f"{per_pod[0] / 1024:.2f}",
                                 f"{per_pod[1] / 1024:.2f}"])
                c, st_, stp, rm, ex, per = run(d, n, f"{k}{int(time.time()) % 100000}", image,
                                               handler, marker)
            finally:
                d.stop()
            rows.append([name, fmt(c), fmt(st_), fmt(ex), fmt(stp), fmt(rm)])
            mem_rows.append([name, f"{per[0] / 1024:.2f}", f"{per[1] / 1024:.2f}"])
        table(f"End-to-end pod start over {n_pods} pods (RunPodSandbox + CreateContainer + "
              "StartContainer, CNI bridge), ms (p50 / p95), and memory per running pod "
              "(daemon growth + monitors/shims + pause), MiB",
              ["runtime", "pod start", "RSS/pod", "RssAnon/pod"], e2e_rows)
        table(f"Container lifecycle over {n} sequential containers in one host-network pod, "
              "ms (p50 / p95)",
              ["runtime", "Create", "Start", "ExecSync", "Stop(0)", "Remove"], rows)
        table("Memory per running container (monitor + runtime leftovers), MiB",
              ["runtime", "RSS", "RssAnon"], mem_rows)
    finally:
        reg.close()
        cleanup_host(bridges, tag)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
