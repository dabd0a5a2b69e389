#!/bin/bash
# reload_preload.sh -- reloads with --preload: the app is imported in the
# master, so a reload checks the new code's import in a child, then the
# master re-executes itself (same pid) keeping the listeners and the old
# workers, and the new image starts the new generation.
#
# Under constant load through nginx (FastCGI keep-conn, uwsgi_pass) and on a
# TCP listener: 5 reloads, 5 chain-reloads and a SIGHUP, each with a new
# version read by the app at import time: no request fails, the version
# follows, the master's pid, pidfile and unix socket (inode) stay, the old
# workers are gone. Then the failures: an app with a syntax error (the check
# catches it: nothing changes), and an import that passes the check but
# fails in the re-executed master (the old workers serve on, "stranded",
# until a later good reload recovers), and a scoreboard of another layout
# (refused with a log line; the old workers are taken over and replaced).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-180}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$top_builddir/corralctl"
need nginx nginx-light
CTL=$top_builddir/corralctl
APP=$T/app.py VERSION=$T/version FAIL_AFTER=$T/fail-after
F=$T/f.sock U=$T/u.sock SOCK=$T/ctl.sock CONF=$T/corral.conf
P=$(free_port)
PT=$(free_port)

cp "$top_srcdir/tests/apps/wsgi_preload.py" "$APP"
echo 0 >"$VERSION"
cat >"$CONF" <<EOF
wsgi_file = "$APP";
preload = true;
processes = 2;
threads = 2;
env = [ "VERSION_FILE=$VERSION", "FAIL_IMPORTS_AFTER=$FAIL_AFTER" ];
EOF

start_corral -c "$CONF" --listen "fastcgi:unix:$F" --listen "uwsgi:unix:$U" \
    --listen "uwsgi:tcp:127.0.0.1:$PT" --chmod 0666 --control "$SOCK" --graceful-timeout 10 || finish
PIDFILE_BEFORE=$(cat "$CORRAL_PIDFILE")
INODE_BEFORE=$(stat -c %i "$U")
FDS_BEFORE=$(ls "/proc/$CORRAL_PID/fd" | wc -l)

start_nginx_reload_front "$P" "$F" "$U" || finish

PY_TIMEOUT=110 py_checks "$P" "$PT" "$CTL" "$SOCK" "$APP" "$VERSION" "$FAIL_AFTER" \
    "$CORRAL_PID" "$CORRAL_LOG" <<'PY'
import json, os, re, signal, subprocess, sys, threading, time
from lib_protocols import http_request, request, report

port, tport, ctl, sock, app, version_file, fail_after, corral_pid, log = sys.argv[1:10]
corral_pid = int(corral_pid)
lock = threading.Lock()
stats = {"ok": 0, "failed": 0, "f": 0, "u": 0, "t": 0, "slow": 0}
errors, versions, masters = [], [], set()
stop = threading.Event()
BODY = re.compile(rb"version=(\S+) pid=(\d+) read=(\d+) master=(\d+)\n$")

def count(good, path, slow, m, detail):
    with lock:
        if good:
            stats["ok"] += 1
            stats[path] += 1
            stats["slow"] += slow
            versions.append((time.monotonic(), m.group(1).decode()))
            masters.add(int(m.group(4)))
        else:
            stats["failed"] += 1
            if len(errors) < 10:
                errors.append(detail)

