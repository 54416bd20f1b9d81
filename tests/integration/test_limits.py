"""Limits and hostile input end to end: registries that trickle or never end, layers that expand
without bound, credentials meant for another registry, insecure registry lists, names with
embedded NULs, duplicate mounts, trees deeper than any recursion limit, sparse files in image
volumes, and every RPC once with real pods and containers under ASan."""
import base64
import functools
import json
import os
import stat
import subprocess
import threading
import time
import uuid

import grpc
import pytest

import cri
from conftest import binary, pb
from registry import AuthProxy, Registry, make_layer, registry  # noqa: F401  (fixture)


def uniq(prefix="lim"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pull(d, ref, auth=None, timeout=120):
    req = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
    if auth:
        req.auth.CopyFrom(pb.AuthConfig(**auth))
    return d.image.PullImage(req, timeout=timeout).image_ref


def store_left(d):
    """What a failed pull may not leave behind: layers, temp files, images."""
    st = os.path.join(d.root, "images")
    left = []
    for sub in ("layers", "tmp", "l", "images"):
        p = os.path.join(st, sub)
        if os.path.isdir(p):
            left += [f"{sub}/{n}" for n in os.listdir(p)]
    return left


class SlowProxy(AuthProxy):
    """AuthProxy whose blob GETs trickle: headers first, then `rate` bytes every `interval`
    seconds (the whole body eventually, if nobody gives up).  With basic_realm set, /v2/
    requests without an Authorization header get a Basic challenge; every request's
    Authorization header is recorded."""

    def __init__(self, upstream, rate=None, interval=1.0, basic_realm=None):
        super().__init__(upstream)
        self.rate = rate
        self.interval = interval
        self.basic_realm = basic_realm
        self.auth_seen = []
        self.trickling = 0
        self.closed = False

    def close(self):
        self.closed = True
        super().close()

    def handle(self, h):
        self.auth_seen.append(h.headers.get("Authorization", ""))
        if self.basic_realm:
            want = "Basic " + base64.b64encode(self.basic_realm.encode()).decode()
            if h.headers.get("Authorization") != want:
                return self._send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                  {"WWW-Authenticate": 'Basic realm="lim"',
                                   "Content-Type": "application/json"})
        if self.rate and "/blobs/" in h.path and h.command == "GET":
            st, rh, body = self.upstream.request("GET", h.path)
            h.send_response(st)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            self.trickling += 1
            try:
                for i in range(0, len(body), self.rate):
                    if self.closed:
                        break
                    h.wfile.write(body[i:i + self.rate])
                    h.wfile.flush()
                    time.sleep(self.interval)
            except OSError:
                pass
            finally:
                self.trickling -= 1
            h.close_connection = True
            return
        return super().handle(h)


def wait_trickles_end(proxy, timeout=10):
    deadline = time.time() + timeout
    while proxy.trickling and time.time() < deadline:
        time.sleep(0.1)
    return proxy.trickling


# ---- registry limits ----------------------------------------------------------------------------
def test_trickling_registry_is_abandoned(hulld_factory, registry):  # noqa: F811
    """A registry trickling a few bytes/s is below the low-speed limit: the pull fails after
    pull_timeout (with its retries) instead of keeping a worker forever, and its connection
    is closed."""
    img = registry.push_busybox(uniq(), "latest")
    proxy = SlowProxy(registry, rate=8, interval=0.5)  # 16 bytes/s: "progress", forever
    try:
        # the default low-speed limit (1 KiB/s) applies
        d = hulld_factory("--insecure-registry", proxy.host, "--pull-timeout", "2")
        t0 = time.time()
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/{img.repo}:latest", timeout=45)
        took = time.time() - t0
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
        assert "/blobs/" in e.value.details()  # hulld gave up, not the client's deadline
        assert took < 30, took
        assert store_left(d) == []
        # hulld hung up on the trickle: the server's writes fail soon
        assert wait_trickles_end(proxy) == 0
    finally:
        proxy.close()


