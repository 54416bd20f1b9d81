"""hull-oci cgroups on this host (cgroup v1 controllers, hybrid layout): limits read back on
the host and from inside, cgroupsPath forms, update, pids enforcement, OOM reporting, cgroup
mount, cleanup.  cgroup v2 logic is unit-tested on fixture trees (tests/unit/test_oci_cgroup.c)
because this kernel has only v1 controllers."""
import json
import os
import time

import pytest

import bundle as B
from oci_helpers import (cgroup_exists_anywhere, is_hull, make_rt, self_cgroup,
                              set_subreaper, spec_with, wait_pid)

CG = "/sys/fs/cgroup"


@pytest.fixture
def rt(request, tmp_path):
    return make_rt(request, tmp_path)


def cgpath():
    return "/hulltest-%s" % os.urandom(5).hex()


def read(ctrl, rel, f):
    with open(os.path.join(CG, ctrl, rel.lstrip("/"), f)) as fh:
        return fh.read().strip()


RESOURCES = {
    "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20, "swappiness": 10},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 64},
    "blockIO": {"weight": 300},
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
}


def test_resources_v1_read_back(rt, tmp_path):
    cg = cgpath()
    rt.cgroups.append(cg)
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"], linux={"cgroupsPath": cg})
    res = json.loads(json.dumps(RESOURCES))
    if not os.path.exists(os.path.join(CG, "blkio", "blkio.weight")):
        del res["blockIO"]
    spec_with(bdir, lambda s: s["linux"].update(resources=res))
    cid = rt.new_id()
    rt.create(cid, bdir)
    assert read("memory", cg, "memory.limit_in_bytes") == str(64 << 20)
    assert read("memory", cg, "memory.soft_limit_in_bytes") == str(32 << 20)
    if os.path.exists(os.path.join(CG, "memory", cg.lstrip("/"), "memory.memsw.limit_in_bytes")):
        assert read("memory", cg, "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert read("memory", cg, "memory.swappiness") == "10"
    assert read("cpu", cg, "cpu.shares") == "512"
    assert read("cpu", cg, "cpu.cfs_quota_us") == "50000"
    assert read("cpu", cg, "cpu.cfs_period_us") == "100000"
    assert read("cpuset", cg, "cpuset.cpus") == "0"
    assert read("pids", cg, "pids.max") == "64"
    if "blockIO" in res:
        assert read("blkio", cg, "blkio.weight") == "300"
    devs = read("devices", cg, "devices.list").splitlines()
    assert "c 1:3 rwm" in devs and "a *:* rwm" not in devs
    # the init is in every hierarchy's cgroup
    pid = rt.state(cid)["pid"]
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            if ctrls in ("cpu", "memory", "pids", "freezer", "devices", "cpuset", "blkio"):
                assert path == cg, line
    if is_hull(rt):
        st = rt.state(cid)
        assert st["cgroupPaths"]["memory"] == os.path.join(CG, "memory", cg.lstrip("/"))
    rt.cmd("delete", "--force", cid, check=True)
    assert not cgroup_exists_anywhere(cg), "cgroup left behind"


def test_relative_cgroups_path(rt, tmp_path):
    rel = "hulltest-rel-%s" % os.urandom(4).hex()
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/cat", "/proc/self/cgroup"], linux={"cgroupsPath": rel})
    r = rt.run(bdir, None)
    assert r.status == 0, r
    got = {l.split(":", 2)[1]: l.split(":", 2)[2] for l in r.out.strip().splitlines()}
    # relative to the caller's own cgroup in each hierarchy
    assert got["memory"] == os.path.join(self_cgroup("memory"), rel)
    assert got["pids"] == os.path.join(self_cgroup("pids"), rel)


def test_limits_seen_inside_with_cgroup_mount(rt, tmp_path):
    cg = cgpath()
    rt.cgroups.append(cg)
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/"
                         "memory.limit_in_bytes; ls /sys/fs/cgroup; "
                         "echo 1 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo RW; true"],
                  linux={"cgroupsPath": cg})
    def mut(s):
        s["linux"]["resources"] = {"pids": {"limit": 42}, "memory": {"limit": 50 << 20}}
        s["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                            "source": "cgroup", "options": ["nosuid", "noexec", "nodev",
                                                            "relatime", "ro"]})
    spec_with(bdir, mut)
    r = rt.run(bdir, None)
    assert r.status == 0, r
    lines = r.out.split()
    assert lines[0] == "42" and lines[1] == str(50 << 20)
    for c in ("memory", "pids", "cpu", "freezer"):
        assert c in lines
    assert "RW" not in r.out


def test_update_live(rt, tmp_path):
    cg = cgpath()
    rt.cgroups.append(cg)
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"], linux={"cgroupsPath": cg})
    spec_with(bdir, lambda s: s["linux"].update(resources={
        "memory": {"limit": 64 << 20}, "pids": {"limit": 64}, "cpu": {"shares": 256}}))
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    rfile = str(tmp_path / "r.json")
    with open(rfile, "w") as f:
        json.dump({"memory": {"limit": 128 << 20}, "pids": {"limit": 10},
                   "cpu": {"shares": 1024, "quota": 20000, "period": 100000}}, f)
    rt.cmd("update", "--resources", rfile, cid, check=True)
    assert read("memory", cg, "memory.limit_in_bytes") == str(128 << 20)
    assert read("pids", cg, "pids.max") == "10"
    assert read("cpu", cg, "cpu.shares") == "1024"
    assert read("cpu", cg, "cpu.cfs_quota_us") == "20000"
    rt.cmd("delete", "--force", cid, check=True)
    p = rt.cmd("update", "--resources", rfile, cid)
    assert p.returncode == 1


