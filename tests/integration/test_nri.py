"""NRI (Node Resource Interface) plugins against a real hulld: a real plugin built on
containerd/nri v0.12.2's stub (tests/tools/nri-plugin, built by tests/tools/build-nri-plugins.sh)
adjusts containers, fails and crashes; raw bad protocol input on the NRI socket is refused.
The critest NRI specs run in `make conformance` (tests/conformance/run.py, -nri-socket)."""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import grpc
import pytest

import cri
from conftest import pb
from cri import wait_for
from registry import all_applets, busybox_image, registry  # noqa: F401  (fixtures)

TOOLS = os.environ.get("HULL_TOOLS", "/var/cache/hull-tools")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def plugin_bin():
    """hull-nri-plugin, built once into the tools cache (Go, through the module proxy)."""
    env = dict(os.environ, HULL_TOOLS=TOOLS)
    r = subprocess.run([os.path.join(REPO, "tests", "tools", "build-nri-plugins.sh")],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


class Plugin:
    """One hull-nri-plugin process; .events() are the lines it logged."""

    def __init__(self, binary, sock, workdir, name, idx="50", *args):
        self.events_path = os.path.join(workdir, f"events-{idx}-{name}")
        self.log_path = self.events_path + ".log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "-socket", sock, "-name", name, "-idx", idx,
                                      "-events", self.events_path, *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def events(self):
        if not os.path.exists(self.events_path):
            return []
        with open(self.events_path) as f:
            return [line.strip() for line in f if line.strip()]

    def wait_ready(self, timeout=20):
        wait_for(lambda: any(e.startswith("Synchronize") for e in self.events()),
                 timeout=timeout, what="the plugin's Synchronize")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def nri(hulld_factory, registry, busybox_image, plugin_bin):  # noqa: F811
    """A hulld serving NRI on a private socket, with busybox pulled; .plugin(...) starts one."""
    work = tempfile.mkdtemp(prefix="hullnri-")
    sock = os.path.join(work, "nri.sock")
    d = hulld_factory("--insecure-registry", registry.host, "--enable-nri",
                      "--nri-socket", sock, "--nri-registration-timeout-ms", "1000")
    cri.prepare(d, busybox_image, None)
    d.nri_socket = sock
    d.work = work
    plugins = []

    def plugin(name, idx="50", *args, ready=True):
        p = Plugin(plugin_bin, sock, work, name, idx, *args)
        plugins.append(p)
        if ready:
            p.wait_ready()
        return p

    d.plugin = plugin
    yield d
    cri.remove_all_pods(d)
    for p in plugins:
        p.stop()
    shutil.rmtree(work, ignore_errors=True)


def spec_of(d, cid):
    with open(os.path.join(d.state_dir, "containers", cid, "config.json")) as f:
        return json.load(f)


def of(events, ident):
    """The event names (first word) of the lines naming ident."""
    return [e.split()[0] for e in events if ident in e]


def test_plugin_adjustments_land_in_the_container(nri):
    """The plugin's CreateContainer adjustment: an env variable, an annotation, a read-only bind
    mount and a device node are in the OCI spec and visible inside the container; the plugin
    sees the pod and container lifecycle in order."""
    d = nri
    shared = os.path.join(d.work, "shared")
    os.makedirs(shared)
    with open(os.path.join(shared, "hello"), "w") as f:
        f.write("from the plugin\n")
    node = os.path.join(d.work, "nullnode")
    os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))
    p = d.plugin("adjuster", "10", "-env", "HULL_NRI=injected", "-annotation",
                 "hull.test/nri=yes", "-mount", f"{shared}:/nri-shared",
                 "-device", f"{node}:/dev/nri-null")
    pod, pcfg = cri.new_pod(d, "nri-adjust", network=pb.NODE)
    cid = cri.new_container(d, pod, pcfg, "adjusted", ["sleep", "3600"])
    spec = spec_of(d, cid)
    assert "HULL_NRI=injected" in spec["process"]["env"]
    assert "IMG=yes" in spec["process"]["env"]  # the image's env is still there
    assert spec["annotations"]["hull.test/nri"] == "yes"
    assert any(m["destination"] == "/nri-shared" and m["source"] == shared
               for m in spec["mounts"])
    dev = [x for x in spec["linux"]["devices"] if x["path"] == "/dev/nri-null"]
    assert dev and dev[0]["major"] == 1 and dev[0]["minor"] == 3, spec["linux"]["devices"]
    cri.start_container(d, cid)
    assert cri.exec_sync(d, cid, "sh", "-c", "echo $HULL_NRI") == "injected\n"
    assert cri.exec_sync(d, cid, "cat", "/nri-shared/hello") == "from the plugin\n"
    rc, _, _ = cri.sh(d, cid, "touch /nri-shared/x")
    assert rc != 0  # read-only
    assert cri.exec_sync(d, cid, "sh", "-c",
                         "test -c /dev/nri-null && echo ok > /dev/nri-null && echo yes") == "yes\n"
    cri.stop_container(d, cid)
    cri.remove_container(d, cid)
    cri.stop_pod(d, pod)
    cri.remove_pod(d, pod)
    wait_for(lambda: "RemovePodSandbox" in of(p.events(), pod), what="RemovePodSandbox")
    assert of(p.events(), cid) == ["CreateContainer", "StartContainer", "StopContainer",
                                   "RemoveContainer"]
    assert of(p.events(), "pod=" + pod) == [
        "RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
        "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"]


