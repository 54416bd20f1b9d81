"""Robustness of image pulls (issue #23): disk that failed pulls leave behind, decompression
bombs, header injection through the token server, the gRPC codes of hostile answers, and
pulls whose caller gave up.  Hostile behaviour comes from a small HTTP server in this module
(127.0.0.1, ephemeral port); normal images from the real docker-registry (`registry`)."""
import gzip
import hashlib
import http.server
import io
import json
import os
import socketserver
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid

import grpc
import pytest

from registry import (OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,  # noqa: F401
                      busybox_entries, make_layer, registry)

MiB = 1024 * 1024


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def uniq(prefix="r"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Hostile:
    """A registry that answers what the test tells it to.  routes: path -> fn(handler) (or a
    (status, headers, body) tuple); every request is recorded as (method, path, headers)."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self.sent = {}  # path -> body bytes written
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(("GET", self.path, dict(self.headers.items())))
                path = self.path.split("?", 1)[0]
                r = outer.routes.get(path)
                if r is None:
                    return outer.send(self, 404, {"Content-Type": "application/json"},
                                      b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                if callable(r):
                    return r(self)
                return outer.send(self, *r)

            do_POST = do_GET

        self.server = _Server(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def send(self, h, status, headers, body=b""):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stream(self, path, total, chunk=64 * 1024):
        """Serves `total` bytes of 'a' at path (no size in any descriptor), counting what the
        client actually took."""
        self.sent[path] = 0

        def fn(h):
            h.send_response(200)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(total))
            h.end_headers()
            buf = b"a" * chunk
            try:
                while self.sent[path] < total:
                    h.wfile.write(buf)
                    self.sent[path] += len(buf)
            except OSError:
                pass
        self.routes[path] = fn

    def manifest(self, repo, ref, doc, media_type=OCI_MANIFEST):
        body = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
        self.routes[f"/v2/{repo}/manifests/{ref}"] = (200, {"Content-Type": media_type}, body)
        self.routes[f"/v2/{repo}/manifests/{sha256(body)}"] = (200, {"Content-Type": media_type},
                                                              body)
        return sha256(body)

    def blob(self, repo, data):
        d = sha256(data)
        self.routes[f"/v2/{repo}/blobs/{d}"] = (200, {"Content-Type": "application/octet-stream"},
                                               data)
        return d

    def image(self, repo, tag, layers, config_size=True):
        """A valid image (layers: uncompressed tar bytes).  Returns (manifest digest, doc)."""
        descs, diff_ids = [], []
        for raw in layers:
            blob = gzip.compress(raw, compresslevel=1, mtime=0)
            descs.append({"mediaType": OCI_LAYER_GZIP, "digest": self.blob(repo, blob),
                          "size": len(blob)})
            diff_ids.append(sha256(raw))
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cdesc = {"mediaType": OCI_CONFIG, "digest": self.blob(repo, cfg)}
        if config_size:
            cdesc["size"] = len(cfg)
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": descs}
        return self.manifest(repo, tag, doc), doc

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile():
    h = Hostile()
    yield h
    h.close()


@pytest.fixture
def hd(hulld_factory, hostile, registry):
    return hulld_factory("--insecure-registry", hostile.host, "--insecure-registry", registry.host)


def pull(d, ref, timeout=60):
    return d.image.PullImage(d.pb.PullImageRequest(image=d.pb.ImageSpec(image=ref)),
                             timeout=timeout).image_ref


def pull_error(d, ref, timeout=60):
    with pytest.raises(grpc.RpcError) as ei:
        pull(d, ref, timeout)
    return ei.value


def remove(d, ref):
    d.image.RemoveImage(d.pb.RemoveImageRequest(image=d.pb.ImageSpec(image=ref)), timeout=30)


def blobs(d):
    p = os.path.join(d.root, "images", "blobs", "sha256")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def layers(d):
    p = os.path.join(d.root, "images", "layers")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def fs_used(d):
    return d.image.ImageFsInfo(d.pb.ImageFsInfoRequest(),
                               timeout=10).image_filesystems[0].used_bytes.value


def zero_layer(name, size):
    """A layer holding one file of `size` zero bytes (a few KiB compressed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(name)
        ti.size = size
        ti.mode = 0o644
        ti.mtime = 1700000000

        class Zeros(io.RawIOBase):
            left = size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n
        tf.addfile(ti, io.BufferedReader(Zeros()))
    return buf.getvalue()


# ---- 3. disk after failed pulls ---------------------------------------------------------------

def test_unsized_config_is_capped_at_the_config_limit(hd, hostile):
    """A config descriptor without a size: the download stops at the 8 MiB config limit (not
    max_unsized_blob, 1 GiB) and nothing is stored."""
    repo = uniq()
    fake = sha256(b"never matches")
    path = f"/v2/{repo}/blobs/{fake}"
    hostile.stream(path, 256 * MiB)
    hostile.manifest(repo, "t", {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                 "config": {"mediaType": OCI_CONFIG, "digest": fake},
                                 "layers": []})
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
    # what the server got rid of: the cap plus what sits in socket buffers
    assert hostile.sent[path] < 24 * MiB, hostile.sent[path]
    assert blobs(hd) == []


def test_failed_pull_through_an_index_stores_nothing(hd, hostile):
    """An index whose platform manifest cannot be fetched, or that has no manifest for this
    platform: the index is not kept."""
    repo = uniq()
    missing = sha256(b"no such manifest")
    hostile.manifest(repo, "gone", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": missing, "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}}]}, OCI_INDEX)
    hostile.manifest(repo, "arm", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": missing, "size": 10,
         "platform": {"os": "linux", "architecture": "arm64"}}]}, OCI_INDEX)
    assert pull_error(hd, f"{hostile.host}/{repo}:gone").code() == grpc.StatusCode.NOT_FOUND
    assert pull_error(hd, f"{hostile.host}/{repo}:arm").code() == grpc.StatusCode.NOT_FOUND
    assert blobs(hd) == []


