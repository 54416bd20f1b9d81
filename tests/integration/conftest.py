"""Shared pytest fixtures: a real hulld on a temporary root, state dir and socket.

`hulld` starts one with default test flags; `hulld_factory(*extra_args)` starts more (with
custom flags).  Each daemon object gives gRPC stubs (`runtime`, `image`), the generated
messages (`pb`), its paths, `restart()`, `stop()` and the log text.  Binaries come from
$HULL_BUILD (the Makefile sets it; default: build/ of the checkout).

Every test daemon has its own cgroup parent (/hulltest-<dir>, never the machine's /hull) and its
sanitized processes (hulld, hull-conmon) write their sanitizer reports to files of its own
(<base>/sanitizer.<pid>): a monitor's report outlives its container's state directory.  At
teardown (`finish_daemon`) every pod left is removed, the daemon stopped, and the test fails on
sanitizer findings, a non-zero exit, or anything left on the host (leaks.daemon_leftovers:
processes, mounts, pinned namespaces, cgroups, iptables rules, state files); only then is it
cleaned by force.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc
import pytest

import leaks

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("HULL_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(BUILD, "gen", "py"))

from runtime.v1 import api_pb2 as pb  # noqa: E402
from runtime.v1 import api_pb2_grpc as pb_grpc  # noqa: E402

MAX_MSG = 16 * 1024 * 1024


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is not built (run make)")
    return path


class Hulld:
    """One hulld process with its own temporary directories."""

    def __init__(self, base, extra_args=()):
        self.base = base
        self.root = os.path.join(base, "root")
        self.state_dir = os.path.join(base, "state")
        self.socket = os.path.join(base, "run", "hull.sock")
        self.cni_dir = os.path.join(base, "cni")
        self.log_path = os.path.join(base, "hulld.log")
        self.config_path = os.path.join(base, "hull.json")
        os.makedirs(self.cni_dir, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write('{"log_level": "debug"}\n')
        self.extra_args = list(extra_args)
        self.cgroup_parent = "/hulltest-" + os.path.basename(base).replace("hulltest-", "")
        if "--cgroup-parent" in self.extra_args:
            self.cgroup_parent = self.extra_args[self.extra_args.index("--cgroup-parent") + 1]
        self.proc = None
        self.channel = None
        self.pb = pb

    @property
    def args(self):
        args = [binary("hulld"), "--listen", self.socket, "--root", self.root,
                "--state-dir", self.state_dir]
        if not any(a.startswith("--cni-config-dir") for a in self.extra_args):
            args += ["--cni-config-dir", self.cni_dir]
        if not any(a.startswith("--config") for a in self.extra_args):
            # never pick up the machine's /etc/hull/hull.json
            args += ["--config", self.config_path]
        if "--cgroup-parent" not in self.extra_args:
            args += ["--cgroup-parent", self.cgroup_parent]
        return args + self.extra_args

    @property
    def sanitizer_prefix(self):
        return os.path.join(self.base, "sanitizer")

    def env(self):
        """The daemon's environment: sanitizer reports of it and of every sanitized process it
        starts go to <base>/sanitizer.<pid>."""
        env = dict(os.environ)
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            env[var] = ":".join(filter(None, (env.get(var), "log_path=" + self.sanitizer_prefix)))
        return env

    def start(self, timeout=20):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env())
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hulld exited with {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.socket):
                try:
                    self.connect()
                    self.runtime.Version(pb.VersionRequest(), timeout=2)
                    return self
                except grpc.RpcError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"hulld did not come up:\n{self.log()}")

    def connect(self):
        if self.channel:
            self.channel.close()
        self.channel = grpc.insecure_channel(
            "unix://" + self.socket,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                     ("grpc.max_send_message_length", 64 * 1024 * 1024)])
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.image = pb_grpc.ImageServiceStub(self.channel)

    def stop(self, sig=signal.SIGTERM, timeout=40):
        """Stops hulld; returns its exit code."""
        if self.channel:
            self.channel.close()
            self.channel = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def restart(self):
        rc = self.stop()
        assert rc == 0, f"hulld exited {rc}:\n{self.log()}"
        return self.start()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def sanitizer_files(self):
        """The sanitizer report files of this daemon and its monitors, and the monitor logs
        (<state>/containers/<id>/monitor.log) of the containers that still exist."""
        files = glob.glob(self.sanitizer_prefix + ".*")
        files += glob.glob(os.path.join(self.state_dir, "containers", "*", "monitor.log"))
        return sorted(files)

    def sanitizer_report(self):
        """ASan/UBSan/LSan findings in the log, in the sanitizer report files and in the
        monitor logs (empty when clean)."""
        texts = [("hulld.log", self.log())]
        for path in self.sanitizer_files():
            try:
                with open(path, errors="replace") as f:
                    texts.append((path, f.read()))
            except OSError:
                pass
        out = []
        for name, text in texts:
            lines = text.splitlines()
            hits = [i for i, line in enumerate(lines) if any(m in line for m in SANITIZER_MARKS)]
            if hits:
                # the finding with its first frames
                out.append(f"{name}:\n" + "\n".join(lines[hits[0]:hits[0] + 30]))
        return "\n".join(out)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


def finish_daemon(d, remove_pods=True):
    """Teardown of one test daemon: removes every pod it still has (unless remove_pods is
    False), stops it and returns the problems found (sanitizer findings, exit code, what it
    left on the host), then cleans up by force what it left.  The directories are the
    caller's to remove."""
    import cri
    ids = []
    if d.proc is not None and d.proc.poll() is None:
        try:
            ids = [p.id for p in d.runtime.ListPodSandbox(pb.ListPodSandboxRequest(),
                                                          timeout=10).items]
            ids += [c.id for c in d.runtime.ListContainers(pb.ListContainersRequest(),
                                                           timeout=10).containers]
        except grpc.RpcError:
            pass
        if remove_pods:
            cri.remove_all_pods(d)
    problems = []
    rc = d.stop()
    report = d.sanitizer_report()
    if report:
        problems.append(f"sanitizer findings:\n{report}")
    if rc not in (0, None):
        problems.append(f"hulld exited with {rc}:\n{d.log()[-4000:]}")
    # monitors exit just after their container: give them a moment
    deadline = time.monotonic() + 5
    while True:
        left = leaks.daemon_leftovers(d, ids)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if left:
        problems.append(f"left on the host by hulld {d.base}:\n" + "\n".join(left))
        leaks.force_clean(d)
    return problems


def unmount_below(base):
    """Lazily unmounts every mount at or below base, deepest first (a failed test may leave
    pinned namespaces, shm or overlay mounts behind)."""
    prefix = os.path.realpath(base)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    below = [p for p in points if p == prefix or p.startswith(prefix + "/")]
    for p in sorted(set(below), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], stderr=subprocess.DEVNULL)


@pytest.fixture
def hulld_factory():
    daemons = []
    bases = []

    def make(*extra_args, start=True):
        base = tempfile.mkdtemp(prefix="hulltest-")
        bases.append(base)
        d = Hulld(base, extra_args)
        daemons.append(d)
        return d.start() if start else d

    yield make
    problems = []
    for d in daemons:
        problems += finish_daemon(d)
    for base in bases:
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def hulld(hulld_factory):
    return hulld_factory()
