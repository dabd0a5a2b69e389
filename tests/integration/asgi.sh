#!/bin/bash
# asgi.sh -- ASGI 3.0 apps (--asgi): the raw app tests/apps/asgi_app.py on
# uwsgi, SCGI, FastCGI and the http listener at once on 1 process x 1 thread
# (the scope, body echo, headers, status codes, streaming, a response bigger
# than the socket takes while the reader is slow and another request is
# served meanwhile, errors), 1,000 concurrent sleeping requests on 1 x 1,
# many keep-alive requests at once each answered with its own body and a
# slow pipelining reader among busy connections (a response's last message
# written at once by send(), a full socket awaited), the
# front end going away (http.disconnect reaches the app), WebSocket echo and
# broadcast and close codes (directly, behind nginx proxy_pass with Upgrade
# and behind Caddy's reverse_proxy), lifespan startup
# and shutdown (a failed startup exits 1 with the traceback; an app without
# lifespan runs), Starlette and FastAPI apps behind nginx (uwsgi_pass and
# fastcgi_pass with keep-conn) and over the http listener, a reload under
# load with no failed request, slowlog and harakiri for a loop blocked by
# time.sleep, and a body the app does not read followed by the next request
# on the kept connection (http, FastCGI, nginx keep-conn; 1 x 1 and 1 x 4).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-360}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
need nginx nginx-light
APPS=$top_srcdir/tests/apps
"$APP_PY" -c 'import starlette, fastapi, multipart' 2>/dev/null ||
    { fail "requirement: python3-starlette python3-fastapi python3-multipart" \
        "apt-get install python3-starlette python3-fastapi python3-multipart (contrib/install-deps.sh)"; finish; }
ulimit -n 8192 2>/dev/null || ulimit -n 4096
LOG1=$T/app1.log
HP=$(free_port)

# ---- the raw app on the four protocols, 1 x 1
start_corral --listen "uwsgi:unix:$T/u.sock" --listen "scgi:unix:$T/s.sock" \
    --listen "fastcgi:unix:$T/f.sock" --listen "http:tcp:127.0.0.1:$HP" \
    --asgi asgi_app:app --pythonpath "$APPS" --processes 1 --threads 1 --chmod 0666 \
    --max-conns 2000 --env "ASGI_TEST_LOG=$LOG1" --control "$T/ctl.sock" \
    --status-path /corral-status || finish
expect_file_match "lifespan startup ran in the worker" '^startup [0-9]+' "$LOG1"
expect_file_match "the log says the startup completed" 'asgi: lifespan: startup complete' "$CORRAL_LOG"

PY_TIMEOUT=180 py_checks "$T" "$HP" <<'PY'
import asyncio, json, os, re, socket, sys, time
from lib_protocols import header, http_request, report, request
T, port = sys.argv[1], int(sys.argv[2])
socks = {"uwsgi": "unix:%s/u.sock" % T, "scgi": "unix:%s/s.sock" % T,
         "fastcgi": "unix:%s/f.sock" % T, "http": port}
big = os.urandom(1 << 20)

def req(proto, method, uri, body=b"", extra=None):
    if proto == "http":
        hdrs = {}
        for k, v in (extra or {}).items():
            hdrs[k[5:].replace("_", "-").title()] = v
        st, h, b, _ = http_request(port, method, uri, body, hdrs, timeout=20)
        return st, h, b
    return request(proto, socks[proto], method, uri, body, extra, timeout=20)

for proto in socks:
    st, h, b = req(proto, "GET", "/hello")
    report("%s: /hello 200 Hello, World!" % proto, (st, b) == (200, b"Hello, World!"), (st, b))
    report("%s: a whole body gets its Content-Length" % proto,
           header(h, "Content-Length") == "13", h)
    st, h, b = req(proto, "GET", "/scope?a=1&b=%20", extra={"HTTP_X_TEST": "yes"})
    s = json.loads(b)
    report("%s: scope type http, asgi 3.0" % proto,
           (s["type"], s["asgi"]["version"]) == ("http", "3.0"), s)
    report("%s: scope method, path, query_string" % proto,
           (s["method"], s["path"], s["query_string"]) == ("GET", "/scope", "a=1&b=%20"), s)
    report("%s: scope raw_path and root_path" % proto,
           (s["raw_path"], s["root_path"]) == ("/scope", ""), s)
    report("%s: scope http_version and scheme" % proto,
           s["http_version"] in ("1.0", "1.1") and s["scheme"] == "http", s)
    report("%s: scope headers are [bytes, bytes] lists, names lower-case" % proto,
           s["types"] == {"headers": "list", "header": "list", "name": "bytes"} and
           ["x-test", "yes"] in s["headers"], s)
    report("%s: scope client and server" % proto,
           s["client"] is not None and s["server"] is not None and
           isinstance(s["server"][1], int), s)
    report("%s: the lifespan state reaches the request" % proto,
           s["state"] == {"greeting": "hello from startup"}, s)
    st, h, b = req(proto, "POST", "/echo", big)
    report("%s: a 1 MiB body is echoed byte-exact" % proto, st == 200 and b == big, (st, len(b)))
    st, h, b = req(proto, "POST", "/echo", b"")
    report("%s: an empty body echoes nothing" % proto, (st, b) == (200, b""), (st, b))
    for code in (201, 404, 418, 503):
        st, h, b = req(proto, "GET", "/status?code=%d" % code)
        report("%s: status %d" % (proto, code), (st, b) == (code, b"status %d" % code), (st, b))
    st, h, b = req(proto, "GET", "/headers")
    cookies = [v for k, v in h if k.lower() == "set-cookie"]
    report("%s: the app's headers, repeated ones kept" % proto,
           st == 201 and header(h, "x-one") == "1" and header(h, "x-two") == "2" and
           cookies == ["a=1", "b=2"], h)
    st, h, b = req(proto, "GET", "/stream?n=50")
    report("%s: a streamed body (more_body)" % proto,
           st == 200 and b == b"".join(b"chunk %d\n" % i for i in range(50)), (st, b[:80]))
    st, h, b = req(proto, "GET", "/big?n=3000000")
    report("%s: a 3 MB body" % proto, st == 200 and b == b"x" * 3000000, (st, len(b)))
    st, h, b = req(proto, "GET", "/raise")
    report("%s: an exception before the response answers 500" % proto, st == 500, (st, b))
    st, h, b = req(proto, "GET", "/noresponse")
    report("%s: an app that returns without a response gets a 500" % proto, st == 500, (st, b))

