"""hulld as a daemon: the gRPC surface (all 41 methods), bad input, concurrency, the socket,
signals and configuration."""
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time

import grpc
import pytest

import cri
import leaks
from conftest import MAX_MSG, Hulld, binary, finish_daemon, pb, pb_grpc
from cri import wait_for

SERVICES = ("RuntimeService", "ImageService")


def all_methods():
    """(path, request class, response class, server-streaming) for every CRI method."""
    out = []
    for svc in SERVICES:
        desc = pb.DESCRIPTOR.services_by_name[svc]
        for m in desc.methods:
            req = getattr(pb, m.input_type.name)
            resp = getattr(pb, m.output_type.name)
            out.append((f"/runtime.v1.{svc}/{m.name}", req, resp, m.server_streaming))
    return out


def raw_call(channel, path, payload, timeout=10):
    """Sends raw bytes as the request of path; returns the raw response bytes."""
    fn = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    return fn(payload, timeout=timeout)


def test_proto_has_41_methods():
    methods = all_methods()
    assert len(methods) == 41
    assert len({m[0] for m in methods}) == 41


def test_version(hulld):
    v = hulld.runtime.Version(pb.VersionRequest(version="v1"))
    assert v.runtime_name == "hull"
    assert v.runtime_api_version == "v1"
    assert v.version == "0.1.0"
    assert v.runtime_version


def test_runtime_config_reports_cgroupfs(hulld):
    r = hulld.runtime.RuntimeConfig(pb.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == pb.CGROUPFS


def test_status_conditions_and_verbose_info(hulld):
    st = hulld.runtime.Status(pb.StatusRequest())
    conds = {c.type: c for c in st.status.conditions}
    assert conds["RuntimeReady"].status is True
    assert "NetworkReady" in conds
    net = conds["NetworkReady"]
    if not net.status:
        assert net.reason and net.message
    assert len(st.info) == 0  # verbose off: no info map
    names = [h.name for h in st.runtime_handlers]
    assert "" in names and "hull-oci" in names

    st = hulld.runtime.Status(pb.StatusRequest(verbose=True))
    cfg = json.loads(st.info["config"])
    assert cfg["listen"] == hulld.socket
    assert cfg["root"] == hulld.root
    assert cfg["state_dir"] == hulld.state_dir
    assert cfg["cgroup_driver"] == "cgroupfs"


def test_network_not_ready_without_cni_config(hulld_factory, tmp_path):
    empty = tmp_path / "empty-cni"
    empty.mkdir()
    d = hulld_factory("--cni-config-dir", str(empty))
    conds = {c.type: c for c in d.runtime.Status(pb.StatusRequest()).status.conditions}
    assert conds["NetworkReady"].status is False
    assert conds["NetworkReady"].reason == "NetworkPluginNotReady"
    assert str(empty) in conds["NetworkReady"].message


def test_every_method_answers_or_is_unimplemented(hulld):
    """Each of the 41 methods, called with an empty request, answers (OK or an error that
    describes the request) or says UNIMPLEMENTED naming itself; hulld keeps serving."""
    bad = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE,
           grpc.StatusCode.DEADLINE_EXCEEDED)
    seen = {}
    for path, req, resp, streaming in all_methods():
        if path.endswith("/GetContainerEvents"):
            fn = hulld.channel.unary_stream(path, request_serializer=req.SerializeToString,
                                            response_deserializer=resp.FromString)
            stream = fn(req(), timeout=1)
            try:
                next(stream)
                code = grpc.StatusCode.OK
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    assert path in e.details()
                else:  # a live event stream ends at our deadline
                    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            except StopIteration:
                code = grpc.StatusCode.OK
            seen[path] = code
            continue
        if streaming:
            fn = hulld.channel.unary_stream(path, request_serializer=req.SerializeToString,
                                            response_deserializer=resp.FromString)
        else:
            fn = hulld.channel.unary_unary(path, request_serializer=req.SerializeToString,
                                           response_deserializer=resp.FromString)
        try:
            out = fn(req(), timeout=30)
            if streaming:
                list(out)
            seen[path] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            seen[path] = e.code()
            assert e.code() not in bad, f"{path}: {e.code()} {e.details()}"
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                assert path in e.details()
            else:
                assert e.details(), f"{path}: error without a message"
    assert len(seen) == 41
    # an empty request: the calls that name an object (or need a config) are refused as
    # INVALID_ARGUMENT; lists, streams, status and config calls answer; the event stream lives
    # until our deadline
    invalid = {"RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
               "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
               "ContainerStatus", "UpdateContainerResources", "ReopenContainerLog", "ExecSync",
               "Exec", "Attach", "PortForward", "ContainerStats", "PodSandboxStats",
               "UpdatePodSandboxResources", "ImageStatus", "PullImage", "RemoveImage",
               "CheckpointContainer"}
    special = {"GetContainerEvents": grpc.StatusCode.DEADLINE_EXCEEDED}
    want = {p: special.get(p.rsplit("/", 1)[1], grpc.StatusCode.INVALID_ARGUMENT
                           if p.rsplit("/", 1)[1] in invalid else grpc.StatusCode.OK)
            for p in seen}
    assert {p: c for p, c in seen.items() if c != want[p]} == {}
    for path in ("/runtime.v1.RuntimeService/Version", "/runtime.v1.RuntimeService/Status",
                 "/runtime.v1.RuntimeService/RuntimeConfig"):
        assert seen[path] == grpc.StatusCode.OK
    assert hulld.runtime.Version(pb.VersionRequest()).runtime_name == "hull"


