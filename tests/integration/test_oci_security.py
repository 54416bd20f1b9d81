"""hull-oci security: capabilities, no_new_privs, users and groups, seccomp, and one regression
test per SECURITY.md class that applies to an OCI runtime."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

import bundle as B
from oci_helpers import host_objects, is_hull, make_rt, spec_with

CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
        "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21}


@pytest.fixture
def rt(request, tmp_path):
    return make_rt(request, tmp_path)


def status_fields(out):
    d = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            d[k.strip()] = v.strip()
    return d


def mask(names):
    m = 0
    for n in names:
        m |= 1 << CAPS[n]
    return m


def test_capabilities_all_sets(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/self/status"])
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    spec_with(bdir, lambda s: s["process"].update(capabilities=caps, noNewPrivileges=False))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    st = status_fields(r.out)
    assert int(st["CapBnd"], 16) == mask(caps["bounding"])
    # execve as root: effective = permitted = (P inheritable & F) | bounding-limited ... the
    # kernel gives uid 0 its permitted set back from the bounding set; check what runc checks
    assert int(st["CapInh"], 16) == mask(caps["inheritable"])
    assert int(st["CapAmb"], 16) == mask(caps["ambient"])
    assert st["NoNewPrivs"] == "0"


def test_capabilities_non_root_ambient(rt, tmp_path):
    """A non-root process keeps exactly the ambient capabilities across exec."""
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/self/status"])
    caps = {k: ["CAP_NET_BIND_SERVICE", "CAP_KILL"] for k in
            ("bounding", "effective", "permitted", "inheritable")}
    caps["ambient"] = ["CAP_NET_BIND_SERVICE"]
    spec_with(bdir, lambda s: s["process"].update(capabilities=caps,
                                                  user={"uid": 1000, "gid": 1000}))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    st = status_fields(r.out)
    assert int(st["CapEff"], 16) == mask(["CAP_NET_BIND_SERVICE"])
    assert int(st["CapPrm"], 16) == mask(["CAP_NET_BIND_SERVICE"])
    assert int(st["CapAmb"], 16) == mask(["CAP_NET_BIND_SERVICE"])
    assert st["Uid"].split()[0] == "1000"


def test_default_caps_and_no_new_privs(rt, tmp_path):
    r = rt.run(str(tmp_path / "b"), ["/bin/cat", "/proc/self/status"])
    assert r.status == 0, r
    st = status_fields(r.out)
    want = 0
    for name in B.DEFAULT_CAPS:
        want |= 1 << {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FSETID": 4, "CAP_FOWNER": 3,
                      "CAP_MKNOD": 27, "CAP_NET_RAW": 13, "CAP_SETGID": 6, "CAP_SETUID": 7,
                      "CAP_SETFCAP": 31, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
                      "CAP_SYS_CHROOT": 18, "CAP_KILL": 5, "CAP_AUDIT_WRITE": 29}[name]
    assert int(st["CapEff"], 16) == want
    assert int(st["CapBnd"], 16) == want
    assert st["NoNewPrivs"] == "1"


def test_user_groups_umask(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", "id -u; id -g; grep Groups /proc/self/status; umask"])
    spec_with(bdir, lambda s: s["process"].update(
        user={"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 0o27}))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1000"
    groups = set(lines[2].split()[1:])
    assert {"2000", "3000"} <= groups
    assert lines[3] == "0027"


def test_primary_gid_in_supplementary_groups(rt, tmp_path):
    """SECURITY.md uid/gid arithmetic (CVE-2023-25173): the primary gid is always in the
    supplementary groups, so a file readable by that group stays readable after a newgrp-like
    drop of the primary group."""
    if not is_hull(rt):
        pytest.skip("runc 1.1.5 does not add the primary gid (the CVE's subject)")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/grep", "Groups", "/proc/self/status"])
    spec_with(bdir, lambda s: s["process"].update(
        user={"uid": 1000, "gid": 1234, "additionalGids": [2000]}))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert set(r.out.split()[1:]) == {"1234", "2000"}


@pytest.mark.parametrize("user", [{"uid": 4294967296, "gid": 0}, {"uid": -1, "gid": 0},
                                  {"uid": 0, "gid": 4294967296},
                                  {"uid": 0, "gid": 0, "additionalGids": [4294967296]}])
def test_uid_gid_out_of_range_rejected(rt, tmp_path, user):
    """SECURITY.md uid/gid arithmetic (containerd CVE-2024-40635): ids above uint32 must not
    wrap to 0 (root)."""
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/id"])
    spec_with(bdir, lambda s: s["process"].update(user=user))
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1
    assert rt.status(cid) is None
    assert not os.path.exists(os.path.join(rt.root, cid))


def seccomp_profile(syscalls, default="SCMP_ACT_ALLOW"):
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": syscalls}


def test_seccomp_errno(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "grep -E '^Seccomp' /proc/self/status; mkdir /tmp/x; echo rc=$?; "
                         "touch /tmp/f; chmod 600 /tmp/f; echo chmod=$?"])
    prof = seccomp_profile([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["chmod", "fchmodat", "fchmod"], "action": "SCMP_ACT_ERRNO"},
    ])
    spec_with(bdir, lambda s: s["linux"].update(seccomp=prof))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert "Seccomp:\t2" in r.out
    assert "rc=1" in r.out and "Permission denied" in r.err  # errnoRet 13 = EACCES
    assert "chmod=1" in r.out and "Operation not permitted" in r.err  # default EPERM


def test_seccomp_argument_conditions(rt, tmp_path):
    bdir = str(tmp_path / "b")
    # kill(pid, 0) is denied, kill(pid, SIGCONT) is allowed
    B.make_bundle(bdir, ["/bin/sh", "-c", "kill -0 $$; echo zero=$?; kill -18 $$; echo cont=$?"])
    prof = seccomp_profile([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}])
    spec_with(bdir, lambda s: s["linux"].update(seccomp=prof))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert "zero=1" in r.out and "cont=0" in r.out


def test_seccomp_kill_action(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/mkdir", "/tmp/x"])
    prof = seccomp_profile([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}])
    spec_with(bdir, lambda s: s["linux"].update(seccomp=prof))
    r = rt.run(bdir, None)
    assert r.status == 128 + 31, r  # SIGSYS
    assert not os.path.exists(os.path.join(bdir, "rootfs", "tmp", "x"))


def test_seccomp_default_errno(rt, tmp_path):
    """defaultAction ERRNO with defaultErrnoRet: everything not listed fails with that errno."""
    if not is_hull(rt):
        pytest.skip("runc's init needs syscalls after loading the filter (fstatfs)")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", "echo start; mkdir /tmp/x || echo denied"])
    allowed = ["read", "write", "exit", "exit_group", "rt_sigaction", "rt_sigprocmask",
               "rt_sigreturn", "brk", "mmap", "munmap", "mprotect", "arch_prctl", "execve",
               "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "uname",
               "set_tid_address", "set_robust_list", "prlimit64", "readlink", "getcwd",
               "fcntl", "ioctl", "open", "openat", "close", "newfstatat", "fstat", "stat",
               "lstat", "dup2", "dup3", "wait4", "clone", "fork", "vfork", "access",
               "faccessat", "faccessat2", "getrandom", "rseq", "sigaltstack", "statx",
               "lseek", "pipe", "pipe2", "getdents64", "futex"]
    prof = seccomp_profile([{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
                           default="SCMP_ACT_ERRNO")
    prof["defaultErrnoRet"] = 38  # ENOSYS
    spec_with(bdir, lambda s: s["linux"].update(seccomp=prof))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert "start" in r.out and "denied" in r.out
    assert "Function not implemented" in r.err


def test_seccomp_notify_unsupported(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("hull-specific error")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"])
    prof = seccomp_profile([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}])
    spec_with(bdir, lambda s: s["linux"].update(seccomp=prof))
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1 and "NOTIFY" in p.stderr
    assert rt.status(cid) is None


def test_apparmor_selinux_ignored(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("runc errors when AppArmor is requested but not enabled")
    if os.path.exists("/sys/kernel/security/apparmor"):
        pytest.skip("AppArmor is enabled here")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"])
    spec_with(bdir, lambda s: s["process"].update(apparmorProfile="runtime/default",
                                                  selinuxLabel="system_u:system_r:c:s0"))
    r = rt.run(bdir, None)
    assert r.status == 0, r


# ---- SECURITY.md classes --------------------------------------------------------------------

def test_runtime_binary_not_writable_from_container(rt, tmp_path):
    """Class: runtime binary overwritten from inside (runc CVE-2019-5736).  A container without
    its own pid namespace sees the `exec` runtime process as its parent and tries to write to
    /proc/$PPID/exe: it only reaches a sealed memfd copy, never the binary on disk."""
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    def mut(s):
        s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "pid"]
        # the strongest attacker: it may ptrace-read the runtime process
        for k in ("bounding", "effective", "permitted"):
            s["process"]["capabilities"][k].append("CAP_SYS_PTRACE")
    spec_with(bdir, mut)
    with open(rt.binary, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    p = rt.cmd("exec", cid, "/bin/sh", "-c",
               "readlink /proc/$PPID/exe; echo pwned > /proc/$PPID/exe && echo WROTE; "
               "echo pwned >> /proc/$PPID/exe && echo APPENDED; true")
    assert p.returncode == 0, p.stderr
    assert "WROTE" not in p.stdout and "APPENDED" not in p.stdout
    if is_hull(rt):
        assert "memfd:hull-oci" in p.stdout, p
        # and from the host: the running runtime is the sealed copy
        proc = subprocess.Popen([rt.binary, "--root", rt.root, "exec", cid, "/bin/sleep", "2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 5
            exe = ""
            while time.time() < deadline and "memfd" not in exe:
                try:
                    exe = os.readlink("/proc/%d/exe" % proc.pid)
                except OSError:
                    pass
                time.sleep(0.01)
            assert "memfd:hull-oci" in exe
            with pytest.raises(OSError):
                with open("/proc/%d/exe" % proc.pid, "r+b") as f:
                    f.write(b"pwned")
        finally:
            proc.wait(10)
    with open(rt.binary, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before
    rt.cmd("delete", "--force", cid, check=True)


def test_no_fd_leaks_into_container(rt, tmp_path):
    """Class: fd leaked into the container (runc CVE-2024-21626): only stdio (and preserved
    fds) reach the process."""
    r = rt.run(str(tmp_path / "b"), ["/bin/ls", "/proc/self/fd"])
    assert r.status == 0, r
    # 0,1,2 and the directory fd ls itself opened
    assert sorted(int(x) for x in r.out.split()) == [0, 1, 2, 3]


def test_preserve_fds(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", "cat <&3"])
    rd, wr = os.pipe()
    os.write(wr, b"through fd 3\n")
    os.close(wr)
    # fd 3 may belong to pytest (output capture): keep it and put it back afterwards
    saved = None
    if rd != 3:
        try:
            saved = os.dup(3)
        except OSError:
            pass
    os.dup2(rd, 3) if rd != 3 else None
    try:
        cid = rt.new_id()
        outp = os.path.join(rt.tmp, "pfd.out")
        from oci_helpers import set_subreaper, wait_pid
        set_subreaper(True)
        try:
            with open(outp, "wb") as o:
                rt.create(cid, bdir, "--preserve-fds", "1", stdout=o, pass_fds=(3,))
            pid = rt.state(cid)["pid"]
            rt.cmd("start", cid, check=True)
            assert wait_pid(pid) == 0
        finally:
            set_subreaper(False)
        with open(outp) as f:
            assert f.read() == "through fd 3\n"
    finally:
        os.close(rd)
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        elif rd != 3:
            os.close(3)


@pytest.mark.parametrize("cwd", ["/proc/self/fd/3", "/proc/self/fd/7", "/proc/self/cwd"])
def test_cwd_must_resolve_inside_rootfs(rt, tmp_path, cwd):
    """Class: fd leak via cwd=/proc/self/fd/N (CVE-2024-21626): the cwd is resolved inside the
    rootfs without magic links, so it fails instead of landing on a host directory."""
    if not is_hull(rt):
        pytest.skip("runc 1.1.5 handles this by closing fds, not by refusing the cwd")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/pwd"])
    spec_with(bdir, lambda s: s["process"].update(cwd=cwd))
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1, p
    assert "cwd" in p.stderr
    assert rt.status(cid) is None


def test_dev_symlink_in_image_does_not_escape(rt, tmp_path):
    """Class: path joins that follow symlinks: /dev in the image is a symlink pointing at the
    host (absolute and ../ forms); /dev's tmpfs and device nodes stay inside the rootfs."""
    if not is_hull(rt):
        pytest.skip("runc 1.1.5 is affected: it creates /dev symlinks on the host")
    for target in ("%s", "../../../../../../../..%s"):
        host = tempfile.mkdtemp(prefix="hull-escape-", dir="/tmp")
        try:
            bdir = str(tmp_path / ("b" + str(len(target))))
            B.make_bundle(bdir, ["/bin/sh", "-c", "ls /dev; echo x > /dev/null && echo ok"])
            dev = os.path.join(bdir, "rootfs", "dev")
            os.rmdir(dev)
            os.symlink(target % host, dev)
            try:
                r = rt.run(bdir, None)
            except AssertionError as e:  # refusing is fine, escaping is not
                assert "create failed" in str(e)
                r = None
            assert os.listdir(host) == [], "created on the host through /dev: %s" % \
                os.listdir(host)
            assert not [l for l in open("/proc/self/mountinfo") if host in l]
            if r is not None and r.status == 0:
                assert "ok" in r.out
        finally:
            shutil.rmtree(host, ignore_errors=True)


