"""Operator interfaces of a real hulld: the Prometheus endpoint (off by default; per-RPC counts,
errors by gRPC code and latency histograms, image pulls, containers and pods by state) parsed
strictly, its HTTP behaviour, and sd_notify READY/STOPPING to $NOTIFY_SOCKET."""
import json
import math
import os
import re
import socket
import time
import uuid

import grpc
import pytest

from conftest import pb
from cri import remove_all_pods
from registry import registry  # noqa: F401  (fixture)

# ---- a strict Prometheus text-format (0.0.4) reader -------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(" + NAME + r")(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, f"bad labels {text!r}"
        assert m.group(1) not in labels, f"duplicate label in {text!r}"
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; asserts the format."""
    assert text.endswith("\n")
    families, current = {}, None
    for line in text.splitlines():
        assert line, "empty line"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and help_text, line
            assert name not in families, f"family {name} declared twice"
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None, line
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            families[name]["type"] = typ
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"bad sample line {line!r}"
        name, labels, value = m.group(1), parse_labels(m.group(3) or ""), float(m.group(4))
        fam = families[current]
        assert fam["type"], f"sample before TYPE: {line}"
        if fam["type"] == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), line
        else:
            assert name == current, line
        if fam["type"] in ("counter", "histogram"):
            assert value >= 0 and not math.isnan(value), line
        fam["samples"].append((name, labels, value))
    for name, fam in families.items():
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name, samples):
    series = {}
    for n, labels, v in samples:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if n.endswith("_bucket"):
            s["buckets"].append((labels["le"], v))
        elif n.endswith("_sum"):
            s["sum"] = v
        else:
            s["count"] = v
    for key, s in series.items():
        les = [le for le, _ in s["buckets"]]
        assert les and les[-1] == "+Inf", (name, key, les)
        bounds = [float(le) for le in les[:-1]]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), (name, les)
        counts = [v for _, v in s["buckets"]]
        assert counts == sorted(counts), f"{name}{key}: buckets not cumulative {counts}"
        assert s["count"] is not None and s["sum"] is not None, (name, key)
        assert s["count"] == counts[-1], (name, key)
        assert s["sum"] >= 0


def value(families, name, **labels):
    fam = families[name]
    got = [v for n, lab, v in fam["samples"] if n == name and lab == labels]
    return got[0] if got else 0.0


def hist(families, name, **labels):
    """(count, sum) of one histogram series."""
    fam = families[name]
    count = [v for n, lab, v in fam["samples"] if n == name + "_count" and lab == labels]
    total = [v for n, lab, v in fam["samples"] if n == name + "_sum" and lab == labels]
    return (count[0] if count else 0.0), (total[0] if total else 0.0)


# ---- HTTP -------------------------------------------------------------------------------------

def http(port, request, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    return status, headers, body


def scrape(port):
    status, headers, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(headers["content-length"]) == len(body)
    return parse_exposition(body.decode())


def metrics_port(d, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"metrics: Prometheus endpoint on http://127\.0\.0\.1:(\d+)/metrics",
                      d.log())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise AssertionError("no metrics endpoint in the log:\n" + d.log())


def listening_tcp_ports(d):
    """TCP ports the daemon listens on (its sockets found in /proc/net/tcp{,6}), but for its
    streaming server's."""
    pid = d.proc.pid
    stream = re.search(r"streaming server listening on https?://\S+:(\d+)", d.log())
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports - {int(stream.group(1))}


# ---- tests ------------------------------------------------------------------------------------

def test_metrics_off_by_default(hulld):
    assert listening_tcp_ports(hulld) == set()
    assert "metrics:" not in hulld.log()


def test_metrics_bad_address_refused(hulld_factory):
    d = hulld_factory("--metrics-address", "127.0.0.1:99999", start=False)
    with pytest.raises(RuntimeError) as e:
        d.start()
    assert "metrics_address" in str(e.value)
    d.proc = None


@pytest.fixture
def mhulld(hulld_factory, registry):  # noqa: F811
    d = hulld_factory("--metrics-address", "127.0.0.1:0", "--insecure-registry", registry.host)
    d.metrics_port = metrics_port(d)
    yield d
    remove_all_pods(d)


