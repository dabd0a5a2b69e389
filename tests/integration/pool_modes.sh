#!/bin/bash
# pool_modes.sh -- --pool dynamic and ondemand, observed with
# `corralctl workers --json` and `status --json`: dynamic grows under
# concurrent slow requests up to --max-processes and shrinks back to
# max_spare, one idle worker a second; ondemand starts with no worker, serves
# the first request from the backlog, lets idle workers exit after
# --idle-worker-timeout (a scale-down, not a crash), and logs "max processes
# reached" once per episode.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-150}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$CTL" "$DEMO_SO"

# live : worker processes with a pid in `workers --json`.
live() {
    ctl --json workers || { echo "?"; return; }
    jq_py 'sum(1 for w in d["workers"] if w["pid"])'
}
live_is() { [ "$(live)" = "$1" ]; }

# slow_burst ADDR N MS OUT : N concurrent /slow?ms=MS in the background;
# writes "N_OK N" to OUT when all are answered. Sets BURST_PID.
slow_burst() {
    "$PY" - "$@" <<'PY' &
import sys, threading
from lib_protocols import request
addr, n, ms, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
codes = []
def one():
    try:
        codes.append(request("uwsgi", addr, uri="/slow?ms=" + ms, timeout=30)[0])
    except Exception as e:
        codes.append(repr(e))
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
open(out, "w").write("%d %d\n" % (codes.count(200), n))
PY
    BURST_PID=$!
    _track "$BURST_PID"
}

# ---- dynamic
U=$T/d.sock SOCK=$T/d-ctl.sock
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$T/d-f.sock" --handler "$DEMO_SO" \
    --pool dynamic --start-processes 1 --min-spare 1 --max-spare 2 --max-processes 4 --threads 1 \
    --control "$SOCK" || finish
# A dynamic pool can grow to --max-processes: FastCGI GET_VALUES says so.
expect_eq "dynamic: FCGI_GET_VALUES answers FCGI_MAX_CONNS 4096, FCGI_MAX_REQS 4 (4 x 1 thread)" \
    "4096 4" "$(fcgi_get_values "unix:$T/d-f.sock")"
ctl --json status
expect_eq "dynamic: status shows the mode and the spares" "('dynamic', 1, 1, 2, 4)" \
    "$(jq_py '(d["pool"]["mode"], d["pool"]["start_processes"], d["pool"]["min_spare"], d["pool"]["max_spare"], d["pool"]["max_processes"])')"
expect_file_match "dynamic: starts start_processes workers" \
    "corral started: pool dynamic, 1 processes to start \(at most 4\)" "$CORRAL_LOG"
n=$(live)
check "dynamic: 1 or 2 workers while idle (min_spare 1, max_spare 2): $n" \
    test "$n" -ge 1 -a "$n" -le 2
ctl scale 3
expect_eq "dynamic: corralctl scale is refused (exit 1)" 1 "$CTL_RC"
expect_match "dynamic: the refusal says why" "the pool is dynamic: it sizes itself" \
    "$(cat "$T/ctl.out" "$T/ctl.err")"

# 6 slow requests on 1-thread workers: the pool grows to its maximum of 4.
slow_burst "unix:$U" 6 4000 "$T/burst1"
check "dynamic: grows to max_processes 4 under 6 concurrent slow requests (within 8 s)" \
    wait_until 8 live_is 4
ctl --json workers
expect_eq "dynamic: 4 workers, slots 0 to 3" "[0, 1, 2, 3]" \
    "$(jq_py '[w["index"] for w in d["workers"] if w["pid"]]')"
expect_eq "dynamic: the workers are the master's children" "$(children_of "$CORRAL_PID")" \
    "$(jq_py '" ".join(str(p) for p in sorted(w["pid"] for w in d["workers"] if w["pid"]))')"
check "dynamic: the slow requests are all answered" wait_until 20 test -s "$T/burst1"
expect_eq "dynamic: 6 of 6 slow requests got 200" "6 6" "$(cat "$T/burst1")"
wait "$BURST_PID" 2>/dev/null
ctl --json status
expect_eq "dynamic: max processes reached once (status)" 1 "$(jq_py 'd["pool"]["max_reached"]')"
expect_eq "dynamic: max processes reached is logged once" 1 \
    "$(grep -c 'pool dynamic: max processes (4) reached' "$CORRAL_LOG")"

