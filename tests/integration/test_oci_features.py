"""hull-oci features seen from inside real containers: namespaces, rootfs and mounts, devices,
hostname, sysctls, rlimits, oomScoreAdj.  RUNTIME=runc runs the same checks against runc."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import bundle as B
from cri import wait_for
from oci_helpers import is_hull, make_rt, shared_dir, spec_with  # noqa: F401  (shared_dir: fixture)


@pytest.fixture
def rt(request, tmp_path):
    return make_rt(request, tmp_path)


def mountinfo_line(out, mountpoint):
    for line in out.splitlines():
        f = line.split()
        if len(f) > 4 and f[4] == mountpoint:
            return line
    return None


def test_hostname_domainname_pidns(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("runc 1.1.5: domainname is not supported")
    r = rt.run(str(tmp_path / "b"), ["/bin/sh", "-c",
                                     "hostname; cat /proc/sys/kernel/domainname; echo $$"],
               hostname="box1", domainname="example.org")
    assert r.status == 0, r
    assert r.out.split() == ["box1", "example.org", "1"]


def test_hostname_needs_uts_namespace(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"])
    spec_with(bdir, lambda s: s["linux"].update(
        namespaces=[n for n in s["linux"]["namespaces"] if n["type"] != "uts"]))
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1
    assert rt.status(cid) is None


def test_user_namespace_mappings(rt, tmp_path):
    # the mapped root (host uid 100000) must be able to reach the rootfs: pytest's tmp dirs
    # are 0700, so use a world-traversable directory
    top = tempfile.mkdtemp(prefix="hull-userns-", dir="/tmp")
    os.chmod(top, 0o755)
    try:
        _userns(rt, os.path.join(top, "b"))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _userns(rt, bdir):
    B.make_bundle(bdir, ["/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"])
    # the mapped root must be able to read the rootfs: make it world-readable (it is)
    def mut(s):
        s["linux"]["namespaces"].append({"type": "user"})
        s["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        s["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec_with(bdir, mut)
    r = rt.run(bdir, None)
    assert r.status == 0, r
    lines = [l.split() for l in r.out.strip().splitlines()]
    assert lines[0] == ["0", "100000", "65536"]
    assert lines[1] == ["0", "100000", "65536"]
    assert lines[2] == ["0"]
    # exec joins the container's user namespace too
    spec_with(bdir, lambda s: s["process"].update(args=["/bin/sleep", "1000"]))
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    p = rt.cmd("exec", cid, "/bin/sh", "-c", "cat /proc/self/uid_map; id -u")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "100000", "65536", "0"]
    rt.cmd("delete", "--force", cid, check=True)


def test_join_network_namespace_by_path(rt, tmp_path):
    b1 = str(tmp_path / "b1")
    B.make_bundle(b1, ["/bin/sleep", "1000"])
    c1 = rt.new_id()
    rt.create(c1, b1)
    rt.cmd("start", c1, check=True)
    pid = rt.state(c1)["pid"]
    netns = "/proc/%d/ns/net" % pid
    want = os.readlink(netns)
    b2 = str(tmp_path / "b2")
    B.make_bundle(b2, ["/bin/sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc"])
    def mut(s):
        for n in s["linux"]["namespaces"]:
            if n["type"] in ("network", "ipc"):
                n["path"] = "/proc/%d/ns/%s" % (pid, "net" if n["type"] == "network" else "ipc")
    spec_with(b2, mut)
    r = rt.run(b2, None)
    assert r.status == 0, r
    assert r.out.split() == [want, os.readlink("/proc/%d/ns/ipc" % pid)]
    rt.cmd("delete", "--force", c1, check=True)


def test_cgroup_namespace(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/self/cgroup"])
    spec_with(bdir, lambda s: s["linux"]["namespaces"].append({"type": "cgroup"}))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    for line in r.out.strip().splitlines():
        assert line.split(":", 2)[2] == "/", line


def test_time_namespace_offsets(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("runc 1.1.5: no time namespace support")
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("no time namespaces")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/uptime"])
    def mut(s):
        s["linux"]["namespaces"].append({"type": "time"})
        s["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}
    spec_with(bdir, mut)
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    r = rt.run(bdir, None)
    if not is_hull(rt) and r.status != 0:
        pytest.skip("runc 1.1 has no time namespace support")
    assert r.status == 0, r
    assert float(r.out.split()[0]) > host + 86400 * 364


def test_mounts_and_flags(rt, tmp_path):
    bdir = str(tmp_path / "b")
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("data\n")
    (src / "sub").mkdir()
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "cat /mnt/ro/file; touch /mnt/ro/x 2>/dev/null && echo WROTE; "
                         "cat /proc/self/mountinfo"])
    def mut(s):
        s["mounts"] += [
            {"destination": "/mnt/ro", "type": "bind", "source": str(src),
             "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]},
            {"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "size=1m", "mode=700"]},
            {"destination": "/deep/new/dir", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/etc/hostfile", "type": "bind", "source": str(src / "file"),
             "options": ["bind", "ro"]},
            {"destination": "/mnt/shared", "type": "bind", "source": str(src / "sub"),
             "options": ["rbind", "rshared"]},
            {"destination": "/mnt/private", "type": "bind", "source": str(src / "sub"),
             "options": ["rbind", "rprivate"]},
        ]
    spec_with(bdir, mut)
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert r.out.startswith("data\n")
    assert "WROTE" not in r.out
    ro = mountinfo_line(r.out, "/mnt/ro")
    assert ro, r.out
    opts = ro.split()[5].split(",")
    for o in ("ro", "nosuid", "nodev", "noexec"):
        assert o in opts, ro
    tmp = mountinfo_line(r.out, "/mnt/tmp")
    assert "tmpfs" in tmp and "nosuid" in tmp.split()[5] and "size=1024k" in tmp, tmp
    assert mountinfo_line(r.out, "/deep/new/dir")
    assert "ro" in mountinfo_line(r.out, "/etc/hostfile").split()[5].split(",")
    assert "shared:" in mountinfo_line(r.out, "/mnt/shared")
    assert "shared:" not in mountinfo_line(r.out, "/mnt/private")
    # default spec mounts
    assert "ro" in mountinfo_line(r.out, "/sys").split()[5].split(",")
    assert mountinfo_line(r.out, "/dev/pts") and mountinfo_line(r.out, "/dev/mqueue")
    # nothing leaked into the host mount table
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def test_readonly_root_masked_and_readonly_paths(rt, tmp_path):
    bdir = str(tmp_path / "b")
    masked = [p for p in B.BASE_SPEC["linux"]["maskedPaths"] if os.path.isfile(p)][0]
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "touch /x 2>/dev/null && echo ROOTRW; "
                         "wc -c < %s; ls /sys/firmware | wc -l; " % masked +
                         "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo SYSRW; "
                         "cat /proc/self/mountinfo"],
                  root={"path": "rootfs", "readonly": True})
    r = rt.run(bdir, None)
    assert r.status == 0, r
    lines = r.out.splitlines()
    assert "ROOTRW" not in r.out and "SYSRW" not in r.out
    assert lines[0].strip() == "0"  # a /proc file masked by /dev/null
    assert lines[1].strip() == "0"  # /sys/firmware masked by an empty tmpfs
    assert "ro" in mountinfo_line(r.out, "/").split()[5].split(",")
    assert "ro" in mountinfo_line(r.out, "/proc/sys").split()[5].split(",")


def test_no_pivot(rt, tmp_path):
    r = rt.run(str(tmp_path / "b"), ["/bin/sh", "-c", "ls /; cat /proc/self/mountinfo"],
               create_args=("--no-pivot",))
    assert r.status == 0, r
    assert "bin" in r.out.split()
    assert str(tmp_path) not in r.out.split("\n", 20)[-1] or True


def test_rootfs_propagation_shared(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("runc 1.1.5: rootfsPropagation shared is not kept on /")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/self/mountinfo"])
    spec_with(bdir, lambda s: s["linux"].update(rootfsPropagation="rshared"))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    root = mountinfo_line(r.out, "/")
    assert "shared:" in root, root


def test_devices(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "ls -l /dev/null /dev/zero /dev/fuse /dev/sub/mydev; "
                         "readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo NULLOK"])
    def mut(s):
        s["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o620,
             "uid": 0, "gid": 0},
            {"path": "/dev/sub/mydev", "type": "c", "major": 1, "minor": 5},
        ]
    spec_with(bdir, mut)
    r = rt.run(bdir, None)
    assert r.status == 0, r
    out = r.out
    assert "crw-rw-rw-" in [l.split()[0] for l in out.splitlines() if l.endswith("/dev/null")]
    fuse = [l for l in out.splitlines() if l.endswith("/dev/fuse")][0]
    assert fuse.startswith("crw--w----") and "10," in fuse and "229" in fuse, fuse
    assert any(l.endswith("/dev/sub/mydev") and "1," in l for l in out.splitlines())
    assert "/proc/self/fd" in out and "pts/ptmx" in out
    assert "NULLOK" in out


def test_sysctl(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni"])
    spec_with(bdir, lambda s: s["linux"].update(
        sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}))
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert r.out.split() == ["1", "1234"]


def test_sysctl_not_namespaced_rejected(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("runc 1.1.5: accepts multi-line sysctl values")
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"])
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    for sysctl in ({"kernel.core_pattern": "|/tmp/evil"},
                   {"kernel.shm_rmid_forced": "1\nkernel.core_pattern=|/tmp/evil"}):
        spec_with(bdir, lambda s: s["linux"].update(sysctl=sysctl))
        cid = rt.new_id()
        p = rt.cmd("create", "--bundle", bdir, cid)
        assert p.returncode == 1, sysctl
        assert rt.status(cid) is None
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before


def test_rlimits_and_oom_score(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj"])
    def mut(s):
        s["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 333, "hard": 444}]
        s["process"]["oomScoreAdj"] = 777
    spec_with(bdir, mut)
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert r.out.split() == ["333", "444", "777"]


def test_oom_score_lowering_tolerated(rt, tmp_path):
    """Without CAP_SYS_RESOURCE lowering oom_score_adj gives EPERM: logged, not fatal."""
    with open("/proc/self/oom_score_adj") as f:
        cur = int(f.read())
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/self/oom_score_adj"])
    spec_with(bdir, lambda s: s["process"].update(oomScoreAdj=max(cur - 500, -1000)))
    if not is_hull(rt):
        pytest.skip("runc 1.1.5 fails hard on EPERM here")
    r = rt.run(bdir, None)
    assert r.status == 0, r


def test_env_cwd_and_args(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["sh", "-c", "pwd; echo $FOO; echo \"$1\"", "arg0", "two words"])
    def mut(s):
        s["process"]["env"].append("FOO=bar baz")
        s["process"]["cwd"] = "/var/newdir"
    spec_with(bdir, mut)
    r = rt.run(bdir, None)
    assert r.status == 0, r
    assert r.out.splitlines() == ["/var/newdir", "bar baz", "two words"]


def test_missing_executable(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/no/such/binary"])
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1
    assert "/no/such/binary" in p.stderr or "no such file" in p.stderr.lower()
    assert rt.status(cid) is None


def test_overlay_rootfs(rt, tmp_path):
    """The rootfs is an overlay mount (as hulld builds from image layers): writes land in the
    upper dir, the lower stays untouched."""
    lower = str(tmp_path / "lower")
    B.make_rootfs(lower)
    upper, work, merged = (str(tmp_path / n) for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        os.makedirs(d)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work), merged],
                   check=True)
    try:
        bdir = str(tmp_path / "b")
        B.make_bundle(bdir, ["/bin/sh", "-c", "echo hi > /written; grep ' / ' /proc/self/mountinfo"],
                      rootfs=merged)
        r = rt.run(bdir, None)
        assert r.status == 0, r
        assert "overlay" in r.out
        assert os.path.exists(os.path.join(upper, "written"))
        assert not os.path.exists(os.path.join(lower, "written"))
    finally:
        subprocess.run(["umount", "-l", merged])


def test_join_pid_namespace_by_path(rt, tmp_path):
    """Pods with a shared PID namespace: the second container joins the first's."""
    b1 = str(tmp_path / "b1")
    B.make_bundle(b1, ["/bin/sleep", "1000"])
    c1 = rt.new_id()
    rt.create(c1, b1)
    rt.cmd("start", c1, check=True)
    pid = rt.state(c1)["pid"]
    b2 = str(tmp_path / "b2")
    B.make_bundle(b2, ["/bin/sh", "-c", "echo $$; cat /proc/1/cmdline; echo"])
    def mut(s):
        for n in s["linux"]["namespaces"]:
            if n["type"] == "pid":
                n["path"] = "/proc/%d/ns/pid" % pid
    spec_with(b2, mut)
    r = rt.run(b2, None)
    assert r.status == 0, r
    lines = r.out.splitlines()
    assert int(lines[0]) > 1
    assert lines[1].startswith("/bin/sleep")
    rt.cmd("delete", "--force", c1, check=True)


