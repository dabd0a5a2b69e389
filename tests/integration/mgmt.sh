#!/bin/bash
# mgmt.sh -- FastCGI management records (requestId 0: GET_VALUES and unknown
# types) never hold a thread. On a pool of 1 process x 2 threads (and again
# with 1 thread), two peers flood management records without reading the
# replies: a normal request is still answered at once, and the flooders
# (parked, their bytes left in the socket) are closed by the idle timeout
# with one log line naming the peer and why, at most one a second. A peer
# that does read gets every reply, in order (GET_VALUES_RESULT, UNKNOWN_TYPE
# with each type), then its response.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# mgmt_case THREADS : the checks on a pool of 1 process x THREADS threads.
# --io-timeout 20: a server that writes the replies while the socket is
# full holds a thread up to 20 s per flooder; the request below waits 3 s.
mgmt_case() {
    local threads=$1 F=$T/f$1.sock
    start_corral --listen "fastcgi:unix:$F" --handler "$DEMO_SO" --processes 1 \
        --threads "$threads" --io-timeout 20 --idle-timeout 2 || return
    local master=$CORRAL_PID workers
    workers=$(children_of "$master")
    say "1 process x $threads threads"
    PY_TIMEOUT=50 py_checks "$F" "$CORRAL_LOG" "$threads" <<'PY'
import socket, struct, sys, threading, time
from lib_protocols import (connect, report, fcgi_record, fcgi_nv, fcgi_parse_nv,
                           fcgi_read_record, FcgiConn, FCGI_GET_VALUES,
                           FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE, FCGI_STDOUT,
                           FCGI_END_REQUEST)
F, LOG, THREADS = "unix:" + sys.argv[1], sys.argv[2], sys.argv[3]
WHY = "does not read its replies"

_report = report
def report(name, cond, detail=""):
    _report("%s thread(s): %s" % (THREADS, name), cond, detail)

def log_lines():
    with open(LOG, errors="replace") as f:
        return [l for l in f if WHY in l]

# ---- two peers flood management records and never read
unknown = fcgi_record(20, 0, b"\0" * 8)                         # 16 bytes, 16-byte reply
get_values = fcgi_record(FCGI_GET_VALUES, 0, fcgi_nv(b"FCGI_MAX_CONNS", b""))  # 24 -> 32
floods = {"type 20": unknown * 65536, "GET_VALUES": get_values * 43690}   # about 1 MiB each
flooders = {}
sent = {}

def flood(name):
    s = connect(F, timeout=8)
    flooders[name] = s
    n = 0
    data = floods[name]
    try:
        while n < len(data):
            n += s.send(data[n:n + 65536])
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    sent[name] = n

threads = [threading.Thread(target=flood, args=(name,)) for name in floods]
for t in threads:
    t.start()
time.sleep(0.5)  # both flooders' replies fill their sockets

# ---- a normal request meanwhile: answered at once (both threads free)
try:
    c = FcgiConn(F, keep_conn=False, timeout=3)
    status, _, body = c.request("GET", "/hello")
    c.close()
    report("a request during two management floods is answered at once (3 s limit)",
           status == 200 and body == b"Hello, World!", (status, body[:80]))
except (socket.timeout, OSError, EOFError) as e:
    report("a request during two management floods is answered at once (3 s limit)", False, repr(e))

# ---- a peer that reads: every reply in order, then its response
r = FcgiConn(F, keep_conn=False, timeout=5)
s = r.sock
types = [20, 200, 255, 6, 11] * 1200     # unknown, and types only the application sends
batch = fcgi_record(FCGI_GET_VALUES, 0, fcgi_nv(b"FCGI_MAX_CONNS", b"") +
                    fcgi_nv(b"FCGI_MAX_REQS", b"") + fcgi_nv(b"FCGI_MPXS_CONNS", b""))
batch += b"".join(fcgi_record(t, 0, b"\0" * 8) for t in types)
# Sent by a thread while this one reads: the replies are more than the
# socket holds, so they come out as the peer takes them.
def send_batch():
    try:
        s.sendall(batch)
        r.send_request("GET", "/hello")
    except OSError:
        pass  # the checks below tell what was answered
params_thread = threading.Thread(target=send_batch)
params_thread.start()
ok_values = ok_types = False
v, got = {}, []
try:
    _, rtype, rid, content = fcgi_read_record(s)
    v = fcgi_parse_nv(content)
    ok_values = (rtype == FCGI_GET_VALUES_RESULT and rid == 0 and v.get("FCGI_MPXS_CONNS") == "0"
                 and v.get("FCGI_MAX_CONNS", "").isdigit() and v.get("FCGI_MAX_REQS", "").isdigit())
    got = []
    for _ in types:
        _, rtype, rid, content = fcgi_read_record(s)
        got.append((rtype, rid, content[0]))
    ok_types = got == [(FCGI_UNKNOWN_TYPE, 0, t) for t in types]
    raw, app, proto = r.read_response()
    ok_resp = b"Hello, World!" in raw and app == 0 and proto == 0
except (socket.timeout, OSError, EOFError, ValueError) as e:
    ok_resp = False
    got = repr(e)
report("a reading peer: GET_VALUES answered first (3 names)", ok_values, v if not ok_values else "")
report("a reading peer: %d UNKNOWN_TYPE replies in order, each naming its type" % len(types),
       ok_types, str(got)[:200] if not ok_types else "")
report("a reading peer: its request is answered after the replies", ok_resp)
params_thread.join(5)
s.close()

# ---- the flooders are closed by the idle timeout (2 s), logged once a second at most
deadline = time.monotonic() + 8
while time.monotonic() < deadline and len(log_lines()) < 1:
    time.sleep(0.1)
time.sleep(1.5)  # the other flooder, closed by the same tick or the next
for t in threads:
    t.join(5)
for name, s in flooders.items():
    s.settimeout(3)
    closed = False
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                closed = True
                break
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    report("the %s flooder (%d bytes sent, replies never read) is closed" % (name, sent.get(name, 0)),
           closed)
    s.close()
lines = log_lines()
report("the close is logged naming the peer and why, once a second at most (%d lines)" % len(lines),
       1 <= len(lines) <= 2 and all("peer unix" in l and "connection closed" in l for l in lines),
       "".join(lines)[-600:])
PY

    # ---- the worker neither died nor was replaced
    expect_eq "$threads thread(s): the worker is the same process" "$workers" "$(children_of "$master")"
    check_not "$threads thread(s): no 'request incomplete' line for the flooders" \
        grep -q 'request incomplete' "$CORRAL_LOG"
    stop_corral "$master"
}

mgmt_case 2
mgmt_case 1 # one thread: its connections stay registered level-triggered

finish
