"""kubectl against the streaming server: a minimal fake API server that, like the kubelet, asks
the runtime for a streaming URL and proxies the upgraded connection to it, a kubeconfig for it,
and port-forward helpers.  Used by test_stream_kubectl.py and test_stream_cri.py."""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "mypod", "namespace": "default", "uid": "1234"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    "status": {"phase": "Running",
               "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                      "image": "busybox", "imageID": "", "state":
                                          {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
}
API_RESOURCES = {
    "kind": "APIResourceList", "groupVersion": "v1",
    "resources": [{"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                   "verbs": ["get", "list"], "shortNames": ["po"]},
                  {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
                   "verbs": ["create", "get"]},
                  {"name": "pods/attach", "singularName": "", "namespaced": True,
                   "kind": "PodAttachOptions", "verbs": ["create", "get"]},
                  {"name": "pods/portforward", "singularName": "", "namespaced": True,
                   "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}],
}


def flag(q, k):
    return q.get(k, ["false"])[0] in ("true", "1")


def write_kubeconfig(path, api_port):
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": "http://127.0.0.1:%d" % api_port}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u",
                                                   "namespace": "default"}}],
    }))
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_forward_get(env, local, remote=8080, n=3):
    """kubectl port-forward pod/mypod local:remote; GETs / n times; returns the bodies."""
    p = subprocess.Popen([KUBECTL, "port-forward", "pod/mypod", "%d:%d" % (local, remote)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = p.stdout.readline()
        assert b"Forwarding from" in line, (line, p.stderr.read1(4096) if p.poll() else "")
        return [urllib.request.urlopen("http://127.0.0.1:%d/" % local, timeout=10).read()
                for _ in range(n)]
    finally:
        p.terminate()
        p.wait(10)


class FakeAPIServer:
    """Answers the few GETs kubectl makes and proxies exec/portforward upgrades to the
    streaming server, the way the kubelet proxies to a CRI runtime's URL."""

    def __init__(self, harness=None, netns=None, url_for=None):  # noqa: F811
        """url_for(kind, query) → streaming URL; by default the harness's."""
        self.harness = harness
        self.netns = netns
        self.url_for = url_for or self._harness_url
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.requests = []
        self.upgrades = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            while True:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, rest = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [line.split(":", 1) for line in lines[1:]]
                hmap = {k.strip().lower(): v.strip() for k, v in headers}
                n = int(hmap.get("content-length", "0"))
                while len(rest) < n:
                    rest += c.recv(65536)
                u = urllib.parse.urlsplit(target)
                self.requests.append((method, u.path))
                if u.path.rsplit("/", 1)[1] in ("exec", "attach", "portforward"):
                    self._proxy(c, method, u, lines[1:], rest)
                    return
                body, status = self._rest(u.path)
                c.sendall(("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n" % (status, len(body))).encode() + body)
        except OSError:
            pass
        finally:
            c.close()

    def _rest(self, path):
        if path == "/api":
            return json.dumps({"kind": "APIVersions", "versions": ["v1"]}).encode(), 200
        if path == "/apis":
            return json.dumps({"kind": "APIGroupList", "apiVersion": "v1",
                               "groups": []}).encode(), 200
        if path == "/api/v1":
            return json.dumps(API_RESOURCES).encode(), 200
        if path == "/api/v1/namespaces/default/pods/mypod":
            return json.dumps(POD).encode(), 200
        return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404}).encode(), 404

    def _harness_url(self, kind, q):
        if kind == "attach":
            return self.harness.url(kind="attach", id="ticker", tty=flag(q, "tty"),
                                    stdin=flag(q, "stdin"), stdout=flag(q, "stdout"),
                                    stderr=flag(q, "stderr"))
        if kind == "exec":
            return self.harness.url(kind="exec", cmd=q.get("command", []), tty=flag(q, "tty"),
                                    stdin=flag(q, "stdin"), stdout=flag(q, "stdout"),
                                    stderr=flag(q, "stderr"))
        return self.harness.url(kind="portforward", id=self.netns)

    def _proxy(self, c, method, u, header_lines, rest):
        q = urllib.parse.parse_qs(u.query)
        url = self.url_for(u.path.rsplit("/", 1)[1], q)
        t = urllib.parse.urlsplit(url)
        upgrade = [line.split(":", 1)[1].strip() for line in header_lines
                   if line.lower().startswith("upgrade:")]
        self.upgrades.append((u.path.rsplit("/", 1)[1], upgrade))
        s = socket.create_connection((t.hostname, t.port))
        path = t.path + ("?" + u.query if u.query else "")
        out = ["%s %s HTTP/1.1" % (method, path)]
        out += [line for line in header_lines if not line.lower().startswith("host:")]
        out.append("Host: %s:%d" % (t.hostname, t.port))
        s.sendall(("\r\n".join(out) + "\r\n\r\n").encode() + rest)

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for x in (b,):
                try:
                    x.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t1 = threading.Thread(target=pump, args=(c, s), daemon=True)
        t1.start()
        pump(s, c)
        t1.join(30)
        s.close()

    def close(self):
        self.stop = True
        self.ls.close()