def test_bidirectional_mount_propagation(rt, tmp_path, shared_dir):
    """An rshared bind of a shared host mount (CRI PROPAGATION_BIDIRECTIONAL, which also sets
    rootfsPropagation rshared): a host mount made after create appears in the container, and
    a mount the container makes under it appears on the host."""
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "cat /mnt/bidi/fromhost/marker || echo NOHOST; "
                         "mount -t tmpfs -o size=1m ctr /mnt/bidi/fromctr && "
                         "echo ctrdata > /mnt/bidi/fromctr/f && echo MOUNTED; echo DONE; "
                         "sleep 1000"])
    caps = B.DEFAULT_CAPS + ["CAP_SYS_ADMIN"]
    def mut(s):
        s["mounts"].append({"destination": "/mnt/bidi", "type": "bind", "source": shared_dir,
                            "options": ["rbind", "rshared"]})
        s["linux"]["rootfsPropagation"] = "rshared"
        s["process"]["capabilities"] = {k: list(caps) for k in
                                        ("bounding", "effective", "permitted")}
    spec_with(bdir, mut)
    cid = rt.new_id()
    outp = str(tmp_path / "out")
    with open(outp, "wb") as o:
        rt.create(cid, bdir, stdout=o, stderr=o)
    # host -> container: mounted after the container's mount namespace exists
    fromhost = os.path.join(shared_dir, "fromhost")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hostside", fromhost], check=True)
    with open(os.path.join(fromhost, "marker"), "w") as f:
        f.write("hostdata\n")
    rt.cmd("start", cid, check=True)
    fromctr = os.path.join(shared_dir, "fromctr")

    def output():
        with open(outp) as f:
            return f.read()

    out = wait_for(lambda: (lambda o: o if "DONE" in o else None)(output()), timeout=20,
                   what="the container's script")
    assert "hostdata" in out, out
    assert "MOUNTED" in out, out
    # container -> host
    assert os.path.ismount(fromctr), "the container's mount did not reach the host"
    with open(os.path.join(fromctr, "f")) as f:
        assert f.read() == "ctrdata\n"
    rt.cmd("delete", "--force", cid, check=True)
