"""The systemd cgroup driver (cgroup_manager "systemd", hull-oci and runc --systemd-cgroup).

With systemd as PID 1 (the VM test bed's systemd mode: `make vm-systemd-test`), each container
runs in a transient scope hull-<id>.scope made over D-Bus in the pod's slice, with its limits as
unit properties and in its cgroup files; the scope goes with the container and survives a
hulld restart, and recovery stops the scopes no record owns.  On a host without systemd as
PID 1 (this development machine), the driver is refused at start-up with a clear error; the
tests that need systemd say so when they skip."""
import json
import os
import re
import signal
import subprocess

import pytest

from conftest import binary, pb
import cri
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)
from registry import all_applets

CG = "/sys/fs/cgroup"
RUNC = "/usr/sbin/runc"
SYSTEMD = os.path.isdir("/run/systemd/system")
need_systemd = pytest.mark.skipif(
    not SYSTEMD, reason="needs systemd as PID 1: runs in the VM test bed (make vm-systemd-test)")


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


def check_scope(d, cid, slice_name, res_files):
    unit = f"hull-{cid}.scope"
    p = show(unit, "ActiveState", "Slice", "Delegate", "ControlGroup", "MemoryMax", "CPUWeight",
             "CPUQuotaPerSecUSec", "AllowedCPUs")
    assert p["ActiveState"] == "active", p
    assert p["Slice"] == slice_name and p["Delegate"] == "yes", p
    cg = expand_slice(slice_name) + "/" + unit
    assert p["ControlGroup"] == cg, p
    # the container's processes are in the scope
    path = CG + cg
    procs = read(path, "cgroup.procs").split()
    assert procs, path
    with open(f"/proc/{procs[0]}/cgroup") as f:
        assert f.read().strip() == "0::" + cg
    for name, want in res_files.items():
        assert read(path, name) == want, (name, read(path, name))
    return p, path


RES = dict(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=50000, cpu_shares=512,
           cpuset_cpus="0")
RES_FILES = {"memory.max": str(64 << 20), "cpu.max": "50000 100000", "cpu.weight": "20",
             "cpuset.cpus": "0"}


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
    p, path = check_scope(d, cid, slice_name, RES_FILES)
    assert p["MemoryMax"] == str(64 << 20), p
    assert p["CPUQuotaPerSecUSec"] == "500ms", p
    assert p["CPUWeight"] == "20", p
    assert p["AllowedCPUs"] == "0", p
    # stats come from the scope's cgroup
    s = d.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert s.memory.working_set_bytes.value > 0, s
    # UpdateContainerResources: cgroup files and (hull-oci) the unit's properties
    d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=96 << 20, cpu_period=100000, cpu_quota=20000, cpu_shares=512)))
    assert read(path, "memory.max") == str(96 << 20)
    assert read(path, "cpu.max") == "20000 100000"
    if handler == "":
        assert show(f"hull-{cid}.scope", "MemoryMax")["MemoryMax"] == str(96 << 20)
    # stop: the scope goes with the container
    cri.stop_container(d, cid)
    cri.wait_for(lambda: not active(f"hull-{cid}.scope"), timeout=20,
                 what="the scope to stop with its container")
    assert not os.path.exists(path)
    cri.remove_container(d, cid)
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)
    # the slice was made by hulld (no kubelet here), so it goes with the pod
    cri.wait_for(lambda: not active(slice_name), timeout=20, what="the pod slice to stop")
    assert not os.path.exists(CG + expand_slice(slice_name))


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
    assert not os.path.exists(CG + expand_slice(slice_name))


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
    assert not os.path.exists(CG + expand_slice(slice_name) + f"/hull-{lost}.scope")
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
    cg = CG + expand_slice(f"{d.stem}-pod{pod_id}.slice") + f"/hull-{cid}.scope"

    def oom_kills():
        return int(dict(line.split() for line in read(cg, "memory.events").splitlines())
                   ["oom_kill"])

    cri.wait_for(lambda: oom_kills() > 0, timeout=60, what="the OOM kill of tail")
    cri.wait_for(lambda: b"survived" in open(d.logs / "oomchild" / "c.log", "rb").read(),
                 timeout=30, what="the shell to go on after the OOM kill")
    assert active(f"hull-{cid}.scope")
    assert cri.container_status(d, cid).state == pb.CONTAINER_RUNNING
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


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
    with open(f"/proc/{pid}/cgroup") as f:
        assert f.read().strip() == f"0::/system.slice/{unit}"
    cri.stop_container(d, cid)
    cri.remove_container(d, cid)
    cri.wait_for(lambda: not active(unit), timeout=20, what="the monitor's scope to go")
    cri.stop_pod(d, pod_id)
    cri.remove_pod(d, pod_id)


@need_systemd
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
