"""CRI Exec, Attach and PortForward through a real hulld: request validation and error codes,
then exec/attach into real containers (hull-conmon exec-attach, busybox image) and
port-forward into a real pod network namespace (busybox httpd inside), over SPDY/3.1 and
WebSocket with the test client (k8sstream.py)."""
import functools
import glob
import json
import os
import shutil
import subprocess
import time
import urllib.parse

import grpc
import pytest

import k8sstream as ks
import tempfile

import cri
from conftest import Hulld, finish_daemon, pb
from cri import wait_for, wait_state
from registry import busybox_image, registry  # noqa: F401  (fixtures)


def _code(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code()


def test_validation_and_not_found(hulld):
    rt = hulld.runtime
    assert _code(lambda: rt.Exec(pb.ExecRequest(container_id="abc", cmd=["sh"], tty=True,
                                                stdout=True, stderr=True))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: rt.Exec(pb.ExecRequest(container_id="abc", cmd=["sh"]))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: rt.Exec(pb.ExecRequest(container_id="abc", stdout=True))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: rt.Exec(pb.ExecRequest(container_id="nope", cmd=["sh"],
                                                stdout=True))) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: rt.Attach(pb.AttachRequest(container_id="abc", tty=True, stdout=True,
                                                    stderr=True))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: rt.Attach(pb.AttachRequest(container_id="nope", stdout=True))) == \
        grpc.StatusCode.NOT_FOUND
    assert _code(lambda: rt.PortForward(pb.PortForwardRequest(pod_sandbox_id="nope",
                                                              port=[80]))) == \
        grpc.StatusCode.NOT_FOUND
    assert _code(lambda: rt.PortForward(pb.PortForwardRequest(pod_sandbox_id="nope",
                                                              port=[70000]))) == \
        grpc.StatusCode.INVALID_ARGUMENT


# ---- real pods and containers ---------------------------------------------------------------

LOOPBACK_NET = {"cniVersion": "1.0.0", "name": "hull-lo", "plugins": [{"type": "loopback"}]}


@pytest.fixture(scope="module")
def env(registry, busybox_image, tmp_path_factory):  # noqa: F811
    base = tempfile.mkdtemp(prefix="hullstream-")
    d = Hulld(base, ["--insecure-registry", registry.host])
    # monitor sockets live under the state dir: keep it short (sun_path is 108 bytes)
    d.state_dir = tempfile.mkdtemp(prefix="hs", dir="/run")
    os.makedirs(d.cni_dir, exist_ok=True)
    with open(os.path.join(d.cni_dir, "10-lo.conflist"), "w") as f:
        json.dump(LOOPBACK_NET, f)
    d.start()
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox_image.ref)))
    d.logs = tmp_path_factory.mktemp("logs")
    d.img = busybox_image
    yield d
    problems = finish_daemon(d)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(d.state_dir, ignore_errors=True)
    assert problems == [], "\n".join(problems)


# the pods here: a network namespace of their own (loopback only)
run_pod = functools.partial(cri.new_pod, network=pb.POD)
create = cri.new_container


@pytest.fixture(scope="module")
def running(env):
    """A pod with a long-running container (`sleep`)."""
    pod, cfg = run_pod(env, "streampod")
    cid = create(env, pod, cfg, "sleeper", ["sleep", "3600"])
    cri.start_container(env, cid)
    wait_state(env, cid, pb.CONTAINER_RUNNING)
    return env, pod, cfg, cid


def exec_url(d, cid, cmd, **kw):
    kw.setdefault("stdout", True)
    return d.runtime.Exec(pb.ExecRequest(container_id=cid, cmd=cmd, **kw)).url


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_exec_echo(running, transport):
    d, _, _, cid = running
    url = exec_url(d, cid, ["echo", "hello"], stderr=True)
    assert urllib.parse.urlsplit(url).hostname == "127.0.0.1"
    r = ks.spdy_remotecommand(url) if transport == "spdy" else ks.ws_remotecommand(url)
    assert r["stdout"] == b"hello\n"
    assert r["status"]["status"] == "Success"
    with pytest.raises(ks.HTTPError) as e:  # single use
        ks.spdy_remotecommand(url)
    assert e.value.status == 404


def test_exec_stdin(running):
    d, _, _, cid = running
    url = exec_url(d, cid, ["cat"], stdin=True)
    data = os.urandom(200000)
    r = ks.spdy_remotecommand(url, stdin=data, stderr=False)
    assert r["stdout"] == data
    url = exec_url(d, cid, ["cat"], stdin=True)
    r = ks.ws_remotecommand(url, stdin=b"via websocket\n")
    assert r["stdout"] == b"via websocket\n"


