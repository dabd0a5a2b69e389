#!/bin/bash
# http.sh -- the http listener (--listen http:...): a raw-socket suite
# (keep-alive, pipelining, 100-continue, chunked bodies both ways, HEAD, the
# request-smuggling shapes answered 400 with a closed connection and a log
# line naming the peer, idle kept connections holding no thread), a WSGI app
# through it, and nginx proxy_pass with an upstream keepalive pool in front.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-240}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need curl curl

P=$(free_port)
H=$T/h.sock
start_corral --listen "http:tcp:127.0.0.1:$P" --listen "http:unix:$H" --handler "$DEMO_SO" \
    --processes 2 --threads 4 --chmod 0666 --access-log "$T/corral-access.log" || finish
MAIN_LOG=$CORRAL_LOG

# ---------------------------------------------------------------- raw socket

py_checks "$P" "$H" <<'PY'
import os, socket, sys, time
from http_raw import Conn, req, chunked
from lib_protocols import report
port, sock = sys.argv[1], sys.argv[2]
TCP = "tcp:127.0.0.1:%s" % port

def params(body):
    return dict(l.split("=", 1) for l in body.decode("latin-1").splitlines() if "=" in l)

# Keep-alive: three requests on one connection, over TCP and the unix socket.
for addr in (TCP, "unix:" + sock):
    c = Conn(addr)
    got = []
    for i in range(3):
        c.send(req("GET", "/hello"))
        r = c.response()
        got.append((r.status, r.body))
    report("%s: 3 requests on one kept connection" % addr[:4],
           got == [(200, b"Hello, World!")] * 3, got)
    report("%s: the connection stays open after them" % addr[:4], not c.closed(0.3))
    c.close()

# The params, as the other codecs give them.
c = Conn(TCP)
c.send(req("GET", "/params?a=1&b=%C3%A9", host="example.org:8080",
           headers=["X-Custom-Thing: v1", "X_Custom_Thing: spoofed", "Content-Type: t/x"]))
r = c.response()
p = params(r.body)
report("params: a response without Content-Length is chunked", r.chunked, r)
for k, v in (("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/params?a=1&b=%C3%A9"),
             ("PATH_INFO", "/params"), ("QUERY_STRING", "a=1&b=%C3%A9"),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_NAME", "example.org"),
             ("SERVER_PORT", "8080"), ("REMOTE_ADDR", "127.0.0.1"),
             ("HTTP_X_CUSTOM_THING", "v1"), ("CONTENT_TYPE", "t/x")):
    report("params: %s=%s" % (k, v), p.get(k) == v, p)
report("params: REMOTE_PORT is the client's port",
       p.get("REMOTE_PORT") == str(c.s.getsockname()[1]), p)
report("params: no HTTP_CONTENT_TYPE", "HTTP_CONTENT_TYPE" not in p, p)
report("params: a field with '_' in its name is dropped", "spoofed" not in r.body.decode(), p)
c.send(req("GET", "/params", host=None, version="HTTP/1.0", headers=["Connection: keep-alive"]))
r = c.response()
p = params(r.body)
report("params: HTTP/1.0 without Host: SERVER_NAME/PORT from the listener",
       (p.get("SERVER_NAME"), p.get("SERVER_PORT")) == ("127.0.0.1", port), p)
report("params: HTTP/1.0 and no length: Connection: close, and closed",
       r.header("Connection") == "close" and c.closed(), r)
c.close()

# Pipelining: three requests in one write, answered in order.
c = Conn(TCP)
c.send(req("GET", "/status?code=201") + req("POST", "/echo", body=b"second") +
       req("GET", "/params?third"))
r1, r2, r3 = c.response(), c.response(), c.response()
report("pipelining: three responses in order",
       (r1.status, r2.body, params(r3.body).get("QUERY_STRING")) == (201, b"second", "third"),
       (r1, r2, r3))
c.close()

# Connection: close from the client.
c = Conn(TCP)
c.send(req("GET", "/hello", headers=["Connection: close"]))
r = c.response()
report("Connection: close: answered with Connection: close",
       r.status == 200 and r.header("Connection") == "close", r)
report("Connection: close: the server closes", c.closed())
c.close()