def test_mount_destination_symlink_does_not_escape(rt, tmp_path):
    """Class: mount targets swapped for symlinks (runc CVE-2021-30465): a destination whose
    path goes through a symlink to the host is resolved inside the rootfs."""
    host = tempfile.mkdtemp(prefix="hull-escape-", dir="/tmp")
    try:
        bdir = str(tmp_path / "b")
        B.make_bundle(bdir, ["/bin/sh", "-c", "cat /proc/self/mountinfo"])
        os.symlink("../../../../../../../.." + host, os.path.join(bdir, "rootfs", "evil"))
        os.symlink(host, os.path.join(bdir, "rootfs", "evil2"))
        def mut(s):
            s["mounts"] += [
                {"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/evil2/sub2", "type": "tmpfs", "source": "tmpfs"},
            ]
        spec_with(bdir, mut)
        try:
            r = rt.run(bdir, None)
        except AssertionError as e:  # refusing is fine, escaping is not
            assert "create failed" in str(e)
            r = None
        assert os.listdir(host) == [], os.listdir(host)
        assert not [l for l in open("/proc/self/mountinfo") if host in l]
        if is_hull(rt):
            assert r is not None and r.status == 0, r
            assert os.path.isdir(os.path.join(bdir, "rootfs", host.lstrip("/"), "sub"))
    finally:
        shutil.rmtree(host, ignore_errors=True)


