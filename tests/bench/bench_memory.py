"""Daemon memory under load and after it: hulld's RSS idle, then after every burst of pod
lifecycles, read `--settle` seconds after each burst.  A burst brings `--batch` pods up at once
(RunPodSandbox with the CNI bridge + CreateContainer + StartContainer, several clients), lists
them and their stats, and takes them all down (StopPodSandbox + RemovePodSandbox).  It should come back to within 2 MiB of idle after each burst and stay flat over the
whole run (1,000 lifecycles by default).  `--containerd` adds containerd's CRI (runc) run
side by side for the same batches.

    HULL_BUILD=build /usr/bin/python3 tests/bench/bench_memory.py [--lifecycles 1000] [--batch 100]
"""
import argparse
import random
import shutil
import tempfile
import threading
import time

from bench_sandbox import bench_netdir, cleanup_host, push_bench_images
from bench_scale import IMAGE, ctr_cfg, parallel, pod_cfg
from refs import have_containerd, pb, rss_kib, start_containerd, start_hulld, table

from registry import Registry  # noqa: E402  (tests/integration)


def run(d, name, tag, total, batch, clients, settle):
    for ref in (IMAGE, "docker.io/library/pause:3.6"):
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=300)
    d.runtime.Version(pb.VersionRequest())
    time.sleep(settle)
    idle = rss_kib(d.proc.pid)
    samples = []

    def up(i):
        cfg = pod_cfg(tag, i)
        pid = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                      timeout=300).pod_sandbox_id
        with lock:
            live.append(pid)
        cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pid, config=ctr_cfg(), sandbox_config=cfg), timeout=300).container_id
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=300)
        d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid))

    def down(pid):
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=300)
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=300)

    lock = threading.Lock()
    errors = 0
    done = 0
    while done < total:
        n = min(batch, total - done)
        live = []
        _, errs = parallel(clients, range(done, done + n), up)
        # the burst at its height: kubelet's relist and stats calls over all of it
        d.runtime.ListPodSandbox(pb.ListPodSandboxRequest())
        d.runtime.ListContainers(pb.ListContainersRequest())
        d.runtime.ListContainerStats(pb.ListContainerStatsRequest())
        d.runtime.ListPodSandboxStats(pb.ListPodSandboxStatsRequest())
        _, errs2 = parallel(clients, list(live), down)
        errs += errs2
        errors += len(errs)
        if errs:
            print(f"{name}: {len(errs)} errors, first: {errs[0]}")
        done += n
        time.sleep(settle)
        samples.append((done, rss_kib(d.proc.pid)))
        print(f"# {name}: {done} lifecycles: RSS/RssAnon {samples[-1][1][0] / 1024:.1f}/"
              f"{samples[-1][1][1] / 1024:.1f} MiB", flush=True)  # kept if the run is cut short
    rss = [s[1][0] for s in samples]
    row = [name, f"{idle[0] / 1024:.1f}", f"{idle[1] / 1024:.1f}"]
    row += [f"{samples[0][1][0] / 1024:.1f}", f"{max(rss) / 1024:.1f}", f"{rss[-1] / 1024:.1f}",
            f"{(rss[-1] - idle[0]) / 1024:+.1f}", f"{(rss[-1] - samples[0][1][0]) / 1024:+.1f}",
            str(errors)]
    curve = "  ".join(f"{n}:{r[0] / 1024:.1f}/{r[1] / 1024:.1f}" for n, r in samples)
    return row, f"{name}: RSS/RssAnon MiB after each burst (lifecycles:RSS/RssAnon): {curve}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifecycles", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--containerd", action="store_true")
    args = ap.parse_args()
    tag = "%05x" % random.randrange(1 << 20)
    work = tempfile.mkdtemp(prefix="hullbench-mem-")
    bridges, rows, curves = [], [], []
    reg = Registry()

    def netdir(k):
        return bench_netdir(work, k, "hm", tag, 210, bridges)

    try:
        mirror = push_bench_images(reg)
        setups = [("hulld (hull-oci)", lambda cni: start_hulld(
            "--registry-mirror", f"docker.io={mirror}", "--cni-config-dir", cni,
            "--cni-plugin-dirs", "/usr/lib/cni", "--cgroup-parent", f"/hullbench-{tag}"))]
        if args.containerd and have_containerd():
            setups.append(("containerd 1.6 (runc)", lambda cni: start_containerd(
                mirrors=[mirror], cni_dir=cni, sandbox_image="docker.io/library/pause:3.6")))
        for k, (name, start) in enumerate(setups):
            d = start(netdir(k))
            try:
                row, curve = run(d, name, f"{k}{tag}", args.lifecycles, args.batch, args.clients,
                                 args.settle)
            finally:
                d.stop()
            rows.append(row)
            curves.append(curve)
    finally:
        reg.close()
        cleanup_host(bridges, tag)
        shutil.rmtree(work, ignore_errors=True)
        for k in range(2):
            shutil.rmtree(f"/tmp/hullbench-scale-{k}{tag}", ignore_errors=True)
    table(f"Daemon RSS over {args.lifecycles} pod lifecycles ({args.clients} clients, batches of "
          f"{args.batch}, read {args.settle:.0f} s after each batch), MiB",
          ["runtime", "idle RSS", "idle RssAnon", "after 1st batch", "highest", "at the end",
           "end - idle", "end - 1st batch", "errors"], rows)
    print()
    for c in curves:
        print(c)


if __name__ == "__main__":
    main()
