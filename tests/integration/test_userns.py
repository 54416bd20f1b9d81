"""Pod user namespaces, recursive read-only mounts and supplemental_groups_policy end to end:
a real hulld, real pods and containers (hull-oci, and runc as a second handler), checked from
inside the container and on the host."""
import json
import os
import subprocess
import tempfile

import grpc
import pytest

import cri
from conftest import pb
from cri import sh
from leaks import mounts_below
from registry import make_layer, registry  # noqa: F401  (fixture)
from ctr import code_of, create, run_pod, status, userns_pod  # noqa: F401
from cri import wait_state  # noqa: F401
from registry import busybox_image  # noqa: F401  (fixture)

HANDLERS = ["hull-oci", "runc"]


@pytest.fixture
def d(hulld_factory, registry, busybox_image, tmp_path):  # noqa: F811
    # "old" stands for a runtime without recursive read-only mounts: its `features` says nothing
    h = hulld_factory("--insecure-registry", registry.host, "--runtime", "runc=/usr/sbin/runc",
                      "--runtime", "old=/bin/true")
    yield cri.prepare(h, busybox_image, tmp_path / "logs", "hull-oci")
    cri.remove_all_pods(h)


def start(d, pod, pcfg, name, cmd=("sleep", "1000"), **extra):
    cid = create(d, pod, pcfg, name, list(cmd), **extra)
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    return cid


# ---- Status features ------------------------------------------------------------------------

def test_status_reports_features(d):
    st = d.runtime.Status(pb.StatusRequest())
    assert st.features.supplemental_groups_policy
    by_name = {h.name: h.features for h in st.runtime_handlers}
    assert by_name[""].recursive_read_only_mounts          # the default is hull-oci
    assert by_name["hull-oci"].recursive_read_only_mounts
    assert by_name["runc"].recursive_read_only_mounts       # runc 1.1+ lists "rro"
    assert not by_name["old"].recursive_read_only_mounts
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


@pytest.mark.parametrize("handler", HANDLERS)
def test_recursive_read_only_mount(d, tree_with_submount, handler):
    top = tree_with_submount
    pod, pcfg = run_pod(d, "rro-" + handler.replace("-", ""), handler=handler)
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
    # a runtime whose features do not list "rro": refused for that handler, with the reason
    rpod, rcfg = run_pod(d, "rrorunc", handler="old")
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


# ---- pod user namespaces --------------------------------------------------------------------

@pytest.mark.parametrize("handler", HANDLERS)
def test_pod_user_namespace(d, handler):
    # hulld's directories sit in a 0700 temp dir: let the mapped ids through it, as /var/lib
    # lets them through to /var/lib/hull (hulld itself makes its own directories 0711)
    os.chmod(d.base, 0o711)
    vol = tempfile.mkdtemp(prefix="hull-userns-vol-", dir="/tmp")
    os.chmod(vol, 0o755)
    try:
        with open(os.path.join(vol, "host-file"), "w") as f:
            f.write("hi\n")
        pod, pcfg = userns_pod(d, "uns-" + handler.replace("-", ""), handler)
        mnt = [pb.Mount(container_path="/vol", host_path=vol)]
        c1 = start(d, pod, pcfg, "one", mounts=mnt)
        c2 = start(d, pod, pcfg, "two", mounts=mnt, linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(
                run_as_user=pb.Int64Value(value=1000))))
        for cid in (c1, c2):
            out = sh(d, cid, "cat /proc/self/uid_map /proc/self/gid_map")[1].split()
            assert out == ["0", "200000", "65536"] * 2, out
        # the host sees the container's processes with the mapped ids
        code, out, err = sh(d, c1, "id -u; stat -c %u:%g /bin/busybox /; cat /vol/host-file; "
                                   "echo new > /newfile && echo rootfs-ok; "
                                   "touch /vol/by-root && echo vol-ok")
        assert code == 0, err
        assert out.split() == ["0", "0:0", "0:0", "hi", "rootfs-ok", "vol-ok"], out
        # files written in the volume carry the container's ids on the host (id-mapped mount)
        st = os.stat(os.path.join(vol, "by-root"))
        assert (st.st_uid, st.st_gid) == (0, 0)
        os.chmod(vol, 0o777)
        assert sh(d, c2, "id -u; touch /vol/by-1000 && echo ok")[1].split() == ["1000", "ok"]
        assert os.stat(os.path.join(vol, "by-1000")).st_uid == 1000
        # both containers are really in a user namespace: the host sees the mapped uid
        ps = subprocess.run(["ps", "-eo", "uid=,args="], capture_output=True, text=True).stdout
        assert any(l.split()[0] == "200000" and "sleep 1000" in l for l in ps.splitlines()), ps
        assert any(l.split()[0] == "201000" and "sleep 1000" in l for l in ps.splitlines()), ps
        # the file written in the rootfs is owned by the mapped root on the host (upper dir)
        ups = subprocess.run(["find", d.root, "-name", "newfile", "-path", "*upper*"],
                             capture_output=True, text=True).stdout.split()
        assert len(ups) == 1 and os.stat(ups[0]).st_uid == 200000, ups
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        # nothing left mounted: id-mapped volumes, the pinned user namespace
        assert mounts_below(d.base) == [], mounts_below(d.base)
        assert sorted(os.listdir(vol)) == ["by-1000", "by-root", "host-file"]
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", vol])


