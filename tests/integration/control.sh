#!/bin/bash
# control.sh -- the control socket (--control) and corralctl: status and
# workers against what really runs (pids, request counts, in-flight
# requests), scale up and down (corralctl and SIGTTIN/SIGTTOU), bad commands,
# garbage, overlong lines, silent and slow clients, the socket's mode and
# another user, reopen-logs and SIGUSR1 after a rename, stop and quit, and
# `corralctl top` under tmux.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-240}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$CTL" "$DEMO_SO"
need tmux tmux

# ---- helpers


# expect_json NAME EXPR EXPECTED : the last --json reply, EXPR of it.
expect_json() { expect_eq "$1" "$3" "$(jq_py "$2")"; }

# workers_running N : `workers --json` shows exactly N workers, all running
# with live pids that are children of the master.
workers_running() {
    ctl --json workers || return 1
    [ "$(jq_py 'len(d["workers"])')" = "$1" ] || return 1
    [ "$(jq_py 'sum(1 for w in d["workers"] if w["state"] == "running")')" = "$1" ] || return 1
    local p
    for p in $(jq_py '" ".join(str(w["pid"]) for w in d["workers"])'); do
        [ "$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)" = "$CORRAL_PID" ] || return 1
    done
}

hammer_ok() { # PROTO SOCKET N : N requests of /hello, all answered
    py_checks "$1" "$2" "$3" <<'PY'
import sys
from lib_protocols import hammer, report
proto, sock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
good, errs, _ = hammer(proto, "unix:" + sock, "/hello", n, 4, expect_body=b"Hello, World!")
report("%d %s requests all answered" % (n, proto), good == n, errs)
PY
}

# ---- corralctl without a server
SOCK=$T/none.sock
ctl status
expect_eq "corralctl: no server: exit status 3" 3 "$CTL_RC"
expect_match "corralctl: no server: the message names the path and the errno" \
    "cannot connect to $T/none.sock: No such file or directory \(errno 2\)" "$(cat "$T/ctl.err")"
timeout 10 "$CTL" status >/dev/null 2>"$T/ctl.err" </dev/null
expect_eq "corralctl: no socket given: exit status 2" 2 "$?"
expect_match "corralctl: no socket given: says how to give one" "CORRAL_CONTROL" "$(cat "$T/ctl.err")"

# A server that accepts and never answers: corralctl gives up on time.
"$PY" - "$T/mute.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
c, _ = s.accept()
time.sleep(20)
PY
mute=$!
wait_until 5 test -S "$T/mute.sock"
t0=$(now_ms)
timeout 10 "$CTL" -s "$T/mute.sock" -t 0.5 status >/dev/null 2>"$T/ctl.err"
rc=$?
took=$(($(now_ms) - t0))
expect_eq "corralctl: a server that never answers: exit status 3" 3 "$rc"
expect_lt "corralctl -t 0.5: gives up within 2 s (ms)" "$took" 2000
expect_match "corralctl: the timeout is named" "no reply from .* within 0.5 s" "$(cat "$T/ctl.err")"
kill "$mute" 2>/dev/null
wait "$mute" 2>/dev/null

# ---- status and workers match reality
U=$T/u.sock F=$T/f.sock SOCK=$T/ctl.sock
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --handler "$DEMO_SO" \
    --processes 2 --threads 2 --control "$SOCK" --control-timeout 1 --access-log "$T/access.log" ||
    finish
expect_eq "the control socket has mode 0600" "600" "$(stat -c %a "$SOCK")"
wait_until 5 workers_running 2
expect_eq "at start: FCGI_GET_VALUES answers FCGI_MAX_CONNS 2048, FCGI_MAX_REQS 4 (2 x 2 threads)" \
    "2048 4" "$(fcgi_get_values "unix:$F")"

ctl --json status
expect_eq "status --json: exit 0" 0 "$CTL_RC"
expect_json "status: ok is true" 'd["ok"]' True
expect_json "status: pid is the master's" 'd["pid"]' "$CORRAL_PID"
expect_json "status: pool mode static, 2 processes of 2 threads" \
    '(d["pool"]["mode"], d["pool"]["processes"], d["pool"]["threads"])' "('static', 2, 2)"
expect_json "status: 2 processes and 4 threads live" \
    '(d["pool"]["processes_live"], d["pool"]["threads_live"])' "(2, 4)"
