"""Scale: pods brought up and down by several clients at once, and the list/stats calls kubelet
makes every second (its relist and stats loops) timed at each pod count, hulld and containerd's
CRI side by side in one run, with the daemon's memory before, at the top and after the pods are
gone.

Each pod is what kubelet makes of a one-container pod: RunPodSandbox (CNI bridge, its own
cgroup) + CreateContainer + StartContainer (busybox `sleep`).  The pods come up in steps (e.g.
100, then 300): at each step every list call is timed `--reps` times on the idle daemon (p50).
Then all pods go down (StopPodSandbox + RemovePodSandbox) with the same number of clients.
hulld's memory is read again `--settle` seconds after the last pod is gone: it should come back
to within 2 MiB of its idle RSS.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_scale.py [--pods 100,300] [--clients 4]
"""
import argparse
import random
import shutil
import tempfile
import threading
import time

import grpc

from bench_sandbox import bench_netdir, cleanup_host, push_bench_images
from refs import (have_containerd, pb, percentile, rss_kib, start_containerd, start_hulld,
                  table)

from registry import Registry  # noqa: E402  (tests/integration)

IMAGE = "docker.io/library/busybox:bench"

LIST_CALLS = [
    ("ListPodSandbox", lambda d: d.runtime.ListPodSandbox(pb.ListPodSandboxRequest())),
    ("ListContainers", lambda d: d.runtime.ListContainers(pb.ListContainersRequest())),
    ("ListContainerStats",
     lambda d: d.runtime.ListContainerStats(pb.ListContainerStatsRequest())),
    ("ListPodSandboxStats",
     lambda d: d.runtime.ListPodSandboxStats(pb.ListPodSandboxStatsRequest())),
    ("ListPodSandboxMetrics",
     lambda d: d.runtime.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest())),
    ("ListMetricDescriptors",
     lambda d: d.runtime.ListMetricDescriptors(pb.ListMetricDescriptorsRequest())),
    ("ListImages", lambda d: d.image.ListImages(pb.ListImagesRequest())),
]


def pod_cfg(tag, i):
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=f"scale-{tag}-{i}", namespace="bench",
                                       uid=f"uid-{tag}-{i}"),
        hostname=f"scale-{i}", log_directory=f"/tmp/hullbench-scale-{tag}/{i}",
        labels={"app": "scale", "pod-template-hash": "5d8f7c9b6"},
        annotations={"kubernetes.io/config.source": "api",
                     "kubernetes.io/config.seen": "2026-01-01T00:00:00Z"})
    cfg.linux.cgroup_parent = f"/hullbench-{tag}/pod{i}"
    return cfg


def ctr_cfg():
    return pb.ContainerConfig(metadata=pb.ContainerMetadata(name="main"),
                              image=pb.ImageSpec(image=IMAGE), command=["sleep", "100000"],
                              log_path="main.log",
                              labels={"io.kubernetes.container.name": "main"})


def parallel(n_clients, jobs, fn):
    """Runs fn(job) over jobs with n_clients threads; returns the wall time and the errors."""
    lock = threading.Lock()
    todo = list(jobs)
    errors = []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                job = todo.pop(0)
            try:
                fn(job)
            except grpc.RpcError as e:  # counted and shown, the run goes on
                with lock:
                    errors.append(f"{e.code()}: {e.details()}")
    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t, errors


