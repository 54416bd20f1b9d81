"""The streaming server's protocols end to end, with the independent Python client
(k8sstream.py) against the real server code running in `test_stream --serve` (the C unit-test
binary: the server with a backend that runs real processes, a fake hull-conmon attach socket,
and real network namespaces for port-forward).  CRI-level tests through hulld are in
test_stream_cri.py."""
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

import k8sstream as ks
from cri import wait_for
from stream_harness import Harness, _start_harness, harness, pod_netns  # noqa: F401  (fixtures)

SPDY_PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io"]
WS_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                "channel.k8s.io", "base64.channel.k8s.io"]


# ---- exec ---------------------------------------------------------------------------------


@pytest.mark.parametrize("proto", SPDY_PROTOCOLS)
def test_exec_echo_spdy(harness, proto):
    url = harness.url(kind="exec", cmd=["sh", "-c", "echo hello; echo err >&2"], stdout=True,
                      stderr=True)
    r = ks.spdy_remotecommand(url, protocols=[proto])
    assert r["protocol"] == proto
    assert r["stdout"] == b"hello\n"
    assert r["stderr"] == b"err\n"
    if proto == "v4.channel.k8s.io":
        assert r["status"] == {"metadata": {}, "status": "Success"}
    else:
        assert r["error"] == b""


@pytest.mark.parametrize("proto", WS_PROTOCOLS)
def test_exec_echo_websocket(harness, proto):
    url = harness.url(kind="exec", cmd=["sh", "-c", "echo hello; echo err >&2"], stdout=True,
                      stderr=True)
    r = ks.ws_remotecommand(url, protocols=[proto])
    assert r["protocol"] == proto
    assert r["ready"]  # the empty "streams are ready" message
    assert r["stdout"] == b"hello\n"
    assert r["stderr"] == b"err\n"
    assert r["close_code"] == 1000
    if proto.startswith(("v4", "v5")):
        assert r["status"]["status"] == "Success"


def test_exec_no_protocol_header_spdy(harness):
    """An old client without X-Stream-Protocol-Version gets the v1 protocol."""
    url = harness.url(kind="exec", cmd=["echo", "v1"], stdout=True)
    r = ks.spdy_remotecommand(url, protocols=[], stderr=False)
    assert r["protocol"] is None
    assert r["stdout"] == b"v1\n"


def test_exec_stdin_spdy_large(harness):
    """1 MiB through stdin and back: per-stream flow control and bounded buffers."""
    data = os.urandom(1 << 20)
    url = harness.url(kind="exec", cmd=["cat"], stdin=True, stdout=True, stderr=True)
    r = ks.spdy_remotecommand(url, stdin=data)
    assert len(r["stdout"]) == len(data)
    assert r["stdout"] == data
    assert r["status"]["status"] == "Success"


def test_exec_stdin_websocket_v5_close(harness):
    """v5: the stream-close signal (channel 255) ends stdin, so `cat` exits."""
    url = harness.url(kind="exec", cmd=["cat"], stdin=True, stdout=True)
    r = ks.ws_remotecommand(url, stdin=b"through websocket\n", protocols=["v5.channel.k8s.io"])
    assert r["stdout"] == b"through websocket\n"
    assert r["status"]["status"] == "Success"


