"""Whole pods end to end: a real registry, the real Debian CNI plugins (bridge, host-local,
portmap, loopback), hull-oci (and runc as a second handler), hull-conmon.  A pod of three
containers sharing its namespaces and one volume, reached through a hostPort; failures that
must leave nothing behind; and 20 pods x 2 containers created and removed in parallel."""
import os
import re
import subprocess
import threading
import urllib.request

import grpc
import pytest

import cri
from conftest import pb
from cri import exec_sync as exec_ok, wait_for
from registry import busybox_entries, make_layer, registry  # noqa: F401  (fixture)
from cni_env import NetEnv, kubelet_like

CRI_LINE = re.compile(r"^\S+ (stdout|stderr) (P|F) (.*)$")


def applets():
    out = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


@pytest.fixture(scope="module")
def image(registry):  # noqa: F811
    return registry.push_image("e2e/busybox", "1", [make_layer(busybox_entries(applets()))],
                               config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]})


@pytest.fixture
def pod_env(hulld_factory, registry, image, tmp_path):  # noqa: F811
    net = NetEnv(hulld_factory)
    net.write_bridge()
    d = net.hulld(*net.args(), "--insecure-registry", registry.host,
                  "--runtime", "runc=/usr/sbin/runc")
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image.ref)), timeout=60)
    d.img = image
    d.net = net
    d.logs = tmp_path / "logs"
    yield d
    net.remove_all_pods()
    net.cleanup()


def container(d, pod, pcfg, name, cmd, **kw):
    cid = cri.create_container(d, pod, pcfg, cri.container_config(
        name, d.img.ref, cmd, log_path=f"{name}.log", **kw))
    cri.start_container(d, cid)
    return cid


def fetch(url, timeout=20):
    errors = []

    def get():
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.read().decode()
        except OSError as e:
            errors[:] = [e]
            return None

    try:
        return wait_for(get, timeout=timeout, interval=0.2, what=url)
    except AssertionError:
        raise AssertionError(f"{url}: {errors[0] if errors else 'timeout'}")


@pytest.mark.parametrize("handler", ["hull-oci", "runc"])
def test_three_containers_one_volume_and_a_host_port(pod_env, tmp_path, handler):
    d = pod_env
    port = 21000 + (int(d.net.tag, 16) % 9000) + (1 if handler == "runc" else 0)
    shared = tmp_path / "shared"
    shared.mkdir()
    pcfg = kubelet_like("web", port_mappings=[pb.PortMapping(protocol=pb.TCP,
                                                             container_port=8080,
                                                             host_port=port)])
    pcfg.log_directory = str(d.logs)
    pod = cri.run_pod(d, pcfg, handler)
    vol = [pb.Mount(container_path="/shared", host_path=str(shared))]
    writer = container(d, pod, pcfg, "writer",
                       ["sh", "-c", "echo 'hello from the pod' > /shared/index.html; "
                                    "echo written; echo oops >&2; sleep 1000"], mounts=vol)
    web = container(d, pod, pcfg, "web", ["httpd", "-f", "-p", "8080", "-h", "/shared"],
                    mounts=vol)
    side = container(d, pod, pcfg, "side", ["sh", "-c", "while true; do sleep 1; done"],
                     mounts=vol)
    # through the hostPort (portmap DNAT) from the host's loopback
    assert fetch(f"http://127.0.0.1:{port}/index.html") == "hello from the pod\n"
    # the three share the pod's network and UTS namespaces, and the volume
    ip = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status \
        .network.ip
    assert ip.startswith(d.net.subnet_prefix + ".")
    hostnames = set()
    for cid in (writer, web, side):
        hostnames.add(exec_ok(d, cid, "hostname").strip())
        assert f"inet {ip}/" in exec_ok(d, cid, "ip", "-o", "-4", "addr", "show", "eth0")
        assert exec_ok(d, cid, "cat", "/shared/index.html") == "hello from the pod\n"
    assert len(hostnames) == 1
    # one container reaches another over the pod's loopback
    assert "hello from the pod" in exec_ok(d, side, "wget", "-q", "-O", "-",
                                           "http://127.0.0.1:8080/index.html")
    # the writer's log, in the CRI format at the pod's log directory
    log_path = d.logs / "writer.log"
    wait_for(lambda: log_path.exists() and "oops" in log_path.read_text(), timeout=10,
             what="the writer's stderr line in its log")
    lines = [CRI_LINE.match(line) for line in log_path.read_text().splitlines()]
    assert all(lines)
    assert sorted((m.group(1), m.group(3)) for m in lines) == [("stderr", "oops"),
                                                              ("stdout", "written")]
    cri.stop_pod(d, pod)
    cri.remove_pod(d, pod)
    assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
    assert_nothing_left(d)