# As in reload.sh: fast GETs and slow requests (0.3 s, in flight when a worker
# is told to stop) through nginx, FastCGI keep-conn and uwsgi; slow POSTs on
# uwsgi, where nginx retries nothing, so a dropped request shows.
def load(n):
    i = 0
    while not stop.is_set():
        path = "/f/" if (i + n) % 2 else "/u/"
        slow = (i // 2 + n) % 4 == 0
        method, payload = ("POST", b"p" * 1000) if slow and path == "/u/" else ("GET", b"")
        i += 1
        try:
            st, _, body, _ = http_request(int(port), method, path + ("slow" if slow else "x")
                                          + "?i=%d" % i, body=payload, timeout=20)
            m = BODY.match(body)
            good = st == 200 and m is not None and int(m.group(3)) == len(payload)
            detail = "%s %s: status %d body %r" % (method, path, st, body[:120])
        except Exception as e:  # noqa: BLE001
            good, m, detail = False, None, "%s %s: %s: %s" % (method, path, type(e).__name__, e)
        count(good, path[1], slow, m, detail)

# The TCP listener, straight (no front end to retry anything).
def load_tcp():
    while not stop.is_set():
        try:
            st, _, body = request("uwsgi", "tcp:127.0.0.1:" + tport, "GET", "/t", timeout=20)
            m = BODY.match(body)
            good, detail = st == 200 and m is not None, "tcp: status %d body %r" % (st, body[:120])
        except Exception as e:  # noqa: BLE001
            good, m, detail = False, None, "tcp: %s: %s" % (type(e).__name__, e)
        count(good, "t", False, m, detail)

def corralctl(*args):
    p = subprocess.run([ctl, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=90)
    return p.returncode, p.stdout, p.stderr

def status():
    rc, out, err = corralctl("--json", "status")
    return json.loads(out)["reload"] if rc == 0 else {"error": err}

def workers():
    out = subprocess.run(["pgrep", "-P", str(corral_pid)], capture_output=True, text=True).stdout
    return set(int(p) for p in out.split())

def version_served(version, wait=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait:
        with lock:
            if any(v == version and t >= t0 - 0.05 for t, v in versions[-20:]):
                return True
        time.sleep(0.05)
    return False

def only_version_served(version, secs=1.0):
    """For SECS, every response carries VERSION (the old workers serve)."""
    t0 = time.monotonic()
    time.sleep(secs)
    with lock:
        seen = set(v for t, v in versions if t >= t0)
    return seen == {version}, seen

threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
threads.append(threading.Thread(target=load_tcp))
for t in threads:
    t.start()
time.sleep(1)
report("the load runs before the reloads (%d responses)" % stats["ok"], stats["ok"] > 20, stats)

def reload_rounds(command, first, count):
    rcs, seen, fresh, secs = [], [], [], []
    for k in range(first, first + count):
        before = workers()
        with open(version_file, "w") as f:
            f.write("%d\n" % k)
        t0 = time.monotonic()
        rc, out, err = corralctl(command)
        secs.append(time.monotonic() - t0)
        rcs.append((rc, err.strip()))
        seen.append(version_served(str(k)))
        fresh.append(not (before & workers()))
        time.sleep(0.2)
    return rcs, seen, fresh, secs

g0 = status().get("generation")
for command, first in (("reload", 1), ("chain-reload", 6)):
    rcs, seen, fresh, secs = reload_rounds(command, first, 5)
    report("%s x5 with --preload: corralctl exits 0 every time (%.2f s each on average, "
           "at most %.2f s)" % (command, sum(secs) / 5, max(secs)),
           all(rc == 0 for rc, _ in rcs), rcs)
    report("%s x5: each new version is served" % command, all(seen), seen)
    report("%s x5: the old workers are gone each time" % command, all(fresh), fresh)
st = status()
report("status: generation %s -> %s, 10 reloads, none failed" % (g0, st.get("generation")),
       st.get("generation") == g0 + 10 and st.get("reloads") == 10 and st.get("failed") == 0
       and st.get("last", {}).get("ok") is True, st)
report("every response came from an app imported by the master, pid %d (%s)"
       % (corral_pid, sorted(masters)), masters == {corral_pid}, masters)

# SIGHUP does what corralctl reload does.
with open(version_file, "w") as f:
    f.write("hup\n")
os.kill(corral_pid, signal.SIGHUP)
report("SIGHUP: the new version is served", version_served("hup", 10))
t0 = time.monotonic()
while (status().get("generation") != g0 + 11 or status().get("state") != "idle") \
        and time.monotonic() - t0 < 15:
    time.sleep(0.1)
report("SIGHUP: status counts it as generation %d" % (g0 + 11),
       status().get("generation") == g0 + 11 and status().get("failed") == 0)

# Two SIGHUPs 0.1 s apart: the second comes during the check or the exec (a
# blocked signal stays pending through execve) and runs after the first.
with open(version_file, "w") as f:
    f.write("hup2\n")
os.kill(corral_pid, signal.SIGHUP)
time.sleep(0.1)
os.kill(corral_pid, signal.SIGHUP)
g1 = g0 + 13
t0 = time.monotonic()
while (status().get("generation") != g1 or status().get("state") != "idle") \
        and time.monotonic() - t0 < 20:
    time.sleep(0.1)
st = status()
report("two SIGHUPs in a row: two reloads (generation %s), none failed" % st.get("generation"),
       st.get("generation") == g1 and st.get("failed") == 0 and version_served("hup2"), st)

# A syntax error: the import check fails, nothing changes (no exec).
with open(app) as f:
    good_app = f.read()
with open(app, "w") as f:
    f.write(good_app + "\ndef broken(:\n")
with open(version_file, "w") as f:
    f.write("never\n")
before = workers()
rc, out, err = corralctl("reload")
report("syntax error: corralctl reload exits 1 naming the failed check",
       rc == 1 and "failed to import in the check" in err, (rc, out, err))
st = status()
report("syntax error: status shows the failure, generation unchanged",
       st.get("generation") == g1 and st.get("failed") == 1 and st.get("state") == "idle"
       and st.get("last", {}).get("ok") is False, st)
ok, seen = only_version_served("hup2")
report("syntax error: the old version is still served", ok, seen)
report("syntax error: the same workers serve", workers() == before, (before, workers()))
with open(app, "w") as f:
    f.write(good_app)
with open(version_file, "w") as f:
    f.write("fixed\n")
rc, out, err = corralctl("reload")
report("syntax error fixed: the next reload works (exit %d)" % rc,
       rc == 0 and version_served("fixed"), (rc, out, err))

# An import that passes the check but fails in the re-executed master: the
# counter file lets exactly one more import pass (the check's).
with open(fail_after, "w") as f:
    f.write("1\n")
with open(version_file, "w") as f:
    f.write("lost\n")
before = workers()
rc, out, err = corralctl("chain-reload")
report("import fails after the exec: corralctl exits 1 saying so",
       rc == 1 and "re-executed master" in err and "cannot be replaced" in err, (rc, out, err))
st = status()
report("import fails after the exec: status shows 'stranded' and the failure",
       st.get("state") == "stranded" and st.get("failed") == 2
       and st.get("generation") == g1 + 1 and "fix the app and reload"
       in st.get("last", {}).get("message", ""), st)
ok, seen = only_version_served("fixed")
report("import fails after the exec: the old workers keep serving the old version", ok, seen)
report("import fails after the exec: the same workers, same master pid",
       workers() == before and masters == {corral_pid}, (before, workers(), masters))
rc2, out2, err2 = corralctl("scale", "3")
report("stranded: scaling is refused (exit %d)" % rc2, rc2 == 1 and "reload first" in err2,
       (rc2, err2))
# One old worker stops: it cannot be replaced (said in the log); the other serves on.
victim = sorted(before)[0]
os.kill(victim, signal.SIGTERM)
t0 = time.monotonic()
while victim in workers() and time.monotonic() - t0 < 12:
    time.sleep(0.1)
time.sleep(0.3)
report("stranded: a worker that exits is not replaced (%d left)" % len(workers()),
       workers() == before - {victim}, (before, workers()))
with open(log) as f:
    report("stranded: its exit is logged as irreplaceable",
           "(pid %d) exited with status 0 and cannot be replaced" % victim in f.read())
ok, seen = only_version_served("fixed")
report("stranded: the last old worker serves", ok, seen)
os.unlink(fail_after)
with open(version_file, "w") as f:
    f.write("recovered\n")
rc, out, err = corralctl("reload")
st = status()
report("after the fix a reload recovers fully (exit %d, state %s, %d workers)"
       % (rc, st.get("state"), len(workers())),
       rc == 0 and version_served("recovered") and st.get("state") == "idle"
       and st.get("generation") == g1 + 2 and len(workers()) == 2, (rc, out, err, st))

time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
print("responses: %d ok (%d FastCGI keep-conn, %d uwsgi, %d TCP, %d slow), %d failed"
      % (stats["ok"], stats["f"], stats["u"], stats["t"], stats["slow"], stats["failed"]))
report("under load: %d responses during 15 reloads, 0 failed" % stats["ok"],
       stats["failed"] == 0 and stats["ok"] > 500 and stats["f"] > 100 and stats["u"] > 100
       and stats["t"] > 50 and stats["slow"] > 50, errors)
PY

expect_eq "the master's pid did not change" "$CORRAL_PID" "$(cat "$CORRAL_PIDFILE")"
expect_eq "the pidfile did not change" "$PIDFILE_BEFORE" "$(cat "$CORRAL_PIDFILE")"
expect_eq "the unix socket was never re-created (same inode)" "$INODE_BEFORE" "$(stat -c %i "$U")"
sleep 0.5
expect_eq "2 workers left after all the reloads" 2 "$(children_of "$CORRAL_PID" | wc -w)"
expect_eq "no descriptor leaked across the re-execs" "$FDS_BEFORE" \
    "$(ls "/proc/$CORRAL_PID/fd" | wc -l)"
check "the syntax error's traceback is in the error log" grep -q "SyntaxError" "$CORRAL_LOG"
check "the failed import after the exec is logged with what to do" \
    grep -q "keep serving but cannot be replaced.*fix the app and reload" "$CORRAL_LOG"
check "the re-execs are logged" grep -q "re-executing the master (pid $CORRAL_PID)" "$CORRAL_LOG"
expect_no_match "no old worker had to be killed at the graceful timeout" \
    'graceful timeout passed' "$(cat "$CORRAL_LOG")"
expect_no_match "nginx logged no upstream error on the uwsgi path" \
    '\[(error|crit|alert)\].*request: "(GET|POST) /u/' "$(cat "$T/nginx-error.log")"
n=$(grep -c '\[error\].*request: "GET /f/' "$T/nginx-error.log")
say "nginx retried $n FastCGI requests whose kept connection an old worker had closed"

stop_pid "$NGINX_PID"
stop_corral
expect_eq "corral stops with status 0" 0 "$CORRAL_STATUS"
check_not "the unix socket file is removed at the stop" test -e "$U"

# ---- an import slower than corralctl's 5 s timeout: the re-executed
# master answers nobody while it imports, and corralctl waits for it.
echo slow1 >"$VERSION"
cat >"$T/slow.conf" <<EOF
wsgi_file = "$APP";
preload = true;
env = [ "VERSION_FILE=$VERSION", "IMPORT_SLEEP=6" ];
EOF
if start_corral -c "$T/slow.conf" --listen "uwsgi:unix:$T/slow.sock" --control "$T/slow.ctl"; then
    echo slow2 >"$VERSION"
    t0=$(now_ms)
    "$CTL" -s "$T/slow.ctl" reload >"$T/slow.out" 2>&1
    expect_eq "a 6 s import: corralctl reload (default 5 s timeout) exits 0" 0 "$?"
    took=$(($(now_ms) - t0))
    check "... after both imports, the check's and the new master's ($took ms)" test "$took" -ge 12000
    expect_match "... and the new version serves" "version=slow2 " \
        "$("$PY" -m lib_protocols get uwsgi "unix:$T/slow.sock" /)"
    stop_corral
fi

# ---- a scoreboard of another layout (as a build with another one would leave): the
# re-executed master refuses to adopt it, says so, makes a new one and takes the old
# workers over as its children; the reload completes and nothing stops serving.
echo lay1 >"$VERSION"
if start_corral -c "$CONF" --listen "uwsgi:unix:$T/lay.sock" --control "$T/lay.ctl"; then
    SB_FD=$(for f in /proc/"$CORRAL_PID"/fd/*; do
        case $(readlink "$f") in *memfd:corral-scoreboard*) basename "$f" ;; esac
    done | head -n 1)
    "$PY" - "/proc/$CORRAL_PID/fd/$SB_FD" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:  # the header: magic, layout
    magic, layout = struct.unpack("=II", f.read(8))
    assert magic == 0x42535243 and 2 <= layout < 99, (hex(magic), layout)
    f.seek(4)
    f.write(struct.pack("=I", 99))
PY
    OLD_WORKERS=$("$CTL" -s "$T/lay.ctl" --json workers |
        "$PY" -c 'import json,sys; print(" ".join(str(w["pid"]) for w in json.load(sys.stdin)["workers"] if w["pid"]))')
    echo lay2 >"$VERSION"
    "$CTL" -s "$T/lay.ctl" reload >"$T/lay.out" 2>&1
    expect_eq "another layout: corralctl reload exits 0" 0 "$?"
    expect_file_match "another layout: the refusal is logged, naming both layouts" \
        "not adopting the scoreboard of the previous image: the scoreboard \(fd $SB_FD\) has layout 99, this build layout [0-9]+; a new one takes its place with the 2 workers of generation 1" \
        "$CORRAL_LOG"
    expect_match "another layout: the new version serves" "version=lay2 " \
        "$("$PY" -m lib_protocols get uwsgi "unix:$T/lay.sock" /)"
    old_gone() { for p in $OLD_WORKERS; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
    wait_until 10 old_gone
    check "another layout: the old workers ($OLD_WORKERS) were stopped by the new master" old_gone
    "$CTL" -s "$T/lay.ctl" --json status >"$T/lay.json"
    expect_eq "another layout: status shows generation 2, 2 processes live" "2 2" \
        "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["reload"]["generation"], d["pool"]["processes_live"])' "$T/lay.json")"
    stop_corral
    expect_eq "another layout: corral stops with status 0" 0 "$CORRAL_STATUS"
fi

# ---- systemd (Type=notify): RELOADING=1 before the check, READY=1 from the
# re-executed master once the new generation serves, MAINPID unchanged.
NOTIFY=$T/notify.sock
start_notify_listener "$NOTIFY" "$T/notify.log" 60
echo sd1 >"$VERSION"
export NOTIFY_SOCKET=$NOTIFY
if start_corral -c "$CONF" --listen "uwsgi:unix:$T/sd.sock" --control "$T/sd.ctl"; then
    unset NOTIFY_SOCKET
    wait_until 5 grep -q READY=1 "$T/notify.log"
    echo sd2 >"$VERSION"
    "$CTL" -s "$T/sd.ctl" reload >/dev/null 2>&1
    expect_eq "systemd: corralctl reload exits 0" 0 "$?"
    wait_until 5 test "$(grep -c READY=1 "$T/notify.log")" -ge 2
    expect_eq "systemd: READY=1, RELOADING=1, READY=1 in that order" "READY RELOADING READY" \
        "$(grep -o '^[A-Z]*=1' "$T/notify.log" | cut -d= -f1 | tr '\n' ' ' | sed 's/ $//')"
    expect_eq "systemd: both READY=1 name the same MAINPID" \
        "MAINPID=$CORRAL_PID MAINPID=$CORRAL_PID" \
        "$(grep '^READY=1' "$T/notify.log" | grep -o 'MAINPID=[0-9]*' | tr '\n' ' ' | sed 's/ $//')"
    py_checks "$T/sd.sock" <<'PY'
import sys
from lib_protocols import request, report
st, _, b = request("uwsgi", "unix:" + sys.argv[1], "GET", "/", timeout=5)
report("systemd: the new version serves", st == 200 and b.startswith(b"version=sd2 "), (st, b))
PY
    stop_corral
    expect_eq "systemd: corral stops with status 0" 0 "$CORRAL_STATUS"
fi
unset NOTIFY_SOCKET
stop_pid "$NOTIFY_PID" >/dev/null
_forget_pid "$NOTIFY_PID"
finish
