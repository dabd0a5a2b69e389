"""lib_protocols.py -- small clients for uwsgi, SCGI, FastCGI and HTTP/1.0, for corral's
integration tests (tests/integration/*.sh import it; PYTHONPATH is set by
lib.sh).

Addresses are "unix:/path", "tcp:HOST:PORT" or a bare path (unix).

    from lib_protocols import request, FcgiConn, parse_response
    st, hdrs, body = request("fastcgi", "unix:/tmp/x.sock", "GET", "/hello")

Command line (used by lib.sh):
    lib_protocols.py ping PROTO ADDR            exit 0 when the server answers
    lib_protocols.py get PROTO ADDR URI [METHOD] prints "STATUS\\n" + body
"""

import os
import socket
import struct
import sys
import time

DEFAULT_TIMEOUT = 10.0

# ---------------------------------------------------------------- sockets


def connect(addr, timeout=DEFAULT_TIMEOUT):
    """A connected stream socket to ADDR."""
    if addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        host = host.strip("[]")
        s = socket.create_connection((host, int(port)), timeout=timeout)
        return s
    path = addr[5:] if addr.startswith("unix:") else addr
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def recv_all(s, deadline=None):
    """Everything until the peer closes (or the timeout fires: raises)."""
    chunks = []
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline passed")
            s.settimeout(left)
        b = s.recv(1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += b
    return bytes(buf)


# ---------------------------------------------------------------- params


def cgi_params(method="GET", uri="/", body_len=None, extra=None, content_type=None):
    """The CGI variables a front end like nginx sends, as an ordered list of
    (bytes name, bytes value)."""
    if isinstance(uri, str):
        uri = uri.encode("utf-8", "surrogateescape")
    path, _, query = uri.partition(b"?")
    p = [
        (b"QUERY_STRING", query),
        (b"REQUEST_METHOD", method.encode()),
        (b"CONTENT_TYPE", (content_type or "").encode()),
        (b"CONTENT_LENGTH", b"" if body_len is None else str(body_len).encode()),
        (b"SCRIPT_NAME", path),
        (b"REQUEST_URI", uri),
        (b"DOCUMENT_URI", path),
        (b"DOCUMENT_ROOT", b"/nonexistent"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"REQUEST_SCHEME", b"http"),
        (b"GATEWAY_INTERFACE", b"CGI/1.1"),
        (b"SERVER_SOFTWARE", b"lib_protocols"),
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"REMOTE_PORT", b"40000"),
        (b"SERVER_ADDR", b"127.0.0.1"),
        (b"SERVER_PORT", b"80"),
        (b"SERVER_NAME", b"localhost"),
        (b"HTTP_HOST", b"localhost"),
    ]
    for k, v in (extra or {}).items():
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        p = [(n, x) for n, x in p if n != k]  # extra replaces a default
        p.append((k, v))
    return p


# ---------------------------------------------------------------- uwsgi


def uwsgi_vars(params):
    out = bytearray()
    for k, v in params:
        out += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return bytes(out)


def uwsgi_packet(params, modifier1=0, modifier2=0):
    vars_ = uwsgi_vars(params)
    return struct.pack("<BHB", modifier1, len(vars_), modifier2) + vars_


# ---------------------------------------------------------------- SCGI


def scgi_packet(params, body_len=0):
    """SCGI: CONTENT_LENGTH first (required), SCGI=1, then the rest."""
    hdr = bytearray()
    hdr += b"CONTENT_LENGTH\0" + str(body_len).encode() + b"\0"
    hdr += b"SCGI\x001\0"
    for k, v in params:
        if k in (b"CONTENT_LENGTH", b"SCGI"):
            continue
        hdr += k + b"\0" + v + b"\0"
    return str(len(hdr)).encode() + b":" + bytes(hdr) + b","


# ---------------------------------------------------------------- FastCGI

FCGI_BEGIN_REQUEST = 1
FCGI_ABORT_REQUEST = 2
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_STDERR = 7
FCGI_DATA = 8
FCGI_GET_VALUES = 9
FCGI_GET_VALUES_RESULT = 10
FCGI_UNKNOWN_TYPE = 11