def test_exec_stdin_websocket_base64(harness):
    url = harness.url(kind="exec", cmd=["sh", "-c", "head -c 6; echo"], stdin=True, stdout=True)
    r = ks.ws_remotecommand(url, stdin=b"\x00\x01bin\xff", protocols=["v4.base64.channel.k8s.io"])
    assert r["stdout"] == b"\x00\x01bin\xff\n"


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_exec_exit_code_3(harness, transport):
    url = harness.url(kind="exec", cmd=["sh", "-c", "echo bye; exit 3"], stdout=True,
                      stderr=True)
    if transport == "spdy":
        r = ks.spdy_remotecommand(url)
    else:
        r = ks.ws_remotecommand(url)
    assert r["stdout"] == b"bye\n"
    st = r["status"]
    assert st["status"] == "Failure"
    assert st["reason"] == "NonZeroExitCode"
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert "exit code 3" in st["message"]


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_exec_tty_resize(harness, transport):
    """The initial size and a later resize reach the pty (`stty size` sees both)."""
    # the first size is printed once it arrived (the process may start before it); the second
    # after we saw the first and sent the resize, then a line
    script = ('while [ "$(stty size)" = "0 0" ]; do sleep 0.05; done; stty size; read x; '
              'stty size')
    url = harness.url(kind="exec", cmd=["sh", "-c", script], tty=True, stdin=True, stdout=True)
    if transport == "spdy":
        c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
        c.create_stream([("streamType", "error")]).close()
        stdin = c.create_stream([("streamType", "stdin")])
        stdout = c.create_stream([("streamType", "stdout")])
        resize = c.create_stream([("streamType", "resize")])
        resize.write(json.dumps({"Width": 100, "Height": 40}).encode())
        out = b""
        while b"40 100" not in out:
            chunk = stdout.read(timeout=20)
            assert chunk, out
            out += chunk
        resize.write(json.dumps({"Width": 132, "Height": 50}).encode())
        stdin.write(b"\n")
        out += stdout.read_all(timeout=20)
        c.close()
        r = {"stdout": out}
    else:
        ws = ks.WebSocket(url, ["v5.channel.k8s.io"])
        out = b""
        ws.send_channel(4, json.dumps({"Width": 100, "Height": 40}).encode())
        while b"40 100" not in out:
            ch, data = ws.recv_channel()
            assert ch is not None, out
            if ch == 1:
                out += data
        ws.send_channel(4, json.dumps({"Width": 132, "Height": 50}).encode())
        ws.send_channel(0, b"\n")
        while True:
            ch, data = ws.recv_channel()
            if ch is None:
                break
            if ch == 1:
                out += data
        ws.close()
        r = {"stdout": out}
    text = r["stdout"].decode().replace("\r", "")
    assert "40 100\n" in text
    assert "50 132\n" in text


def test_exec_tty_stderr_rejected(harness):
    with pytest.raises(OSError) as e:
        harness.url(kind="exec", cmd=["true"], tty=True, stdout=True, stderr=True)
    assert e.value.errno == 22
    with pytest.raises(OSError) as e:
        harness.url(kind="exec", cmd=["true"], stdout=False)
    assert e.value.errno == 22
    with pytest.raises(OSError) as e:
        harness.url(kind="exec", id="missing", cmd=["true"], stdout=True)
    assert e.value.errno == 2


# ---- attach -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_attach_stdout(harness, transport):
    """Attach to a running container's output (through a hull-conmon style attach socket)."""
    url = harness.url(kind="attach", id="ticker", stdout=True, stderr=True)
    if transport == "spdy":
        r = ks.spdy_remotecommand(url)
    else:
        r = ks.ws_remotecommand(url)
    assert r["stdout"] == b"".join(b"tick %d\n" % i for i in range(5))
    assert r["status"]["status"] == "Success"


def test_attach_stdin_and_resize(harness):
    url = harness.url(kind="attach", id="c1", stdin=True, stdout=True, tty=True)
    r = ks.spdy_remotecommand(url, stdin=b"typed\n", tty=True, resize=(90, 30))
    assert r["stdout"].startswith(b"hello from container\n")
    assert b"typed\n" in r["stdout"]


# ---- bad requests -------------------------------------------------------------------------


def test_bad_token(harness):
    with pytest.raises(ks.HTTPError) as e:
        ks.SpdyConnection("http://127.0.0.1:%d/exec/%s" % (harness.port, uuid.uuid4().hex),
                          ["v4.channel.k8s.io"])
    assert e.value.status == 404
    url = harness.url(kind="exec", cmd=["true"], stdout=True)
    ks.spdy_remotecommand(url, stderr=False)
    with pytest.raises(ks.HTTPError) as e:  # single use
        ks.spdy_remotecommand(url, stderr=False)
    assert e.value.status == 404
    with pytest.raises(ks.HTTPError) as e:
        ks.WebSocket(url, ["v5.channel.k8s.io"])
    assert e.value.status == 404


def test_bad_protocol_header(harness):
    url = harness.url(kind="exec", cmd=["true"], stdout=True)
    with pytest.raises(ks.HTTPError) as e:
        ks.SpdyConnection(url, ["v99.channel.k8s.io"])
    assert e.value.status == 403
    assert b"unable to negotiate protocol" in e.value.body
    url = harness.url(kind="exec", cmd=["true"], stdout=True)
    with pytest.raises(ks.HTTPError) as e:
        ks.WebSocket(url, ["v99.channel.k8s.io"])
    assert e.value.status == 400
    url = harness.url(kind="exec", cmd=["true"], stdout=True)
    with pytest.raises(ks.HTTPError) as e:
        ks.http_upgrade(url, [("Connection", "Upgrade"), ("Upgrade", "h2c")])
    assert e.value.status == 400


