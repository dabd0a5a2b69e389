#!/bin/bash
# pool.sh -- the worker pool, straight over the sockets (no front end):
# process and thread counts, a slow request does not stall the others, a
# killed worker is replaced, graceful and immediate stops, the access log,
# and a stalled front end does not pin a thread.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

HELLO=$(printf '200\nHello, World!')

# ---- 1x1, 2x1, 1x4, 2x4 all serve, on all three protocols
for pt in 1x1 2x1 1x4 2x4; do
    p=${pt%x*} t=${pt#*x}
    U=$T/u$pt.sock F=$T/f$pt.sock S=$T/s$pt.sock
    start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --listen "scgi:unix:$S" \
        --handler "$DEMO_SO" --processes "$p" --threads "$t" || continue
    kids=$(children_of "$CORRAL_PID")
    expect_eq "$pt: $p worker processes" "$p" "$(echo "$kids" | wc -w)"
    for k in $kids; do
        expect_eq "$pt: worker $k runs $t threads" "$t" "$(ls /proc/"$k"/task | wc -l)"
    done
    py_checks "$U" "$F" "$S" "$pt" <<'PY'
import sys
from lib_protocols import hammer, report
u, f, s, pt = sys.argv[1:]
for proto, addr in (("uwsgi", u), ("fastcgi", f), ("scgi", s)):
    good, errs, secs = hammer(proto, "unix:" + addr, "/hello", 60, 8, expect_body=b"Hello, World!")
    report("%s: 60 %s requests from 8 clients all answered" % (pt, proto), good == 60, errs)
good, errs, secs = hammer("fastcgi", "unix:" + f, "/hello", 60, 4, expect_body=b"Hello, World!", keep_conn=True)
report("%s: 60 fastcgi keep-conn requests on 4 connections" % pt, good == 60, errs)
PY
    stop_corral
done

# ---- a slow request does not stall the others
# $1 = processes, $2 = threads
slow_vs_hello() {
    local p=$1 t=$2
    start_corral --listen "uwsgi:unix:$T/slow$p$t.sock" --handler "$DEMO_SO" --processes "$p" --threads "$t" || return
    sleep 0.3 # every worker running
    py_checks "$T/slow$p$t.sock" "${p}x$t" <<'PY'
import sys, threading, time
from lib_protocols import request, report
addr, pt = "unix:" + sys.argv[1], sys.argv[2]
res = {}
def slow():
    t0 = time.monotonic()
    try:
        st, _, b = request("uwsgi", addr, "GET", "/slow?ms=2000", timeout=10)
        res["slow"] = (st, b, time.monotonic() - t0)
    except Exception as e:
        res["slow"] = (0, repr(e), time.monotonic() - t0)
th = threading.Thread(target=slow)
th.start()
time.sleep(0.3)
t0 = time.monotonic()
try:
    st, _, b = request("uwsgi", addr, "GET", "/hello", timeout=10)
except Exception as e:
    st, b = 0, repr(e)
dt = time.monotonic() - t0
report("%s: /hello during a /slow?ms=2000 answers in < 1 s (took %.2f s)" % (pt, dt), st == 200 and dt < 1.0, (st, b))
th.join(15)
st, b, dt = res.get("slow", (0, "no result", 0))
report("%s: the slow request completes (200, about 2 s: %.2f s)" % (pt, dt), st == 200 and b == b"slept 2000 ms\n" and 1.9 < dt < 5, (st, b))
PY
    stop_corral
}
slow_vs_hello 1 4
slow_vs_hello 2 1

# ---- kill -9 of a busy worker: only its in-flight requests fail, the
# other worker's go on, and a replacement serves within a second. Two slow
# requests per worker fill both threads of each (a busy worker stops
# accepting), while a steady load of quick requests runs beside them.
if start_corral --listen "uwsgi:unix:$T/busy.sock" --handler "$DEMO_SO" --processes 2 --threads 2 \
    --control "$T/busy.ctl"; then
    sleep 1.2 # older than the master's fast-death back-off threshold
    PY_TIMEOUT=40 py_checks "$T/busy.sock" "$top_builddir/corralctl" "$T/busy.ctl" "$CORRAL_PID" <<'PY'
import json, os, signal, subprocess, sys, threading, time
from lib_protocols import request, report

sock, ctl, ctlsock, master = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
addr = "unix:" + sock

def workers():
    p = subprocess.run([ctl, "-s", ctlsock, "--json", "workers"], capture_output=True, text=True,
                       timeout=10)
    return json.loads(p.stdout)["workers"]

slow = []
def slow_one():
    try:
        st, _, _ = request("uwsgi", addr, "GET", "/slow?ms=3000", timeout=15)
    except Exception as e:  # noqa: BLE001 -- a killed worker's request fails
        st = repr(e)
    slow.append(st)

fast = {"ok": 0, "failed": 0}
stop = threading.Event()
def fast_loop():
    while not stop.is_set():
        try:
            st, _, _ = request("uwsgi", addr, "GET", "/hello", timeout=10)
        except Exception:  # noqa: BLE001
            st = 0
        fast["ok" if st == 200 else "failed"] += 1
        time.sleep(0.005)

slows = [threading.Thread(target=slow_one) for _ in range(4)]
for t in slows:
    t.start()
# Wait until the four slow requests run: two threads busy in each worker.
busy = {}
for _ in range(50):
    busy = {w["pid"]: sum(t["state"] == "busy" for t in w["threads"]) for w in workers()}
    if sorted(busy.values()) == [2, 2]:
        break
    time.sleep(0.1)
report("4 slow requests fill both threads of both workers", sorted(busy.values()) == [2, 2], busy)
loader = threading.Thread(target=fast_loop)
loader.start()
time.sleep(0.3)
victim = min(busy)
os.kill(victim, signal.SIGKILL)
t0 = time.monotonic()
served = None
while time.monotonic() - t0 < 3:
    ws = workers()
    pids = [w["pid"] for w in ws if w["state"] == "running"]
    if len(pids) == 2 and victim not in pids:
        served = time.monotonic() - t0
        break
    time.sleep(0.02)
report("a replacement runs within 1 s of the kill (%s s)" % (None if served is None else "%.2f" % served),
       served is not None and served < 1.0, served)
for t in slows:
    t.join(20)
time.sleep(0.5)
stop.set()
loader.join(15)
report("the killed worker's 2 slow requests fail, the other worker's 2 succeed",
       sorted(map(str, slow)).count("200") == 2 and len(slow) == 4, slow)
report("the quick requests beside them: none failed (%d answered)" % fast["ok"],
       fast["failed"] == 0 and fast["ok"] > 20, fast)
PY
    expect_file_match "the master logs the killed busy worker" "was killed by signal 9" "$CORRAL_LOG"
    stop_corral
fi

# ---- kill -9 of a worker: logged, replaced, serving again within 2 s
if start_corral --listen "fastcgi:unix:$T/kill.sock" --handler "$DEMO_SO" --processes 2 --threads 2; then
    sleep 1.2 # older than the master's fast-death back-off threshold
    before=$(children_of "$CORRAL_PID")
    victim=${before%% *}
    kill -KILL "$victim"
    t0=$(now_ms)
    replaced() {
        local now
        now=$(children_of "$CORRAL_PID")
        [ "$(echo "$now" | wc -w)" = 2 ] && ! echo " $now " | grep -q " $victim " &&
            "$PY" -m lib_protocols get fastcgi "unix:$T/kill.sock" /hello | grep -q 'Hello, World!'
    }
    if wait_until 2 replaced; then
        ok "a worker killed with SIGKILL is replaced and the pool serves within 2 s ($(($(now_ms) - t0)) ms)"
    else
        fail "a worker killed with SIGKILL is replaced within 2 s" "workers before: $before, now: $(children_of "$CORRAL_PID")" "$(tail -n 5 "$CORRAL_LOG")"
    fi
    expect_file_match "the master logs the killed worker's pid and signal" "pid $victim.*(signal 9|SIGKILL|Killed)" "$CORRAL_LOG"
    py_checks "$T/kill.sock" <<'PY'
import sys
from lib_protocols import hammer, report
good, errs, _ = hammer("fastcgi", "unix:" + sys.argv[1], "/hello", 100, 8, expect_body=b"Hello, World!")
report("after the replacement, 100 requests all answered", good == 100, errs)
PY
    stop_corral
fi

# ---- SIGTERM while a request is in flight: it completes, exit 0
graceful_inflight() {
    local t=$1
    start_corral --listen "uwsgi:unix:$T/term$t.sock" --handler "$DEMO_SO" --processes 1 --threads "$t" --graceful-timeout 10 || return
    "$PY" - "$T/term$t.sock" >"$T/term$t.out" 2>&1 <<'PY' &
import sys, time
from lib_protocols import request
t0 = time.monotonic()
try:
    st, _, b = request("uwsgi", "unix:" + sys.argv[1], "GET", "/slow?ms=1500", timeout=15)
    print(st, b.decode().strip())
except Exception as e:
    print("error", repr(e))
PY
    local client=$!
    sleep 0.4
    local t0
    t0=$(now_ms)
    kill -TERM "$CORRAL_PID"
    if wait_until 8 gone "$CORRAL_PID"; then
        wait "$CORRAL_PID"
        local rc=$?
        local took=$(($(now_ms) - t0))
        expect_eq "threads $t: corral exits 0 after SIGTERM with a request in flight" 0 "$rc"
        if [ $took -lt 8000 ]; then ok "threads $t: ... within the graceful timeout ($took ms)"; else fail "threads $t: exit within 8 s" "took $took ms"; fi
        _forget_pid "$CORRAL_PID"
    else
        fail "threads $t: corral exits within 8 s of SIGTERM with a request in flight" "still running; log:" "$(tail -n 8 "$CORRAL_LOG")"
        stop_corral "$CORRAL_PID" KILL
    fi
    wait "$client"
    expect_eq "threads $t: the in-flight request completes with 200" "200 slept 1500 ms" "$(cat "$T/term$t.out")"
}
graceful_inflight 1
graceful_inflight 4

# ---- SIGTERM drains the queue: connections waiting while the only thread is
# busy are all answered.
if start_corral --listen "scgi:unix:$T/drain.sock" --handler "$DEMO_SO" --processes 1 --threads 1 --graceful-timeout 10; then
    "$PY" - "$T/drain.sock" "$CORRAL_PID" >"$T/drain.out" 2>&1 <<'PY' &
import os, signal, sys, threading, time
from lib_protocols import request, report
addr, master = "unix:" + sys.argv[1], int(sys.argv[2])
res = []
lock = threading.Lock()
def one(uri):
    try:
        st, _, b = request("scgi", addr, "GET", uri, timeout=15)
    except Exception as e:
        st, b = 0, repr(e)
    with lock:
        res.append((uri, st, b))
ths = [threading.Thread(target=one, args=("/slow?ms=1000",))]
ths[0].start()
time.sleep(0.3)
for i in range(6):
    t = threading.Thread(target=one, args=("/params?n=%d" % i,))
    t.start()
    ths.append(t)
time.sleep(0.3)  # all six are connected and have sent their request
os.kill(master, signal.SIGTERM)
for t in ths:
    t.join(20)
slow = [r for r in res if r[0].startswith("/slow")]
report("drain: the busy /slow request completes", slow and slow[0][1] == 200, slow)
queued = [r for r in res if r[0].startswith("/params")]
good = [r for r in queued if r[1] == 200 and ("QUERY_STRING=n=" + r[0][-1]).encode() in r[2]]
report("drain: all 6 queued connections are answered after SIGTERM (%d)" % len(good), len(good) == 6,
       [(r[0], r[1], r[2][:60]) for r in queued if r not in good] or "only %d of 6 returned" % len(queued))
PY
    client=$!
    if wait_until 12 gone "$client"; then
        wait "$client"
    else
        kill "$client"
        fail "drain: the clients finish within 12 s" ""
    fi
    while IFS= read -r line; do
        case $line in
            "ok	"*) ok "${line#ok	}" ;;
            "FAIL	"*) line=${line#FAIL	}; fail "${line%%	*}" "${line#*	}" ;;
            *) echo "     $line" ;;
        esac
    done <"$T/drain.out"
    t0=$(now_ms)
    stop_corral
    expect_eq "drain: exit status 0" 0 "$CORRAL_STATUS"
