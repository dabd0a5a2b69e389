#!/bin/bash
# recycle.sh -- workers replaced on purpose: --max-requests (with jitter)
# and --max-rss recycle a worker with no failed request; --slowlog logs a
# slow request with the Python stack of its thread; --harakiri logs the
# stack, ends the worker and the master replaces it (a pure-Python loop, a
# C call holding the GIL, a native handler).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-150}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
APP=$top_srcdir/tests/apps/wsgi_runtime.py

# ---- --max-requests with jitter, under concurrent load: nothing fails
start_corral --listen "uwsgi:unix:$T/m.sock" --wsgi-file "$APP" --processes 2 --threads 2 \
    --max-requests 40 --max-requests-jitter 20 || finish
py_checks "$T" <<'PY'
import sys, threading
from lib_protocols import report, request
addr = "unix:%s/m.sock" % sys.argv[1]
pids, errors = [], []
def client():
    for _ in range(60):
        try:
            st, _, b = request("uwsgi", addr, "GET", "/pid", timeout=20)
            if st != 200:
                errors.append(st)
            else:
                pids.append(int(b.split()[1]))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
ts = [threading.Thread(target=client) for _ in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
report("max-requests: 480 requests from 8 clients, none failed", not errors and len(pids) == 480,
       errors[:5])
counts = {}
for p in pids:
    counts[p] = counts.get(p, 0) + 1
report("max-requests: workers were replaced (%d worker pids served)" % len(counts),
       len(counts) >= 480 // 60, counts)
# A worker at its limit still finishes what its threads hold: the request
# in its other thread, a connection one of them had just accepted.
report("max-requests: no worker served much more than 40 + 20 (most: %d)"
       % max(counts.values()), max(counts.values()) <= 64, counts)
# The 2 workers alive at the end may have served fewer; every other one
# reached its own limit, 40 to 60.
short = sorted(counts.values())[2:]
report("max-requests: each replaced worker served 40 to 60 (%d workers in all)" % len(counts),
       all(n >= 40 for n in short) and len(counts) <= 480 // 40 + 2, counts)
PY
n=$(grep -c 'served .* requests (max-requests 40, jitter 20): recycling' "$CORRAL_LOG")
check "max-requests: each recycling is logged ($n lines)" test "$n" -ge 6 -a "$n" -le 12
limits=$(grep -o 'served [0-9]* requests (max-requests' "$CORRAL_LOG" | awk '{print $2}' | sort -u | wc -l)
check "max-requests: the jitter spreads the limits ($limits distinct)" test "$limits" -ge 2
expect_no_match "max-requests: no error logged" ' error ' "$(cat "$CORRAL_LOG")"
stop_corral
expect_eq "max-requests: corral stops with status 0" 0 "$CORRAL_STATUS"

# ---- a recycled worker whose other thread holds a request past
# --graceful-timeout (no --harakiri) is killed by the master and replaced,
# rather than kept alive by that request.
start_corral --listen "uwsgi:unix:$T/g.sock" --handler "$DEMO_SO" --processes 1 --threads 2 \
    --max-requests 2 --graceful-timeout 2 || finish
first=$(children_of "$CORRAL_PID")
( "$PY" -m lib_protocols get uwsgi "unix:$T/g.sock" "/slow?ms=20000" >"$T/g-slow.out" 2>&1 ) &
client=$!
sleep 0.3 # the slow request holds one thread
"$PY" -m lib_protocols get uwsgi "unix:$T/g.sock" /hello >/dev/null 2>&1 # the second: recycling
t0=$(now_ms)
wait_until 8 grep -q 'has been stopping for' "$CORRAL_LOG"
expect_file_match "recycled worker stuck past graceful_timeout: killed by the master" \
    "worker 0 \\(pid $first\\) has been stopping for [2-3]\\.[0-9] s \\(graceful_timeout\\) with 1 connection\\(s\\) still open: killing it" \
    "$CORRAL_LOG"
expect_lt "... about 2 s after it began to stop (ms)" "$(($(now_ms) - t0))" 4500
check "... and a replacement serves" "$PY" -m lib_protocols ping uwsgi "unix:$T/g.sock"
check "... in a new process" test "$(children_of "$CORRAL_PID")" != "$first"
wait "$client" 2>/dev/null
stop_corral

# ---- --max-rss: the worker that grew past it is replaced after its request
start_corral --listen "uwsgi:unix:$T/r.sock" --wsgi-file "$APP" --processes 1 --threads 1 \
    --max-rss 100 || finish
py_checks "$T" <<'PY'
import sys, time
from lib_protocols import report, request
addr = "unix:%s/r.sock" % sys.argv[1]
_, _, b = request("uwsgi", addr, "GET", "/pid")
before = int(b.split()[1])
st, _, b = request("uwsgi", addr, "GET", "/hog?mb=150")
report("max-rss: the request that grew the worker is answered", (st, b) ==
       (200, b"hogging %d" % (150 << 20)), (st, b))
answers = [request("uwsgi", addr, "GET", "/pid", timeout=20) for _ in range(5)]
after = {int(b.split()[1]) for _, _, b in answers}
report("max-rss: the next requests are served by a new worker",
       all(st == 200 for st, _, _ in answers) and before not in after, (before, after))
PY
expect_file_match "max-rss: the recycling is logged with the RSS" \
    'RSS [0-9.]+ MiB is over max-rss 100 MiB: recycling' "$CORRAL_LOG"
stop_corral

# ---- --slowlog: logged with the stack, the request still completes
start_corral --listen "uwsgi:unix:$T/s.sock" --wsgi-file "$APP" --processes 1 --threads 2 \
    --slowlog 0.4 || finish
py_checks "$T" <<'PY'
import sys
from lib_protocols import report, request
st, _, b = request("uwsgi", "unix:%s/s.sock" % sys.argv[1], "GET", "/spin?s=1", timeout=20)
report("slowlog: the slow request completes", (st, b) == (200, b"spun"), (st, b))
PY
expect_file_match "slowlog: the request is logged with its elapsed time" \
    'slowlog: worker 0 thread [01]: GET /spin\?s=1 has run for 0\.[4-9] s' "$CORRAL_LOG"
expect_file_match "slowlog: with the Python stack of its thread" \
    'slowlog: worker 0 thread [01]: +File ".*wsgi_runtime\.py", line [0-9]+ in busy_loop' \
    "$CORRAL_LOG"
n=$(grep -c 'slowlog: .* has run for' "$CORRAL_LOG")
expect_eq "slowlog: once per request" 1 "$n"
stop_corral

# ---- --harakiri: WSGI in Python, WSGI holding the GIL in C, native
harakiri_case() { # LABEL SOCK URI [corral args...]
    local label=$1 sock=$2 uri=$3
    shift 3
    start_corral --listen "uwsgi:unix:$sock" --processes 1 --threads 2 --harakiri 1 "$@" ||
        return
    local master=$CORRAL_PID first
    first=$(children_of "$master")
    py_checks "$sock" "$uri" "$label" <<'PY'
import sys, time
from lib_protocols import report, request
sock, uri, label = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.monotonic()
try:
    st, _, b = request("uwsgi", "unix:" + sock, "GET", uri, timeout=20)
    outcome = (st, b)
except Exception as e:  # noqa: BLE001
    outcome = repr(e)
secs = time.monotonic() - t0
report("%s: the stuck request ends in %.1f s (harakiri 1 s), not answered 200" % (label, secs),
       1.0 <= secs < 4 and not (isinstance(outcome, tuple) and outcome[0] == 200), outcome)
t0 = time.monotonic()
ok = False
while time.monotonic() - t0 < 5 and not ok:
    try:
        ok = request("uwsgi", "unix:" + sock, "GET", "/hello", timeout=5)[0] == 200
    except Exception:  # noqa: BLE001
        time.sleep(0.05)
report("%s: a replacement worker serves %.2f s later" % (label, time.monotonic() - t0), ok)
PY
    expect_file_match "$label: harakiri is logged with the request and the time" \
        "harakiri: worker 0 thread [01]: GET ${uri//\?/\\?} has run for 1\.[0-9] s \(harakiri 1\.0 s\)" \
        "$CORRAL_LOG"
    expect_file_match "$label: the master says why the worker ended" \
        'worker 0 \(pid [0-9]+\) ended by harakiri' "$CORRAL_LOG"
    check "$label: the worker was replaced" test "$(children_of "$master")" != "$first"
    HARAKIRI_LOG=$CORRAL_LOG
    stop_corral
}
harakiri_case "harakiri (Python loop)" "$T/h1.sock" "/spin?s=30" --wsgi-file "$APP"
expect_file_match "harakiri (Python loop): the Python stack names the function" \
    'harakiri: worker 0 thread [01]: +File ".*wsgi_runtime\.py", line [0-9]+ in busy_loop' \
    "$HARAKIRI_LOG"
harakiri_case "harakiri (C call holding the GIL)" "$T/h2.sock" "/hold?s=30" --wsgi-file "$APP"
expect_file_match "harakiri (C call holding the GIL): the stack still names the function" \
    'harakiri: worker 0 thread [01]: +File ".*wsgi_runtime\.py", line [0-9]+ in hold_the_gil' \
    "$HARAKIRI_LOG"
harakiri_case "harakiri (native)" "$T/h3.sock" "/slow?ms=30000" --handler "$DEMO_SO"

# A worker that cannot end itself (stopped: its watchdog cannot run) is
# killed by the master a grace period later, and replaced.
start_corral --listen "uwsgi:unix:$T/h4.sock" --processes 1 --threads 1 --harakiri 1 \
    --handler "$DEMO_SO" || finish
stopped=$(children_of "$CORRAL_PID")
"$PY" -c "
import sys
from lib_protocols import request
try:
    request('uwsgi', 'unix:$T/h4.sock', 'GET', '/slow?ms=30000', timeout=15)
except Exception:
    pass
" &
client=$!
sleep 0.5 # the request has started
kill -STOP "$stopped"
t0=$(now_ms)
wait_until 10 grep -q 'did not end itself: killing it' "$CORRAL_LOG"
expect_file_match "a stopped worker is killed by the master" \
    'harakiri: worker 0 \(pid [0-9]+\) thread 0: GET /slow\?ms=30000 has run for [4-6]\.[0-9] s and the worker did not end itself: killing it' \
    "$CORRAL_LOG"
expect_lt "... about harakiri + 3 s after the request began (ms since STOP)" "$(($(now_ms) - t0))" 7000
check "... and replaced" "$PY" -m lib_protocols ping uwsgi "unix:$T/h4.sock"
wait "$client" 2>/dev/null
stop_corral

finish