def test_garbage_and_oversized_frames(harness):
    before = harness.baseline()
    # SPDY: garbage after the upgrade → GOAWAY(PROTOCOL_ERROR)
    url = harness.url(kind="exec", cmd=["sleep", "30"], stdout=True)
    c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
    c.send_raw(b"\xff" * 64)
    c.reader.join(10)
    assert c.goaway is not None and c.goaway[1] == 1
    c.close()
    # SPDY: a 16 MiB data frame header → GOAWAY
    url = harness.url(kind="exec", cmd=["sleep", "30"], stdout=True)
    c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
    c.send_raw(b"\x00\x00\x00\x01\x00\xff\xff\xff")
    c.reader.join(10)
    assert c.goaway is not None
    c.close()
    # WebSocket: oversized message → close 1009; garbage → close 1002
    url = harness.url(kind="exec", cmd=["sleep", "30"], stdout=True)
    ws = ks.WebSocket(url, ["v5.channel.k8s.io"])
    ws.sock.sendall(b"\x82\xff" + (1 << 40).to_bytes(8, "big") + b"mask")
    while ws.recv_channel()[0] is not None:
        pass
    assert ws.close_code == 1009
    ws.close()
    url = harness.url(kind="exec", cmd=["sleep", "30"], stdout=True)
    ws = ks.WebSocket(url, ["v4.channel.k8s.io"])
    ws.sock.sendall(b"\x8f\x80abcd")
    while ws.recv_channel()[0] is not None:
        pass
    assert ws.close_code == 1002
    ws.close()
    # still serving, and nothing leaked
    url = harness.url(kind="exec", cmd=["echo", "ok"], stdout=True)
    assert ks.spdy_remotecommand(url, stderr=False)["stdout"] == b"ok\n"
    after = harness.settle(before)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)


def _random_spdy_frame(rng, conn):
    kind = rng.randrange(6)
    if kind == 0:  # data frame on a random stream with random flags
        payload = rng.randbytes(rng.randrange(0, 300))
        return struct.pack(">II", rng.randrange(0, 12), (rng.randrange(256) << 24) | len(payload)) \
            + payload
    if kind == 1:  # control frame of a random type, random payload
        payload = rng.randbytes(rng.randrange(0, 40))
        return struct.pack(">HHI", 0x8000 | 3, rng.randrange(0, 12),
                           (rng.randrange(256) << 24) | len(payload)) + payload
    if kind == 2:  # a well-formed SYN_STREAM with odd headers (keeps the zlib context in sync)
        hdrs = [("streamType", rng.choice(["stdin", "stdout", "bogus", "error", "resize", ""]))]
        if rng.random() < 0.5:
            hdrs.append(("x" * rng.randrange(1, 50), "y" * rng.randrange(0, 50)))
        with conn.wlock:
            sid = conn.next_id
            conn.next_id += 2
            block = conn.encode_headers(hdrs)
        payload = struct.pack(">IIBB", sid, 0, 0, 0) + block
        return struct.pack(">HHI", 0x8000 | 3, ks.SYN_STREAM, len(payload)) + payload
    if kind == 3:
        return struct.pack(">HHI", 0x8000 | 3, ks.WINDOW_UPDATE, 8) + \
            struct.pack(">II", rng.randrange(0, 12), rng.randrange(0, 1 << 32))
    if kind == 4:
        return struct.pack(">HHI", 0x8000 | 3, ks.PING, 4) + rng.randbytes(4)
    return struct.pack(">HHI", 0x8000 | 3, ks.SETTINGS, 12) + \
        struct.pack(">IBBHI", 1, 0, 0, rng.randrange(0, 10), rng.randrange(0, 1 << 32))