expect_json "status: both listeners, with their protocols" \
    '[(l["address"], l["protocol"]) for l in d["listeners"]]' \
    "[('uwsgi:unix:$U', 'uwsgi'), ('fastcgi:unix:$F', 'fastcgi')]"
expect_json "status: the queue depths are read from the kernel (0 when idle)" \
    '[l["queue"] for l in d["listeners"]]' "[0, 0]"
expect_match "status: version and uptime" "^\('0\.[0-9]+\.[0-9]+', [0-9.]+\)$" \
    "$(jq_py '(d["version"], d["uptime_s"])')"
before=$(jq_py 'd["totals"]["requests"]')
acc_u=$(jq_py 'd["listeners"][0]["accepted"]')
acc_f=$(jq_py 'd["listeners"][1]["accepted"]')

hammer_ok uwsgi "$U" 30
hammer_ok fastcgi "$F" 20
ctl --json status
expect_json "status: totals count the 50 requests sent" 'd["totals"]["requests"]' $((before + 50))
expect_json "status: the uwsgi listener accepted 30 more connections" \
    'd["listeners"][0]["accepted"]' $((acc_u + 30))
expect_json "status: the fastcgi listener accepted 20 more connections" \
    'd["listeners"][1]["accepted"]' $((acc_f + 20))
total=$(jq_py 'd["totals"]["requests"]')

ctl --json workers
expect_json "workers: 2 workers, indexes 0 and 1" '[w["index"] for w in d["workers"]]' "[0, 1]"
expect_eq "workers: the pids are the master's children" "$(children_of "$CORRAL_PID")" \
    "$(jq_py '" ".join(str(p) for p in sorted(w["pid"] for w in d["workers"]))')"
expect_json "workers: their requests add up to the total" \
    'sum(w["requests"] for w in d["workers"])' "$total"
expect_json "workers: 2 thread entries each" '[len(w["threads"]) for w in d["workers"]]' "[2, 2]"
expect_json "workers: RSS read from /proc (between 100 KiB and 1 GiB)" \
    'all(100 < w["rss_kb"] < 1048576 for w in d["workers"])' True
expect_json "workers: an average duration for workers that served" \
    'all(w["avg_ms"] is None or 0 <= w["avg_ms"] < 1000 for w in d["workers"]) and any(w["avg_ms"] is not None for w in d["workers"])' True
expect_json "workers: start time within the last minute, no respawns" \
    "all(abs(w['started_at'] - $(date +%s)) < 60 and w['respawns'] == 0 for w in d['workers'])" True
pid0=$(jq_py 'd["workers"][0]["pid"]')
rss_proc=$(rss_kb "$pid0")
rss_ctl=$(jq_py 'd["workers"][0]["rss_kb"]')
expect_lt "workers: worker 0's RSS matches /proc/PID/status (KiB apart)" \
    "$(awk -v a="$rss_proc" -v b="$rss_ctl" 'BEGIN { d = a - b; print (d < 0 ? -d : d) }')" 2048

# A request in flight shows up with its method, URI and elapsed time, and
# the elapsed time grows between two looks. (Waiting for the busy thread
# rather than sleeping a fixed time: a loaded machine may start the client
# late.)
( "$PY" -m lib_protocols get uwsgi "unix:$U" "/slow?ms=3000" >/dev/null 2>&1 ) &
client=$!
one_busy() { ctl --json workers && [ "$(jq_py 'sum(t["state"] == "busy" for w in d["workers"] for t in w["threads"])')" = 1 ]; }
wait_until 3 one_busy
expect_json "workers: the in-flight request: method, URI, elapsed 0..3000 ms" \
    '[(t["method"], t["uri"], 0 <= t["elapsed_ms"] <= 3000) for w in d["workers"] for t in w["threads"] if t["state"] == "busy"]' \
    "[('GET', '/slow?ms=3000', True)]"
first_elapsed=$(jq_py '[t["elapsed_ms"] for w in d["workers"] for t in w["threads"] if t["state"] == "busy"][0]')
sleep 0.3
ctl --json workers
expect_json "workers: the elapsed time grows (was $first_elapsed ms)" \
    "[t['elapsed_ms'] >= $first_elapsed + 250 for w in d['workers'] for t in w['threads'] if t['state'] == 'busy']" \
    "[True]"