def test_pull_deadline_bounds_a_slow_but_steady_pull(hulld_factory, registry):  # noqa: F811
    """Fast enough for the low-speed check, but the whole pull has a deadline."""
    big = make_layer([{"name": "blob", "data": os.urandom(512 * 1024)}])
    img = registry.push_image(uniq(), "latest", [big])
    proxy = SlowProxy(registry, rate=4096, interval=0.05)  # ~80 KiB/s: ~7 s for the layer
    try:
        d = hulld_factory("--insecure-registry", proxy.host, "--pull-deadline", "2",
                          "--pull-low-speed-limit", "100")
        t0 = time.time()
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/{img.repo}:latest")
        took = time.time() - t0
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
        assert "deadline" in e.value.details()
        assert took < 6, took
        assert store_left(d) == []
        # the same registry at full speed works (the deadline is per pull)
        proxy.rate = None
        d2 = hulld_factory("--insecure-registry", proxy.host, "--pull-deadline", "30")
        assert pull(d2, f"{proxy.host}/{img.repo}:latest") == img.id
    finally:
        proxy.close()


def test_unsized_layer_has_a_download_cap(hulld_factory, registry):  # noqa: F811
    """A manifest whose layer descriptor gives no size: the download stops at
    max_unsized_blob with a clear error."""
    raw = make_layer([{"name": "noise", "data": os.urandom(3 * 1024 * 1024)}])
    img = registry.push_image(uniq(), "latest", [raw])
    m = dict(img.manifest)
    m["layers"] = [{k: v for k, v in lay.items() if k != "size"} for lay in m["layers"]]
    proxy = AuthProxy(registry)
    try:
        proxy.overrides[f"/v2/{img.repo}/manifests/latest"] = (
            200, {"Content-Type": img.media_type}, json.dumps(m).encode())
        d = hulld_factory("--insecure-registry", proxy.host, "--max-unsized-blob", "1048576")
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/{img.repo}:latest")
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
        assert "1048576-byte cap" in e.value.details()
        assert store_left(d) == []
        d2 = hulld_factory("--insecure-registry", proxy.host)  # default cap: 1 GiB
        assert pull(d2, f"{proxy.host}/{img.repo}:latest") == img.id
    finally:
        proxy.close()


def test_layer_expansion_cap(hulld_factory, registry):  # noqa: F811
    """64 MiB of zeros compress to ~64 KiB; with max_layer_size at 16 MiB the pull fails
    clearly and leaves nothing."""
    raw = make_layer([{"name": "small", "data": b"x" * 100},
                      {"name": "zeros", "data": b"\0" * (64 << 20)}])
    img = registry.push_image(uniq(), "latest", [raw])
    assert img.layers[0][2] < (1 << 20)
    d = hulld_factory("--insecure-registry", registry.host, "--max-layer-size", str(16 << 20))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, img.ref)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
    assert "16777216-byte cap" in e.value.details()
    assert "zeros" in e.value.details()
    assert store_left(d) == []
    d2 = hulld_factory("--insecure-registry", registry.host, "--max-layer-size", str(80 << 20))
    assert pull(d2, img.ref) == img.id


# ---- insecure registries ---------------------------------------------------------------------
def test_insecure_registry_keeps_host_and_port_together(hulld_factory, registry,  # noqa: F811
                                                       tmp_path):
    (tmp_path / "hull.json").write_text("{}\n")
    out = subprocess.run([binary("hulld"), "--print-config", "--config",
                          str(tmp_path / "hull.json"),
                          "--insecure-registry", "127.0.0.1:5000,reg.example:443",
                          "--insecure-registry", "plain.example",
                          "--cni-plugin-dirs", "/opt/a:/opt/b"],
                         capture_output=True, text=True, check=True)
    cfg = json.loads(out.stdout)
    assert cfg["insecure_registries"] == ["127.0.0.1:5000", "reg.example:443", "plain.example"]
    assert cfg["cni_plugin_dirs"] == ["/opt/a", "/opt/b"]  # path lists still split at ':'
    # through a pull: another port of the same host is not insecure (tried over https)
    img = registry.push_busybox(uniq(), "latest")
    other = f"127.0.0.1:{registry.port + 1 if registry.port < 65535 else registry.port - 1}"
    d = hulld_factory("--insecure-registry", other)
    with pytest.raises(grpc.RpcError) as e:
        pull(d, img.ref)
    assert f"https://{registry.host}/v2/" in e.value.details(), e.value.details()
    d2 = hulld_factory("--insecure-registry", registry.host)
    assert pull(d2, img.ref) == img.id


