"""Shared pytest fixtures: a real hulld on a temporary root, state dir and socket.

`hulld` starts one with default test flags; `hulld_factory(*extra_args)` starts more (with
custom flags).  Each daemon object gives gRPC stubs (`runtime`, `image`), the generated
messages (`pb`), its paths, `restart()`, `stop()` and the log text.  Binaries come from
$HULL_BUILD (the Makefile sets it; default: build/ of the checkout).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc
import pytest

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
        return args + self.extra_args

    def start(self, timeout=20):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
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

    def sanitizer_report(self):
        """ASan/UBSan/LSan findings in the log (empty when clean)."""
        text = self.log()
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "ERROR: UndefinedBehaviorSanitizer")
        return "\n".join(line for line in text.splitlines() if any(m in line for m in marks))


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
        rc = d.stop()
        report = d.sanitizer_report()
        if report:
            problems.append(f"sanitizer findings in hulld:\n{report}")
        if rc not in (0, None):
            problems.append(f"hulld exited with {rc}:\n{d.log()[-4000:]}")
    for base in bases:
        unmount_below(base)
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def hulld(hulld_factory):
    return hulld_factory()