def test_unknown_method_is_unimplemented(hulld):
    with pytest.raises(grpc.RpcError) as e:
        raw_call(hulld.channel, "/runtime.v1.RuntimeService/NoSuchThing", b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "NoSuchThing" in e.value.details()


def test_invalid_protobuf_is_invalid_argument(hulld):
    # field 1 (string) announcing 100 bytes but carrying 2: not a valid message
    with pytest.raises(grpc.RpcError) as e:
        raw_call(hulld.channel, "/runtime.v1.RuntimeService/Version", b"\x0a\x64ab")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "VersionRequest" in e.value.details()
    # wire type 7 does not exist
    with pytest.raises(grpc.RpcError) as e:
        raw_call(hulld.channel, "/runtime.v1.RuntimeService/Status", b"\x0f\xff\xff")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert hulld.runtime.Version(pb.VersionRequest()).runtime_name == "hull"


def test_empty_request_is_valid(hulld):
    out = raw_call(hulld.channel, "/runtime.v1.RuntimeService/Version", b"")
    assert pb.VersionResponse.FromString(out).runtime_name == "hull"


def test_16mib_request_is_rejected_and_server_survives(hulld):
    big = pb.VersionRequest(version="x" * (16 * 1024 * 1024)).SerializeToString()
    assert len(big) > MAX_MSG
    with pytest.raises(grpc.RpcError) as e:
        raw_call(hulld.channel, "/runtime.v1.RuntimeService/Version", big, timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # just under the limit is served
    ok = pb.VersionRequest(version="y" * (MAX_MSG - 64)).SerializeToString()
    out = raw_call(hulld.channel, "/runtime.v1.RuntimeService/Version", ok, timeout=30)
    assert pb.VersionResponse.FromString(out).runtime_name == "hull"


def test_client_disconnect_mid_call(hulld):
    # 1. raw socket: HTTP/2 preface then hang up in the middle of a frame
    for payload in (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04",
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 100, os.urandom(4096)):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hulld.socket)
        s.sendall(payload)
        s.close()
    # 2. a gRPC call cancelled by its client right away, many times over
    fn = hulld.channel.unary_unary("/runtime.v1.RuntimeService/Status",
                                   request_serializer=pb.StatusRequest.SerializeToString,
                                   response_deserializer=pb.StatusResponse.FromString)
    for _ in range(50):
        fut = fn.future(pb.StatusRequest(verbose=True))
        fut.cancel()
    # 3. a whole channel dropped with calls in flight
    ch = grpc.insecure_channel("unix://" + hulld.socket)
    stub = pb_grpc.RuntimeServiceStub(ch)
    futs = [stub.Version.future(pb.VersionRequest()) for _ in range(20)]
    ch.close()
    for f in futs:
        try:
            f.result(timeout=5)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.CANCELLED, e
    # hulld answers a new call after the abandoned ones, and is still there after it
    assert hulld.runtime.Version(pb.VersionRequest()).runtime_name == "hull"
    assert hulld.proc.poll() is None


def test_200_concurrent_version_calls(hulld):
    errors = []
    results = []
    lock = threading.Lock()

    def worker():
        ch = grpc.insecure_channel("unix://" + hulld.socket)
        stub = pb_grpc.RuntimeServiceStub(ch)
        for _ in range(25):
            try:
                r = stub.Version(pb.VersionRequest(), timeout=20)
                with lock:
                    results.append(r.runtime_name)
            except grpc.RpcError as e:
                with lock:
                    errors.append(e)
        ch.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == ["hull"] * 200


def test_socket_and_directory_modes(hulld):
    st = os.stat(hulld.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(hulld.socket)).st_mode) == 0o700