def fcgi_record(rtype, req_id, content=b"", padding=None, version=1):
    if padding is None:
        padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", version, rtype, req_id, len(content), padding, 0) + content + b"\0" * padding


def fcgi_nv(name, value):
    out = bytearray()
    for x in (name, value):
        n = len(x)
        out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return bytes(out) + name + value


def fcgi_parse_nv(data):
    out = {}
    i = 0
    while i < len(data):
        lens = []
        for _ in range(2):
            if data[i] < 128:
                lens.append(data[i])
                i += 1
            else:
                lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
        k = data[i:i + lens[0]]
        i += lens[0]
        v = data[i:i + lens[1]]
        i += lens[1]
        out[k.decode("latin-1")] = v.decode("latin-1")
    return out


def fcgi_begin(req_id=1, keep_conn=False, role=1):
    return fcgi_record(FCGI_BEGIN_REQUEST, req_id, struct.pack(">HB5x", role, 1 if keep_conn else 0))


def fcgi_params_records(params, req_id=1, max_record=65535):
    data = b"".join(fcgi_nv(k, v) for k, v in params)
    out = bytearray()
    for i in range(0, len(data), max_record):
        out += fcgi_record(FCGI_PARAMS, req_id, data[i:i + max_record])
    out += fcgi_record(FCGI_PARAMS, req_id)
    return bytes(out)


def fcgi_stdin_records(body, req_id=1, chunk=32768):
    out = bytearray()
    for i in range(0, len(body), chunk):
        out += fcgi_record(FCGI_STDIN, req_id, body[i:i + chunk])
    out += fcgi_record(FCGI_STDIN, req_id)
    return bytes(out)


def fcgi_read_record(s):
    """(version, type, request id, content) of the next record; raises
    EOFError when the connection closes before one is complete."""
    h = recv_exact(s, 8)
    ver, rtype, rid, clen, plen, _ = struct.unpack(">BBHHBB", h)
    content = recv_exact(s, clen) if clen else b""
    if plen:
        recv_exact(s, plen)
    return ver, rtype, rid, content


class FcgiConn:
    """One FastCGI connection; request() may be called several times when
    keep_conn is set."""

    def __init__(self, addr, keep_conn=True, timeout=DEFAULT_TIMEOUT):
        self.sock = connect(addr, timeout)
        self.keep_conn = keep_conn
        self.last_end = None
        self.stderr = b""

    def send_request(self, method="GET", uri="/", body=b"", extra=None, req_id=1,
                     stream_body=False, content_type=None):
        params = cgi_params(method, uri, None if stream_body else len(body), extra, content_type)
        self.sock.sendall(fcgi_begin(req_id, self.keep_conn) + fcgi_params_records(params, req_id)
                          + fcgi_stdin_records(body, req_id))

    def read_response(self, req_id=1):
        """(raw stdout bytes, app status, protocol status)."""
        out = bytearray()
        self.stderr = b""
        while True:
            ver, rtype, rid, content = fcgi_read_record(self.sock)
            if rtype == FCGI_STDOUT and rid == req_id:
                out += content
            elif rtype == FCGI_STDERR:
                self.stderr += content
            elif rtype == FCGI_END_REQUEST and rid == req_id:
                app, proto = struct.unpack(">IB3x", content)
                self.last_end = (app, proto)
                return bytes(out), app, proto
            else:
                raise ValueError("unexpected record type %d id %d" % (rtype, rid))

    def request(self, method="GET", uri="/", body=b"", extra=None, **kw):
        self.send_request(method, uri, body, extra, **kw)
        raw, _, _ = self.read_response()
        return parse_response(raw)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- responses


def parse_response(raw):
    """(status int, [(name, value)...], body bytes) of an HTTP status-line
    response (uwsgi) or a CGI response with Status: (SCGI, FastCGI)."""
    sep = raw.find(b"\r\n\r\n")
    if sep < 0:
        sep2 = raw.find(b"\n\n")
        if sep2 < 0:
            raise ValueError("no end of headers in %r" % raw[:200])
        head, body = raw[:sep2], raw[sep2 + 2:]
    else:
        head, body = raw[:sep], raw[sep + 4:]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    status = None
    headers = []
    if lines and lines[0].startswith(b"HTTP/"):
        status = int(lines[0].split()[1])
        lines = lines[1:]
    for line in lines:
        if not line:
            continue
        name, _, value = line.partition(b":")
        name = name.decode("latin-1").strip()
        value = value.decode("latin-1").strip()
        headers.append((name, value))
        if name.lower() == "status" and status is None:
            status = int(value.split()[0])
    if status is None:
        status = 302 if any(n.lower() == "location" for n, _ in headers) else 200
    return status, headers, body


