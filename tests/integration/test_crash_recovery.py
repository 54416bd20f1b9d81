"""hulld killed (SIGKILL) at every named step of RunPodSandbox, CreateContainer,
StartContainer, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox and PullImage
(HULL_TEST_CRASH_AT=<step> makes it kill itself there), then restarted: what it lists can be
stopped and removed, names can be used again, and once everything is removed no monitor or
runtime process, mount, cgroup (in any hierarchy), pinned namespace or state file is left."""
import os
import shutil
import tempfile
import time

import grpc
import pytest

import cri
from conftest import Hulld, pb, unmount_below
from cri import start_container as start
from leaks import (cgroups_below, leftovers, processes_mentioning, remove_cgroup_parent,
                   wait_clean)
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)
from cni_env import NetEnv, kubelet_like

CRASH_ENV = "HULL_TEST_CRASH_AT"


@pytest.fixture(scope="module")
def env(registry):  # noqa: F811
    """One daemon (real CNI bridge, hull-oci) reused by every crash point of the module."""
    img = registry.push_image("crash/busybox", "1", [make_layer(busybox_entries())],
                              config={"Env": ["PATH=/bin"]})
    net = NetEnv()
    net.write_bridge()
    base = tempfile.mkdtemp(prefix="hullcrash-")
    d = Hulld(base, [*net.args(), "--insecure-registry", registry.host])
    net.daemons.append(d)
    d.start()
    d.net = net
    d.img = img
    d.registry = registry
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)), timeout=60)
    yield d
    net.remove_all_pods()
    rc = d.stop()
    report = d.sanitizer_report()
    unmount_below(base)
    net.cleanup()
    remove_cgroup_parent(net.cgroup_parent)  # NetEnv.cleanup leaves the v2 one of a hybrid host
    shutil.rmtree(base, ignore_errors=True)
    assert report == "", report
    assert rc in (0, None), d.log()[-4000:]


def crash_during(d, point, action):
    """Restarts d with the crash point armed, runs action (which must fail: hulld dies), checks
    that it died there, and starts it again."""
    assert d.stop() == 0, d.log()[-4000:]
    os.environ[CRASH_ENV] = point
    try:
        d.start()
    finally:
        del os.environ[CRASH_ENV]
    with pytest.raises(grpc.RpcError):
        action()
    d.proc.wait(30)
    rc = d.proc.returncode
    assert rc == -9, f"hulld did not stop at crash point {point} (exit {rc})"
    d.stop()
    d.start()


def create(d, pod, name, cmd=("sleep", "1000")):
    cfg = cri.container_config(name, d.img.ref, cmd)
    return cri.create_container(d, pod, kubelet_like("x"), cfg)


def containers(d):
    return list(d.runtime.ListContainers(pb.ListContainersRequest(), timeout=10).containers)


def pods(d):
    return list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items)


def state_of(d, cid):
    return d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid),
                                     timeout=10).status.state


def remove_everything(d):
    """Stops and removes whatever hulld lists, through the CRI only."""
    for c in containers(d):
        cri.stop_container(d, c.id)
        cri.remove_container(d, c.id)
    for p in pods(d):
        cri.stop_pod(d, p.id)
        cri.remove_pod(d, p.id)
    assert containers(d) == [] and pods(d) == []


def reuse_names(d, pod_name, ctr_name=None):
    """The names are free (or still held by a working object): a full lifecycle works."""
    pod = next((p.id for p in pods(d) if p.metadata.name == pod_name and p.state == 0), None)
    pod = pod or cri.run_pod(d, kubelet_like(pod_name))
    if ctr_name:
        for c in containers(d):
            if c.metadata.name == ctr_name:
                cri.stop_container(d, c.id)
                cri.remove_container(d, c.id)
        cid = create(d, pod, ctr_name)
        start(d, cid)
        assert state_of(d, cid) == pb.CONTAINER_RUNNING


def settle(d):
    """Removes everything through the CRI and checks the host is clean."""
    remove_everything(d)
    wait_clean(d, d.net.cgroup_parent)


