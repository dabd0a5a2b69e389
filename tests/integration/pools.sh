#!/bin/bash
# pools.sh -- several pools in one master (a `pools` list in the config
# file). Four pools: a native handler (demo.so), a WSGI app, a native pool
# that a reload removes and a WSGI pool whose import fails. The working ones
# answer on their own listeners; the broken one is named in the log while
# the others serve; the top master lists the pools (corralctl status) and
# each pool answers on its own socket (corralctl -p NAME); each pool's log
# lines, status JSON and OpenMetrics carry its name. A SIGHUP after editing
# the file: an added pool starts, the removed one drains (a request in
# flight finishes), the changed one reloads with no failed request under a
# bounded loop of requests, the untouched one keeps its master and worker
# pids. Bad files are refused with file, line and key; a file whose pools
# all fail makes corral exit 1. As root: two pools run as two users, and one
# pool's user can neither signal nor read the other's workers.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$top_builddir/corralctl" "$DEMO_SO"
APP=$top_srcdir/tests/apps/wsgi_reload.py
CTL=$top_builddir/corralctl
CONF=$T/pools.conf SOCK=$T/ctl LOG=$T/error.log
P1=$(free_port) P2=$(free_port) P3=$(free_port) P4=$(free_port) P5=$(free_port)
ROOT_KEY=""
[ "$(id -u)" = 0 ] && ROOT_KEY="allow_root = true;"

# write_conf VERSION WITH_GONE WITH_ADDED [PY_THREADS] : the file the top
# master reads.
write_conf() {
    {
        cat <<EOF
error_log = "$LOG";
control = "$SOCK";
pidfile = "$T/top.pid";
status_path = "/corral-status";
graceful_timeout = 10;
$ROOT_KEY
pools = (
  { name = "native"; handler = "$DEMO_SO"; listen = [ "http:tcp:127.0.0.1:$P1" ];
    processes = 2; },
  { name = "py"; wsgi_file = "$APP"; listen = "http:tcp:127.0.0.1:$P2";
    processes = 2; threads = ${4:-2}; env = [ "APP_VERSION=$1" ]; },
EOF
        [ "$2" = 1 ] && cat <<EOF
  { name = "gone"; handler = "$DEMO_SO";
    listen = [ "http:tcp:127.0.0.1:$P3", "uwsgi:unix:$T/gone.sock" ]; },
EOF
        [ "$3" = 1 ] && cat <<EOF
  { name = "added"; handler = "$DEMO_SO"; listen = "http:tcp:127.0.0.1:$P5"; },
EOF
        cat <<EOF
  { name = "broken"; wsgi_file = "$APP"; listen = "http:tcp:127.0.0.1:$P4";
    env = [ "APP_VERSION=broken" ]; }
);
EOF
    } >"$CONF"
}

# start_top CONF : the top master in the background; TOP_PID.
start_top() {
    "$CORRAL" -c "$1" >"$T/top.out" 2>&1 </dev/null &
    TOP_PID=$!
    _track "$TOP_PID"
}

# run_top NAME ARGS... : corral in the foreground (no --allow-root: a pools
# file takes no flag), bounded to 20 s; output in $OUT, exit status in RC.
run_top() {
    local name=$1
    shift
    timeout 20 "$CORRAL" "$@" >"$T/$name.out" 2>&1 </dev/null
    RC=$?
    OUT=$(cat "$T/$name.out")
}

http_ok() { "$PY" -m lib_protocols ping http "tcp:127.0.0.1:$1"; }

# ---------------------------------------------------------------- bad files

bad() { # NAME EXPECTED_REGEX : corral -t -c $T/NAME.conf fails with the message
    run_top "$1" -t -c "$T/$1.conf"
    expect_eq "bad file ($1): -t exits 1" 1 "$RC"
    expect_match "bad file ($1): the message names file, line and key" "$2" "$OUT"
}
printf 'handler = "%s";\npools = (\n  { handler = "%s"; listen = "http:tcp:127.0.0.1:%s"; }\n);\n' \
    "$DEMO_SO" "$DEMO_SO" "$P1" >"$T/noname.conf"