def test_varying_digests_leave_no_blobs(hd, hostile):
    """A registry that answers each pull with a new manifest and config, then fails a layer:
    no manifest, config or layer of the failed pulls stays on disk."""
    repo = uniq()
    for i in range(3):
        digest, doc = hostile.image(repo, "t", [make_layer([{"name": f"f{i}", "data": f"{i}"}]),
                                                make_layer([{"name": "g", "data": "x" * i}])])
        # the second layer's blob is gone (404)
        del hostile.routes[f"/v2/{repo}/blobs/{doc['layers'][1]['digest']}"]
        e = pull_error(hd, f"{hostile.host}/{repo}:t")
        assert e.code() == grpc.StatusCode.NOT_FOUND, e.details()
        assert blobs(hd) == []
        assert layers(hd) == []
    assert fs_used(hd) == 0


def test_unreferenced_blobs_are_collected(hd, registry):
    """Blobs no image references go at start-up and after RemoveImage; those of images stay."""
    img = registry.push_busybox(uniq(), "latest")
    pull(hd, img.ref)
    mine = blobs(hd)
    assert len(mine) == 2  # manifest and config
    bdir = os.path.join(hd.root, "images", "blobs", "sha256")
    stray = os.path.join(bdir, hashlib.sha256(b"stray").hexdigest())
    with open(stray, "wb") as f:
        f.write(b"x" * 4096)
    with open(os.path.join(bdir, "junk"), "wb") as f:
        f.write(b"y")
    hd.restart()
    assert blobs(hd) == mine
    assert pull(hd, img.ref) == img.id
    with open(stray, "wb") as f:
        f.write(b"x" * 4096)
    other = registry.push_busybox(uniq(), "latest", extra_layers=[
        make_layer([{"name": "other", "data": "o"}])])
    pull(hd, other.ref)
    remove(hd, img.ref)
    left = blobs(hd)
    assert hashlib.sha256(b"stray").hexdigest() not in left
    assert len(left) == 2 and all(b not in left for b in mine if b not in blobs_of(other))
    remove(hd, other.ref)
    assert blobs(hd) == []


def blobs_of(img):
    mb = json.dumps(img.manifest, indent=1).encode()
    return {hashlib.sha256(mb).hexdigest(), img.config_digest.split(":", 1)[1]}


# ---- 4. decompression bombs --------------------------------------------------------------------

def test_image_size_cap(hulld_factory, registry):
    """Three small layers that each expand to 24 MiB, max_image_size 50 MiB: the pull fails
    with RESOURCE_EXHAUSTED and leaves no layer behind."""
    d = hulld_factory("--insecure-registry", registry.host, "--max-image-size", str(50 * MiB))
    img = registry.push_image(uniq(), "t", [zero_layer(f"z{i}", 24 * MiB) for i in range(3)])
    e = pull_error(d, img.ref)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
    assert "max_image_size" in e.details()
    assert layers(d) == [] and blobs(d) == []
    assert fs_used(d) == 0
    # two of them fit
    ok = registry.push_image(uniq(), "t", [zero_layer(f"z{i}", 24 * MiB) for i in range(2)])
    assert pull(d, ok.ref) == ok.id


