"""The images critest v1.37 pulls, built here and pushed to a local docker-registry.

critest names its images on registry.k8s.io and gcr.io; hulld reaches them through
`registry_mirrors` pointing every registry at the local one, so the names (repo tags, repo
digests) critest checks are the real ones.  What each image must provide (read from
sigs.k8s.io/cri-tools v1.37.0, pkg/validate and pkg/framework):

  registry.k8s.io/e2e-test-images/busybox:1.29-2   the default container image: busybox-static's
      applets with Debian's dynamic busybox as sh (it execs commands, see base_entries); the usual
      applets (echo, sleep, top, ls, cat, hostname, id, touch, ...), `ipcs` (HostIpc specs) and
      `pgrep` (execSync timeout spec: stderr must stay empty), users root, www-data, nobody
      (RunAsUserName) in /etc/passwd
  registry.k8s.io/e2e-test-images/nginx:1.14-2     a web server on port 80 answering 200 on /,
      /var/run/nginx.pid, a main process titled "nginx: master process ..." (PID specs)
  gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64 the same on port 12003 (host network specs)
  registry.k8s.io/e2e-test-images/httpd:2.4.39-4   a web server on port 80 (multi-container)
  registry.k8s.io/e2e-test-images/nonewprivs:1.3   a setuid-root program printing
      "Effective uid: N" (NoNewPrivs specs)
  gcr.io/k8s-staging-cri-tools/test-image-{latest,tag:test,tag:all}, test-image-{1,2,3}
      (three different images), test-image-tags:{1,2,3} (one image, three tags): busybox plus
      one file named after the image, like cri-tools' images/image-test (ADD ${TEST})
  gcr.io/k8s-staging-cri-tools/test-image-user-{uid,username,uid-group,username-group}: USER
      1002, www-data, 1003:users, www-data:users (ImageStatus uid / username)
  gcr.io/k8s-staging-cri-tools/test-image-predefined-group: USER 1000, default-user (1000) a
      member of group-defined-in-image (50000) in /etc/group (SupplementalGroupsPolicy,
      image volume subPath "etc")
  registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9: one image under two registries

Not buildable: gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2...  critest pins
the manifest digest of the image published upstream; a manifest with that digest cannot be
produced without the original bytes (and hulld rightly refuses content whose digest differs).

The test images are pushed as OCI indexes (linux/amd64 + linux/arm64, as upstream publishes
multi-arch images), so every pull also goes through platform selection.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from registry import make_layer  # noqa: E402

TOOLS = os.environ.get("HULL_TOOLS", "/var/cache/hull-tools")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# host programs the busybox build lacks (copied with the shared libraries they load)
HOST_PROGRAMS = ["/usr/bin/ipcs", "/usr/bin/pgrep"]


PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
"""

E2E = "registry.k8s.io/e2e-test-images/"
STAGING = "gcr.io/k8s-staging-cri-tools/"