# Pipelined requests on one kept connection: the ones already buffered when
# a response ends are served by a worker thread, in order.
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /sleep?ms=20 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
          b"GET /status?code=202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
s.settimeout(20)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
s.close()
order = [data.find(x) for x in (b"Hello, World!", b"slept", b"abc", b"status 202")]
report("http: 4 pipelined requests answered in order",
       data.count(b"HTTP/1.1 ") == 4 and -1 not in order and order == sorted(order), data[-300:])

# A body that arrives slowly streams to the app in several http.request
# messages, and the one thread serves other requests meanwhile.
up = socket.create_connection(("127.0.0.1", port))
up.sendall(b"POST /count-body HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n"
           b"Connection: close\r\n\r\n")
served = []
for i in range(3):
    up.sendall(b"b" * 100000)
    time.sleep(0.3)
    st, h, b = req("http", "GET", "/hello")
    served.append((st, b) == (200, b"Hello, World!"))
up.settimeout(20)
data = b""
while True:
    d = up.recv(65536)
    if not d:
        break
    data += d
up.close()
msgs = int(data.split(b"\r\n\r\n", 1)[1].split()[0]) if b" messages, 300000 bytes" in data else 0
report("a slow upload reaches the app in pieces (more_body)", msgs >= 3, data[-80:])
report("... and 1 x 1 serves other requests while it arrives", all(served), served)

# Back-pressure: a reader that takes nothing leaves a 20 MB response waiting
# (the loop awaits the socket); the loop serves another request meanwhile,
# and the whole body arrives once the reader reads.
slow = socket.create_connection(("127.0.0.1", port))
slow.sendall(b"GET /big?n=20000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(0.3)
st, h, b = req("http", "GET", "/hello")
report("back-pressure: a request is served while a 20 MB response waits for its reader",
       (st, b) == (200, b"Hello, World!"), (st, b))
got = 0
slow.settimeout(20)
data = bytearray()
while True:
    d = slow.recv(1 << 16)
    if not d:
        break
    data += d
slow.close()
sep = data.find(b"\r\n\r\n")
report("back-pressure: the waiting 20 MB response then arrives whole",
       len(data) - sep - 4 == 20000000, len(data))

# 1,000 concurrent requests whose app awaits asyncio.sleep(0.01), on 1 x 1.
async def one(i):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /sleep?ms=10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    d = await r.read()
    w.close()
    return d.startswith(b"HTTP/1.1 200") and d.endswith(b"slept")

async def burst(n):
    return await asyncio.wait_for(asyncio.gather(*[one(i) for i in range(n)]), 30)
t0 = time.monotonic()
res = asyncio.run(burst(1000))
report("1,000 concurrent sleeping requests on 1 process x 1 thread all answered "
       "(%.2f s)" % (time.monotonic() - t0), sum(res) == 1000, sum(res))

# The loop's process collects its youngest generation every 50,000 allocations, not 700, and
# what the app and its startup made is out of every collection (gc.freeze).
st, h, b = req("http", "GET", "/gc")
report("the collector's youngest generation: every 50,000 allocations",
       st == 200 and json.loads(b)[0][0] == 50000, (st, b))
report("the objects made before the first request are frozen (out of the collections)",
       st == 200 and json.loads(b)[1] > 1000, (st, b))

# The worker's event loop is asyncio's with its callbacks and timers in C (LoopCore,
# app_asgi_loop.c); they run in asyncio's order (--asgi-loop asyncio below: the same).
st, h, b = req("http", "GET", "/loop")
probe = json.loads(b) if st == 200 else {}
report("the event loop is corral's (LoopCore, then asyncio's selector loop)",
       probe.get("classes", [""])[1:3] == ["LoopCore", "_UnixSelectorEventLoop"], (st, b))
LOOP_ORDER = ["soon1", "context=request", "soon2", "at1", "at2"]
report("its callbacks and timers run in asyncio's order (none cancelled, in the caller's "
       "context, a raising one to the exception handler)",
       probe.get("order") == LOOP_ORDER and probe.get("errors") == ["ZeroDivisionError"] and
       probe.get("cancelled") == [True, True] and probe.get("when") and probe.get("monotonic"),
       probe)

# getpid from memory in the worker (src/core/pid_cache.c): the kernel's answer in the worker
# and in a child the app forks.
st, h, b = req("http", "GET", "/pid")
pids = json.loads(b) if st == 200 else {}
report("os.getpid() in the worker is its pid, and in a child it forks the child's",
       st == 200 and pids["pid"] == pids["proc"] and pids["child"] == pids["child_getpid"] ==
       pids["child_proc"] != pids["pid"], (st, b))

# Many requests in flight, bodies on both sides of one written piece (8 KiB) and of the
# old 1 KiB hand-over; each of 200 keep-alive connections sends 8 requests in turn, every
# body its own.
async def read_reply(r):
    head = await r.readuntil(b"\r\n\r\n")
    n = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    return head.split(b" ", 2)[1], await r.readexactly(n)

SIZES = (0, 1, 700, 1024, 1025, 3000, 8192, 8193)
async def keep(i):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    bad = []
    for j, size in enumerate(SIZES):
        body = (b"conn %d request %d " % (i, j) * 600)[:size]
        w.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + body)
        try:
            st, got = await read_reply(r)
        except (OSError, EOFError, AttributeError, asyncio.IncompleteReadError) as e:
            st, got = repr(e).encode(), b""
        if (st, got) != (b"200", body):
            bad.append((i, j, size, st, got[:40]))
            break
    w.close()
    return bad

