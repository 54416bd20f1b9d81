"""CheckpointContainer (kubelet's forensic checkpoint): CRIU through the runtime's `checkpoint`
(hull-oci's own and runc's), the container left running, and the archive in CRI-O's layout.

CRIU 3.17 (Debian) cannot dump on this machine's 6.18 kernel (kerndat vDSO), so the dump tests
run where `criu check` passes: `make vm-checkpoint-test` runs this file in the VM test bed
(tests/vm/run.sh, Debian's 6.1 kernel).  The error codes, and the clear error when CRIU fails,
are checked everywhere."""
import json
import os
import subprocess
import tarfile
import io

import grpc
import pytest

import bundle as B
import cri
from oci_helpers import make_rt
from conftest import pb
from registry import all_applets, busybox_entries, make_layer, registry  # noqa: F401

RUNC = "/usr/sbin/runc"
HANDLERS = ["hull-oci", "runc"]
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done"


def criu_works():
    try:
        r = subprocess.run(["criu", "check"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.fail("criu is missing (contrib/install-deps.sh installs it)")
    return r.returncode == 0, (r.stdout + r.stderr).strip()


@pytest.fixture(scope="module")
def image(registry):  # noqa: F811
    return registry.push_image("ckpt/busybox", "1", [make_layer(busybox_entries(all_applets()))],
                               config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]})


@pytest.fixture(params=HANDLERS)
def hd(request, hulld_factory, registry, image, tmp_path):  # noqa: F811
    if request.param == "runc" and not os.access(RUNC, os.X_OK):
        pytest.fail(f"{RUNC} is missing (contrib/install-deps.sh installs runc)")
    d = hulld_factory("--insecure-registry", registry.host, "--runtime", "runc=" + RUNC)
    cri.prepare(d, image, tmp_path / "logs", "" if request.param == "hull-oci" else "runc")
    d.tmp = tmp_path
    yield d
    cri.remove_all_pods(d)


def counter_container(d, name="counter", start=True):
    pod, pcfg = cri.new_pod(d, name + "-pod", network=pb.NODE)
    cid = cri.new_container(d, pod, pcfg, name, ["sh", "-c", COUNTER])
    if start:
        cri.start_container(d, cid)
    return pod, cid


def count(d, cid):
    rc, out, err = cri.sh(d, cid, "cat /tmp/count")
    assert rc == 0, err
    return int(out.strip())


def checkpoint(d, cid, location, timeout=120):
    return d.runtime.CheckpointContainer(
        pb.CheckpointContainerRequest(container_id=cid, location=str(location), timeout=timeout),
        timeout=timeout + 30)


def expect_code(code, fn, *args):
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args)
    assert ei.value.code() == code, ei.value.details()
    return ei.value.details()


# ---- everywhere: argument and state errors -----------------------------------------------------
def test_checkpoint_errors(hd):
    d = hd
    loc = d.tmp / "ckpt.tar"
    details = expect_code(grpc.StatusCode.NOT_FOUND, checkpoint, d, "no-such-container", loc)
    assert "no-such-container" in details
    pod, cid = counter_container(d, start=False)
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, checkpoint, d, cid, "")
    details = expect_code(grpc.StatusCode.FAILED_PRECONDITION, checkpoint, d, cid, loc)
    assert "not running" in details, details
    cri.start_container(d, cid)
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, checkpoint, d, cid, "")
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, checkpoint, d, cid, "relative/ckpt.tar")
    cri.stop_container(d, cid)
    details = expect_code(grpc.StatusCode.FAILED_PRECONDITION, checkpoint, d, cid, loc)
    assert "not running" in details, details
    assert not loc.exists()


def test_checkpoint_criu_failure_is_clear(hd):
    """Where CRIU cannot dump (this machine's kernel), the call fails with FAILED_PRECONDITION
    and CRIU's own error, leaves no archive and no temporary files, and the container keeps
    running; where it can, the same call succeeds."""
    d = hd
    ok, why = criu_works()
    pod, cid = counter_container(d)
    cri.wait_for(lambda: count(d, cid) >= 2, timeout=30, what="the counter")
    loc = d.tmp / "ckpt.tar"
    if ok:
        checkpoint(d, cid, loc)
        assert loc.exists()
        return
    details = expect_code(grpc.StatusCode.FAILED_PRECONDITION, checkpoint, d, cid, loc)
    assert "CRIU failed" in details and "Error (" in details, details
    assert not loc.exists() and not os.path.exists(str(loc) + ".part")
    left = [n for n in os.listdir(os.path.join(d.root, "containers", cid))
            if n.startswith("checkpoint.")]
    assert left == []
    assert cri.container_status(d, cid).state == pb.CONTAINER_RUNNING
    before = count(d, cid)
    cri.wait_for(lambda: count(d, cid) > before, timeout=30, what="the counter to go on")


