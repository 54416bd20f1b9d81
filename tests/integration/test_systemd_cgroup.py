"""The systemd cgroup driver (cgroup_manager "systemd", hull-oci and runc --systemd-cgroup).

With systemd as PID 1 (the VM test bed's systemd mode: `make vm-systemd-test` on pure cgroup2,
`make vm-systemd-v1-test` on systemd's hybrid layout), each container runs in a transient scope
hull-<id>.scope made over D-Bus in the pod's slice, with its limits as unit properties (the
cgroup2 names, or the legacy ones systemd applies to v1 controllers: MemoryLimit, CPUShares,
BlockIOWeight, DeviceAllow) and in its cgroup files (cgroup2's, or each v1 controller's
directory of the scope); the scope goes with the container and survives a hulld restart, and
recovery stops the scopes no record owns.  Each monitor (a container's and an exec's) runs in a
scope of its own.  On a host without systemd as
PID 1 (this development machine), the driver is refused at start-up with a clear error; the
tests that need systemd say so when they skip."""
import json
import os
import re
import signal
import subprocess
import threading

import pytest

from conftest import binary, pb
import cri
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)
from registry import all_applets

CG = "/sys/fs/cgroup"
RUNC = "/usr/sbin/runc"
SYSTEMD = os.path.isdir("/run/systemd/system")
need_systemd = pytest.mark.skipif(
    not SYSTEMD, reason="needs systemd as PID 1: runs in the VM test bed (make vm-systemd-test, "
    "make vm-systemd-v1-test)")
# pure cgroup2, or v1 controllers each in its own hierarchy (systemd's hybrid or legacy layout)
V2 = os.path.exists(CG + "/cgroup.controllers")
# the v1 hierarchies a container (and a monitor's scope) must be in; perf_event, net_cls, rdma
# and misc are left out (runc 1.1 does not join misc)
V1_JOINED = ("name=systemd", "memory", "cpu", "pids", "blkio", "devices", "cpuset", "hugetlb",
             "freezer")


def cg_dir(rel, ctrl):
    """A cgroup's directory for a controller: on cgroup2 the one tree, else the v1 hierarchy
    holding ctrl ("memory", "cpu", "pids", "blkio", "devices", "cpuset", "hugetlb", "systemd",
    "unified")."""
    return CG + rel if V2 else f"{CG}/{ctrl}{rel}"


def cg_exists_anywhere(rel):
    """The hierarchies in which the cgroup rel still exists (none on a clean stop)."""
    if V2:
        return [CG] if os.path.exists(CG + rel) else []
    return [h for h in os.listdir(CG) if not os.path.islink(f"{CG}/{h}")
            and os.path.exists(f"{CG}/{h}{rel}")]


def proc_cgroups(pid):
    """/proc/PID/cgroup as {controller: path}; "" is cgroup2, each v1 line gives one entry per
    controller of its hierarchy ("cpu" and "cpuacct" for "cpu,cpuacct")."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def assert_in_cgroup(pid, cg, what, unjoined=()):
    """pid is in cgroup cg: on cgroup2 the one line, on v1 every hierarchy of V1_JOINED (less
    unjoined) and the cgroup2 of a hybrid host."""
    got = proc_cgroups(pid)
    if V2:
        assert got == {"": cg}, (what, got)
        return
    want = tuple(c for c in V1_JOINED if c not in unjoined) + (("",) if "" in got else ())
    wrong = {c: got.get(c) for c in want if got.get(c) != cg}
    assert not wrong, (what, cg, wrong, got)


def expand_slice(slice_name):
    """systemd's slice expansion: a-b-c.slice -> /a.slice/a-b.slice/a-b-c.slice"""
    stem = slice_name[:-len(".slice")]
    parts = stem.split("-")
    return "".join("/" + "-".join(parts[:i + 1]) + ".slice" for i in range(len(parts)))