def test_second_instance_on_same_socket_refuses(hulld):
    p = subprocess.run([binary("hulld"), "--listen", hulld.socket, "--root", hulld.root + "2",
                        "--state-dir", hulld.state_dir + "2", "--config", hulld.config_path],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "another hulld" in p.stderr
    # the running one is unharmed
    assert hulld.runtime.Version(pb.VersionRequest()).runtime_name == "hull"


def test_stale_socket_is_replaced(hulld_factory):
    d = hulld_factory(start=False)
    os.makedirs(os.path.dirname(d.socket), exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.socket)  # a socket file nobody listens on any more
    s.close()
    assert os.path.exists(d.socket)
    d.start()
    assert d.runtime.Version(pb.VersionRequest()).runtime_name == "hull"
    assert "removing stale socket" in d.log()


def test_sigterm_exits_zero_and_removes_socket(hulld):
    assert hulld.stop() == 0
    assert not os.path.exists(hulld.socket)
    assert "stopped" in hulld.log()


def test_sigterm_lets_in_flight_calls_finish(hulld):
    """Calls already running when SIGTERM arrives get their answers."""
    stubs = []
    for _ in range(4):
        ch = grpc.insecure_channel("unix://" + hulld.socket)
        stubs.append((ch, pb_grpc.RuntimeServiceStub(ch)))
    # a call surely in flight: an event stream hulld confirmed (its headers arrived)
    events = cri.subscribe_events(hulld, timeout=60)
    big = "z" * (8 * 1024 * 1024)  # big requests keep the calls busy while the signal lands
    futs = [stub.Version.future(pb.VersionRequest(version=big), timeout=30) for _, stub in stubs]
    hulld.proc.send_signal(15)
    # the event stream ends cleanly (status OK, no event), not cut off
    assert list(events) == []
    assert events.code() == grpc.StatusCode.OK
    answered = 0
    for f in futs:
        try:
            assert f.result().runtime_name == "hull"
            answered += 1
        except grpc.RpcError as e:
            # a call that had not reached a worker before hulld stopped accepting is refused
            # (connection going away) or cancelled by the shutting-down server, never cut off
            # halfway with an internal error
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), e
    print(f"{answered} of {len(futs)} Version calls answered")
    for ch, _ in stubs:
        ch.close()
    assert hulld.proc.wait(40) == 0


def test_sigterm_with_idle_connection_and_events_stream_stops_promptly(hulld):
    """kubelet keeps an idle connection and a GetContainerEvents stream open: SIGTERM still
    stops hulld at once (it used to wait 5 s for the client to hang up), and a unary call in
    flight still gets its answer."""
    assert hulld.runtime.Version(pb.VersionRequest()).runtime_name == "hull"  # connection open
    events = hulld.runtime.GetContainerEvents(pb.GetEventsRequest())
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(_drain(events)), daemon=True)
    reader.start()
    # the stream sends nothing until an event happens, so nothing tells it has reached
    # hulld; a moment lets it (if it has not, SIGTERM refuses it and the bound still holds)
    time.sleep(0.3)
    big = "z" * (8 * 1024 * 1024)
    fut = hulld.runtime.Version.future(pb.VersionRequest(version=big), timeout=30)
    t = time.monotonic()
    hulld.proc.send_signal(15)
    assert hulld.proc.wait(30) == 0
    took = time.monotonic() - t
    try:
        assert fut.result().runtime_name == "hull"
    except grpc.RpcError as e:
        # a call whose stream reached grpc only after the shutdown began is refused (connection
        # going away) or cancelled by grpc's shutting-down server before any hulld worker saw
        # it, as in test_sigterm_lets_in_flight_calls_finish; never cut off with another code
        assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), e
    reader.join(10)
    assert not reader.is_alive()
    # 1 s is the goal (tests/bench/bench_daemon.py measures it); the margin is for ASan and a
    # loaded machine, and still far below the 5 s of the old shutdown
    assert took < 2.5, f"SIGTERM took {took:.2f} s"


def _drain(stream):
    try:
        return list(stream)
    except grpc.RpcError as e:
        return [e.code()]


def test_sighup_reloads_log_level(hulld_factory, tmp_path):
    cfg = tmp_path / "hull.json"
    cfg.write_text(json.dumps({"log_level": "debug"}))
    d = hulld_factory("--config", str(cfg))
    d.runtime.Version(pb.VersionRequest())
    assert "Version: code 0" in d.log()  # debug lines are on
    cfg.write_text(json.dumps({"log_level": "error"}))
    d.proc.send_signal(1)
    wait_for(lambda: "log level debug -> error" in d.log(), what="the log level change")
    before = d.log().count("Version: code 0")
    d.runtime.Version(pb.VersionRequest())
    # (a call's debug line is written before its answer leaves)
    assert d.log().count("Version: code 0") == before  # debug lines are off
    # a broken file on SIGHUP keeps the running configuration
    cfg.write_text("{not json")
    d.proc.send_signal(1)
    wait_for(lambda: "keeping the current configuration" in d.log(), what="the refusal")
    assert d.runtime.Version(pb.VersionRequest()).runtime_name == "hull"


# ---- configuration -------------------------------------------------------------------------

