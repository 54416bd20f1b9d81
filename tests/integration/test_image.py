"""ImageService against a real registry (Debian's docker-registry on loopback, started by the
`registry` fixture) and a real hulld: pulls by tag/digest/short name, manifest lists, mirrors,
plain HTTP, Basic and Bearer auth, faults (404, corrupt blob, a registry dying mid-download,
5xx), hostile layers, concurrency, list/status/remove/fs info, restart."""
import json
import os
import shutil
import subprocess
import threading
import uuid

import grpc
import pytest

from cri import Background, wait_for
from registry import (AuthProxy, Registry, auth_registry, busybox_entries,  # noqa: F401
                      make_layer, registry)


def uniq(prefix="img"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def hd(hulld_factory, registry):
    """hulld that treats the test registry as plain HTTP."""
    return hulld_factory("--insecure-registry", registry.host)


def pull(d, ref, auth=None, timeout=60):
    req = d.pb.PullImageRequest(image=d.pb.ImageSpec(image=ref))
    if auth:
        req.auth.CopyFrom(d.pb.AuthConfig(**auth))
    return d.image.PullImage(req, timeout=timeout).image_ref


def status(d, ref, verbose=False):
    return d.image.ImageStatus(d.pb.ImageStatusRequest(image=d.pb.ImageSpec(image=ref),
                                                       verbose=verbose), timeout=10)


def list_images(d, flt=None):
    req = d.pb.ListImagesRequest()
    if flt:
        req.filter.image.image = flt
    return list(d.image.ListImages(req, timeout=10).images)


def remove(d, ref):
    d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=ref)), timeout=10)


def store_dir(d):
    return os.path.join(d.root, "images")


def layer_dirs(d):
    p = os.path.join(store_dir(d), "layers")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def assert_nothing_left(d):
    st = store_dir(d)
    assert layer_dirs(d) == []
    assert os.listdir(os.path.join(st, "images")) == []
    assert os.listdir(os.path.join(st, "tmp")) == []
    assert os.listdir(os.path.join(st, "l")) == []
    assert list_images(d) == []


def code_of(excinfo):
    return excinfo.value.code()


# ---- pulls --------------------------------------------------------------------------------------
def test_pull_by_tag_status_and_verbose(hd, registry):
    img = registry.push_busybox(uniq(), "v1", config={"User": "1000:1000", "WorkingDir": "/tmp",
                                                      "Volumes": {"/data/../../x": {}}})
    image_id = pull(hd, img.ref)
    assert image_id == img.id
    st = status(hd, img.ref, verbose=True)
    assert st.image.id == img.id
    assert list(st.image.repo_tags) == [img.ref]
    assert list(st.image.repo_digests) == [img.digest_ref]
    assert st.image.size >= img.layers[0][2]
    assert st.image.uid.value == 1000
    assert st.image.username == ""
    info = json.loads(st.info["info"])
    assert info["imageSpec"]["config"]["User"] == "1000:1000"
    assert info["id"] == img.id
    # status by id, short id and digest
    assert status(hd, img.id).image.id == img.id
    assert status(hd, img.id[7:19]).image.id == img.id
    assert status(hd, img.digest_ref).image.id == img.id
    # missing: success with image unset
    assert not status(hd, f"{registry.host}/nope:latest").HasField("image")
    # the layer is unpacked with busybox hard links kept
    diff = os.path.join(store_dir(hd), "layers", img.layers[0][1][7:], "diff")
    a = os.stat(os.path.join(diff, "bin", "busybox"))
    b = os.stat(os.path.join(diff, "bin", "sh"))
    assert a.st_ino == b.st_ino
    assert oct(os.stat(os.path.join(diff, "tmp")).st_mode & 0o7777) == "0o1777"