# Idle again: back down to max_spare 2, one worker a second, never below.
check "dynamic: shrinks to max_spare 2 when idle (within 10 s)" wait_until 10 live_is 2
sleep 2
expect_eq "dynamic: stays at max_spare 2" 2 "$(live)"
expect_eq "dynamic: 2 idle workers stopped as a scale-down" 2 \
    "$(grep -c 'exited with status 0 after a scale-down' "$CORRAL_LOG")"
gaps=$(grep 'more than max_spare 2: stopping worker' "$CORRAL_LOG" |
    "$PY" -c 'import sys, datetime
ts = [datetime.datetime.fromisoformat(l.split()[0].rstrip("Z")) for l in sys.stdin]
print(min((b - a).total_seconds() for a, b in zip(ts, ts[1:])) if len(ts) > 1 else 9)')
expect_lt "dynamic: at most one idle worker stopped per second (smallest gap, s)" 0.9 "$gaps"
expect_eq "dynamic: no crash respawn" 0 "$(ctl --json status; jq_py 'd["totals"]["respawns"]')"
stop_corral
expect_eq "dynamic: corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"

# ---- ondemand: started by hand, since start_corral's readiness ping would
# be the first request.
U=$T/o.sock SOCK=$T/o-ctl.sock LOG=$T/ondemand.log
"$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$U" --handler "$DEMO_SO" --pool ondemand --max-processes 2 \
    --threads 1 --idle-worker-timeout 1.5 --control "$SOCK" --error-log "$LOG" \
    >"$T/ondemand.out" 2>&1 </dev/null &
CORRAL_PID=$!
_track "$CORRAL_PID"
check "ondemand: the control socket is up" wait_until 10 test -S "$SOCK"
sleep 0.5
expect_eq "ondemand: no worker before any connection" "0 ''" "$(live) '$(children_of "$CORRAL_PID")'"

py_checks "unix:$U" <<'PY'
import sys, time
from lib_protocols import request, report
t0 = time.monotonic()
st, _, body = request("uwsgi", sys.argv[1], uri="/hello", timeout=10)
took = time.monotonic() - t0
report("ondemand: the first request waits in the backlog and is served", (st, body) == (200, b"Hello, World!"), repr((st, body)))
report("ondemand: ... within 2 s (%.2f s)" % took, took < 2)
PY
expect_eq "ondemand: one worker after the first request" 1 "$(live)"
check "ondemand: the idle worker exits after --idle-worker-timeout 1.5 (within 6 s)" \
    wait_until 6 live_is 0
expect_file_match "ondemand: the worker says why it exits" \
    "worker 0: idle for 1\.[5-9] s \(idle-worker-timeout\): exiting" "$LOG"
expect_file_match "ondemand: the master takes it as a scale-down" \
    "pool ondemand: worker 0 \(pid [0-9]+\) exited after 1\.5 s idle" "$LOG"
ctl --json status
expect_eq "ondemand: not counted as a respawn" 0 "$(jq_py 'd["totals"]["respawns"]')"
expect_eq "ondemand: no worker process left" "" "$(children_of "$CORRAL_PID")"

# Two bursts of 4 slow requests on at most 2 one-thread workers: two
# episodes of "max processes reached", each logged once.
for episode in 1 2; do
    slow_burst "unix:$U" 4 1500 "$T/oburst$episode"
    check "ondemand: burst $episode answered" wait_until 25 test -s "$T/oburst$episode"
    expect_eq "ondemand: burst $episode: 4 of 4 got 200" "4 4" "$(cat "$T/oburst$episode")"
    wait "$BURST_PID" 2>/dev/null
    sleep 0.5
done
expect_eq "ondemand: max processes reached logged once per episode (2)" 2 \
    "$(grep -c 'pool ondemand: max processes (2) reached with [0-9]* connections waiting' "$LOG")"
ctl --json status
expect_eq "ondemand: status counts 2 episodes" 2 "$(jq_py 'd["pool"]["max_reached"]')"
expect_eq "ondemand: never more than 2 workers" 0 \
    "$(grep -c 'worker [2-9] started' "$LOG")"
stop_corral
expect_eq "ondemand: corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"
finish