def show(unit, *props):
    out = subprocess.run(["systemctl", "show", unit, "-p", ",".join(props)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def active(unit):
    return show(unit, "ActiveState")["ActiveState"] == "active"


def read(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read().strip()


# ---- without systemd (the host) ----------------------------------------------------------
@pytest.mark.skipif(SYSTEMD, reason="systemd is PID 1 here: the driver is allowed")
def test_systemd_driver_refused_without_systemd(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    for flag in (["--cgroup-manager", "systemd"], ["--cgroup-manager=systemd"],
                 ["--cgroup-driver", "systemd"]):
        p = subprocess.run([binary("hulld"), "--config", str(empty), "--listen",
                            str(tmp_path / "s.sock"), "--root", str(tmp_path / "r"),
                            "--state-dir", str(tmp_path / "st")] + flag,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, (flag, p.returncode, p.stderr)
        assert 'cgroup_manager "systemd"' in p.stderr and "systemd as PID 1" in p.stderr, p.stderr
        assert not os.path.exists(tmp_path / "s.sock")
    cfg = tmp_path / "hull.json"
    cfg.write_text('{"cgroup_manager": "systemd"}')
    p = subprocess.run([binary("hulld"), "--config", str(cfg), "--listen", str(tmp_path / "s.sock"),
                        "--root", str(tmp_path / "r"), "--state-dir", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "systemd as PID 1" in p.stderr, p.stderr
    # hull-oci: a container asked for with --systemd-cgroup is refused, nothing is left
    bundle = tmp_path / "b"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({
        "ociVersion": "1.1.0", "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"cgroupsPath": "hulltest.slice:hull:x", "namespaces": [{"type": "mount"}]}}))
    p = subprocess.run([binary("hull-oci"), "--root", str(tmp_path / "oci"), "--systemd-cgroup",
                        "create", "--bundle", str(bundle), "x"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "systemd as PID 1" in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "oci" / "x")


def test_hull_oci_loads_only_libc():
    """hull-oci starts once per container operation: it links libyajl, libseccomp and libcap
    statically and dlopens libsystemd only for the systemd driver (whose bus libraries cost
    every command about 2 ms of dynamic loading)."""
    p = subprocess.run(["readelf", "-d", binary("hull-oci")], capture_output=True, text=True,
                       timeout=30, check=True)
    needed = sorted(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout))
    allowed = {"libc.so.6", "ld-linux-x86-64.so.2", "libasan.so.8", "libubsan.so.1", "libm.so.6",
               "libgcc_s.so.1", "libstdc++.so.6"}  # the sanitizer build's runtimes
    assert needed and set(needed) <= allowed, needed


def test_cgroup_manager_values(hulld_factory, tmp_path):
    """cgroupfs is the default and RuntimeConfig says so; a bad value names the key."""
    d = hulld_factory()
    r = d.runtime.RuntimeConfig(pb.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == pb.CGROUPFS
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    p = subprocess.run([binary("hulld"), "--config", str(empty), "--cgroup-manager", "cgroupv3",
                        "--print-config"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "cgroup_manager" in p.stderr and "cgroupv3" in p.stderr


def test_hull_oci_features_report_systemd():
    p = subprocess.run([binary("hull-oci"), "features"], capture_output=True, text=True,
                       timeout=30, check=True)
    cg = json.loads(p.stdout)["linux"]["cgroup"]
    assert cg["systemd"] is True and cg["systemdUser"] is False, cg


# ---- with systemd as PID 1 ----------------------------------------------------------------
@pytest.fixture(scope="module")
def image(registry):  # noqa: F811
    return registry.push_image("sd/busybox", "1", [make_layer(busybox_entries(all_applets()))],
                               config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]})


@pytest.fixture
def sd(hulld_factory, registry, image, tmp_path):  # noqa: F811
    stem = "hulltest%s" % os.urandom(3).hex()
    extra = ["--insecure-registry", registry.host, "--cgroup-manager", "systemd",
             "--cgroup-parent", stem + ".slice"]
    if os.path.exists(RUNC):
        extra += ["--runtime", "runc=" + RUNC]
    d = hulld_factory(*extra)
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image.ref)), timeout=60)
    d.img = image
    d.stem = stem
    d.logs = tmp_path / "logs"
    yield d
    cri.remove_all_pods(d)
    subprocess.run(["systemctl", "stop", stem + ".slice"], capture_output=True)


def pod(d, name, slice_name=None, handler="", pid=None):
    lx = pb.LinuxPodSandboxConfig(cgroup_parent=slice_name or "")
    cfg = cri.pod_config(name, namespace="sd", network=pb.NODE, pid=pid,
                         log_directory=str(d.logs / name), linux=lx)
    return cri.run_pod(d, cfg, handler=handler), cfg


def container(d, pod_id, pcfg, name, res=None, cmd=("sleep", "1000")):
    cid = cri.create_container(d, pod_id, pcfg, cri.container_config(
        name, d.img.ref, list(cmd), log_path=f"{name}.log",
        linux=pb.LinuxContainerConfig(resources=res)))
    cri.start_container(d, cid)
    return cid


def check_devices_v1(path, what):
    """The v1 devices.list of a container: its own rules (the default char devices and pts),
    never the "a *:* rwm" that systemd writes when it re-applies a unit without DeviceAllow."""
    rules = read(path, "devices.list").splitlines()
    assert "a *:* rwm" not in rules, (what, rules)
    for r in ("c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm", "c *:* m", "b *:* m"):
        assert r in rules, (what, r, rules)


# runc 1.1.5 --systemd-cgroup on systemd's hybrid layout leaves the init of a container whose
# slice is nested (a-b.slice) in the parent slice's devices cgroup, not the scope's (reproduced
# with runc alone in the VM); hulld's stop therefore follows runc's `kill --all` (which lists
# the processes from that devices cgroup) with a kill of the init
RUNC_V1_UNJOINED = ("devices",)


def check_scope(d, cid, slice_name, res_files, handler=""):
    """The container's scope: active in its slice, delegated, the container's processes in it
    (in every joined hierarchy on v1), res_files ((controller, file, value)...) in its cgroup."""
    unit = f"hull-{cid}.scope"
    p = show(unit, "ActiveState", "Slice", "Delegate", "ControlGroup", "MemoryMax", "MemoryLimit",
             "CPUWeight", "CPUShares", "CPUQuotaPerSecUSec", "AllowedCPUs")
    assert p["ActiveState"] == "active", p
    assert p["Slice"] == slice_name and p["Delegate"] == "yes", p
    cg = expand_slice(slice_name) + "/" + unit
    assert p["ControlGroup"] == cg, p
    # the container's processes are in the scope
    procs = read(cg_dir(cg, "memory"), "cgroup.procs").split()
    assert procs, cg
    runc = handler == "runc"
    assert_in_cgroup(procs[0], cg, "the container's init", RUNC_V1_UNJOINED if runc else ())
    for ctrl, name, want in res_files:
        assert read(cg_dir(cg, ctrl), name) == want, (ctrl, name, read(cg_dir(cg, ctrl), name))
    if not V2 and not runc:
        check_devices_v1(cg_dir(cg, "devices"), unit)
    return p, cg


RES = dict(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=50000, cpu_shares=512,
           cpuset_cpus="0")
if V2:
    RES_FILES = [("memory", "memory.max", str(64 << 20)), ("cpu", "cpu.max", "50000 100000"),
                 ("cpu", "cpu.weight", "20"), ("cpuset", "cpuset.cpus", "0")]
else:
    RES_FILES = [("memory", "memory.limit_in_bytes", str(64 << 20)),
                 ("cpu", "cpu.cfs_quota_us", "50000"), ("cpu", "cpu.cfs_period_us", "100000"),
                 ("cpu", "cpu.shares", "512"), ("cpuset", "cpuset.cpus", "0")]


@need_systemd
def test_runtime_config_systemd(sd):
    r = sd.runtime.RuntimeConfig(pb.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == pb.SYSTEMD


@need_systemd
@pytest.mark.parametrize("handler", ["", "runc"])
def test_container_scope_in_kubelet_slice(sd, handler):
    if handler == "runc" and not os.path.exists(RUNC):
        pytest.fail(f"{RUNC} is missing (contrib/install-deps.sh installs runc)")
    d = sd
    slice_name = f"{d.stem}-burstable-pod{os.urandom(4).hex()}.slice"
    pod_id, pcfg = pod(d, "k" + handler, slice_name, handler=handler)
    assert active(slice_name)
    cid = container(d, pod_id, pcfg, "c", pb.LinuxContainerResources(**RES))
    p, cg = check_scope(d, cid, slice_name, RES_FILES, handler)
    assert p["CPUQuotaPerSecUSec"] == "500ms", p
    if V2:
        assert p["MemoryMax"] == str(64 << 20), p
        assert p["CPUWeight"] == "20", p
        assert p["AllowedCPUs"] == "0", p
    else:
        # the legacy properties systemd applies to the v1 controllers
        assert p["MemoryLimit"] == str(64 << 20), p
        assert p["CPUShares"] == "512", p
    # stats come from the scope's cgroup
    s = d.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert s.memory.working_set_bytes.value > 0, s
    # UpdateContainerResources: cgroup files and (hull-oci) the unit's properties
    d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=96 << 20, cpu_period=100000, cpu_quota=20000, cpu_shares=256)))
    unit = f"hull-{cid}.scope"
    if V2:
        assert read(cg_dir(cg, "memory"), "memory.max") == str(96 << 20)
        assert read(cg_dir(cg, "cpu"), "cpu.max") == "20000 100000"
        assert read(cg_dir(cg, "cpu"), "cpu.weight") == "10"
        if handler == "":
            assert show(unit, "MemoryMax")["MemoryMax"] == str(96 << 20)
    else:
        assert read(cg_dir(cg, "memory"), "memory.limit_in_bytes") == str(96 << 20)
        assert read(cg_dir(cg, "cpu"), "cpu.cfs_quota_us") == "20000"
        assert read(cg_dir(cg, "cpu"), "cpu.shares") == "256"
        if handler == "":
            assert show(unit, "MemoryLimit")["MemoryLimit"] == str(96 << 20)
            assert show(unit, "CPUShares")["CPUShares"] == "256"
        # systemd re-applies a unit's properties to its cgroup (after an update, on
        # daemon-reload): the limits and the device rules stay the container's
        if handler == "":
            check_devices_v1(cg_dir(cg, "devices"), unit + " after the update")
        subprocess.run(["systemctl", "daemon-reload"], check=True, timeout=120)
        assert read(cg_dir(cg, "memory"), "memory.limit_in_bytes") == str(96 << 20)
        assert read(cg_dir(cg, "cpu"), "cpu.shares") == "256"
        if handler == "":
            check_devices_v1(cg_dir(cg, "devices"), unit + " after daemon-reload")
    # stop: the scope goes with the container, from every hierarchy
    cri.stop_container(d, cid)
    cri.wait_for(lambda: not active(unit), timeout=20,
                 what="the scope to stop with its container")
    assert cg_exists_anywhere(cg) == []
    cri.remove_container(d, cid)
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)
    # the slice was made by hulld (no kubelet here), so it goes with the pod
    cri.wait_for(lambda: not active(slice_name), timeout=20, what="the pod slice to stop")
    assert cg_exists_anywhere(expand_slice(slice_name)) == []


@need_systemd
def test_default_pod_slice_and_infra_scope(sd):
    """A pod naming no parent gets <stem>-pod<id>.slice; its infra process (shared PID
    namespace) runs in hull-<pod id>.scope there."""
    d = sd
    pod_id, pcfg = pod(d, "def", pid=pb.POD)
    slice_name = f"{d.stem}-pod{pod_id}.slice"
    assert active(slice_name)
    assert active(f"hull-{pod_id}.scope")
    assert show(f"hull-{pod_id}.scope", "Slice")["Slice"] == slice_name
    cid = container(d, pod_id, pcfg, "c")
    assert active(f"hull-{cid}.scope")
    assert show(f"hull-{cid}.scope", "Slice")["Slice"] == slice_name
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)
    for unit in (f"hull-{cid}.scope", f"hull-{pod_id}.scope", slice_name):
        cri.wait_for(lambda: not active(unit), timeout=20, what=f"{unit} to stop")
    assert cg_exists_anywhere(expand_slice(slice_name)) == []


@need_systemd
def test_scopes_survive_restart_and_orphans_are_stopped(sd):
    d = sd
    slice_name = f"{d.stem}-besteffort-pod{os.urandom(4).hex()}.slice"
    pod_id, pcfg = pod(d, "r", slice_name)
    keep = container(d, pod_id, pcfg, "keep")
    lost = container(d, pod_id, pcfg, "lost")
    d.restart()
    # a restart keeps the containers, their scopes and the work in them
    assert active(f"hull-{keep}.scope") and active(f"hull-{lost}.scope")
    assert cri.container_status(d, keep).state == pb.CONTAINER_RUNNING
    # hulld killed; one container's record lost: recovery stops its scope, keeps the other
    d.stop(sig=signal.SIGKILL)
    os.unlink(os.path.join(d.root, "store", "containers", lost + ".json"))
    d.start()
    cri.wait_for(lambda: not active(f"hull-{lost}.scope"), timeout=30,
                 what="recovery to stop the scope no record owns")
    assert active(f"hull-{keep}.scope")
    assert cg_exists_anywhere(expand_slice(slice_name) + f"/hull-{lost}.scope") == []
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)
    cri.wait_for(lambda: not active(f"hull-{keep}.scope"), timeout=20, what="scope to stop")


@need_systemd
def test_invalid_slice_refused(sd):
    d = sd
    for bad in ("/kubepods/pod1", "a--b.slice", "kubepods.scope"):
        lx = pb.LinuxPodSandboxConfig(cgroup_parent=bad)
        cfg = cri.pod_config("bad", namespace="sd", network=pb.NODE, linux=lx)
        with pytest.raises(Exception) as e:
            cri.run_pod(d, cfg)
        assert "slice" in str(e.value), e.value


@need_systemd
@pytest.mark.parametrize("handler", ["", "runc"])
def test_oom_killed_in_scope(sd, handler):
    """OOM in a scope is reported as OOMKilled, though systemd removes the scope's cgroup as
    soon as it is empty."""
    d = sd
    pod_id, pcfg = pod(d, "oom" + handler, handler=handler)
    cid = cri.create_container(d, pod_id, pcfg, cri.container_config(
        "hog", d.img.ref, ["tail", "/dev/zero"], log_path="hog.log",
        linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=16 << 20, memory_swap_limit_in_bytes=16 << 20))))
    cri.start_container(d, cid)
    st = cri.wait_state(d, cid, pb.CONTAINER_EXITED, timeout=60)
    assert st.reason == "OOMKilled" and st.exit_code == 137, st
    cri.wait_for(lambda: not active(f"hull-{cid}.scope"), timeout=20, what="scope to stop")
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


