"""Streaming server: exec round-trip latency (URL → upgrade → process → exit status) over
SPDY/3.1 and WebSocket, and port-forward throughput (100 MiB from busybox httpd inside a
network namespace) over both.  The server runs as `test_stream --serve` (the streaming server
with a fork/exec backend, so this measures the protocol layer, not container start-up); with
--hulld it also measures CRI Exec through hulld when containers can exec."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
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


def main():
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