async def keeps(n):
    return await asyncio.wait_for(asyncio.gather(*[keep(i) for i in range(n)]), 60)
bad = sum(asyncio.run(keeps(200)), [])
report("200 keep-alive connections x 8 requests at once (bodies of 0 to 8193 bytes): each "
       "answered with its own body, in order", not bad, bad[:5])

# A reader that does not keep up, pipelining 150 requests for 1,000-byte bodies while 50 other
# connections keep requests in flight: every response arrives
# whole and in order.
async def busy(stop):
    n = 0
    while not stop.is_set():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET /sleep?ms=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        n += (await r.read()).endswith(b"slept")
        w.close()
    return n

async def slow_reader():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.setblocking(False)
    await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
    r, w = await asyncio.open_connection(sock=s)
    for i in range(150):
        w.write(b"GET /big?n=1000&i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    await w.drain()
    await asyncio.sleep(1)  # the server's socket fills meanwhile
    got = []
    for i in range(150):
        try:
            st, body = await read_reply(r)
        except (OSError, EOFError, AttributeError, asyncio.IncompleteReadError) as e:
            got.append((repr(e), 0))
            break
        got.append((st, len(body)))
        if i % 10 == 0:
            await asyncio.sleep(0.02)
    w.close()
    return got

async def slow_among_busy():
    stop = asyncio.Event()
    others = [asyncio.ensure_future(busy(stop)) for _ in range(50)]
    got = await asyncio.wait_for(slow_reader(), 60)
    stop.set()
    return got, sum(await asyncio.wait_for(asyncio.gather(*others), 30))
got, served = asyncio.run(slow_among_busy())
report("a slow pipelining reader among 50 busy connections: its 150 responses of 1,000 bytes "
       "arrive whole (%d served meanwhile)" % served,
       got == [(b"200", 1000)] * 150 and served > 0, [g for g in got if g != (b"200", 1000)][:5])
PY

# ---- requests in flight: 1,000 held by the event loop of 1 x 1 show in corralctl status and
# workers, the status page and OpenMetrics (the per-thread view would say 1 busy at most)
PY_TIMEOUT=60 py_checks "$T" "$HP" "$CTL" <<'PY'
import asyncio, json, re, subprocess, sys, time
from lib_protocols import http_request, report
T, port, ctl = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def status(cmd):
    out = subprocess.run([ctl, "-s", T + "/ctl.sock", "--json", cmd], capture_output=True,
                         timeout=20).stdout
    return json.loads(out)

def page(uri):
    st, h, b, _ = http_request(port, "GET", uri, timeout=20)
    return b

async def one():
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /sleep?ms=4000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    d = await r.read()
    w.close()
    return d.endswith(b"slept")

async def main():
    tasks = [asyncio.ensure_future(one()) for _ in range(1000)]
    await asyncio.sleep(1.5)
    loop = asyncio.get_running_loop()
    st = await loop.run_in_executor(None, status, "status")
    wk = await loop.run_in_executor(None, status, "workers")
    js = json.loads(await loop.run_in_executor(None, page, "/corral-status"))
    om = (await loop.run_in_executor(None, page, "/corral-status?openmetrics")).decode()
    ok = await asyncio.wait_for(asyncio.gather(*tasks), 40)
    return st, wk, js, om, ok

st, wk, js, om, ok = asyncio.run(main())
report("in flight: the 1,000 sleeping requests were answered", sum(ok) == 1000, sum(ok))
n = st["pool"]["requests_in_flight"]
report("corralctl status: hundreds of requests in flight on 1 x 1 (%d)" % n, n >= 500, n)
n = wk["workers"][0]["requests_in_flight"]
report("corralctl workers: the worker has hundreds in flight (%d)" % n, n >= 500, n)
n = [w["requests_in_flight"] for w in js["in_flight"]]
report("status page: in_flight per worker shows hundreds (%s)" % n, len(n) == 1 and n[0] >= 500, n)
m = re.search(r'^corral_requests_in_flight\{worker="0"\} (\d+)$', om, re.M)
report("OpenMetrics: corral_requests_in_flight{worker=\"0\"} shows hundreds",
       m is not None and int(m.group(1)) >= 500, m and m.group(0))
end = time.monotonic() + 10
while status("status")["pool"]["requests_in_flight"] > 0 and time.monotonic() < end:
    time.sleep(0.1)
n = status("status")["pool"]["requests_in_flight"]
report("in flight: back to 0 once they are answered", n == 0, n)
PY

check_log_lines() {
    expect_file_match "the traceback of /raise is logged" 'asgi: GET /raise: ValueError: raised on purpose' "$CORRAL_LOG"
    expect_file_match "an app without a response is logged" 'returned without a response' "$CORRAL_LOG"
}
check_log_lines

# ---- the front end goes away: http.disconnect reaches the app
PY_TIMEOUT=30 py_checks "$T" "$HP" <<'PY'
import socket, sys, time
from lib_protocols import connect, report, uwsgi_packet, cgi_params
T, port = sys.argv[1], int(sys.argv[2])
log = T + "/app1.log"
def count():
    try:
        return open(log).read().count("disconnect http.disconnect")
    except OSError:
        return 0
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.3)
before = count()
s.close()
end = time.monotonic() + 10
while count() == before and time.monotonic() < end:
    time.sleep(0.05)
report("http: the client closes, the app receives http.disconnect", count() == before + 1, count())
s = connect("unix:%s/u.sock" % T)
s.sendall(uwsgi_packet(cgi_params("GET", "/wait-disconnect")))
time.sleep(0.3)
s.close()
end = time.monotonic() + 10
while count() == before + 1 and time.monotonic() < end:
    time.sleep(0.05)
report("uwsgi: the front end closes, the app receives http.disconnect", count() == before + 2,
       count())

# FastCGI keep-conn: the request's records are all in, the connection stays open; the front
# end then gives the request up (ABORT_REQUEST), or sends other bytes and closes.
from lib_protocols import (FCGI_ABORT_REQUEST, FCGI_STDIN, fcgi_begin, fcgi_params_records,
                           fcgi_record, recv_all)