bad noname "noname.conf:3: key 'pools': pool 1 has no name"
printf 'pools = (\n  { name = "a"; handler = "%s"; listen = "http:tcp:127.0.0.1:%s"; },\n  { name = "a"; handler = "%s"; listen = "http:tcp:127.0.0.1:%s"; }\n);\n' \
    "$DEMO_SO" "$P1" "$DEMO_SO" "$P2" >"$T/twice.conf"
bad twice "twice.conf:3: key 'name': two pools are named 'a' \\(the other at line 2\\)"
printf 'pools = (\n  { name = "a"; handler = "%s";\n    pidfile = "/tmp/x.pid"; }\n);\n' \
    "$DEMO_SO" >"$T/global.conf"
bad global "global.conf:3: key 'pidfile' is global: give it outside the pools list"
printf 'pools = (\n  { name = "a"; handler = "%s"; listen = "http:tcp:127.0.0.1:%s";\n    processes = 0; }\n);\n' \
    "$DEMO_SO" "$P1" >"$T/value.conf"
bad value "pool a: .*value.conf:3: key 'processes': expected an integer from 1"
write_conf 1 1 0
run_top flags -c "$CONF" --processes 3
expect_eq "a pools file with another flag: exit 1" 1 "$RC"
expect_match "a pools file with another flag: says why" "--processes: .* has a pools list" "$OUT"

sed "s|wsgi_file = \"$APP\"; listen = \"http:tcp:127.0.0.1:$P4\"|wsgi_file = \"$T/missing.py\"; listen = \"http:tcp:127.0.0.1:$P4\"|" \
    "$CONF" >"$T/check.conf"
run_top check -t -c "$T/check.conf"
expect_eq "-t checks every pool's app: a missing app file fails it" 1 "$RC"
expect_match "-t names the pool whose app does not load" "pool broken: its app does not load" "$OUT"
check_not "-t does not blame the pools that load" grep -q "pool native\|pool py" "$T/check.out"
run_top check_ok -t -c "$CONF"
expect_eq "-t of the file whose apps are all there: exit 0" 0 "$RC"

# ---------------------------------------------------------------- start

# A fake systemd NOTIFY_SOCKET for the top master (Type=notify).
NOTIFY=$T/notify.sock
start_notify_listener "$NOTIFY" "$T/notify.log" 90
NOTIFY_SOCKET=$NOTIFY start_top "$CONF"
if ! wait_until 15 http_ok "$P1" || ! wait_until 15 http_ok "$P2" || ! wait_until 15 http_ok "$P3"; then
    fail "the pools answer" "$(tail -n 30 "$LOG")"
    finish
fi
ok "the native, WSGI and to-be-removed pools answer on their own listeners"
wait_until 10 grep -q "pool broken: master (pid [0-9]*) exited with status 1 before it served" "$LOG"
check "the pool whose app does not load is named in the top master's log" \
    grep -q "pool broken: master (pid [0-9]*) exited with status 1 before it served" "$LOG"
check "its traceback is in the log under its name" \
    grep -q "\[pool broken\] .*a broken deploy on purpose" "$LOG"
check "the others serve meanwhile" http_ok "$P1"
wait_until 10 grep -q READY=1 "$T/notify.log"
expect_file_match "systemd gets READY=1 from the top master once the pools that can serve do" \
    "^READY=1\|STATUS=serving: 3 of 4 pools\|MAINPID=$TOP_PID$" "$T/notify.log"
expect_eq "... once: the pool masters tell the top master, not systemd" 1 \
    "$(grep -c READY=1 "$T/notify.log")"
check "every line of a pool's master and workers names the pool" \
    grep -q "\[pool native\] worker 1 started" "$LOG"
check "a pool's worker names it too (the WSGI import line)" \
    grep -q "\[pool py\] wsgi: loaded" "$LOG"

wait_until 10 "$CTL" -s "$SOCK" status
ctl status --json
expect_eq "corralctl status (the top master) lists every pool" "['native', 'py', 'gone', 'broken']" \
    "$(jq_py "[p['name'] for p in d['pools']]")"