def test_pull_by_digest_and_username(hd, registry):
    img = registry.push_busybox(uniq(), "t", config={"User": "app"})
    assert pull(hd, img.digest_ref) == img.id
    st = status(hd, img.digest_ref).image
    assert list(st.repo_tags) == []
    assert list(st.repo_digests) == [img.digest_ref]
    assert st.username == "app"
    assert not st.HasField("uid")
    # a wrong digest for the repo is a NOT_FOUND from the registry
    bad = f"{registry.host}/{img.repo}@sha256:" + "0" * 64
    with pytest.raises(grpc.RpcError) as e:
        pull(hd, bad)
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def test_invalid_reference(hd):
    for ref in ("Busybox", "busybox:bad/tag", "host:5000/x@sha256:12"):
        with pytest.raises(grpc.RpcError) as e:
            pull(hd, ref)
        assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT
        assert ref in e.value.details()


def test_404(hd, registry):
    img = registry.push_busybox(uniq(), "exists")
    with pytest.raises(grpc.RpcError) as e:
        pull(hd, f"{registry.host}/{img.repo}:missing")
    assert code_of(e) == grpc.StatusCode.NOT_FOUND
    assert "missing" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        pull(hd, f"{registry.host}/no-such-repo-{uuid.uuid4().hex[:6]}:latest")
    assert code_of(e) == grpc.StatusCode.NOT_FOUND
    assert_nothing_left(hd)


def test_short_name_through_mirror(hulld_factory, registry):
    registry.push_busybox("library/busybox", "latest")
    d = hulld_factory("--registry-mirror", f"docker.io=http://{registry.host}")
    image_id = pull(d, "busybox")
    st = status(d, "busybox").image
    assert st.id == image_id
    assert "docker.io/library/busybox:latest" in st.repo_tags
    assert status(d, "docker.io/library/busybox").image.id == image_id
    assert status(d, "library/busybox:latest").image.id == image_id