def test_masked_paths_need_real_dev_null(rt, tmp_path):
    """Class: masked-path sources replaced (runc CVE-2025-31133): if the container's /dev/null
    is not the null device, masking must not bind whatever it is over /proc files."""
    if not is_hull(rt):
        pytest.skip("runc 1.1.5 predates the fix")
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/keys"])
    spec_with(bdir, lambda s: s["mounts"].append(
        {"destination": "/dev/null", "type": "bind", "source": str(secret),
         "options": ["bind"]}))
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1
    assert "null" in p.stderr
    assert rt.status(cid) is None


def test_state_dir_private(rt, tmp_path):
    """Class: control sockets/state reachable from pods: the state root and container dirs
    are root-only."""
    if not is_hull(rt):
        pytest.skip("hull layout")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "100"])
    cid = rt.new_id()
    rt.create(cid, bdir)
    assert stat.S_IMODE(os.stat(rt.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(rt.root, cid)).st_mode) == 0o700
    st = json.loads(rt.cmd("state", cid, check=True).stdout)
    assert st["status"] == "created"
    rt.cmd("delete", "--force", cid, check=True)


def test_exec_process_without_capabilities_gets_container_caps(rt, tmp_path):
    """An exec'd process whose process.json has no capabilities object must not run with the
    runtime's (host root's) full set: it gets the container's."""
    if not is_hull(rt):
        pytest.skip("runc keeps its own capabilities in that case")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    pj = str(tmp_path / "p.json")
    with open(pj, "w") as f:
        json.dump({"args": ["/bin/cat", "/proc/self/status"], "cwd": "/",
                   "user": {"uid": 0, "gid": 0}}, f)
    p = rt.cmd("exec", "--process", pj, cid)
    assert p.returncode == 0, p.stderr
    st = status_fields(p.stdout)
    want = 0
    for name in B.DEFAULT_CAPS:
        want |= 1 << {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FSETID": 4, "CAP_FOWNER": 3,
                      "CAP_MKNOD": 27, "CAP_NET_RAW": 13, "CAP_SETGID": 6, "CAP_SETUID": 7,
                      "CAP_SETFCAP": 31, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
                      "CAP_SYS_CHROOT": 18, "CAP_KILL": 5, "CAP_AUDIT_WRITE": 29}[name]
    assert int(st["CapBnd"], 16) == want
    assert int(st["CapEff"], 16) == want
    rt.cmd("delete", "--force", cid, check=True)


