#!/bin/bash
# crash.sh -- workers that die while the pool runs: a request that crashes
# its worker (SIGSEGV) gets the worker respawned at once, not the start-up
# back-off, and the log names the signal and the request; after the master
# is SIGKILLed its orphaned workers let go of the listeners at once (a new
# corral binds the same socket) and exit within --graceful-timeout even with
# a request stuck in the app.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# ---- crashing requests do not put the pool in the start-up back-off
U=$T/crash.sock
if start_corral --listen "uwsgi:unix:$U" --handler "$DEMO_SO" --processes 2 --threads 2; then
    sleep 1.2 # past the start: the first deaths are not start-up failures on any build
    py_checks "$U" <<'PY'
import sys, threading, time
from lib_protocols import request, report
addr = "unix:" + sys.argv[1]
# Bursts of crashing requests, each crash within a second of the last:
# every replacement worker is killed soon after it started.
for burst in range(3):
    ths = []
    for _ in range(3):
        def crash():
            try:
                request("uwsgi", addr, "GET", "/crash?n=%d" % burst, timeout=1)
            except Exception:  # noqa: BLE001 -- the worker dies: no answer
                pass
        th = threading.Thread(target=crash)
        th.start()
        ths.append(th)
    for th in ths:
        th.join()
# Normal requests right after: each answered within its timeout.
good, errs = 0, []
for i in range(20):
    try:
        st, _, b = request("uwsgi", addr, "GET", "/hello?i=%d" % i, timeout=2)
        if st == 200 and b == b"Hello, World!":
            good += 1
        else:
            errs.append("status %d" % st)
    except Exception as e:  # noqa: BLE001
        errs.append("%s: %s" % (type(e).__name__, e))
report("after crashing requests, 20 of 20 normal requests answered at once (%d)" % good,
       good == 20, "; ".join(errs[:5]))
PY
    expect_file_match "the log names the signal and the crashing request" \
        'killed by signal 11 .*while serving GET /crash\?n=[0-9] \(thread [0-9]\); respawning at once' \
        "$CORRAL_LOG"
    expect_no_match "no slot went into the start-up back-off" 'respawning in [0-9]+ s' \
        "$(cat "$CORRAL_LOG")"
    stop_corral
fi

# ---- an orphaned worker lets go of the listener and exits in time
O=$T/orphan.sock
if start_corral --listen "uwsgi:unix:$O" --handler "$DEMO_SO" --processes 2 --threads 1 \
    --graceful-timeout 2; then
    first_log=$CORRAL_LOG
    sleep 0.5 # every worker running
    kids=$(children_of "$CORRAL_PID")
    expect_eq "2 workers" 2 "$(echo "$kids" | wc -w)"
    # A request that sleeps 30 s: its worker's only thread is stuck in the app.
    timeout 40 "$PY" -m lib_protocols get uwsgi "unix:$O" "/slow?ms=30000" >/dev/null 2>&1 &
    slow=$!
    sleep 0.5
    kill -KILL "$CORRAL_PID"
    wait "$CORRAL_PID" 2>/dev/null
    _forget_pid "$CORRAL_PID"
    sleep 0.5
    # The orphans still run (one serves the slow request), yet the socket is free.
    if start_corral --listen "uwsgi:unix:$O" --handler "$DEMO_SO" --processes 1 --threads 1; then
        ok "a new corral binds the socket while the orphans finish"
        check "the new corral serves" "$PY" -m lib_protocols get uwsgi "unix:$O" /hello
        stop_corral
    fi
    all_gone() {
        local k
        for k in $kids; do gone "$k" || return 1; done
    }
    if wait_until 5 all_gone; then
        ok "the orphaned workers exited within the graceful timeout"
    else
        fail "the orphaned workers exited within the graceful timeout" "still running: $kids"
        for k in $kids; do kill -KILL "$k" 2>/dev/null; done
    fi
    expect_file_match "the orphan says why it stops" 'the master \(pid [0-9]+\) is gone' \
        "$first_log"
    kill "$slow" 2>/dev/null
    wait "$slow" 2>/dev/null
fi

finish