# ---- credentials go only to their registry --------------------------------------------------
def test_credentials_only_for_their_server_address(hulld_factory, registry):  # noqa: F811
    img = registry.push_busybox(uniq(), "latest")
    proxy = SlowProxy(registry, basic_realm="hull:s3cret")
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        ref = f"{proxy.host}/{img.repo}:latest"
        creds = {"username": "hull", "password": "s3cret"}
        other_port = proxy.port + 1 if proxy.port < 65535 else proxy.port - 1
        for addr in (f"127.0.0.1:{other_port}", "registry.example.com",
                     f"https://evil.example/{proxy.host}"):
            proxy.auth_seen.clear()
            with pytest.raises(grpc.RpcError) as e:
                pull(d, ref, auth=dict(creds, server_address=addr))
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value.details()
            assert "another registry" in e.value.details()
            assert proxy.auth_seen and all(a == "" for a in proxy.auth_seen), proxy.auth_seen
        assert store_left(d) == []
        # the registry's own address, in the forms kubelet sends, works
        for addr in (proxy.host, f"http://{proxy.host}/v2/", ""):
            proxy.auth_seen.clear()
            assert pull(d, ref, auth=dict(creds, server_address=addr)) == img.id
            assert any(a.startswith("Basic ") for a in proxy.auth_seen)
            d.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)))
    finally:
        proxy.close()


def test_credentials_not_sent_to_mirrors(hulld_factory, registry):  # noqa: F811
    """With no server_address, credentials are for the image's registry only: a mirror of it
    is asked anonymously (and here refuses), then the origin gets them."""
    img = registry.push_busybox(uniq(), "latest")
    mirror = SlowProxy(registry, basic_realm="hull:s3cret")
    origin = SlowProxy(registry, basic_realm="hull:s3cret")
    try:
        d = hulld_factory("--insecure-registry", f"{mirror.host},{origin.host}",
                          "--registry-mirror", f"{origin.host}=http://{mirror.host}")
        ref = f"{origin.host}/{img.repo}:latest"
        assert pull(d, ref, auth={"username": "hull", "password": "s3cret"}) == img.id
        assert mirror.auth_seen and all(a == "" for a in mirror.auth_seen), mirror.auth_seen
        assert any(a.startswith("Basic ") for a in origin.auth_seen)
    finally:
        mirror.close()
        origin.close()


# ---- pods and containers -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def bb_image(registry):  # noqa: F811
    return registry.push_busybox("lim/busybox", "1", config={"Cmd": ["/bin/sh"]})


@pytest.fixture
def env(hulld_factory, registry, bb_image, tmp_path):  # noqa: F811
    d = hulld_factory("--insecure-registry", registry.host)
    pull(d, bb_image.ref)
    d.img = bb_image
    d.logs = tmp_path / "logs"
    yield d
    cri.remove_all_pods(d)


# the pods here: namespace "lim", host network (network= overrides it)
run_pod = functools.partial(cri.new_pod, namespace="lim", network=pb.NODE)


def ctr_config(d, name, cmd, **extra):
    return cri.container_config(name, d.img.ref, cmd, log_path=f"{name}.log", **extra)


def create(d, pod, pcfg, name, cmd, **extra):
    return cri.create_container(d, pod, pcfg, ctr_config(d, name, cmd, **extra))


def wait_exited(d, cid, timeout=120):
    return cri.wait_state(d, cid, pb.CONTAINER_EXITED, timeout=timeout)