def run_daemon(d, name, tag, steps, clients, reps, settle, rows_list, rows_updown, rows_mem):
    for ref in (IMAGE, "docker.io/library/pause:3.6"):
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=300)
    for name_, call in LIST_CALLS:  # warm the channel and the code paths
        try:
            call(d)
        except grpc.RpcError:
            pass
    time.sleep(settle)
    idle, idle_anon = rss_kib(d.proc.pid)
    pods, lock = [], threading.Lock()

    def up(i):
        cfg = pod_cfg(tag, i)
        pid = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                      timeout=300).pod_sandbox_id
        with lock:
            pods.append(pid)
        cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pid, config=ctr_cfg(), sandbox_config=cfg), timeout=300).container_id
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=300)

    def down(pid):
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=300)
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=300)

    have, up_total, top = 0, 0.0, idle
    try:
        for n in steps:
            took, errs = parallel(clients, range(have, n), up)
            up_total += took
            have = n
            if errs:
                print(f"{name}: {len(errs)} errors bringing pods up, first: {errs[0]}")
            row = [name, str(n)]
            for cname, call in LIST_CALLS:
                samples = []
                try:
                    for _ in range(reps):
                        t = time.perf_counter()
                        call(d)
                        samples.append((time.perf_counter() - t) * 1000)
                    row.append(f"{percentile(samples, 50):.2f}")
                except grpc.RpcError as e:
                    row.append("n/a" if e.code() == grpc.StatusCode.UNIMPLEMENTED else "error")
            rows_list.append(row)
            # as it goes: a run cut short (containerd is slow to reach 500 pods) keeps its rows
            print(f"# {name}, {n} pods: " + " ".join(
                f"{c}={v}" for (c, _), v in zip(LIST_CALLS, row[2:])) + f" (up so far {up_total:.1f} s)",
                flush=True)
            top = max(top, rss_kib(d.proc.pid)[0])
    finally:
        took_down, errs = parallel(clients, list(pods), down)
        if errs:
            print(f"{name}: {len(errs)} errors taking pods down, first: {errs[0]}")
    rows_updown.append([name, str(have), f"{up_total:.1f}", f"{took_down:.1f}"])
    time.sleep(settle)
    after, after_anon = rss_kib(d.proc.pid)
    rows_mem.append([name, f"{idle / 1024:.1f}", f"{top / 1024:.1f}", f"{after / 1024:.1f}",
                     f"{(after - idle) / 1024:+.1f}", f"{idle_anon / 1024:.1f}",
                     f"{after_anon / 1024:.1f}"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", default="100,300", help="pod counts to stop at, ascending")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--no-containerd", action="store_true")
    ap.add_argument("--only", choices=["hulld", "containerd"],
                    help="run one daemon (two runs side by side at the same time, e.g. when "
                         "containerd's pod count takes much longer to reach)")
    args = ap.parse_args()
    steps = [int(x) for x in args.pods.split(",")]
    tag = "%05x" % random.randrange(1 << 20)
    work = tempfile.mkdtemp(prefix="hullbench-scale-")
    bridges = []
    reg = Registry()
    rows_list, rows_updown, rows_mem = [], [], []

    def netdir(k):
        return bench_netdir(work, k, "hs", tag, 200, bridges)

    try:
        mirror = push_bench_images(reg)
        setups = [("hulld (hull-oci)", lambda cni: start_hulld(
            "--registry-mirror", f"docker.io={mirror}", "--cni-config-dir", cni,
            "--cni-plugin-dirs", "/usr/lib/cni", "--cgroup-parent", f"/hullbench-{tag}"))]
        if args.only == "containerd":
            setups = []
        if have_containerd() and not args.no_containerd and args.only != "hulld":
            setups.append(("containerd 1.6 (runc)", lambda cni: start_containerd(
                mirrors=[mirror], cni_dir=cni, sandbox_image="docker.io/library/pause:3.6")))
        for k, (name, start) in enumerate(setups):
            d = start(netdir(k))
            try:
                run_daemon(d, name, f"{k}{tag}", steps, args.clients, args.reps, args.settle,
                           rows_list, rows_updown, rows_mem)
            finally:
                d.stop()
    finally:
        reg.close()
        cleanup_host(bridges, tag)
        shutil.rmtree(work, ignore_errors=True)
        for k in range(2):
            shutil.rmtree(f"/tmp/hullbench-scale-{k}{tag}", ignore_errors=True)
    table(f"List and stats calls at each pod count (one container per pod), ms p50 over "
          f"{args.reps} calls", ["runtime", "pods"] + [c for c, _ in LIST_CALLS], rows_list)
    table(f"Up (RunPodSandbox + CreateContainer + StartContainer) and down (StopPodSandbox + "
          f"RemovePodSandbox), {args.clients} clients, s",
          ["runtime", "pods", "up", "down"], rows_updown)
    table("Daemon RSS, MiB: idle, highest while pods ran, and after they were all removed "
          "(RssAnon: private memory, idle and after)",
          ["runtime", "idle", "top", "after", "after - idle", "idle RssAnon", "after RssAnon"],
          rows_mem)


if __name__ == "__main__":
    main()