def header(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def request_raw(proto, addr, method="GET", uri="/", body=b"", extra=None,
                timeout=DEFAULT_TIMEOUT, content_type=None):
    """The raw response bytes of one request on a new connection."""
    deadline = time.monotonic() + timeout
    if proto == "fastcgi":
        c = FcgiConn(addr, keep_conn=False, timeout=timeout)
        try:
            c.send_request(method, uri, body, extra, content_type=content_type)
            raw, _, _ = c.read_response()
            return raw
        finally:
            c.close()
    s = connect(addr, timeout)
    try:
        params = cgi_params(method, uri, len(body), extra, content_type)
        if proto == "uwsgi":
            pkt = uwsgi_packet(params)
        elif proto == "scgi":
            pkt = scgi_packet(params, len(body))
        elif proto == "http":
            # HTTP/1.0: the response is not chunked and the server closes.
            pkt = ("%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Length: %d\r\n%s\r\n" % (
                method, uri, len(body),
                "Content-Type: %s\r\n" % content_type if content_type else "")).encode("latin-1")
        else:
            raise ValueError("unknown protocol " + proto)
        s.sendall(pkt + body)
        return recv_all(s, deadline)
    finally:
        s.close()


def request(proto, addr, method="GET", uri="/", body=b"", extra=None,
            timeout=DEFAULT_TIMEOUT, content_type=None):
    """(status, headers, body) of one request on a new connection."""
    return parse_response(request_raw(proto, addr, method, uri, body, extra, timeout, content_type))


def pattern(size, offset=0):
    """The demo's /large pattern: byte i is 'a' + i % 26."""
    alpha = b"abcdefghijklmnopqrstuvwxyz"
    start = offset % 26
    reps = (size + start) // 26 + 1
    return (alpha * reps)[start:start + size]


# ---------------------------------------------------------------- HTTP


def http_request(port, method="GET", target=b"/", body=b"", headers=None, timeout=30.0,
                 host="127.0.0.1"):
    """One HTTP/1.0 request (the server closes after the response, no chunked
    encoding) with TARGET sent as raw bytes. Returns (status, [(name,
    value)], body, arrivals) where arrivals lists (seconds since the request
    was sent, bytes received so far) for every read."""
    if isinstance(target, str):
        target = target.encode("utf-8")
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        head = [method.encode() + b" " + target + b" HTTP/1.0", b"Host: localhost",
                b"Connection: close"]
        for k, v in (headers or {}).items():
            head.append(k.encode() + b": " + v.encode())
        if body or method in ("POST", "PUT"):
            head.append(b"Content-Length: %d" % len(body))
        t0 = time.monotonic()
        s.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        data = bytearray()
        arrivals = []
        deadline = t0 + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(1 << 16)
            if not b:
                break
            data += b
            arrivals.append((time.monotonic() - t0, len(data)))
    finally:
        s.close()
    data = bytes(data)
    sep = data.find(b"\r\n\r\n")
    if sep < 0:
        raise ValueError("no end of the HTTP head in %r" % data[:200])
    lines = data[:sep].split(b"\r\n")
    status = int(lines[0].split()[1])
    hdrs = []
    for line in lines[1:]:
        n, _, v = line.partition(b":")
        hdrs.append((n.decode("latin-1").strip(), v.decode("latin-1").strip()))
    hlen = sep + 4
    arrivals = [(t, n - hlen) for t, n in arrivals]
    return status, hdrs, data[hlen:], arrivals


def http_hammer(port, total, concurrency, timeout=10.0, path_fmt="/params?i=%d",
                expect=lambda i, st, body: st == 200 and (b"QUERY_STRING=i=%d\n" % i) in body):
    """TOTAL HTTP requests over CONCURRENCY threads; request i asks for
    path_fmt % i. Returns (good, errors, seconds)."""
    import threading
    lock = threading.Lock()
    errors = []
    state = [0, 0]

    def worker():
        while True:
            with lock:
                i = state[0]
                if i >= total:
                    return
                state[0] += 1
            try:
                st, _, b, _ = http_request(port, "GET", path_fmt % i, timeout=timeout)
                good = expect(i, st, b)
                detail = "request %d: status %d body %r" % (i, st, b[:100])
            except Exception as e:  # noqa: BLE001
                good, detail = False, "request %d: %s: %s" % (i, type(e).__name__, e)
            with lock:
                if good:
                    state[1] += 1
                elif len(errors) < 10:
                    errors.append(detail)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 4 + 30)
    return state[1], errors, time.monotonic() - t0


