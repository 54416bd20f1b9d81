"""The CRI error paths, each with the status code the CRI api.proto and kubelet expect:
FAILED_PRECONDITION for an operation the object's state does not allow, INVALID_ARGUMENT for an
ambiguous id prefix, NOT_FOUND for ids that name nothing; the Stream*Stats filters, checked
against List*Stats; UpdateContainerResources checked in the container's cgroups."""
import functools
import json
import os

import grpc
import pytest

import cri
from conftest import binary, pb
from cri import start_container, wait_state
from leaks import wait_clean
from registry import busybox_image, registry  # noqa: F401  (fixtures)

NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
MISSING = "f" * 64


@pytest.fixture
def d(hulld_factory, registry, busybox_image, tmp_path):  # noqa: F811
    d = hulld_factory("--insecure-registry", registry.host)
    cri.prepare(d, busybox_image, tmp_path / "logs")
    yield d
    cri.remove_all_pods(d)
    wait_clean(d, d.cgroup_parent)


def code(fn, *texts):
    """The status code fn() fails with (it must fail); each of texts is in the message."""
    with pytest.raises(grpc.RpcError) as e:
        fn()
    for t in texts:
        assert t in e.value.details(), e.value.details()
    return e.value.code()


# the pods here: host network
new_pod = functools.partial(cri.new_pod, network=pb.NODE)


def new_container(d, pod, pcfg, name, cmd=("sleep", "1000"), **kw):
    return cri.new_container(d, pod, pcfg, name, cmd, **kw)


def running(d, pod, pcfg, name, **kw):
    cid = new_container(d, pod, pcfg, name, **kw)
    start_container(d, cid)
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    return cid


def exited(d, pod, pcfg, name):
    cid = new_container(d, pod, pcfg, name, ("true",))
    start_container(d, cid)
    wait_state(d, cid, pb.CONTAINER_EXITED)
    return cid


def stream_calls(d, cid):
    """ExecSync, Exec and Attach of container cid, as thunks."""
    rt = d.runtime
    return {
        "ExecSync": lambda: rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["true"],
                                                           timeout=10)),
        "Exec": lambda: rt.Exec(pb.ExecRequest(container_id=cid, cmd=["true"], stdout=True)),
        "Attach": lambda: rt.Attach(pb.AttachRequest(container_id=cid, stdout=True)),
    }


# ---- FAILED_PRECONDITION ----------------------------------------------------------------------


def test_start_twice_or_after_exit(d):
    pod, pcfg = new_pod(d)
    cid = running(d, pod, pcfg, "twice")
    assert code(lambda: start_container(d, cid), "running") == FAILED_PRECONDITION
    assert cri.container_status(d, cid).state == pb.CONTAINER_RUNNING
    done = exited(d, pod, pcfg, "done")
    assert code(lambda: start_container(d, done), "exited") == FAILED_PRECONDITION
    assert cri.container_status(d, done).state == pb.CONTAINER_EXITED


def test_exec_and_attach_need_a_running_container(d):
    pod, pcfg = new_pod(d)
    created = new_container(d, pod, pcfg, "created")
    done = exited(d, pod, pcfg, "done")
    for cid in (created, done):
        for name, call in stream_calls(d, cid).items():
            assert code(call, "not running") == FAILED_PRECONDITION, (name, cid)
    for name, call in stream_calls(d, MISSING).items():
        assert code(call) == NOT_FOUND, name


def test_create_container_and_port_forward_in_a_stopped_pod(d):
    pod, pcfg = new_pod(d)
    cri.stop_pod(d, pod)
    assert code(lambda: new_container(d, pod, pcfg, "late"), "not ready") == FAILED_PRECONDITION
    assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
    assert code(lambda: d.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod,
                                                                    port=[80])),
                "not ready") == FAILED_PRECONDITION


def test_update_resources_of_an_exited_container(d):
    pod, pcfg = new_pod(d)
    done = exited(d, pod, pcfg, "done")
    req = pb.UpdateContainerResourcesRequest(
        container_id=done, linux=pb.LinuxContainerResources(cpu_shares=256))
    assert code(lambda: d.runtime.UpdateContainerResources(req), "not running") == \
        FAILED_PRECONDITION


# ---- INVALID_ARGUMENT: an ambiguous id prefix ---------------------------------------------------


