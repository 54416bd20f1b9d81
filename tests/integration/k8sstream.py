"""A test client for the Kubernetes streaming protocols, written from the specs:

- SPDY/3.1 (draft-mbelshe-httpbis-spdy-00 framing, zlib header compression with the SPDY/3
  dictionary, per-stream flow control with WINDOW_UPDATE, PING, GOAWAY) carrying the
  remotecommand protocols (v4/v3/v2.channel.k8s.io, channel.k8s.io) and portforward.k8s.io;
- WebSocket (RFC 6455) carrying the k8s channel protocols (v5/v4/base64/channel.k8s.io) and the
  websocket port-forward protocol.

Used by tests/integration/test_stream*.py and tests/bench/bench_stream*.py.
"""
import base64
import hashlib
import json
import os
import queue
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import zlib

# ---- SPDY/3 header dictionary (spec section 2.6.10.1): length-prefixed words, then a tail.
_WORDS = [
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type", "date",
    "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match",
    "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma",
    "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after", "server", "te",
    "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
    "public", "set-cookie", "keep-alive", "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
SPDY_DICT = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
assert len(SPDY_DICT) == 1423 and zlib.adler32(SPDY_DICT) == 0xE3C6A7C2

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)
FLAG_FIN = 1
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# CA file that verifies https:// streaming URLs (None: TLS without verification)
TLS_CAFILE = None