def test_exec_exit_code_3(running):
    d, _, _, cid = running
    url = exec_url(d, cid, ["sh", "-c", "exit 3"], stderr=True)
    r = ks.spdy_remotecommand(url)
    assert r["status"]["reason"] == "NonZeroExitCode", r["status"]
    assert r["status"]["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


def test_exec_tty_resize(running):
    d, _, _, cid = running
    # the resize message may arrive after the shell started: wait for it, not for a time
    script = ('i=0; while [ "$(stty size)" = "0 0" ] && [ $i -lt 400 ]; do i=$((i+1)); '
              'sleep 0.05; done; stty size')
    url = exec_url(d, cid, ["sh", "-c", script], tty=True, stdin=True)
    r = ks.spdy_remotecommand(url, stdin=b"", stdin_close=False, tty=True, resize=(100, 40))
    assert r["stdout"].replace(b"\r", b"") == b"40 100\n"


def test_attach_stdout(env):
    d = env
    pod, cfg = run_pod(d, "attachpod")
    # the ticks start once the attached client wrote a line: none is printed before the attach
    cid = create(d, pod, cfg, "ticker",
                 ["sh", "-c", "read go; for i in 1 2 3; do echo tick $i; done"],
                 stdin=True, stdin_once=True)
    cri.start_container(d, cid)
    url = d.runtime.Attach(pb.AttachRequest(container_id=cid, stdin=True, stdout=True,
                                            stderr=True)).url
    r = ks.spdy_remotecommand(url, stdin=b"go\n")
    assert r["stdout"] == b"tick 1\ntick 2\ntick 3\n"


# ---- port-forward -----------------------------------------------------------------------------


def _pod_netns(d, pod):
    for path in glob.glob(os.path.join(d.state_dir, "ns", "**", "*"), recursive=True):
        if pod in os.path.basename(path) and "net" in path and os.path.isfile(path):
            return path
    return None


@pytest.fixture(scope="module")
def http_pod(env, tmp_path_factory):
    pod, _ = run_pod(env, "httppod")
    netns = _pod_netns(env, pod)
    assert netns is not None, "pod network namespace not found under the state dir"
    www = tmp_path_factory.mktemp("www")
    (www / "index.html").write_text("hello from the pod\n")
    httpd = subprocess.Popen(["nsenter", "--net=" + netns, "busybox", "httpd", "-f", "-p",
                              "127.0.0.1:8080", "-h", str(www)])
    wait_for(lambda: subprocess.run(["nsenter", "--net=" + netns, "busybox", "wget", "-q", "-O",
                                     "-", "http://127.0.0.1:8080/"],
                                    capture_output=True).returncode == 0,
             timeout=10, interval=0.1, what="busybox httpd in the pod")
    yield env, pod
    httpd.kill()
    httpd.wait()


GET = b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n"


def test_portforward_spdy(http_pod):
    d, pod = http_pod
    url = d.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=[8080])).url
    data, err = ks.spdy_portforward(url, 8080, GET)
    assert err == b""
    assert data.endswith(b"hello from the pod\n")
    # nothing listens on the host's 127.0.0.1:8080: the connection went into the pod
    url = d.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod)).url
    data, err = ks.spdy_portforward(url, 8081, GET)
    assert b"error forwarding port 8081" in err


def test_portforward_websocket(http_pod):
    d, pod = http_pod
    url = d.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=[8080])).url
    data, err = ks.ws_portforward(url, 8080, GET)
    assert err == b""
    assert data.endswith(b"hello from the pod\n")


def test_attach_ends_when_the_pod_stops(env):
    d = env
    pod, cfg = run_pod(d, "stoppod")
    cid = create(d, pod, cfg, "loop", ["sh", "-c", "while true; do echo x; sleep 0.1; done"])
    cri.start_container(d, cid)
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    url = d.runtime.Attach(pb.AttachRequest(container_id=cid, stdout=True, stderr=True)).url
    c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
    err = c.create_stream([("streamType", "error")])
    err.close()
    out = c.create_stream([("streamType", "stdout")])
    c.create_stream([("streamType", "stderr")])
    assert out.read(timeout=10).startswith(b"x")
    t = time.time()
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    status = err.read_all(timeout=30)
    assert json.loads(status)["status"] == "Success"
    c.reader.join(10)
    assert c.closed and time.time() - t < 30
    c.close()


# ---- the real client: kubectl through a fake API server that proxies like the kubelet ------


def _kubectl_env(d, tmp_path, url_for):
    from kubectl_util import KUBECTL, FakeAPIServer, write_kubeconfig
    if KUBECTL is None:
        pytest.skip("kubectl not installed")
    api = FakeAPIServer(url_for=url_for)
    env = dict(os.environ, HOME=str(tmp_path),
               KUBECONFIG=str(write_kubeconfig(tmp_path / "kubeconfig", api.port)))
    return api, env, KUBECTL


def test_kubectl_exec_into_container(running, tmp_path):
    from kubectl_util import flag
    d, _, _, cid = running

    def url_for(kind, q):
        return d.runtime.Exec(pb.ExecRequest(
            container_id=cid, cmd=q.get("command", []), tty=flag(q, "tty"),
            stdin=flag(q, "stdin"), stdout=flag(q, "stdout"), stderr=flag(q, "stderr"))).url

    api, env, kubectl = _kubectl_env(d, tmp_path, url_for)
    try:
        for ws in ("true", "false"):
            e = dict(env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS=ws)
            r = subprocess.run([kubectl, "exec", "-i", "mypod", "--", "sh", "-c",
                                "cat; echo in-container >&2; exit 4"], input=b"piped\n",
                               capture_output=True, env=e, timeout=60)
            assert r.stdout == b"piped\n"
            assert b"in-container" in r.stderr
            assert r.returncode == 4, r.stderr
    finally:
        api.close()


def test_kubectl_port_forward_into_pod(http_pod, tmp_path):
    from kubectl_util import free_port, port_forward_get
    d, pod = http_pod

    def url_for(kind, q):
        return d.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod)).url

    api, env, _ = _kubectl_env(d, tmp_path, url_for)
    try:
        assert port_forward_get(env, free_port()) == [b"hello from the pod\n"] * 3
    finally:
        api.close()