def test_ambiguous_container_id_prefix(d):
    pod, pcfg = new_pod(d)
    by_first = {}
    # 17 ids, 16 hex digits: two of them share their first digit
    for i in range(17):
        cid = new_container(d, pod, pcfg, f"c{i}")
        by_first.setdefault(cid[0], []).append(cid)
        if len(by_first[cid[0]]) == 2:
            break
    a, b = by_first[cid[0]]
    common = os.path.commonprefix([a, b])
    status = d.runtime.ContainerStatus
    assert code(lambda: status(pb.ContainerStatusRequest(container_id=common)),
                "ambiguous") == INVALID_ARGUMENT
    assert code(lambda: cri.remove_container(d, common), "ambiguous") == INVALID_ARGUMENT
    # one more digit tells them apart
    assert status(pb.ContainerStatusRequest(container_id=a[:len(common) + 1])).status.id == a
    assert status(pb.ContainerStatusRequest(container_id=b[:len(common) + 1])).status.id == b


def test_ambiguous_pod_id_prefix(d):
    by_first = {}
    for i in range(17):
        pod, _ = new_pod(d, f"p{i}")
        by_first.setdefault(pod[0], []).append(pod)
        if len(by_first[pod[0]]) == 2:
            break
    a, b = by_first[pod[0]]
    common = os.path.commonprefix([a, b])
    status = d.runtime.PodSandboxStatus
    assert code(lambda: status(pb.PodSandboxStatusRequest(pod_sandbox_id=common)),
                "ambiguous") == INVALID_ARGUMENT
    assert code(lambda: cri.stop_pod(d, common), "ambiguous") == INVALID_ARGUMENT
    assert status(pb.PodSandboxStatusRequest(pod_sandbox_id=a[:len(common) + 1])).status.id == a


# ---- NOT_FOUND --------------------------------------------------------------------------------


def test_not_found(hulld):
    rt = hulld.runtime
    calls = {
        "ExecSync": lambda: rt.ExecSync(pb.ExecSyncRequest(container_id=MISSING, cmd=["true"])),
        "UpdateContainerResources": lambda: rt.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(container_id=MISSING,
                                               linux=pb.LinuxContainerResources(cpu_shares=2))),
        "UpdateContainerResources without resources": lambda: rt.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(container_id=MISSING)),
        "ReopenContainerLog": lambda: rt.ReopenContainerLog(
            pb.ReopenContainerLogRequest(container_id=MISSING)),
        "PodSandboxStats": lambda: rt.PodSandboxStats(
            pb.PodSandboxStatsRequest(pod_sandbox_id=MISSING)),
        "ContainerStats": lambda: rt.ContainerStats(
            pb.ContainerStatsRequest(container_id=MISSING)),
        "StartContainer": lambda: rt.StartContainer(
            pb.StartContainerRequest(container_id=MISSING)),
    }
    for name, call in calls.items():
        assert code(call, MISSING[:12]) == NOT_FOUND, name


# ---- Stream*Stats filters against List*Stats ----------------------------------------------------


def test_stats_filters_stream_matches_list(d):
    pa, ca = new_pod(d, "pa", labels={"tier": "web"})
    pb_, cb = new_pod(d, "pb", labels={"tier": "db"})
    a1 = running(d, pa, ca, "a1", labels={"role": "main"})
    a2 = running(d, pa, ca, "a2", labels={"role": "side"})
    b1 = running(d, pb_, cb, "b1", labels={"role": "main"})
    rt = d.runtime

    def containers(f):
        listed = sorted(s.attributes.id for s in rt.ListContainerStats(
            pb.ListContainerStatsRequest(filter=f)).stats)
        streamed = sorted(s.attributes.id for r in rt.StreamContainerStats(
            pb.StreamContainerStatsRequest(filter=f)) for s in r.container_stats)
        assert streamed == listed, f
        return listed

    cf = pb.ContainerStatsFilter
    assert containers(cf()) == sorted([a1, a2, b1])
    assert containers(cf(id=a2)) == [a2]
    assert containers(cf(id=a2[:10])) == [a2]
    assert containers(cf(pod_sandbox_id=pa)) == sorted([a1, a2])
    assert containers(cf(label_selector={"role": "main"})) == sorted([a1, b1])
    assert containers(cf(pod_sandbox_id=pb_, label_selector={"role": "main"})) == [b1]
    assert containers(cf(pod_sandbox_id=pb_, label_selector={"role": "side"})) == []
    assert containers(cf(id=MISSING)) == []

    def pods(f):
        listed = sorted(s.attributes.id for s in rt.ListPodSandboxStats(
            pb.ListPodSandboxStatsRequest(filter=f)).stats)
        streamed = sorted(s.attributes.id for r in rt.StreamPodSandboxStats(
            pb.StreamPodSandboxStatsRequest(filter=f)) for s in r.pod_sandbox_stats)
        assert streamed == listed, f
        return listed

    pf = pb.PodSandboxStatsFilter
    assert pods(pf()) == sorted([pa, pb_])
    assert pods(pf(id=pb_)) == [pb_]
    assert pods(pf(label_selector={"tier": "web"})) == [pa]
    assert pods(pf(label_selector={"tier": "none"})) == []
    assert pods(pf(id=MISSING)) == []
    # a pod's stats list its containers
    st = rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pa)).stats
    assert sorted(c.attributes.id for c in st.linux.containers) == sorted([a1, a2])


