"""The real Kubernetes client against the streaming server: `kubectl exec` and
`kubectl port-forward` (client-go's remotecommand and portforward: WebSocket v5 with SPDY
fallback) through a minimal fake API server that, like the kubelet, asks the runtime for a
streaming URL and proxies the upgraded connection to it.  The runtime side is the
`test_stream --serve` harness (fork/exec backend, real network namespaces)."""
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

from test_stream_protocol import harness, pod_netns  # noqa: F401  (fixtures)

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


@pytest.fixture
def kubectl_env(harness, tmp_path):  # noqa: F811
    api = FakeAPIServer(harness, None)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.port)
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(tmp_path))
    yield api, env
    api.close()


def kubectl(env, *args, stdin=None, timeout=60, extra_env=None):
    e = dict(env, **(extra_env or {}))
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, timeout=timeout,
                          env=e)


@pytest.mark.parametrize("websockets", ["true", "false"])
def test_kubectl_exec(kubectl_env, websockets):
    api, env = kubectl_env
    ws = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": websockets}
    r = kubectl(env, "exec", "mypod", "--", "sh", "-c", "echo hello; echo oops >&2",
                extra_env=ws)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello\n"
    assert r.stderr == b"oops\n"
    proto = api.upgrades[-1][1]
    assert proto == (["websocket"] if websockets == "true" else ["SPDY/3.1"])
    # stdin, and the exit code reported through the Status on the error stream
    r = kubectl(env, "exec", "-i", "mypod", "--", "sh", "-c", "cat; exit 3",
                stdin=b"from kubectl\n", extra_env=ws)
    assert r.stdout == b"from kubectl\n"
    assert r.returncode == 3, r.stderr
    assert b"command terminated with exit code 3" in r.stderr


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
@pytest.mark.parametrize("websockets", ["true", "false"])
def test_kubectl_exec_tty_size(kubectl_env, websockets):
    """`kubectl exec -it` from a 123x45 terminal: the pty in the "container" gets that size."""
    _, env = kubectl_env
    inner = ("stty cols 123 rows 45; %s exec -it mypod -- sh -c 'sleep 0.3; stty size'"
             % KUBECTL)
    r = subprocess.run(["script", "-qec", inner, "/dev/null"], capture_output=True, timeout=60,
                       env=dict(env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS=websockets),
                       stdin=subprocess.DEVNULL)
    assert b"45 123" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("websockets", ["true", "false"])
def test_kubectl_attach(kubectl_env, websockets):
    """kubectl attach to a running "container" (a hull-conmon style attach socket)."""
    _, env = kubectl_env
    r = kubectl(env, "attach", "mypod", "-c", "c",
                extra_env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": websockets})
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(b"tick %d\n" % i for i in range(5))


def test_kubectl_exec_large_stdin(kubectl_env):
    _, env = kubectl_env
    data = os.urandom(3 << 20)
    for ws in ("true", "false"):
        r = kubectl(env, "exec", "-i", "mypod", "--", "sh", "-c", "cat | md5sum",
                    stdin=data, extra_env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": ws})
        assert r.returncode == 0, r.stderr
        import hashlib
        assert r.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()


def test_kubectl_port_forward(harness, pod_netns, tmp_path):  # noqa: F811
    name, _ = pod_netns
    api = FakeAPIServer(harness, name)
    try:
        env = dict(os.environ, HOME=str(tmp_path),
                   KUBECONFIG=str(write_kubeconfig(tmp_path / "kubeconfig", api.port)))
        # several connections through one SPDY session
        assert port_forward_get(env, free_port()) == [b"hello from the pod\n"] * 3
        # client-go tries WebSocket tunneling (v2.portforward.k8s.io) first; the runtime side
        # speaks SPDY there (as kubelets do), so kubectl falls back to SPDY/3.1
        pf = [up for k, up in api.upgrades if k == "portforward"]
        assert ["SPDY/3.1"] in pf
    finally:
        api.close()