# One line per fd of process $P (pid in the inspecting container): "N LINK DEV:INO".
FD_LIST_SCRIPT = ("cd /proc/$P/fd || exit 3; for f in *; do "
                  "echo \"$f $(readlink $f) $(stat -L -c %d:%i $f 2>/dev/null)\"; done")


def assert_no_host_fds(listing, state_root, what):
    """listing: FD_LIST_SCRIPT output.  fds 0-2 are the caller's stdio; every other fd must be
    an anonymous pipe/socket, and no fd may be a host namespace, host /proc, / or anything in
    the runtime's state directory."""
    links, devino = host_objects()
    rows = [l.split() for l in listing.splitlines() if l.strip()]
    assert rows and all(r[0].isdigit() for r in rows), listing
    for r in rows:
        fd, link = int(r[0]), r[1] if len(r) > 1 else ""
        di = r[2] if len(r) > 2 else ""
        assert link not in links, "%s: fd %d is the host's %s" % (what, fd, link)
        assert di not in devino, "%s: fd %d (%s) is a host directory" % (what, fd, link)
        assert state_root not in link, "%s: fd %d is in the state dir: %s" % (what, fd, link)
        if fd > 2:
            assert link.startswith(("pipe:[", "socket:[", "anon_inode:")), \
                "%s: fd %d is %s" % (what, fd, link)


