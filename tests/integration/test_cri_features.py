"""Smaller CRI features end to end through a real hulld: ImageFsInfo's split detection, the
informational UpdatePodSandboxResources, pod sandbox events on GetContainerEvents and the
effective stop signal in ContainerStatus."""
import functools
import json
import os
import queue
import subprocess
import threading
import time
import uuid

import grpc
import pytest

import cri
from conftest import pb
from registry import registry  # noqa: F401  (fixture)

MiB = 1024 * 1024


# the pods here: host network
run_pod = functools.partial(cri.new_pod, network=pb.NODE)


def remove_pod(d, pod):
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def pod_info(d, pod):
    r = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True))
    return {k: json.loads(v) for k, v in r.info.items()}


@pytest.fixture
def clean_pods():
    """Removes every pod of the daemons registered by the test, even when it fails."""
    daemons = []
    yield daemons.append
    for d in daemons:
        try:
            for s in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
                remove_pod(d, s.id)
        except grpc.RpcError:
            pass


# ---- ImageFsInfo ------------------------------------------------------------------------------

def test_image_fs_info_one_filesystem(hulld):
    """Images and writable layers on the same filesystem: one (image) filesystem, so kubelet
    does not treat the node as split."""
    fs = hulld.image.ImageFsInfo(pb.ImageFsInfoRequest())
    assert len(fs.image_filesystems) == 1
    assert fs.image_filesystems[0].fs_id.mountpoint.startswith(hulld.root)
    assert list(fs.container_filesystems) == []


def test_image_fs_info_split_when_containers_on_another_mount(hulld_factory):
    d = hulld_factory(start=False)
    cdir = os.path.join(d.root, "containers")
    os.makedirs(cdir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", cdir],
                   check=True)
    try:
        d.start()
        with open(os.path.join(cdir, "filler"), "wb") as f:
            f.write(b"x" * (2 * MiB))
        fs = d.image.ImageFsInfo(pb.ImageFsInfoRequest())
        assert len(fs.image_filesystems) == 1 and len(fs.container_filesystems) == 1
        img, ctr = fs.image_filesystems[0], fs.container_filesystems[0]
        assert ctr.fs_id.mountpoint == cdir
        assert img.fs_id.mountpoint != ctr.fs_id.mountpoint  # kubelet's split test
        assert ctr.used_bytes.value >= 2 * MiB
        os.unlink(os.path.join(cdir, "filler"))
    finally:
        d.stop()
        # the test's own mount (the factory's teardown reports any mount left below the daemon)
        subprocess.run(["umount", cdir], check=True)


# ---- UpdatePodSandboxResources ------------------------------------------------------------------

def read_cgroup(controller, parent, name):
    with open(f"/sys/fs/cgroup/{controller}{parent}/{name}") as f:
        return f.read().strip()


def test_update_pod_sandbox_resources_is_informational(hulld, clean_pods):
    clean_pods(hulld)
    pod, _ = run_pod(hulld, "res", linux=pb.LinuxPodSandboxConfig(
        resources=pb.LinuxContainerResources(memory_limit_in_bytes=300 * MiB, cpu_shares=700)))
    parent = pod_info(hulld, pod)["info"]["cgroupParent"]
    before = (read_cgroup("memory", parent, "memory.limit_in_bytes"),
              read_cgroup("cpu", parent, "cpu.shares"),
              read_cgroup("cpu", parent, "cpu.cfs_quota_us"))
    assert before[:2] == (str(300 * MiB), "700")
    hulld.runtime.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=pod,
        overhead=pb.LinuxContainerResources(memory_limit_in_bytes=10 * MiB, cpu_shares=10),
        resources=pb.LinuxContainerResources(memory_limit_in_bytes=128 * MiB, cpu_shares=256,
                                             cpu_quota=50000, cpu_period=100000)))
    after = (read_cgroup("memory", parent, "memory.limit_in_bytes"),
             read_cgroup("cpu", parent, "cpu.shares"),
             read_cgroup("cpu", parent, "cpu.cfs_quota_us"))
    assert after == before  # kubelet owns the pod cgroup: nothing rewritten
    rec = pod_info(hulld, pod)["podResources"]
    assert rec["resources"]["memoryLimitInBytes"] == 128 * MiB
    assert rec["resources"]["cpuQuota"] == 50000
    assert rec["overhead"]["memoryLimitInBytes"] == 10 * MiB
    # recorded with the sandbox: survives a restart
    hulld.restart()
    assert pod_info(hulld, pod)["podResources"]["resources"]["cpuShares"] == 256
    with pytest.raises(grpc.RpcError) as e:
        hulld.runtime.UpdatePodSandboxResources(
            pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id="f" * 64))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    remove_pod(hulld, pod)


# ---- pod sandbox events -------------------------------------------------------------------------