fi

# ---- --graceful-timeout bounds a graceful stop: a request longer than it is
# cut, and corral still exits.
if start_corral --listen "uwsgi:unix:$T/gt.sock" --handler "$DEMO_SO" --processes 1 --threads 2 --graceful-timeout 1; then
    ( "$PY" -m lib_protocols get uwsgi "unix:$T/gt.sock" "/slow?ms=10000" >/dev/null 2>&1 ) &
    client=$!
    sleep 0.4
    t0=$(now_ms)
    kill -TERM "$CORRAL_PID"
    if wait_until 5 gone "$CORRAL_PID"; then
        wait "$CORRAL_PID"
        ok "--graceful-timeout 1: corral stops $(($(now_ms) - t0)) ms after SIGTERM despite a 10 s request"
        _forget_pid "$CORRAL_PID"
        expect_file_match "--graceful-timeout: the log says the workers were killed at the deadline" 'deadline|kill' "$CORRAL_LOG"
    else
        fail "--graceful-timeout 1: corral stops within 5 s of SIGTERM" "$(tail -n 8 "$CORRAL_LOG")"
        stop_corral "$CORRAL_PID" KILL
    fi
    kill "$client" 2>/dev/null
    wait "$client" 2>/dev/null
fi

# ---- SIGINT stops at once, even with a long request in flight
if start_corral --listen "uwsgi:unix:$T/int.sock" --handler "$DEMO_SO" --processes 2 --threads 2 --graceful-timeout 20; then
    ( "$PY" -m lib_protocols get uwsgi "unix:$T/int.sock" "/slow?ms=8000" >/dev/null 2>&1 ) &
    client=$!
    sleep 0.4
    t0=$(now_ms)
    kill -INT "$CORRAL_PID"
    # "At once": well before the master's 3 s SIGKILL fallback.
    if wait_until 2 gone "$CORRAL_PID"; then
        wait "$CORRAL_PID"
        rc=$?
        ok "SIGINT: corral stops at once ($(($(now_ms) - t0)) ms, status $rc) despite an 8 s request in flight"
        expect_no_match "SIGINT: no worker needed the SIGKILL fallback" 'killing|killed by signal' "$(cat "$CORRAL_LOG")"
        _forget_pid "$CORRAL_PID"
        expect_eq "SIGINT: no worker left" "" "$(pgrep -f "$T/int.sock" | grep -v "^$client\$" | while read -r p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = corral ] && echo "$p"; done)"
        check "SIGINT: the socket file is removed" test ! -e "$T/int.sock"
    else
        fail "SIGINT: corral stops within 2 s" "$(tail -n 8 "$CORRAL_LOG")"
        stop_corral "$CORRAL_PID" KILL
    fi
    kill "$client" 2>/dev/null
    wait "$client" 2>/dev/null