def exec_json(path, script, caps, env=()):
    with open(path, "w") as f:
        json.dump({"args": ["/bin/sh", "-c", script], "cwd": "/", "user": {"uid": 0, "gid": 0},
                   "env": ["PATH=/bin"] + list(env),
                   "capabilities": {k: list(caps) for k in
                                    ("bounding", "effective", "permitted")}}, f)
    return path


def nspid(host_pid):
    """The pid of host_pid in its own (innermost) pid namespace."""
    with open("/proc/%d/status" % host_pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise AssertionError("no NSpid for %d" % host_pid)


def test_created_init_holds_no_host_fds(rt, tmp_path):
    """Class: host fds in a created-but-not-started container (runc CVE-2024-21626 and
    CVE-2016-9962).  In a shared-PID pod, container A is running and container B is created
    (its init waits for `start`).  From A, B's init must be non-dumpable (without
    CAP_SYS_PTRACE, /proc/<B>/fd cannot be listed), and even with CAP_SYS_PTRACE none of its
    fds may be a host object: no host /proc or / directory, no host namespace, nothing of the
    state directory (exec.fifo); beyond stdio only anonymous pipes/sockets."""
    if not is_hull(rt):
        pytest.skip("runc 1.1.5 keeps the exec fifo open while waiting")
    ptrace_caps = B.DEFAULT_CAPS + ["CAP_SYS_PTRACE"]
    b1 = str(tmp_path / "b1")
    B.make_bundle(b1, ["/bin/sleep", "1000"])
    spec_with(b1, lambda s: s["process"].update(
        capabilities={k: list(ptrace_caps) for k in ("bounding", "effective", "permitted")}))
    c1 = rt.new_id()
    rt.create(c1, b1)
    rt.cmd("start", c1, check=True)
    pid1 = rt.state(c1)["pid"]
    b2 = str(tmp_path / "b2")
    B.make_bundle(b2, ["/bin/true"])
    def mut(s):
        for n in s["linux"]["namespaces"]:
            if n["type"] == "pid":
                n["path"] = "/proc/%d/ns/pid" % pid1
    spec_with(b2, mut)
    c2 = rt.new_id()
    with open(str(tmp_path / "c2.out"), "wb") as o:
        rt.create(c2, b2, stdout=o, stderr=o)
    assert rt.status(c2) == "created"
    p2 = nspid(rt.state(c2)["pid"])
    env = ["P=%d" % p2]
    # without CAP_SYS_PTRACE: the waiting init is not dumpable, so none of its fd links (a
    # ptrace-mode access check; listing the directory is plain DAC) can be read
    r = rt.cmd("exec", "--process", exec_json(
        str(tmp_path / "np.json"),
        "for f in /proc/$P/fd/*; do echo \"${f##*/} $(readlink $f || echo DENIED)\"; done",
        B.DEFAULT_CAPS, env), c1)
    rows = [l.split() for l in r.stdout.splitlines() if l.strip()]
    assert r.returncode == 0 and rows, r.stdout + r.stderr
    assert all(row[1:] == ["DENIED"] for row in rows), r.stdout
    # with CAP_SYS_PTRACE: every fd is looked at
    r = rt.cmd("exec", "--process",
               exec_json(str(tmp_path / "p.json"), FD_LIST_SCRIPT, ptrace_caps, env), c1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_no_host_fds(r.stdout, rt.root, "created init")
    # an exec'd process keeps only its stdio
    sleeper = subprocess.Popen([rt.binary, "--root", rt.root, "exec", c1, "/bin/sleep", "30"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        listing = ""
        while time.time() < deadline:
            r = rt.cmd("exec", "--process", exec_json(
                str(tmp_path / "e.json"),
                "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = sleep ] && "
                "[ ${p#/proc/} != 1 ] && P=${p#/proc/} && (" + FD_LIST_SCRIPT + "); done; true",
                ptrace_caps), c1)
            listing = r.stdout
            if listing.strip():
                break
            time.sleep(0.1)
        assert_no_host_fds(listing, rt.root, "exec'd process")
        assert sorted(int(l.split()[0]) for l in listing.splitlines()) == [0, 1, 2], listing
    finally:
        sleeper.kill()
        sleeper.wait()
    rt.cmd("start", c2, check=True)
    rt.cmd("delete", "--force", c2, check=True)
    rt.cmd("delete", "--force", c1, check=True)
