#!/bin/bash
# hostile.sh -- malformed, truncated, oversized and random input on each
# protocol's socket. Afterwards: no worker crashed (same pids), normal
# requests are still served, the error log names the listener, the peer and
# the reason, and the processes' memory did not grow.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

U=$T/u.sock F=$T/f.sock S=$T/s.sock
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --listen "scgi:unix:$S" \
    --handler "$DEMO_SO" --processes 2 --threads 2 --max-head 4096 --max-body 1M --io-timeout 2 --idle-timeout 5 || finish
MASTER=$CORRAL_PID

# Warm up every worker so that the memory baseline includes the normal
# per-connection and per-thread allocations.
py_checks "$U" "$F" "$S" <<'PY'
import sys
from lib_protocols import hammer, report
for proto, a in zip(("uwsgi", "fastcgi", "scgi"), sys.argv[1:]):
    good, errs, _ = hammer(proto, "unix:" + a, "/params?warm=1", 200, 8)
    report("warm-up: 200 %s requests" % proto, good == 200, errs)
PY

WORKERS_BEFORE=$(children_of "$MASTER")
rss_total() { local s=0 p; for p in "$MASTER" $(children_of "$MASTER"); do s=$((s + $(rss_kb "$p"))); done; echo $s; }
RSS_BEFORE=$(rss_total)
say "workers $WORKERS_BEFORE, RSS $RSS_BEFORE KiB"

# ---- targeted cases, each with the answer it must get
PY_TIMEOUT=90 py_checks "$U" "$F" "$S" <<'PY'
import socket, struct, sys, time
from lib_protocols import (connect, report, uwsgi_packet, uwsgi_vars, scgi_packet, cgi_params,
                           fcgi_record, fcgi_begin, fcgi_params_records, fcgi_stdin_records,
                           fcgi_read_record, fcgi_nv, fcgi_parse_nv, parse_response, request,
                           FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_END_REQUEST, FCGI_ABORT_REQUEST,
                           FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE, FCGI_BEGIN_REQUEST)
U, F, S = ("unix:" + a for a in sys.argv[1:4])

def send_and_wait_close(addr, data, half_close=False, wait=3.0):
    """Send DATA, then read until the server closes. Returns (closed, reply
    bytes). closed is False when the server kept the connection open for
    WAIT seconds."""
    s = connect(addr, timeout=wait)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        out = b""
        end = time.monotonic() + wait
        while True:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                return False, out
            except ConnectionResetError:
                return True, out
            if not b:
                return True, out
            out += b
    finally:
        s.close()

def refused(name, addr, data, **kw):
    closed, out = send_and_wait_close(addr, data, **kw)
    # A refusal may carry an error answer, but never a success.
    ok = closed and not out.startswith(b"HTTP/1.1 200") and not out.startswith(b"Status: 200")
    report(name + ": connection closed, no 200", ok, (closed, out[:200]))

hello = cgi_params("GET", "/hello")