def test_plugin_synchronize_sees_existing_and_exit_is_reported(nri):
    """A plugin that connects late is synchronized with the existing pod and container; a
    container that exits on its own is reported with StopContainer."""
    d = nri
    pod, pcfg = cri.new_pod(d, "nri-sync", network=pb.NODE)
    cid = cri.new_container(d, pod, pcfg, "early", ["sleep", "3600"])
    p = d.plugin("late", "20")
    assert p.events()[0].startswith("Synchronize pods=1 containers=1 "), p.events()
    quick = cri.new_container(d, pod, pcfg, "quick", ["sh", "-c", "exit 3"])
    cri.start_container(d, quick)
    wait_for(lambda: "StopContainer" in of(p.events(), quick), what="StopContainer")
    assert of(p.events(), quick) == ["CreateContainer", "StartContainer", "StopContainer"]
    assert of(p.events(), cid) == []


def test_plugin_error_fails_create_and_leaks_nothing(nri):
    """A plugin answering CreateContainer with an error fails the CRI call with its message; no
    container, record or mount is left; once the plugin is gone creation works."""
    d = nri
    p = d.plugin("refuser", "10", "-fail-create")
    pod, pcfg = cri.new_pod(d, "nri-refuse", network=pb.NODE)
    with pytest.raises(grpc.RpcError) as e:
        cri.new_container(d, pod, pcfg, "refused", ["sleep", "3600"])
    assert "NRI plugin 10-refuser failed CreateContainer" in e.value.details()
    assert "hull-nri-plugin refuses container refused" in e.value.details()
    assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
    assert os.listdir(os.path.join(d.state_dir, "containers")) == []
    p.stop()
    wait_for(lambda: "plugin 10-refuser: disconnected" in d.log(), what="the drop")
    cid = cri.new_container(d, pod, pcfg, "refused", ["sleep", "3600"])
    cri.start_container(d, cid)


def test_conflicting_adjustments_are_refused(nri):
    """Two plugins setting the same environment variable: CreateContainer fails naming both,
    and the plugins that saw the creation are told it is undone (StopContainer,
    RemoveContainer; never StartContainer)."""
    d = nri
    one = d.plugin("one", "10", "-env", "SAME=1")
    two = d.plugin("two", "20", "-env", "SAME=2")
    pod, pcfg = cri.new_pod(d, "nri-conflict", network=pb.NODE)
    with pytest.raises(grpc.RpcError) as e:
        cri.new_container(d, pod, pcfg, "torn", ["sleep", "3600"])
    assert "conflict" in e.value.details() and "10-one" in e.value.details() \
        and "20-two" in e.value.details(), e.value.details()
    assert len(d.runtime.ListContainers(pb.ListContainersRequest()).containers) == 0
    for p in (one, two):
        wait_for(lambda: "RemoveContainer" in of(p.events(), "name=torn"), what="the undo")
        assert of(p.events(), "name=torn") == ["CreateContainer", "StopContainer",
                                               "RemoveContainer"]


def test_plugin_crash_does_not_break_cri(nri):
    """A plugin exiting in the middle of CreateContainer is dropped: the call goes on without
    it, and so does everything after."""
    d = nri
    p = d.plugin("crasher", "10", "-exit-on", "CreateContainer")
    pod, pcfg = cri.new_pod(d, "nri-crash", network=pb.NODE)
    cid = cri.new_container(d, pod, pcfg, "survivor", ["sleep", "3600"])
    assert p.proc.wait(10) == 3
    assert "plugin 10-crasher: disconnected" in d.log()
    cri.start_container(d, cid)
    cri.stop_pod(d, pod)
    cri.remove_pod(d, pod)
    pod2, pcfg2 = cri.new_pod(d, "nri-after", network=pb.NODE)
    cri.new_container(d, pod2, pcfg2, "after", ["sleep", "3600"])


