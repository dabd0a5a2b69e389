#!/bin/bash
# deadlines.sh -- the deadlines of a request as a whole, with short limits on
# one process with one thread (--io-timeout stays long, so only a deadline
# can end these cases early):
#  - a head trickled in past --header-timeout is closed, and logged;
#  - a body trickled in past --body-timeout is cut, and logged, and the only
#    thread is free again while the peer still trickles;
#  - a peer that never reads a large response is cut at --send-timeout;
#  - a FastCGI request without STDIN gets its response and holds no thread
#    afterwards; the connection is closed at the body deadline with a line
#    that says so (not "reading the request body failed");
#  - on a kept connection the idle time before a request is not the head's,
#    and a body that comes after the response is discarded as it arrives;
#  - a big upload at a decent rate passes: --min-rate extends the deadline;
#  - with --post-buffering a slow body holds no thread: the app runs when it
#    is all in memory, a stalled one is closed at the body deadline, a bigger
#    one streams past the buffer;
#  - kept connections in use while the scan closes 2,000 idle ones at once
#    are not closed with them.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

U=$T/u.sock F=$T/f.sock
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --handler "$DEMO_SO" \
    --processes 1 --threads 1 --io-timeout 30 --idle-timeout 30 \
    --header-timeout 2 --body-timeout 2 --send-timeout 2 --min-rate 256K || finish

PY_TIMEOUT=50 py_checks "$U" "$F" "$CORRAL_LOG" <<'PY'
import re, select, socket, sys, threading, time
from lib_protocols import (connect, report, uwsgi_packet, cgi_params, fcgi_begin, fcgi_record,
                           fcgi_params_records, parse_response, request, FcgiConn, FCGI_STDIN)
U, F = "unix:" + sys.argv[1], "unix:" + sys.argv[2]
LOG = sys.argv[3]

def log_text():
    with open(LOG, errors="replace") as fp:
        return fp.read()