@need_systemd
def test_oom_of_a_child_keeps_the_container(sd):
    """An OOM kill of one process does not make systemd stop the whole scope (its default
    OOMPolicy=stop would): the container's init keeps running, as with cgroupfs."""
    d = sd
    pod_id, pcfg = pod(d, "oomchild")
    cid = cri.create_container(d, pod_id, pcfg, cri.container_config(
        "c", d.img.ref, ["sh", "-c", "tail /dev/zero; echo survived; sleep 1000"],
        log_path="c.log", linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=16 << 20, memory_swap_limit_in_bytes=16 << 20))))
    cri.start_container(d, cid)
    cg = cg_dir(expand_slice(f"{d.stem}-pod{pod_id}.slice") + f"/hull-{cid}.scope", "memory")

    def oom_kills():
        text = read(cg, "memory.events" if V2 else "memory.oom_control")
        return int(dict(line.split() for line in text.splitlines())["oom_kill"])

    cri.wait_for(lambda: oom_kills() > 0, timeout=60, what="the OOM kill of tail")
    cri.wait_for(lambda: b"survived" in open(d.logs / "oomchild" / "c.log", "rb").read(),
                 timeout=30, what="the shell to go on after the OOM kill")
    assert active(f"hull-{cid}.scope")
    assert cri.container_status(d, cid).state == pb.CONTAINER_RUNNING
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