ctl --json status
expect_json "status: one thread busy" 'd["pool"]["threads_busy"]' 1
expect_json "status: one request in flight (1 per busy thread)" 'd["pool"]["requests_in_flight"]' 1
expect_json "status: in flight per worker" 'sorted(w["requests_in_flight"] for w in d["in_flight"])' \
    "[0, 1]"
ctl workers
expect_match "workers (table): 1 in flight on the busy worker's row" \
    "running +[0-9]+ +1 +[0-9]+ .*GET /slow" "$(cat "$T/ctl.out")"
expect_match "workers (table): the current request is shown" \
    "running .*GET /slow\?ms=3000 \([0-9]+ ms\)" "$(cat "$T/ctl.out")"
expect_match "workers (table): a header" "^WORKER +PID +STATE +REQUESTS" "$(head -n 1 "$T/ctl.out")"
wait "$client"
ctl status
expect_match "status (table): the listeners" "uwsgi:unix:$U +uwsgi +[0-9]+ +0 +1024" "$(cat "$T/ctl.out")"
expect_match "status (table): the pool line" "pool: static, 2 of 2 processes live" "$(cat "$T/ctl.out")"

# ---- options after the command (as git, systemctl and kubectl take them)
timeout 20 "$CTL" workers --json -s "$SOCK" >"$T/ctl.out" 2>"$T/ctl.err"
expect_eq "workers --json -s SOCK: exit 0" 0 "$?"
expect_json "workers --json -s SOCK: the JSON reply, 2 workers" 'len(d["workers"])' 2
timeout 20 "$CTL" status -t 5 --socket="$SOCK" -j >"$T/ctl.out" 2>"$T/ctl.err"
expect_eq "status -t 5 --socket=SOCK -j: exit 0" 0 "$?"
expect_json "status -t 5 --socket=SOCK -j: the JSON reply" 'd["pid"]' "$CORRAL_PID"
ctl scale 2 --json
expect_json "scale 2 --json: the argument stays the command's, the reply is JSON" \
    '(d["ok"], d["processes"])' "(True, 2)"
timeout 20 "$CTL" -s "$SOCK" -- workers --json >"$T/ctl.out" 2>"$T/ctl.err"
expect_eq "-- workers --json: after --, --json is the command's (refused, exit 1)" 1 "$?"

# ---- scaling
ctl --json scale +2
expect_json "scale +2: ok, 4 processes, was 2" '(d["ok"], d["processes"], d["previous"])' "(True, 4, 2)"
if wait_until 5 workers_running 4; then ok "scale +2: 4 workers running"; else fail "scale +2: 4 workers running" "$(cat "$T/ctl.out")"; fi
expect_eq "scale +2: the master has 4 children" 4 "$(children_of "$CORRAL_PID" | wc -w)"
ctl --json workers
keep=$(jq_py 'd["workers"][0]["pid"]')
gone_pids=$(jq_py '" ".join(str(w["pid"]) for w in d["workers"][1:])')
ctl --json scale -3
expect_json "scale -3: ok, 1 process" '(d["ok"], d["processes"])' "(True, 1)"
if wait_until 5 workers_running 1; then ok "scale -3: 1 worker left"; else fail "scale -3: 1 worker left" "$(cat "$T/ctl.out")"; fi
expect_json "scale -3: the lowest-numbered worker stays" 'd["workers"][0]["pid"]' "$keep"
all_gone=1
for p in $gone_pids; do wait_until 5 gone "$p" || all_gone=0; done
expect_eq "scale -3: the 3 highest-numbered workers exited" 1 "$all_gone"
expect_file_match "scale -3: the master logs the scale-down" "scaling from 4 to 1 processes" "$CORRAL_LOG"
expect_no_match "scale -3: stopped workers are not respawned" "respawning" "$(cat "$CORRAL_LOG")"
ctl --json scale 3
if wait_until 5 workers_running 3; then ok "scale 3: 3 workers running"; else fail "scale 3: 3 workers running" "$(cat "$T/ctl.out")"; fi
# FastCGI GET_VALUES follows the pool: 3 processes x 1024 connections, x 2
# threads (it said 2 x ... at start).
expect_eq "scale 3: FCGI_GET_VALUES answers FCGI_MAX_CONNS 3072, FCGI_MAX_REQS 6" \
    "3072 6" "$(fcgi_get_values "unix:$F")"
hammer_ok uwsgi "$U" 30