def mounts_below(path):
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(path)]


def monitors_of(d):
    out = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if "hull-conmon" in line and d.state_dir in line]


def cgroups_below(parent):
    found = []
    for ctrl in ("memory", "cpu", "pids", "cpuacct", "blkio"):
        root = os.path.join("/sys/fs/cgroup", ctrl) + parent
        if os.path.isdir(root):
            found += [os.path.join(dp, n) for dp, dns, _ in os.walk(root) for n in dns
                      if n.startswith("hull-")]
    return found


def assert_nothing_left(d):
    # monitors exit right after their container
    wait_for(lambda: monitors_of(d) == [], timeout=5, interval=0.1,
             what=f"the monitors to exit: {monitors_of(d)}")
    assert mounts_below(os.path.join(d.state_dir, "containers")) == []
    for sub in (os.path.join(d.state_dir, "containers"), os.path.join(d.root, "containers"),
                os.path.join(d.state_dir, "s"), os.path.join(d.state_dir, "exits"),
                os.path.join(d.root, "store", "containers")):
        left = os.listdir(sub) if os.path.isdir(sub) else []
        assert left == [], (sub, left)
    assert cgroups_below(d.net.cgroup_parent) == []


def test_failures_leave_nothing_behind(pod_env):
    d = pod_env
    pcfg = kubelet_like("fail")
    pod = cri.run_pod(d, pcfg)
    cases = [
        (dict(image=pb.ImageSpec(image=d.img.ref),
              linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                  run_as_username="nosuchuser"))), "nosuchuser", grpc.StatusCode.NOT_FOUND),
        (dict(image=pb.ImageSpec(image=d.img.ref),
              mounts=[pb.Mount(container_path="/x", host_path="relative/dir")]), "relative/dir",
         grpc.StatusCode.INVALID_ARGUMENT),
        (dict(image=pb.ImageSpec(image=d.img.ref + "-missing")), "missing",
         grpc.StatusCode.NOT_FOUND),
        # the runtime's own failure: UNKNOWN, as containerd answers it
        (dict(image=pb.ImageSpec(image=d.img.ref), command=["/no/such/binary"]), "no/such",
         grpc.StatusCode.UNKNOWN),
    ]
    for kw, word, want in cases:
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="bad"), **kw)
        with pytest.raises(grpc.RpcError) as e:
            d.runtime.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg), timeout=60)
        assert word in e.value.details(), e.value.details()
        assert e.value.code() == want, (word, e.value.code(), e.value.details())
        assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
        assert_nothing_left(d)
    # the name is free again after each failure
    ok = container(d, pod, pcfg, "bad", ["true"])
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=ok))
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id="0" * 64, config=pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="x"), image=pb.ImageSpec(image=d.img.ref)),
            sandbox_config=pcfg))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert_nothing_left(d)


def test_20_pods_2_containers_in_parallel(pod_env):
    d = pod_env
    errors = []

    def one(i):
        try:
            pcfg = kubelet_like(f"par-{i}")
            pod = cri.run_pod(d, pcfg, timeout=120)
            ids = [container(d, pod, pcfg, f"c{k}", ["sleep", "1000"]) for k in range(2)]
            for cid in ids:
                assert exec_ok(d, cid, "true") == ""
            cri.stop_pod(d, pod, timeout=120)
            cri.remove_pod(d, pod, timeout=120)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"pod {i}: {e}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert len(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 0
    assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
    assert_nothing_left(d)