def assert_in_cgroup_systemd(pid, cg, what):
    """pid is in cgroup cg in the hierarchies systemd moves a scope's processes into (cgroup2;
    on v1 name=systemd, memory, cpu, pids, devices: systemd 252 leaves blkio alone)."""
    got = proc_cgroups(pid)
    want = [""] if V2 else ["name=systemd", "memory", "cpu", "pids", "devices"]
    wrong = {c: got.get(c) for c in want if got.get(c) != cg}
    assert not wrong, (what, cg, wrong, got)


def conmon_pid(cid):
    """The pid of the hull-conmon that monitors container cid."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"hull-conmon") and b"--cid" in argv and \
                argv[argv.index(b"--cid") + 1] == cid.encode():
            return int(p)
    return None


@need_systemd
@pytest.mark.parametrize("handler", ["", "runc"])
def test_conmon_in_its_own_scope(sd, handler):
    """With the systemd driver each container's monitor runs in hull-conmon-<id>.scope in
    system.slice (not in hulld's cgroup), and the scope goes when the monitor exits."""
    if handler == "runc" and not os.path.exists(RUNC):
        pytest.fail(f"{RUNC} is missing (contrib/install-deps.sh installs runc)")
    d = sd
    pod_id, pcfg = pod(d, "mon" + handler, handler=handler)
    cid = container(d, pod_id, pcfg, "c")
    unit = f"hull-conmon-{cid}.scope"
    assert active(unit)
    assert show(unit, "Slice")["Slice"] == "system.slice"
    pid = conmon_pid(cid)
    assert pid, "no hull-conmon for " + cid
    assert_in_cgroup_systemd(pid, f"/system.slice/{unit}", "the container's monitor")
    cri.stop_container(d, cid)
    cri.remove_container(d, cid)
    cri.wait_for(lambda: not active(unit), timeout=20, what="the monitor's scope to go")
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


@need_systemd
@pytest.mark.skipif(not V2, reason="linux.resources.unified is cgroup2's; on v1 "
                    "test_unified_refused_and_hugetlb_v1 checks its refusal")
def test_unified_and_hugetlb_in_scope(sd):
    """linux.resources.unified keys that have a unit property are set as properties too
    (MemoryHigh, TasksMax); hugetlb has none and is written to the scope's files."""
    d = sd
    pod_id, pcfg = pod(d, "uni")
    res = pb.LinuxContainerResources(
        memory_limit_in_bytes=128 << 20,
        unified={"memory.high": str(96 << 20), "pids.max": "77"},
        hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=4 << 20)])
    cid = container(d, pod_id, pcfg, "c", res)
    unit = f"hull-{cid}.scope"
    p = show(unit, "MemoryHigh", "TasksMax", "MemoryMax")
    assert p["MemoryHigh"] == str(96 << 20), p
    assert p["TasksMax"] == "77", p
    assert p["MemoryMax"] == str(128 << 20), p
    path = CG + expand_slice(f"{d.stem}-pod{pod_id}.slice") + "/" + unit
    assert read(path, "memory.high") == str(96 << 20)
    assert read(path, "pids.max") == "77"
    assert read(path, "hugetlb.2MB.max") == str(4 << 20)
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


