"""Shared helpers for the hull-oci integration tests (no tests here).

The runtime under test is hull-oci ($HULL_BUILD/hull-oci) unless RUNTIME=runc is set, in which
case Debian's runc runs the same tests: that is how CLI compatibility is shown.

Containers run for real.  Their stdio is redirected to files; the test process makes itself a
child subreaper (as hull-conmon does) while a container runs, so it can wait for the container
init and read its exit status.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

import bundle as B
from conftest import unmount_below

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNC = "/usr/sbin/runc"
RUNTIME = os.environ.get("RUNTIME", "hull")
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def hull_binary():
    build = os.environ.get("HULL_BUILD", os.path.join(REPO, "build"))
    return os.path.join(build, "hull-oci")


def runtime_binary(name=None):
    name = name or RUNTIME
    return RUNC if name == "runc" else hull_binary()


def is_hull(rt):
    return rt.name != "runc"


def set_subreaper(on):
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)


def cgroup_v1_root(controller):
    return os.path.join("/sys/fs/cgroup", controller)


def self_cgroup(controller):
    """The test process's cgroup path in a v1 hierarchy."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return "/"


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


def check_sanitizers(stderr):
    """hull-oci runs under ASan/UBSan in `make test`: any report fails the test."""
    for m in SANITIZER_MARKS:
        if m in (stderr or ""):
            raise AssertionError("sanitizer report from the runtime:\n" + stderr)


class Result:
    def __init__(self, status, out, err):
        self.status, self.out, self.err = status, out, err

    def __repr__(self):
        return "Result(status=%r, out=%r, err=%r)" % (self.status, self.out, self.err)


