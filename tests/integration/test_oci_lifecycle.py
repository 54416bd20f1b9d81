"""hull-oci lifecycle and CLI: create/start/state/kill/delete, exec, pause/resume, ps, list,
features, error cases.  Run with RUNTIME=runc to check the same behaviour against runc."""
import array
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import bundle as B
from oci_helpers import (RUNC, Runtime, cgroup_exists_anywhere, is_hull, make_rt,
                              set_subreaper, spec_with, wait_pid)


@pytest.fixture
def rt(request, tmp_path):
    return make_rt(request, tmp_path)


@pytest.fixture(params=["hull", "runc"])
def both(request, tmp_path):
    """hull-oci and runc side by side on the same checks."""
    if request.param == "runc" and not os.path.exists(RUNC):
        pytest.skip("no runc")
    return make_rt(request, tmp_path / request.param, request.param)


def test_lifecycle(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    cg = "/hulltest-%s" % os.urandom(4).hex()
    B.make_bundle(bdir, ["/bin/sleep", "1000"], linux={"cgroupsPath": cg})
    rt.cgroups.append(cg)
    cid = rt.new_id()
    pidfile = str(tmp_path / "pid")
    rt.create(cid, bdir, "--pid-file", pidfile)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == bdir
    with open(pidfile) as f:
        assert int(f.read()) == st["pid"] > 0
    assert os.path.exists(os.path.join(rt.root, cid, "exec.fifo"))
    # the user program has not run yet: the init is blocked before exec
    with open("/proc/%d/cmdline" % st["pid"], "rb") as f:
        assert b"sleep" not in f.read()
    assert cgroup_exists_anywhere(cg)
    rt.cmd("start", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    assert not os.path.exists(os.path.join(rt.root, cid, "exec.fifo"))
    with open("/proc/%d/cmdline" % st["pid"], "rb") as f:
        assert f.read().startswith(b"/bin/sleep")
    rt.cmd("kill", cid, "KILL", check=True)
    assert rt.wait_status(cid, "stopped")
    rt.cmd("delete", cid, check=True)
    p = rt.cmd("state", cid)
    assert p.returncode != 0 and "does not exist" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not cgroup_exists_anywhere(cg), "cgroup left behind"


def test_run_output_and_exit_code(both, tmp_path):
    r = both.run(str(tmp_path / "b"), ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 7"])
    assert r.status == 7
    assert r.out == "hello\n"
    assert "oops" in r.err


def test_start_twice_and_start_stopped(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"])
    cid = rt.new_id()
    set_subreaper(True)
    try:
        rt.create(cid, bdir)
        pid = rt.state(cid)["pid"]
        rt.cmd("start", cid, check=True)
        wait_pid(pid)
    finally:
        set_subreaper(False)
    assert rt.status(cid) == "stopped"
    p = rt.cmd("start", cid)
    assert p.returncode == 1 and cid in p.stderr if is_hull(rt) else p.returncode == 1
    rt.cmd("delete", cid, check=True)


def test_delete_created_and_running(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    c1 = rt.new_id()
    rt.create(c1, bdir)
    # runc deletes a created container without --force
    rt.cmd("delete", c1, check=True)
    assert rt.status(c1) is None
    c2 = rt.new_id()
    rt.create(c2, bdir)
    rt.cmd("start", c2, check=True)
    p = rt.cmd("delete", c2)
    assert p.returncode == 1
    assert rt.status(c2) == "running"
    rt.cmd("delete", "--force", c2, check=True)
    assert rt.status(c2) is None


def test_errors(both, tmp_path):
    rt = both
    # unknown id
    for args in (["state"], ["start"], ["kill"], ["delete"], ["pause"], ["resume"], ["ps"]):
        p = rt.cmd(*args, "nonexistent-id")
        assert p.returncode == 1, args
        assert "does not exist" in p.stderr, (args, p.stderr)
        if is_hull(rt):
            assert "nonexistent-id" in p.stderr
            assert len(p.stderr.strip().splitlines()) == 1
    p = rt.cmd("exec", "nonexistent-id", "true")
    assert p.returncode == 255 and "does not exist" in p.stderr
    # missing bundle
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", str(tmp_path / "missing"), cid)
    assert p.returncode == 1
    assert rt.status(cid) is None
    assert not os.path.exists(os.path.join(rt.root, cid))
    # bad JSON
    bdir = str(tmp_path / "bad")
    B.make_bundle(bdir, ["/bin/true"])
    with open(os.path.join(bdir, "config.json"), "w") as f:
        f.write("{not json")
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1 and p.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))
    # missing rootfs
    bdir = str(tmp_path / "noroot")
    B.make_bundle(bdir, ["/bin/true"])
    spec_with(bdir, lambda s: s["root"].update(path="does-not-exist"))
    cg = "/hulltest-%s" % os.urandom(4).hex()
    spec_with(bdir, lambda s: s["linux"].update(cgroupsPath=cg))
    rt.cgroups.append(cg)
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1 and p.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not cgroup_exists_anywhere(cg), "cgroup left behind after a failed create"
    # duplicate id
    bdir = str(tmp_path / "ok")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    rt.create(cid, bdir)
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1 and "exists" in p.stderr
    assert rt.status(cid) == "created"
    rt.cmd("delete", "--force", cid, check=True)


def test_exec_errors_and_stopped(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    p = rt.cmd("exec", cid, "/does/not/exist")
    assert p.returncode != 0
    rt.cmd("kill", cid, "KILL", check=True)
    assert rt.wait_status(cid, "stopped")
    p = rt.cmd("exec", cid, "/bin/true")
    assert p.returncode == 255
    assert "stopped" in p.stderr
    rt.cmd("delete", cid, check=True)


def test_exec(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    init_pid = rt.state(cid)["pid"]
    p = rt.cmd("exec", cid, "/bin/sh", "-c", "hostname; echo $$; cat /proc/1/cmdline; exit 5")
    assert p.returncode == 5
    lines = p.stdout.split("\n")
    assert lines[0] == "hull-test"
    assert int(lines[1]) > 1
    assert lines[2].startswith("/bin/sleep")
    # --process with a full process object
    proc = {"terminal": False, "user": {"uid": 1000, "gid": 1000}, "cwd": "/tmp",
            "args": ["/bin/sh", "-c", "id -u; id -g; pwd; echo $FOO"],
            "env": ["PATH=/bin", "FOO=bar"]}
    pj = str(tmp_path / "process.json")
    with open(pj, "w") as f:
        json.dump(proc, f)
    p = rt.cmd("exec", "--process", pj, cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1000", "1000", "/tmp", "bar"]
    # detached with a pid file; the process joins the container's cgroup and namespaces
    pidfile = str(tmp_path / "exec.pid")
    p = rt.cmd("exec", "--detach", "--pid-file", pidfile, cid, "/bin/sleep", "1000")
    assert p.returncode == 0, p.stderr
    with open(pidfile) as f:
        epid = int(f.read())
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert os.readlink("/proc/%d/ns/%s" % (epid, ns)) == \
            os.readlink("/proc/%d/ns/%s" % (init_pid, ns))
    with open("/proc/%d/cgroup" % epid) as a, open("/proc/%d/cgroup" % init_pid) as b:
        assert a.read() == b.read()
    p = rt.cmd("ps", "--format", "json", cid)
    assert p.returncode == 0
    assert sorted(json.loads(p.stdout)) == sorted([init_pid, epid])
    rt.cmd("delete", "--force", cid, check=True)
    assert not os.path.exists("/proc/%d" % epid) or \
        open("/proc/%d/stat" % epid).read().split(")")[1].split()[0] == "Z"


def test_kill_signal_and_all(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    # a shell that traps TERM (pid 1 ignores signals it has no handler for)
    B.make_bundle(bdir, ["/bin/sh", "-c", "trap 'exit 42' TERM; sleep 1000 & wait"])
    cid = rt.new_id()
    set_subreaper(True)
    try:
        rt.create(cid, bdir)
        pid = rt.state(cid)["pid"]
        rt.cmd("start", cid, check=True)
        # until the trap is installed pid 1 ignores TERM: resend until it exits
        status = None
        deadline = time.time() + 20
        while status is None and time.time() < deadline:
            rt.cmd("kill", cid, "TERM")
            time.sleep(0.1)
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
        assert status == 42
    finally:
        set_subreaper(False)
    # --all reaches every process of the cgroup
    c2 = rt.new_id()
    B.make_bundle(str(tmp_path / "b2"), ["/bin/sleep", "1000"])
    rt.create(c2, str(tmp_path / "b2"))
    rt.cmd("start", c2, check=True)
    rt.cmd("exec", "-d", c2, "/bin/sleep", "999", check=True)
    p = rt.cmd("ps", "--format", "json", c2)
    pids = json.loads(p.stdout)
    assert len(pids) == 2
    rt.cmd("kill", "--all", c2, "KILL", check=True)
    assert rt.wait_status(c2, "stopped")
    rt.cmd("delete", c2, check=True)


def test_pause_resume(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    rt.cmd("pause", cid, check=True)
    assert rt.state(cid)["status"] == "paused"
    pid = rt.state(cid)["pid"]
    with open("/proc/%d/cgroup" % pid) as f:
        fz = [l.split(":", 2)[2].strip() for l in f if ":freezer:" in l][0]
    with open("/sys/fs/cgroup/freezer%s/freezer.state" % fz) as f:
        assert f.read().strip() == "FROZEN"
    p = rt.cmd("delete", cid)
    assert p.returncode == 1
    rt.cmd("resume", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    p = rt.cmd("resume", cid)
    assert p.returncode == 1
    rt.cmd("delete", "--force", cid, check=True)


def test_list(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    ids = [rt.new_id() for _ in range(2)]
    for cid in ids:
        rt.create(cid, bdir)
    rt.cmd("start", ids[0], check=True)
    p = rt.cmd("list", "--format", "json", check=True)
    got = {c["id"]: c["status"] for c in json.loads(p.stdout) or []}
    assert got == {ids[0]: "running", ids[1]: "created"}
    p = rt.cmd("list", "-q", check=True)
    assert sorted(p.stdout.split()) == sorted(ids)
    p = rt.cmd("list", check=True)
    assert p.stdout.startswith("ID")
    for cid in ids:
        rt.cmd("delete", "--force", cid, check=True)


def test_version_and_features(rt):
    p = rt.cmd("--version", check=True)
    assert "version" in p.stdout and "spec" in p.stdout
    if not is_hull(rt):
        return
    p = rt.cmd("features", check=True)
    f = json.loads(p.stdout)
    assert f["ociVersionMax"].startswith("1.1")
    assert "user" in f["linux"]["namespaces"] and "time" in f["linux"]["namespaces"]
    assert "SCMP_ACT_ERRNO" in f["linux"]["seccomp"]["actions"]
    assert "rbind" in f["mountOptions"]


def test_log_json(rt, tmp_path):
    log = str(tmp_path / "log.json")
    p = rt.cmd("--log", log, "--log-format", "json", "state", "nope-id")
    assert p.returncode == 1
    with open(log) as f:
        entries = [json.loads(l) for l in f if l.strip()]
    assert entries and entries[-1]["level"] == "error"
    assert "does not exist" in entries[-1]["msg"]


def _recv_fd(conn):
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    return msg, fds[0]


def _run_on_console(rt, bdir, until=b"done"):
    """Creates and starts the bundle with a --console-socket; returns (pty name, output read
    from the pty master until `until` or EOF)."""
    sockdir = tempfile.mkdtemp(prefix="hc", dir="/tmp")
    path = os.path.join(sockdir, "s")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = {}

    def accept():
        conn, _ = srv.accept()
        got["name"], got["fd"] = _recv_fd(conn)
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    cid = rt.new_id()
    try:
        rt.create(cid, bdir, "--console-socket", path)
        t.join(10)
        assert "fd" in got
        rt.cmd("start", cid, check=True)
        out = b""
        deadline = time.time() + 10
        while until not in out and time.time() < deadline:
            try:
                chunk = os.read(got["fd"], 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return got["name"], out
    finally:
        srv.close()
        if "fd" in got:
            os.close(got["fd"])
        rt.cmd("delete", "--force", cid)
        shutil.rmtree(sockdir, ignore_errors=True)


def test_console_socket(both, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", "tty; stty size; echo done"],
                  process={"terminal": True})
    _, out = _run_on_console(both, bdir)
    assert b"/dev/pts/0" in out, out
    assert b"done" in out


def test_terminal_without_console_socket_fails(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"], process={"terminal": True})
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1
    assert rt.status(cid) is None


def test_exec_tty(both, tmp_path):
    rt = both
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    sockdir = tempfile.mkdtemp(prefix="hc", dir="/tmp")
    path = os.path.join(sockdir, "s")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = {}

    def accept():
        conn, _ = srv.accept()
        got["name"], got["fd"] = _recv_fd(conn)
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    try:
        p = rt.cmd("exec", "--tty", "--detach", "--console-socket", path, cid,
                   "/bin/sh", "-c", "tty; echo exec-done; sleep 1")
        assert p.returncode == 0, p.stderr
        t.join(10)
        assert "fd" in got
        out = b""
        deadline = time.time() + 10
        while b"exec-done" not in out and time.time() < deadline:
            try:
                chunk = os.read(got["fd"], 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert b"/dev/pts/" in out and b"exec-done" in out, out
    finally:
        srv.close()
        if "fd" in got:
            os.close(got["fd"])
        rt.cmd("delete", "--force", cid)
        import shutil
        shutil.rmtree(sockdir, ignore_errors=True)


def test_console_size_applied_before_start(rt, tmp_path):
    """process.consoleSize: the pty has the size before the process runs (exec -t from
    kubectl asks for it), so the first `stty size` already sees it."""
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", "stty size; echo done"],
                  process={"terminal": True, "consoleSize": {"height": 33, "width": 77}})
    _, out = _run_on_console(rt, bdir)
    assert b"33 77" in out, out
