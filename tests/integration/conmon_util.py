"""Helpers to drive hull-conmon the way hulld does: spawn it with a sync pipe, read its
report, talk to its attach and control sockets, read the exit file.  Used by
test_conmon*.py and tests/bench/bench_conmon.py.

Runtimes: runc (/usr/sbin/runc) and hull-oci from $HULL_BUILD.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import bundle

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("HULL_BUILD", os.path.join(REPO, "build"))
RUNC = "/usr/sbin/runc"

# attach socket tags (conmon/conmon.h)
STDIN, STDOUT, STDERR, EXIT, STDIN_EOF, RESIZE = 0, 1, 2, 3, 4, 5

CRI_LINE = re.compile(
    rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$")


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def conmon_bin():
    return os.path.join(BUILD, "hull-conmon")


def hull_oci_bin():
    return os.path.join(BUILD, "hull-oci")


def short_tmpdir(prefix="hc"):
    """Socket paths must fit in 108 bytes: keep the per-test dirs short."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def parse_cri_log(data):
    """Returns [(timestamp, stream, tag, content)] and checks every record's framing."""
    assert data == b"" or data.endswith(b"\n"), "log does not end with a newline"
    out = []
    for line in data.split(b"\n")[:-1] if data else []:
        m = CRI_LINE.match(line)
        assert m, f"not a CRI log line: {line[:120]!r}"
        out.append((m.group(1).decode(), m.group(2).decode(), m.group(3).decode(), m.group(4)))
    return out


def cri_text(records, stream=None):
    """Reassembles what the process wrote (kubelet's view): P chunks joined, F adds \\n."""
    s = b""
    for _, st, tag, content in records:
        if stream is None or st == stream:
            s += content + (b"\n" if tag == "F" else b"")
    return s


def read_line(fd, timeout):
    """Reads one '\\n'-terminated line from a pipe fd (bytes, without the newline)."""
    buf = b""
    deadline = time.time() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError(f"sync pipe: no line after {timeout}s (got {buf!r})")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        c = os.read(fd, 1)
        if not c:
            raise EOFError(f"sync pipe closed (got {buf!r})")
        buf += c
    return buf[:-1]