@pytest.mark.parametrize("handler", HANDLERS)
def test_pod_user_namespace_shared_pid_and_net(d, handler):
    """The pod's infra process and namespaces belong to the pod's user namespace: its containers
    share a pid namespace they can mount /proc for, and the pod root may bind low ports in the
    pod's network namespace (owned by the pod's user namespace, as with containerd)."""
    os.chmod(d.base, 0o711)
    pod, pcfg = userns_pod(d, "unspid-" + handler.replace("-", ""), handler, pid=pb.POD)
    c1 = start(d, pod, pcfg, "one", cmd=("sleep", "1001"))
    c2 = start(d, pod, pcfg, "two", cmd=("sleep", "1002"))
    code, out, err = sh(d, c2, "ps -o args; nc -l -p 80 & for i in $(seq 50); do "
                              "netstat -ltn | grep -q ':80 ' && break; sleep 0.1; done; "
                              "netstat -ltn; kill %1")
    assert code == 0, err
    assert "sleep 1001" in out and "sleep 1002" in out, out
    assert ":80 " in out, out
    # the infra process runs in the pod's user namespace, and so does its pid namespace's
    # creator: the containers' pid namespace is the infra process's
    c2pid = sh(d, c2, "readlink /proc/self/ns/pid; cat /proc/1/uid_map")[1].split()
    assert c2pid[1:] == ["0", "200000", "65536"], c2pid
    assert sh(d, c2, "cat /proc/1/cmdline")[1].startswith("hull-pause")


def test_pod_user_namespace_any_length(d):
    """A mapping of another length than kubelet's 65536 (critest v1.37 maps 100000 ids from
    host id 1000): the container sees exactly that mapping."""
    os.chmod(d.base, 0o711)
    m = [pb.IDMapping(host_id=300000, container_id=0, length=100000)]
    pod, pcfg = userns_pod(d, "uns-len", "hull-oci", uids=m, gids=m)
    c = start(d, pod, pcfg, "one")
    out = sh(d, c, "cat /proc/self/uid_map /proc/self/gid_map")[1].split()
    assert out == ["0", "300000", "100000"] * 2, out


@pytest.mark.parametrize("uids,gids,mode,needle", [
    ([pb.IDMapping(host_id=200000, container_id=0, length=65536)] * 2, None, pb.POD, "exactly one"),
    ([pb.IDMapping(host_id=200000, container_id=1, length=65536)], None, pb.POD, "container id 0"),
    ([pb.IDMapping(host_id=200000, container_id=0, length=0)], None, pb.POD, "length 0"),
    ([pb.IDMapping(host_id=0, container_id=0, length=65536)], None, pb.POD, "host id 0"),
    ([pb.IDMapping(host_id=4294960000, container_id=0, length=65536)], None, pb.POD, "past"),
    ([], [], pb.POD, "exactly one"),
    (None, None, pb.CONTAINER, "not supported"),
])
def test_pod_user_namespace_bad_mappings(d, uids, gids, mode, needle):
    code, msg = code_of(lambda: userns_pod(d, "bad", "hull-oci", uids=uids, gids=gids,
                                           mode=mode))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and needle in msg, msg
    assert not d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items



