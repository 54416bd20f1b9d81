"""Pod sandbox lifecycle: RunPodSandbox / StopPodSandbox / RemovePodSandbox latency over N
sequential pods (p50/p95) and memory per idle pod, hulld and containerd's CRI side by side in
one run, with the same CNI network (real Debian plugins: bridge + host-local + portmap +
loopback; each daemon gets its own bridge and subnet).

Pods are configured the way kubelet sends them (no shared PID namespace: kubelet's default),
so hulld runs no process per pod; a second hulld row asks for a shared PID namespace, which
starts one hull-pause per pod.  containerd always runs a pause container (runc) behind one
containerd-shim-runc-v2 per pod; its sandbox image is a static pause binary pushed to a local
registry (docker.io mirror), pre-pulled before timing.

Memory per idle pod = (RSS of the daemon and every process it started for pods, with N pods
running) - (the same with none), divided by N.  RssAnon (private) is shown next to RSS.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from refs import (BUILD, have_containerd, pb, percentile, rss_kib, start_containerd,
                  start_hulld, table)

from registry import Registry, busybox_entries, make_layer  # noqa: E402  (tests/integration)


def conflist(bridge, subnet, ipam_dir):
    return {"cniVersion": "1.0.0", "name": "bench", "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": ipam_dir,
                  "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": subnet}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "loopback"}]}


def pod(i, tag, shared_pid):
    md = pb.PodSandboxMetadata(name=f"bench-{tag}-{i}", namespace="bench", uid=f"uid-{tag}-{i}")
    cfg = pb.PodSandboxConfig(metadata=md, hostname=f"bench-{i}", log_directory="/tmp")
    cfg.linux.security_context.namespace_options.pid = pb.POD if shared_pid else pb.CONTAINER
    cfg.linux.cgroup_parent = f"/hullbench-{tag}/pod{i}"
    return cfg


def pod_processes(daemon_pid, marker):
    """pids of the daemon, its descendants, and processes whose command line holds marker
    (containerd's shims re-parent to init) with their descendants."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True,
                         text=True).stdout
    children, roots = {}, [daemon_pid]
    for line in out.splitlines():
        parts = line.split(None, 2)
        p, pp = int(parts[0]), int(parts[1])
        children.setdefault(pp, []).append(p)
        if marker and len(parts) > 2 and marker in parts[2] and p != daemon_pid:
            roots.append(p)
    seen, i = list(dict.fromkeys(roots)), 0
    while i < len(seen):
        for c in children.get(seen[i], []):
            if c not in seen:
                seen.append(c)
        i += 1
    return seen


def mem(daemon_pid, marker):
    rss = anon = 0
    for p in pod_processes(daemon_pid, marker):
        try:
            a, b = rss_kib(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
        rss += a
        anon += b
    return rss, anon


def lifecycle(d, n, tag, shared_pid, marker):
    ids, run_t, stop_t, rm_t = [], [], [], []
    time.sleep(1)
    base = mem(d.proc.pid, marker)
    for i in range(n):
        t = time.perf_counter()
        r = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pod(i, tag, shared_pid)),
                                    timeout=120)
        run_t.append((time.perf_counter() - t) * 1000)
        ids.append(r.pod_sandbox_id)
    time.sleep(2)
    full = mem(d.proc.pid, marker)
    for pid in ids:
        t = time.perf_counter()
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=120)
        stop_t.append((time.perf_counter() - t) * 1000)
    for pid in ids:
        t = time.perf_counter()
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=120)
        rm_t.append((time.perf_counter() - t) * 1000)
    per_pod = ((full[0] - base[0]) / n, (full[1] - base[1]) / n)
    return run_t, stop_t, rm_t, per_pod


def cleanup_host(bridges, tag):
    for b in bridges:
        subprocess.run(["ip", "link", "del", b], stderr=subprocess.DEVNULL)
    for ctrl in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", ctrl)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for name in os.listdir(top):
            if not name.startswith(f"hullbench-{tag}"):
                continue
            for sub, _, _ in os.walk(os.path.join(top, name), topdown=False):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def bench_netdir(work, k, prefix, tag, octet, bridges):
    """A CNI config dir under work for daemon k: a bridge network named bridge_stem + k on
    10.(octet + k).0.0/16; the bridge name is added to bridges (for cleanup_host)."""
    path = os.path.join(work, f"cni{k}")
    os.makedirs(path)
    br = f"{prefix}{k}{tag}"
    bridges.append(br)
    with open(os.path.join(path, "10-bench.conflist"), "w") as f:
        json.dump(conflist(br, f"10.{octet + k}.0.0/16", os.path.join(work, f"ipam{k}")), f)
    return path