def test_metrics_count_rpcs_errors_pulls_and_states(mhulld, registry):  # noqa: F811
    d = mhulld
    assert listening_tcp_ports(d) == {d.metrics_port}
    before = scrape(d.metrics_port)
    for _ in range(3):
        d.runtime.Version(pb.VersionRequest())
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as e:
            d.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id="f" * 64))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        d.runtime.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=""))
    img = registry.push_busybox("metrics/bb", uuid.uuid4().hex[:8])
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)))
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)))  # nothing new
    with pytest.raises(grpc.RpcError):
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(
            image=f"{registry.host}/metrics/absent:nope")))
    pcfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="m", uid="m-uid", namespace="test"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE))))
    pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pcfg)).pod_sandbox_id
    pod2 = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="m2", uid="m2-uid", namespace="test"),
        linux=pcfg.linux))).pod_sandbox_id
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod2))
    d.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, sandbox_config=pcfg, config=pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=img.ref),
            command=["sleep", "60"])))

    after = scrape(d.metrics_port)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert after["hull_operations_total"]["type"] == "counter"
    assert after["hull_operations_latency_seconds"]["type"] == "histogram"
    assert delta("hull_operations_total", operation="Version") == 3
    assert delta("hull_operations_total", operation="PodSandboxStatus") == 2
    assert delta("hull_operations_errors_total", operation="PodSandboxStatus",
                 error="NotFound") == 2
    assert value(after, "hull_operations_errors_total", operation="Version",
                 error="NotFound") == 0
    assert delta("hull_operations_errors_total", operation="CreateContainer",
                 error="NotFound") + delta("hull_operations_errors_total",
                                           operation="CreateContainer",
                                           error="InvalidArgument") == 1
    assert delta("hull_operations_total", operation="CreateContainer") == 2
    assert delta("hull_operations_total", operation="PullImage") == 3
    assert delta("hull_operations_total", operation="RunPodSandbox") == 2
    # every operation's histogram count is its operation count
    for _, labels, v in after["hull_operations_total"]["samples"]:
        count, total = hist(after, "hull_operations_latency_seconds", **labels)
        assert count == v, labels
    count, total = hist(after, "hull_operations_latency_seconds", operation="PullImage")
    assert total > 0
    # image pulls: one new image (its config + compressed layer bytes), one no-op, one failure
    assert delta("hull_image_pulls_success_total") == 2
    assert delta("hull_image_pulls_failure_total") == 1
    size = sum(x[2] for x in img.layers)
    assert size <= delta("hull_image_pulls_bytes_total") <= size + 4096
    assert hist(after, "hull_image_pulls_duration_seconds")[0] - \
        hist(before, "hull_image_pulls_duration_seconds")[0] == 3
    # gauges, by state
    assert after["hull_containers"]["type"] == "gauge"
    assert value(after, "hull_containers", state="created") == 1
    assert value(after, "hull_containers", state="running") == 0
    assert value(after, "hull_pod_sandboxes", state="ready") == 1
    assert value(after, "hull_pod_sandboxes", state="notready") == 1
    assert value(after, "hull_containers_monitor_lost_total") == 0
    # scrapes are not RPCs
    again = scrape(d.metrics_port)
    assert value(again, "hull_operations_total", operation="Version") == \
        value(after, "hull_operations_total", operation="Version")


def test_metrics_http_edges(mhulld):
    port = mhulld.metrics_port
    assert http(port, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404
    assert http(port, b"GET / HTTP/1.0\r\n\r\n")[0] == 404
    assert http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")[0] == 405
    assert http(port, b"garbage\r\n\r\n")[0] == 400
    status, headers, body = http(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, _, _ = http(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    assert status == 431
    # a client that connects and says nothing is dropped; scrapes keep working
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        t0 = time.time()
        scrape(port)
        assert time.time() - t0 < 8
        idle.settimeout(10)
        assert idle.recv(10) == b""  # closed by hulld after its deadline
    finally:
        idle.close()
    scrape(port)


# ---- sd_notify --------------------------------------------------------------------------------

def recv_states(sock, want, timeout=20):
    """Datagrams until one holds `want`; returns its fields."""
    sock.settimeout(timeout)
    while True:
        msg = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in msg.splitlines() if "=" in line)
        if want in msg.splitlines():
            return fields


@pytest.mark.parametrize("abstract", [False, True])
def test_sd_notify_ready_and_stopping(hulld_factory, registry, tmp_path,  # noqa: F811
                                     monkeypatch, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"hull-test-notify-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    else:
        path = str(tmp_path / "notify.sock")
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        d = hulld_factory("--insecure-registry", registry.host, start=False)
        d.start()
        ready = recv_states(sock, "READY=1")
        assert int(ready["MAINPID"]) == d.proc.pid
        # READY came after the socket accepted calls: it answers now
        d.runtime.Version(pb.VersionRequest(), timeout=5)
        # children (monitors, the OCI runtime, the container) never inherit the variable
        img = registry.push_busybox("notify/bb", uuid.uuid4().hex[:8])
        d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=img.ref)))
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="n", uid="n-uid", namespace="test"),
            linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE))))
        pod = d.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
        cid = d.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, sandbox_config=cfg, config=pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=img.ref),
                command=["sleep", "60"]))).container_id
        d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
        marker = os.environ["NOTIFY_SOCKET"].encode()
        inheritors = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if int(pid) == d.proc.pid:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read():
                        inheritors.append(pid)
            except OSError:
                pass
        assert inheritors == []
        d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        d.proc.send_signal(15)
        recv_states(sock, "STOPPING=1")
        assert d.proc.wait(40) == 0
    finally:
        sock.close()