ctl status
check "corralctl status prints the pools as a table" grep -q "^native .* serving" "$T/ctl.out"
ctl status --json
want="native http:tcp:127.0.0.1:$P1; py http:tcp:127.0.0.1:$P2;"
want="$want gone http:tcp:127.0.0.1:$P3 uwsgi:unix:$T/gone.sock; broken http:tcp:127.0.0.1:$P4"
expect_eq "corralctl status (the top master): each pool's listeners as the file gave them" \
    "$want" "$(jq_py "'; '.join(p['name'] + ' ' + ' '.join(l['address'] for l in p['listeners'])
                              for p in d['pools'])")"
expect_eq "corralctl status (the top master): the listeners' protocols" "http http uwsgi" \
    "$(jq_py "' '.join(l['protocol'] for p in d['pools'] if p['name'] in ('native', 'gone')
                       for l in p['listeners'])")"
ctl status
check "corralctl status (table): a pool's listener on its row" \
    grep -q "^native .* serving .* http:tcp:127.0.0.1:$P1\$" "$T/ctl.out"
second_listener_below() {
    grep -A1 "^gone .* http:tcp:127.0.0.1:$P3\$" "$T/ctl.out" |
        grep -q "^ \+uwsgi:unix:$T/gone.sock\$"
}
check "corralctl status (table): a second listener on a line of its own under the first" \
    second_listener_below
ctl -p native status --json
expect_eq "corralctl -p native status: that pool answers" "native static 2" \
    "$(jq_py "d['pool']['name'] + ' ' + d['pool']['mode'] + ' ' + str(d['pool']['processes'])")"
expect_eq "corralctl -p native status: its listener by the address the file gave" \
    "['http:tcp:127.0.0.1:$P1']" "$(jq_py "[l['address'] for l in d['listeners']]")"
ctl -p native status
check "corralctl -p native status (table): the listener's address" \
    grep -q "^http:tcp:127.0.0.1:$P1 \+http " "$T/ctl.out"
check "the pool's log names its listener by its address" \
    grep -qE "\[pool native\] listening on http:tcp:127\.0\.0\.1:$P1( |\$)" "$LOG"
check_not "no log line names a pool's listener by its descriptor" grep -q "listening on [a-z]*:fd:" "$LOG"
ctl -p py workers --json
expect_eq "corralctl -p py workers: the WSGI pool's two workers" "2" "$(jq_py "len(d['workers'])")"
ctl -p nosuch status
expect_eq "corralctl -p with an unknown pool: exit 3" 3 "$CTL_RC"
curl -s -m 10 "http://127.0.0.1:$P1/corral-status?openmetrics" >"$T/om1"
check "OpenMetrics of the native pool: pool_name=\"native\"" \
    grep -q '^corral_info{version="[^"]*",pool="static",pool_name="native"} 1$' "$T/om1"
curl -s -m 10 "http://127.0.0.1:$P2/corral-status" >"$T/st2"
expect_eq "the status JSON of the WSGI pool names it" "py" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pool"]["name"])' "$T/st2")"

ctl status --json
NATIVE_MASTER=$(jq_py "[p['pid'] for p in d['pools'] if p['name'] == 'native'][0]")
NATIVE_WORKERS=$(children_of "$NATIVE_MASTER")

# ---------------------------------------------------------------- reload

# The edited file waits beside the running one; the driver puts it in place
# and sends SIGHUP once its requests are in flight.
cp "$CONF" "$T/before.conf"
write_conf 2 0 1
mv "$CONF" "$CONF.new"
cp "$T/before.conf" "$CONF"
PY_TIMEOUT=60 py_checks "$P2" "$P3" "$P5" "$TOP_PID" "$CONF" <<'PY'
import os, re, signal, socket, sys, threading, time
from lib_protocols import http_request, report

p2, p3, p5, top = (int(a) for a in sys.argv[1:5])
stats = {"ok": 0, "failed": 0, "v2": 0}
errors = []
stop = threading.Event()
lock = threading.Lock()

def load():
    # The changed pool under a bounded loop: every request must succeed.
    while not stop.is_set():
        try:
            st, _, body, _ = http_request(p2, "GET", "/x", timeout=20)
            m = re.match(rb"version=(\S+) ", body)
            good = st == 200 and m is not None
            detail = "status %d body %r" % (st, body[:80])
        except Exception as e:  # noqa: BLE001
            good, m, detail = False, None, "%s: %s" % (type(e).__name__, e)
        with lock:
            stats["ok" if good else "failed"] += 1
            if good and m.group(1) == b"2":
                stats["v2"] += 1
            if not good and len(errors) < 5:
                errors.append(detail)

