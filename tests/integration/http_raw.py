"""http_raw.py -- a raw-socket HTTP/1.1 client for corral's http listener
tests (tests/integration/http.sh): requests written byte by byte as given,
responses read by their framing (Content-Length, chunked, or the close), so
that keep-alive, pipelining and malformed requests can be checked exactly.

    from http_raw import Conn
    c = Conn("tcp:127.0.0.1:8080")
    c.send(b"GET /hello HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    r = c.response()          # r.status, r.headers (list), r.body, r.chunked
    c.closed()                # True when the server closed the connection
"""

import socket
import time

from lib_protocols import connect


class Response:
    def __init__(self, status, reason, headers, body, chunked, head_raw):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.chunked = chunked
        self.head_raw = head_raw

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def headers_named(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "<%d %r %r body %d bytes%s>" % (self.status, self.reason, self.headers,
                                               len(self.body), " chunked" if self.chunked else "")


class Conn:
    def __init__(self, addr, timeout=10.0):
        self.s = connect(addr, timeout)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        if self.eof:
            raise EOFError("connection closed by the server")
        b = self.s.recv(1 << 16)
        if not b:
            self.eof = True
            raise EOFError("connection closed by the server")
        self.buf += b

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def response(self, head_request=False, interim=False):
        """The next response; 1xx responses are skipped unless INTERIM."""
        while True:
            status_line = self._line()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise ValueError("bad status line %r" % status_line)
            status = int(parts[1])
            reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
            headers = []
            raw = [status_line]
            while True:
                line = self._line()
                if not line:
                    break
                raw.append(line)
                n, _, v = line.partition(b":")
                headers.append((n.decode("latin-1"), v.decode("latin-1").strip()))
            r = Response(status, reason, headers, b"", False, b"\r\n".join(raw))
            if 100 <= status < 200:
                if interim:
                    return r
                continue
            break
        if head_request or status in (204, 304):
            return r
        te = r.header("Transfer-Encoding")
        cl = r.header("Content-Length")
        if te is not None:
            if te.lower() != "chunked":
                raise ValueError("unexpected Transfer-Encoding %r" % te)
            r.chunked = True
            body = bytearray()
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                if self._exact(2) != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
            r.body = bytes(body)
        elif cl is not None:
            r.body = self._exact(int(cl))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            r.body = bytes(self.buf)
            self.buf.clear()
        return r

    def closed(self, wait=3.0):
        """True when the server closes the connection within WAIT seconds
        (no byte may arrive before the close)."""
        if self.eof:
            return not self.buf
        self.s.settimeout(wait)
        try:
            b = self.s.recv(1 << 16)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if b:
            self.buf += b
            return False
        self.eof = True
        return not self.buf

    def rest(self, wait=3.0):
        """Everything until the close (or WAIT seconds)."""
        self.s.settimeout(wait)
        end = time.monotonic() + wait
        try:
            while time.monotonic() < end and not self.eof:
                b = self.s.recv(1 << 16)
                if not b:
                    self.eof = True
                    break
                self.buf += b
        except (socket.timeout, ConnectionResetError):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def close(self):
        self.s.close()


def req(method, target, host="t", headers=(), body=None, version="HTTP/1.1"):
    """A request's bytes; BODY (bytes) gets a Content-Length unless HEADERS
    name a Transfer-Encoding or a Content-Length."""
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = [h.split(":", 1)[0].lower() for h in headers]
    lines += list(headers)
    if body is not None and "transfer-encoding" not in names and "content-length" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(data, sizes=(7, 1, 4096)):
    """DATA as a chunked body, in chunks of the given sizes in turn, with an
    extension on some and a trailer at the end."""
    out = bytearray()
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        piece = data[i:i + n]
        ext = b";x=\"y\"" if k % 3 == 1 else b""
        out += b"%x%s\r\n" % (len(piece), ext) + piece + b"\r\n"
        i += n
        k += 1
    out += b"0\r\nX-Trailer: ignored\r\n\r\n"
    return bytes(out)
