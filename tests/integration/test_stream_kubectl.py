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

from kubectl_util import (API_RESOURCES, KUBECTL, POD, FakeAPIServer, flag, free_port,  # noqa: F401
                          port_forward_get, write_kubeconfig)
from stream_harness import harness, pod_netns  # noqa: F401  (fixtures)

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