@pytest.fixture
def small_fs():
    """A 96 MiB tmpfs the test owns (the image filesystem of a hulld)."""
    base = tempfile.mkdtemp(prefix="hullsmallfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0755", "tmpfs", base],
                   check=True)
    yield base
    subprocess.run(["umount", "-l", base], check=False)
    os.rmdir(base)


def test_free_space_floor_of_the_image_filesystem(hulld_factory, registry, small_fs):
    """A 48 MiB file on a 96 MiB filesystem that must keep 64 MiB free: refused before it is
    written (ENOSPC → RESOURCE_EXHAUSTED), nothing left, ImageFsInfo unchanged."""
    root = os.path.join(small_fs, "root")
    d = hulld_factory("--insecure-registry", registry.host, "--root", root,
                      "--image-fs-min-free", str(64 * MiB))
    before = fs_used(d)
    img = registry.push_image(uniq(), "t", [zero_layer("bomb", 48 * MiB)])
    e = pull_error(d, img.ref)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
    assert "image_fs_min_free" in e.details()
    assert layers(d) == [] and blobs(d) == []
    assert fs_used(d) == before
    st = os.statvfs(small_fs)
    assert st.f_bavail * st.f_frsize > 64 * MiB
    # an image that fits above the floor is pulled
    ok = registry.push_image(uniq(), "t", [zero_layer("small", 8 * MiB)])
    assert pull(d, ok.ref) == ok.id
    assert fs_used(d) >= 8 * MiB


# ---- 6. header injection -----------------------------------------------------------------------

def bearer_registry(hostile, repo, token_doc):
    realm = f"http://{hostile.host}/token"
    digest, _ = hostile.image(repo, "t", [make_layer([{"name": "a", "data": "a"}])])
    manifest_route = hostile.routes[f"/v2/{repo}/manifests/t"]

    def manifest(h):
        if h.headers.get("Authorization", "").startswith("Bearer "):
            return hostile.send(h, *manifest_route)
        return hostile.send(h, 401, {"WWW-Authenticate":
                                     f'Bearer realm="{realm}",service="hostile"'})
    hostile.routes[f"/v2/{repo}/manifests/t"] = manifest
    hostile.routes["/token"] = (200, {"Content-Type": "application/json"},
                                json.dumps(token_doc).encode())


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: evil", "abc\nX-Injected: evil",
                                   "abc\x7fdef", "abc\tdef", "abc def"])
def test_token_with_control_characters_is_refused(hd, hostile, token):
    repo = uniq()
    bearer_registry(hostile, repo, {"token": token})
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
    assert "control characters" in e.details()
    assert [r for r in hostile.requests if "X-Injected" in r[2]] == []
    assert all("Authorization" not in r[2] for r in hostile.requests)


def test_clean_token_is_used(hd, hostile):
    repo = uniq()
    bearer_registry(hostile, repo, {"token": "abc.DEF-123_~+/="})
    pull(hd, f"{hostile.host}/{repo}:t")
    assert any(r[2].get("Authorization") == "Bearer abc.DEF-123_~+/=" for r in hostile.requests)


# ---- 7. status codes -----------------------------------------------------------------------------

def test_nested_index_is_invalid_argument(hd, hostile):
    repo = uniq()
    inner = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    inner_digest = hostile.manifest(repo, "inner", inner, OCI_INDEX)
    hostile.manifest(repo, "t", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": inner_digest, "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}}]}, OCI_INDEX)
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.details()
    assert "nested image index" in e.details()


def test_manifest_digest_mismatch_is_data_loss(hd, hostile):
    repo = uniq()
    digest, doc = hostile.image(repo, "t", [make_layer([{"name": "a", "data": "a"}])])
    # asked by digest, the registry answers another document
    hostile.routes[f"/v2/{repo}/manifests/{digest}"] = (
        200, {"Content-Type": OCI_MANIFEST}, json.dumps(doc, indent=2).encode())
    e = pull_error(hd, f"{hostile.host}/{repo}@{digest}")
    assert e.code() == grpc.StatusCode.DATA_LOSS, e.details()
    assert "digest mismatch" in e.details()


def test_layer_digest_mismatch_is_data_loss(hd, hostile):
    repo = uniq()
    digest, doc = hostile.image(repo, "t", [make_layer([{"name": "a", "data": "a"}])])
    ld = doc["layers"][0]["digest"]
    good = hostile.routes[f"/v2/{repo}/blobs/{ld}"][2]
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    hostile.routes[f"/v2/{repo}/blobs/{ld}"] = (200, {}, bytes(bad))
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.DATA_LOSS, e.details()