@need_systemd
@pytest.mark.skipif(V2, reason="v1 only: on cgroup2 test_unified_and_hugetlb_in_scope")
def test_unified_refused_and_hugetlb_v1(sd):
    """On v1 a unified key is refused with a clear error; hugepage limits (no unit property)
    go to hugetlb.<size>.limit_in_bytes in the scope's hugetlb directory."""
    d = sd
    pod_id, pcfg = pod(d, "uni1")
    with pytest.raises(Exception) as e:
        container(d, pod_id, pcfg, "u", pb.LinuxContainerResources(unified={"pids.max": "77"}))
    assert "cgroup v2" in str(e.value), e.value
    res = pb.LinuxContainerResources(
        memory_limit_in_bytes=128 << 20,
        hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=4 << 20)])
    cid = container(d, pod_id, pcfg, "c", res)
    cg = expand_slice(f"{d.stem}-pod{pod_id}.slice") + f"/hull-{cid}.scope"
    assert read(cg_dir(cg, "hugetlb"), "hugetlb.2MB.limit_in_bytes") == str(4 << 20)
    assert read(cg_dir(cg, "memory"), "memory.limit_in_bytes") == str(128 << 20)
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


def exec_monitor_pid(cid):
    """The pid of a hull-conmon running an exec (--exec) in container cid, or None."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"hull-conmon") and b"--exec" in argv and \
                b"--cid" in argv and argv[argv.index(b"--cid") + 1] == cid.encode():
            return int(p)
    return None


def exec_scope_of(pid, cid):
    """The exec scope cgroup (/system.slice/hull-conmon-<cid>-exec-<x>.scope) pid is in, or
    None (also when pid is gone)."""
    try:
        path = proc_cgroups(pid).get("" if V2 else "name=systemd", "")
    except (OSError, ValueError):
        return None
    m = re.fullmatch(r"/system\.slice/hull-conmon-%s-exec-[0-9a-f]+\.scope" % cid, path)
    return path if m else None


def conmon_units():
    """Every loaded hull-conmon-* unit (any state), from systemctl list-units."""
    out = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend",
                          "hull-conmon-*"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def check_exec_monitor(d, cid, start, what):
    """Runs start() (a long exec) in a thread; meanwhile its monitor is in its own exec scope
    in system.slice (and not in hulld's cgroup); afterwards no exec scope is left."""
    box = {}

    def run():
        try:
            box["r"] = start()
        except Exception as e:  # reported below
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()
    try:
        mpid = cri.wait_for(lambda: exec_monitor_pid(cid), timeout=30, what=f"{what}'s monitor")
        cg = cri.wait_for(lambda: exec_scope_of(mpid, cid), timeout=30,
                          what=f"{what}'s monitor to be in its exec scope")
        unit = cg.rsplit("/", 1)[1]
        p = show(unit, "ActiveState", "Slice")
        assert p == {"ActiveState": "active", "Slice": "system.slice"}, p
        assert_in_cgroup_systemd(mpid, cg, f"{what}'s monitor")
        assert proc_cgroups(mpid) != proc_cgroups(d.proc.pid), "the monitor is in hulld's cgroup"
    finally:
        t.join(120)
    assert "e" not in box, box["e"]
    cri.wait_for(lambda: not [u for u in conmon_units() if "-exec-" in u], timeout=20,
                 what=f"{what}'s scope to go")
    return box["r"]


@need_systemd
@pytest.mark.parametrize("handler", ["", "runc"])
def test_exec_monitor_in_its_own_scope(sd, handler):
    """With the systemd driver the monitor of an ExecSync and of a streaming Exec runs in
    hull-conmon-<id>-exec-<exec id>.scope in system.slice while the exec runs; the scope goes
    with it (none left after 50 ExecSyncs), the container's own monitor scope stays."""
    import k8sstream as ks
    d = sd
    pod_id, pcfg = pod(d, "xmon" + handler, handler=handler)
    cid = container(d, pod_id, pcfg, "c")
    r = check_exec_monitor(d, cid, lambda: d.runtime.ExecSync(pb.ExecSyncRequest(
        container_id=cid, cmd=["sh", "-c", "sleep 4; echo done"], timeout=60), timeout=90),
        "ExecSync")
    assert r.exit_code == 0 and r.stdout == b"done\n", r
    url = d.runtime.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "sleep 4; echo s"],
                                        stdout=True, stderr=True)).url
    r = check_exec_monitor(d, cid, lambda: ks.spdy_remotecommand(url), "streaming Exec")
    assert r["stdout"] == b"s\n", r
    n = 50 if handler == "" else 10
    for i in range(n):
        assert cri.exec_sync(d, cid, "echo", str(i)) == f"{i}\n"
    left = [u for u in conmon_units() if "-exec-" in u]
    assert left == [], f"exec scopes left after {n} ExecSyncs: {left}"
    assert active(f"hull-conmon-{cid}.scope")
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