def test_pod_user_namespace_survives_restart(d):
    os.chmod(d.base, 0o711)
    vol = tempfile.mkdtemp(prefix="hull-userns-vol-", dir="/tmp")
    try:
        pod, pcfg = userns_pod(d, "unsrestart", "hull-oci")
        cid = start(d, pod, pcfg, "one", mounts=[pb.Mount(container_path="/vol", host_path=vol)])
        d.restart()
        out = sh(d, cid, "cat /proc/self/uid_map; touch /vol/after && stat -c %u /vol/after")[1]
        assert out.split() == ["0", "200000", "65536", "0"], out
        # a new container of the recovered pod joins the same user namespace
        c2 = start(d, pod, pcfg, "two")
        assert sh(d, c2, "cat /proc/self/uid_map")[1].split() == ["0", "200000", "65536"]
        # one user namespace for the pod: the containers' and the pinned one are the same
        ns1, ns2 = (sh(d, c, "readlink /proc/self/ns/user")[1].strip() for c in (cid, c2))
        pins = os.path.join(d.state_dir, "ns", "user")
        pinned = [os.stat(os.path.join(pins, f)).st_ino for f in os.listdir(pins)]
        assert ns1 == ns2 == f"user:[{pinned[0]}]", (ns1, ns2, pinned)
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        assert mounts_below(d.base) == [], mounts_below(d.base)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", vol])


# ---- pod boundaries: what a user-namespace pod opens to others ------------------------------

def as_nobody(*cmd):
    """Runs cmd as the host's uid/gid 65534 with no supplementary groups."""
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd],
                          capture_output=True, text=True)


@pytest.mark.parametrize("handler", HANDLERS)
def test_userns_pod_opens_nothing_to_others(d, handler):
    """A user-namespace pod gets what it needs without widening hulld's directories: after it
    ran, an unprivileged host user can neither read another pod's hosts file or /dev/shm nor
    the user-namespace pod's own, and the modes of root and state are what they were.  Inside,
    /etc/hosts, /etc/resolv.conf, /etc/hostname and /dev/shm belong to the pod's root."""
    os.chmod(d.base, 0o711)  # as /var/lib is: hulld's own directories are below
    modes = {p: os.stat(p).st_mode for p in (d.root, d.state_dir)}
    victim, vcfg = run_pod(d, "victim-" + handler.replace("-", ""), handler=handler)
    vc = start(d, victim, vcfg, "v")
    assert sh(d, vc, "echo secret > /dev/shm/s && echo ok")[1].strip() == "ok"
    pod, pcfg = userns_pod(d, "unsiso-" + handler.replace("-", ""), handler)
    cid = start(d, pod, pcfg, "one")
    code, out, err = sh(d, cid, "stat -c %u:%g /etc/hosts /etc/resolv.conf /etc/hostname "
                                "/dev/shm; echo '10.1.2.3 extra' >> /etc/hosts && echo hosts-ok; "
                                "touch /dev/shm/mine && stat -c %u /dev/shm/mine")
    assert code == 0, err
    assert out.split() == ["0:0"] * 4 + ["hosts-ok", "0"], out
    # on the host they are the pod's mapped root's
    assert os.stat(os.path.join(d.root, "sandboxes", pod, "hosts")).st_uid == 200000
    for p in (d.root, d.state_dir):
        assert os.stat(p).st_mode == modes[p], (p, oct(os.stat(p).st_mode))
    targets = [os.path.join(d.root, "sandboxes", victim, "hosts"),
               os.path.join(d.state_dir, "sandboxes", victim, "shm", "s"),
               os.path.join(d.root, "sandboxes", pod, "hosts"),
               os.path.join(d.state_dir, "sandboxes", pod, "shm", "mine")]
    for t in targets:
        assert os.path.exists(t), t
        r = as_nobody("cat", t)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (t, r)
    for t in (os.path.join(d.state_dir, "sandboxes", victim, "shm"),
              os.path.join(d.state_dir, "containers", cid, "rootfs"),
              os.path.join(d.root, "containers", cid)):
        r = as_nobody("ls", t)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (t, r)
    r = as_nobody("touch", os.path.join(d.state_dir, "sandboxes", victim, "shm", "planted"))
    assert r.returncode != 0, r
    # the per-pod and per-container directories are 0700 (the user-namespace pod's: its root's)
    for p, uid in ((os.path.join(d.root, "sandboxes", victim), 0),
                   (os.path.join(d.state_dir, "sandboxes", victim), 0),
                   (os.path.join(d.root, "sandboxes", pod), 200000),
                   (os.path.join(d.state_dir, "sandboxes", pod), 200000),
                   (os.path.join(d.state_dir, "containers", cid), 200000),
                   (os.path.join(d.root, "containers", cid), 200000)):
        st = os.stat(p)
        assert (st.st_mode & 0o777, st.st_uid) == (0o700, uid), (p, oct(st.st_mode), st.st_uid)
    for p in (d.root, d.state_dir):
        assert os.stat(p).st_mode == modes[p], (p, oct(os.stat(p).st_mode))