def test_update_device_rules_and_bad_input(rt, tmp_path):
    """update's input goes through config.json's typed parser: device rules apply to the live
    container's devices cgroup, and input of the wrong type is refused naming the member (it
    used to read as "not given") with nothing changed."""
    if not is_hull(rt):
        pytest.skip("hull messages")
    if not os.path.exists(os.path.join(CG, "devices")):
        pytest.skip("no v1 devices hierarchy")
    cg = cgpath()
    rt.cgroups.append(cg)
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"], linux={"cgroupsPath": cg})
    spec_with(bdir, lambda s: s["linux"].update(resources={
        "pids": {"limit": 64}, "devices": [{"allow": False, "access": "rwm"}]}))
    cid = rt.new_id()
    rt.create(cid, bdir)
    rt.cmd("start", cid, check=True)
    assert "c 1:3 rwm" in read("devices", cg, "devices.list").splitlines()
    rfile = str(tmp_path / "r.json")
    with open(rfile, "w") as f:
        json.dump({"devices": [{"allow": False, "type": "c", "major": 1, "minor": 3,
                                "access": "rwm"}]}, f)
    rt.cmd("update", "--resources", rfile, cid, check=True)
    assert "c 1:3 rwm" not in read("devices", cg, "devices.list").splitlines()
    for bad, member in (({"pids": {"limit": "10"}}, "linux.resources.pids.limit"),
                        ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
                        ({"devices": [{"type": "x"}]}, "linux.resources.devices[0]")):
        with open(rfile, "w") as f:
            json.dump(bad, f)
        p = rt.cmd("update", "--resources", rfile, cid)
        assert p.returncode == 1 and member in p.stderr, (bad, p.stderr)
    assert read("pids", cg, "pids.max") == "64"
    rt.cmd("delete", "--force", cid, check=True)


def test_bad_resources_refused_at_create(rt, tmp_path):
    """linux.resources is checked completely when config.json is loaded: a member of the wrong
    type or a bad device rule fails create with its name, before any cgroup is made."""
    if not is_hull(rt):
        pytest.skip("hull messages")
    for res, member in (({"memory": {"limit": "64M"}}, "linux.resources.memory.limit"),
                        ({"cpu": {"shares": -1}}, "linux.resources.cpu.shares"),
                        ({"devices": [{"allow": True, "type": "c", "access": "rwx"}]},
                         "invalid access `rwx`")):
        cg = cgpath()
        rt.cgroups.append(cg)
        bdir = str(tmp_path / ("b" + os.urandom(3).hex()))
        B.make_bundle(bdir, ["/bin/true"], linux={"cgroupsPath": cg, "resources": res})
        cid = rt.new_id()
        p = rt.cmd("create", "--bundle", bdir, cid)
        assert p.returncode == 1 and member in p.stderr, (res, p.stderr)
        assert not cgroup_exists_anywhere(cg)
        assert rt.status(cid) is None


def test_pids_limit_enforced(rt, tmp_path):
    bdir = str(tmp_path / "b")
    cg = cgpath()
    rt.cgroups.append(cg)
    B.make_bundle(bdir, ["/bin/sh", "-c",
                         "n=0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & "
                         "[ $? -eq 0 ] && n=$((n+1)); done; echo started=$n; kill $(jobs -p) "
                         "2>/dev/null; true"],
                  linux={"cgroupsPath": cg, "resources": {"pids": {"limit": 4}}})
    r = rt.run(bdir, None)
    assert "can't fork" in r.err or "Resource temporarily unavailable" in r.err, r


def test_oom_kill_reported(rt, tmp_path):
    """A container killed by the memory cgroup shows oomKilled in `state` (how hull-conmon
    learns the CRI reason OOMKilled)."""
    if not is_hull(rt):
        pytest.skip("oomKilled is a hull-oci state extension")
    cg = cgpath()
    rt.cgroups.append(cg)
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                  linux={"cgroupsPath": cg,
                         "resources": {"memory": {"limit": 16 << 20, "swap": 16 << 20}}})
    cid = rt.new_id()
    set_subreaper(True)
    try:
        rt.create(cid, bdir)
        pid = rt.state(cid)["pid"]
        assert rt.state(cid)["oomKilled"] is False
        rt.cmd("start", cid, check=True)
        status = wait_pid(pid)
    finally:
        set_subreaper(False)
    assert status == 128 + 9
    st = rt.state(cid)
    assert st["status"] == "stopped"
    assert st["oomKilled"] is True and st["oomKillCount"] >= 1
    rt.cmd("delete", cid, check=True)
    assert not cgroup_exists_anywhere(cg)


def test_unified_resources_rejected_on_v1(rt, tmp_path):
    if not is_hull(rt):
        pytest.skip("hull message")
    with open("/proc/self/mountinfo") as f:
        if " /sys/fs/cgroup cgroup2 " in f.read():
            pytest.skip("pure v2 host")
    cg = cgpath()
    rt.cgroups.append(cg)
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/true"], linux={"cgroupsPath": cg, "resources": {
        "unified": {"memory.high": "1000000"}}})
    cid = rt.new_id()
    p = rt.cmd("create", "--bundle", bdir, cid)
    assert p.returncode == 1 and "unified" in p.stderr
    assert not cgroup_exists_anywhere(cg)
    assert rt.status(cid) is None


def test_cgroup_cleanup_after_exit(rt, tmp_path):
    cg = cgpath()
    rt.cgroups.append(cg)
    r = rt.run(str(tmp_path / "b"), ["/bin/true"], linux={"cgroupsPath": cg})
    assert r.status == 0
    assert not cgroup_exists_anywhere(cg)