def fcgi_wait(req_id):
    s = connect("unix:%s/f.sock" % T)
    s.sendall(fcgi_begin(req_id, keep_conn=True) +
              fcgi_params_records(cgi_params("GET", "/wait-disconnect"), req_id) +
              fcgi_record(FCGI_STDIN, req_id))
    time.sleep(0.3)
    return s
def wait_count(n):
    end = time.monotonic() + 10
    while count() < n and time.monotonic() < end:
        time.sleep(0.05)
    return count()
s = fcgi_wait(7)
s.sendall(fcgi_record(FCGI_ABORT_REQUEST, 8))  # another request's: nothing happens
time.sleep(0.5)
report("fastcgi keep-conn: an ABORT_REQUEST for another id is not this request's",
       count() == before + 2, count())
s.sendall(fcgi_record(FCGI_ABORT_REQUEST, 7))
report("fastcgi keep-conn: ABORT_REQUEST reaches the app as http.disconnect",
       wait_count(before + 3) == before + 3, count())
s.settimeout(10)
rest = recv_all(s)
report("fastcgi keep-conn: ... and the connection is closed with nothing more", rest == b"", rest)
s.close()
s = fcgi_wait(9)
s.sendall(fcgi_record(FCGI_ABORT_REQUEST, 10)[:5])  # bytes, then the close
time.sleep(0.2)
s.close()
report("fastcgi keep-conn: bytes then the close still reach the app as http.disconnect",
       wait_count(before + 4) == before + 4, count())
PY

# Behind nginx fastcgi_pass with fastcgi_keep_conn on: a client that goes away
KP=$(free_port)
start_nginx "
    upstream keep_fcgi { server unix:$T/f.sock; keepalive 4; }
    server {
        listen 127.0.0.1:$KP;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass keep_fcgi;
            fastcgi_keep_conn on;
        }
    }" || finish
disconnects() { grep -c 'disconnect http.disconnect' "$LOG1"; }
before=$(disconnects)
curl -s -m 1 -o /dev/null "http://127.0.0.1:$KP/wait-disconnect"
more_disconnects() { [ "$(disconnects)" -gt "$before" ]; }
wait_until 10 more_disconnects
expect_eq "nginx fastcgi_keep_conn: the client goes away, the app receives http.disconnect" \
    "$((before + 1))" "$(disconnects)"
curl_req "http://127.0.0.1:$KP/hello"
expect_eq "nginx fastcgi_keep_conn: the next request is served" "200 Hello, World!" \
    "$HTTP_CODE $(cat "$T/body")"
kill "$NGINX_PID"
nginx_gone() { ! kill -0 "$NGINX_PID" 2>/dev/null; }
wait_until 10 nginx_gone

stop_corral
expect_eq "graceful stop: status 0" 0 "$CORRAL_STATUS"
expect_file_match "lifespan shutdown ran at the stop" '^shutdown [0-9]+' "$LOG1"

# ---- lifespan: a failed startup is a start-up error; none at all is fine
run_corral fail --listen "uwsgi:unix:$T/x.sock" --asgi asgi_app:app --pythonpath "$APPS" \
    --env ASGI_TEST_LIFESPAN=fail
expect_eq "a failed lifespan startup: corral exits 1" 1 "$RC"
expect_match "... with the app's message in the log" 'lifespan.startup.failed: the database is not there' "$OUT"
run_corral fastapi-fail --listen "uwsgi:unix:$T/x.sock" --asgi asgi_fastapi:app \
    --pythonpath "$APPS" --env ASGI_TEST_LIFESPAN=fail
expect_eq "a FastAPI startup that raises: corral exits 1" 1 "$RC"
expect_match "... with the traceback in the log" 'RuntimeError: FastAPI startup failed on purpose' "$OUT"
expect_match "... naming the app's file" 'asgi_fastapi.py", line [0-9]+, in startup' "$OUT"
run_corral import-fail --listen "uwsgi:unix:$T/x.sock" --asgi no_such_module:app
expect_eq "an app that cannot be imported: corral exits 1" 1 "$RC"
expect_match "... with the traceback" "ModuleNotFoundError: No module named 'no_such_module'" "$OUT"
run_corral loop-fail --listen "uwsgi:unix:$T/x.sock" --asgi asgi_app:app --asgi-loop uvloop
expect_eq "--asgi-loop uvloop: corral refuses to start (exit 1)" 1 "$RC"
expect_match "... naming what it expects" "--asgi-loop: expected corral or asyncio, got 'uvloop'" "$OUT"
printf 'asgi = "asgi_app:app";\nasgi_loop = "uv";\n' >"$T/loop.conf"
run_corral loop-conf-fail -c "$T/loop.conf" --listen "uwsgi:unix:$T/x.sock"
expect_match "... and in a file, its line and key" "loop.conf:2: .*asgi_loop.*expected corral or asyncio, got 'uv'" "$OUT"
start_corral --listen "uwsgi:unix:$T/n.sock" --asgi asgi_app:app --pythonpath "$APPS" \
    --env ASGI_TEST_LIFESPAN=raise || finish
py_checks "$T" <<'PY'
import sys
from lib_protocols import report, request
st, h, b = request("uwsgi", "unix:%s/n.sock" % sys.argv[1], "GET", "/hello")
report("an app that raises on the lifespan scope is served (lifespan unsupported)",
       (st, b) == (200, b"Hello, World!"), (st, b))
PY
expect_file_match "... and the log says lifespan is unsupported" 'lifespan: not supported by the app' "$CORRAL_LOG"
stop_corral
# A task factory the app sets at startup makes every request's task.
start_corral --listen "uwsgi:unix:$T/f.sock" --asgi asgi_app:app --pythonpath "$APPS" \
    --env ASGI_TEST_LIFESPAN=factory || finish
py_checks "$T" <<'PY'
import sys
from lib_protocols import report, request
sock = "unix:%s/f.sock" % sys.argv[1]
st0, h, b0 = request("uwsgi", sock, "GET", "/factory")
for _ in range(3):
    request("uwsgi", sock, "GET", "/hello")