def invalid(call, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        call(*args, **kw)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    return e.value.details()


def nul_pod_config(d):
    return cri.pod_config("nulpod", namespace="lim", network=pb.NODE,
                          log_directory=d.logs / "nulpod")


def test_embedded_nul_refused_everywhere(env):
    d = env
    # pod metadata
    for field in ("name", "namespace", "uid"):
        cfg = nul_pod_config(d)
        setattr(cfg.metadata, field, getattr(cfg.metadata, field) + "\0evil")
        msg = invalid(d.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=cfg))
        assert f"config.metadata.{field}" in msg and "NUL" in msg, msg
    cfg = nul_pod_config(d)
    cfg.log_directory += "\0x"
    invalid(d.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=cfg))
    cfg = nul_pod_config(d)
    cfg.labels["k\0x"] = "v"
    invalid(d.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=cfg))
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
    pod, pcfg = run_pod(d, "nulctr")

    def ctr(**change):
        c = ctr_config(d, "c", ["true"])
        for k, v in change.items():
            if k == "mount":
                c.mounts.append(pb.Mount(container_path=v, host_path="/tmp"))
            elif k == "env":
                c.envs.append(pb.KeyValue(key=v, value="1"))
            elif k == "image":
                c.image.image = v
            elif k == "name":
                c.metadata.name = v
            else:
                setattr(c, k, v)
        return pb.CreateContainerRequest(pod_sandbox_id=pod, config=c, sandbox_config=pcfg)

    for change, field in ((dict(name="c\0x"), "config.metadata.name"),
                          (dict(image=d.img.ref + "\0x"), "config.image.image"),
                          (dict(mount="/mnt\0/etc"), "config.mounts.container_path"),
                          (dict(log_path="c.log\0../../x"), "config.log_path"),
                          (dict(env="K\0EY"), "config.envs.key"),
                          (dict(working_dir="/\0x"), "config.working_dir")):
        msg = invalid(d.runtime.CreateContainer, ctr(**change))
        assert field in msg, msg
    msg = invalid(d.runtime.CreateContainer, pb.CreateContainerRequest(
        pod_sandbox_id=pod + "\0", config=ctr_config(d, "c", ["true"]), sandbox_config=pcfg))
    assert "pod_sandbox_id" in msg
    invalid(d.image.PullImage, pb.PullImageRequest(image=pb.ImageSpec(image=d.img.ref + "\0x")))
    invalid(d.runtime.ContainerStatus, pb.ContainerStatusRequest(container_id="ab\0cd"))
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    # a long user string is echoed only as a bounded prefix
    msg = invalid(d.runtime.CreateContainer, ctr(name="n" * 5000 + "\0"))
    assert len(msg) < 300 and "…" in msg, msg
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id="f" * 10000))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(e.value.details()) < 200 and "…" in e.value.details(), e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id="é" * 5000))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(e.value.details().encode()) < 250 and "…" in e.value.details()
    # the same requests without the NUL work
    cid = d.runtime.CreateContainer(ctr()).container_id
    assert cid


def test_duplicate_mount_paths_refused(env, tmp_path):
    d = env
    pod, pcfg = run_pod(d, "dupmnt")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for p1, p2 in (("/data", "/data"), ("/data", "/data/"), ("/data", "//./data")):
        c = ctr_config(d, "c", ["true"])
        c.mounts.append(pb.Mount(container_path=p1, host_path=str(a)))
        c.mounts.append(pb.Mount(container_path="/other", host_path=str(a)))
        c.mounts.append(pb.Mount(container_path=p2, host_path=str(b)))
        msg = invalid(d.runtime.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=c, sandbox_config=pcfg))
        assert "mounts 0 and 2" in msg and '"/data"' in msg, msg
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    c = ctr_config(d, "c", ["true"])
    c.mounts.append(pb.Mount(container_path="/data", host_path=str(a)))
    c.mounts.append(pb.Mount(container_path="/data/sub", host_path=str(b)))
    assert d.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=c, sandbox_config=pcfg)).container_id


# chains of at most 1000 levels built with cd (a shell's $PWD stays under PATH_MAX), each
# earlier tree moved into the leaf of the next: /tmp/t/d/.../d/t/d/... is `levels` deep
DEEP = ('n={n}; while [ $n -gt 0 ]; do s=$n; [ $s -gt 1000 ] && s=1000; n=$((n-s)); '
        'mkdir /tmp/c && cd /tmp/c || exit 1; i=0; '
        'while [ $i -lt $s ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; echo x > leaf; '
        'if [ -d /tmp/t ]; then mv /tmp/t . || exit 1; fi; cd /tmp && mv c t || exit 1; done; '
        'echo done')


