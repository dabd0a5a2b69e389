#!/bin/bash
# reload.sh -- reloads without dropped requests. Under constant load through
# nginx (FastCGI with keep-conn, and uwsgi_pass), corral is reloaded 10
# times (corralctl reload), chain-reloaded 10 times and reloaded by SIGHUP,
# each time with a new APP_VERSION in the `env` key of its config file: every
# response is counted and none may fail, and the version the app answers
# follows the config. A config that does not parse and an app whose import
# fails are refused: corralctl exits 1, the error is logged and in status,
# and the old generation keeps serving.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-130}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$top_builddir/corralctl"
need nginx nginx-light
APP=$top_srcdir/tests/apps/wsgi_reload.py
CTL=$top_builddir/corralctl
F=$T/f.sock U=$T/u.sock SOCK=$T/ctl.sock CONF=$T/corral.conf
P=$(free_port)

# write_conf VERSION : the config file the reloads read again.
write_conf() {
    cat >"$CONF" <<EOF
wsgi_file = "$APP";
processes = 2;
threads = 2;
env = [ "APP_VERSION=$1" ];
EOF
}

write_conf 0
start_corral -c "$CONF" --listen "fastcgi:unix:$F" --listen "uwsgi:unix:$U" --chmod 0666 \
    --control "$SOCK" --graceful-timeout 10 || finish

start_nginx_reload_front "$P" "$F" "$U" || finish

PY_TIMEOUT=80 py_checks "$P" "$CTL" "$SOCK" "$CONF" "$APP" "$CORRAL_PID" <<'PY'
import json, os, re, signal, subprocess, sys, threading, time
from lib_protocols import http_request, report

port, ctl, sock, conf, app, corral_pid = sys.argv[1:7]
corral_pid = int(corral_pid)
lock = threading.Lock()
stats = {"ok": 0, "failed": 0, "f": 0, "u": 0, "slow": 0}
errors, versions = [], []
stop = threading.Event()