# ---- UpdateContainerResources in the cgroups ----------------------------------------------------


def cgroup_value(d, cid, ctrl, name):
    info = json.loads(d.runtime.ContainerStatus(pb.ContainerStatusRequest(
        container_id=cid, verbose=True)).info["info"])
    with open(f"/sys/fs/cgroup/{ctrl}{info['cgroupsPath']}/{name}") as f:
        return f.read().strip()


def test_update_container_resources_reaches_the_cgroups(d):
    pod, pcfg = new_pod(d)
    cid = running(d, pod, pcfg, "res", linux=pb.LinuxContainerConfig(
        resources=pb.LinuxContainerResources(cpu_shares=1024, cpu_period=100000,
                                             cpu_quota=50000, cpuset_cpus="0")))
    assert cgroup_value(d, cid, "cpu", "cpu.shares") == "1024"
    assert cgroup_value(d, cid, "cpu", "cpu.cfs_quota_us") == "50000"
    pids_before = cgroup_value(d, cid, "pids", "pids.max")
    ncpu = os.cpu_count()
    cpus = "0-1" if ncpu > 1 else "0"
    new = pb.LinuxContainerResources(cpu_shares=300, cpu_period=50000, cpu_quota=20000,
                                     cpuset_cpus=cpus, cpuset_mems="0",
                                     memory_limit_in_bytes=200 * 1024 * 1024)
    d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=new))
    assert cgroup_value(d, cid, "cpu", "cpu.shares") == "300"
    assert cgroup_value(d, cid, "cpu", "cpu.cfs_period_us") == "50000"
    assert cgroup_value(d, cid, "cpu", "cpu.cfs_quota_us") == "20000"
    assert cgroup_value(d, cid, "cpuset", "cpuset.cpus") == cpus
    assert cgroup_value(d, cid, "cpuset", "cpuset.mems") == "0"
    assert cgroup_value(d, cid, "memory", "memory.limit_in_bytes") == str(200 * 1024 * 1024)
    # CRI resources carry no pids limit: an update leaves the container's as it was
    assert cgroup_value(d, cid, "pids", "pids.max") == pids_before
    st = cri.container_status(d, cid).resources.linux
    assert (st.cpu_shares, st.cpu_period, st.cpu_quota, st.cpuset_cpus, st.cpuset_mems) == \
        (300, 50000, 20000, cpus, "0")
    # the process inside sees the new limits too
    assert cri.exec_sync(d, cid, "cat", "/sys/fs/cgroup/cpu/cpu.shares").strip() == "300"
    # a quota without a period is refused, and nothing changes
    bad = pb.LinuxContainerResources(cpu_quota=-5)
    assert code(lambda: d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=bad))) == INVALID_ARGUMENT
    assert cgroup_value(d, cid, "cpu", "cpu.cfs_quota_us") == "20000"


# ---- DEADLINE_EXCEEDED: ExecSync whose runtime exec hangs ----------------------------------------


def test_exec_sync_deadline_covers_a_hanging_runtime(hulld_factory, registry,  # noqa: F811
                                                     busybox_image, tmp_path):  # noqa: F811
    """ExecSync's timeout also bounds `RUNTIME exec` itself; past it the answer is
    DEADLINE_EXCEEDED (as for a command that runs too long), not an unknown failure."""
    hang = tmp_path / "hang-exec-runtime"
    hang.write_text("#!/bin/sh\n"
                    "for a; do [ \"$a\" = exec ] && exec sleep 60; done\n"
                    f"exec {binary('hull-oci')} \"$@\"\n")
    hang.chmod(0o755)
    d = hulld_factory("--insecure-registry", registry.host, "--runtime", f"hang={hang}")
    cri.prepare(d, busybox_image, tmp_path / "logs", handler="hang")
    pod, pcfg = new_pod(d)
    cid = running(d, pod, pcfg, "c")
    req = pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=1)
    assert code(lambda: d.runtime.ExecSync(req), "timeout") == \
        grpc.StatusCode.DEADLINE_EXCEEDED
    cri.remove_all_pods(d)