fi

# ---- the access log
if start_corral --listen "fastcgi:unix:$T/acc.sock" --handler "$DEMO_SO" --processes 1 --threads 2 --access-log "$T/access.log"; then
    worker=$(children_of "$CORRAL_PID")
    py_checks "$T/acc.sock" <<'PY'
import sys
from lib_protocols import request, report
st, _, b = request("fastcgi", "unix:" + sys.argv[1], "GET", "/status?code=418", extra={"REMOTE_ADDR": "10.1.2.3"})
report("access log request answered 418", st == 418, st)
st, _, b = request("fastcgi", "unix:" + sys.argv[1], "POST", "/echo", body=b"x" * 1000)
report("access log POST answered", st == 200 and len(b) == 1000, st)
PY
    sleep 0.3
    line=$(grep 'code=418' "$T/access.log" 2>/dev/null | tail -n 1)
    expect_match "access log: remote address, method, URI, status" '10\.1\.2\.3 "GET /status\?code=418" 418 ' "$line"
    expect_match "access log: bytes, duration and pid" '" 418 [0-9]+ [0-9.]+(us|ms|s) pid='"$worker"'$' "$line"
    line=$(grep '/echo' "$T/access.log" 2>/dev/null | tail -n 1)
    expect_match "access log: a POST with its byte count (>= 1000)" '"POST /echo" 200 [0-9]{4,} ' "$line"
    stop_corral