# HEAD: the head only; the connection goes on (no stray body bytes).
c = Conn(TCP)
c.send(req("HEAD", "/hello"))
r = c.response(head_request=True)
report("HEAD: 200 with the Content-Length of the GET",
       r.status == 200 and r.header("Content-Length") == "13", r)
c.send(req("HEAD", "/params"))
r = c.response(head_request=True)
report("HEAD without a length: no Transfer-Encoding", r.header("Transfer-Encoding") is None, r)
c.send(req("GET", "/hello"))
r = c.response()
report("HEAD: no body bytes were sent (the next response parses)", r.body == b"Hello, World!", r)
c.close()

# Chunked request bodies, streamed (extensions and trailers skipped).
big = os.urandom(3 * 1000 * 1000 + 7)
c = Conn(TCP)
c.send(req("POST", "/echo", headers=["Transfer-Encoding: chunked"]) + chunked(big))
r = c.response()
report("chunked body: 3 MB echoed byte-exact", r.status == 200 and r.body == big, r)
c.send(req("POST", "/echo", headers=["Transfer-Encoding: chunked"]) + b"0\r\n\r\n")
r = c.response()
report("chunked body: an empty one", (r.status, r.body) == (200, b""), r)
c.close()
c = Conn(TCP)
body = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in (b"ab", b"cde")) + b"0\r\n\r\n"
c.send(req("POST", "/echo", headers=["Transfer-Encoding: chunked"]))
for i in range(len(body)):  # one byte per write
    c.send(body[i:i + 1])
    time.sleep(0.002)
r = c.response()
report("chunked body: sent byte by byte", r.body == b"abcde", r)
c.close()

# Expect: 100-continue: the 100 comes when the app reads, before the body.
c = Conn(TCP)
c.send(req("POST", "/echo", headers=["Expect: 100-continue", "Content-Length: 5"]))
r = c.response(interim=True)
report("100-continue: HTTP/1.1 100 Continue before the body is sent", r.status == 100, r)
c.send(b"hello")
r = c.response()
report("100-continue: then the response", (r.status, r.body) == (200, b"hello"), r)
c.send(req("GET", "/hello"))
report("100-continue: the connection goes on", c.response().body == b"Hello, World!")
c.close()
c = Conn(TCP)
c.send(req("POST", "/hello", headers=["Expect: 100-continue", "Content-Length: 5"]))
r = c.response(interim=True)
report("100-continue: an app that does not read answers at once, without a 100",
       r.status == 200 and r.body == b"Hello, World!", r)
report("100-continue: ... and closes (the client may or may not send the body)",
       r.header("Connection") == "close" and c.closed(), r)
c.close()

# Streamed responses arrive chunk by chunk.
c = Conn(TCP)
c.send(req("GET", "/stream?n=3&ms=200"))
c.s.settimeout(5)
t0 = time.monotonic()
first = c.s.recv(4096)
t1 = time.monotonic() - t0
c.buf += first
r = c.response()
report("streamed response: the first chunk comes before the last is written",
       t1 < 0.35 and r.body == b"chunk 0\nchunk 1\nchunk 2\n", (t1, r))
c.close()

