"""Pod user namespaces, recursive read-only mounts and supplemental_groups_policy end to end:
a real hulld, real pods and containers (hull-oci, and runc as a second handler), checked from
inside the container and on the host."""
import os
import subprocess
import tempfile

import grpc
import pytest

from conftest import pb
from registry import make_layer, registry  # noqa: F401  (fixture)
from test_container import busybox_image, create, run_pod, status, wait_state  # noqa: F401

HANDLERS = ["hull-oci", "runc"]


@pytest.fixture
def d(hulld_factory, registry, busybox_image, tmp_path):  # noqa: F811
    h = hulld_factory("--insecure-registry", registry.host, "--runtime", "runc=/usr/sbin/runc")
    h.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=busybox_image.ref)))
    h.logs = tmp_path / "logs"
    h.img = busybox_image
    h.handler = "hull-oci"
    yield h
    try:
        for s in h.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            h.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=s.id))
            h.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=s.id))
    except grpc.RpcError:
        pass


def start(d, pod, pcfg, name, cmd=("sleep", "1000"), **extra):
    cid = create(d, pod, pcfg, name, list(cmd), **extra)
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    return cid


def sh(d, cid, script):
    r = d.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script],
                                              timeout=10))
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


# ---- Status features ------------------------------------------------------------------------

def test_status_reports_features(d):
    st = d.runtime.Status(pb.StatusRequest())
    assert st.features.supplemental_groups_policy
    by_name = {h.name: h.features for h in st.runtime_handlers}
    assert by_name[""].recursive_read_only_mounts          # the default is hull-oci
    assert by_name["hull-oci"].recursive_read_only_mounts
    assert not by_name["runc"].recursive_read_only_mounts   # runc 1.1 has no "rro"
    for name in ("", "hull-oci", "runc"):
        assert by_name[name].user_namespaces, name


# ---- recursive read-only mounts -------------------------------------------------------------

@pytest.fixture
def tree_with_submount():
    """A host directory with a tmpfs mounted on its sub/ directory."""
    top = tempfile.mkdtemp(prefix="hull-rro-", dir="/tmp")
    sub = os.path.join(top, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "rro-test", sub], check=True)
    try:
        yield top
    finally:
        subprocess.run(["umount", "-l", sub])
        subprocess.run(["rm", "-rf", "--one-file-system", top])


def test_recursive_read_only_mount(d, tree_with_submount):
    top = tree_with_submount
    pod, pcfg = run_pod(d, "rro")
    rro = pb.Mount(container_path="/rro", host_path=top, readonly=True,
                   recursive_read_only=True, propagation=pb.PROPAGATION_PRIVATE)
    ro = pb.Mount(container_path="/ro", host_path=top, readonly=True)
    cid = start(d, pod, pcfg, "c", mounts=[rro, ro])
    for path in ("/rro/x", "/rro/sub/x"):
        code, _, err = sh(d, cid, f"touch {path}")
        assert code != 0 and "Read-only file system" in err, (path, err)
    # a plain read-only bind leaves the submount writable
    assert sh(d, cid, "touch /ro/x")[0] != 0
    assert sh(d, cid, "touch /ro/sub/x && echo ok")[1] == "ok\n"
    assert os.path.exists(os.path.join(top, "sub", "x"))


def test_recursive_read_only_rules(d, tree_with_submount):
    pod, pcfg = run_pod(d, "rrobad")

    def make(**kw):
        m = pb.Mount(container_path="/rro", host_path=tree_with_submount,
                     recursive_read_only=True, **kw)
        return lambda: create(d, pod, pcfg, "c", ["true"], mounts=[m])

    code, msg = code_of(make(readonly=False))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "readonly" in msg
    code, msg = code_of(make(readonly=True, propagation=pb.PROPAGATION_HOST_TO_CONTAINER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # runc 1.1.5 does not know "rro": refused for that handler, with the reason
    rpod, rcfg = run_pod(d, "rrorunc", handler="runc")
    m = pb.Mount(container_path="/rro", host_path=tree_with_submount, readonly=True,
                 recursive_read_only=True)
    code, msg = code_of(lambda: create(d, rpod, rcfg, "c", ["true"], mounts=[m]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not supported" in msg


# ---- supplemental_groups_policy -------------------------------------------------------------

@pytest.fixture(scope="module")
def groups_image(registry):  # noqa: F811
    group = "root:x:0:\napp:x:1000:\nextra:x:5000:app\n"
    layer = make_layer([{"name": "etc/", "type": "dir"}, {"name": "etc/group", "data": group}])
    return registry.push_busybox("ctr/groups", "1", extra_layers=[layer])


@pytest.mark.parametrize("handler", HANDLERS)
def test_supplemental_groups_policy(d, groups_image, handler):
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=groups_image.ref)))
    pod, pcfg = run_pod(d, "sgp", handler=handler)
    got = {}
    for name, policy in (("merge", pb.Merge), ("strict", pb.Strict)):
        sc = pb.LinuxContainerSecurityContext(
            run_as_user=pb.Int64Value(value=1000), supplemental_groups=[3000],
            supplemental_groups_policy=policy)
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                                 image=pb.ImageSpec(image=groups_image.ref),
                                 command=["sleep", "1000"],
                                 linux=pb.LinuxContainerConfig(security_context=sc))
        cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg)).container_id
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
        wait_state(d, cid, pb.CONTAINER_RUNNING)
        got[name] = sorted(int(g) for g in sh(d, cid, "id -G")[1].split())
        assert sorted(status(d, cid).user.linux.supplemental_groups) == got[name]
    assert got["merge"] == [1000, 3000, 5000]
    assert got["strict"] == [1000, 3000]