# Each client mixes fast GETs with slow POSTs (0.3 s: in flight when a
# worker is told to stop). nginx retries a GET that failed on a cached
# FastCGI connection, so a GET dropped there would not show, but not a POST;
# it retries no request on uwsgi (a new connection each). A request dropped
# on either path shows here (keepconn_drain.sh: kept connections of stopping
# workers).
def load(n):
    i = 0
    while not stop.is_set():
        path = "/f/" if (i + n) % 2 else "/u/"
        slow = (i // 2 + n) % 4 == 0
        method, payload = ("POST", b"p" * 1000) if slow else ("GET", b"")
        i += 1
        try:
            st, _, body, _ = http_request(int(port), method, path + ("slow" if slow else "x")
                                          + "?i=%d" % i, body=payload, timeout=20)
            m = re.match(rb"version=(\S+) pid=\d+ read=(\d+)\n$", body)
            good = st == 200 and m is not None and int(m.group(2)) == len(payload)
            detail = "%s %s: status %d body %r" % (method, path, st, body[:120])
        except Exception as e:  # noqa: BLE001
            good, m, detail = False, None, "%s %s: %s: %s" % (method, path, type(e).__name__, e)
        with lock:
            if good:
                stats["ok"] += 1
                stats[path[1]] += 1
                stats["slow"] += slow
                versions.append((time.monotonic(), m.group(1).decode()))
            else:
                stats["failed"] += 1
                if len(errors) < 10:
                    errors.append(detail)

def write_conf(version):
    with open(conf, "w") as f:
        f.write('wsgi_file = "%s";\nprocesses = 2;\nthreads = 2;\nenv = [ "APP_VERSION=%s" ];\n'
                % (app, version))

def corralctl(*args):
    p = subprocess.run([ctl, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=70)
    return p.returncode, p.stdout, p.stderr

def status():
    rc, out, err = corralctl("--json", "status")
    return json.loads(out)["reload"] if rc == 0 else {"error": err}

def version_served(version, wait=5.0):
    """Whether a response with VERSION arrives within WAIT seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait:
        with lock:
            if any(v == version and t >= t0 - 0.05 for t, v in versions[-20:]):
                return True
        time.sleep(0.05)
    return False

def failed_generation_gone(what):
    """The workers of a rolled-back generation exit at once (they were
    still importing: killed)."""
    t0 = time.monotonic()
    while status().get("other_live") != 0 and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    report("%s: the failed generation's workers are gone within %.2f s"
           % (what, time.monotonic() - t0), status().get("other_live") == 0)

threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
time.sleep(1)
report("the load runs before the reloads (%d responses)" % stats["ok"], stats["ok"] > 20, stats)

def reload_rounds(command, first, count):
    rcs, seen, t_total = [], [], 0.0
    for k in range(first, first + count):
        write_conf(k)
        t0 = time.monotonic()
        rc, out, err = corralctl(command)
        t_total += time.monotonic() - t0
        rcs.append((rc, err.strip()))
        seen.append(version_served(str(k)))
        time.sleep(0.2)
    return rcs, seen, t_total

g0 = status().get("generation")
rcs, seen, secs = reload_rounds("reload", 1, 10)
report("reload x10: corralctl exits 0 every time (%.2f s each on average)" % (secs / 10),
       all(rc == 0 for rc, _ in rcs), rcs)
report("reload x10: each new config's version is served", all(seen), seen)
rcs, seen, secs = reload_rounds("chain-reload", 11, 10)
report("chain-reload x10: corralctl exits 0 every time (%.2f s each on average)" % (secs / 10),
       all(rc == 0 for rc, _ in rcs), rcs)
report("chain-reload x10: each new config's version is served", all(seen), seen)
st = status()
report("status: generation went from %s to %s, 20 reloads, none failed" % (g0, st.get("generation")),
       st.get("generation") == g0 + 20 and st.get("reloads") == 20 and st.get("failed") == 0
       and st.get("state") in ("idle", "draining") and st.get("last", {}).get("ok") is True, st)

# SIGHUP does what corralctl reload does.
write_conf("hup")
os.kill(corral_pid, signal.SIGHUP)
report("SIGHUP: the new version is served", version_served("hup", 10))
t0 = time.monotonic()
while status().get("generation") != g0 + 21 and time.monotonic() - t0 < 10:
    time.sleep(0.1)
report("SIGHUP: status counts it as generation %d" % (g0 + 21),
       status().get("generation") == g0 + 21)
while status().get("state") != "idle" and time.monotonic() - t0 < 15:
    time.sleep(0.1)

# A config that does not parse: refused at once, the old workers serve on.
with open(conf, "w") as f:
    f.write("processes = ;\n")
rc, out, err = corralctl("reload")
report("broken config: corralctl reload exits 1 with the parse error",
       rc == 1 and "invalid" in err and "corral.conf:1" in err, (rc, out, err))
st = status()
report("broken config: status shows the failure, generation unchanged",
       st.get("generation") == g0 + 21 and st.get("failed") == 1
       and st.get("last", {}).get("ok") is False, st)
report("broken config: the old version is still served", version_served("hup"))

# An app that fails to import: the first new worker exits 3, the reload rolls
# back, corralctl (which waits for the outcome) exits 1.
write_conf("broken")
rc, out, err = corralctl("reload")
report("broken app: corralctl reload exits 1 naming the failed start",
       rc == 1 and "failed to start" in err and "status 3" in err, (rc, out, err))
st = status()
report("broken app: status shows it failed, generation unchanged",
       st.get("generation") == g0 + 21 and st.get("failed") == 2
       and "failed to start" in st.get("last", {}).get("message", ""), st)
report("broken app: the old version is still served", version_served("hup"))
failed_generation_gone("broken app")
rc, out, err = corralctl("chain-reload")
report("broken app: chain-reload is refused the same way (exit 1)",
       rc == 1 and "failed to start" in err, (rc, out, err))
failed_generation_gone("broken app (chain)")

# And a good config after all that reloads fine.
write_conf("final")
rc, out, err = corralctl("reload")
report("after the failures a good reload works (exit %d)" % rc,
       rc == 0 and version_served("final"), (rc, out, err))

# Two SIGHUPs in a row: the second comes during the first reload and runs
# after it (a signal has no reply to carry a refusal).
g = status().get("generation")
write_conf("hup2")
os.kill(corral_pid, signal.SIGHUP)
time.sleep(0.05)
os.kill(corral_pid, signal.SIGHUP)
t0 = time.monotonic()
while (status().get("generation") != g + 2 or status().get("state") != "idle") \
        and time.monotonic() - t0 < 15:
    time.sleep(0.1)
report("two SIGHUPs in a row: two reloads (generation %s -> %s)" % (g, status().get("generation")),
       status().get("generation") == g + 2 and version_served("hup2"))

time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
print("responses: %d ok (%d FastCGI keep-conn, %d uwsgi, %d slow), %d failed"
      % (stats["ok"], stats["f"], stats["u"], stats["slow"], stats["failed"]))
report("under load: %d responses through nginx, 0 failed" % stats["ok"],
       stats["failed"] == 0 and stats["ok"] > 500 and stats["f"] > 100 and stats["u"] > 100
       and stats["slow"] > 100,
       errors)
PY

# Every reload left no stray worker: 2 workers of the last generation.
sleep 1
kids=$(children_of "$CORRAL_PID" | wc -w)
expect_eq "2 workers left after all the reloads" 2 "$kids"
check "the broken app's traceback is in the error log" grep -q "a broken deploy on purpose" "$CORRAL_LOG"
check "the rollback is logged" grep -q "failed to start: worker .* exited with status 3" "$CORRAL_LOG"
expect_no_match "no old worker had to be killed at the graceful timeout" \
    'graceful timeout passed' "$(cat "$CORRAL_LOG")"
check "the refused config is logged" grep -q "reload refused, generation .* keeps serving" "$CORRAL_LOG"
# uwsgi_pass opens a connection per request: any upstream error on it would
# be a connection corral dropped.
expect_no_match "nginx logged no upstream error on the uwsgi path" \
    '\[(error|crit|alert)\].*request: "GET /u/' "$(cat "$T/nginx-error.log")"
# FastCGI keep-conn: a stopping worker leaves its kept connections to nginx
# to close (worker_stop.c), so nginx had no request to retry either.
expect_no_match "nginx logged no upstream error on the FastCGI path" \
    '\[(error|crit|alert)\].*request: "[A-Z]+ /f/' "$(cat "$T/nginx-error.log")"

stop_pid "$NGINX_PID"
stop_corral
expect_eq "corral stops with status 0" 0 "$CORRAL_STATUS"

# ---- --pool dynamic and ondemand: a reload starts the new generation with
# as many workers as the pool has (at least one, in the other bank of
# slots), the pool sizes itself again afterwards, and no request fails
# meanwhile. Ondemand then lets its idle workers go and starts one of the
# new generation for the next request.
cat >"$T/pool_reload.py" <<'PY'
import json, subprocess, sys, threading, time
from lib_protocols import request, report

mode, sock, ctl, ctlsock, conf, app = sys.argv[1:7]
tag = mode[:3]
stats = {"ok": 0, "failed": 0}
versions = set()
stop = threading.Event()
lock = threading.Lock()

def corralctl(*args):
    p = subprocess.run([ctl, "-s", ctlsock] + list(args), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr

def load():
    while not stop.is_set():
        try:
            st, _, b = request("uwsgi", "unix:" + sock, "GET", "/", timeout=10)
            good = st == 200 and b.startswith(b"version=")
        except Exception:
            good, b = False, b""
        with lock:
            stats["ok" if good else "failed"] += 1
            if good:
                versions.add(b.split()[0].decode())

threads = [threading.Thread(target=load) for _ in range(4)]
for t in threads:
    t.start()
time.sleep(1)
rcs = []
for v in range(1, 4):
    with open(conf, "w") as f:
        f.write('wsgi_file = "%s";\nprocesses = 2;\nthreads = 2;\nenv = [ "APP_VERSION=%s%d" ];\n'
                % (app, tag, v))
    rc, out, err = corralctl("reload")
    rcs.append((rc, err.strip()))
    time.sleep(0.5)
time.sleep(1)
stop.set()
for t in threads:
    t.join()
rc, out, err = corralctl("--json", "status")
st = json.loads(out) if rc == 0 else {}
report("%s: corralctl reload exits 0 three times" % mode, all(r == 0 for r, _ in rcs), rcs)
report("%s: the last config's version is served" % mode, "version=%s3" % tag in versions, versions)
report("%s: %d responses during the reloads, 0 failed" % (mode, stats["ok"]),
       stats["failed"] == 0 and stats["ok"] > 50, stats)
rl, pool = st.get("reload", {}), st.get("pool", {})
report("%s: status shows generation 4 and the %s pool (%s live of max %s)"
       % (mode, mode, pool.get("processes_live"), pool.get("max_processes")),
       rl.get("generation") == 4 and rl.get("failed") == 0 and pool.get("mode") == mode
       and pool.get("max_processes") == 4 and 1 <= pool.get("processes_live", 0) <= 4, st)
if mode == "ondemand":
    # Idle: every worker leaves after --idle-worker-timeout (1 s)...
    live = None
    for _ in range(50):
        rc, out, err = corralctl("--json", "status")
        live = json.loads(out)["pool"]["processes_live"] if rc == 0 else None
        if live == 0:
            break
        time.sleep(0.1)
    report("ondemand: after the reloads the idle workers leave (0 live)", live == 0, live)
    # ...and the next request starts a worker of the new generation.
    st_, _, b = request("uwsgi", "unix:" + sock, "GET", "/", timeout=10)
    report("ondemand: a request to the empty pool is served by the new version",
           st_ == 200 and b.startswith(b"version=%s3 " % tag.encode()), (st_, b))
PY
write_conf dyn0
start_corral -c "$CONF" --listen "uwsgi:unix:$T/d.sock" --control "$T/d.ctl" --pool dynamic \
    --max-processes 4 --start-processes 2 --min-spare 1 --max-spare 3 || finish
PY_TIMEOUT=40 py_checks dynamic "$T/d.sock" "$CTL" "$T/d.ctl" "$CONF" "$APP" <"$T/pool_reload.py"
stop_corral
expect_eq "dynamic: corral stops with status 0" 0 "$CORRAL_STATUS"

write_conf ond0
start_corral -c "$CONF" --listen "uwsgi:unix:$T/o.sock" --control "$T/o.ctl" --pool ondemand \
    --max-processes 4 --idle-worker-timeout 1 || finish
PY_TIMEOUT=40 py_checks ondemand "$T/o.sock" "$CTL" "$T/o.ctl" "$CONF" "$APP" <"$T/pool_reload.py"
stop_corral
expect_eq "ondemand: corral stops with status 0" 0 "$CORRAL_STATUS"
finish