def test_mirror_fallback_to_origin(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    dead = Registry()  # a mirror without the image...
    dead_host = dead.host
    dead.close()  # ...and then not even running
    empty = Registry()  # a mirror that answers 404
    try:
        d = hulld_factory("--insecure-registry", registry.host,
                          "--registry-mirror", f"{registry.host}=http://{dead_host}",
                          "--registry-mirror", f"{registry.host}=http://{empty.host}")
        assert pull(d, img.ref) == img.id
        log = d.log()
        assert dead_host in log and empty.host in log
    finally:
        empty.close()


def test_proxy_from_environment(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    saved = {k: os.environ.get(k) for k in ("http_proxy", "no_proxy", "NO_PROXY")}
    try:
        os.environ["http_proxy"] = f"http://{proxy.host}"
        os.environ.pop("no_proxy", None)
        os.environ.pop("NO_PROXY", None)
        d = hulld_factory("--insecure-registry", "registry.invalid")  # started with the env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        # a name that only the proxy can resolve
        ref = f"registry.invalid/{img.repo}:latest"
        assert pull(d, ref) == img.id
        assert any(p.startswith("http://registry.invalid/v2/") for p in proxy.proxied)
    finally:
        proxy.close()


def test_plain_http_needs_insecure_registry(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    d = hulld_factory()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, img.ref)
    # HTTPS to a plain-HTTP registry: the registry is unreachable the way it was asked
    assert code_of(e) == grpc.StatusCode.UNAVAILABLE, e.value.details()
    assert_nothing_left(d)
    d2 = hulld_factory("--insecure-registry", "127.0.0.1")  # host without port: any port
    assert pull(d2, img.ref) == img.id


def test_https_registry_with_ca_file(hulld_factory):
    r = Registry(tls=True)
    try:
        img = r.push_busybox(uniq(), "latest")
        d = hulld_factory()  # HTTPS, verified against the system CAs: refused
        with pytest.raises(grpc.RpcError) as e:
            pull(d, img.ref)
        assert "certificate" in e.value.details().lower() or "SSL" in e.value.details()
        d2 = hulld_factory("--registry-ca", f"{r.host}={r.ca_file}")
        assert pull(d2, img.ref) == img.id
    finally:
        r.close()


@pytest.mark.parametrize("docker", [False, True])
def test_manifest_list(hd, registry, docker):
    repo = uniq("multi")
    amd = registry.push_busybox(repo, "amd64", docker=docker)
    arm = registry.push_image(repo, "arm64", [make_layer([{"name": "arm", "data": "x"}])],
                              arch="arm64", docker=docker)
    idx = registry.push_index(repo, "latest", [
        (arm, {"os": "linux", "architecture": "arm64"}),
        (amd, {"os": "linux", "architecture": "amd64"}),
    ], docker=docker)
    ref = f"{registry.host}/{repo}:latest"
    assert pull(hd, ref) == amd.id
    st = status(hd, ref).image
    assert f"{registry.host}/{repo}@{idx}" in st.repo_digests
    # by index digest too
    assert pull(hd, f"{registry.host}/{repo}@{idx}") == amd.id
    # an index without our platform
    idx2 = registry.push_index(repo, "armonly", [(arm, {"os": "linux", "architecture": "arm64"})],
                               docker=docker)
    with pytest.raises(grpc.RpcError) as e:
        pull(hd, f"{registry.host}/{repo}:armonly")
    assert code_of(e) == grpc.StatusCode.NOT_FOUND
    assert "linux/amd64" in e.value.details()
    assert idx2


def test_layer_formats_zstd_plain_and_no_end_marker(hd, registry):
    if shutil.which("zstd") is None:
        pytest.skip("zstd not installed")
    repo = uniq()
    extra = make_layer([{"name": "etc/zstd-layer", "data": "z"}])
    img = registry.push_busybox(repo, "zstd", extra_layers=[extra], compression="zstd")
    assert pull(hd, img.ref) == img.id
    raw = make_layer([{"name": "etc/no-eof", "data": "umoci"}], end_marker=False)
    img2 = registry.push_busybox(repo, "plain", extra_layers=[raw], compression=None)
    assert pull(hd, img2.ref) == img2.id
    diff = os.path.join(store_dir(hd), "layers", img2.layers[1][1][7:], "diff")
    with open(os.path.join(diff, "etc", "no-eof")) as f:
        assert f.read() == "umoci"


def test_whiteouts_in_overlay_mount(hd, registry, tmp_path):
    base = busybox_entries() + [
        {"name": "data/", "type": "dir"},
        {"name": "data/a", "data": "a"},
        {"name": "data/b", "data": "b"},
        {"name": "opq/", "type": "dir"},
        {"name": "opq/old", "data": "old"},
    ]
    top = [
        {"name": "data/.wh.a", "data": ""},
        {"name": "opq/", "type": "dir"},
        {"name": "opq/.wh..wh..opq", "data": ""},
        {"name": "opq/new", "data": "new"},
        {"name": "data/c", "data": "c"},
    ]
    img = registry.push_image(uniq(), "wh", [make_layer(base), make_layer(top)])
    pull(hd, img.ref)
    layers = os.path.join(store_dir(hd), "layers")
    lowers = [os.path.join(layers, diff_id[7:], "diff") for _, diff_id, _ in reversed(img.layers)]
    # the short links the C helper uses point at the same directories
    links = os.path.join(store_dir(hd), "l")
    targets = {os.path.realpath(os.path.join(links, n)) for n in os.listdir(links)}
    assert set(map(os.path.realpath, lowers)) <= targets
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + ":".join(lowers),
                    str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "data")) == ["b", "c"]
        assert sorted(os.listdir(merged / "opq")) == ["new"]
        assert os.path.exists(merged / "bin" / "sh")
        out = subprocess.run(["chroot", str(merged), "/bin/sh", "-c", "cat /data/b /opq/new"],
                             capture_output=True, text=True)
        assert out.stdout == "bnew"
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@pytest.mark.parametrize("docker_format", [False, True])
def test_umoci_skopeo_image(hd, registry, tmp_path, docker_format):
    """An image made by umoci (layer tars without end-of-archive, a whiteout layer, busybox
    hard links) and copied by skopeo, as OCI and as Docker schema 2."""
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "etc").mkdir()
    shutil.copy2("/bin/busybox", src / "bin" / "busybox")
    for a in ("sh", "ls", "cat"):
        os.link(src / "bin" / "busybox", src / "bin" / a)
    (src / "etc" / "motd").write_text("umoci\n")
    ref = registry.push_umoci(uniq("umoci"), "v1", str(src), whiteouts=["/bin/ls"],
                              docker_format=docker_format)
    image_id = pull(hd, ref)
    st = status(hd, ref, verbose=True)
    assert st.image.id == image_id
    spec = json.loads(st.info["info"])["imageSpec"]
    assert spec["config"]["Cmd"] == ["/bin/sh"]
    diff_ids = spec["rootfs"]["diff_ids"]
    assert len(diff_ids) == 2
    lowers = [os.path.join(store_dir(hd), "layers", d[7:], "diff") for d in reversed(diff_ids)]
    sh = os.stat(os.path.join(lowers[1], "bin", "sh"))
    assert sh.st_ino == os.stat(os.path.join(lowers[1], "bin", "busybox")).st_ino
    wh = os.lstat(os.path.join(lowers[0], "bin", "ls"))
    assert (wh.st_mode & 0o170000) == 0o020000 and wh.st_rdev == 0  # overlay whiteout
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + ":".join(lowers),
                    str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "bin")) == ["busybox", "cat", "sh"]
        assert (merged / "etc" / "motd").read_text() == "umoci\n"
    finally:
        subprocess.run(["umount", str(merged)], check=True)