# ---------------- uwsgi
refused("uwsgi: HTTP spoken to the uwsgi socket", U, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
refused("uwsgi: datasize 65535 over --max-head 4096", U, struct.pack("<BHB", 0, 65535, 0) + b"\x05\x00HELLO" * 10000)
refused("uwsgi: modifier1 200 (not supported)", U, uwsgi_packet(hello, modifier1=200))
refused("uwsgi: key length past the vars block", U, struct.pack("<BHB", 0, 10, 0) + struct.pack("<H", 500) + b"A" * 8)
refused("uwsgi: empty vars block", U, struct.pack("<BHB", 0, 0, 0), half_close=True)
refused("uwsgi: CONTENT_LENGTH not a number", U, uwsgi_packet(cgi_params("POST", "/echo", extra={"CONTENT_LENGTH": "12x"})))
pkt = uwsgi_packet(hello)
refused("uwsgi: header cut after 2 bytes, then close", U, pkt[:2], half_close=True)
refused("uwsgi: vars cut in the middle, then close", U, pkt[:len(pkt) // 2], half_close=True)
refused("uwsgi: body promised 100, 10 sent, then close", U, uwsgi_packet(cgi_params("POST", "/echo", 100)) + b"x" * 10, half_close=True)
# A connection that sends half a head and stays silent is closed (io/idle timeout).
closed, _ = send_and_wait_close(U, pkt[:7], wait=9)
report("uwsgi: a silent half-sent head is closed by a timeout", closed)

refused("uwsgi: CONTENT_LENGTH over --max-body 1M", U, uwsgi_packet(cgi_params("POST", "/echo", 2000000)) + b"x" * 1000)

# ---------------- SCGI
refused("scgi: netstring length 99999999", S, b"99999999:CONTENT_LENGTH\x000\x00")
refused("scgi: netstring length with a leading 0", S, b"05:CONTENT_LENGTH\x000\x00,")
refused("scgi: HTTP spoken to the SCGI socket", S, b"GET / HTTP/1.0\r\n\r\n")
refused("scgi: netstring without a length", S, b":abc,")
refused("scgi: first header is not CONTENT_LENGTH", S, b"24:SCGI\x001\x00CONTENT_LENGTH\x000\x00,")
refused("scgi: no ',' after the header block", S, b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;")
refused("scgi: a value without its NUL", S, b"20:CONTENT_LENGTH\x000\x00SCGI\x001,")
refused("scgi: CONTENT_LENGTH not a number", S, b"26:CONTENT_LENGTH\x00-5\x00SCGI\x001\x00,")
sp = scgi_packet(hello)
refused("scgi: cut in the length, then close", S, sp[:2], half_close=True)
refused("scgi: cut in the headers, then close", S, sp[:len(sp) // 2], half_close=True)
big = b"CONTENT_LENGTH\x000\x00" + b"X_PAD\x00" + b"p" * 5000 + b"\x00"
refused("scgi: header block over --max-head 4096", S, str(len(big)).encode() + b":" + big + b",")

refused("scgi: CONTENT_LENGTH over --max-body 1M", S, scgi_packet(cgi_params("POST", "/echo", 2000000), 2000000) + b"x" * 1000)

# ---------------- FastCGI
begin = fcgi_begin(1, keep_conn=True)
refused("fastcgi: record of version 2", F, struct.pack(">BBHHBB", 2, FCGI_BEGIN_REQUEST, 1, 8, 0, 0) + b"\0\1\1\0\0\0\0\0")
many = [(b"X_PAD_%d" % i, b"v" * 200) for i in range(30)]
refused("fastcgi: params over --max-head 4096", F, fcgi_begin(1) + fcgi_params_records(hello + many, max_record=4000))
# Records for an inactive request id are ignored (FastCGI 1.0, 3.3); the
# connection then serves a proper request.
s = connect(F, timeout=3)
try:
    s.sendall(fcgi_params_records(hello, req_id=1) + fcgi_stdin_records(b"zz", req_id=3)
              + fcgi_begin(1) + fcgi_params_records(hello) + fcgi_stdin_records(b""))
    out = b""
    while True:
        ver, rtype, rid, content = fcgi_read_record(s)
        if rtype == FCGI_STDOUT:
            out += content
        elif rtype == FCGI_END_REQUEST:
            break
    st, _, body = parse_response(out)
    report("fastcgi: records of inactive request ids are ignored, the next request is served", st == 200 and body == b"Hello, World!", out[:200])
except Exception as e:
    report("fastcgi: records of inactive request ids are ignored, the next request is served", False, repr(e))
s.close()
refused("fastcgi: header cut after 3 bytes, then close", F, begin[:3], half_close=True)
refused("fastcgi: params cut, then close", F, begin + fcgi_params_records(hello)[:30], half_close=True)
refused("fastcgi: name-value length past the record", F,
        begin + fcgi_record(FCGI_PARAMS, 1, b"\x7f\x7fABC") + fcgi_record(FCGI_PARAMS, 1))

def fcgi_session(data, wait=3.0):
    s = connect(F, timeout=wait)
    s.sendall(data)
    return s

# GET_VALUES as the first and only record: answered at once.
q = fcgi_nv(b"FCGI_MPXS_CONNS", b"") + fcgi_nv(b"FCGI_MAX_REQS", b"") + fcgi_nv(b"FCGI_MAX_CONNS", b"") + fcgi_nv(b"NO_SUCH_NAME", b"")
s = fcgi_session(fcgi_record(FCGI_GET_VALUES, 0, q))
try:
    ver, rtype, rid, content = fcgi_read_record(s)
    vals = fcgi_parse_nv(content) if rtype == FCGI_GET_VALUES_RESULT else {}
    report("fastcgi: GET_VALUES is answered with GET_VALUES_RESULT at once", rtype == FCGI_GET_VALUES_RESULT and rid == 0, (rtype, rid, content))
    report("fastcgi: GET_VALUES_RESULT has FCGI_MPXS_CONNS=0", vals.get("FCGI_MPXS_CONNS") == "0", vals)
    report("fastcgi: GET_VALUES_RESULT has numeric FCGI_MAX_REQS and FCGI_MAX_CONNS",
           vals.get("FCGI_MAX_REQS", "").isdigit() and vals.get("FCGI_MAX_CONNS", "").isdigit(), vals)
    report("fastcgi: GET_VALUES_RESULT leaves out unknown names", "NO_SUCH_NAME" not in vals, vals)
    # The connection still serves a request after the management record.
    s.sendall(fcgi_begin(1) + fcgi_params_records(hello) + fcgi_stdin_records(b""))
    out = b""
    while True:
        ver, rtype, rid, content = fcgi_read_record(s)
        if rtype == FCGI_STDOUT:
            out += content
        elif rtype == FCGI_END_REQUEST:
            break
    st, _, body = parse_response(out)
    report("fastcgi: a request after GET_VALUES on the same connection", st == 200 and body == b"Hello, World!", out[:200])
except Exception as e:
    report("fastcgi: GET_VALUES exchange", False, repr(e))
s.close()

# An unknown management record type: UNKNOWN_TYPE naming it.
s = fcgi_session(fcgi_record(42, 0, b"abc"))
try:
    ver, rtype, rid, content = fcgi_read_record(s)
    report("fastcgi: unknown management type 42 -> UNKNOWN_TYPE {42}", rtype == FCGI_UNKNOWN_TYPE and rid == 0 and content[:1] == b"\x2a", (rtype, rid, content))
except Exception as e:
    report("fastcgi: unknown management type 42 -> UNKNOWN_TYPE", False, repr(e))
s.close()
# An unknown type inside a request: refused, or answered with UNKNOWN_TYPE.
closed, out = send_and_wait_close(F, begin + fcgi_record(42, 1, b"zzzz"), half_close=True)
report("fastcgi: unknown record type 42 on a request id: UNKNOWN_TYPE or a close, never a response",
       closed and (out == b"" or out[1:2] == b"\x0b") and b"Status: 200" not in out, (closed, out[:100]))

# A second request id while the first is open: END_REQUEST CANT_MPX_CONN for
# it, and the first request still completes.
s = fcgi_session(fcgi_begin(1, keep_conn=True) + fcgi_begin(2, keep_conn=True))
try:
    ver, rtype, rid, content = fcgi_read_record(s)
    ok = rtype == FCGI_END_REQUEST and rid == 2 and len(content) == 8 and content[4] == 1
    report("fastcgi: a second request id gets END_REQUEST with CANT_MPX_CONN", ok, (rtype, rid, content))
    s.sendall(fcgi_params_records(hello) + fcgi_stdin_records(b""))
    out = b""
    while True:
        ver, rtype, rid, content = fcgi_read_record(s)
        if rtype == FCGI_STDOUT and rid == 1:
            out += content
        elif rtype == FCGI_END_REQUEST:
            break
    st, _, body = parse_response(out)
    report("fastcgi: the first request still completes after the refused one", rid == 1 and st == 200 and body == b"Hello, World!", (rid, out[:200]))
except Exception as e:
    report("fastcgi: second request id exchange", False, repr(e))
s.close()

# An unknown role: END_REQUEST UNKNOWN_ROLE.
s = fcgi_session(fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack(">HB5x", 2, 0)))
try:
    ver, rtype, rid, content = fcgi_read_record(s)
    report("fastcgi: role AUTHORIZER gets END_REQUEST with UNKNOWN_ROLE", rtype == FCGI_END_REQUEST and rid == 1 and content[4] == 3, (rtype, rid, content))
except Exception as e:
    report("fastcgi: role AUTHORIZER gets END_REQUEST with UNKNOWN_ROLE", False, repr(e))
s.close()

# ABORT_REQUEST before the params are complete: END_REQUEST for it.
s = fcgi_session(fcgi_begin(1, keep_conn=True) + fcgi_record(FCGI_ABORT_REQUEST, 1))
try:
    recs = []
    while not recs or recs[-1][0] != FCGI_END_REQUEST:
        ver, rtype, rid, content = fcgi_read_record(s)
        recs.append((rtype, rid, content))
    report("fastcgi: ABORT_REQUEST is answered with END_REQUEST (and no response body)",
           recs[-1][1] == 1 and all(r[0] == FCGI_STDOUT and r[2] == b"" for r in recs[:-1]), recs)
except Exception as e:
    report("fastcgi: ABORT_REQUEST is answered with END_REQUEST", False, repr(e))
s.close()

# A streamed body (empty CONTENT_LENGTH) past --max-body 1M: the request
# must not complete as if all of it had been echoed.
s = connect(F, timeout=5)
try:
    s.sendall(fcgi_begin(1) + fcgi_params_records(cgi_params("POST", "/echo", None)))
    sent = 0
    try:
        for i in range(48):  # 1.5 MiB in 32 KiB records
            s.sendall(fcgi_record(FCGI_STDIN, 1, b"y" * 32768))
            sent += 32768
        s.sendall(fcgi_record(FCGI_STDIN, 1))
    except OSError:
        pass
    out, ended = b"", False
    try:
        while True:
            ver, rtype, rid, content = fcgi_read_record(s)
            if rtype == FCGI_STDOUT:
                out += content
            elif rtype == FCGI_END_REQUEST:
                ended = True
                break
    except (EOFError, OSError):
        pass
    echoed = len(out.partition(b"\r\n\r\n")[2])
    report("fastcgi: a streamed body over --max-body 1M is not echoed whole (%d of %d bytes echoed, END_REQUEST %s)" % (echoed, sent, ended),
           echoed <= 1048576, (echoed, ended))
except Exception as e:
    report("fastcgi: a streamed body over --max-body 1M", False, repr(e))
s.close()

# ... and that request id ends once: the END_REQUEST of the protocol error,
# then nothing for it (no "Status: 500", no second END_REQUEST).
s = connect(F, timeout=5)
try:
    s.sendall(fcgi_begin(1) + fcgi_params_records(cgi_params("POST", "/echo", None)))
    try:
        for i in range(48):
            s.sendall(fcgi_record(FCGI_STDIN, 1, b"y" * 32768))
        s.sendall(fcgi_record(FCGI_STDIN, 1))
    except OSError:
        pass
    ends, after_end = 0, 0
    try:
        while True:
            ver, rtype, rid, content = fcgi_read_record(s)
            if rtype == FCGI_END_REQUEST:
                ends += 1
            elif ends:
                after_end += 1
    except (EOFError, OSError):
        pass
    report("fastcgi: a streamed body over --max-body ends its request once (%d END_REQUEST, %d records after it)" % (ends, after_end),
           ends == 1 and after_end == 0, (ends, after_end))
except Exception as e:
    report("fastcgi: a streamed body over --max-body ends its request once", False, repr(e))
s.close()

# Tolerance: padding 255 and params split into 1-byte records.
data = b"".join(fcgi_record(FCGI_PARAMS, 1, bytes([b]), padding=255) for b in b"".join(fcgi_nv(k, v) for k, v in hello))
s = fcgi_session(fcgi_begin(1) + data + fcgi_record(FCGI_PARAMS, 1) + fcgi_record(FCGI_STDIN, 1, padding=255))
try:
    out = b""
    while True:
        ver, rtype, rid, content = fcgi_read_record(s)
        if rtype == FCGI_STDOUT:
            out += content
        elif rtype == FCGI_END_REQUEST:
            break
    st, _, body = parse_response(out)
    report("fastcgi: params in 1-byte records with 255 bytes of padding are served", st == 200 and body == b"Hello, World!", out[:200])
except Exception as e:
    report("fastcgi: params in 1-byte records with 255 bytes of padding are served", False, repr(e))
s.close()
PY

# ---- random input: 2000 strings per protocol, half pure noise, half
# mutations of valid requests; seeded, bounded in time.
PY_TIMEOUT=100 py_checks "$U" "$F" "$S" <<'PY'
import random, socket, sys, threading, time
from lib_protocols import (connect, report, uwsgi_packet, scgi_packet, cgi_params, fcgi_begin,
                           fcgi_params_records, fcgi_stdin_records)
addrs = dict(zip(("uwsgi", "fastcgi", "scgi"), ("unix:" + a for a in sys.argv[1:4])))
N, THREADS, BUDGET = 2000, 8, 25.0

def valid(proto, rng):
    uri = rng.choice(["/hello", "/params?a=b", "/echo", "/status?code=404", "/nope"])
    body = b"0123456789" * rng.randint(0, 3) if uri == "/echo" else b""
    params = cgi_params("POST" if body else "GET", uri, len(body))
    if proto == "uwsgi":
        return uwsgi_packet(params) + body
    if proto == "scgi":
        return scgi_packet(params, len(body)) + body
    return fcgi_begin(1, keep_conn=rng.random() < 0.5) + fcgi_params_records(params) + fcgi_stdin_records(body)

def mutate(data, rng):
    d = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        i = rng.randrange(len(d) + 1)
        if op == 0 and d:
            d[min(i, len(d) - 1)] = rng.randrange(256)
        elif op == 1:
            d[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2:
            del d[i:i + rng.randint(1, 32)]
        elif op == 3 and d:
            d = d[:i]
        elif op == 4 and d:
            d[min(i, len(d) - 1)] = rng.choice([0, 0x7f, 0x80, 0xff])
    return bytes(d)

for pi, proto in enumerate(("uwsgi", "scgi", "fastcgi")):
    rng = random.Random(20261123 + pi)
    cases = []
    for i in range(N):
        if i % 2:
            cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))))
        else:
            cases.append(mutate(valid(proto, rng), rng))
    lock = threading.Lock()
    stats = {"done": 0, "hung": 0, "refused_connect": 0, "errors": []}
    nxt = [0]
    deadline = time.monotonic() + BUDGET
    def worker():
        while time.monotonic() < deadline:
            with lock:
                if nxt[0] >= N:
                    return
                data = cases[nxt[0]]
                nxt[0] += 1
            try:
                s = connect(addrs[proto], timeout=3)
            except OSError as e:
                with lock:
                    stats["refused_connect"] += 1
                    if len(stats["errors"]) < 5:
                        stats["errors"].append("connect: %r" % e)
                continue
            try:
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                end = time.monotonic() + 3
                hung = False
                while True:
                    s.settimeout(max(0.01, end - time.monotonic()))
                    try:
                        if not s.recv(65536):
                            break
                    except socket.timeout:
                        hung = True
                        break
                    except OSError:
                        break
                with lock:
                    stats["done"] += 1
                    if hung:
                        stats["hung"] += 1
                        if len(stats["errors"]) < 5:
                            stats["errors"].append("no close within 3 s after: %r" % data[:80])
            finally:
                s.close()
    t0 = time.monotonic()
    ths = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(BUDGET + 10)
    secs = time.monotonic() - t0
    report("%s: %d random/mutated inputs sent within %.0f s (%.1f s)" % (proto, N, BUDGET, secs), stats["done"] + stats["refused_connect"] == N, stats)
    report("%s: every connection accepted" % proto, stats["refused_connect"] == 0, stats["errors"])
    report("%s: every connection closed by the server after the client's half-close" % proto, stats["hung"] == 0, stats["errors"])
PY

# ---- afterwards
sleep 0.5
WORKERS_AFTER=$(children_of "$MASTER")
expect_eq "no worker crashed or was replaced (same pids)" "$WORKERS_BEFORE" "$WORKERS_AFTER"
expect_no_match "the master logged no worker death" 'worker [0-9]+ \(pid [0-9]+\) (was killed|exited)' "$(cat "$CORRAL_LOG")"
check "the master is still running" alive "$MASTER"

py_checks "$U" "$F" "$S" <<'PY'
import sys
from lib_protocols import hammer, report
for proto, a in zip(("uwsgi", "fastcgi", "scgi"), sys.argv[1:]):
    good, errs, _ = hammer(proto, "unix:" + a, "/hello", 100, 8, expect_body=b"Hello, World!")
    report("after the hostile input: 100 normal %s requests served" % proto, good == 100, errs)
PY

# A URI that carries a newline and a fake timestamp to a route that fails
# (logged with the URI) must not forge a line of the error log.
py_checks "$U" "$F" "$S" <<'PY'
import sys
from lib_protocols import request, report
forged = b"/fail?\n2026-01-01 00:00:00 [error] forged\r\x1b[2Kforged"
for proto, a in zip(("uwsgi", "fastcgi", "scgi"), sys.argv[1:]):
    status, _, _ = request(proto, "unix:" + a, uri=forged)
    report("a %s request whose URI holds a newline reaches /fail (500)" % proto, status == 500,
           status)
PY
sleep 0.3
expect_no_match "no error-log line starts with the forged text" '^(2026-01-01 00:00:00 \[error\] forged|forged)' \
    "$(cat "$CORRAL_LOG")"
expect_file_match "the error log shows the URI's newline and ESC escaped" \
    'on GET /fail\?\\x0a2026-01-01 00:00:00 \[error\] forged\\x0d\\x1b\[2Kforged' "$CORRAL_LOG"

for l in uwsgi scgi fastcgi; do
    expect_file_match "the error log names the $l listener, the peer and the reason" \
        "$l:unix:[^ ]*\.sock: peer [^ ]+: .*(bad|invalid|over|limit|not|unknown|version|HTTP)" "$CORRAL_LOG"
done
expect_file_match "the error log explains HTTP spoken to the uwsgi socket" 'uwsgi:unix:.*HTTP' "$CORRAL_LOG"
expect_file_match "the error log names the uwsgi head over the limit" 'uwsgi:unix:.*(over the limit|limit)' "$CORRAL_LOG"
expect_file_match "the error log names the FastCGI version" 'fastcgi:unix:.*version' "$CORRAL_LOG"

RSS_AFTER=$(rss_total)
say "RSS after: $RSS_AFTER KiB (before: $RSS_BEFORE KiB)"
expect_lt "the RSS of master and workers grew by less than 20 MiB (KiB)" "$((RSS_AFTER - RSS_BEFORE))" 20480

stop_corral
expect_eq "corral exits 0 on SIGTERM after the hostile input" 0 "$CORRAL_STATUS"

finish