# ---- where CRIU works (the VM bed) ---------------------------------------------------------------
@pytest.fixture
def criu_ok():
    ok, why = criu_works()
    if not ok:
        last = why.splitlines()[-1] if why else ""
        pytest.skip("criu check fails on this kernel (runs in make vm-checkpoint-test): " + last)


def test_checkpoint_archive_layout_and_keeps_running(hd, criu_ok):
    d = hd
    pod, cid = counter_container(d)
    cri.sh(d, cid, "rm /bin/vi; echo data > /etc/added")
    cri.wait_for(lambda: count(d, cid) >= 3, timeout=30, what="the counter")
    loc = d.tmp / "ckpt.tar"
    checkpoint(d, cid, loc)
    at_dump = count(d, cid)
    with tarfile.open(loc) as tf:
        names = set(tf.getnames())
        for f in ("config.dump", "spec.dump", "rootfs-diff.tar", "deleted.files", "stats-dump",
                  "dump.log", "checkpoint/inventory.img", "checkpoint/pstree.img",
                  "checkpoint/descriptors.json"):
            assert f in names, (f, sorted(names))
        assert any(n.startswith("checkpoint/pages-") for n in names), sorted(names)
        cfg = json.load(tf.extractfile("config.dump"))
        spec = json.load(tf.extractfile("spec.dump"))
        deleted = json.load(tf.extractfile("deleted.files"))
        diff = tarfile.open(fileobj=io.BytesIO(tf.extractfile("rootfs-diff.tar").read()))
        diff_names = diff.getnames()
        added = diff.extractfile("etc/added").read()
    assert cfg["id"] == cid and cfg["name"] == "counter", cfg
    assert cfg["rootfsImageName"] == d.img.ref and cfg["rootfsImageRef"], cfg
    assert cfg["checkpointedTime"] and cfg["createdTime"], cfg
    assert spec["process"]["args"] == ["sh", "-c", COUNTER], spec["process"]
    assert "/bin/vi" in deleted, deleted
    assert "tmp/count" in diff_names and added == b"data\n", diff_names
    assert not any(n.startswith("bin/vi") for n in diff_names), diff_names
    # the container keeps running and counting (kubelet's forensic checkpoint)
    assert cri.container_status(d, cid).state == pb.CONTAINER_RUNNING
    cri.wait_for(lambda: count(d, cid) > at_dump + 2, timeout=30, what="the counter to go on")
    # no temporary directory left
    left = [n for n in os.listdir(os.path.join(d.root, "containers", cid))
            if n.startswith("checkpoint.")]
    assert left == []


def test_init_stdin_is_the_containers_dev_null(hd):
    """The monitor gives the init the host's /dev/null as stdin; the runtime swaps it for the
    container's own /dev/null (as runc does), else CRIU cannot resolve its mount and refuses to
    dump ("Can't lookup mount=N for fd=0 path=/dev/null")."""
    d = hd
    pod, cid = counter_container(d)
    st = d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True))
    pid = json.loads(st.info["info"])["pid"]
    fd0 = os.stat(f"/proc/{pid}/fd/0")
    host = os.stat("/dev/null")
    assert os.major(fd0.st_rdev) == 1 and os.minor(fd0.st_rdev) == 3
    assert fd0.st_dev != host.st_dev, "the init's stdin is still the host's /dev/null"


# ---- the runtime CLI: `checkpoint` with runc's options, for hull-oci and runc alike ---------------
@pytest.fixture(params=["hull", "runc"])
def rt(request, tmp_path):
    if request.param == "runc" and not os.access(RUNC, os.X_OK):
        pytest.fail(f"{RUNC} is missing (contrib/install-deps.sh installs runc)")
    return make_rt(request, tmp_path / request.param, request.param)