def test_file_realm_is_failed_precondition(hd, hostile):
    repo = uniq()
    hostile.routes[f"/v2/{repo}/manifests/t"] = (
        401, {"WWW-Authenticate": 'Bearer realm="file:///etc/passwd",service="x"'}, b"")
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()


def test_redirect_to_file_is_failed_precondition(hd, hostile):
    repo = uniq()
    hostile.routes[f"/v2/{repo}/manifests/t"] = (302, {"Location": "file:///etc/passwd"}, b"")
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
    assert len([r for r in hostile.requests if r[1] == f"/v2/{repo}/manifests/t"]) == 1


def test_too_many_redirects_is_unavailable(hd, hostile):
    repo = uniq()
    for i in range(20):
        hostile.routes[f"/loop/{i}"] = (302, {"Location": f"/loop/{i + 1}"}, b"")
    hostile.routes[f"/v2/{repo}/manifests/t"] = (302, {"Location": "/loop/0"}, b"")
    e = pull_error(hd, f"{hostile.host}/{repo}:t")
    assert e.code() == grpc.StatusCode.UNAVAILABLE, e.details()
    assert "redirect" in e.details().lower()


# ---- 8. pulls the client gave up on ------------------------------------------------------------

def gz_zero_layer(name, size):
    """(gzip blob, diff id) of a layer with one file of `size` zero bytes, built as a stream
    (a decompression bomb: a few MiB that unpack to `size`)."""
    import zlib
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o644
    ti.mtime = 1700000000
    head = ti.tobuf(format=tarfile.PAX_FORMAT)
    pad = (512 - size % 512) % 512
    h = hashlib.sha256()
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = io.BytesIO()

    def feed(b):
        h.update(b)
        out.write(z.compress(b))
    feed(head)
    chunk = bytes(4 * MiB)
    left = size
    while left > 0:
        n = min(left, len(chunk))
        feed(chunk[:n])
        left -= n
    feed(bytes(pad) + bytes(1024))
    out.write(z.flush())
    return out.getvalue(), "sha256:" + h.hexdigest()


@pytest.fixture(scope="module")
def bomb(registry):  # noqa: F811
    """An image whose one layer (a few MiB) unpacks to 4 GiB: more than an idle machine
    unpacks (inflate, hash, write) within the 1.5 s deadlines below."""
    repo = uniq("bomb")
    blob, diff_id = gz_zero_layer("zeros", 4096 * MiB)
    ld = registry.push_blob(repo, blob)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cd = registry.push_blob(repo, cfg)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(cfg)},
                           "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": ld,
                                       "size": len(blob)}]}).encode()
    registry.push_manifest(repo, "t", manifest, OCI_MANIFEST)
    return f"{registry.host}/{repo}:t", cd


def pull_finished(d):
    """The PullImage handler returned: its failure is logged, or the image was pulled."""
    log = d.log()
    return "ImageService/PullImage: " in log or "pulled " in log


def test_pull_whose_caller_gave_up_is_cancelled(hulld_factory, registry, bomb):
    ref, image_id = bomb
    d = hulld_factory("--insecure-registry", registry.host, "--max-layer-size", "0")
    e = pull_error(d, ref, timeout=1.5)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.time() + 120
    while not pull_finished(d) and time.time() < deadline:
        time.sleep(0.1)
    assert pull_finished(d)
    # hulld stopped the unpack: no layer, no image, nothing in tmp/
    assert "abandoned" in d.log(), d.log()[-3000:]
    assert layers(d) == [] and blobs(d) == []
    assert list(d.image.ListImages(d.pb.ListImagesRequest(), timeout=10).images) == []
    assert os.listdir(os.path.join(d.root, "images", "tmp")) == []


def test_pull_shared_with_a_caller_still_waiting_goes_on(hulld_factory, registry, bomb):
    ref, image_id = bomb
    d = hulld_factory("--insecure-registry", registry.host, "--max-layer-size", "0")
    result = {}

    def patient():
        try:
            result["id"] = pull(d, ref, timeout=240)
        except grpc.RpcError as ex:
            result["err"] = ex
    t = threading.Thread(target=patient)
    t.start()
    time.sleep(0.3)
    e = pull_error(d, ref, timeout=1.5)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    t.join(240)
    assert result.get("id") == image_id, result
    assert len(layers(d)) == 1
    remove(d, ref)