def test_fuzzed_frames(harness):
    """Random but framed SPDY and WebSocket input: the server answers or hangs up, never
    crashes or leaks, and still serves afterwards."""
    import random
    rng = random.Random(int(os.environ.get("HULL_FUZZ_SEED", "1234")))
    before = harness.baseline()
    for i in range(60):
        url = harness.url(kind="exec", cmd=["cat"], stdin=True, stdout=True, stderr=True,
                          tty=False)
        if i % 2 == 0:
            c = ks.SpdyConnection(url, ["v4.channel.k8s.io"], flow_control=rng.random() < 0.5)
            try:
                for _ in range(rng.randrange(1, 30)):
                    c.send_raw(_random_spdy_frame(rng, c))
            except OSError:
                pass
            time.sleep(0.01)
            c.close()
        else:
            ws = ks.WebSocket(url, [rng.choice(WS_PROTOCOLS)])
            try:
                for _ in range(rng.randrange(1, 30)):
                    op = rng.choice([0, 1, 2, 2, 2, 8, 9, 10, 3])
                    payload = rng.randbytes(rng.randrange(0, 200)) if op < 8 else \
                        rng.randbytes(rng.randrange(0, 20))
                    ws.send_frame(op, payload, fin=rng.random() < 0.8)
            except OSError:
                pass
            time.sleep(0.01)
            ws.close()
    url = harness.url(kind="exec", cmd=["echo", "still here"], stdout=True)
    assert ks.spdy_remotecommand(url, stderr=False)["stdout"] == b"still here\n"
    after = harness.settle(before, timeout=20)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)


def test_client_disconnect_kills_exec(harness):
    before = harness.baseline()
    url = harness.url(kind="exec", cmd=["sleep", "60"], stdout=True)
    c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
    c.create_stream([("streamType", "error")])
    c.create_stream([("streamType", "stdout")])
    # the session starts once the server has every stream it expects
    wait_for(lambda: harness.stats()["sessions"] == 1, timeout=10, what="the exec session")
    c.close()
    after = harness.settle(before)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)


def test_stream_creation_timeout(harness):
    """A client that never creates the streams it asked for is dropped (creation timeout)."""
    before = harness.baseline()
    url = harness.url(kind="exec", cmd=["sleep", "60"], stdout=True, stdin=True)
    c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
    c.create_stream([("streamType", "error")])  # stdin and stdout never come
    t = time.time()
    c.reader.join(15)
    assert c.closed and time.time() - t < 10
    c.close()
    after = harness.settle(before)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)


def test_ping(harness):
    url = harness.url(kind="exec", cmd=["sleep", "2"], stdout=True)
    c = ks.SpdyConnection(url, ["v4.channel.k8s.io"])
    assert c.ping(7)
    c.close()


def test_many_sessions(harness):
    before = harness.baseline()
    results = [None] * 24

    def one(i):
        if i % 2:
            url = harness.url(kind="exec", cmd=["sh", "-c", "echo s%d" % i], stdout=True)
            results[i] = ks.spdy_remotecommand(url, stderr=False)["stdout"]
        else:
            url = harness.url(kind="exec", cmd=["sh", "-c", "echo s%d" % i], stdout=True)
            results[i] = ks.ws_remotecommand(url)["stdout"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [b"s%d\n" % i for i in range(len(results))]
    after = harness.settle(before)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)


# ---- port-forward -------------------------------------------------------------------------


def _get(path="/"):
    return ("GET %s HTTP/1.0\r\nHost: pod\r\n\r\n" % path).encode()


def test_portforward_spdy(harness, pod_netns):
    name, www = pod_netns
    url = harness.url(kind="portforward", id=name)
    data, err = ks.spdy_portforward(url, 8080, _get())
    assert err == b""
    assert data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n")[0]
    assert data.endswith(b"hello from the pod\n")


def test_portforward_spdy_many_in_one_connection(harness, pod_netns):
    name, www = pod_netns
    before = harness.baseline()
    url = harness.url(kind="portforward", id=name, ports=[8080])
    c = ks.SpdyConnection(url, ["portforward.k8s.io"])
    big = (www / "big.bin").read_bytes()
    out = [None] * 8

    def one(i):
        out[i] = ks.spdy_portforward(None, 8080, _get("/big.bin" if i % 2 else "/"),
                                     request_id=i, conn=c)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(out))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, (data, err) in enumerate(out):
        assert err == b""
        assert data.endswith(big if i % 2 else b"hello from the pod\n")
    # a port the request did not name is refused on the error stream
    data, err = ks.spdy_portforward(None, 9999, _get(), request_id=100, conn=c)
    assert b"9999" in err and data == b""
    c.close()
    after = harness.settle(before)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)


def test_portforward_half_pair_times_out(harness, pod_netns):
    name, _ = pod_netns
    url = harness.url(kind="portforward", id=name)
    c = ks.SpdyConnection(url, ["portforward.k8s.io"])
    err = c.create_stream([("streamType", "error"), ("port", "8080"), ("requestID", "77")])
    err.close()
    msg = err.read_all(timeout=15)
    assert b"timed out waiting for the data stream" in msg
    # the connection still serves complete pairs
    data, e = ks.spdy_portforward(None, 8080, _get(), request_id=78, conn=c)
    assert e == b"" and data.endswith(b"hello from the pod\n")
    c.close()


