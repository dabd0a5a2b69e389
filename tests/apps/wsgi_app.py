"""The WSGI test app of tests/integration/wsgi.sh, wrapped in
wsgiref.validate.validator so that every PEP 3333 rule it checks is checked
on every request (a violation raises AssertionError, which corral logs).

Routes (on SCRIPT_NAME + PATH_INFO: nginx's fastcgi_params send the path as
SCRIPT_NAME, its uwsgi_params as PATH_INFO):
  /hello            b"Hello, World!" as text/plain
  /echo             the request body read with wsgi.input.read(), echoed
  /readline         "N lines, M bytes" counted with a readline() loop
  /iter             "N lines, M bytes" counted by iterating wsgi.input
  /environ          selected environ keys, one "KEY=repr" per line
  /write            the body sent through the write() callable
  /gen              a generator body; its close() appends "closed PATH" to
                    the file named by $WSGI_TEST_CLOSE_LOG
  /raise            raises before start_response (corral answers 500)
  /status?code=N    status N with the body "status N"
  /file?offset=O&length=L
                    the file $WSGI_TEST_FILE from offset O through
                    wsgi.file_wrapper (with Content-Length: L when given);
                    its close() is recorded like /gen's. Under the
                    validator the wrapper is iterated; as /raw/file (no
                    validator) corral sends it with sendfile(2)
  /sleep?ms=N       time.sleep(N / 1000), then "slept"
  /tlocal           "N SAME": a per-thread counter kept in threading.local,
                    and whether the thread's local object is the same as
                    on its previous request (it must be: one object/thread)

Under /bad/ the app breaks PEP 3333 on purpose, outside the validator (which
would stop it first), to check what corral does:
  /bad/str-body     yields a str                     -> 500, logged
  /bad/header-crlf  a header value with CR LF        -> 500, logged
  /bad/header-latin a header value not in Latin-1    -> 500, logged
  /bad/header-esc   a header value with ESC          -> 500, logged
  /bad/two-lengths  Content-Length 5 and 100         -> 500, logged
  /bad/status       status "OK" without a code       -> 500, logged
  /bad/late-raise   raises after the first chunk     -> connection closed
  /bad/exc-info     start_response(..., exc_info) after the headers went
                    out: re-raised                   -> connection closed
  /bad/exc-info-early  the same before any body: the error page replaces
                    the first headers                -> 500 from the app
Each /bad/ body's close() is recorded like /gen's.
"""
import io
import os
import sys
import threading
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

REASONS = {200: "OK", 404: "Not Found", 418: "I'm a teapot", 500: "Internal Server Error",
           503: "Service Unavailable"}


def text(start_response, body, status="200 OK", ctype="text/plain"):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def count(lines):
    n = size = 0
    for line in lines:
        n += 1
        size += len(line)
    return ("%d lines, %d bytes" % (n, size)).encode()


def readline_loop(stream):
    while True:
        line = stream.readline()
        if not line:
            return
        yield line


class Gen:
    """An iterable body whose close() leaves a trace in a file."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        for i in range(3):
            yield b"part %d\n" % i

    def close(self):
        log = os.environ.get("WSGI_TEST_CLOSE_LOG")
        if log:
            with open(log, "a") as f:
                f.write("closed %s\n" % self.path)


tlocal = threading.local()


class RecordingFile(io.FileIO):
    """A real file (fileno(), tell()) whose close() is recorded."""

    def __init__(self, path, route):
        super().__init__(path, "rb")
        self.route = route

    def close(self):
        if not self.closed:
            Gen(self.route).close()
        super().close()


def app(environ, start_response):
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    route = path
    if path.startswith("/raw/"):
        path = path[4:]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    inp = environ["wsgi.input"]
    if path == "/hello":
        return text(start_response, b"Hello, World!")
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = inp.read(length) if length else b""
        return text(start_response, body, ctype="application/octet-stream")
    if path == "/readline":
        return text(start_response, count(readline_loop(inp)))
    if path == "/iter":
        return text(start_response, count(inp))
    if path == "/environ":
        keys = ["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "HTTP_X_LATIN",
                "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
                "wsgi.version", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess",
                "wsgi.run_once", "wsgi.input_terminated"]
        body = "".join("%s=%r\n" % (k, environ.get(k)) for k in keys)
        environ["wsgi.errors"].write("environ was asked for\n")
        return text(start_response, body.encode("utf-8"))
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"through write()\n")
        return []
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Gen(path)
    if path == "/raise":
        raise RuntimeError("raised on purpose by /raise")
    if path == "/file":
        f = RecordingFile(os.environ["WSGI_TEST_FILE"], route)
        offset = int(query.get("offset", ["0"])[0])
        f.seek(offset)
        length = int(query.get("length", [str(os.fstat(f.fileno()).st_size - offset)])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(length))])
        return environ["wsgi.file_wrapper"](f, 65536)
    if path == "/sleep":
        time.sleep(int(query.get("ms", ["100"])[0]) / 1000)
        return text(start_response, b"slept")
    if path == "/tlocal":
        tlocal.n = getattr(tlocal, "n", 0) + 1
        same = getattr(tlocal, "ident", None) in (None, threading.get_ident())
        tlocal.ident = threading.get_ident()
        return text(start_response, b"%d %s" % (tlocal.n, b"SAME" if same else b"OTHER"))
    if path == "/status":
        code = int(query.get("code", ["200"])[0])
        return text(start_response, b"status %d" % code,
                    status="%d %s" % (code, REASONS.get(code, "Whatever")))
    return text(start_response, b"not found", status="404 Not Found")


class Closing:
    """Wraps an iterable; close() is recorded in $WSGI_TEST_CLOSE_LOG."""

    def __init__(self, path, it):
        self.path, self.it = path, it

    def __iter__(self):
        return iter(self.it)

    def close(self):
        Gen(self.path).close()


def bad_body(path, start_response):
    if path == "/bad/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield "a str, not bytes"
    elif path == "/bad/header-crlf":
        start_response("200 OK", [("X-Split", "a\r\nInjected: yes")])
        yield b"never sent"
    elif path == "/bad/header-latin":
        start_response("200 OK", [("X-Euro", "\u20ac")])
        yield b"never sent"
    elif path == "/bad/header-esc":
        start_response("200 OK", [("X-Esc", "a\x1b[31mred")])
        yield b"never sent"
    elif path == "/bad/two-lengths":
        start_response("200 OK", [("Content-Length", "5"), ("Content-Length", "100")])
        yield b"never"
    elif path == "/bad/status":
        start_response("OK", [])
        yield b"never sent"
    elif path == "/bad/late-raise":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk\n"
        raise RuntimeError("raised on purpose after the first chunk")
    elif path == "/bad/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk\n"
        try:
            raise ValueError("late error on purpose")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never sent"
    elif path == "/bad/exc-info-early":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("early error on purpose")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                           sys.exc_info())
        yield b"error page"


validated = validator(app)


def application(environ, start_response):
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if path.startswith("/raw/"):
        return app(environ, start_response)
    if path.startswith("/bad/"):
        return Closing(path, bad_body(path, start_response))
    return validated(environ, start_response)