fi

# ---- a stalled front end does not pin the thread (--threads 1)
if start_corral --listen "uwsgi:unix:$T/stall.sock" --listen "fastcgi:unix:$T/stallf.sock" --handler "$DEMO_SO" --processes 1 --threads 1 --io-timeout 1; then
    py_checks "$T/stall.sock" "$T/stallf.sock" <<'PY'
import socket, sys, time, threading
from lib_protocols import connect, request, report, uwsgi_packet, cgi_params, fcgi_begin, fcgi_params_records, fcgi_record, FCGI_STDIN
u, f = "unix:" + sys.argv[1], "unix:" + sys.argv[2]

# 1. Half a uwsgi header: parked in epoll, holds no thread.
s = connect(u)
pkt = uwsgi_packet(cgi_params("GET", "/hello"))
s.sendall(pkt[:len(pkt) // 2])
time.sleep(0.2)
t0 = time.monotonic()
st, _, b = request("uwsgi", u, "GET", "/hello", timeout=5)
dt = time.monotonic() - t0
report("an incomplete uwsgi head holds no thread: /hello answers in %.2f s" % dt, st == 200 and dt < 1.0, (st, b))
s.close()

# 2. A body that stops: CONTENT_LENGTH 100, 10 bytes sent. The thread reading
# it must give up after the io-timeout (1 s) and serve the next request.
def stalled(proto, addr):
    s = connect(addr)
    if proto == "uwsgi":
        s.sendall(uwsgi_packet(cgi_params("POST", "/echo", 100)) + b"0123456789")
    else:
        s.sendall(fcgi_begin(1) + fcgi_params_records(cgi_params("POST", "/echo", 100)) + fcgi_record(FCGI_STDIN, 1, b"0123456789"))
    return s
for proto, addr in (("uwsgi", u), ("fastcgi", f)):
    s = stalled(proto, addr)
    time.sleep(0.2)
    t0 = time.monotonic()
    try:
        st, _, b = request(proto, addr, "GET", "/hello", timeout=6)
    except Exception as e:
        st, b = 0, repr(e)
    dt = time.monotonic() - t0
    report("%s: a stalled body read is cut after the io-timeout: the next request is answered (%.2f s)" % (proto, dt),
           st == 200 and b == b"Hello, World!" and dt < 3.0, (st, b))
    s.settimeout(3)
    try:
        rest = b""
        while True:
            x = s.recv(65536)
            if not x:
                break
            rest += x
        closed = True
    except Exception as e:
        closed, rest = False, repr(e)
    report("%s: the stalled connection was closed by the server" % proto, closed, rest)
    s.close()
PY
    expect_file_match "the error log names the stalled peer's listener and the reason" 'uwsgi:unix:.*stall\.sock.*(time|Timer|timed)' "$CORRAL_LOG"
    stop_corral
fi

finish
