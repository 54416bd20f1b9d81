"""Streaming server: exec round-trip latency (URL → upgrade → process → exit status) over
SPDY/3.1 and WebSocket, and port-forward throughput (100 MiB from busybox httpd inside a
network namespace) over both.  The server runs as `test_stream --serve` (the streaming server
with a fork/exec backend, so this measures the protocol layer, not container start-up); with
the CRI section it also measures Exec and PortForward through hulld and, when installed,
containerd's CRI (its streaming server is the kubelet's own code, so the same client working
against both is a cross-check of the protocol)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import k8sstream as ks  # noqa: E402
from refs import BUILD, percentile, rss_kib, table  # noqa: E402

EXECS = 200
MIB = 100


class Harness:
    def __init__(self):
        binary = os.path.join(BUILD, "tests", "test_stream")
        if not os.path.exists(binary):
            raise SystemExit(f"{binary} is not built (make unit-bins)")
        self.proc = subprocess.Popen([binary, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        self.port = int(self.proc.stdout.readline().split()[1])

    def url(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def exec_latency(h, transport, n=EXECS):
    samples = []
    for i in range(n + 10):
        t = time.perf_counter_ns()
        url = h.url(kind="exec", cmd=["true"], stdout=True)
        if transport == "spdy":
            r = ks.spdy_remotecommand(url, stderr=False)
        else:
            r = ks.ws_remotecommand(url)
        assert r["status"]["status"] == "Success", r
        if i >= 10:
            samples.append((time.perf_counter_ns() - t) / 1e6)
    return samples


def portforward_throughput(h, ns, transport, size):
    url = h.url(kind="portforward", id=ns)
    req = b"GET /big.bin HTTP/1.0\r\nHost: pod\r\n\r\n"
    t = time.perf_counter()
    if transport == "spdy":
        data, err = ks.spdy_portforward(url, 8080, req, read_timeout=120)
    else:
        data, err = ks.ws_portforward(url, 8080, req)
    dt = time.perf_counter() - t
    assert err == b"" and len(data) > size, (len(data), err)
    return size / (1 << 20) / dt


def cri_section(n=50):
    """CRI Exec round trip (URL → SPDY/WebSocket session → `true` → status) into a running
    container, hulld vs containerd, same client."""
    import grpc
    from bench_container import pod_config
    from bench_sandbox import push_pause_image
    from refs import have_containerd, pb, start_containerd, start_hulld
    from registry import Registry, busybox_entries, make_layer
    reg = Registry()
    rows, pf_rows = [], []
    try:
        reg.push_image("library/busybox", "bench", [make_layer(busybox_entries())])
        push_pause_image(reg)
        mirror = f"http://{reg.host}"
        image = "docker.io/library/busybox:bench"
        setups = [("hulld", lambda: start_hulld("--registry-mirror", f"docker.io={mirror}"))]
        if have_containerd():
            setups.append(("containerd", lambda: start_containerd(
                mirrors=[mirror], sandbox_image="docker.io/library/pause:3.6")))
        for k, (name, start) in enumerate(setups):
            d = start()
            try:
                for ref in (image, "docker.io/library/pause:3.6"):
                    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)),
                                      timeout=300)
                pcfg = pod_config(f"s{k}{int(time.time()) % 100000}")
                pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pcfg),
                                              timeout=120).pod_sandbox_id
                cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="s"),
                                         image=pb.ImageSpec(image=image),
                                         command=["sleep", "1000"], log_path="s.log")
                cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
                    pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg)).container_id
                d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
                for transport in ("spdy", "websocket"):
                    lat = []
                    for i in range(n + 3):
                        t = time.perf_counter_ns()
                        url = d.runtime.Exec(pb.ExecRequest(container_id=cid, cmd=["true"],
                                                            stdout=True)).url
                        if transport == "spdy":
                            r = ks.spdy_remotecommand(url, stderr=False)
                        else:
                            r = ks.ws_remotecommand(url)
                        ok = r["status"] and r["status"].get("status") == "Success"
                        if not ok:
                            raise RuntimeError(f"{name} {transport}: {r}")
                        if i >= 3:
                            lat.append((time.perf_counter_ns() - t) / 1e6)
                    rows.append([name, transport, f"{percentile(lat, 50):.1f}",
                                 f"{percentile(lat, 95):.1f}"])
                # port-forward into the (host-network) pod: a one-shot server on the host
                for transport in ("spdy", "websocket"):
                    port, srv = _oneshot_server(b"pong from the host\n")
                    url = d.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod,
                                                                      port=[port])).url
                    if transport == "spdy":
                        data, err = ks.spdy_portforward(url, port, b"ping\n")
                    else:
                        data, err = ks.ws_portforward(url, port, b"ping\n")
                    srv.join(10)
                    pf_rows.append([name, transport, "ok" if data == b"pong from the host\n"
                                    else f"got {data[:40]!r} err {err[:80]!r}"])
                d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
                d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
            except (grpc.RpcError, RuntimeError, ks.HTTPError, OSError) as e:
                rows.append([name, "-", "failed", str(e)[:80]])
            finally:
                d.stop()
    finally:
        reg.close()
    table(f"CRI Exec round trip into a running container (`true`, {n} sequential, python "
          "client), ms", ["runtime", "transport", "p50", "p95"], rows)
    table("CRI PortForward into a host-network pod (same client against both)",
          ["runtime", "transport", "result"], pf_rows)


def _oneshot_server(reply):
    """A TCP server on 127.0.0.1 answering one connection with `reply` after a line."""
    import socket
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        c, _ = ls.accept()
        c.recv(100)
        c.sendall(reply)
        c.close()
        ls.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], t


def main():
    try:
        cri_section()
    except Exception as e:  # the protocol-level numbers below do not depend on it
        print(f"CRI exec section skipped: {e}")
    h = Harness()
    rows = []
    try:
        for transport in ("spdy", "websocket"):
            lat = exec_latency(h, transport)
            rows.append([transport, f"{percentile(lat, 50):.2f}", f"{percentile(lat, 99):.2f}"])
        table(f"exec round trip (`true`, {EXECS} sequential sessions, python client)",
              ["transport", "p50 ms", "p99 ms"], rows)

        if os.geteuid() != 0 or not shutil.which("busybox"):
            print("port-forward: needs root and busybox")
            return
        ns = "hullbench-%s" % uuid.uuid4().hex[:8]
        www = tempfile.mkdtemp(prefix="hullbench-www-")
        size = MIB << 20
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(os.urandom(1 << 20) * MIB)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        httpd = None
        try:
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            httpd = subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p",
                                      "127.0.0.1:8080", "-h", www])
            time.sleep(0.5)
            rows = []
            for transport in ("spdy", "websocket"):
                runs = [portforward_throughput(h, ns, transport, size) for _ in range(3)]
                rows.append([transport, f"{max(runs):.0f}", f"{min(runs):.0f}"])
            rss, anon = rss_kib(h.proc.pid)
            table(f"port-forward {MIB} MiB from busybox httpd in a netns (3 runs; the python "
                  f"client is the bottleneck), server RSS {rss / 1024:.1f} MiB",
                  ["transport", "best MiB/s", "worst MiB/s"], rows)
        finally:
            if httpd:
                httpd.kill()
                httpd.wait()
            subprocess.run(["ip", "netns", "del", ns])
            shutil.rmtree(www, ignore_errors=True)
    finally:
        h.stop()


if __name__ == "__main__":
    main()