def tree_depth(path):
    """Directory levels below path (following the first subdirectory of each level)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    n = 0
    try:
        while True:
            subs = [e for e in os.listdir(fd)
                    if stat.S_ISDIR(os.stat(e, dir_fd=fd, follow_symlinks=False).st_mode)]
            if not subs:
                return n
            nfd = os.open(subs[0], os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            n += 1
    finally:
        os.close(fd)


@pytest.mark.parametrize("levels", [300, 5000])
def test_deep_tree_in_writable_layer_is_removed(env, levels):
    uppers = []
    try:
        deep_tree_removal(env, levels, uppers)
    finally:
        for u in uppers:  # never leave a tree Python's rmtree cannot remove
            subprocess.run(["rm", "-rf", "--one-file-system", u])


def deep_tree_removal(d, levels, uppers):
    pod, pcfg = run_pod(d, f"deep{levels}")
    cid = create(d, pod, pcfg, "deep", ["sh", "-c", DEEP.format(n=levels)])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    st = wait_exited(d, cid, timeout=300)
    assert st.exit_code == 0, open(st.log_path).read()[-2000:]
    info = json.loads(d.runtime.ContainerStatus(pb.ContainerStatusRequest(
        container_id=cid, verbose=True)).info["info"])
    upper = info["upperDir"]
    uppers.append(upper)
    assert tree_depth(os.path.join(upper, "tmp")) >= levels
    # a second container with its own deep tree goes with the pod
    cid2 = create(d, pod, pcfg, "deep2", ["sh", "-c", DEEP.format(n=levels)])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid2))
    assert wait_exited(d, cid2, timeout=300).exit_code == 0
    upper2 = json.loads(d.runtime.ContainerStatus(pb.ContainerStatusRequest(
        container_id=cid2, verbose=True)).info["info"])["upperDir"]
    uppers.append(upper2)
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    assert not os.path.exists(upper)
    assert not os.path.exists(os.path.dirname(upper))
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert not os.path.exists(upper2)
    assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
    assert list(d.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []


# ---- sparse files in image volumes ---------------------------------------------------------
GIB = 1 << 30


def sparse_layer(tmp_path):
    """A layer (GNU tar, pax sparse entries) with /data/big: 2 GiB apparent, 3 x 64 KiB of data
    (at 0, 1 GiB and the end).  The tar is a few hundred KiB."""
    src = tmp_path / "sparse-src"
    (src / "data").mkdir(parents=True)
    with open(src / "data" / "big", "wb") as f:
        for off in (0, GIB, 2 * GIB - 65536):
            f.seek(off)
            f.write(bytes([0x5a]) * 65536)
        f.truncate(2 * GIB)
    (src / "data" / "small").write_text("hello\n")
    out = subprocess.run(["tar", "--sparse", "--format=pax", "--numeric-owner", "--owner=0",
                          "--group=0", "-C", str(src), "-cf", "-", "data"],
                         capture_output=True, check=True).stdout
    subprocess.run(["rm", "-rf", str(src)])
    assert len(out) < 1 << 20
    return out


def test_image_volume_copy_up_keeps_holes(hulld_factory, registry, tmp_path):  # noqa: F811
    img = registry.push_busybox(uniq("sparse"), "latest", extra_layers=[sparse_layer(tmp_path)],
                                config={"Volumes": {"/data": {}}})
    d = hulld_factory("--insecure-registry", registry.host)
    pull(d, img.ref)
    d.img, d.logs = img, tmp_path / "logs"
    pod, pcfg = run_pod(d, "sparse")
    try:
        cids = [create(d, pod, pcfg, f"c{i}", ["sh", "-c", "wc -c < /data/big; cat /data/small"])
                for i in range(2)]
        for cid in cids:
            info = json.loads(d.runtime.ContainerStatus(pb.ContainerStatusRequest(
                container_id=cid, verbose=True)).info["info"])
            vols = os.path.join(os.path.dirname(info["upperDir"]), "volumes")
            (vol,) = os.listdir(vols)
            big = os.path.join(vols, vol, "big")
            st = os.stat(big)
            assert st.st_size == 2 * GIB
            assert st.st_blocks * 512 < 4 << 20, st.st_blocks  # ~192 KiB of data, not 2 GiB
            with open(big, "rb") as f:
                for off in (0, GIB, 2 * GIB - 65536):
                    f.seek(off)
                    assert f.read(65536) == bytes([0x5a]) * 65536
                f.seek(GIB // 2)
                assert f.read(4096) == bytes(4096)
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cids[0]))
        st = wait_exited(d, cids[0])
        assert st.exit_code == 0
        out = open(st.log_path).read()
        assert f" {2 * GIB}\n" in out and " hello\n" in out, out
    finally:
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def test_image_volume_copy_budget(hulld_factory, registry, tmp_path):  # noqa: F811
    img = registry.push_busybox(uniq("sparse"), "latest", extra_layers=[sparse_layer(tmp_path)],
                                config={"Volumes": {"/data": {}}})
    d = hulld_factory("--insecure-registry", registry.host, "--max-volume-copy-size", "100000")
    pull(d, img.ref)
    d.img, d.logs = img, tmp_path / "logs"
    pod, pcfg = run_pod(d, "budget")
    try:
        with pytest.raises(grpc.RpcError) as e:
            create(d, pod, pcfg, "c", ["true"])
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
        assert "100000-byte copy budget" in e.value.details(), e.value.details()
        assert "/data/big" in e.value.details()
        assert list(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
        # nothing left: no container directory, no volume copy
        left = subprocess.run(["find", d.root, "-name", "big"], capture_output=True,
                              text=True).stdout.split()
        assert [p for p in left if "/volumes/" in p] == []
        # a budget large enough for the data (holes do not count) works
        d2 = hulld_factory("--insecure-registry", registry.host,
                           "--max-volume-copy-size", str(256 * 1024))
        pull(d2, img.ref)
        d2.img, d2.logs = img, tmp_path / "logs2"
        pod2, pcfg2 = run_pod(d2, "budget2")
        assert create(d2, pod2, pcfg2, "c", ["true"])
        d2.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod2))
        d2.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod2))
    finally:
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


# ---- metrics and every RPC once, with a CNI pod and a running container ------------------------
@pytest.fixture
def cni_env(hulld_factory, registry, bb_image, tmp_path):  # noqa: F811
    from cni_env import NetEnv
    net = NetEnv(hulld_factory)
    net.write_bridge()
    d = net.hulld(*net.args(), "--insecure-registry", registry.host)
    d.img = bb_image
    d.logs = tmp_path / "logs"
    yield d
    net.cleanup()


def metric_labels(d, pm):
    """{(metric name, label key): set of values} over a PodSandboxMetrics' pod metrics."""
    keys = {m.name: list(m.label_keys) for m in d.runtime.ListMetricDescriptors(
        pb.ListMetricDescriptorsRequest()).descriptors}
    out = {}
    for m in pm.metrics:
        for k, v in zip(keys[m.name], m.label_values):
            out.setdefault(k, set()).add(v)
    return out


