#!/bin/bash
# accept_balance.sh -- how the workers of a pool share the listeners
# (src/worker/worker_slots.c): a worker well ahead of another steps back
# only while that one accepts, and wakes it when it should take its share
# again, so a burst of connects never leaves every worker out of the epoll
# set waiting for a tick. On a 2 x 2 pool of demo.so:
#   1. 1,000 idle connects, then a request behind them: answered at once,
#      and both workers hold some of the idle connections; 4 requests
#      beside 1,500 connections whose heads never end: answered;
#   2. 2,000 kept FastCGI connections opened one after another (each with
#      one keep-conn request, then held): all answered, at a rate far above
#      a few connections per tick;
#   3. --max-conns 20 and 40 idle connections: the log says the limit took
#      the listeners out (once per worker, not a flood) and, once a
#      connection closes, that the worker accepts again.
# The figures measured are printed (rates, times, connections per worker).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# conns_per_worker : "N M" the connections each worker of $CORRAL_PID holds
# (its sockets minus the listener).
conns_per_worker() {
    local w s out=""
    for w in $(children_of "$CORRAL_PID"); do
        s=$(find "/proc/$w/fd" -lname 'socket:*' 2>/dev/null | wc -l)
        out="$out $((s - 1))"
    done
    echo "${out# }"
}

# ---- 1. a request behind 1,000 idle connects
SOCK=$T/u.sock
start_corral --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --processes 2 --threads 2 \
    --backlog 2048 || finish
PY_TIMEOUT=40 py_checks "unix:$SOCK" "$CORRAL_PID" <<'PY'
import os, socket, sys, time
from lib_protocols import request, report