class Runtime:
    """One runtime binary with its own --root, cleaned up at teardown."""

    def __init__(self, name, tmp):
        self.name = name
        self.binary = runtime_binary(name)
        self.root = os.path.join(str(tmp), "state-" + name)
        self.tmp = str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.ids = []
        self.cgroups = []
        self.pids = set()  # container inits seen: reaped at cleanup if they became ours

    def cmd(self, *args, check=False, timeout=60, **kw):
        argv = [self.binary, "--root", self.root] + [str(a) for a in args]
        # files, not pipes: a container process (exec -d, create) inherits stdio and would
        # hold a pipe open forever
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdin", subprocess.DEVNULL)
            p = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout = out.read().decode(errors="replace")
            p.stderr = err.read().decode(errors="replace")
        check_sanitizers(p.stderr)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr))
        return p

    def new_id(self, prefix="c"):
        cid = "%s-%s" % (prefix, uuid.uuid4().hex[:10])
        self.ids.append(cid)
        return cid

    def state(self, cid):
        p = self.cmd("state", cid, check=True)
        st = json.loads(p.stdout)
        if st.get("pid"):
            self.pids.add(st["pid"])
        return st

    def status(self, cid):
        p = self.cmd("state", cid)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)["status"]

    def create(self, cid, bundle, *extra, stdout=None, stderr=None, stdin=subprocess.DEVNULL,
               check=True, pass_fds=()):
        argv = [self.binary, "--root", self.root, "create", "--bundle", bundle] + \
            [str(e) for e in extra] + [cid]
        with tempfile.TemporaryFile() as ef:
            p = subprocess.run(argv, stdout=stdout or subprocess.DEVNULL,
                               stderr=stderr if stderr is not None else ef, stdin=stdin,
                               timeout=60, pass_fds=pass_fds)
            ef.seek(0)
            err = ef.read().decode(errors="replace")
        check_sanitizers(err)
        if check and p.returncode != 0:
            raise AssertionError("create %s failed (%d): %s" % (cid, p.returncode, err))
        return p.returncode, err

    def wait_status(self, cid, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.status(cid)
            if s == want:
                return True
            time.sleep(0.02)
        return False

    def run(self, bundle_dir, args, timeout=30, create_args=(), **overrides):
        """Creates a bundle (fresh rootfs unless rootfs= is given) running args, runs it to
        completion and deletes it.  Returns Result(status, stdout, stderr)."""
        if not os.path.exists(os.path.join(bundle_dir, "config.json")):
            B.make_bundle(bundle_dir, args, **overrides)
        cid = self.new_id()
        outp = os.path.join(self.tmp, cid + ".out")
        errp = os.path.join(self.tmp, cid + ".err")
        set_subreaper(True)
        try:
            with open(outp, "wb") as o, open(errp, "wb") as e:
                rc, err = self.create(cid, bundle_dir, *create_args, stdout=o, stderr=e,
                                      check=False)
            if rc != 0:
                with open(errp) as f:
                    raise AssertionError("create failed (%d): %s" % (rc, f.read()))
            pid = self.state(cid)["pid"]
            self.cmd("start", cid, check=True)
            status = wait_pid(pid, timeout)
            with open(outp, errors="replace") as f:
                out = f.read()
            with open(errp, errors="replace") as f:
                err = f.read()
            return Result(status, out, err)
        finally:
            set_subreaper(False)
            self.cmd("delete", "--force", cid)

    def cleanup(self):
        for cid in self.ids:
            self.cmd("delete", "--force", cid, timeout=30)
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                self.cmd("delete", "--force", cid, timeout=30)
        for path in self.cgroups:
            rmdir_cgroup(path)
        reap_children(self.pids)


def wait_pid(pid, timeout=30):
    """Waits for pid (which must be our child, e.g. through the subreaper); returns a shell-like
    status (exit code, or 128+signal)."""
    deadline = time.time() + timeout
    while True:
        try:
            wpid, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if wpid == pid:
            if os.WIFEXITED(st):
                return os.WEXITSTATUS(st)
            return 128 + os.WTERMSIG(st)
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("container init %d did not exit in %ss" % (pid, timeout))
        time.sleep(0.005)


def reap_children(pids):
    """Reaps container inits reparented to us while we were a subreaper.  Only the given pids:
    never another fixture's subprocess."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def rmdir_cgroup(rel):
    """Removes cgroup rel (absolute cgroupsPath) from every v1 hierarchy and unified."""
    for base in os.listdir("/sys/fs/cgroup"):
        p = os.path.join("/sys/fs/cgroup", base, rel.lstrip("/"))
        for _ in range(50):
            try:
                os.rmdir(p)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def cgroup_exists_anywhere(rel):
    for base in os.listdir("/sys/fs/cgroup"):
        if os.path.isdir(os.path.join("/sys/fs/cgroup", base, rel.lstrip("/"))):
            return True
    return False


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if (" " + path) in l]


def make_rt(request, tmp_path, name=None):
    rt = Runtime(name or RUNTIME, tmp_path)
    if not os.path.exists(rt.binary):
        pytest.skip("runtime %s not built (%s)" % (rt.name, rt.binary))
    request.addfinalizer(rt.cleanup)
    return rt


def spec_with(bundle_dir, mutate):
    s = B.read_spec(bundle_dir)
    mutate(s)
    B.write_spec(bundle_dir, s)
    return s


def host_objects(dirs=("/proc", "/", "/run", "/sys")):
    """Links (the host's namespaces) and dev:ino pairs (of dirs) that name host objects a
    container must never reach."""
    links = set()
    for ns in ("pid", "net", "mnt", "ipc", "uts", "cgroup", "user"):
        try:
            links.add(os.readlink("/proc/self/ns/" + ns))
        except OSError:
            pass
    devino = set()
    for p in dirs:
        st = os.stat(p)
        devino.add("%d:%d" % (st.st_dev, st.st_ino))
    return links, devino


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory that is a shared mount (what kubelet needs for Bidirectional)."""
    d = str(tmp_path / "shared")
    os.makedirs(os.path.join(d, "fromhost"))
    os.makedirs(os.path.join(d, "fromctr"))
    subprocess.run(["mount", "--bind", d, d], check=True)
    try:
        subprocess.run(["mount", "--make-shared", d], check=True)
        yield d
    finally:
        unmount_below(d)