def busybox():
    """Debian's dynamically linked busybox (package `busybox`), unpacked (never installed: it
    conflicts with busybox-static) into the tools cache.  The e2e busybox image's sh runs
    external commands by exec (the MaskedPaths spec needs "/bin/sh: ls: Permission denied" for a
    masked /bin/ls); busybox-static's standalone shell runs applets in-process instead."""
    out = os.path.join(TOOLS, "busybox", "busybox")
    if os.access(out, os.X_OK):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="busybox-", dir=os.path.dirname(out))
    try:
        subprocess.run(["apt-get", "download", "-q", "busybox"], cwd=tmp, check=True,
                       capture_output=True)
        debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
        if len(debs) != 1:
            raise RuntimeError(f"apt-get download busybox gave {debs}")
        subprocess.run(["dpkg", "-x", os.path.join(tmp, debs[0]), os.path.join(tmp, "x")],
                       check=True)
        os.rename(os.path.join(tmp, "x", "bin", "busybox"), out + ".tmp")
        os.rename(out + ".tmp", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


STATIC_BUSYBOX = "/bin/busybox"  # busybox-static
SHELLS = ("bin/sh", "bin/ash")  # linked to Debian's dynamic busybox, see base_entries


def applets():
    out = subprocess.run([STATIC_BUSYBOX, "--list-full"], capture_output=True, text=True,
                         check=True)
    return [a for a in out.stdout.split() if a and not a.endswith("/busybox")]


def shared_libs(prog):
    out = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts:
            p = parts[parts.index("=>") + 1]
            if p.startswith("/"):
                libs.append(p)
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the dynamic loader
    return libs


def file_entry(path, host_path, mode=None, uid=0, gid=0):
    with open(host_path, "rb") as f:
        data = f.read()
    st = os.stat(host_path)
    return {"name": path.lstrip("/"), "data": data, "mode": mode or (st.st_mode & 0o7777),
            "uid": uid, "gid": gid}


def dirs_of(paths):
    seen = set()
    out = []
    for p in paths:
        parts = p.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in seen:
                seen.add(d)
                out.append({"name": d, "type": "dir", "mode": 0o755})
    return out


def base_entries(passwd=PASSWD, group=GROUP):
    """The busybox layer: every applet (hard links to one static binary, where busybox puts
    them), ipcs and pgrep with their libraries, users and groups."""
    entries = []
    for d, mode in (("bin/", 0o755), ("sbin/", 0o755), ("usr/", 0o755), ("usr/bin/", 0o755),
                    ("usr/sbin/", 0o755), ("etc/", 0o755), ("root/", 0o700), ("tmp/", 0o1777),
                    ("home/", 0o755), ("var/", 0o755), ("var/run/", 0o755),
                    ("var/www/", 0o755), ("var/spool/", 0o755), ("var/spool/mail/", 0o755),
                    ("dev/", 0o755), ("proc/", 0o555), ("sys/", 0o555)):
        entries.append({"name": d, "type": "dir", "mode": mode})
    # The applets are busybox-static's (a static binary starts fast: `top` as a container's
    # PID 1 installs its SIGTERM handler before a StopContainer right after the start can
    # reach it), the shell is Debian's dynamic busybox, whose sh execs commands (the e2e image's
    # does: "/bin/sh: ls: Permission denied" for a masked /bin/ls), which busybox-static's
    # standalone shell does not (it runs applets in-process).
    entries.append(file_entry("bin/busybox", STATIC_BUSYBOX, mode=0o755))
    entries.append(file_entry("bin/busybox-sh", busybox(), mode=0o755))
    for a in applets():
        name = a.lstrip("/")
        if name == "bin/busybox":
            continue
        entries.append({"name": name, "type": "hardlink",
                        "target": "bin/busybox-sh" if name in SHELLS else "bin/busybox"})
    libs = []
    for prog in [busybox()] + HOST_PROGRAMS:
        for lib in shared_libs(prog):
            if lib not in libs:
                libs.append(lib)
    lib_files = [os.path.realpath(lib) for lib in libs]
    entries += dirs_of([lib for lib in libs] + lib_files)
    seen = set()
    for lib, real in zip(libs, lib_files):
        if real not in seen:
            seen.add(real)
            entries.append(file_entry(real, real, mode=0o755))
        if lib != real and lib not in seen:
            seen.add(lib)
            entries.append({"name": lib.lstrip("/"), "type": "symlink",
                            "target": os.path.relpath(real, os.path.dirname(lib))})
    for prog in HOST_PROGRAMS:
        entries.append(file_entry(prog, prog, mode=0o755))
    entries.append({"name": "etc/passwd", "data": passwd})
    entries.append({"name": "etc/group", "data": group})
    entries.append({"name": "etc/hostname", "data": "busybox\n"})
    return entries


def static_binary(src, out_dir):
    out = os.path.join(out_dir, os.path.splitext(os.path.basename(src))[0])
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src],
                   check=True)
    return out


def split(name):
    """registry.k8s.io/e2e-test-images/busybox:1.29-2 -> (e2e-test-images/busybox, 1.29-2)"""
    _, rest = name.split("/", 1)
    repo, _, tag = rest.rpartition(":")
    return repo, tag