addr, master = sys.argv[1], sys.argv[2]
held = []
t0 = time.monotonic()
for i in range(1000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(addr[5:])
    held.append(s)
t1 = time.monotonic()
try:
    r = request("uwsgi", addr, uri="/hello", timeout=25)
except OSError as e:
    r = (None, repr(e))
t2 = time.monotonic()
print("1,000 idle connects took %.2f s, the request behind them %.2f s more" % (t1 - t0, t2 - t1))
report("the request behind 1,000 idle connects is answered", r[0] == 200, repr(r)[:200])
report("... within 3 s of the first connect (a few per tick would take many)",
       t2 - t0 < 3.0, "%.2f s" % (t2 - t0))
kids = open("/proc/%s/task/%s/children" % (master, master)).read().split()
held_by = []
for k in kids:
    n = sum(1 for f in os.listdir("/proc/%s/fd" % k)
            if os.readlink("/proc/%s/fd/%s" % (k, f)).startswith("socket:"))
    held_by.append(n - 1)
print("idle connections per worker: %s" % held_by)
report("both workers hold idle connections (at least 200 each)",
       len(held_by) == 2 and min(held_by) >= 200, held_by)
for s in held:
    s.close()
PY
# ... and 4 requests beside 1,500 connections whose heads never end.
PY_TIMEOUT=40 py_checks "unix:$SOCK" <<'PY'
import socket, sys, threading, time
from lib_protocols import request, report, uwsgi_packet, cgi_params

addr = sys.argv[1]
part = uwsgi_packet(cgi_params(uri="/hello"))[:3]
held = []
for i in range(1500):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(addr[5:])
    s.sendall(part)
    held.append(s)
res = []
def one():
    a = time.monotonic()
    try:
        st = request("uwsgi", addr, uri="/hello", timeout=5)[0]
    except OSError as e:
        st = type(e).__name__
    res.append((st, round(time.monotonic() - a, 3)))
ts = [threading.Thread(target=one) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("4 requests beside 1,500 unfinished heads (status, seconds): %s" % res)
report("4 requests beside 1,500 unfinished heads are answered",
       sorted(r[0] for r in res) == [200] * 4, res)
for s in held:
    s.close()
PY
stop_corral
expect_eq "corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"

# ---- 2. 2,000 kept FastCGI connections opened one after another
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 8192 ]; then
    say "skipped the 2,000 kept connections: the open files limit is $(ulimit -Hn)"
else
    ulimit -n "$(ulimit -Hn)"
    SOCK=$T/f.sock
    start_corral --listen "fastcgi:unix:$SOCK" --handler "$DEMO_SO" --processes 2 --threads 2 \
        --max-conns 2048 --backlog 2048 || finish
    PY_TIMEOUT=40 py_checks "unix:$SOCK" "$CORRAL_PID" <<'PY'
import os, sys, time
from lib_protocols import FcgiConn, report

addr, master = sys.argv[1], sys.argv[2]
N, DEADLINE = 2000, 15.0
held, slowest, answered = [], 0.0, 0
t0 = time.monotonic()
while len(held) < N and time.monotonic() - t0 < DEADLINE:
    a = time.monotonic()
    c = FcgiConn(addr, keep_conn=True, timeout=20)
    st = c.request(uri="/hello")[0]
    answered += st == 200
    slowest = max(slowest, time.monotonic() - a)
    held.append(c)
took = time.monotonic() - t0
print("%d kept FastCGI connections opened in %.2f s: %.0f per second, the slowest "
      "connect+answer %.1f ms" % (len(held), took, len(held) / took, slowest * 1000))
report("all %d kept connections opened and answered" % N, answered == N,
       "%d answered in %.1f s" % (answered, took))
report("... within 10 s (at a few connections per tick it takes half a minute)", took < 10.0,
       "%.2f s" % took)
kids = open("/proc/%s/task/%s/children" % (master, master)).read().split()
held_by = []
for k in kids:
    n = sum(1 for f in os.listdir("/proc/%s/fd" % k)
            if os.readlink("/proc/%s/fd/%s" % (k, f)).startswith("socket:"))
    held_by.append(n - 1)
print("kept connections per worker: %s" % held_by)
# The kept connections still serve, on either worker.
bad = 0
for c in held[::100]:
    bad += c.request(uri="/hello")[0] != 200
report("a second request on held connections is answered", bad == 0, "%d failed" % bad)
for c in held:
    c.close()
PY
    stop_corral
    expect_eq "corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"
fi

# ---- 3. the max-conns limit is logged
SOCK=$T/m.sock
start_corral --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --processes 2 --threads 2 \
    --max-conns 20 || finish
LOG=$CORRAL_LOG
PY_TIMEOUT=40 py_checks "unix:$SOCK" "$LOG" <<'PY'
import re, socket, sys, time
from lib_protocols import connect, recv_all, report, uwsgi_packet, cgi_params

addr, log = sys.argv[1], sys.argv[2]
full_re = re.compile(r"\d+ connections open, the max-conns limit \(--max-conns 20\): "
                     r"not accepting new connections")
def count(rx):
    with open(log) as f:
        return len(rx.findall(f.read()))
def wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()

held = [connect(addr, timeout=20) for _ in range(40)]
# One more, with a request: it waits in the listen queue while both are full.
extra = connect(addr, timeout=20)
extra.sendall(uwsgi_packet(cgi_params(uri="/hello")))
wait_for(lambda: count(full_re) >= 2, 5)
time.sleep(1.5)  # time enough for a flood to show
lines = count(full_re)
print("lines about the max-conns limit with 40 idle connections held: %d" % lines)
report("the log says the max-conns limit took the listeners out", lines >= 1,
       open(log).read()[-2000:])
report("... once per worker, not a flood", 1 <= lines <= 2, "%d lines" % lines)
extra.settimeout(0.3)
try:
    early = extra.recv(100)
except socket.timeout:
    early = None
report("the request beyond the limit waits while both workers are full", early is None,
       repr(early))
held.pop().close()
extra.settimeout(10)
raw = recv_all(extra, time.monotonic() + 10)
report("... and is answered once a connection closes", raw.startswith(b"HTTP/1.1 200"),
       raw[:100])
again = re.compile(r"a connection closed: accepting again \(max-conns 20\)")
report("the log says the worker accepts again",
       wait_for(lambda: count(again) >= 1, 5), open(log).read()[-2000:])
for s in held:
    s.close()
PY
stop_corral
expect_eq "corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"
finish