st, h, b = request("uwsgi", sock, "GET", "/factory")
report("a task factory the app set at startup makes the requests' tasks (4 of 4)",
       st0 == st == 200 and int(b) - int(b0) == 4, (st0, b0, st, b))
PY
stop_corral
# asyncio's own loop (--asgi-loop asyncio): the same order, 1,000 sleeping requests.
AP=$(free_port)
start_corral --listen "http:tcp:127.0.0.1:$AP" --asgi asgi_app:app --pythonpath "$APPS" \
    --asgi-loop asyncio --processes 1 --threads 1 --max-conns 2000 || finish
py_checks "$AP" <<'PY'
import asyncio, json, sys
from lib_protocols import http_request, report
port = int(sys.argv[1])
st, h, b, _ = http_request(port, "GET", "/loop", timeout=20)
probe = json.loads(b) if st == 200 else {}
report("--asgi-loop asyncio: the standard library's loop (no LoopCore)",
       probe.get("classes", [""])[0] == "_UnixSelectorEventLoop" and
       "LoopCore" not in probe.get("classes", []), (st, b))
report("... its callbacks and timers in the same order",
       probe.get("order") == ["soon1", "context=request", "soon2", "at1", "at2"] and
       probe.get("errors") == ["ZeroDivisionError"], probe)

async def one():
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /sleep?ms=100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await r.read()
    w.close()
    return data.startswith(b"HTTP/1.1 200")

async def burst(n):
    return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), 30)
res = asyncio.run(burst(1000))
report("... 1,000 concurrent sleeping requests all answered", sum(res) == 1000, sum(res))
PY
stop_corral

# ---- Starlette and FastAPI behind nginx and over the http listener
LOG2=$T/app2.log
SP=$(free_port)
FP=$(free_port)
NP=$(free_port)
# Starlette on one process: its WebSocket broadcast keeps its clients in the process.
start_corral --listen "uwsgi:unix:$T/su.sock" --listen "http:tcp:127.0.0.1:$SP" \
    --asgi asgi_starlette:app --pythonpath "$APPS" --processes 1 --threads 2 --chmod 0666 \
    --env "ASGI_TEST_LOG=$LOG2" || finish
STAR_PID=$CORRAL_PID
start_corral --listen "fastcgi:unix:$T/ff.sock" --listen "http:tcp:127.0.0.1:$FP" \
    --asgi asgi_fastapi:app --pythonpath "$APPS" --processes 2 --threads 2 --chmod 0666 \
    --env "ASGI_TEST_LOG=$LOG2" || finish
FAST_PID=$CORRAL_PID
start_nginx "
    upstream fast_fcgi {
        server unix:$T/ff.sock;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$NP;
        location /s/ {
            include /etc/nginx/uwsgi_params;
            rewrite ^/s(/.*)\$ \$1 break;
            uwsgi_param PATH_INFO \$uri;
            uwsgi_pass unix:$T/su.sock;
        }
        location /ws/ {
            proxy_pass http://127.0.0.1:$SP;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_read_timeout 60s;
        }
        location /f/ {
            rewrite ^/f(/.*)\$ \$1 break;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME \"\";
            fastcgi_param PATH_INFO \$uri;
            fastcgi_pass fast_fcgi;
            fastcgi_keep_conn on;
        }
    }
" || finish
expect_file_match "Starlette's lifespan startup ran" 'starlette startup' "$LOG2"
expect_file_match "FastAPI's startup event ran" 'fastapi startup' "$LOG2"

PY_TIMEOUT=90 py_checks "$T" "$NP" "$SP" "$FP" <<'PY'
import json, os, sys, time, urllib.request, urllib.error
from lib_protocols import report
T = sys.argv[1]
np, sp, fp = (int(x) for x in sys.argv[2:5])
def get(url, data=None, headers=None, method=None):
    rq = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(rq, timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

def multipart(fields, files):
    b = "----corraltest%d" % os.getpid()
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
    for k, (name, data) in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (b, k, name)).encode()
        out += data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=%s" % b

blob = os.urandom(700000)
def log_has(line):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            if line in open(T + "/app2.log").read():
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False

for name, base in (("starlette via nginx uwsgi_pass", "http://127.0.0.1:%d/s" % np),
                   ("starlette over the http listener", "http://127.0.0.1:%d" % sp)):
    st, h, b = get(base + "/json?x=1")
    report("%s: JSON" % name, st == 200 and json.loads(b) ==
           {"hello": "world", "n": [1, 2, 3], "query": {"x": "1"}}, (st, b))
    report("%s: JSON content type" % name, h.get("content-type") == "application/json", h)
    body, ctype = multipart({"a": "1", "b": "two"}, {"f": ("blob.bin", blob)})
    st, h, b = get(base + "/form", body, {"Content-Type": ctype})
    d = json.loads(b) if st == 200 else {}
    report("%s: a multipart form with a 700 kB upload" % name,
           d.get("a") == "1" and d.get("b") == "two" and
           d.get("f") == {"filename": "blob.bin", "size": len(blob), "sum": sum(blob) % 65536},
           (st, b[:300]))
    st, h, b = get(base + "/form", b"k=v&n=%C3%A9", {"Content-Type": "application/x-www-form-urlencoded"})
    report("%s: an urlencoded form" % name, st == 200 and json.loads(b) == {"k": "v", "n": "\u00e9"},
           (st, b))
    st, h, b = get(base + "/stream?n=100")
    report("%s: StreamingResponse" % name,
           st == 200 and b == "".join("line %d\n" % i for i in range(100)).encode(), (st, b[:100]))
    tag = name.split()[-1]
    st, h, b = get(base + "/background?tag=" + tag)
    report("%s: a background task runs after the response" % name,
           (st, b) == (200, b"queued") and log_has("background " + tag), (st, b))
    st, h, b = get(base + "/status/418")
    report("%s: status 418 with a custom header" % name,
           st == 418 and h.get("x-custom") == "yes" and b == b"status 418", (st, h))
    st, h, b = get(base + "/headers", headers={"X-Hello": "there"})
    report("%s: request headers reach the app" % name,
           st == 200 and json.loads(b).get("x-hello") == "there", (st, b))
    st, h, b = get(base + "/echo", blob)
    report("%s: a 700 kB body echoed" % name, st == 200 and b == blob, (st, len(b)))
    st, h, b = get(base + "/state")
    report("%s: the lifespan's app.state" % name, (st, json.loads(b)) == (200, {"started": True}),
           (st, b))