kill -TTIN "$CORRAL_PID"
if wait_until 5 workers_running 4; then ok "SIGTTIN: one more worker (4)"; else fail "SIGTTIN: one more worker (4)" "$(cat "$T/ctl.out")"; fi
kill -TTOU "$CORRAL_PID"
sleep 0.2
kill -TTOU "$CORRAL_PID"
if wait_until 5 workers_running 2; then ok "SIGTTOU twice: two fewer workers (2)"; else fail "SIGTTOU twice: 2 workers" "$(cat "$T/ctl.out")"; fi
expect_file_match "SIGTTIN is logged" "SIGTTIN: scaling from 3 to 4 processes" "$CORRAL_LOG"

# A worker that dies right after it started is respawned after a back-off:
# workers shows the slot waiting, and counts the respawn.
# Killed as soon as it appears (within 1 s of its start: the back-off is
# for deaths that soon), not after a round of status queries.
before=$(children_of "$CORRAL_PID")
ctl --json scale +1
new_child() { newest=$(comm -13 <(tr ' ' '\n' <<<"$before" | sort) \
    <(children_of "$CORRAL_PID" | tr ' ' '\n' | sort) | head -1); [ -n "$newest" ]; }
newest=
for _ in $(seq 1 500); do new_child && break; sleep 0.01; done
kill -KILL "$newest"
# (the checks read the reply that showed it: $T/ctl.out)
third_respawning() { ctl --json workers && [ "$(jq_py 'd["workers"][2]["state"]')" = respawning ]; }
# The slot waits 1 s. On a loaded machine the polls may miss that window;
# then the master's log line and the count below still have to show it.
if wait_until 2 third_respawning; then
    expect_json "a worker killed right after its start: its slot waits for the back-off" \
        '(d["workers"][2]["state"], d["workers"][2]["pid"], 0 < d["workers"][2]["respawn_in_ms"] <= 1000)' \
        "('respawning', 0, True)"
else
    say "the 1 s back-off window was missed by the polls (a loaded machine); the log must show it"
fi
expect_file_match "a worker killed right after its start: the master logs a 1 s back-off" \
    "worker 2 \(pid $newest\) .* after it started \(1 times in a row\); respawning in 1 s" "$CORRAL_LOG"
ctl --json workers
expect_json "... and the respawn is counted" 'd["workers"][2]["respawns"]' 1
if wait_until 5 workers_running 3; then ok "... and it is back after the back-off"; else fail "the worker is respawned after the back-off" "$(cat "$T/ctl.out")"; fi
ctl --json status
expect_json "status: the respawn is in the totals" 'd["totals"]["respawns"]' 1
ctl --json scale -1
wait_until 5 workers_running 2

# Out of range: refused with a reason, nothing changes.
ctl --json scale 99
expect_eq "scale 99: exit status 1" 1 "$CTL_RC"
expect_json "scale 99: the error names the maximum" \
    '(d["ok"], "maximum of 16" in d["error"])' "(False, True)"
ctl scale 0
expect_eq "scale 0: exit status 1" 1 "$CTL_RC"
expect_match "scale 0: the error is on stderr" "at least 1 process" "$(cat "$T/ctl.err")"
ctl scale -5
expect_eq "scale -5 (from 2): exit status 1" 1 "$CTL_RC"
if workers_running 2; then ok "refused scales change nothing (2 workers)"; else fail "refused scales change nothing" "$(cat "$T/ctl.out")"; fi

# ---- bad commands: ok:false, the server goes on
for bad in "bogus" "scale abc" "scale" "status extra" "reload now" "chain-reload 2" "Status"; do
    # shellcheck disable=SC2086
    ctl --json $bad
    expect_eq "'$bad': exit status 1" 1 "$CTL_RC"
    expect_json "'$bad': ok:false with an error" '(d["ok"], len(d["error"]) > 5)' "(False, True)"
done
# reload (tests/integration/reload.sh tests it under load): a new
# generation of 2 workers replaces the old one; corralctl returns once the
# old one has exited.
old_workers=$(children_of "$CORRAL_PID")
ctl --json reload
expect_json "reload: ok, generation 2 of 2 processes" \
    '(d["ok"], d["generation"], d["previous"], d["processes"], d["mode"], d["kept"])' \
    "(True, 2, 1, 2, 'all', None)"
