"""A real registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, with
images built here and pushed through the registry v2 API.

    from registry import registry, Registry   # in a test module (the fixtures are importable)

    def test_x(registry):
        img = registry.push_busybox("bb", "latest")      # single layer busybox image
        img.ref  -> "127.0.0.1:PORT/bb:latest";  img.digest, img.config_digest, img.layers

Also: `push_image(repo, tag, layers, config=...)` with layers built by `make_layer(entries)`,
`push_index(...)` (OCI index / Docker manifest list), `AuthProxy` (a proxy with a Bearer token
server, request counting, and fault modes: truncated blobs, corrupt blobs, 5xx), `htpasswd`
registries (`start_registry(htpasswd=...)`), and `blob_path()` to corrupt a stored blob.
"""
import base64
import crypt
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse

import pytest

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "env", "test", "mkdir"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- layers -----------------------------------------------------------------------------------
def make_layer(entries, end_marker=True):
    """entries: list of dicts {name, type: file|dir|symlink|hardlink|char|fifo, data, target,
    mode, uid, gid, xattrs}. Returns the uncompressed tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mtime = e.get("mtime", 1700000000)
            ti.uid = e.get("uid", 0)
            ti.gid = e.get("gid", 0)
            t = e.get("type", "file")
            data = e.get("data", b"")
            if isinstance(data, str):
                data = data.encode()
            if e.get("xattrs"):
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in e["xattrs"].items()}
            if t == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e.get("mode", 0o755)
                tf.addfile(ti)
            elif t == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
                ti.mode = 0o777
                tf.addfile(ti)
            elif t == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
                ti.mode = e.get("mode", 0o755)
                tf.addfile(ti)
            elif t == "char":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = e.get("dev", (1, 3))
                ti.mode = e.get("mode", 0o666)
                tf.addfile(ti)
            elif t == "fifo":
                ti.type = tarfile.FIFOTYPE
                ti.mode = e.get("mode", 0o644)
                tf.addfile(ti)
            else:
                ti.type = tarfile.REGTYPE
                ti.mode = e.get("mode", 0o644)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    if not end_marker:
        # like umoci insert: no end-of-archive blocks
        while raw.endswith(b"\0" * 512):
            raw = raw[:-512]
    return raw


def busybox_entries(extra_applets=()):
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [{"name": d, "type": "dir"} for d in ("bin/", "etc/", "tmp/", "root/")]
    entries[2]["mode"] = 0o1777
    entries.append({"name": "bin/busybox", "data": bb, "mode": 0o755})
    for a in list(APPLETS) + list(extra_applets):
        entries.append({"name": "bin/" + a, "type": "hardlink", "target": "bin/busybox"})
    entries.append({"name": "etc/passwd",
                    "data": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n"})
    entries.append({"name": "etc/group", "data": "root:x:0:\napp:x:1000:\n"})
    return entries


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, compresslevel=1, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c", "-1"], input=raw, capture_output=True,
                              check=True).stdout
    return raw


class Image:
    def __init__(self, host, repo, tag, digest, config_digest, layers, manifest, media_type):
        self.host = host
        self.repo = repo
        self.tag = tag
        self.digest = digest  # manifest (or index) digest
        self.config_digest = config_digest  # the image id
        self.layers = layers  # [(digest, diff_id, size)]
        self.manifest = manifest
        self.media_type = media_type

    @property
    def ref(self):
        return f"{self.host}/{self.repo}:{self.tag}"

    @property
    def digest_ref(self):
        return f"{self.host}/{self.repo}@{self.digest}"

    @property
    def id(self):
        return self.config_digest


# ---- the registry ------------------------------------------------------------------------------
class Registry:
    def __init__(self, htpasswd=None, tls=False, token_realm=None):
        self.base = tempfile.mkdtemp(prefix="hull-registry-")
        self.storage = os.path.join(self.base, "storage")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.base, "registry.log")
        self.auth = None
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": self.storage},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "hull-test"},
        }
        self.ca_file = None
        if tls:
            key = os.path.join(self.base, "key.pem")
            self.ca_file = os.path.join(self.base, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out",
                            self.ca_file], check=True, capture_output=True)
            cfg["http"]["tls"] = {"certificate": self.ca_file, "key": key}
        if htpasswd:
            user, password = htpasswd
            path = os.path.join(self.base, "htpasswd")
            salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)  # cost 4: fast tests
            with open(path, "w") as f:
                f.write(f"{user}:{crypt.crypt(password, salt)}\n")
            cfg["auth"] = {"htpasswd": {"realm": "hull-test", "path": path}}
            self.auth = (user, password)
        if token_realm:
            # Bearer challenges naming token_realm (requests without a valid token get 401)
            cfg["auth"] = {"token": {"realm": token_realm, "service": "hull-test",
                                     "issuer": "hull-test", "rootcertbundle": self.ca_file}}
        self.config_path = os.path.join(self.base, "config.yml")
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML
        self.proc = None
        self.start()

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config_path],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited:\n" + self.log())
            try:
                status, _, _ = self.request("GET", "/v2/")
                if status in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("docker-registry did not start:\n" + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # -- raw API --
    def request(self, method, path, body=None, headers=None):
        if self.ca_file:
            import ssl
            ctx = ssl.create_default_context(cafile=self.ca_file)
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if self.auth:
            tok = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            h["Authorization"] = "Basic " + tok
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return r.status, hdrs, data

    def push_blob(self, repo, data):
        digest = sha256(data)
        st, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if st == 200:
            return digest
        st, h, body = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert st == 202, (st, body)
        loc = h["location"]
        u = urllib.parse.urlparse(loc)
        q = urllib.parse.parse_qs(u.query)
        q["digest"] = [digest]
        path = u.path + "?" + urllib.parse.urlencode(q, doseq=True)
        st, _, body = self.request("PUT", path, body=data,
                                   headers={"Content-Type": "application/octet-stream",
                                            "Content-Length": str(len(data))})
        assert st == 201, (st, body)
        return digest

    def push_manifest(self, repo, ref, manifest_bytes, media_type):
        st, _, body = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=manifest_bytes,
                                   headers={"Content-Type": media_type})
        assert st == 201, (st, body)
        return sha256(manifest_bytes)

    def push_image(self, repo, tag, layers, config=None, compression="gzip", docker=False,
                   arch="amd64", tag_it=True):
        """layers: list of uncompressed tar bytes (bottom first)."""
        descs, diff_ids, info = [], [], []
        for raw in layers:
            blob = compress(raw, compression)
            d = self.push_blob(repo, blob)
            mt = (DOCKER_LAYER if docker else
                  {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, None: OCI_LAYER_TAR}[compression])
            descs.append({"mediaType": mt, "digest": d, "size": len(blob)})
            diff_ids.append(sha256(raw))
            info.append((d, sha256(raw), len(blob)))
        cfg = {"architecture": arch, "os": "linux",
               "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created_by": "hull test"}]}
        if config:
            cfg["config"].update(config)
        cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
        cfg_digest = self.push_blob(repo, cfg_bytes)
        mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
        manifest = {"schemaVersion": 2, "mediaType": mt,
                    "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                               "digest": cfg_digest, "size": len(cfg_bytes)},
                    "layers": descs}
        mbytes = json.dumps(manifest, indent=1).encode()
        digest = self.push_manifest(repo, tag if tag_it else sha256(mbytes), mbytes, mt)
        return Image(self.host, repo, tag, digest, cfg_digest, info, manifest, mt)

    def push_busybox(self, repo, tag="latest", extra_layers=(), config=None, **kw):
        layers = [make_layer(busybox_entries())] + list(extra_layers)
        return self.push_image(repo, tag, layers, config=config, **kw)

    def push_index(self, repo, tag, images, docker=False):
        """images: list of (Image, platform dict). Manifests must already be in repo."""
        mt = DOCKER_LIST if docker else OCI_INDEX
        manifests = []
        for img, plat in images:
            mb = json.dumps(img.manifest, indent=1).encode()
            manifests.append({"mediaType": img.media_type, "digest": sha256(mb),
                              "size": len(mb), "platform": plat})
        index = {"schemaVersion": 2, "mediaType": mt, "manifests": manifests}
        ib = json.dumps(index).encode()
        digest = self.push_manifest(repo, tag, ib, mt)
        return digest

    def push_umoci(self, repo, tag, src_dir, whiteouts=(), docker_format=False):
        """Builds an image with umoci (one `insert` layer of src_dir, then one whiteout layer
        per path; umoci's layer tars have no end-of-archive blocks) and copies it into the
        registry with skopeo (as Docker schema 2 when docker_format).  Returns the ref."""
        work = tempfile.mkdtemp(prefix="umoci-", dir=self.base)
        lay = os.path.join(work, "layout")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("umoci", "init", "--layout", lay)
        run("umoci", "new", "--image", f"{lay}:{tag}")
        run("umoci", "config", "--image", f"{lay}:{tag}", "--config.cmd", "/bin/sh",
            "--os", "linux", "--architecture", "amd64")
        run("umoci", "insert", "--image", f"{lay}:{tag}", src_dir, "/")
        for w in whiteouts:
            run("umoci", "insert", "--image", f"{lay}:{tag}", "--whiteout", w)
        args = ["skopeo", "copy", "--quiet", f"--dest-tls-verify={'true' if self.ca_file else 'false'}"]
        if docker_format:
            args += ["--format", "v2s2"]
        run(*args, f"oci:{lay}:{tag}", f"docker://{self.host}/{repo}:{tag}")
        shutil.rmtree(work, ignore_errors=True)
        return f"{self.host}/{repo}:{tag}"

    def blob_path(self, digest):
        h = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256", h[:2], h,
                            "data")

    def blob_gets(self, digest):
        """How many GETs of this blob the registry served (from its access log)."""
        n = 0
        for line in self.log().splitlines():
            if "GET /v2/" in line and f"/blobs/{digest}" in line and '" 200 ' in line:
                n += 1
        return n


# ---- an HTTP proxy with a Bearer token server and fault injection ----------------------------
class AuthProxy:
    """Forwards /v2/ requests to `upstream` (a Registry). Modes:
    bearer=(user, password): answers 401 with a Bearer challenge unless the request carries a
    token from its own token server (/token, which wants Basic user:password);
    truncate_blobs: blob GETs send half the body and close the connection;
    fail_blobs_5xx=N: the first N blob GETs answer 503; corrupt_blobs: flips a byte."""

    def __init__(self, upstream, bearer=None):
        self.upstream = upstream
        self.bearer = bearer
        self.truncate_blobs = False
        self.truncate_once = False  # only the first GET of each blob breaks off
        self._truncated = set()
        self.range_requests = []
        self.corrupt_blobs = False
        self.fail_blobs_5xx = 0
        self.stall_blobs = False  # send a blob's headers, then nothing (a hung registry)
        self.overrides = {}  # path -> (status, headers, body): canned answers
        self.requests = []
        self.proxied = []  # absolute-URL requests (forward proxy use)
        self.token_requests = []
        self.tokens = set()
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.handle(self)

            def do_HEAD(self):
                proxy.handle(self)

            def do_POST(self):
                proxy.handle_post(self)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _send(self, h, status, body=b"", headers=None):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    refresh_token = "refresh-me"

    def handle_post(self, h):
        """OAuth2 token endpoint: grant_type=refresh_token."""
        n = int(h.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(h.rfile.read(n).decode())
        self.token_requests.append("POST " + h.path)
        if (form.get("grant_type") != ["refresh_token"] or
                form.get("refresh_token") != [self.refresh_token]):
            return self._send(h, 401, b'{"error":"invalid_grant"}')
        tok = base64.b64encode(os.urandom(12)).decode()
        self.tokens.add((tok, form.get("scope", [""])[0]))
        return self._send(h, 200, json.dumps({"access_token": tok, "expires_in": 300}).encode(),
                          {"Content-Type": "application/json"})

    def handle(self, h):
        path = h.path
        if path.startswith("http://"):
            # used as a forward proxy (http_proxy=...): serve the upstream for any host
            self.proxied.append(path)
            u = urllib.parse.urlparse(path)
            path = u.path + ("?" + u.query if u.query else "")
        self.requests.append((h.command, path))
        if path.startswith("/token"):
            self.token_requests.append(path)
            want = "Basic " + base64.b64encode(
                f"{self.bearer[0]}:{self.bearer[1]}".encode()).decode()
            if h.headers.get("Authorization") != want:
                return self._send(h, 401, b'{"details":"bad credentials"}')
            q = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
            tok = base64.b64encode(os.urandom(12)).decode()
            self.tokens.add((tok, q.get("scope", [""])[0]))
            return self._send(h, 200, json.dumps({"token": tok, "expires_in": 300}).encode(),
                              {"Content-Type": "application/json"})
        if self.bearer:
            auth = h.headers.get("Authorization", "")
            ok = auth.startswith("Bearer ") and any(t == auth[7:] for t, _ in self.tokens)
            if not ok:
                repo = path[4:].split("/manifests/")[0].split("/blobs/")[0]
                chal = (f'Bearer realm="http://{self.host}/token",service="hull-test",'
                        f'scope="repository:{repo}:pull"')
                return self._send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                  {"WWW-Authenticate": chal, "Content-Type": "application/json"})
        if path in self.overrides:
            st, hdrs, body = self.overrides[path]
            return self._send(h, st, body, hdrs)
        is_blob = "/blobs/" in path
        if is_blob and self.fail_blobs_5xx > 0:
            self.fail_blobs_5xx -= 1
            return self._send(h, 503, b"busy")
        hdrs = {"Accept": h.headers.get("Accept", "*/*")}
        if h.headers.get("Range"):
            hdrs["Range"] = h.headers["Range"]
            self.range_requests.append((path, h.headers["Range"]))
        st, rh, body = self.upstream.request(h.command, path, headers=hdrs)
        out = {k: v for k, v in rh.items()
               if k in ("content-type", "docker-content-digest", "www-authenticate",
                        "content-range")}
        if is_blob and st == 200 and self.corrupt_blobs and body:
            body = bytes([body[0] ^ 0xff]) + body[1:]
        if is_blob and st == 200 and self.stall_blobs and h.command == "GET":
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.flush()
            deadline = time.time() + 30
            while self.stall_blobs and time.time() < deadline:
                time.sleep(0.1)
            h.close_connection = True
            return
        truncate = self.truncate_blobs or (self.truncate_once and path not in self._truncated)
        if is_blob and st in (200, 206) and truncate and h.command == "GET":
            self._truncated.add(path)
            h.send_response(200)
            for k, v in out.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        return self._send(h, st, body, out)


@pytest.fixture(scope="session")
def registry():
    r = Registry()
    yield r
    r.close()


@pytest.fixture(scope="session")
def auth_registry():
    """A registry with htpasswd Basic auth (user "hull", password "s3cret")."""
    r = Registry(htpasswd=("hull", "s3cret"))
    yield r
    r.close()


def all_applets():
    """The applets of the host's busybox (for images whose every applet is a hard link)."""
    out = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


@pytest.fixture(scope="module")
def busybox_image(registry):
    """A busybox image with every applet, Env PATH=/bin and IMG=yes, StopSignal SIGUSR1."""
    layer = make_layer(busybox_entries(extra_applets=all_applets()))
    return registry.push_image("ctr/busybox", "1", [layer],
                               config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin", "IMG=yes"],
                                       "StopSignal": "SIGUSR1"})