def reset(d):
    """After a failed test: a fresh daemon on empty directories, nothing of the old one left."""
    d.stop()
    for p in processes_mentioning(d.state_dir, d.root):
        try:
            os.kill(int(p.split(":")[0]), 9)
        except OSError:
            pass
    for cg in sorted(cgroups_below(d.net.cgroup_parent), key=len, reverse=True):
        try:
            with open(os.path.join(cg, "cgroup.procs")) as f:
                for pid in f.read().split():
                    os.kill(int(pid), 9)
            time.sleep(0.1)
            os.rmdir(cg)
        except OSError:
            pass
    unmount_below(d.base)
    shutil.rmtree(d.root, ignore_errors=True)
    shutil.rmtree(d.state_dir, ignore_errors=True)
    d.start()
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=d.img.ref)), timeout=60)


@pytest.fixture
def clean(env):
    if leftovers(env, env.net.cgroup_parent):
        reset(env)  # a previous test failed: do not let it fail this one too
    yield env
    settle(env)


RUNPOD_STEPS = ["runpod:after-intent", "runpod:after-cgroup", "runpod:after-ns",
                "runpod:after-shm", "runpod:after-network", "runpod:before-ready"]


@pytest.mark.parametrize("point", RUNPOD_STEPS)
def test_crash_in_run_pod_sandbox(clean, point):
    d = clean
    crash_during(d, point, lambda: cri.run_pod(d, kubelet_like("p")))
    # a pod that was never reported ready is rolled back completely
    assert pods(d) == []
    assert leftovers(d, d.net.cgroup_parent) == []
    reuse_names(d, "p", "c")


@pytest.mark.parametrize("point", ["runpod:after-network", "runpod:before-ready"])
def test_crash_in_run_pod_sandbox_with_infra(clean, point):
    """A shared PID namespace pod has an infra process: the rollback kills it."""
    d = clean
    crash_during(d, point, lambda: d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(
        config=kubelet_like("p", pid=pb.POD)), timeout=60))
    assert pods(d) == []
    assert leftovers(d, d.net.cgroup_parent) == []


CREATE_STEPS = ["create:after-intent", "create:after-mount", "create:after-spec",
                "create:after-monitor", "create:after-commit"]


@pytest.mark.parametrize("point", CREATE_STEPS)
def test_crash_in_create_container(clean, point):
    d = clean
    pod = cri.run_pod(d, kubelet_like("p"))
    crash_during(d, point, lambda: create(d, pod, "c"))
    listed = containers(d)
    if point == "create:after-commit":
        # committed: it is a created container like any other and can be started
        assert [c.metadata.name for c in listed] == ["c"]
        start(d, listed[0].id)
        assert state_of(d, listed[0].id) == pb.CONTAINER_RUNNING
    else:
        assert listed == []
        # nothing of the half-made container is left while its pod lives on
        cdirs = [os.path.join(d.state_dir, "containers"), os.path.join(d.root, "containers"),
                 os.path.join(d.state_dir, "s")]
        assert all(os.listdir(p) == [] for p in cdirs if os.path.isdir(p))
    reuse_names(d, "p", "c")


@pytest.mark.parametrize("point", ["start:before-runtime", "start:after-runtime"])
def test_crash_in_start_container(clean, point):
    d = clean
    pod = cri.run_pod(d, kubelet_like("p"))
    cid = create(d, pod, "c")
    crash_during(d, point, lambda: start(d, cid))
    if point == "start:before-runtime":
        assert state_of(d, cid) == pb.CONTAINER_CREATED
        start(d, cid)
    # started while hulld was down: reported running
    assert state_of(d, cid) == pb.CONTAINER_RUNNING
    reuse_names(d, "p", "c")


@pytest.mark.parametrize("point,timeout", [("stop:after-signal", 5), ("stop:after-kill", 0)])
def test_crash_in_stop_container(clean, point, timeout):
    d = clean
    pod = cri.run_pod(d, kubelet_like("p"))
    cid = create(d, pod, "c", ("sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done"))
    start(d, cid)
    crash_during(d, point, lambda: d.runtime.StopContainer(
        pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=60))
    d.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=60)
    assert state_of(d, cid) == pb.CONTAINER_EXITED
    reuse_names(d, "p", "c")