# ---- auth ---------------------------------------------------------------------------------------
def test_basic_auth(hulld_factory, auth_registry):
    img = auth_registry.push_busybox(uniq(), "latest")
    d = hulld_factory("--insecure-registry", auth_registry.host)
    with pytest.raises(grpc.RpcError) as e:
        pull(d, img.ref)
    assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        pull(d, img.ref, auth={"username": "hull", "password": "wrong"})
    assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED
    assert pull(d, img.ref, auth={"username": "hull", "password": "s3cret"}) == img.id
    remove(d, img.ref)
    import base64
    tok = base64.b64encode(b"hull:s3cret").decode()
    assert pull(d, img.ref, auth={"auth": tok}) == img.id


def test_bearer_auth(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry, bearer=("alice", "pw"))
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        ref = f"{proxy.host}/{img.repo}:latest"
        with pytest.raises(grpc.RpcError) as e:
            pull(d, ref)
        assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED
        assert pull(d, ref, auth={"username": "alice", "password": "pw"}) == img.id
        n = len(proxy.token_requests)
        assert n >= 1
        assert any(f"repository%3A{img.repo}%3Apull" in p or f"repository:{img.repo}:pull" in p
                   for p in proxy.token_requests)
        remove(d, ref)
        assert pull(d, ref, auth={"username": "alice", "password": "pw"}) == img.id
        assert len(proxy.token_requests) == n  # token cached per scope and credentials
        # the registry forgets its tokens: a 401 to a cached token fetches a fresh one
        proxy.tokens.clear()
        remove(d, ref)
        assert pull(d, ref, auth={"username": "alice", "password": "pw"}) == img.id
        assert len(proxy.token_requests) == n + 1
        # a cached token is never handed to other credentials
        remove(d, ref)
        with pytest.raises(grpc.RpcError) as e:
            pull(d, ref, auth={"username": "alice", "password": "wrong"})
        assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED
        # OAuth2 refresh token (AuthConfig.identity_token)
        assert pull(d, ref, auth={"identity_token": "refresh-me"}) == img.id
        assert any(p.startswith("POST") for p in proxy.token_requests)
        remove(d, ref)
        with pytest.raises(grpc.RpcError):
            pull(d, ref, auth={"identity_token": "stale"})
        # a registry token is used as is
        tok = next(iter(proxy.tokens))[0]
        assert pull(d, ref, auth={"registry_token": tok}) == img.id
    finally:
        proxy.close()


