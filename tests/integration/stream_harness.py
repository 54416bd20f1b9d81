"""The streaming server under test without hulld: `test_stream --serve` (the C unit-test binary
with a fork/exec backend and a fake hull-conmon attach socket) as the `harness` fixture, and a
network namespace with an HTTP server in it for port-forward (`pod_netns`)."""
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

import k8sstream as ks
from cri import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Harness:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.lock = threading.Lock()

    def url(self, **req):
        with self.lock:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().strip()
        if line.startswith("ERROR"):
            _, code, msg = line.split(" ", 2)
            raise OSError(int(code), msg)
        return line

    def stats(self):
        with self.lock:
            self.proc.stdin.write("stats\n")
            self.proc.stdin.flush()
            parts = self.proc.stdout.readline().split()
        return dict(zip(parts[0::2], map(int, parts[1::2])))

    def baseline(self, timeout=10):
        """Stats once no session is left over from an earlier test."""
        # no session, and the same counts on three looks in a row (a finished session's thread
        # is gone a moment after the session)
        seen = []

        def quiet():
            seen.append(self.stats())
            last = seen[-3:]
            return len(last) == 3 and last[0]["sessions"] == 0 and \
                all(x == last[0] for x in last) and last[0]
        return wait_for(quiet, timeout=timeout, what="no stream session left")

    def settle(self, before, timeout=10):
        """Waits until sessions are gone and fds/threads are back to `before`."""
        deadline = time.time() + timeout
        while True:
            now = self.stats()
            if now["sessions"] == 0 and now["fds"] == before["fds"] and \
                    now["threads"] == before["threads"]:
                return now
            if time.time() > deadline:
                return now
            time.sleep(0.05)


def _harness_binary():
    build = os.environ.get("HULL_BUILD", os.path.join(ROOT, "build"))
    for cand in (os.path.join(build, "tests", "test_stream"),
                 os.path.join(ROOT, "build", "stream", "tests", "test_stream")):
        if os.path.exists(cand):
            return cand
    return None


def _start_harness(env=None):
    binary = _harness_binary()
    if binary is None:
        pytest.skip("test_stream binary not built (make unit-bins)")
    return subprocess.Popen([binary, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1, env=env)


@pytest.fixture(scope="module")
def harness():
    p = _start_harness(dict(os.environ, HULL_STREAM_CREATION="2"))
    line = p.stdout.readline()
    assert line.startswith("PORT "), line
    h = Harness(p, int(line.split()[1]))
    yield h
    p.stdin.close()
    assert p.wait(60) == 0


@pytest.fixture(scope="module")
def pod_netns(tmp_path_factory):
    """A network namespace with lo up and busybox httpd on 127.0.0.1:8080 inside."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("busybox"):
        pytest.skip("needs root, ip and busybox")
    name = "hullstream-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    www = tmp_path_factory.mktemp("www")
    (www / "index.html").write_text("hello from the pod\n")
    with open(www / "big.bin", "wb") as f:
        f.write(os.urandom(4 << 20))
    httpd = subprocess.Popen(["ip", "netns", "exec", name, "busybox", "httpd", "-f", "-p",
                              "127.0.0.1:8080", "-h", str(www)])
    deadline = time.time() + 10
    while time.time() < deadline:
        r = subprocess.run(["ip", "netns", "exec", name, "busybox", "wget", "-q", "-O", "-",
                            "http://127.0.0.1:8080/"], capture_output=True)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    yield name, www
    httpd.kill()
    httpd.wait()
    subprocess.run(["ip", "netns", "del", name])