def test_event_subscription_is_confirmed_before_any_event(hulld):
    """GetContainerEvents sends its response headers once the subscription is live, before any
    event: a client can wait for them and then know it misses nothing (no sleep needed)."""
    stream = hulld.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=30)
    t0 = time.monotonic()
    stream.initial_metadata()  # without the headers this waits for the deadline
    assert time.monotonic() - t0 < 10
    stream.cancel()
    assert stream.code() == grpc.StatusCode.CANCELLED


class EventListener:
    """GetContainerEvents in a thread; next_for(id) returns that id's events in order."""

    def __init__(self, d):
        self.q = queue.Queue()
        self.pending = []
        self.stream = cri.subscribe_events(d, timeout=60)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for ev in self.stream:
                self.q.put(ev)
        except grpc.RpcError:
            pass

    def next_for(self, cid, timeout=15):
        for i, ev in enumerate(self.pending):
            if ev.container_id == cid:
                return self.pending.pop(i)
        deadline = time.time() + timeout
        while True:
            ev = self.q.get(timeout=max(0.01, deadline - time.time()))
            if ev.container_id == cid:
                return ev
            self.pending.append(ev)

    def close(self):
        self.stream.cancel()
        self.thread.join(10)


def test_pod_sandbox_events(hulld, clean_pods):
    clean_pods(hulld)
    ev = EventListener(hulld)
    try:
        warm, _ = run_pod(hulld, "warm")
        assert ev.next_for(warm).container_event_type == pb.CONTAINER_CREATED_EVENT
        pod, _ = run_pod(hulld, "evpod")
        created = ev.next_for(pod)
        assert created.container_event_type == pb.CONTAINER_CREATED_EVENT
        assert created.pod_sandbox_status.id == pod
        assert created.pod_sandbox_status.metadata.name == "evpod"
        assert created.created_at > 0
        started = ev.next_for(pod)
        assert started.container_event_type == pb.CONTAINER_STARTED_EVENT
        assert started.pod_sandbox_status.state == pb.SANDBOX_READY
        assert started.created_at >= created.created_at

        hulld.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        stopped = ev.next_for(pod)
        assert stopped.container_event_type == pb.CONTAINER_STOPPED_EVENT
        assert stopped.pod_sandbox_status.id == pod
        assert stopped.pod_sandbox_status.state == pb.SANDBOX_NOTREADY
        # stopping again changes nothing: no second event
        hulld.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))

        hulld.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        deleted = ev.next_for(pod)
        assert deleted.container_event_type == pb.CONTAINER_DELETED_EVENT
        assert deleted.container_id == pod

        # removing a running pod: stopped, then deleted
        hulld.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=warm))
        kinds = [ev.next_for(warm).container_event_type for _ in range(3)]
        assert kinds == [pb.CONTAINER_STARTED_EVENT, pb.CONTAINER_STOPPED_EVENT,
                         pb.CONTAINER_DELETED_EVENT]
        with pytest.raises(queue.Empty):
            ev.next_for(pod, timeout=0.5)
    finally:
        ev.close()


# ---- ContainerStatus.stop_signal ----------------------------------------------------------------

@pytest.fixture(scope="module")
def signal_images(registry):  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    return {
        "none": registry.push_busybox("sig/none", tag),
        "usr1": registry.push_busybox("sig/usr1", tag, config={"StopSignal": "SIGUSR1"}),
        "num": registry.push_busybox("sig/num", tag, config={"StopSignal": "3"}),
        "rt": registry.push_busybox("sig/rt", tag, config={"StopSignal": "SIGRTMIN+3"}),
    }


@pytest.mark.parametrize("image,config_signal,expected", [
    ("usr1", pb.SIGQUIT, pb.SIGQUIT),          # the container config wins
    ("usr1", pb.RUNTIME_DEFAULT, pb.SIGUSR1),  # else the image's STOPSIGNAL
    ("num", pb.RUNTIME_DEFAULT, pb.SIGQUIT),   # numeric STOPSIGNAL
    ("rt", pb.RUNTIME_DEFAULT, pb.SIGRTMINPLUS3),
    ("none", pb.RUNTIME_DEFAULT, pb.SIGTERM),  # else SIGTERM
    ("none", pb.SIGRTMINPLUS3, pb.SIGRTMINPLUS3),
])
def test_container_status_stop_signal(hulld_factory, registry, signal_images,  # noqa: F811
                                      clean_pods, image, config_signal, expected):
    d = hulld_factory("--insecure-registry", registry.host)
    clean_pods(d)
    ref = signal_images[image].ref
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)))
    pod, pcfg = run_pod(d, "sig")
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                             image=pb.ImageSpec(image=ref), command=["sleep", "60"],
                             stop_signal=config_signal)
    cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg)).container_id
    st = d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert st.stop_signal == expected, pb.Signal.Name(st.stop_signal)
    # the same after a restart (from the saved record)
    d.restart()
    st = d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert st.stop_signal == expected
    remove_pod(d, pod)
