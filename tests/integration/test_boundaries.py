"""Pod boundaries against local users and recycled pids: hull-oci exec joins a container
through a pidfd held from its liveness check on, and io.hull.* annotations that size host
resources apply only where an administrator allows them per runtime handler."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import http.server
import threading

import grpc
import pytest

import cri
from conftest import pb
from leaks import mounts_below
from registry import Registry, registry  # noqa: F401  (fixture)
from cri import wait_state
from ctr import create, env, run_pod  # noqa: F401  (env: fixture)
from registry import busybox_image  # noqa: F401  (fixture)
from oci_helpers import hull_binary

# Runs as pid 1 of a private pid namespace (unshare --pid --fork --mount-proc), where the pid
# numbers are ours to recycle: the exec is stopped right after it checked the init, the init is
# killed and reaped, its pid handed to a `sleep` in another network namespace, and the exec
# resumed.  It must refuse, never run in the impostor's namespaces.
RACE = textwrap.dedent(r'''
    import json, os, signal, subprocess, sys, time
    import bundle as B
    hull, root, tmp = sys.argv[1:4]
    bdir = os.path.join(tmp, "bundle")
    B.make_bundle(bdir, ["sleep", "1000"])
    def oci(*a, **kw):
        return subprocess.run([hull, "--root", root, *a], capture_output=True, text=True, **kw)
    # no pipes: the container's init inherits create's stdio
    with open(os.path.join(tmp, "create.err"), "w+") as ef:
        rc = subprocess.run([hull, "--root", root, "create", "--bundle", bdir, "victim"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef).returncode
        ef.seek(0)
        assert rc == 0, ef.read()
    assert oci("start", "victim").returncode == 0
    pid = json.loads(oci("state", "victim").stdout)["pid"]
    out = open(os.path.join(tmp, "exec.out"), "w+")
    env = dict(os.environ, HULL_TEST_STOP_AT="exec:after-check")
    ex = subprocess.Popen([hull, "--root", root, "exec", "victim", "readlink", "/proc/self/ns/net"],
                          stdout=out, stderr=subprocess.STDOUT, env=env)
    def state(p):
        with open("/proc/%d/stat" % p) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    deadline = time.time() + 30
    while state(ex.pid) != "T":
        assert time.time() < deadline, "exec never reached its stop point"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)          # we are this namespace's init: the container init is ours
    impostor = None
    for _ in range(20):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        p = subprocess.Popen(["unshare", "--net", "sleep", "100"])
        if p.pid == pid:
            impostor = p
            break
        p.kill(); p.wait()
    assert impostor is not None, "could not recycle pid %d" % pid
    time.sleep(0.2)             # let unshare exec sleep in its new netns
    imp_net = os.readlink("/proc/%d/ns/net" % pid)
    os.kill(ex.pid, signal.SIGCONT)
    rc = ex.wait(timeout=60)
    out.seek(0)
    text = out.read()
    impostor.kill(); impostor.wait()
    oci("delete", "--force", "victim")
    print(json.dumps({"rc": rc, "out": text, "impostor_net": imp_net}))
''')


def test_exec_never_joins_a_recycled_pid(tmp_path):
    script = tmp_path / "race.py"
    script.write_text(RACE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__)) + ":" + env.get("PYTHONPATH", "")
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script),
                        hull_binary(), str(tmp_path / "root"), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["impostor_net"] not in res["out"], res
    assert res["rc"] != 0, res
    assert "exited" in res["out"] or "No such process" in res["out"], res


# ---- io.hull.* annotations ------------------------------------------------------------------

def shm_bytes(d, pod):
    st = os.statvfs(os.path.join(d.state_dir, "sandboxes", pod, "shm"))
    return st.f_blocks * st.f_frsize


def shm_pod(d, name, handler, size="1Gi"):
    cfg = cri.pod_config(name, network=pb.NODE, log_directory=d.logs / name)
    cfg.annotations["io.hull.shm-size"] = size
    return cri.run_pod(d, cfg, handler)


@pytest.fixture
def allowing(hulld_factory, registry, busybox_image, tmp_path):  # noqa: F811
    h = hulld_factory("--insecure-registry", registry.host, "--runtime", "runc=/usr/sbin/runc",
                      "--allowed-annotations", "runc=io.hull.shm-size")
    yield cri.prepare(h, busybox_image, tmp_path / "logs")
    cri.remove_all_pods(h)


def test_shm_size_annotation_off_by_default(hulld, tmp_path):
    d = hulld
    d.logs = tmp_path / "logs"
    pod = shm_pod(d, "shmdef", "")
    assert shm_bytes(d, pod) == 64 << 20  # the default, not the pod author's 1 GiB
    cri.remove_all_pods(d)


def test_shm_size_annotation_only_where_allowed(allowing):
    d = allowing
    allowed = shm_pod(d, "shmrunc", "runc")
    assert shm_bytes(d, allowed) == 1 << 30
    other = shm_pod(d, "shmhull", "hull-oci")  # allowed for runc only
    assert shm_bytes(d, other) == 64 << 20
    cfg = json.loads(subprocess.run([d.args[0], "--config", d.config_path, "--print-config",
                                     "--allowed-annotations", "runc=io.hull.shm-size"],
                                    capture_output=True, text=True).stdout)
    assert cfg["allowed_annotations"] == {"runc": ["io.hull.shm-size"]}


# ---- pid namespace TARGET --------------------------------------------------------------------

def test_target_pid_namespace_is_pinned(env):  # noqa: F811
    """The TARGET pid namespace reaches the runtime as a pin of the target's namespace made
    while hulld holds the target's pidfd (never a /proc/PID path the runtime would open later,
    when the pid may name another process); the pin goes away with the container."""
    d = env
    pod, pcfg = run_pod(d, "tpin", pid=pb.CONTAINER)
    a = create(d, pod, pcfg, "app", ["sleep", "1234"])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=a))
    wait_state(d, a, pb.CONTAINER_RUNNING)
    apid = int(json.loads(d.runtime.ContainerStatus(pb.ContainerStatusRequest(
        container_id=a, verbose=True)).info["info"])["pid"])
    sc = pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(
        pid=pb.TARGET, target_id=a))
    dbg = create(d, pod, pcfg, "debug", ["sleep", "100"],
                 linux=pb.LinuxContainerConfig(security_context=sc))
    with open(os.path.join(d.state_dir, "containers", dbg, "config.json")) as f:
        spec = json.load(f)
    pidns = [n for n in spec["linux"]["namespaces"] if n["type"] == "pid"][0]["path"]
    assert pidns == os.path.join(d.root, "containers", dbg, "target-pidns"), pidns
    assert os.stat(pidns).st_ino == os.stat(f"/proc/{apid}/ns/pid").st_ino
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=dbg))
    wait_state(d, dbg, pb.CONTAINER_RUNNING)
    r = d.runtime.ExecSync(pb.ExecSyncRequest(container_id=dbg, cmd=["cat", "/proc/1/cmdline"],
                                              timeout=10))
    assert r.stdout.split(b"\0")[:2] == [b"sleep", b"1234"], r
    d.runtime.StopContainer(pb.StopContainerRequest(container_id=dbg, timeout=0))
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=dbg))
    assert mounts_below(os.path.join(d.root, "containers", dbg)) == []
    cri.remove_all_pods(d)


# ---- request strings ------------------------------------------------------------------------

def test_request_strings_must_be_utf8(hulld, tmp_path):
    """A string field that is not UTF-8 (proto3 strings are) is INVALID_ARGUMENT naming the
    field: such bytes used to reach the OCI spec and pod records as JSON no parser accepts."""
    cfg = cri.pod_config("utf8", network=pb.NODE, log_directory=tmp_path / "logs")
    cfg.annotations["note"] = "XXXX"
    raw = pb.RunPodSandboxRequest(config=cfg).SerializeToString()
    assert raw.count(b"XXXX") == 1
    raw = raw.replace(b"XXXX", b"a\xff\xfe\x80")
    call = hulld.channel.unary_unary("/runtime.v1.RuntimeService/RunPodSandbox")
    with pytest.raises(grpc.RpcError) as e:
        call(raw, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "config.annotations.value" in e.value.details() and "UTF-8" in e.value.details()
    assert not hulld.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items


# ---- a hostile registry's token realm ---------------------------------------------------------

def test_no_credentials_to_a_plain_http_token_realm(hulld_factory):
    """A registry reached over TLS whose Bearer challenge names a plain-HTTP realm does not get
    the pull's credentials sent in clear text to that realm."""
    seen = []

    class Token(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = http.server.HTTPServer(("127.0.0.1", 0), Token)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    reg = Registry(tls=True, token_realm=f"http://127.0.0.1:{srv.server_port}/token")
    try:
        h = hulld_factory("--registry-ca", f"{reg.host}={reg.ca_file}")
        auth = pb.AuthConfig(username="user", password="secret", server_address=reg.host)
        with pytest.raises(grpc.RpcError) as e:
            h.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=f"{reg.host}/x:1"),
                                                  auth=auth), timeout=60)
        assert "plain HTTP" in e.value.details(), e.value.details()
        assert seen == [], seen
    finally:
        srv.shutdown()
        reg.close()