for name, base in (("fastapi via nginx fastcgi_pass keep-conn", "http://127.0.0.1:%d/f" % np),
                   ("fastapi over the http listener", "http://127.0.0.1:%d" % fp)):
    st, h, b = get(base + "/items/7?q=hi", json.dumps({"name": "pen", "price": 1.5,
                   "tags": ["a"]}).encode(), {"Content-Type": "application/json"})
    report("%s: a typed JSON body" % name, st == 200 and json.loads(b) ==
           {"id": 7, "name": "pen", "price": 1.5, "tags": ["a"], "q": "hi"}, (st, b))
    st, h, b = get(base + "/items/7", b"{\"name\": 3}", {"Content-Type": "application/json"})
    report("%s: validation errors are 422" % name, st == 422, (st, b))
    st, h, b = get(base + "/items/0")
    report("%s: HTTPException 404" % name, st == 404 and json.loads(b) == {"detail": "no item 0"},
           (st, b))
    body, ctype = multipart({"note": "hello"}, {"file": ("up.bin", blob)})
    st, h, b = get(base + "/upload", body, {"Content-Type": ctype})
    report("%s: an UploadFile" % name, st == 200 and json.loads(b) ==
           {"note": "hello", "filename": "up.bin", "size": len(blob)}, (st, b))
    st, h, b = get(base + "/stream?n=20")
    report("%s: StreamingResponse" % name,
           st == 200 and b == b"".join(b"part %d\n" % i for i in range(20)), (st, b))
    tag = name.split()[-1]
    st, h, b = get(base + "/background?tag=" + tag)
    report("%s: BackgroundTasks" % name,
           st == 200 and log_has("fastapi background " + tag), (st, b))
    st, h, b = get(base + "/nope")
    report("%s: an unknown route is 404" % name, st == 404, (st, b))
PY

# ---- WebSocket on the http listener, directly, behind nginx proxy_pass (Upgrade)
# and behind Caddy's reverse_proxy (it passes Upgrade on by itself)
"$APP_PY" -c 'import websockets' 2>/dev/null ||
    { fail "requirement: python3-websockets" "apt-get install python3-websockets (contrib/install-deps.sh)"; finish; }
need caddy caddy
CP=$(free_port)
mkdir -p "$T/caddy"
cat >"$T/Caddyfile" <<CFG
{
    admin off
    auto_https off
    storage file_system $T/caddy
}
:$CP {
    bind 127.0.0.1
    reverse_proxy 127.0.0.1:$SP
}
CFG
XDG_DATA_HOME=$T/caddy XDG_CONFIG_HOME=$T/caddy HOME=$T/caddy \
    caddy run --config "$T/Caddyfile" --adapter caddyfile >"$T/caddy.out" 2>&1 </dev/null &
CADDY_PID=$!
_track "$CADDY_PID"
wait_until 15 port_open "$CP" || fail "start caddy" "$(tail -n 20 "$T/caddy.out")"
PY_TIMEOUT=90 py_checks "$T" "$NP" "$SP" "$CP" <<'PY'
import asyncio, sys, time
import websockets
from lib_protocols import report
T, np, sp, cp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

async def checks(name, base):
    async with websockets.connect(base + "/ws/echo", subprotocols=["chat"]) as ws:
        await ws.send("hi")
        r = await ws.recv()
        report("%s: WebSocket text echo" % name, r == "echo: hi", r)
        report("%s: the subprotocol the app accepted" % name, ws.subprotocol == "chat",
               ws.subprotocol)
        await ws.send(b"\x00\x01abc")
        r = await ws.recv()
        report("%s: WebSocket bytes echo" % name, r == b"cba\x01\x00", r)
        big = "y" * 300000
        await ws.send(big)
        r = await ws.recv()
        report("%s: a 300 kB message both ways" % name, r == "echo: " + big, len(r))
        await ws.ping()
    before = open(T + "/app2.log").read().count("ws echo disconnect")
    end = time.monotonic() + 10
    while time.monotonic() < end and open(T + "/app2.log").read().count("ws echo disconnect") == before:
        await asyncio.sleep(0.05)
    report("%s: the client's close reaches the app as websocket.disconnect" % name,
           open(T + "/app2.log").read().count("ws echo disconnect") >= 1, "")
    peers = [await websockets.connect(base + "/ws/broadcast") for _ in range(3)]
    await asyncio.sleep(0.2)
    await peers[0].send("to everyone")
    got = [await asyncio.wait_for(p.recv(), 10) for p in peers]
    report("%s: a broadcast reaches the 3 clients" % name, got == ["to everyone"] * 3, got)
    for p in peers:
        await p.close()
    try:
        async with websockets.connect(base + "/ws/refuse"):
            refused = "accepted"
    except websockets.exceptions.InvalidStatusCode as e:
        refused = e.status_code
    report("%s: a WebSocket closed before accept is refused with 403" % name, refused == 403,
           refused)
    async with websockets.connect(base + "/ws/bye") as ws:
        await ws.send("see you")
        r = await ws.recv()
        try:
            await asyncio.wait_for(ws.recv(), 10)
            closed = "not closed"
        except websockets.exceptions.ConnectionClosed as e:
            closed = (e.code, e.reason)
    report("%s: the app's close code and reason reach the client" % name,
           (r, closed) == ("bye: see you", (4001, "bye")), (r, closed))
    before = open(T + "/app2.log").read().count("ws echo disconnect 4002")
    async with websockets.connect(base + "/ws/echo") as ws:
        await ws.send("last")
        await ws.recv()
        await ws.close(code=4002, reason="done")
    end = time.monotonic() + 10
    while (time.monotonic() < end and
           open(T + "/app2.log").read().count("ws echo disconnect 4002") == before):
        await asyncio.sleep(0.05)
    report("%s: the client's close code reaches the app" % name,
           open(T + "/app2.log").read().count("ws echo disconnect 4002") == before + 1, "")