# ---- faults -------------------------------------------------------------------------------------
def test_corrupt_blob_digest_mismatch(hd, registry):
    img = registry.push_busybox(uniq(), "latest",
                                extra_layers=[make_layer([{"name": "u", "data": uuid.uuid4().hex}])])
    path = registry.blob_path(img.layers[1][0])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0xFF
        f.seek(0)
        f.write(data)
    with pytest.raises(grpc.RpcError) as e:
        pull(hd, img.ref)
    assert "digest mismatch" in e.value.details()
    # nothing of this image is visible; the good layer may be kept (shared, verified)
    assert list_images(hd) == []
    assert img.layers[1][1][7:] not in layer_dirs(hd)
    assert os.listdir(os.path.join(store_dir(hd), "tmp")) == []
    assert not os.path.exists(os.path.join(store_dir(hd), "images", img.id[7:] + ".json"))


def test_registry_dies_mid_download(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        ref = f"{proxy.host}/{img.repo}:latest"
        proxy.truncate_blobs = True
        with pytest.raises(grpc.RpcError) as e:
            pull(d, ref)
        assert code_of(e) == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert_nothing_left(d)
        blob_gets = [p for m, p in proxy.requests if "/blobs/" in p]
        assert len(blob_gets) >= 2  # retried
        proxy.truncate_blobs = False
        proxy.fail_blobs_5xx = 2  # transient 503s are retried with backoff
        assert pull(d, ref) == img.id
    finally:
        proxy.close()


def test_broken_download_resumes_with_range(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        proxy.truncate_once = True
        assert pull(d, f"{proxy.host}/{img.repo}:latest") == img.id
        assert any(p.endswith(img.layers[0][0]) for p, _ in proxy.range_requests)
        assert "resuming" in d.log()
    finally:
        proxy.close()


def test_stalled_download_times_out(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host, "--pull-timeout", "1")
        proxy.stall_blobs = True
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/{img.repo}:latest")
        assert code_of(e) == grpc.StatusCode.DEADLINE_EXCEEDED
        proxy.stall_blobs = False
        assert_nothing_left(d)
    finally:
        proxy.stall_blobs = False
        proxy.close()


def test_schema1_refused(hulld_factory, registry):
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        body = json.dumps({"schemaVersion": 1, "name": "old", "tag": "v1", "fsLayers": [],
                           "history": [], "signatures": []}).encode()
        proxy.overrides["/v2/old/manifests/v1"] = (
            200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
            body)
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/old:v1")
        assert "schema 1" in e.value.details()
        assert_nothing_left(d)
    finally:
        proxy.close()


def test_pull_by_digest_of_present_image_needs_no_registry(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    d = hulld_factory("--insecure-registry", proxy.host)
    by_digest = f"{proxy.host}/{img.repo}@{img.digest}"
    assert pull(d, by_digest) == img.id
    proxy.close()
    assert pull(d, by_digest) == img.id  # manifest, config and layers are all local
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{proxy.host}/{img.repo}:latest")  # a tag must be asked
    assert code_of(e) == grpc.StatusCode.UNAVAILABLE


def test_403_is_permission_denied(hulld_factory, registry):
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        proxy.overrides["/v2/private/manifests/v1"] = (
            403, {"Content-Type": "application/json"}, b'{"errors":[{"code":"DENIED"}]}')
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/private:v1")
        assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED
        assert "403" in e.value.details()
    finally:
        proxy.close()


def test_registry_stopped(hulld_factory):
    r = Registry()
    img = r.push_busybox(uniq(), "latest")
    d = hulld_factory("--insecure-registry", r.host)
    r.close()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, img.ref)
    assert code_of(e) == grpc.StatusCode.UNAVAILABLE
    assert_nothing_left(d)


# ---- hostile layers (SECURITY.md: layer unpack writes outside the root) ---------------------------
@pytest.mark.parametrize("kind", ["dotdot", "symlink_dir", "symlink_rel", "hardlink"])
def test_hostile_layer_refused(hd, registry, tmp_path, kind):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_text("keep")
    entries = {
        "dotdot": [{"name": "../../../../../../" + str(victim)[1:] + "/pwned", "data": "x"}],
        "symlink_dir": [{"name": "esc", "type": "symlink", "target": str(victim)},
                        {"name": "esc/pwned", "data": "x"}],
        "symlink_rel": [{"name": "a/", "type": "dir"},
                        {"name": "a/esc", "type": "symlink",
                         "target": "../../../../../../../../" + str(victim)[1:]},
                        {"name": "a/esc/pwned", "data": "x"}],
        "hardlink": [{"name": "hl", "type": "hardlink",
                      "target": "../../../../../../../" + str(victim)[1:] + "/file"}],
    }[kind]
    img = registry.push_image(uniq("evil"), "latest", [make_layer(entries)])
    with pytest.raises(grpc.RpcError) as e:
        pull(hd, img.ref)
    assert "layer entry" in e.value.details()
    assert sorted(os.listdir(victim)) == ["file"]
    assert (victim / "file").read_text() == "keep"
    assert os.stat(victim / "file").st_nlink == 1
    assert_nothing_left(hd)


def test_symlink_metadata_not_followed(hd, registry, tmp_path):
    victim = tmp_path / "secret"
    victim.write_text("s")
    os.chmod(victim, 0o600)
    entries = [{"name": "link", "type": "symlink", "target": str(victim)},
               {"name": "link", "data": "replaced", "mode": 0o4777}]
    img = registry.push_image(uniq(), "latest", [make_layer(entries)])
    pull(hd, img.ref)
    assert oct(os.stat(victim).st_mode & 0o7777) == "0o600"
    assert victim.read_text() == "s"


# ---- concurrency --------------------------------------------------------------------------------
def test_parallel_pulls_download_each_blob_once(hd, registry):
    layers = [make_layer([{"name": f"l{i}/f", "data": os.urandom(256 * 1024)}]) for i in range(3)]
    img = registry.push_busybox(uniq(), "latest", extra_layers=layers)
    results, errors = [], []
    before = {d: registry.blob_gets(d) for d in [l[0] for l in img.layers] + [img.config_digest]}

    def go():
        try:
            results.append(pull(hd, img.ref))
        except grpc.RpcError as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [img.id] * 8
    for digest, n in before.items():
        assert registry.blob_gets(digest) == n + 1, digest
    # other calls are answered while pulls run (no global lock across I/O): checked by timing
    assert len(list_images(hd)) == 1


def test_parallel_pulls_of_images_sharing_a_layer(hd, registry):
    shared = make_layer([{"name": "shared/blob", "data": os.urandom(512 * 1024)}])
    imgs = [registry.push_busybox(uniq(), "latest",
                                  extra_layers=[shared, make_layer([{"name": "own", "data": str(i)}])])
            for i in range(4)]
    shared_digest = imgs[0].layers[1][0]
    assert all(i.layers[1][0] == shared_digest for i in imgs)
    before = registry.blob_gets(shared_digest)
    errors = []

    def go(img):
        try:
            assert pull(hd, img.ref) == img.id
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in imgs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert registry.blob_gets(shared_digest) == before + 1
    assert len(list_images(hd)) == 4


def test_killed_mid_pull_leaves_nothing(hulld_factory, registry):
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        proxy.stall_blobs = True
        call = Background(pull, d, f"{proxy.host}/{img.repo}:latest")
        # the pull is stalled inside a blob download
        wait_for(lambda: any("/blobs/" in p for _, p in proxy.requests), what="a blob request")
        d.proc.kill()
        d.proc.wait()
        with pytest.raises(grpc.RpcError) as e:
            call.result()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        proxy.stall_blobs = False
        d.proc = None
        d.start()
        assert_nothing_left(d)
        assert pull(d, f"{proxy.host}/{img.repo}:latest") == img.id
    finally:
        proxy.stall_blobs = False
        proxy.close()


def test_concurrent_pull_remove_list_stress(hd, registry):
    """Pulls, removes and lists of images sharing layers, all at once: every call succeeds and
    the store ends consistent."""
    shared = make_layer([{"name": "shared", "data": os.urandom(64 * 1024)}])
    imgs = [registry.push_busybox(uniq(), "latest",
                                  extra_layers=[shared, make_layer([{"name": "own", "data": str(i)}])])
            for i in range(3)]
    errors = []
    import time
    stop = time.time() + 4

    def worker(k):
        i = 0
        while time.time() < stop:
            img = imgs[(k + i) % len(imgs)]
            try:
                op = (k + i) % 3
                if op == 0:
                    assert pull(hd, img.ref) == img.id
                elif op == 1:
                    remove(hd, img.ref)
                else:
                    list_images(hd)
                    status(hd, img.ref)
            except Exception as e:  # pragma: no cover
                errors.append(repr(e))
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for img in imgs:
        assert pull(hd, img.ref) == img.id
    assert sorted(i.id for i in list_images(hd)) == sorted(i.id for i in imgs)
    assert len(layer_dirs(hd)) == 2 + len(imgs)  # busybox, shared, one own layer each
    for img in imgs:
        remove(hd, img.id)
    assert_nothing_left(hd)


def test_status_answers_during_slow_pull(hulld_factory, registry):
    """No lock is held across registry I/O: other calls answer while a pull hangs."""
    img = registry.push_busybox(uniq(), "latest")
    proxy = AuthProxy(registry)
    try:
        d = hulld_factory("--insecure-registry", proxy.host)
        proxy.stall_blobs = True
        result = []
        t = threading.Thread(target=lambda: result.append(
            pull(d, f"{proxy.host}/{img.repo}:latest")))
        t.start()
        import time
        deadline = time.time() + 10
        while not any("/blobs/" in p for _, p in proxy.requests) and time.time() < deadline:
            time.sleep(0.05)
        s = time.time()
        assert list_images(d) == []
        assert not status(d, img.ref).HasField("image")
        d.image.ImageFsInfo(d.pb.ImageFsInfoRequest(), timeout=5)
        remove(d, img.ref)
        assert time.time() - s < 1.0
        assert t.is_alive()  # the pull is still hanging
        proxy.stall_blobs = False  # the connection breaks; the retry succeeds
        t.join()
        assert result == [img.id]
    finally:
        proxy.stall_blobs = False
        proxy.close()


# ---- list / remove / fs info / restart -------------------------------------------------------------
def test_list_filter_remove(hd, registry):
    repo = uniq()
    a = registry.push_busybox(repo, "a", extra_layers=[make_layer([{"name": "a", "data": "a"}])])
    b = registry.push_busybox(repo, "b", extra_layers=[make_layer([{"name": "b", "data": "b"}])])
    pull(hd, a.ref)
    pull(hd, b.ref)
    # a second tag on image a
    registry.push_manifest(repo, "a2", json.dumps(a.manifest, indent=1).encode(), a.media_type)
    pull(hd, f"{registry.host}/{repo}:a2")
    assert {i.id for i in list_images(hd)} == {a.id, b.id}
    assert [i.id for i in list_images(hd, a.ref)] == [a.id]
    assert [i.id for i in list_images(hd, b.id)] == [b.id]
    assert list_images(hd, f"{registry.host}/{repo}:zzz") == []
    streamed = [i.id for r in hd.image.StreamImages(hd.pb.StreamImagesRequest(), timeout=10)
                for i in r.images]
    assert sorted(streamed) == sorted([a.id, b.id])
    st = status(hd, a.ref).image
    assert sorted(st.repo_tags) == sorted([a.ref, f"{registry.host}/{repo}:a2"])
    n_layers = len(layer_dirs(hd))
    assert n_layers == 3  # busybox shared + a + b
    # by tag: removes the image with all its tags
    remove(hd, a.ref)
    assert not status(hd, f"{registry.host}/{repo}:a2").HasField("image")
    assert len(layer_dirs(hd)) == 2  # a's own layer gone, busybox shared with b stays
    remove(hd, a.ref)  # idempotent
    remove(hd, a.id)
    # by digest
    remove(hd, b.digest_ref)
    assert list_images(hd) == []
    assert layer_dirs(hd) == []
    # by id
    pull(hd, b.ref)
    remove(hd, b.id)
    assert list_images(hd) == []


def test_image_fs_info(hd, registry):
    info = hd.image.ImageFsInfo(hd.pb.ImageFsInfoRequest(), timeout=10)
    before = info.image_filesystems[0]
    assert before.fs_id.mountpoint == store_dir(hd)
    img = registry.push_busybox(uniq(), "latest")
    pull(hd, img.ref)
    after = hd.image.ImageFsInfo(hd.pb.ImageFsInfoRequest(), timeout=10).image_filesystems[0]
    assert after.used_bytes.value >= before.used_bytes.value + 1_900_000
    assert after.inodes_used.value > before.inodes_used.value + 10
    assert after.timestamp > 0


def test_state_survives_restart(hd, registry):
    img = registry.push_busybox(uniq(), "latest")
    pull(hd, img.ref)
    # a crash mid-pull leaves a temp dir behind: it must be cleaned, never shown
    junk = os.path.join(store_dir(hd), "tmp", "layer-JUNK")
    os.makedirs(os.path.join(junk, "diff"))
    half = os.path.join(store_dir(hd), "layers", "f" * 64)
    os.makedirs(os.path.join(half, "diff"))  # no layer.json: never committed
    hd.restart()
    st = status(hd, img.ref).image
    assert st.id == img.id
    assert list(st.repo_tags) == [img.ref]
    assert not os.path.exists(junk)
    assert not os.path.exists(half)
    remove(hd, img.ref)
    hd.restart()
    assert list_images(hd) == []


def test_no_fd_or_thread_leak(hd, registry):
    def counts():
        pid = hd.proc.pid
        return (len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task")))

    img = registry.push_busybox(uniq(), "latest",
                                extra_layers=[make_layer([{"name": "x", "data": "x"}])])
    pull(hd, img.ref)  # warm up worker threads and gRPC
    remove(hd, img.ref)
    fds0, threads0 = counts()
    for _ in range(3):
        pull(hd, img.ref)
        remove(hd, img.ref)
        with pytest.raises(grpc.RpcError):
            pull(hd, f"{registry.host}/{img.repo}:missing")
    # (a failed pull's connections close a moment after its answer)
    wait_for(lambda: (lambda c: c[0] <= fds0 and c[1] <= threads0 + 2)(counts()), timeout=10,
             what="hulld's fds and threads back to where they were")


def test_sighup_reloads_registry_settings(hulld_factory, registry, tmp_path):  # noqa: F811
    """Registry mirrors and insecure registries are re-read on SIGHUP, without a restart."""
    import time
    img = registry.push_busybox(uniq(), "hup")
    cfg = tmp_path / "hull.json"
    cfg.write_text(json.dumps({"log_level": "debug"}))
    d = hulld_factory("--config", str(cfg))
    with pytest.raises(grpc.RpcError):  # HTTPS to a plain-HTTP registry fails
        pull(d, img.ref)
    cfg.write_text(json.dumps({"log_level": "debug", "insecure_registries": [registry.host]}))
    d.proc.send_signal(1)
    wait_for(lambda: "SIGHUP" in d.log(), what="the reload")
    pull(d, img.ref)
    assert status(d, img.ref).image.id == img.id