def recv_closed(s, timeout=10):
    """True when the peer closed s (EOF) within timeout, whatever it sent before."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if s.recv(65536) == b"":
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


def frame(conn, payload):
    return struct.pack(">II", conn, len(payload)) + payload


def ttrpc(stream, typ, payload):
    return struct.pack(">IIBB", len(payload), stream, typ, 0) + payload


GARBAGE = {
    "oversized frame": struct.pack(">II", 1, 0xFFFFFFF0) + b"x" * 64,
    "unknown conn": frame(7, b"hello"),
    "oversized ttrpc message": frame(2, struct.pack(">IIBB", 0x7FFFFFFF, 1, 1, 0)),
    "wrong message type": frame(2, ttrpc(1, 9, b"")),
    "even stream id": frame(2, ttrpc(2, 1, b"")),
    "undecodable request": frame(2, ttrpc(1, 1, b"\xff\xff\xff\xff\xff")),
    "undecodable response": frame(1, ttrpc(1, 2, b"\x0a\xff\xff")),
    "random bytes": bytes(range(256)) * 8,
}


def test_bad_protocol_input_closes_the_connection(nri):
    """Garbage on the NRI socket (bad frames, bad ttrpc, bad protobuf) gets that connection
    closed; a connection that never registers is closed after the registration timeout; hulld
    (ASan build) keeps serving CRI and real plugins."""
    d = nri
    for what, data in GARBAGE.items():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(d.nri_socket)
            s.sendall(data)
            assert recv_closed(s), what
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(d.nri_socket)
        t = time.monotonic()
        assert recv_closed(s, 10), "silent connection"
        assert time.monotonic() - t >= 0.9
    assert "did not register in time" in d.log()
    # an unknown Runtime method is answered with an error, the connection stays
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(d.nri_socket)
        svc, meth = b"nri.pkg.api.v1alpha1.Runtime", b"Nope"
        req = bytes([0x0a, len(svc)]) + svc + bytes([0x12, len(meth)]) + meth
        s.sendall(frame(2, ttrpc(1, 1, req)))
        s.settimeout(5)
        hdr = s.recv(8)
        conn, n = struct.unpack(">II", hdr)
        body = b""
        while len(body) < n:
            body += s.recv(n - len(body))
        assert conn == 2 and body[8] == 2 and b"not implemented" in body
    assert d.proc.poll() is None
    p = d.plugin("after-garbage", "30")
    pod, pcfg = cri.new_pod(d, "nri-garbage", network=pb.NODE)
    cid = cri.new_container(d, pod, pcfg, "fine", ["sleep", "3600"])
    wait_for(lambda: "CreateContainer" in of(p.events(), cid), what="CreateContainer")


def test_blocked_plugin_times_out_and_is_dropped(nri, tmp_path):
    """A plugin that never answers an event is dropped after the request timeout (2 s) and the
    CRI call succeeds; calls for unrelated pods are not held by it beyond NRI's ordering."""
    d = nri
    p = d.plugin("staller", "10")
    p.proc.send_signal(19)  # SIGSTOP: connected, registered, never answers again
    try:
        t = time.monotonic()
        pod, _ = cri.new_pod(d, "nri-stall", network=pb.NODE)
        took = time.monotonic() - t
        assert 1.5 < took < 10, took
        assert "plugin 10-staller: RunPodSandbox timed out after 2000 ms" in d.log()
        t = time.monotonic()
        cri.new_pod(d, "nri-after-stall", network=pb.NODE)
        assert time.monotonic() - t < 1.5  # dropped: not waited for again
    finally:
        p.proc.send_signal(18)


def test_socket_served_by_another_process_leaves_nri_off(hulld_factory):
    """hulld does not steal an NRI socket another runtime serves: it logs and runs without NRI."""
    work = tempfile.mkdtemp(prefix="hullnri-")
    sock = os.path.join(work, "nri.sock")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(sock)
    other.listen(1)
    try:
        d = hulld_factory("--enable-nri", "--nri-socket", sock)
        assert "NRI disabled: nri socket " + sock + " is served by another process" in d.log()
        d.runtime.Version(pb.VersionRequest())
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(sock)  # still the other process's
            other.settimeout(5)
            conn, _ = other.accept()
            conn.close()
    finally:
        other.close()
        shutil.rmtree(work, ignore_errors=True)


def test_nri_socket_is_root_only(nri):
    """A plugin can add mounts and devices to any container: the NRI socket is root's alone
    (0600), and an unprivileged host user cannot connect to it."""
    st = os.stat(nri.nri_socket)
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o600, oct(st.st_mode)
    # the test's own directory is opened to others so that only the socket's mode can refuse
    os.chmod(os.path.dirname(nri.nri_socket), 0o711)
    probe = ("import socket,sys\n"
             "s=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n sys.exit(3)\n"
             "sys.exit(0)\n")
    r = subprocess.run(["/usr/bin/python3", "-c", probe, nri.nri_socket],
                       preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), timeout=30)
    assert r.returncode == 3, "uid 65534 could connect to the NRI socket"