def run_hulld(*args):
    return subprocess.run([binary("hulld"), *args], capture_output=True, text=True, timeout=20)


def test_help_and_version():
    h = run_hulld("--help")
    assert h.returncode == 0
    for flag in ("--listen", "--root", "--state-dir", "--log-level", "--config",
                 "--runtime", "--registry-mirror", "--insecure-registry", "--cni-config-dir"):
        assert flag in h.stdout
    v = run_hulld("--version")
    assert v.returncode == 0 and v.stdout.startswith("hulld ")


def test_config_unknown_key_and_wrong_type_name_the_key(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"listen": "/tmp/x.sock", "no_such_key": 1}))
    p = run_hulld("--config", str(cfg), "--print-config")
    assert p.returncode == 2 and "no_such_key" in p.stderr
    cfg.write_text(json.dumps({"workers": "four"}))
    p = run_hulld("--config", str(cfg), "--print-config")
    assert p.returncode == 2 and '"workers"' in p.stderr and "integer" in p.stderr
    cfg.write_text("{ broken")
    p = run_hulld("--config", str(cfg), "--print-config")
    assert p.returncode == 2 and str(cfg) in p.stderr
    p = run_hulld("--config", str(tmp_path / "missing.json"), "--print-config")
    assert p.returncode == 2 and "missing.json" in p.stderr
    p = run_hulld("--no-such-flag")
    assert p.returncode == 2 and "no-such-flag" in p.stderr
    p = run_hulld("--log-level", "loud", "--print-config")
    assert p.returncode == 2 and "loud" in p.stderr


def test_config_precedence_defaults_file_flags(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({
        "_comment": "documentation keys are allowed",
        "root": "/tmp/from-file", "log_level": "warn",
        "registry_mirrors": {"docker.io": ["http://127.0.0.1:5000", "http://127.0.0.1:5001"]},
        "insecure_registries": ["127.0.0.1:5000"],
    }))
    p = run_hulld("--config", str(cfg), "--root", "/tmp/from-flag", "--print-config")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["root"] == "/tmp/from-flag"            # flag beats file
    assert out["log_level"] == "warn"                 # file beats default
    assert out["state_dir"] == "/run/hull"            # default
    assert out["listen"] == "/run/hull/hull.sock"
    assert out["registry_mirrors"] == {"docker.io": ["http://127.0.0.1:5000",
                                                     "http://127.0.0.1:5001"]}
    p = run_hulld("--config", str(cfg), "--registry-mirror", "quay.io=http://127.0.0.1:9",
                  "--runtime", "runc=/usr/sbin/runc", "--default-runtime", "runc",
                  "--print-config")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["registry_mirrors"] == {"quay.io": ["http://127.0.0.1:9"]}
    assert out["runtimes"] == {"runc": ["/usr/sbin/runc"]}
    assert out["default_runtime"] == "runc"
    p = run_hulld("--config", str(cfg), "--default-runtime", "nope", "--print-config")
    assert p.returncode == 2 and "nope" in p.stderr


def test_contrib_config_documents_every_key(tmp_path):
    """contrib/hull.json is a valid config holding every key, each at its default."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "contrib", "hull.json")
    with open(path) as f:
        doc = json.load(f)
    p = run_hulld("--config", path, "--print-config")
    assert p.returncode == 0, p.stderr
    effective = json.loads(p.stdout)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    defaults = json.loads(run_hulld("--config", str(empty), "--print-config").stdout)
    keys = {k for k in doc if not k.startswith("_")}
    assert keys == set(defaults), set(defaults) ^ keys
    assert effective == defaults


def test_teardown_reports_what_a_daemon_leaves():
    """The fixtures' teardown (conftest.finish_daemon) fails a test on a mount, a cgroup or a
    sanitizer report a daemon left, then cleans them up: the checks can fail."""
    base = tempfile.mkdtemp(prefix="hulltest-")
    d = Hulld(base)
    try:
        d.start()
        leak = os.path.join(d.root, "leak")
        os.makedirs(leak)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "leak", leak], check=True)
        cg = "/sys/fs/cgroup/memory" + d.cgroup_parent + "/leaked"
        os.makedirs(cg)
        with open(d.sanitizer_prefix + ".4242", "w") as f:
            f.write("==4242==ERROR: LeakSanitizer: detected memory leaks\n")
        problems = "\n".join(finish_daemon(d))
        assert "mounts: ['" + leak + "']" in problems, problems
        assert cg in problems
        assert "ERROR: LeakSanitizer" in problems
        # and nothing is left for the next test
        assert not os.path.ismount(leak)
        assert not os.path.exists(cg)
        assert not os.path.exists("/sys/fs/cgroup/memory" + d.cgroup_parent)
    finally:
        if d.proc is not None:
            d.stop()
        leaks.force_clean(d)
        shutil.rmtree(base, ignore_errors=True)