# ---------------------------------------------------------------- checks

# Checks made inside a python snippet reach the shell's counters through
# these lines (lib.sh: py_checks): "ok<TAB>name" or "FAIL<TAB>name<TAB>detail".


def ask_worker(proto, addr, uri, pid, seconds=5.0, concurrency=4):
    """The body of URI as answered by worker PID, whose answers start with
    its pid: asks CONCURRENCY at a time (accept balancing sends a lone
    client to whichever worker is ahead) until PID answers, or None."""
    import threading
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = []

        def ask():
            try:
                b = request(proto, addr, "GET", uri, timeout=5)[2]
            except OSError:
                return
            if b.split()[:1] == [str(pid).encode()]:
                found.append(b)

        ts = [threading.Thread(target=ask) for _ in range(concurrency)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if found:
            return found[0]
    return None


def report(name, cond, detail=""):
    if cond:
        print("ok\t%s" % name, flush=True)
    else:
        print("FAIL\t%s\t%s" % (name, str(detail).replace("\n", " | ")[:3000]), flush=True)
    return bool(cond)


def hammer(proto, addr, uri, total, concurrency, expect_status=200, expect_body=None,
           timeout=10.0, keep_conn=False, method="GET", body=b""):
    """TOTAL requests over CONCURRENCY threads. Returns (good, errors list,
    seconds). A request is good when its status (and body, if given) match."""
    import threading
    lock = threading.Lock()
    errors = []
    counter = [0, 0]  # next index, good

    def worker():
        conn = None
        while True:
            with lock:
                if counter[0] >= total:
                    break
                counter[0] += 1
            try:
                if keep_conn and proto == "fastcgi":
                    if conn is None:
                        conn = FcgiConn(addr, keep_conn=True, timeout=timeout)
                    st, _, b = conn.request(method, uri, body)
                else:
                    st, _, b = request(proto, addr, method, uri, body, timeout=timeout)
                good = st == expect_status and (expect_body is None or b == expect_body)
                with lock:
                    if good:
                        counter[1] += 1
                    elif len(errors) < 20:
                        errors.append("status %d body %r" % (st, b[:80]))
            except Exception as e:  # noqa: BLE001
                with lock:
                    if len(errors) < 20:
                        errors.append("%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 60)
    return counter[1], errors, time.monotonic() - t0


# ---------------------------------------------------------------- CLI


def main(argv):
    if len(argv) >= 4 and argv[1] == "ping":
        try:
            # Mounted at the root, as a WSGI front end should send it.
            st, _, _ = request(argv[2], argv[3], "GET", "/__corral_test_ping", timeout=8,
                               extra={"SCRIPT_NAME": "", "PATH_INFO": "/__corral_test_ping"})
            return 0 if 100 <= st <= 599 else 1
        except Exception as e:  # noqa: BLE001 -- any failure means "not yet"
            print("ping %s %s: %s" % (argv[2], argv[3], e), file=sys.stderr)
            return 1
    if len(argv) >= 5 and argv[1] == "get":
        method = argv[5] if len(argv) > 5 else "GET"
        body = sys.stdin.buffer.read() if method in ("POST", "PUT") else b""
        st, _, b = request(argv[2], argv[3], method, argv[4], body)
        sys.stdout.buffer.write(b"%d\n" % st + b)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