asyncio.run(checks("websocket direct", "ws://127.0.0.1:%d" % sp))
asyncio.run(checks("websocket via nginx proxy_pass Upgrade", "ws://127.0.0.1:%d" % np))
asyncio.run(checks("websocket via caddy reverse_proxy", "ws://127.0.0.1:%d" % cp))
PY

# ---- a reload under load: no failed request, the old workers' shutdown ran
PY_TIMEOUT=60 py_checks "$T" "$SP" "$STAR_PID" <<'PY'
import os, signal, sys, threading, time, urllib.request
from lib_protocols import report
T, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
stop = threading.Event()
res = {"ok": 0, "bad": []}
lock = threading.Lock()
def client():
    while not stop.is_set():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/json" % port, timeout=10) as r:
                good = r.status == 200 and b"world" in r.read()
        except Exception as e:
            good = False
            err = repr(e)
        with lock:
            if good:
                res["ok"] += 1
            else:
                res["bad"].append(err)
ws_result = {}
def ws_client():
    import asyncio, websockets
    async def run():
        async with websockets.connect("ws://127.0.0.1:%d/ws/echo" % port) as ws:
            await ws.send("before the reload")
            ws_result["echo"] = await ws.recv()
            try:
                await asyncio.wait_for(ws.recv(), 15)
            except websockets.exceptions.ConnectionClosed as e:
                ws_result["code"] = e.code
                ws_result["at"] = time.monotonic()
    asyncio.run(run())
threads = [threading.Thread(target=client) for _ in range(4)] + [threading.Thread(target=ws_client)]
for t in threads:
    t.start()
time.sleep(0.5)
hup_at = time.monotonic()
before = open(T + "/app2.log").read().count("starlette shutdown")
os.kill(pid, signal.SIGHUP)
end = time.monotonic() + 20
while time.monotonic() < end and open(T + "/app2.log").read().count("starlette shutdown") < before + 1:
    time.sleep(0.1)
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
report("reload under load: %d requests, none failed" % res["ok"], res["ok"] > 50 and not res["bad"],
       res["bad"][:5])
report("reload: an open WebSocket is closed with 1001 (going away)",
       ws_result.get("echo") == "echo: before the reload" and ws_result.get("code") == 1001,
       ws_result)
report("reload: ... at the start of the stop, not at the graceful timeout",
       ws_result.get("at", 1e9) - hup_at < 10, ws_result)
after = open(T + "/app2.log").read()
report("reload: the old worker ran the lifespan shutdown",
       after.count("starlette shutdown") >= before + 1, after)
PY
stop_corral "$FAST_PID"
expect_file_match "FastAPI's shutdown event ran at the stop" 'fastapi shutdown' "$LOG2"
stop_corral "$STAR_PID"

# ---- recycling (--max-requests): the worker's lifespan shutdown runs, no request fails
LOG3=$T/app3.log
start_corral --listen "uwsgi:unix:$T/r.sock" --asgi asgi_app:app --pythonpath "$APPS" \
    --max-requests 30 --env "ASGI_TEST_LOG=$LOG3" || finish
py_checks "$T" <<'PY'
import sys
from lib_protocols import hammer, report
good, errs, secs = hammer("uwsgi", "unix:%s/r.sock" % sys.argv[1], "/hello", 200, 4,
                          expect_body=b"Hello, World!")
report("--max-requests 30: 200 requests, none failed", good == 200, errs[:5])
PY
expect_file_match "recycling: a worker says it recycles" 'recycling' "$CORRAL_LOG"
check "recycling: each recycled worker ran the lifespan shutdown" test "$(grep -c '^shutdown' "$LOG3")" -ge 3
stop_corral

# ---- the body deadline: a body that trickles past --body-timeout is cut
start_corral --listen "uwsgi:unix:$T/b.sock" --asgi asgi_app:app --pythonpath "$APPS" \
    --body-timeout 1 --min-rate 100000 || finish
PY_TIMEOUT=30 py_checks "$T" <<'PY'
import sys, time
from lib_protocols import cgi_params, connect, report, request, uwsgi_packet
addr = "unix:%s/b.sock" % sys.argv[1]
s = connect(addr, timeout=15)
s.sendall(uwsgi_packet(cgi_params("POST", "/count-body", body_len=1000)) + b"x" * 10)
t0 = time.monotonic()
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except OSError:
    pass
report("a body late past body-timeout: the connection is closed without a 200",
       b"200" not in data[:20] and time.monotonic() - t0 < 10, data[:100])
st, h, b = request("uwsgi", addr, "POST", "/count-body", b"y" * 5000)
report("... while a body that comes in time is served", (st, b) == (200, b"1 messages, 5000 bytes"),
       (st, b))
PY
expect_file_match "the late body is logged with the deadline" 'the request body was late.*body-timeout 1.0 s' "$CORRAL_LOG"
stop_corral

# ---- a loop blocked by time.sleep: slowlog, then harakiri
start_corral --listen "uwsgi:unix:$T/h.sock" --asgi asgi_app:app --pythonpath "$APPS" \
    --slowlog 1 --harakiri 3 || finish
HPID=$(children_of "$CORRAL_PID")
PY_TIMEOUT=60 py_checks "$T" <<'PY'
import sys
from lib_protocols import report, request
addr = "unix:%s/h.sock" % sys.argv[1]
st, h, b = request("uwsgi", addr, "GET", "/block?ms=1500", timeout=20)
report("a loop blocked 1.5 s still answers", (st, b) == (200, b"blocked"), (st, b))
try:
    st, h, b = request("uwsgi", addr, "GET", "/block?ms=10000", timeout=20)
except (OSError, ValueError) as e:
    st = repr(e)