def test_portforward_refused(harness, pod_netns):
    name, _ = pod_netns
    url = harness.url(kind="portforward", id=name)
    data, err = ks.spdy_portforward(url, 8081, _get())
    assert data == b""
    assert b"error forwarding port 8081" in err
    with pytest.raises(OSError) as e:
        harness.url(kind="portforward", id="no-such-pod")
    assert e.value.errno == 2


@pytest.mark.parametrize("proto", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                                   "portforward.k8s.io"])
def test_portforward_websocket(harness, pod_netns, proto):
    name, _ = pod_netns
    url = harness.url(kind="portforward", id=name)
    data, err = ks.ws_portforward(url, 8080, _get(), protocols=[proto])
    assert err == b""
    assert data.endswith(b"hello from the pod\n")


# ---- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_harness(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    env = dict(os.environ, HULL_STREAM_TLS_CERT=str(d / "cert.pem"),
               HULL_STREAM_TLS_KEY=str(d / "key.pem"))
    p = _start_harness(env)
    line = p.stdout.readline()
    assert line.startswith("PORT "), line
    ks.TLS_CAFILE = str(d / "cert.pem")  # verify the server against its certificate
    yield Harness(p, int(line.split()[1]))
    ks.TLS_CAFILE = None
    p.stdin.close()
    assert p.wait(60) == 0


def test_tls_exec_and_websocket(tls_harness):
    url = tls_harness.url(kind="exec", cmd=["cat"], stdin=True, stdout=True, stderr=True)
    assert url.startswith("https://")
    data = os.urandom(300000)
    r = ks.spdy_remotecommand(url, stdin=data)
    assert r["stdout"] == data
    assert r["status"]["status"] == "Success"
    url = tls_harness.url(kind="exec", cmd=["sh", "-c", "echo tls; exit 3"], stdout=True)
    r = ks.ws_remotecommand(url)
    assert r["stdout"] == b"tls\n"
    assert r["status"]["reason"] == "NonZeroExitCode"


def test_tls_portforward(tls_harness, pod_netns):
    name, _ = pod_netns
    url = tls_harness.url(kind="portforward", id=name)
    data, err = ks.spdy_portforward(url, 8080, _get())
    assert err == b"" and data.endswith(b"hello from the pod\n")


def test_fuzzed_portforward_frames(harness, pod_netns):
    """Random port-forward streams (duplicate ids, missing halves, resets, bad ports, data on
    closed streams) against a real pod namespace: no crash, no leak."""
    import random
    name, _ = pod_netns
    rng = random.Random(int(os.environ.get("HULL_FUZZ_SEED", "99")))
    before = harness.baseline()
    for _ in range(20):
        url = harness.url(kind="portforward", id=name)
        c = ks.SpdyConnection(url, ["portforward.k8s.io"])
        try:
            for _ in range(rng.randrange(1, 40)):
                k = rng.randrange(5)
                if k < 2:
                    hdrs = [("streamType", rng.choice(["data", "error", "x"])),
                            ("port", rng.choice(["8080", "8080", "0", "99999", "abc", "8081"])),
                            ("requestID", str(rng.randrange(4)))]
                    if rng.random() < 0.2:
                        hdrs.pop()
                    with c.wlock:
                        sid = c.next_id
                        c.next_id += 2
                        c.streams[sid] = ks.SpdyStream(c, sid, hdrs)
                        block = c.encode_headers(hdrs)
                    payload = struct.pack(">IIBB", sid, 0, 0, 0) + block
                    c.send_raw(struct.pack(">HHI", 0x8000 | 3, ks.SYN_STREAM,
                                           (rng.choice([0, 1]) << 24) | len(payload)) + payload)
                elif k == 2:
                    c.send_data(rng.randrange(1, c.next_id + 2),
                                _get() if rng.random() < 0.5 else rng.randbytes(50),
                                rng.choice([0, 1]))
                elif k == 3:
                    c.send_control(ks.RST_STREAM, 0,
                                   struct.pack(">II", rng.randrange(1, c.next_id + 2), 5))
                else:
                    time.sleep(0.01)
        except OSError:
            pass
        time.sleep(0.02)
        c.close()
    after = harness.settle(before, timeout=20)
    assert (after["fds"], after["threads"], after["sessions"]) == \
        (before["fds"], before["threads"], 0)