def push_bench_images(reg):
    """Pushes busybox (every applet of the host's /bin/busybox) as library/busybox:bench and the
    pause image; returns the registry's URL for --registry-mirror."""
    applets = [a for a in subprocess.run(["/bin/busybox", "--list"], capture_output=True,
                                         text=True).stdout.split() if a != "busybox"]
    reg.push_image("library/busybox", "bench", [make_layer(busybox_entries(extra_applets=applets))])
    push_pause_image(reg)
    return f"http://{reg.host}"


def push_pause_image(reg):
    with open(os.path.join(BUILD, "hull-pause"), "rb") as f:
        pause = f.read()
    layer = make_layer([{"name": "pause", "data": pause, "mode": 0o755}])
    return reg.push_image("library/pause", "3.6", [layer],
                          config={"Entrypoint": ["/pause"], "Cmd": [], "Env": []})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=50)
    args = ap.parse_args()
    n = args.pods
    tag = "%06x" % random.randrange(1 << 24)
    work = tempfile.mkdtemp(prefix="hullbench-net-")
    bridges, rows, mem_rows, results = [], [], [], {}
    reg = None
    had_hostport = "CNI-HOSTPORT-DNAT" in subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout

    def netdir(name, k):
        d = os.path.join(work, name)
        os.makedirs(d)
        br = f"hb{k}{tag}"
        bridges.append(br)
        with open(os.path.join(d, "10-bench.conflist"), "w") as f:
            json.dump(conflist(br, f"10.{230 + k}.0.0/16", os.path.join(work, name + "-ipam")), f)
        return d

    contenders = [
        ("hulld (kubelet default: no shared pid)", "hull", False),
        ("hulld (shared pid: hull-pause per pod)", "hull", True),
    ]
    if have_containerd():
        contenders.append(("containerd 1.6 (runc, shim + pause per pod)", "ctrd", False))
    else:
        print("containerd not installed: apt-get install containerd for the comparison")
    try:
        for k, (name, kind, shared) in enumerate(contenders):
            cni = netdir(f"cni{k}", k)
            if kind == "hull":
                d = start_hulld("--cni-config-dir", cni, "--cni-plugin-dirs", "/usr/lib/cni",
                                "--cgroup-parent", f"/hullbench-{tag}")
                marker = None
            else:
                if reg is None:
                    reg = Registry()
                    push_pause_image(reg)
                d = start_containerd(mirrors=[f"http://{reg.host}"], cni_dir=cni,
                                     sandbox_image="docker.io/library/pause:3.6")
                marker = d.base
                d.image.PullImage(pb.PullImageRequest(
                    image=pb.ImageSpec(image="docker.io/library/pause:3.6")), timeout=120)
            try:
                # one warm-up pod (first plugin runs, page cache)
                w = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(
                    config=pod(9999, tag + str(k), shared)), timeout=120).pod_sandbox_id
                d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=w))
                d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=w))
                run_t, stop_t, rm_t, per_pod = lifecycle(d, n, tag + str(k), shared, marker)
            finally:
                d.stop()
            results[name] = (run_t, stop_t, rm_t, per_pod)
            tot = [a + b + c for a, b, c in zip(run_t, stop_t, rm_t)]
            rows.append([name] + [f"{percentile(v, p):.1f}" for v in (run_t, stop_t, rm_t, tot)
                                  for p in (50, 95)])
            mem_rows.append([name, f"{per_pod[0]:.0f}", f"{per_pod[1]:.0f}"])
    finally:
        if reg is not None:
            reg.close()
        cleanup_host(bridges, tag)
        if not had_hostport:
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__))), "integration"))
            from cni_env import remove_portmap_chains
            remove_portmap_chains()
        shutil.rmtree(work, ignore_errors=True)
    table(f"{n} sequential pods: latency in ms (python grpc client)",
          ["runtime", "run p50", "run p95", "stop p50", "stop p95", "remove p50", "remove p95",
           "total p50", "total p95"], rows)
    table(f"memory per idle pod ({n} pods running), KiB",
          ["runtime", "RSS/pod", "RssAnon/pod"], mem_rows)


if __name__ == "__main__":
    main()