slow = {}
def in_flight():
    # A request to the removed pool that is running when the reload comes.
    try:
        slow["r"] = http_request(p3, "GET", "/slow?ms=1500", timeout=20)
    except Exception as e:  # noqa: BLE001
        slow["r"] = e

threads = [threading.Thread(target=load) for _ in range(3)]
for t in threads:
    t.start()
sf = threading.Thread(target=in_flight)
sf.start()
time.sleep(0.5)
os.rename(sys.argv[5] + ".new", sys.argv[5])
os.kill(top, signal.SIGHUP)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    with lock:
        if stats["v2"] >= 20:
            break
    time.sleep(0.1)
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
sf.join()
report("the changed pool reloaded under load: version 2 answers", stats["v2"] >= 20, stats)
report("the changed pool's reload: no failed request (%d ok)" % stats["ok"],
       stats["failed"] == 0 and stats["ok"] > 0, errors)
r = slow.get("r")
report("the removed pool drained: its request in flight finished",
       isinstance(r, tuple) and r[0] == 200 and r[2].startswith(b"slept 1500 ms"), repr(r)[:300])
def refused():
    try:
        socket.create_connection(("127.0.0.1", p3), timeout=1).close()
        return False
    except OSError:
        return True
end = time.monotonic() + 15
while time.monotonic() < end and not refused():
    time.sleep(0.1)
report("the removed pool's listener is closed", refused())
try:
    st, _, body, _ = http_request(p5, "GET", "/hello", timeout=10)
    report("the added pool answers", st == 200, body[:100])
except Exception as e:  # noqa: BLE001
    report("the added pool answers", False, e)
PY

check "the reload is logged: the removed pool stops gracefully" \
    grep -q "pool gone: removed from the file: stopping its master" "$LOG"
check "the reload is logged: the changed pool reloads" \
    grep -q "pool py: changed: reloading its master" "$LOG"
check "the reload is logged: the added pool starts" grep -q "pool added: added to the file" "$LOG"
ctl status --json
expect_eq "the untouched pool keeps its master" "$NATIVE_MASTER" \
    "$(jq_py "[p['pid'] for p in d['pools'] if p['name'] == 'native'][0]")"
expect_eq "the untouched pool keeps its worker pids" "$NATIVE_WORKERS" "$(children_of "$NATIVE_MASTER")"
expect_eq "after the reload the top lists the new pools" "['native', 'py', 'broken', 'added']" \
    "$(jq_py "[p['name'] for p in d['pools']]")"

# A key the pool's master reads at start only (threads): the top master
# restarts that pool (a graceful stop, then a new master on the same open
# listeners), and no request fails meanwhile.
PY_MASTER=$(jq_py "[p['pid'] for p in d['pools'] if p['name'] == 'py'][0]")
write_conf 2 0 1 3
mv "$CONF" "$CONF.new"
write_conf 2 0 1 2
PY_TIMEOUT=60 py_checks "$P2" "$TOP_PID" "$CONF" "$LOG" "$PY_MASTER" <<'PY'
import os, re, signal, sys, threading, time
from lib_protocols import http_request, report

port, top = int(sys.argv[1]), int(sys.argv[2])
conf, log, old = sys.argv[3], sys.argv[4], sys.argv[5]
stats = {"ok": 0, "failed": 0}
errors = []
stop = threading.Event()
lock = threading.Lock()

def load():
    while not stop.is_set():
        try:
            st, _, body, _ = http_request(port, "GET", "/x", timeout=20)
            good, detail = st == 200 and body.startswith(b"version=2 "), body[:80]
        except Exception as e:  # noqa: BLE001
            good, detail = False, "%s: %s" % (type(e).__name__, e)
        with lock:
            stats["ok" if good else "failed"] += 1
            if not good and len(errors) < 5:
                errors.append(detail)

threads = [threading.Thread(target=load) for _ in range(3)]
for t in threads:
    t.start()