report("a loop blocked past harakiri: the request fails", st != 200, st)
PY
expect_file_match "slowlog: the blocked loop is named" 'slowlog: worker 0 asgi loop: loop blocked for [0-9]+ ms' "$CORRAL_LOG"
expect_file_match "slowlog: its stack names the app's line" 'slowlog: worker 0 asgi loop: .*asgi_app.py", line [0-9]+ in app' "$CORRAL_LOG"
expect_file_match "harakiri: the worker exits" 'harakiri: worker 0 asgi loop: the event loop has been blocked' "$CORRAL_LOG"
expect_file_match "harakiri: the stack names the app's line" 'harakiri: worker 0 asgi loop: .*asgi_app.py", line [0-9]+ in app' "$CORRAL_LOG"
wait_until 10 bash -c "[ -n \"\$(pgrep -P $CORRAL_PID)\" ] && [ \"\$(pgrep -P $CORRAL_PID)\" != \"$HPID\" ]"
py_checks "$T" <<'PY'
import sys
from lib_protocols import report, request
st, h, b = request("uwsgi", "unix:%s/h.sock" % sys.argv[1], "GET", "/hello", timeout=20)
report("harakiri: the new worker serves", (st, b) == (200, b"Hello, World!"), (st, b))
PY
stop_corral

# ---- a body the app does not read, then the next request on the kept connection
# The app answers /sleep without reading a body of a few MiB that the client
# sent at once; corral throws the body away after the response, a batch at a
# time (conn_body_discard). The sizes sweep the window where a batch ends
# with the rest of the body, and the next request, already in corral's
# buffer and nothing more coming from the peer (no epoll event would say
# so): the next request must be answered all the same. Over the http
# listener (the next request sent with the body, and sent after the
# response), over FastCGI keep-conn (sent with the body; over TCP, whose
# buffers hold the whole body before the app answers, as for http) and
# behind nginx fastcgi_pass with keep-conn, on 1 x 1 (a level-triggered
# epoll entry) and 1 x 4 (edge-triggered).
discard_checks() {
    PY_TIMEOUT=150 py_checks "$1" "$2" "$3" "$4" <<'PY'
import http.client, socket, struct, sys, time
from lib_protocols import (FCGI_END_REQUEST, FCGI_STDOUT, cgi_params, connect, fcgi_begin,
                           fcgi_params_records, fcgi_read_record, fcgi_stdin_records, report)
hp, fp, np, label = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
SIZES = [(1 << 20) - 16384 + i * 2048 for i in range(16)] + [3 << 20, (3 << 20) + 5000]
NEXT = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

def http_pair(size, together):
    s = socket.create_connection(("127.0.0.1", hp))
    s.settimeout(10)
    head = b"POST /sleep?ms=100 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    s.sendall(head + b"b" * size + (NEXT if together else b""))
    data, sent = b"", together
    try:
        while not data.endswith(b"Hello, World!"):
            if not sent and b"slept" in data:
                s.sendall(NEXT)
                sent = True
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    s.close()
    return data.count(b" 200 OK") == 2 and b"slept" in data and data.endswith(b"Hello, World!")

def fcgi_pair(size):
    s = connect("tcp:127.0.0.1:%d" % fp, timeout=10)
    body = b"b" * size
    reqs = b""
    for rid, (m, uri, b) in enumerate((("POST", "/sleep?ms=100", body), ("GET", "/hello", b"")), 1):
        reqs += (fcgi_begin(rid, keep_conn=True) +
                 fcgi_params_records(cgi_params(m, uri, len(b)), rid) + fcgi_stdin_records(b, rid))
    s.sendall(reqs)
    out, ends = {1: b"", 2: b""}, 0
    try:
        while ends < 2:
            _, rtype, rid, content = fcgi_read_record(s)
            if rtype == FCGI_STDOUT:
                out[rid] += content
            elif rtype == FCGI_END_REQUEST:
                ends += 1
    except (OSError, EOFError):
        pass
    s.close()
    return ends == 2 and out[1].endswith(b"slept") and out[2].endswith(b"Hello, World!")

def nginx_pair(size):
    c = http.client.HTTPConnection("127.0.0.1", np, timeout=10)
    try:
        c.request("POST", "/sleep?ms=100", b"b" * size)
        r = c.getresponse()
        first = (r.status, r.read())
        c.request("GET", "/hello")
        r = c.getresponse()
        second = (r.status, r.read())
    except OSError:
        return False
    finally:
        c.close()
    return (first, second) == ((200, b"slept"), (200, b"Hello, World!"))

for name, pair in (("http, the next request sent with the body",
                    lambda n: http_pair(n, True)),
                   ("http, the next request sent after the response",
                    lambda n: http_pair(n, False)),
                   ("fastcgi keep-conn, the next request sent with the body", fcgi_pair),
                   ("nginx fastcgi_pass keep-conn", nginx_pair)):
    failed = None
    for n in SIZES:
        if not pair(n):
            failed = n  # the first is enough: a hang costs its whole timeout
            break
    report("%s: %s: an unread body of 1 to 3 MiB (%d sizes), then the next request "
           "is answered" % (label, name, len(SIZES)), failed is None,
           "no answer within 10 s after a %d-byte body" % (failed or 0))
PY
}
for threads in 1 4; do
    DP=$(free_port)
    DFP=$(free_port)
    DNP=$(free_port)
    start_corral --listen "http:tcp:127.0.0.1:$DP" --listen "fastcgi:tcp:127.0.0.1:$DFP" \
        --asgi asgi_app:app --pythonpath "$APPS" --processes 1 --threads $threads \
        --body-timeout 60 || finish
    start_nginx "
    upstream discard_fcgi { server 127.0.0.1:$DFP; keepalive 2; }
    server {
        listen 127.0.0.1:$DNP;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass discard_fcgi;
            fastcgi_keep_conn on;
        }
    }" || finish
    discard_checks "$DP" "$DFP" "$DNP" "1 x $threads"
    kill "$NGINX_PID"
    wait_until 10 nginx_gone
    stop_corral
done

finish
