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

import pytest

import cri
from conftest import pb
from registry import registry  # noqa: F401  (fixture)
from test_container import busybox_image, run_pod  # noqa: F401
from test_oci_helpers import hull_binary

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