# sendfile: with a length it goes out as it is; 8 MiB byte-exact.
c = Conn(TCP)
c.send(req("GET", "/sendfile?size=1048576"))
r = c.response()
alpha = b"abcdefghijklmnopqrstuvwxyz"
want = (alpha * (1048576 // 26 + 1))[:1048576]
report("sendfile: 1 MiB byte-exact", r.body == want, (r.status, len(r.body)))
c.close()

# Request smuggling and malformed requests: 400 (or the fitting 4xx/5xx),
# Connection: close, and the connection closed; nothing after is served.
bad = [
    ("CL and TE", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE and CL", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400),
    ("two CL", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    ("CL 1, 1", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 1\r\n\r\nx", 400),
    ("CL +1", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\nx", 400),
    ("TE chunked, identity", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
    ("TE xchunked", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    ("TE gzip, chunked", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    ("TE in HTTP/1.0", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs-fold", b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n", 400),
    ("bare CR", b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: 1\r2\r\n\r\n", 400),
    ("bare LF", b"GET /hello HTTP/1.1\r\nHost: t\nX-A: 1\r\n\r\n", 400),
    ("space before colon", b"GET /hello HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    ("NUL in a value", b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    ("bad name byte", b"GET /hello HTTP/1.1\r\nHost: t\r\nX\"A: 1\r\n\r\n", 400),
    ("control in the target", b"GET /hel\x01lo HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("%00 in the path", b"GET /hel%00lo HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("no Host in 1.1", b"GET /hello HTTP/1.1\r\n\r\n", 400),
    ("two Host", b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("chunk size overflow", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n", 400),
    ("chunk without CRLF", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", 400),
    ("HTTP/2.0", b"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("TLS on the socket", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400),
]
follow = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
for name, raw, status in bad:
    c = Conn(TCP)
    c.send(raw + follow)
    try:
        r = c.response()
    except Exception as e:  # noqa: BLE001
        report("smuggling: %s: %d" % (name, status), False, repr(e))
        continue
    report("smuggling: %s: %d with Connection: close" % (name, status),
           r.status == status and r.header("Connection") == "close", r)
    rest = c.rest(3)
    report("smuggling: %s: nothing more is served, the connection is closed" % name,
           rest == b"" and c.eof, rest[:200])
    c.close()
PY

# The 400s named their peer in the error log (conn.c's protocol-error line).
sleep 0.3
expect_file_match "access log: a unix socket peer is logged as unix" \
    ' unix "GET /hello" 200 13 ' "$T/corral-access.log"
expect_file_match "access log: a TCP peer by its address" \
    ' 127\.0\.0\.1 "GET /hello" 200 13 ' "$T/corral-access.log"
n=$(grep -c "http:tcp:127.0.0.1:$P: peer 127.0.0.1:[0-9]*: bad request: HTTP" "$MAIN_LOG")
expect_eq "every refused request has a log line naming the peer" 23 "$n"
expect_file_match "the log line says why (CL with TE)" \
    "bad request: HTTP request has both Content-Length and Transfer-Encoding; connection closed" \
    "$MAIN_LOG"

# ---------------------------------------------------------------- idle keep-alive

# 1 process x 1 thread: 200 idle kept connections hold no thread, and a new
# request is still answered at once.
P1=$(free_port)
start_corral --listen "http:tcp:127.0.0.1:$P1" --handler "$DEMO_SO" --processes 1 --threads 1 ||
    finish
py_checks "$P1" <<'PY'
import sys, time
from http_raw import Conn, req
from lib_protocols import report
TCP = "tcp:127.0.0.1:%s" % sys.argv[1]
conns = []
for i in range(200):
    c = Conn(TCP)
    c.send(req("GET", "/hello"))
    r = c.response()
    if r.body != b"Hello, World!":
        report("idle: request %d" % i, False, r)
    conns.append(c)
report("idle: 200 kept connections each served once", len(conns) == 200)
t0 = time.monotonic()
c = Conn(TCP)
c.send(req("GET", "/hello"))
r = c.response()
report("idle: with 200 idle kept connections on 1 x 1, a new request is answered",
       r.body == b"Hello, World!", r)
conns[0].send(req("GET", "/params?again"))
r = conns[0].response()
report("idle: the oldest kept connection still serves", b"QUERY_STRING=again" in r.body, r)
report("idle: every kept connection is still open", not any(x.closed(0.01) for x in conns[1:]))
for x in conns:
    x.close()
PY

# ---------------------------------------------------------------- stopping

# A stopping worker: the response in flight says Connection: close and its
# connection closes; an idle kept connection is closed (README: Behind an
# HTTP reverse proxy).
PS=$(free_port)
start_corral --listen "http:tcp:127.0.0.1:$PS" --handler "$DEMO_SO" --processes 1 --threads 2 ||
    finish
py_checks "$PS" "$CORRAL_PIDFILE" <<'PY'
import os, signal, sys, time
from http_raw import Conn, req
from lib_protocols import report
TCP = "tcp:127.0.0.1:%s" % sys.argv[1]
idle = Conn(TCP)
idle.send(req("GET", "/hello"))
r = idle.response()
report("stopping: before the stop a response keeps the connection", r.header("Connection") is None, r)
busy = Conn(TCP)
busy.send(req("GET", "/slow?ms=1000"))
time.sleep(0.3)
os.kill(int(open(sys.argv[2]).read()), signal.SIGTERM)
r = busy.response()
report("stopping: the response in flight says Connection: close",
       r.status == 200 and r.header("Connection") == "close", r)
report("stopping: ... and its connection closes", busy.closed(3))
report("stopping: the idle kept connection is closed", idle.closed(5))
PY
stop_corral

# ---------------------------------------------------------------- trusted proxies

# X-Forwarded-For / -Proto and Forwarded are believed from --trusted-proxies
# only (the main corral above has none).
PT=$(free_port)
start_corral --listen "http:tcp:127.0.0.1:$PT" --listen "http:unix:$T/t.sock" \
    --handler "$DEMO_SO" --processes 1 --threads 2 \
    --trusted-proxies 127.0.0.1 --trusted-proxies 10.0.0.0/8 || finish
py_checks "$P" "$PT" "$T/t.sock" "$H" <<'PY'
import sys
from http_raw import Conn, req
from lib_protocols import report

def params(port, headers):
    c = Conn(port if port.startswith("unix:") else "tcp:127.0.0.1:%s" % port)
    c.send(req("GET", "/params", headers=headers))
    r = c.response()
    c.close()
    return dict(l.split("=", 1) for l in r.body.decode("latin-1").splitlines() if "=" in l)

untrusted, trusted = sys.argv[1], sys.argv[2]
p = params(untrusted, ["X-Forwarded-For: 6.6.6.6", "X-Forwarded-Proto: https",
                       "Forwarded: for=7.7.7.7;proto=https"])
report("untrusted peer: X-Forwarded-For and Forwarded are not believed",
       p.get("REMOTE_ADDR") == "127.0.0.1" and "HTTPS" not in p, p)
report("untrusted peer: the headers still reach the app",
       p.get("HTTP_X_FORWARDED_FOR") == "6.6.6.6", p)
cases = [
    (["X-Forwarded-For: 6.6.6.6"], "6.6.6.6", None),
    (["X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.1.2.3"], "203.0.113.9", None),
    (["X-Forwarded-For: 6.6.6.6, 10.1.2.3"], "6.6.6.6", None),
    (["X-Forwarded-For: 2001:db8::5", "X-Forwarded-Proto: https"], "2001:db8::5", "on"),
    (["X-Forwarded-For: not-an-address"], "127.0.0.1", None),
    (["Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1"],
     "2001:db8:cafe::17", "on"),
    (["Forwarded: for=192.0.2.60;proto=http, for=10.9.9.9",
      "X-Forwarded-For: 6.6.6.6"], "192.0.2.60", None),
    (["X-Forwarded-Proto: http, https"], "127.0.0.1", "on"),
]
p = params("unix:" + sys.argv[3], ["X-Forwarded-For: 6.6.6.6"])
report("trusted proxies given: a unix socket peer is believed", p.get("REMOTE_ADDR") == "6.6.6.6", p)
p = params("unix:" + sys.argv[4], ["X-Forwarded-For: 6.6.6.6"])
report("no trusted proxies: a unix socket peer is not believed (REMOTE_ADDR empty)",
       p.get("REMOTE_ADDR") == "", p)
for headers, addr, https in cases:
    p = params(trusted, headers)
    report("trusted proxy: %s: REMOTE_ADDR=%s HTTPS=%s" % ("; ".join(headers), addr, https),
           p.get("REMOTE_ADDR") == addr and p.get("HTTPS") == https, p)
PY

# ---------------------------------------------------------------- WSGI

APP=$top_srcdir/tests/apps/wsgi_app.py
if "$CORRAL" --version 2>/dev/null | grep -q '^wsgi: Python'; then
    PW=$(free_port)
    start_corral --listen "http:tcp:127.0.0.1:$PW" --wsgi-file "$APP" --processes 1 --threads 2 \
        --trusted-proxies 127.0.0.1 || finish
    py_checks "$PW" <<'PY'
import os, sys
from http_raw import Conn, req, chunked
from lib_protocols import report
TCP = "tcp:127.0.0.1:%s" % sys.argv[1]
c = Conn(TCP)
c.send(req("GET", "/environ?a=1", headers=["X-Latin: caf\xe9"]))
r = c.response()
b = r.body.decode("utf-8")
for want in ("REQUEST_METHOD='GET'", "PATH_INFO='/environ'", "QUERY_STRING='a=1'",
             "SCRIPT_NAME=''", "wsgi.version=(1, 0)", "wsgi.url_scheme='http'",
             "wsgi.input_terminated=True", "HTTP_X_LATIN='caf\u00e9'",
             "HTTP_CONTENT_TYPE=None", "HTTP_CONTENT_LENGTH=None"):
    report("wsgi: environ has %s" % want, want in b, b)
c.send(req("GET", "/environ", headers=["X-Forwarded-Proto: https"]))
r = c.response()
report("wsgi: X-Forwarded-Proto https from a trusted proxy: wsgi.url_scheme https",
       b"wsgi.url_scheme='https'" in r.body, r.body)
big = os.urandom(1 << 20)
c.send(req("POST", "/echo", body=big))
r = c.response()
report("wsgi: a 1 MiB POST echoed on the kept connection", r.body == big, (r.status, len(r.body)))
lines = b"".join(b"line %d\n" % i for i in range(3000))
c.send(req("POST", "/iter", headers=["Transfer-Encoding: chunked"]) + chunked(lines))
r = c.response()
report("wsgi: a chunked body read to its end (wsgi.input_terminated)",
       r.body == b"3000 lines, %d bytes" % len(lines), r)
c.send(req("GET", "/gen"))
r = c.response()
report("wsgi: a generator response goes out chunked", r.chunked and r.status == 200, r)
c.send(req("GET", "/hello"))
report("wsgi: and the connection goes on", c.response().body == b"Hello, World!")
c.close()
PY
    # Hop-by-hop headers from the app: the listener frames the body itself.
    PH=$(free_port)
    start_corral --listen "http:tcp:127.0.0.1:$PH" --wsgi-file "$top_srcdir/tests/apps/wsgi_http.py" \
        --processes 1 --threads 2 || finish
    py_checks "$PH" <<'PY'
import sys
from http_raw import Conn, req
from lib_protocols import report
c = Conn("tcp:127.0.0.1:%s" % sys.argv[1])
c.send(req("GET", "/te"))
r = c.response()
report("wsgi: the app's Transfer-Encoding is dropped, the listener chunks the body once",
       r.body == b"abcdef" and r.headers_named("Transfer-Encoding") == ["chunked"], r)
c.send(req("GET", "/keep"))
r = c.response()
report("wsgi: the app's Connection header is not passed on", r.header("Connection") is None, r)
c.send(req("GET", "/close"))
r = c.response()
report("wsgi: the app's Connection: close closes the connection, said once",
       r.body == b"ok" and r.headers_named("Connection") == ["close"] and c.closed(), r)
PY
else
    fail "wsgi: corral was built without Python" "configure --with-python (contrib/install-deps.sh)"
fi

# ---------------------------------------------------------------- nginx

# nginx proxy_pass with an upstream keepalive pool (HTTP/1.1, Connection
# cleared), to the TCP listener: REMOTE_PORT names nginx's connection, so
# the number of distinct ports shows the connections were reused.
need nginx nginx-light
PN=$(free_port)
ERROR_LOGS="$MAIN_LOG"
start_nginx "
    upstream corral_http {
        server 127.0.0.1:$P;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$PN;
        location / {
            proxy_pass http://corral_http;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$host:\$server_port;
            proxy_request_buffering off;
            proxy_buffering off;
        }
    }
" || finish
frontend_checks "nginx proxy_pass" "$PN"
stream_check "nginx proxy_pass" "$PN"
chunked_echo_check "nginx proxy_pass" "http://127.0.0.1:$PN/echo"
ports=$(for i in $(seq 1 40); do curl -s "http://127.0.0.1:$PN/params?i=$i" | sed -n 's/^REMOTE_PORT=//p'; done | sort -u | wc -l)
expect_lt "nginx proxy_pass: 40 requests over at most a few kept upstream connections" "$ports" 9
curl_req "http://127.0.0.1:$PN/params?x=1" -H 'X-Forwarded-For: 6.6.6.6'
expect_file_match "nginx proxy_pass: REMOTE_ADDR is nginx's (X-Forwarded-For is not believed)" \
    '^REMOTE_ADDR=127.0.0.1$' "$T/body"

unexpected=$(unexpected_lines "$MAIN_LOG" | grep -E ' (error|crit) ' | grep -v 'bad request: HTTP')
expect_eq "no unexpected errors in corral's log" "" "$unexpected"

finish