expect_eq "reload: corralctl exits 0" 0 "$CTL_RC"
if workers_running 2; then ok "reload: 2 workers run"; else fail "reload: 2 workers run" "$(cat "$T/ctl.out")"; fi
new_workers=$(children_of "$CORRAL_PID")
check_not "reload: they are new processes ($old_workers -> $new_workers)" \
    test "$(echo "$old_workers $new_workers" | tr ' ' '\n' | sort | uniq -d)"
ctl --json status
expect_json "status: generation 2, 1 reload, none failed, idle" \
    '(d["reload"]["generation"], d["reload"]["reloads"], d["reload"]["failed"], d["reload"]["state"])' \
    "(2, 1, 0, 'idle')"

py_checks "$SOCK" <<'PY'
import socket, sys, time, json
from lib_protocols import report
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    return s
def line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(65536)
        if not b:
            return buf, True
        buf += b
    return buf, False

# Garbage bytes: an error reply, and the same connection still works.
s = conn()
s.sendall(b"\x00\xff\xfe\x1b[2J garbage\n")
r, closed = line(s)
d = json.loads(r)
report("garbage line: ok:false naming the byte", d["ok"] is False and "byte 0x00" in d["error"], r)
s.sendall(b"status\n")
r, closed = line(s)
report("after garbage, the same connection answers status", json.loads(r)["ok"] is True, r)
s.close()

# An overlong line: an error, then the server closes that connection.
s = conn()
s.sendall(b"x" * 5000)
r, closed = line(s)
report("overlong line: ok:false 'line too long'", b"line too long" in r, r)
rest, closed = line(s)
report("overlong line: the connection is closed after the error", closed and rest == b"", rest)
s.close()

# Silent clients, more than the 16 the master serves at once: the master
# answers others at once, refuses the 17th, and times the silent ones out.
silent = [conn() for _ in range(16)]
time.sleep(0.2)
extra = conn()
r, closed = line(extra)
report("the 17th client gets 'too many control connections'", b"too many control connections" in r, r)
t0 = time.monotonic()
for s in silent:
    s.settimeout(4)
    try:
        b = s.recv(10)
    except Exception as e:
        b = repr(e).encode()
    if b != b"":
        break
took = time.monotonic() - t0
report("silent clients are disconnected after --control-timeout 1 (%.1f s)" % took, b == b"" and took < 3, b)
s = conn()
t0 = time.monotonic()
s.sendall(b"status\n")
r, closed = line(s)
report("after the timeouts, status answers in %.2f s" % (time.monotonic() - t0),
       json.loads(r)["ok"] is True and time.monotonic() - t0 < 1, r)
s.close()

# A client that asks and never reads: the master answers others meanwhile.
slow = conn()
slow.sendall(b"workers\n" * 400)
time.sleep(0.3)
t0 = time.monotonic()
s = conn()
s.sendall(b"status\n")
r, closed = line(s)
report("a client that does not read its replies does not stall the master (%.2f s)" % (time.monotonic() - t0),
       json.loads(r)["ok"] is True and time.monotonic() - t0 < 1, r)
s.close()
slow.close()
PY
hammer_ok fastcgi "$F" 20
check "the master is alive after bad input" alive "$CORRAL_PID"