class Builder:
    def __init__(self, registry, work):
        self.reg = registry
        self.work = work
        self.base = make_layer(base_entries())
        self.built = {}

    def image(self, name, layers, config, index=False):
        repo, tag = split(name)
        cfg = {"Env": [PATH_ENV], "Cmd": ["sh"]}
        cfg.update(config)
        if not index:
            img = self.reg.push_image(repo, tag, [self.base] + layers, config=cfg)
            self.built[name] = img.digest
            return img.digest
        imgs = []
        for arch in ("amd64", "arm64"):
            img = self.reg.push_image(repo, tag, [self.base] + layers, config=cfg, arch=arch,
                                      tag_it=False)
            imgs.append((img, {"architecture": arch, "os": "linux"}))
        digest = self.reg.push_index(repo, tag, imgs)
        self.built[name] = digest
        return digest

    def build_all(self):
        ws = static_binary(os.path.join(HERE, "images", "webserver.c"), self.work)
        nnp = static_binary(os.path.join(HERE, "images", "nonewprivs.c"), self.work)
        html = "<html><body>hull conformance</body></html>\n"

        self.image(E2E + "busybox:1.29-2", [], {})

        web = [{"name": d, "type": "dir"} for d in
               ("usr/share/", "usr/share/nginx/", "usr/share/nginx/html/", "etc/nginx/",
                "var/log/", "var/log/nginx/")]
        web.append(file_entry("usr/sbin/nginx", ws, mode=0o755))
        web.append({"name": "usr/share/nginx/html/index.html", "data": html})
        nginx_cfg = {"Cmd": ["nginx", "-g", "daemon off;"], "ExposedPorts": {"80/tcp": {}},
                     "StopSignal": "SIGTERM"}
        self.image(E2E + "nginx:1.14-2", [make_layer(web)], nginx_cfg)
        self.image(STAGING + "hostnet-nginx-amd64:latest", [make_layer(web)],
                   dict(nginx_cfg, Env=[PATH_ENV, "WEB_PORT=12003"],
                        ExposedPorts={"12003/tcp": {}}))

        httpd = [{"name": d, "type": "dir"} for d in
                 ("usr/local/", "usr/local/apache2/", "usr/local/apache2/bin/",
                  "usr/local/apache2/htdocs/", "usr/local/apache2/logs/")]
        httpd.append(file_entry("usr/local/apache2/bin/httpd", ws, mode=0o755))
        httpd.append({"name": "usr/local/apache2/htdocs/index.html", "data": html})
        self.image(E2E + "httpd:2.4.39-4", [make_layer(httpd)],
                   {"Cmd": ["httpd", "-DFOREGROUND"], "WorkingDir": "/usr/local/apache2",
                    "Env": [PATH_ENV.replace("PATH=", "PATH=/usr/local/apache2/bin:"),
                            "WEB_PID_FILE=/usr/local/apache2/logs/httpd.pid"],
                    "ExposedPorts": {"80/tcp": {}}})

        nnp_layer = [{"name": "usr/local/", "type": "dir"},
                     {"name": "usr/local/bin/", "type": "dir"},
                     file_entry("usr/local/bin/nnp", nnp, mode=0o4755, uid=0, gid=0)]
        self.image(E2E + "nonewprivs:1.3", [make_layer(nnp_layer)],
                   {"Cmd": ["/usr/local/bin/nnp"]})

        def test_file(name):
            return make_layer([{"name": name, "data": name + "\n"}])

        for name, file in (("test-image-latest:latest", "test-image-latest"),
                           ("test-image-tag:test", "test-image-tag"),
                           ("test-image-tag:all", "test-image-tag-all"),
                           ("test-image-1:latest", "test-image-1"),
                           ("test-image-2:latest", "test-image-2"),
                           ("test-image-3:latest", "test-image-3")):
            self.image(STAGING + name, [test_file(file)], {}, index=True)
        for tag in ("1", "2", "3"):
            self.image(STAGING + "test-image-tags:" + tag, [test_file("test-image-tags")], {},
                       index=True)

        for name, user in (("test-image-user-uid", "1002"),
                           ("test-image-user-username", "www-data"),
                           ("test-image-user-uid-group", "1003:users"),
                           ("test-image-user-username-group", "www-data:users")):
            self.image(STAGING + name + ":latest", [], {"User": user}, index=True)

        pg_passwd = PASSWD + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"
        pg_group = GROUP + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"
        pg = make_layer([{"name": "etc/passwd", "data": pg_passwd},
                         {"name": "etc/group", "data": pg_group},
                         {"name": "home/default-user/", "type": "dir", "uid": 1000,
                          "gid": 1000}])
        self.image(STAGING + "test-image-predefined-group:latest", [pg], {"User": "1000"},
                   index=True)

        pause = make_layer([{"name": "pause", "data": open(ws, "rb").read(), "mode": 0o755}])
        for name in ("registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"):
            repo, tag = split(name)
            img = self.reg.push_image(repo, tag, [pause],
                                      config={"Cmd": None, "Entrypoint": ["/pause"],
                                              "Env": [PATH_ENV]})
            self.built[name] = img.digest
        return self.built


def build(registry, work):
    os.makedirs(work, exist_ok=True)
    try:
        return Builder(registry, work).build_all()
    finally:
        shutil.rmtree(work, ignore_errors=True)