def read_exact(fd, n, timeout):
    buf = b""
    deadline = time.time() + timeout
    while len(buf) < n:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("sync pipe: short read")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            c = os.read(fd, min(65536, n - len(buf)))
            if not c:
                raise EOFError("sync pipe closed early")
            buf += c
    return buf


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def is_conmon(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"hull-conmon" in f.read().split(b"\0")[0]
    except OSError:
        return False


def wait_for(pred, timeout=10, interval=0.02, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


class Attach:
    """One attach connection (SOCK_SEQPACKET, 1 tag byte + payload)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(path)
        # bytearrays: appending a packet is O(packet), so a client taking megabytes keeps up
        # with the monitor however slow the machine (bytes += bytes copies everything so far)
        self.out = {STDOUT: bytearray(), STDERR: bytearray()}
        self.exit = None
        self.received = time.time()  # when the last packet came

    def send(self, data, tag=STDIN):
        self.sock.send(bytes([tag]) + data)

    def resize(self, rows, cols):
        self.send(f"{rows} {cols}".encode(), RESIZE)

    def close_stdin(self):
        self.send(b"", STDIN_EOF)

    def pump(self, timeout=0.1):
        """Waits up to timeout for packets and takes every one queued (at most 256); returns
        False once the monitor closed."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        for _ in range(256):
            try:
                pkt = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return True
            if not pkt:
                return False
            self.received = time.time()
            tag, data = pkt[0], pkt[1:]
            if tag == EXIT:
                self.exit = json.loads(data)
            else:
                self.out[tag] += data
        return True

    def read_until(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self):
                return True
            if not self.pump(0.1):
                return pred(self)
        return pred(self)

    def read_to_end(self, timeout=10, idle=None):
        """Reads until the monitor closes the connection, for at most timeout seconds; with
        idle, also fails once no packet came for idle seconds (a transfer whose duration
        depends on the machine's speed waits on progress, not on a fixed time)."""
        deadline = time.time() + timeout
        self.received = time.time()
        while time.time() < deadline:
            if not self.pump(0.1):
                return True
            if idle is not None and time.time() - self.received > idle:
                raise TimeoutError(f"attach: no output for {idle} s (got "
                                   f"{len(self.out[STDOUT])} + {len(self.out[STDERR])} bytes)")
        raise TimeoutError("attach: monitor did not close the connection")

    def close(self):
        self.sock.close()


def ctl(path, request, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.send(request.encode())
        return s.recv(4096).decode()
    finally:
        s.close()


class Monitor:
    """One hull-conmon instance (container or exec) and everything it created."""

    def __init__(self, env, cid, bundle_dir=None, terminal=False, stdin=False, stdin_once=False,
                 log=True, exec_process=None, timeout=None, capture=False, capture_max=None,
                 log_max_size=None, exec_attach=False, extra=(), binary=None):
        self.env = env
        self.cid = cid
        self.runtime = env.runtime
        self.dir = short_tmpdir("hcm")
        self.socket_dir = os.path.join(self.dir, "s")
        self.exit_dir = os.path.join(self.dir, "x")
        self.log_path = os.path.join(self.dir, "ctr.log") if log else None
        self.exit_path = os.path.join(self.exit_dir, cid)
        self.attach_path = os.path.join(self.socket_dir, "attach")
        self.ctl_path = os.path.join(self.socket_dir, "ctl")
        self.monitor_log = os.path.join(self.dir, "monitor.log")
        self.pidfile = os.path.join(self.dir, "monitor.pid")
        self.bundle = bundle_dir
        self.exec = exec_process is not None
        self.capture = capture
        args = [binary or conmon_bin(), "--cid", cid, "--runtime", self.runtime,
                "--runtime-root", env.runtime_root, "--socket-dir", self.socket_dir,
                "--exit-dir", self.exit_dir, "--monitor-log", self.monitor_log,
                "--conmon-pidfile", self.pidfile,
                "--log-level", "debug"]
        if bundle_dir:
            args += ["--bundle", bundle_dir]
        if self.log_path:
            args += ["--log-path", self.log_path]
        if terminal:
            args.append("--terminal")
        if stdin:
            args.append("--stdin")
        if stdin_once:
            args.append("--stdin-once")
        if exec_process is not None:
            pfile = os.path.join(self.dir, "process.json")
            with open(pfile, "w") as f:
                json.dump(exec_process, f)
            args += ["--exec", "--exec-process", pfile]
        if timeout is not None:
            args += ["--timeout", str(timeout)]
        if capture:
            args.append("--exec-capture")
        if exec_attach:
            args.append("--exec-attach")
        self.early = None  # the attach client connected before the exec ran (--exec-attach)
        if capture_max is not None:
            args += ["--capture-max", str(capture_max)]
        if log_max_size is not None:
            args += ["--log-max-size", str(log_max_size)]
        self.args = args + list(extra)
        self.pid = None
        self.monitor_pid = None
        self.sync_r = None
        env.monitors.append(self)

    def spawn(self, timeout=30, launcher=None):
        """Starts hull-conmon as hulld does and reads its first sync message.  With launcher
        (a callable taking args and pass_fds), something else starts it."""
        r, w = os.pipe()
        self.sync_r = r
        args = self.args + ["--sync-fd", str(w)]
        if launcher:
            launcher(args, (w,))
        else:
            p = subprocess.run(args, pass_fds=(w,), capture_output=True, timeout=timeout)
            assert p.returncode == 0, p.stderr.decode()
        os.close(w)
        self.sync = json.loads(read_line(r, timeout))
        if self.sync.get("ready"):
            # --exec-attach: the monitor waits for us before it runs the exec
            self.early = Attach(self.attach_path)
            self.sync = json.loads(read_line(r, timeout))
        self.monitor_pid = self.sync.get("monitor_pid")
        if self.sync.get("pid", -1) > 0:
            self.pid = self.sync["pid"]
        if not self.capture:
            os.close(r)
            self.sync_r = None
        return self.sync

    def start(self, timeout=30):
        s = self.spawn(timeout)
        assert s.get("pid", -1) > 0, f"runtime failed: {s}\n{self.monitor_text()}"
        return self

    def runtime_cmd(self, *args, check=True):
        return subprocess.run([self.runtime, "--root", self.env.runtime_root] + list(args),
                              capture_output=True, timeout=30, check=check)

    def start_container(self):
        self.runtime_cmd("start", self.cid)
        return self

    def wait_exit(self, timeout=20):
        def read():
            try:
                with open(self.exit_path) as f:
                    return json.load(f)
            except FileNotFoundError:
                return None
        return wait_for(read, timeout, what=f"exit file {self.exit_path}")

    def wait_monitor_gone(self, timeout=10):
        wait_for(lambda: not pid_alive(self.monitor_pid), timeout, what="monitor exit")

    def read_capture(self, timeout=30):
        hdr = json.loads(read_line(self.sync_r, timeout))
        out = read_exact(self.sync_r, hdr["stdout_len"], timeout)
        err = read_exact(self.sync_r, hdr["stderr_len"], timeout)
        assert os.read(self.sync_r, 1) == b"", "sync pipe not closed after the capture"
        os.close(self.sync_r)
        self.sync_r = None
        return hdr, out, err

    def log_bytes(self, path=None):
        with open(path or self.log_path, "rb") as f:
            return f.read()

    def monitor_text(self):
        try:
            with open(self.monitor_log) as f:
                return f.read()
        except OSError:
            return ""

    def attach(self):
        return Attach(self.attach_path)

    def ctl(self, request):
        return ctl(self.ctl_path, request)

    def cleanup(self):
        """Removes the container, lets the monitor finish (so sanitizer reports get written),
        kills it if it does not, and returns any sanitizer report from its log."""
        if not self.exec:
            self.runtime_cmd("delete", "--force", self.cid, check=False)
        if not self.monitor_pid:  # the sync message never came: the pid file tells
            try:
                with open(self.pidfile) as f:
                    self.monitor_pid = int(f.read())
            except (OSError, ValueError):
                pass
        if self.monitor_pid and is_conmon(self.monitor_pid):
            try:
                wait_for(lambda: not pid_alive(self.monitor_pid), 3, what="monitor exit")
            except TimeoutError:
                try:
                    os.kill(self.monitor_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.sync_r is not None:
            os.close(self.sync_r)
            self.sync_r = None
        text = self.monitor_text()
        shutil.rmtree(self.dir, ignore_errors=True)
        bad = [m for m in SANITIZER_MARKS if m in text]
        return f"{self.cid}: sanitizer report in monitor log:\n{text}" if bad else None


class Env:
    """Per-test environment: a runtime (path), its own state root, a shared rootfs."""

    def __init__(self, runtime, rootfs):
        self.runtime = runtime
        self.rootfs = rootfs
        self.base = short_tmpdir("hce")
        self.runtime_root = os.path.join(self.base, "rt")
        os.makedirs(self.runtime_root)
        self.monitors = []
        self.n = 0

    def cid(self, name="c"):
        self.n += 1
        return f"{name}{self.n}-{os.getpid()}-{os.path.basename(self.base)}"

    def bundle(self, args, **overrides):
        path = os.path.join(self.base, f"b{self.n}-{len(self.monitors)}")
        bundle.make_bundle(path, args, rootfs=self.rootfs, **overrides)
        return path

    def container(self, args, name="c", bundle_overrides=None, **kw):
        cid = self.cid(name)
        b = self.bundle(args, **(bundle_overrides or {}))
        return Monitor(self, cid, bundle_dir=b, **kw)

    def exec_in(self, target, args, terminal=False, **kw):
        spec = bundle.make_spec(args)
        proc = spec["process"]
        proc["terminal"] = terminal
        return Monitor(self, target.cid, exec_process=proc, terminal=terminal, **kw)

    def cleanup(self):
        """Cleans up every monitor; returns the sanitizer reports found (empty if none)."""
        reports = []
        for m in reversed(self.monitors):
            try:
                r = m.cleanup()
                if r:
                    reports.append(r)
            except Exception:  # noqa: BLE001 - best effort, keep cleaning
                pass
        shutil.rmtree(self.base, ignore_errors=True)
        return reports