def running(rt, tmp_path):
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sleep", "1000"])
    cid = rt.new_id()
    # stdio on /dev/null: a host file would be outside the container's mounts for CRIU
    rt.create(cid, bdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cid


def test_oci_checkpoint_cli_errors(rt, tmp_path):
    img = str(tmp_path / "img")
    p = rt.cmd("checkpoint", "--image-path", img, "no-such-ctr")
    assert p.returncode != 0 and ("no-such-ctr" in p.stderr or "does not exist" in p.stderr)
    cid = running(rt, tmp_path)
    p = rt.cmd("checkpoint", "--image-path", img, cid)  # created, not running
    assert p.returncode != 0, p.stderr
    if rt.name == "hull":
        assert "it is created" in p.stderr, p.stderr
        rt.cmd("start", cid, check=True)
        p = rt.cmd("checkpoint", "--image-path", img, "--manage-cgroups-mode", "bogus", cid)
        assert p.returncode != 0 and "invalid --manage-cgroups-mode" in p.stderr, p.stderr
        p = rt.cmd("checkpoint", "--image-path", img, "--lazy-pages", cid)
        assert p.returncode != 0 and "not supported" in p.stderr, p.stderr
        p = rt.cmd("checkpoint", "--image-path", img, "--no-such-flag", cid)
        assert p.returncode != 0 and "--no-such-flag" in p.stderr, p.stderr
        assert rt.status(cid) == "running"


def test_oci_checkpoint_cli(rt, tmp_path, criu_ok):
    """--image-path/--work-path/--leave-running/--file-locks/--manage-cgroups-mode: the images
    and dump.log where asked, the container still running; without --leave-running the
    container is gone afterwards (runc's behaviour)."""
    cid = running(rt, tmp_path)
    rt.cmd("start", cid, check=True)
    pid = rt.state(cid)["pid"]
    img, work = str(tmp_path / "img"), str(tmp_path / "work")
    rt.cmd("checkpoint", "--image-path", img, "--work-path", work, "--leave-running",
           "--file-locks", "--manage-cgroups-mode", "soft", cid, check=True, timeout=120)
    assert os.path.exists(os.path.join(img, "inventory.img")), os.listdir(img)
    assert os.path.exists(os.path.join(img, "descriptors.json")), os.listdir(img)
    assert os.path.exists(os.path.join(work, "dump.log")), os.listdir(work)
    assert rt.status(cid) == "running" and os.path.exists(f"/proc/{pid}")
    img2 = str(tmp_path / "img2")
    rt.cmd("checkpoint", "--image-path", img2, cid, check=True, timeout=120)
    assert os.path.exists(os.path.join(img2, "pstree.img"))
    assert os.path.exists(os.path.join(img2, "dump.log"))  # the work path defaults to the images
    assert rt.status(cid) is None, "the dumped container should be gone"


def test_oci_checkpoint_and_restore_cli(rt, tmp_path, criu_ok):
    """checkpoint (the container gone), then `restore --image-path --bundle --detach` with the
    same id: the counter continues from the checkpointed value, it does not start again."""
    bdir = str(tmp_path / "b")
    B.make_bundle(bdir, ["/bin/sh", "-c", COUNTER])
    cfile = os.path.join(bdir, "rootfs", "tmp", "count")
    os.makedirs(os.path.dirname(cfile), exist_ok=True)
    cid = rt.new_id()
    rt.create(cid, bdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rt.cmd("start", cid, check=True)

    def value():
        try:
            with open(cfile) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0
    cri.wait_for(lambda: value() >= 5, timeout=30, what="the counter")
    img = str(tmp_path / "img")
    rt.cmd("checkpoint", "--image-path", img, cid, check=True, timeout=120)
    assert rt.status(cid) is None
    dumped = value()
    with open(cfile, "w") as f:  # a restart from scratch would write 1, 2, ...
        f.write("0\n")
    p = rt.cmd("restore", "--image-path", img, "--work-path", str(tmp_path / "rwork"),
               "--bundle", bdir, "--detach", cid, timeout=120)
    if p.returncode != 0:
        log = os.path.join(str(tmp_path / "rwork"), "restore.log")
        tail = open(log).read()[-3000:] if os.path.exists(log) else ""
        raise AssertionError(f"restore failed: {p.stderr}\n{tail}")
    assert rt.status(cid) == "running"
    cri.wait_for(lambda: value() > 0, timeout=30, what="the restored counter")
    assert value() > dumped, (value(), dumped)
    rt.cmd("delete", "--force", cid, check=True)