def wait_log(pattern, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if re.search(pattern, log_text()):
            return True
        time.sleep(0.1)
    return False

def closed_by_server(s):
    """True when the server closed S (EOF or reset) and nothing is pending."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True

def trickle(s, data, seconds_per_byte, limit):
    """Send DATA one byte at a time; returns the seconds until the server
    closed the connection, or None when it stayed open for LIMIT seconds."""
    s.setblocking(False)
    t0 = time.monotonic()
    for b in data:
        if time.monotonic() - t0 > limit:
            return None
        try:
            s.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        end = time.monotonic() + seconds_per_byte
        while time.monotonic() < end:
            if closed_by_server(s):
                return time.monotonic() - t0
            time.sleep(0.05)
    return None

def hello(timeout):
    t0 = time.monotonic()
    try:
        st, _, body = request("uwsgi", U, "GET", "/hello", timeout=timeout)
    except OSError as e:
        return None, repr(e)
    return time.monotonic() - t0, (st, body)

# ---- 1. a head trickled in, 1 byte a second: closed at the header deadline
head = uwsgi_packet(cgi_params("GET", "/hello?trickled-head"))
s = connect(U)
took = trickle(s, head[:12], 1.0, 12)
s.close()
report("a trickled head is closed (header-timeout 2 s)", took is not None, "still open after 12 s")
report("the header deadline is logged with the peer and the listener",
       wait_log(r"uwsgi:unix:.*peer unix: - -: the request head did not arrive within "
                r"header-timeout \(2\.0 s\)", 5), log_text()[-2000:])

# The next connection takes the closed one's slot: its deadline does not
# come with it (a new connection that idles before its first request is not
# taken for a late head).
c = FcgiConn(F, keep_conn=True, timeout=10)
time.sleep(3.5)  # past the header deadline since the closed head's first byte, and a scan
try:
    second = c.request("GET", "/hello?slot-reused")
except OSError as e:
    second = (None, None, repr(e).encode())
c.close()
report("a new connection in the slot of a closed slow head is served after idling 3.5 s",
       (second[0], second[2]) == (200, b"Hello, World!"), second)

# ---- 2. a body trickled in: cut at the body deadline, the thread is free
body_head = uwsgi_packet(cgi_params("POST", "/echo?trickled-body", body_len=30))
s = connect(U)
s.sendall(body_head)
result = {}
t = threading.Thread(target=lambda: result.update(took=trickle(s, b"x" * 30, 1.0, 15)))
t.start()
time.sleep(0.5)
answered, detail = hello(12)
t.join()
s.close()
report("a trickled body is cut (body-timeout 2 s)", result.get("took") is not None,
       "still open after 15 s")
report("the only thread answers another request meanwhile",
       answered is not None and detail == (200, b"Hello, World!")
       and answered < 10, "%r %r" % (answered, detail))
report("the body deadline is logged with the request and the limit",
       wait_log(r"peer unix: POST /echo\?trickled-body: the request body was late: \d+ bytes "
                r"arrived in [0-9.]+ s of waiting, past the body deadline \(body-timeout 2\.0 s "
                r"\+ 1 s per min-rate 262144 bytes\)", 5), log_text()[-2000:])

# ---- 3. a peer that never reads a large response: cut at the send deadline
s = connect(U)
s.sendall(uwsgi_packet(cgi_params("GET", "/large?size=268435456")))
logged = wait_log(r"GET /large\?size=268435456: the front end was too slow to take the "
                  r"response: \d+ bytes went out in [0-9.]+ s of waiting, past the send "
                  r"deadline \(send-timeout 2\.0 s \+ 1 s per min-rate 262144 bytes\)", 20)
report("a response nobody reads is cut at the send deadline", logged, log_text()[-2000:])
got = 0
s.settimeout(10)
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += len(b)
except OSError:
    pass
s.close()
report("... the response was cut short, then the connection closed", 0 < got < 268435456, got)
answered, detail = hello(10)
report("... and the thread serves again", detail == (200, b"Hello, World!"), detail)

# ---- 4. FastCGI without STDIN: the response, then no thread held
c = FcgiConn(F, keep_conn=False)
c.sock.sendall(fcgi_begin(1, False) +
               fcgi_params_records(cgi_params("GET", "/hello?no-stdin"), 1))
try:
    raw, app, proto = c.read_response()
    st, _, body = parse_response(raw)
except (OSError, EOFError) as e:
    st, body = None, repr(e)
report("a FastCGI request without STDIN gets its response", (st, body) == (200, b"Hello, World!"),
       (st, body))
answered, detail = hello(10)
report("the only thread answers the next request at once (not after --io-timeout)",
       answered is not None and answered < 10 and detail == (200, b"Hello, World!"),
       "%r %r" % (answered, detail))
report("the body deadline closes the connection with a line that says so",
       wait_log(r"GET /hello\?no-stdin: closed after the response: the request body did not "
                r"arrive after the response", 8), log_text()[-2000:])
end = time.monotonic() + 3
c.sock.setblocking(False)
while time.monotonic() < end and not closed_by_server(c.sock):
    time.sleep(0.1)
report("... and the connection is closed", closed_by_server(c.sock))
c.close()
report("no \"reading the request body failed\" for it",
       "no-stdin: reading the request body failed" not in log_text())

# ---- 5. a kept connection: idle between requests is --idle-timeout's; the
# header deadline runs from the first byte of the next request. The body the
# app did not read is discarded as it arrives, and the connection serves on.
c = FcgiConn(F, keep_conn=True)
c.sock.sendall(fcgi_begin(1, True) + fcgi_params_records(cgi_params("POST", "/hello?kept"), 1)
               + fcgi_record(FCGI_STDIN, 1, b"x" * 1000))
try:
    raw, app, proto = c.read_response()
    first = parse_response(raw)[0]
except (OSError, EOFError) as e:
    first = repr(e)
time.sleep(0.5)
c.sock.sendall(fcgi_record(FCGI_STDIN, 1, b"y" * 1000) + fcgi_record(FCGI_STDIN, 1))
time.sleep(2.5)  # idle, past header-timeout, inside idle-timeout
try:
    st, _, body = c.request("GET", "/hello?kept-again")
except (OSError, EOFError) as e:
    st, body = None, repr(e)
report("a kept connection whose unread body came after the response serves on",
       (first, st, body) == (200, 200, b"Hello, World!"), (first, st, body))
nxt = fcgi_begin(1, True) + fcgi_params_records(cgi_params("GET", "/hello?kept-trickle"), 1)
took = trickle(c.sock, nxt[:12], 1.0, 12)
c.close()
report("the next request's head trickled in is closed at the header deadline",
       took is not None, "still open after 12 s")
report("... which runs from its first byte, not from the idle time before it",
       took is not None and took >= 1.0, took)

# ---- 6. a big upload at a decent rate passes: min-rate extends the deadline
size = 3 << 20
data = bytes(range(256)) * (size // 256)
s = connect(U, timeout=20)
s.sendall(uwsgi_packet(cgi_params("POST", "/echo?upload", body_len=size)))
t0 = time.monotonic()
for off in range(0, size, 64 << 10):
    s.sendall(data[off:off + (64 << 10)])
    time.sleep(0.06)  # about 1 MiB a second: 3 s in all, past the 2 s base
sent_for = time.monotonic() - t0
raw = b""
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        raw += b
except OSError as e:
    raw += repr(e).encode()
s.close()
try:
    st, _, body = parse_response(raw)
except ValueError:
    st, body = None, raw[:200]
report("a %d-byte upload sent over %.1f s (past body-timeout 2 s) is echoed whole" %
       (size, sent_for), st == 200 and body == data, "%r %d" % (st, len(body)))
PY

check "corral still runs" alive "$CORRAL_PID"
stop_corral

# ---- 7. --post-buffering: a slow body is read into memory while the
# connection waits without a thread; the app runs once it is all there.
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --handler "$DEMO_SO" \
    --processes 1 --threads 1 --io-timeout 30 --idle-timeout 30 \
    --body-timeout 3 --min-rate 0 --post-buffering 64K || finish
PY_TIMEOUT=50 py_checks "$U" "$F" "$CORRAL_LOG" <<'PY'
import re, sys, threading, time
from lib_protocols import (connect, report, uwsgi_packet, cgi_params, parse_response, request,
                           FcgiConn)
U, F = "unix:" + sys.argv[1], "unix:" + sys.argv[2]
LOG = sys.argv[3]

def log_text():
    with open(LOG, errors="replace") as fp:
        return fp.read()

def read_all(s):
    raw = b""
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            raw += b
    except OSError as e:
        raw += repr(e).encode()
    return raw

def trickled_post(uri, body, gap, out):
    s = connect(U, timeout=20)
    s.sendall(uwsgi_packet(cgi_params("POST", uri, body_len=len(body))))
    for b in body:
        time.sleep(gap)
        try:
            s.send(bytes([b]))
        except OSError:
            break
    out["raw"] = read_all(s)
    s.close()

# A 20-byte body at 10 bytes a second (2 s, inside body-timeout 3 s): the one
# thread answers other requests meanwhile, then the app gets the whole body.
out = {}
t = threading.Thread(target=trickled_post, args=("/echo?slow-but-in-time", b"0123456789" * 2,
                                                 0.1, out))
t.start()
time.sleep(0.3)
times = []
for _ in range(5):
    t0 = time.monotonic()
    st, _, body = request("uwsgi", U, "GET", "/hello", timeout=10)
    times.append(time.monotonic() - t0)
    time.sleep(0.2)
t.join()
report("post-buffering: the only thread answers 5 requests while a body trickles in "
       "(slowest %.3f s)" % max(times), max(times) < 1.0, times)
try:
    st, _, body = parse_response(out.get("raw", b""))
except ValueError:
    st, body = None, out.get("raw", b"")[:200]
report("post-buffering: the app then gets the whole trickled body",
       (st, body) == (200, b"0123456789" * 2), (st, body))

# A body that stops: closed at the body deadline, the app never ran.
s = connect(U, timeout=10)
s.sendall(uwsgi_packet(cgi_params("POST", "/echo?stalled-body", body_len=100)) + b"x" * 10)
t0 = time.monotonic()
raw = read_all(s)
took = time.monotonic() - t0
s.close()
report("post-buffering: a stalled body is closed at the body deadline (%.1f s, body-timeout 3 s)"
       % took, raw == b"" and 2.5 < took < 8, (raw[:100], took))
pat = (r"POST /echo\?stalled-body: the request body was late: 10 bytes arrived in [0-9.]+ s, "
       r"past the body deadline \(body-timeout 3\.0 s \+ 1 s per min-rate 0 bytes\); the app "
       r"did not run: connection closed")
report("post-buffering: the late body is logged, naming the request", re.search(pat, log_text()),
       log_text()[-1500:])

# A body bigger than the buffer streams past it, whole.
big = bytes(range(256)) * 1024  # 256 KiB > 64K
st, _, body = request("uwsgi", U, "POST", "/echo?big", body=big, timeout=20)
report("post-buffering: a 256 KiB body (buffer 64K) reaches the app whole", (st, body) == (200, big),
       (st, len(body)))

# FastCGI keep-conn: a post-buffered request, then another on the same connection.
c = FcgiConn(F, keep_conn=True, timeout=10)
first = c.request("POST", "/echo?kept", body=b"abc" * 1000)
second = c.request("GET", "/hello?after")
c.close()
report("post-buffering over FastCGI keep-conn: the body, then the next request",
       (first[0], first[2], second[0], second[2]) == (200, b"abc" * 1000, 200, b"Hello, World!"),
       (first[0], first[2][:40], second))
PY
check "corral still runs" alive "$CORRAL_PID"
stop_corral

# ---- 8. a scan that closes many idle connections at once takes a while;
# connections the other thread parks meanwhile are not taken for idle ones
# (their park time is after the scan's start: it once read as idle for ever).
start_corral --listen "fastcgi:unix:$F" --handler "$DEMO_SO" \
    --processes 1 --threads 2 --idle-timeout 3 --max-conns 4096 || finish
"$PY" - "$F" >"$T/idle-holder.out" 2>&1 <<'PY' &
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
held = []
for _ in range(2000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    held.append(s)
print("held", len(held), flush=True)
time.sleep(12)
PY
holder=$!
wait_until 10 grep -q '^held' "$T/idle-holder.out"
bench=$("$top_builddir/corral-bench" --proto fastcgi --keep-conn --connect "unix:$F" -c 8 -d 6 \
    --warmup 0 --uri /hello --expect-body-prefix "Hello, World!" --json 2>&1)
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
say "8 kept connections beside 2,000 idle ones closed at --idle-timeout 3: $bench"
expect_match "kept connections busy while 2,000 idle ones are closed by the scan: no error" \
    '"errors":0,' "$bench"
expect_match "... and they were served" '"requests":[1-9][0-9]{3,}' "$bench"
check "corral still runs" alive "$CORRAL_PID"
finish