def test_userns_pod_refused_when_root_is_private(hulld_factory, registry, busybox_image,  # noqa: F811
                                                 tmp_path):
    """hulld never widens its configured directories: with a 0700 root, a user-namespace pod
    is refused with FAILED_PRECONDITION naming the directory, and the mode stays 0700."""
    h = hulld_factory("--insecure-registry", registry.host, start=False)
    os.chmod(h.base, 0o711)
    os.makedirs(h.root, mode=0o700)
    os.chmod(h.root, 0o700)
    h.start()
    d = cri.prepare(h, busybox_image, tmp_path / "logs", "hull-oci")
    try:
        code, msg = code_of(lambda: userns_pod(d, "unspriv", "hull-oci"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, msg)
        assert h.root in msg and "o+x" in msg, msg
        assert os.stat(h.root).st_mode & 0o777 == 0o700
        assert not d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
        # a pod without a user namespace is unaffected
        pod, _ = run_pod(d, "plain")
        assert pod
    finally:
        cri.remove_all_pods(h)


def test_mount_idmappings_and_status(d):
    """Mount.uid_mappings/gid_mappings as kubelet sends them (the pod's own mappings) make an
    id-mapped volume; any other mapping, or mappings in a pod without a user namespace, are
    INVALID_ARGUMENT.  PodSandboxStatus reports the pod's user namespace with its mappings."""
    os.chmod(d.base, 0o711)
    vol = tempfile.mkdtemp(prefix="hull-userns-vol-", dir="/tmp")
    os.chmod(vol, 0o755)
    try:
        pod, pcfg = userns_pod(d, "unsmap", "hull-oci")
        st = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
        us = st.linux.namespaces.options.userns_options
        assert us.mode == pb.POD
        assert [(m.container_id, m.host_id, m.length) for m in us.uids] == [(0, 200000, 65536)]
        assert [(m.container_id, m.host_id, m.length) for m in us.gids] == [(0, 200000, 65536)]
        own = [pb.IDMapping(container_id=0, host_id=200000, length=65536)]
        ok = pb.Mount(container_path="/vol", host_path=vol, uidMappings=own, gidMappings=own)
        cid = start(d, pod, pcfg, "one", mounts=[ok])
        assert sh(d, cid, "touch /vol/f && stat -c %u /vol/f")[1].split() == ["0"]
        assert os.stat(os.path.join(vol, "f")).st_uid == 0  # id-mapped back to the host's 0
        for bad, needle in (
                ([pb.IDMapping(container_id=0, host_id=0, length=65536)], "not the pod's"),
                ([pb.IDMapping(container_id=0, host_id=300000, length=65536)], "not the pod's"),
                ([pb.IDMapping(container_id=1, host_id=200000, length=65535)], "container id 0"),
                (own * 2, "exactly one")):
            m = pb.Mount(container_path="/vol", host_path=vol, uidMappings=bad, gidMappings=own)
            code, msg = code_of(lambda: create(d, pod, pcfg, "bad", ["true"], mounts=[m]))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and needle in msg, msg
        plain, plcfg = run_pod(d, "plainmap")
        st = d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=plain)).status
        assert st.linux.namespaces.options.userns_options.mode == pb.NODE
        code, msg = code_of(lambda: create(d, plain, plcfg, "bad", ["true"], mounts=[ok]))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "user namespace" in msg, msg
    finally:
        cri.remove_all_pods(d)
        subprocess.run(["rm", "-rf", "--one-file-system", vol])