class HTTPError(Exception):
    def __init__(self, status, headers, body):
        super().__init__("HTTP %d: %s" % (status, body.decode(errors="replace").strip()))
        self.status = status
        self.headers = headers
        self.body = body


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def http_upgrade(url, headers, method="POST", timeout=10):
    """Sends an upgrade request; returns (sock, status, headers{lower: [values]}, leftover)."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=TLS_CAFILE)
        if TLS_CAFILE is None:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
    path = u.path + ("?" + u.query if u.query else "")
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (u.hostname, u.port)]
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("connection closed before the response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    hl = head.decode().split("\r\n")
    status = int(hl[0].split()[1])
    hdrs = {}
    for line in hl[1:]:
        k, v = line.split(":", 1)
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    if status != 101:
        n = int(hdrs.get("content-length", ["0"])[0])
        while len(rest) < n:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        sock.close()
        raise HTTPError(status, hdrs, rest)
    return sock, status, hdrs, rest


# ---------------------------------------------------------------------------------------------
# SPDY/3.1


class SpdyStream:
    def __init__(self, conn, sid, headers):
        self.conn = conn
        self.id = sid
        self.headers = headers
        self.data = queue.Queue()
        self.replied = threading.Event()
        self.refused = False
        self.remote_closed = False
        self.send_window = conn.peer_initial_window
        self.window_cond = threading.Condition()
        self.unacked = 0

    def write(self, data):
        view = memoryview(data)
        while len(view):
            with self.window_cond:
                while self.send_window <= 0 and not self.conn.closed:
                    self.window_cond.wait(1)
                if self.conn.closed:
                    raise EOFError("connection closed")
                n = min(len(view), self.send_window, 32768)
                self.send_window -= n
            self.conn.send_data(self.id, bytes(view[:n]), 0)
            view = view[n:]

    def close(self):
        """Half-close (FIN)."""
        self.conn.send_data(self.id, b"", FLAG_FIN)

    def read(self, timeout=30):
        """Next chunk, b"" at end of stream; raises queue.Empty on timeout."""
        chunk = self.data.get(timeout=timeout)
        if chunk:
            self.unacked += len(chunk)
            if self.unacked >= 32768:
                self.conn.send_control(WINDOW_UPDATE, 0, struct.pack(">II", self.id, self.unacked))
                self.unacked = 0
        return chunk

    def read_all(self, timeout=30):
        out = bytearray()
        while True:
            chunk = self.read(timeout)
            if not chunk:
                return bytes(out)
            out += chunk


class SpdyConnection:
    """Client side: odd stream ids, one reader thread."""

    def __init__(self, url, protocols, method="POST", flow_control=True, timeout=10):
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        for p in protocols:
            hdrs.append(("X-Stream-Protocol-Version", p))
        self.sock, self.status, self.resp_headers, rest = http_upgrade(url, hdrs, method, timeout)
        self.sock.settimeout(None)
        self.protocol = self.resp_headers.get("x-stream-protocol-version", [None])[0]
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                        zlib.Z_DEFAULT_STRATEGY, SPDY_DICT)
        self.inflate = zlib.decompressobj(zdict=SPDY_DICT)
        self.wlock = threading.Lock()
        self.streams = {}
        self.next_id = 1
        self.closed = False
        self.goaway = None
        self.pings = {}
        self.peer_initial_window = 65536
        self.buf = bytearray(rest)
        self.frames_seen = []
        if flow_control:
            # SETTINGS: INITIAL_WINDOW_SIZE (id 7) = 64 KiB: we honour windows and say so.
            self.send_control(SETTINGS, 0, struct.pack(">IBBHI", 1, 0, 0, 7, 65536))
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    # -- frames
    def send_raw(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def send_control(self, ftype, flags, payload):
        hdr = struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload))
        self.send_raw(hdr + payload)

    def send_data(self, sid, data, flags):
        self.send_raw(struct.pack(">II", sid & 0x7FFFFFFF, (flags << 24) | len(data)) + data)

    def encode_headers(self, headers):
        raw = struct.pack(">I", len(headers))
        for k, v in headers:
            k, v = k.lower().encode(), v.encode()
            raw += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        # callers hold wlock: one compression context per direction, frames must stay in order
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def decode_headers(self, block):
        raw = self.inflate.decompress(block)
        n = struct.unpack(">I", raw[:4])[0]
        off, out = 4, {}
        for _ in range(n):
            kl = struct.unpack(">I", raw[off:off + 4])[0]
            k = raw[off + 4:off + 4 + kl].decode()
            off += 4 + kl
            vl = struct.unpack(">I", raw[off:off + 4])[0]
            v = raw[off + 4:off + 4 + vl].decode()
            off += 4 + vl
            out[k] = v
        return out

    def create_stream(self, headers, fin=False, timeout=10):
        with self.wlock:
            sid = self.next_id
            self.next_id += 2
            st = SpdyStream(self, sid, headers)
            self.streams[sid] = st
            block = self.encode_headers(headers)
            payload = struct.pack(">IIBB", sid, 0, 0, 0) + block
            hdr = struct.pack(">HHI", 0x8000 | 3, SYN_STREAM,
                              ((FLAG_FIN if fin else 0) << 24) | len(payload))
            self.sock.sendall(hdr + payload)
        if not st.replied.wait(timeout):
            raise TimeoutError("no SYN_REPLY for stream %d" % sid)
        if st.refused:
            raise ConnectionRefusedError("stream %d refused" % sid)
        return st

    def ping(self, pid=1, timeout=5):
        ev = threading.Event()
        self.pings[pid] = ev
        self.send_control(PING, 0, struct.pack(">I", pid))
        return ev.wait(timeout)

    def _read_loop(self):
        try:
            while True:
                while len(self.buf) < 8:
                    chunk = self.sock.recv(262144)
                    if not chunk:
                        raise EOFError
                    self.buf += chunk
                w1, w2 = struct.unpack(">II", self.buf[:8])
                length = w2 & 0xFFFFFF
                flags = w2 >> 24
                while len(self.buf) < 8 + length:
                    chunk = self.sock.recv(262144)
                    if not chunk:
                        raise EOFError
                    self.buf += chunk
                payload = bytes(self.buf[8:8 + length])
                del self.buf[:8 + length]
                if w1 & 0x80000000:
                    ftype = w1 & 0xFFFF
                    self.frames_seen.append(ftype)
                    self._control(ftype, flags, payload)
                else:
                    st = self.streams.get(w1 & 0x7FFFFFFF)
                    if st is None:
                        continue
                    if payload:
                        st.data.put(payload)
                    if flags & FLAG_FIN:
                        st.remote_closed = True
                        st.data.put(b"")
        except (EOFError, OSError):
            pass
        finally:
            self.closed = True
            for st in list(self.streams.values()):
                st.replied.set()
                if not st.remote_closed:
                    st.remote_closed = True
                    st.data.put(b"")
                with st.window_cond:
                    st.window_cond.notify_all()

    def _control(self, ftype, flags, p):
        if ftype == SYN_REPLY:
            sid = struct.unpack(">I", p[:4])[0] & 0x7FFFFFFF
            self.decode_headers(p[4:])
            st = self.streams.get(sid)
            if st:
                st.replied.set()
                if flags & FLAG_FIN:
                    st.remote_closed = True
                    st.data.put(b"")
        elif ftype == RST_STREAM:
            sid, status = struct.unpack(">II", p[:8])
            st = self.streams.get(sid & 0x7FFFFFFF)
            if st:
                st.refused = True
                st.replied.set()
                if not st.remote_closed:
                    st.remote_closed = True
                    st.data.put(b"")
        elif ftype == PING:
            pid = struct.unpack(">I", p)[0]
            if pid % 2 == 1 and pid in self.pings:
                self.pings.pop(pid).set()
            elif pid % 2 == 0:
                self.send_control(PING, 0, p)
        elif ftype == GOAWAY:
            self.goaway = struct.unpack(">II", p[:8])
        elif ftype == WINDOW_UPDATE:
            sid, delta = struct.unpack(">II", p[:8])
            st = self.streams.get(sid & 0x7FFFFFFF)
            if st:
                with st.window_cond:
                    st.send_window += delta & 0x7FFFFFFF
                    st.window_cond.notify_all()
        elif ftype in (HEADERS, SYN_STREAM):
            self.decode_headers(p[4:] if ftype == HEADERS else p[10:])

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


def _collect(st, out, key):
    out[key] = st.read_all(timeout=60)


def spdy_remotecommand(url, stdin=None, tty=False, stdout=True, stderr=True, resize=None,
                       protocols=("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                                  "channel.k8s.io"), stdin_close=True, on_ready=None):
    """Runs one exec/attach session like client-go's remotecommand; returns a dict with
    stdout, stderr, error (raw error-stream bytes), status (parsed JSON or None), protocol."""
    c = SpdyConnection(url, protocols)
    try:
        err_st = c.create_stream([("streamType", "error")])
        err_st.close()  # the client never writes to the error stream
        streams = {}
        if stdin is not None:
            streams["stdin"] = c.create_stream([("streamType", "stdin")])
        if stdout:
            streams["stdout"] = c.create_stream([("streamType", "stdout")])
        if stderr and not tty:
            streams["stderr"] = c.create_stream([("streamType", "stderr")])
        if tty and c.protocol in ("v4.channel.k8s.io", "v3.channel.k8s.io"):
            streams["resize"] = c.create_stream([("streamType", "resize")])
            if resize:
                w, h = resize
                streams["resize"].write(json.dumps({"Width": w, "Height": h}).encode())
        out = {"protocol": c.protocol}
        threads = []
        for key in ("stdout", "stderr"):
            if key in streams:
                t = threading.Thread(target=_collect, args=(streams[key], out, key))
                t.start()
                threads.append(t)
        terr = threading.Thread(target=_collect, args=(err_st, out, "error"))
        terr.start()
        if on_ready:
            on_ready(c, streams)
        if stdin is not None:
            if stdin:
                streams["stdin"].write(stdin)
            if stdin_close:
                streams["stdin"].close()
        for t in threads + [terr]:
            t.join(90)
        out["status"] = None
        if out.get("error") and c.protocol == "v4.channel.k8s.io":
            out["status"] = json.loads(out["error"])
        out["goaway"] = c.goaway
        return out
    finally:
        c.close()


def spdy_portforward(url, port, request, request_id=0, conn=None, read_timeout=30):
    """One port-forward connection: sends request, half-closes, returns (data, error)."""
    own = conn is None
    c = conn or SpdyConnection(url, ["portforward.k8s.io"])
    try:
        hdr = [("port", str(port)), ("requestID", str(request_id))]
        err_st = c.create_stream([("streamType", "error")] + hdr)
        err_st.close()
        data_st = c.create_stream([("streamType", "data")] + hdr)
        result = {}
        t = threading.Thread(target=_collect, args=(err_st, result, "error"))
        t.start()
        if request:
            data_st.write(request)
        data = data_st.read_all(timeout=read_timeout)
        data_st.close()
        t.join(read_timeout)
        return data, result.get("error", b"")
    finally:
        if own:
            c.close()


# ---------------------------------------------------------------------------------------------
# WebSocket


class WebSocket:
    def __init__(self, url, protocols, timeout=10):
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key)]
        if protocols:
            hdrs.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        self.sock, status, self.resp_headers, rest = http_upgrade(url, hdrs, "GET", timeout)
        self.buf = bytearray(rest)
        self.sock.settimeout(None)
        want = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        got = self.resp_headers.get("sec-websocket-accept", [""])[0]
        if got != want:
            raise ValueError("bad Sec-WebSocket-Accept %r (want %r)" % (got, want))
        self.protocol = self.resp_headers.get("sec-websocket-protocol", [None])[0]
        self.base64 = bool(self.protocol and "base64" in self.protocol)
        self.wlock = threading.Lock()
        self.close_code = None

    def send_frame(self, opcode, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack(">BB", b0, m | n)
        elif n < 65536:
            hdr = struct.pack(">BBH", b0, m | 126, n)
        else:
            hdr = struct.pack(">BBQ", b0, m | 127, n)
        if mask:
            mk = os.urandom(4)
            hdr += mk
            payload = bytes(b ^ mk[i & 3] for i, b in enumerate(payload)) if n < 4096 else \
                _mask_fast(payload, mk)
        with self.wlock:
            self.sock.sendall(hdr + payload)

    def send_channel(self, ch, data):
        if self.base64:
            self.send_frame(1, (chr(ord("0") + ch)).encode() + base64.b64encode(data))
        else:
            self.send_frame(2, bytes([ch]) + data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self):
        self._fill(2)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._fill(4)
            n = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._fill(10)
            n = struct.unpack(">Q", self.buf[2:10])[0]
            off = 10
        if b1 & 0x80:
            raise ValueError("server frames must not be masked")
        self._fill(off + n)
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_message(self):
        """(opcode, payload) of the next data message; handles ping; close → (8, payload)."""
        msg, op0 = bytearray(), None
        while True:
            fin, op, payload = self.recv_frame()
            if op == 9:
                self.send_frame(10, payload)
                continue
            if op == 10:
                continue
            if op == 8:
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                return 8, payload
            if op0 is None:
                op0 = op
            msg += payload
            if fin:
                return op0, bytes(msg)

    def recv_channel(self):
        """(channel, data) or (None, None) at close."""
        while True:
            op, payload = self.recv_message()
            if op == 8:
                return None, None
            if not payload:
                continue
            if self.base64:
                return payload[0] - ord("0"), base64.b64decode(bytes(payload[1:]))
            return payload[0], payload[1:]

    def close(self, code=1000):
        try:
            self.send_frame(8, struct.pack(">H", code))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _mask_fast(payload, mk):
    n = len(payload)
    key = (mk * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def ws_remotecommand(url, stdin=None, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"),
                     resize=None, close_stdin=True):
    """Exec/attach over WebSocket; returns dict stdout, stderr, error, status, protocol."""
    ws = WebSocket(url, list(protocols))
    out = {"protocol": ws.protocol, "stdout": b"", "stderr": b"", "error": b"", "ready": False}
    try:
        if resize:
            ws.send_channel(4, json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
        if stdin:
            ws.send_channel(0, stdin)
        if stdin is not None and close_stdin and ws.protocol == "v5.channel.k8s.io":
            ws.send_channel(255, bytes([0]))  # v5 stream-close signal for stdin
        while True:
            ch, data = ws.recv_channel()
            if ch is None:
                break
            if data == b"":
                out["ready"] = True
            if ch == 1:
                out["stdout"] += data
            elif ch == 2:
                out["stderr"] += data
            elif ch == 3:
                out["error"] += data
        out["close_code"] = ws.close_code
        out["status"] = None
        if out["error"] and ws.protocol and ws.protocol.startswith(("v4", "v5")):
            out["status"] = json.loads(out["error"])
        return out
    finally:
        ws.close()


def ws_portforward(url, port, request, protocols=("v4.channel.k8s.io",)):
    """Port-forward over WebSocket (ports in the query); returns (data, error)."""
    sep = "&" if "?" in url else "?"
    ws = WebSocket(url + sep + "port=%d" % port, list(protocols))
    data, err = bytearray(), bytearray()
    seen = {0: False, 1: False}
    try:
        sent = False
        while True:
            ch, payload = ws.recv_channel()
            if ch is None:
                break
            if not seen.get(ch, True):
                seen[ch] = True
                assert struct.unpack("<H", payload[:2])[0] == port, payload
                payload = payload[2:]
                if ch == 0 and not sent and request:
                    ws.send_channel(0, request)
                    sent = True
            if ch == 0:
                data += payload
            elif ch == 1:
                err += payload
        return bytes(data), bytes(err)
    finally:
        ws.close()


if __name__ == "__main__":
    import sys
    kind, url = sys.argv[1], sys.argv[2]
    if kind == "exec":
        r = spdy_remotecommand(url, stdin=None)
        sys.stdout.buffer.write(r.get("stdout", b""))
        print(r["status"])
    elif kind == "ws-exec":
        print(ws_remotecommand(url))