# ---- another user is refused by the socket's mode
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    as_nobody() { timeout 10 setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL" -s "$1" status >"$T/nobody.out" 2>&1; }
    as_nobody "$SOCK"
    expect_eq "another user (nobody): corralctl exits 3" 3 "$?"
    expect_match "another user (nobody): Permission denied" "Permission denied" "$(cat "$T/nobody.out")"
else
    say "not root: the check of another user is skipped"
fi

# ---- reopen-logs: after a rename, master and worker lines go to new files
mv "$CORRAL_LOG" "$CORRAL_LOG.1"
mv "$T/access.log" "$T/access.log.1"
ctl --json reopen-logs
expect_json "reopen-logs: ok, 2 workers signalled" '(d["ok"], d["workers_signalled"])' "(True, 2)"
wait_until 5 test -f "$CORRAL_LOG"
expect_file_match "reopen-logs: the master writes to the new error log" "\[pid $CORRAL_PID\] log files reopened" "$CORRAL_LOG"
sleep 0.3 # the workers handle SIGUSR1
hammer_ok uwsgi "$U" 4
"$PY" -m lib_protocols get uwsgi "unix:$U" /fail >/dev/null 2>&1
workers_now=$(children_of "$CORRAL_PID" | tr ' ' '|')
wait_until 5 grep -q "GET /fail" "$CORRAL_LOG"
expect_file_match "reopen-logs: a worker writes its errors to the new error log" \
    "\[pid ($workers_now)\] .*handler failed.*GET /fail" "$CORRAL_LOG"
expect_file_match "reopen-logs: the access log is new too" "GET /hello" "$T/access.log"
expect_no_match "reopen-logs: nothing more goes to the renamed error log" "log files reopened" "$(cat "$CORRAL_LOG.1")"

mv "$CORRAL_LOG" "$CORRAL_LOG.2"
mv "$T/access.log" "$T/access.log.2"
kill -USR1 "$CORRAL_PID"
wait_until 5 test -f "$CORRAL_LOG"
expect_file_match "SIGUSR1: the master reopens its error log" "log files reopened" "$CORRAL_LOG"
sleep 0.3
hammer_ok uwsgi "$U" 2
expect_file_match "SIGUSR1: the workers reopen the access log" "GET /hello" "$T/access.log"

# ---- stop: graceful, exit 0, the socket file goes away
ctl --json stop
expect_json "stop: ok, state stopping" '(d["ok"], d["state"])' "(True, 'stopping')"
if wait_until 10 gone "$CORRAL_PID"; then
    wait "$CORRAL_PID"
    expect_eq "stop: corral exits with status 0" 0 "$?"
    _forget_pid "$CORRAL_PID"
else
    fail "stop: corral exits within 10 s" "$(tail -n 5 "$CORRAL_LOG")"
    stop_corral
fi
check "stop: the control socket file is removed" test ! -e "$SOCK"
expect_file_match "stop: logged as a corralctl stop" "corralctl stop: graceful stop" "$CORRAL_LOG"

# ---- quit: at once, even with a long request in flight
SOCK=$T/ctl2.sock
if start_corral --listen "uwsgi:unix:$T/q.sock" --handler "$DEMO_SO" --processes 2 --threads 2 \
    --control "$SOCK" --control-chmod 0666 --graceful-timeout 20; then
    expect_eq "--control-chmod 0666: the socket's mode" "666" "$(stat -c %a "$SOCK")"
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        as_nobody "$SOCK"
        expect_eq "--control-chmod 0666: another user may connect" 0 "$?"
    fi
    ( "$PY" -m lib_protocols get uwsgi "unix:$T/q.sock" "/slow?ms=8000" >/dev/null 2>&1 ) &
    client=$!
    sleep 0.4
    t0=$(now_ms)
    ctl --json quit
    expect_json "quit: ok, state stopping-now" '(d["ok"], d["state"])' "(True, 'stopping-now')"
    if wait_until 2 gone "$CORRAL_PID"; then
        ok "quit: corral stops at once ($(($(now_ms) - t0)) ms) despite an 8 s request"
        wait "$CORRAL_PID" 2>/dev/null
        _forget_pid "$CORRAL_PID"
    else
        fail "quit: corral stops within 2 s" "$(tail -n 5 "$CORRAL_LOG")"
        stop_corral
    fi
    kill "$client" 2>/dev/null
    wait "$client" 2>/dev/null
fi

# ---- top, under tmux
SOCK=$T/ctl3.sock
timeout 10 "$CTL" -s "$T/none.sock" top </dev/null >/dev/null 2>"$T/ctl.err"
expect_eq "top without a server: exit 3" 3 "$?"
if start_corral --listen "uwsgi:unix:$T/t.sock" --handler "$DEMO_SO" --processes 2 --threads 2 \
    --control "$SOCK"; then
    timeout 10 "$CTL" -s "$SOCK" top </dev/null >/dev/null 2>"$T/ctl.err"
    expect_eq "top without a terminal: exit 2" 2 "$?"
    expect_match "top without a terminal: says so" "needs a terminal" "$(cat "$T/ctl.err")"
    TMUX_SOCK=$T/tmux.sock
    tm() { timeout 10 tmux -S "$TMUX_SOCK" "$@"; }
    export CORRAL_CONTROL=$SOCK
    tm new-session -d -s top -x 120 -y 40 \
        "$CTL top; echo EXIT=\$? >$T/top.exit; stty -a >$T/top.stty; sleep 30"
    TMUX_PID=$(tm display-message -p '#{pid}')
    _track "$TMUX_PID" # the tmux server is stopped by pid if the script ends early
    screen_has() { tm capture-pane -p -t top >"$T/screen" 2>/dev/null && grep -Eq -- "$1" "$T/screen"; }
    if wait_until 10 screen_has "WORKER +PID +STATE +REQ/S"; then ok "top: draws the worker header"; else fail "top: draws the worker header" "$(cat "$T/screen" 2>/dev/null)"; fi
    for p in $(children_of "$CORRAL_PID"); do
        if wait_until 5 screen_has " $p +running "; then ok "top: a row for worker $p"; else fail "top: a row for worker $p" "$(cat "$T/screen")"; fi
    done
    expect_match "top: the queue of the listener" "queue 0/1024 .*uwsgi:unix:$T/t.sock" "$(cat "$T/screen")"
    # Load for 3 s: a request rate above 0 appears; a slow request shows its URI.
    "$PY" - "$T/t.sock" >/dev/null 2>&1 <<'PY' &
import sys, time
from lib_protocols import hammer
t0 = time.monotonic()
while time.monotonic() - t0 < 3:
    hammer("uwsgi", "unix:" + sys.argv[1], "/hello", 50, 2)
PY
    load=$!
    ( "$PY" -m lib_protocols get uwsgi "unix:$T/t.sock" "/slow?ms=3000" >/dev/null 2>&1 ) &
    client=$!
    if wait_until 6 screen_has "requests [0-9]+ \([1-9][0-9.]*/s\)"; then ok "top: a request rate computed from two samples"; else fail "top: a request rate" "$(cat "$T/screen")"; fi
    if wait_until 4 screen_has "running .*GET /slow\?ms=3000 \([0-9]+ ms\)"; then ok "top: the current URI of a busy thread"; else fail "top: the current URI of a busy thread" "$(cat "$T/screen")"; fi
    wait "$load" 2>/dev/null
    wait "$client" 2>/dev/null
    tm send-keys -t top q
    if wait_until 5 test -s "$T/top.exit"; then
        expect_eq "top: q leaves with exit status 0" "EXIT=0" "$(cat "$T/top.exit")"
        expect_match "top: the terminal is restored (canonical mode, echo)" "(^| )icanon .*(^| )echo " \
            "$(tr '\n' ' ' <"$T/top.stty" | sed 's/;/ /g')"
        expect_no_match "top: the alternate screen is left" "WORKER +PID" "$(tm capture-pane -p -t top)"
    else
        fail "top: q leaves within 5 s" "$(tm capture-pane -p -t top)"
    fi
    tm kill-session -t top 2>/dev/null
    # Ctrl-C leaves too.
    rm -f "$T/top.exit"
    # The shell ignores SIGINT (corralctl sets its own handler) so that it
    # lives on to write the exit status.
    tm new-session -d -s top2 -x 100 -y 30 "trap '' INT; $CTL top; echo EXIT=\$? >$T/top.exit; sleep 30"
    if wait_until 10 sh -c "tmux -S '$TMUX_SOCK' capture-pane -p -t top2 | grep -q WORKER"; then
        tm send-keys -t top2 C-c
        if wait_until 5 test -s "$T/top.exit"; then
            expect_eq "top: Ctrl-C leaves with exit status 0" "EXIT=0" "$(cat "$T/top.exit")"
        else
            fail "top: Ctrl-C leaves within 5 s" "$(tm capture-pane -p -t top2)"
        fi
    else
        fail "top (second run): draws" "$(tm capture-pane -p -t top2)"
    fi
    # And when the server stops, top says so and exits non-zero.
    rm -f "$T/top.exit"
    tm new-session -d -s top3 -x 100 -y 30 "$CTL top 2>$T/top3.err; echo EXIT=\$? >$T/top.exit; sleep 30"
    wait_until 10 sh -c "tmux -S '$TMUX_SOCK' capture-pane -p -t top3 | grep -q WORKER"
    stop_corral
    if wait_until 5 test -s "$T/top.exit"; then
        expect_eq "top: the server went away: exit status 3" "EXIT=3" "$(cat "$T/top.exit")"
        expect_match "top: the server went away: says why" "top: .*the server closed the connection" "$(cat "$T/top3.err")"
    else
        fail "top: exits when the server goes away" "$(tm capture-pane -p -t top3)"
    fi
    tm kill-server 2>/dev/null
    wait_until 5 gone "$TMUX_PID"
    _forget_pid "$TMUX_PID"
    unset CORRAL_CONTROL
fi

finish