REMOVE_STEPS = ["remove:after-intent", "remove:after-delete", "remove:after-umount",
                "remove:after-dirs"]


@pytest.mark.parametrize("point", REMOVE_STEPS)
def test_crash_in_remove_container(clean, point):
    d = clean
    pod = cri.run_pod(d, kubelet_like("p"))
    cid = create(d, pod, "c")
    start(d, cid)
    crash_during(d, point, lambda: d.runtime.RemoveContainer(
        pb.RemoveContainerRequest(container_id=cid), timeout=60))
    # the removal was owed: the restart finished it
    assert containers(d) == []
    reuse_names(d, "p", "c")


@pytest.mark.parametrize("point", ["stoppod:after-containers", "removepod:after-intent",
                                   "removepod:after-stop", "removepod:after-containers"])
def test_crash_in_stop_or_remove_pod(clean, point):
    d = clean
    pod = cri.run_pod(d, kubelet_like("p"))
    start(d, create(d, pod, "c"))
    if point.startswith("stoppod"):
        action = lambda: d.runtime.StopPodSandbox(  # noqa: E731
            pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    else:
        action = lambda: d.runtime.RemovePodSandbox(  # noqa: E731
            pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    crash_during(d, point, action)
    if point.startswith("removepod"):
        # the removal was owed: the restart finished it
        assert pods(d) == [] and containers(d) == []
    remove_everything(d)
    wait_clean(d, d.net.cgroup_parent)
    reuse_names(d, "p", "c")


@pytest.mark.parametrize("point", ["pull:layer-unpacked", "pull:layer-committed",
                                   "pull:before-commit"])
def test_crash_in_pull_image(clean, point):
    d = clean
    img = d.registry.push_image(f"crash/pull-{point.split(':')[1]}", "1",
                                [make_layer([{"name": "hello", "data": f"{point} {time.time()}"}])],
                                config={"Env": ["PATH=/bin"]})

    def pull():
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)), timeout=60)

    layers = os.path.join(d.root, "images", "layers")
    before = sorted(os.listdir(layers))
    crash_during(d, point, pull)
    # no half image is listed, no temp download or unpack dir nor unused layer is left
    assert sorted(os.listdir(layers)) == before
    listed = [t for i in d.image.ListImages(pb.ListImagesRequest()).images for t in i.repo_tags]
    assert img.ref not in listed
    assert os.listdir(os.path.join(d.root, "images", "tmp")) == []
    pull()
    listed = [t for i in d.image.ListImages(pb.ListImagesRequest()).images for t in i.repo_tags]
    assert img.ref in listed
    d.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=img.ref)))


@pytest.mark.parametrize("lost", ["containers", "sandboxes", "both"])
def test_records_lost(clean, lost):
    """Records that are gone (lost, or set aside as corrupt) leave nothing running: monitors,
    runtime state, mounts, cgroups, pinned namespaces and the pod's network are swept."""
    d = clean
    pod = cri.run_pod(d, kubelet_like("p"))
    running = create(d, pod, "c1")
    start(d, running)
    create(d, pod, "c2")
    assert d.stop() == 0
    kinds = ["containers", "sandboxes"] if lost == "both" else [lost]
    for kind in kinds:
        store = os.path.join(d.root, "store", kind)
        for n in os.listdir(store):
            os.unlink(os.path.join(store, n))
    d.start()
    if lost == "containers":
        assert containers(d) == []
        assert [p.id for p in pods(d)] == [pod]
    else:
        assert pods(d) == []
        # containers whose pod is gone are listed (and removable) or swept
        remove_everything(d)
        wait_clean(d, d.net.cgroup_parent)
        ip_dir = os.path.join(d.net.ipam_dir, "hulltest")
        held = [n for n in os.listdir(ip_dir) if n[0].isdigit()] if os.path.isdir(ip_dir) else []
        assert held == [], f"IPAM still holds {held}"
    reuse_names(d, "p", "c1")