def test_exec_monitor_cgroupfs_stays(hulld_factory, registry, image):  # noqa: F811
    """With the cgroupfs driver an exec's monitor stays in hulld's cgroup (no scope): the
    behaviour the systemd driver's exec scopes must not change."""
    d = hulld_factory("--insecure-registry", registry.host)
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image.ref)), timeout=60)
    d.img = image
    d.logs = d.root + "/logs"
    lx = pb.LinuxPodSandboxConfig()
    cfg = cri.pod_config("xfs", namespace="sd", network=pb.NODE,
                         log_directory=d.logs + "/xfs", linux=lx)
    pod_id = cri.run_pod(d, cfg)
    cid = container(d, pod_id, cfg, "c")
    box = {}
    t = threading.Thread(target=lambda: box.update(r=d.runtime.ExecSync(pb.ExecSyncRequest(
        container_id=cid, cmd=["sleep", "3"], timeout=60), timeout=90)))
    t.start()
    try:
        mpid = cri.wait_for(lambda: exec_monitor_pid(cid), timeout=30, what="the exec monitor")
        assert proc_cgroups(mpid) == proc_cgroups(d.proc.pid)
    finally:
        t.join(120)
    assert box["r"].exit_code == 0
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


@need_systemd
@pytest.mark.parametrize("rt", ["hull-oci", "runc"])
def test_oci_runtime_scope_resources(rt, tmp_path):
    """A runtime's --systemd-cgroup container: pids, block IO weight, memory and CPU limits as
    unit properties (v1: TasksMax, BlockIOWeight, MemoryLimit, CPUShares; v2: TasksMax,
    IOWeight, MemoryMax, CPUWeight) and in the scope's files, the device rules in devices.list
    on v1; all of them unchanged after systemd re-applies the unit's properties
    (daemon-reload); the scope and its directories go with the container."""
    import bundle as B
    binary_path = {"hull-oci": binary("hull-oci"), "runc": RUNC}[rt]
    if not os.path.exists(binary_path):
        pytest.fail(f"{binary_path} is missing (contrib/install-deps.sh installs it)")
    stem = "hulloci%s" % os.urandom(3).hex()
    cid = "c" + os.urandom(6).hex()
    unit, slice_name = f"hulltest-{cid}.scope", f"{stem}.slice"
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["sleep", "1000"])
    spec = B.read_spec(bdir)
    spec["linux"]["cgroupsPath"] = f"{slice_name}:hulltest:{cid}"
    spec["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 << 20}, "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 77}}
    # a block IO weight needs a kernel with one (v1: CFQ's blkio.weight, gone since Linux 5.0,
    # or BFQ's blkio.bfq.weight; v2: io.weight / io.bfq.weight): every runtime fails its
    # create on a kernel without (Debian 6.1 in the VM, no BFQ loaded)
    weight_files = ("io.weight", "io.bfq.weight") if V2 else ("blkio.weight", "blkio.bfq.weight")
    wroot = CG if V2 else CG + "/blkio"
    has_weight = any(os.path.exists(f"{wroot}/{d}/{f}") for f in weight_files
                     for d in os.listdir(wroot) if os.path.isdir(f"{wroot}/{d}"))
    if has_weight:
        spec["linux"]["resources"]["blockIO"] = {"weight": 300}
    B.write_spec(bdir, spec)
    root = str(tmp_path / "state")

    def oci(*args, check=True):
        p = subprocess.run([binary_path, "--root", root, "--systemd-cgroup"] + list(args),
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert not check or p.returncode == 0, (args, p.returncode, p.stderr)
        return p

    cg = expand_slice(slice_name) + "/" + unit
    try:
        # files, not pipes: the container's init inherits them and would hold a pipe open
        with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as errf:
            p = subprocess.run([binary_path, "--root", root, "--systemd-cgroup", "create",
                                "--bundle", bdir, cid], stdout=out, stderr=errf,
                               stdin=subprocess.DEVNULL, timeout=60)
        err = (tmp_path / "err").read_text(errors="replace")
        assert p.returncode == 0, err
        oci("start", cid)
        pid = json.loads(oci("state", cid).stdout)["pid"]
        assert_in_cgroup(pid, cg, f"the {rt} container's init",
                         RUNC_V1_UNJOINED if rt == "runc" else ())

        def check(when):
            props = show(unit, "ActiveState", "TasksMax", "BlockIOWeight", "IOWeight",
                         "MemoryLimit", "MemoryMax", "CPUShares", "CPUWeight",
                         "CPUQuotaPerSecUSec")
            assert props["ActiveState"] == "active", (when, props)
            assert props["TasksMax"] == "77", (when, props)
            assert props["CPUQuotaPerSecUSec"] == "500ms", (when, props)
            assert read(cg_dir(cg, "pids"), "pids.max") == "77", when
            if V2:
                assert props["MemoryMax"] == str(64 << 20), (when, props)
                assert props["CPUWeight"] == "20", (when, props)
                assert read(cg_dir(cg, "memory"), "memory.max") == str(64 << 20), when
                assert read(cg_dir(cg, "cpu"), "cpu.max") == "50000 100000", when
                assert read(cg_dir(cg, "cpu"), "cpu.weight") == "20", when
                return
            assert props["MemoryLimit"] == str(64 << 20), (when, props)
            assert props["CPUShares"] == "512", (when, props)
            if has_weight:
                assert props["BlockIOWeight"] == "300", (when, props)
            assert read(cg_dir(cg, "memory"), "memory.limit_in_bytes") == str(64 << 20), when
            assert read(cg_dir(cg, "cpu"), "cpu.shares") == "512", when
            assert read(cg_dir(cg, "cpu"), "cpu.cfs_quota_us") == "50000", when
            # blkio.weight is CFQ's (gone since Linux 5.0); BFQ's is blkio.bfq.weight
            for f in ("blkio.weight", "blkio.bfq.weight"):
                if os.path.exists(os.path.join(cg_dir(cg, "blkio"), f)):
                    assert read(cg_dir(cg, "blkio"), f).split()[-1] == "300", (when, f)
            if rt != "runc":
                check_devices_v1(cg_dir(cg, "devices"), f"{rt} {when}")

        check("after create")
        subprocess.run(["systemctl", "daemon-reload"], check=True, timeout=120)
        check("after daemon-reload")
        oci("kill", cid, "KILL")
        oci("delete", "--force", cid)
        cri.wait_for(lambda: not active(unit), timeout=20, what="the scope to go")
        cri.wait_for(lambda: cg_exists_anywhere(cg) == [], timeout=20,
                     what="the scope's directories to go")
    finally:
        oci("delete", "--force", cid, check=False)
        subprocess.run(["systemctl", "stop", unit, slice_name], capture_output=True)