def test_every_rpc_once_with_live_pod(cni_env):
    """Each of the RPCs of both services, once, with a valid request against a CNI pod and a
    running container (hulld's sanitizer report is checked at teardown); the metrics'
    interface label is the pod's interface name."""
    d = cni_env
    called = set()

    def rt(name, req, **kw):
        called.add(name)
        return getattr(d.runtime, name)(req, timeout=60, **kw)

    def im(name, req):
        called.add(name)
        return getattr(d.image, name)(req, timeout=120)

    def stream(stub, name, req):
        called.add(name)
        return list(getattr(stub, name)(req, timeout=60))

    assert rt("Version", pb.VersionRequest()).runtime_name
    assert rt("Status", pb.StatusRequest(verbose=True)).status.conditions
    rt("RuntimeConfig", pb.RuntimeConfigRequest())
    rt("UpdateRuntimeConfig", pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.99.0.0/16"))))
    spec = pb.ImageSpec(image=d.img.ref)
    im("PullImage", pb.PullImageRequest(image=spec))
    assert im("ListImages", pb.ListImagesRequest()).images
    stream(d.image, "StreamImages", pb.StreamImagesRequest())
    assert im("ImageStatus", pb.ImageStatusRequest(image=spec, verbose=True)).image.id
    assert im("ImageFsInfo", pb.ImageFsInfoRequest()).image_filesystems
    events = d.runtime.GetContainerEvents(pb.GetEventsRequest())
    called.add("GetContainerEvents")
    got_event = []
    reader = threading.Thread(target=lambda: got_event.append(next(events)), daemon=True)
    reader.start()
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="allrpc", uid="allrpc-uid", namespace="lim"),
        log_directory=str(d.logs / "allrpc"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.POD))))
    pod = rt("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    try:
        assert rt("PodSandboxStatus", pb.PodSandboxStatusRequest(
            pod_sandbox_id=pod, verbose=True)).status.network.ip
        assert rt("ListPodSandbox", pb.ListPodSandboxRequest()).items
        stream(d.runtime, "StreamPodSandboxes", pb.StreamPodSandboxesRequest())
        cid = rt("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=ctr_config(d, "app", ["sleep", "1000"]),
            sandbox_config=cfg)).container_id
        rt("StartContainer", pb.StartContainerRequest(container_id=cid))
        reader.join(10)
        events.cancel()
        assert got_event and got_event[0].container_id in (pod, cid)
        assert rt("ListContainers", pb.ListContainersRequest()).containers
        stream(d.runtime, "StreamContainers", pb.StreamContainersRequest())
        assert rt("ContainerStatus", pb.ContainerStatusRequest(
            container_id=cid, verbose=True)).status.state == pb.CONTAINER_RUNNING
        rt("UpdateContainerResources", pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(cpu_shares=512)))
        rt("ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=cid))
        r = rt("ExecSync", pb.ExecSyncRequest(container_id=cid, cmd=["cat", "/sys/class/net/eth0/ifindex"],
                                            timeout=10))
        assert r.exit_code == 0 and r.stdout.strip()
        assert rt("Exec", pb.ExecRequest(container_id=cid, cmd=["true"], stdout=True)).url
        assert rt("Attach", pb.AttachRequest(container_id=cid, stdout=True, stderr=True)).url
        assert rt("PortForward", pb.PortForwardRequest(pod_sandbox_id=pod, port=[80])).url
        assert rt("ContainerStats", pb.ContainerStatsRequest(
            container_id=cid)).stats.attributes.id == cid
        assert [s.attributes.id for s in rt("ListContainerStats",
                                             pb.ListContainerStatsRequest()).stats] == [cid]
        assert [s.attributes.id for r in stream(d.runtime, "StreamContainerStats",
                                                pb.StreamContainerStatsRequest())
                for s in r.container_stats] == [cid]
        assert rt("PodSandboxStats", pb.PodSandboxStatsRequest(
            pod_sandbox_id=pod)).stats.attributes.id == pod
        assert [s.attributes.id for s in rt("ListPodSandboxStats",
                                             pb.ListPodSandboxStatsRequest()).stats] == [pod]
        assert [s.attributes.id for r in stream(d.runtime, "StreamPodSandboxStats",
                                                pb.StreamPodSandboxStatsRequest())
                for s in r.pod_sandbox_stats] == [pod]
        # checkpoint through CRIU: where CRIU cannot dump (this machine's kernel) the error says
        # so as FAILED_PRECONDITION with CRIU's reason (test_checkpoint.py covers the rest)
        ckpt = pb.CheckpointContainerRequest(container_id=cid, location=str(d.logs / "ckpt.tar"))
        if subprocess.run(["criu", "check"], capture_output=True).returncode == 0:
            rt("CheckpointContainer", ckpt)
            assert (d.logs / "ckpt.tar").exists()
        else:
            with pytest.raises(grpc.RpcError) as e:
                rt("CheckpointContainer", ckpt)
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value.details()
            assert "CRIU failed" in e.value.details()
        assert rt("ListMetricDescriptors", pb.ListMetricDescriptorsRequest()).descriptors
        pms = [m for m in rt("ListPodSandboxMetrics", pb.ListPodSandboxMetricsRequest()).pod_metrics
               if m.pod_sandbox_id == pod]
        assert len(pms) == 1
        ifaces = metric_labels(d, pms[0]).get("interface")
        assert ifaces and "eth0" in ifaces and ifaces <= {"eth0", "lo"}, ifaces
        spms = [m for resp in stream(d.runtime, "StreamPodSandboxMetrics",
                                     pb.StreamPodSandboxMetricsRequest())
                for m in resp.pod_sandbox_metrics if m.pod_sandbox_id == pod]
        assert "eth0" in metric_labels(d, spms[0]).get("interface", set())
        rt("UpdatePodSandboxResources", pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=pod, resources=pb.LinuxContainerResources(cpu_shares=1024)))
        rt("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=1))
        rt("RemoveContainer", pb.RemoveContainerRequest(container_id=cid))
    finally:
        rt("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        rt("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    im("RemoveImage", pb.RemoveImageRequest(image=spec))
    all_methods = {m.name for svc in ("RuntimeService", "ImageService")
                   for m in pb.DESCRIPTOR.services_by_name[svc].methods}
    assert len(all_methods) == 41
    assert called == all_methods, all_methods - called
    assert d.sanitizer_report() == ""