time.sleep(0.5)
os.rename(conf + ".new", conf)
os.kill(top, signal.SIGHUP)
new = None
deadline = time.monotonic() + 30
while time.monotonic() < deadline and new is None:
    for m in re.finditer(r"pool py: serving \(master pid (\d+)\)", open(log).read()):
        if m.group(1) != old:
            new = m.group(1)
    time.sleep(0.1)
time.sleep(1.0)
stop.set()
for t in threads:
    t.join()
report("a start-only key changed: the pool runs a new master", new is not None, old)
report("its restart: no failed request (%d ok)" % stats["ok"],
       stats["failed"] == 0 and stats["ok"] > 0, errors)
PY
check "the restart is logged with its reason" \
    grep -q "pool py: a key read at start only (or uid, gid) changed" "$LOG"
ctl -p py status --json
expect_eq "the new master of pool py runs 3 threads per worker" 3 "$(jq_py "d['pool']['threads']")"

# ---------------------------------------------------------------- stop

stop_pid "$TOP_PID" TERM
expect_eq "SIGTERM: the top master stops every pool and exits 0" 0 "$?"
_forget_pid "$TOP_PID"
check "every pool's master has stopped" grep -q "every pool has stopped" "$LOG"
check "systemd was told STOPPING=1" grep -q "^STOPPING=1" "$T/notify.log"

# ---------------------------------------------------------------- none starts

cat >"$T/allbroken.conf" <<EOF
error_log = "$T/allbroken.log";
$ROOT_KEY
pools = ( { name = "b1"; wsgi_file = "$APP"; listen = "http:tcp:127.0.0.1:$P4";
            env = [ "APP_VERSION=broken" ]; } );
EOF
run_top allbroken -c "$T/allbroken.conf"
expect_eq "no pool ever starts: exit 1" 1 "$RC"
check "no pool ever starts: said in the log" grep -q "no pool started" "$T/allbroken.log"

# ---------------------------------------------------------------- no pools list

SOCK=$T/plain.ctl
start_corral --listen "http:tcp:127.0.0.1:$P1" --handler "$DEMO_SO" --control "$SOCK" \
    --status-path /corral-status || finish
ctl status --json
expect_eq "no pools list: the pool is named main" "main" "$(jq_py "d['pool']['name']")"
curl -s -m 10 "http://127.0.0.1:$P1/corral-status?openmetrics" >"$T/om0"
check "no pools list: corral_info has pool_name=\"main\"" grep -q 'pool_name="main"' "$T/om0"
check_not "no pools list: no log line names a pool" grep -q "\[pool " "$CORRAL_LOG"
stop_corral

# ---------------------------------------------------------------- two users

if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    say "skipped: two pools as two users (needs root and setpriv; running as uid $(id -u))"
else
    mkdir -m 1777 "$T/run"
    cat >"$T/users.conf" <<EOF
error_log = "$T/users.log";
control = "$T/run/ctl";
pools = (
  { name = "u1"; handler = "$DEMO_SO"; listen = "http:tcp:127.0.0.1:$P1"; uid = "nobody"; },
  { name = "u2"; handler = "$DEMO_SO"; listen = "http:tcp:127.0.0.1:$P2"; uid = "daemon"; }
);
EOF
    start_top "$T/users.conf"
    wait_until 15 http_ok "$P1" && wait_until 15 http_ok "$P2"
    check "as root: both pools answer (listeners bound by the top master)" http_ok "$P2"
    SOCK=$T/run/ctl
    wait_until 10 "$CTL" -s "$SOCK" -p u1 status
    ctl -p u1 workers --json
    W1=$(jq_py "d['workers'][0]['pid']")
    ctl -p u2 workers --json
    W2=$(jq_py "d['workers'][0]['pid']")
    expect_eq "pool u1's worker runs as nobody" "nobody" "$(ps -o user= -p "$W1" | tr -d ' ')"
    expect_eq "pool u2's worker runs as daemon" "daemon" "$(ps -o user= -p "$W2" | tr -d ' ')"
    setpriv --reuid=nobody --regid=nogroup --clear-groups kill -0 "$W2" 2>"$T/kill.err"
    expect_eq "u1's user cannot signal u2's worker" 1 "$?"
    check_not "u1's user cannot read u2's worker's environment" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups cat "/proc/$W2/environ"
    stop_pid "$TOP_PID" TERM
    _forget_pid "$TOP_PID"
fi

finish
