#!/bin/bash
# asgi_loop.sh -- the ASGI worker's event loop (src/apps/asgi/app_asgi_loop.c: asyncio's
# selector loop with call_soon, call_at, call_later, time, create_future and _run_once in
# C) against CPython's own asyncio tests: the test.test_asyncio modules below run inside a
# worker (tests/apps/asgi_loop_suite.py) on corral's loop, and again on the standard
# library's loop (--asgi-loop asyncio) in a second corral at the same time. No test may
# fail on corral's loop that passes on asyncio's. Left out: what needs the main thread or
# children of the worker (subprocesses, a new process, signals, fork, pipes to children).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-300}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
APPS=$top_srcdir/tests/apps
"$APP_PY" -c 'import test.test_asyncio.test_tasks' 2>/dev/null ||
    { fail "requirement: CPython's test suite for $APP_PY" \
        "apt-get install libpython3.11-testsuite (contrib/install-deps.sh)"; finish; }
MODULES="test_events test_tasks test_futures test_futures2 test_timeouts test_waitfor
    test_locks test_queues test_taskgroups test_pep492 test_context test_streams
    test_sock_lowlevel"
SKIP='[Ss]ubprocess|new_process|[Ss]ignal|[Ff]ork|[Cc]hild|[Pp]ipe|Proactor|Windows'

run_suite() { # NAME LOOP : starts a corral running the tests on LOOP; sets ${NAME}_PID
    start_corral --listen "http:tcp:127.0.0.1:$(free_port)" --asgi asgi_loop_suite:app \
        --pythonpath "$APPS" --asgi-loop "$2" --processes 1 --threads 1 \
        --env "ASGI_LOOP_OUT=$T/$1.json" --env "ASGI_LOOP_TESTS=$MODULES" \
        --env "ASGI_LOOP_SKIP=$SKIP" || finish
    eval "${1}_PID=$CORRAL_PID"
}
run_suite ours corral
run_suite stock asyncio
for _ in $(seq 240); do
    [ -f "$T/ours.json" ] && [ -f "$T/stock.json" ] && break
    sleep 1
done
stop_corral "$ours_PID"
stop_corral "$stock_PID"

py_checks "$T" <<'PY'
import json, sys
from lib_protocols import report
T = sys.argv[1]
try:
    ours, stock = (json.load(open("%s/%s.json" % (T, n))) for n in ("ours", "stock"))
except OSError as e:
    report("both runs of the asyncio tests finished within 240 s", False, e)
    sys.exit(0)
report("the tests ran on corral's loop (LoopCore, then asyncio's selector loop)",
       ours["classes"][1:3] == ["LoopCore", "_UnixSelectorEventLoop"], ours["classes"])
report("... and on asyncio's own loop in the other run",
       "LoopCore" not in stock["classes"], stock["classes"])
report("the same tests ran on both (%d; more than 1,500)" % ours["run"],
       ours["run"] == stock["run"] > 1500, (ours["run"], stock["run"]))
worse = sorted(set(ours["bad"]) - set(stock["bad"]))
report("no asyncio test fails on corral's loop that passes on asyncio's (%d fail on both: "
       "they need the main thread)" % len(stock["bad"]), not worse,
       "\n".join(worse[:20]) + "\n" + ours["log"][-3000:])
report("the tests that fail on both are few (at most 10)", len(stock["bad"]) <= 10,
       stock["bad"])
PY
finish
