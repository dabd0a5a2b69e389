#!/bin/bash
# keepconn_drain.sh -- workers that stop gracefully lose no request on kept
# FastCGI connections. nginx (fastcgi_keep_conn on, upstream keepalive)
# sends POSTs with bodies, some slow, from 8 clients for DRAIN_SECS seconds
# while workers stop all the time: --max-requests 20 (jitter 10) recycles
# them, corralctl scales the pool up and down and reloads it. nginx does not
# retry a POST that failed on a cached connection (no non_idempotent in
# fastcgi_next_upstream), so a kept connection closed under a request nginx
# had just sent shows as a 502: none may fail (before the goodbye of
# src/worker_stop.c, 66 of 7834 did over 3 runs). Also: a stopping worker
# is gone soon (the drain is short), and nginx closes each kept connection on
# the goodbye: corral closes none. Then a front end that ignores the goodbye
# (by hand: idle, busy and slow kept connections) and Apache with
# enablereuse=on (it ignores it too): nothing fails, stops stay bounded.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$top_builddir/corralctl"
need nginx nginx-light
APP=$top_srcdir/tests/apps/wsgi_drain.py
CTL=$top_builddir/corralctl
F=$T/f.sock SOCK=$T/ctl.sock
P=$(free_port)
SECS=${DRAIN_SECS:-25}

start_corral --listen "fastcgi:unix:$F" --chmod 0666 --wsgi-file "$APP" --processes 2 \
    --threads 2 --max-processes 4 --max-requests 20 --max-requests-jitter 10 \
    --control "$SOCK" --graceful-timeout 10 || finish

start_nginx "
    upstream corral_fcgi {
        server unix:$F;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$P;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass corral_fcgi;
            fastcgi_keep_conn on;
        }
    }
" || finish

# stop_stats LOG : sets stops, median, longest (ms) and the sums asked,
# peer, idle, ignored, forced from the "stopped after" lines of the workers in LOG.
stop_stats() {
"$PY" - "$1" >"$T/drain.out" <<'PY'
import re, sys
ms, sums = [], [0, 0, 0, 0, 0]
for line in open(sys.argv[1]):
    m = re.search(r"stopped after (\d+) ms; kept connections: (\d+) goodbyes sent, (\d+) "
                  r"closed by the front end, (\d+) closed idle after it, (\d+) closed after a "
                  r"response as the front end ignores it, (\d+) closed at the drain limit", line)
    if m:
        ms.append(int(m.group(1)))
        sums = [a + int(b) for a, b in zip(sums, m.groups()[1:])]
ms.sort()
print(len(ms), ms[len(ms) // 2] if ms else 0, ms[-1] if ms else 0, *sums)
PY
read -r stops median longest asked peer idle ignored forced <"$T/drain.out"
}

# The load: 8 clients sending POSTs through the front end on PORT for SECS
# seconds; with a control socket, the pool is scaled and reloaded meanwhile.
LOAD_PY=$(cat <<'PY'
import random, re, subprocess, sys, threading, time
from lib_protocols import http_request, report

port, ctl, sock, secs, label = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                float(sys.argv[4]), sys.argv[5])
lock = threading.Lock()
stats = {"ok": 0, "failed": 0, "slow": 0}
errors, pids = [], set()
stop = threading.Event()

def load(n):
    rnd = random.Random(n)
    i = 0
    while not stop.is_set():
        i += 1
        ms = rnd.choice((0, 0, 50, 300)) if i % 3 == 0 else 0
        payload = b"p" * rnd.randint(1, 4000)
        try:
            st, _, body, _ = http_request(port, "POST", "/post?ms=%d&c=%d&i=%d" % (ms, n, i),
                                          body=payload, timeout=20)
            m = re.match(rb"pid=(\d+) read=(\d+)\n$", body)
            good = 200 <= st < 300 and m is not None and int(m.group(2)) == len(payload)
            detail = "POST ms=%d: status %d body %r" % (ms, st, body[:100])
        except Exception as e:  # noqa: BLE001
            good, m, detail = False, None, "POST ms=%d: %s: %s" % (ms, type(e).__name__, e)
        with lock:
            if good:
                stats["ok"] += 1
                stats["slow"] += ms > 0
                pids.add(int(m.group(1)))
            else:
                stats["failed"] += 1
                if len(errors) < 10:
                    errors.append(detail)

def corralctl(*args):
    p = subprocess.run([ctl, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, (p.stdout + p.stderr).strip()

threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
# Besides the recycling, the pool is scaled up and down (the workers above
# the new size stop) and reloaded (every old worker stops) now and then.
t0, k, ctl_fail = time.monotonic(), 0, []
while time.monotonic() - t0 < secs:
    time.sleep(1.0)
    k += 1
    cmd = None if ctl == "-" else ("scale", "4") if k % 4 == 1 else \
          ("scale", "2") if k % 4 == 2 else ("reload",) if k % 8 == 3 else None
    if cmd:
        rc, out = corralctl(*cmd)
        if rc != 0:
            ctl_fail.append((cmd, rc, out))
stop.set()
for t in threads:
    t.join()
print("%s: responses: %d ok (%d slow), %d failed, %d worker pids served"
      % (label, stats["ok"], stats["slow"], stats["failed"], len(pids)))
if ctl != "-":
    report("%s: corralctl scale and reload all succeed" % label, not ctl_fail, ctl_fail[:3])
report("%s: workers were replaced all along (%d worker pids served)" % (label, len(pids)),
       len(pids) >= secs * 0.8)
# nginx: none may fail. Apache ignores the goodbye, so the worker still
# closes a connection Apache keeps using right after a response: the old
# race, for it only (measured 0 in 3,031 and 1 in 614): at most 1 in 100.
allowed = stats["ok"] // 100 if label == "apache" else 0
report("%s: %d POSTs while workers stop, %d failed (at most %d)"
       % (label, stats["ok"], stats["failed"], allowed),
       stats["failed"] <= allowed and stats["ok"] > 10 * secs and stats["slow"] > secs, errors)
PY
)

PY_TIMEOUT=$((SECS + 40)) py_checks "$P" "$CTL" "$SOCK" "$SECS" nginx <<<"$LOAD_PY"

n=$(grep -c '\[error\].*upstream' "$T/nginx-error.log")
say "nginx logged $n upstream errors (retried GETs would be among them; there are only POSTs)"
expect_no_match "nginx logged no upstream error" '\[(error|crit|alert)\].*upstream' \
    "$(cat "$T/nginx-error.log")"
n=$(grep -c 'recycling (it finishes' "$CORRAL_LOG")
say "$n recyclings"
# Each stopping worker logs how long it took and what became of its kept
# connections: nginx closes each one on the goodbye, none is left idle after
# it or to the drain limit, and a stop takes about as long as the slowest
# request.
stop_stats "$CORRAL_LOG"
say "$stops graceful stops: median $median ms, longest $longest ms; $asked goodbyes sent;" \
    "kept connections: $peer closed by nginx, $idle closed idle after the goodbye," \
    "$ignored closed after a response as nginx ignored it, $forced closed at the drain limit"
check "workers stopped gracefully ($stops stop lines)" test "$stops" -ge 20
expect_eq "no kept connection was closed by corral (idle after the goodbye, goodbye ignored, drain limit)" \
    "0 0 0" "$idle $ignored $forced"
check "nginx closed kept connections on the goodbye ($peer; $asked goodbyes)" test "$peer" -ge 1
# The slowest request is 0.3 s; the drain limit (5 s) is never reached.
expect_lt "the longest stop is well under the drain limit (ms)" "$longest" 2000
expect_no_match "no worker had to be killed" 'killing' "$(cat "$CORRAL_LOG")"
# A kept connection nginx closes on the goodbye is no error (nor is the
# reset a unix socket closed with the goodbye unread gives).
expect_no_match "corral logged no error" ' error ' "$(cat "$CORRAL_LOG")"
stop_pid "$NGINX_PID"
stop_corral
expect_eq "corral stops with status 0" 0 "$CORRAL_STATUS"

# ---- A front end that ignores the goodbye (it reads the empty STDERR
# record and goes on), on three kept connections while the worker stops:
# one left idle is closed 1 s after its goodbye; one kept busy is served
# until it carried a second request after a goodbye, then closed right after
# that response; one whose request runs past the drain limit
# (graceful_timeout / 2 = 3 s) gets its response, then is closed.
start_corral --listen "fastcgi:unix:$T/g.sock" --wsgi-file "$APP" --processes 1 --threads 4 \
    --graceful-timeout 6 || finish
py_checks "$T/g.sock" "$CORRAL_PID" <<'PY'
import os, signal, sys, threading, time
from lib_protocols import FcgiConn, fcgi_read_record, report
addr = "unix:" + sys.argv[1]
idle, busy, slow = (FcgiConn(addr, keep_conn=True, timeout=10) for _ in range(3))
answers = [c.request("POST", "/x", body=b"a" * 10) for c in (idle, busy, slow)]
report("kept connections: first answers", all(st == 200 and b"read=10" in b
                                              for st, _, b in answers), answers)

def closed_after(c, t0):
    """Seconds from T0 until C is closed (only empty STDERR records before)."""
    try:
        while True:
            rec = fcgi_read_record(c.sock)
            if rec[1] != 7 or rec[3]:
                return "record %r" % (rec,)
    except EOFError:
        return "%.2f" % (time.monotonic() - t0)
    except OSError as e:
        return repr(e)

slow.send_request("POST", "/x?ms=4000", body=b"s" * 40)
time.sleep(0.1)
os.kill(int(sys.argv[2]), signal.SIGTERM)
t0 = time.monotonic()
busy_answers, busy_end = [], []

def keep_busy():
    while True:
        try:
            st, _, b = busy.request("POST", "/x", body=b"b" * 20)
            busy_answers.append((st, b))
        except (EOFError, OSError) as e:
            busy_end.append((time.monotonic() - t0, repr(e)))
            return
        time.sleep(0.2)

th = threading.Thread(target=keep_busy)
th.start()
time.sleep(0.5)
st, _, body = idle.request("POST", "/x", body=b"c" * 30)
report("the stopping worker still serves a kept connection, the goodbye skipped as an empty "
       "stderr", st == 200 and b"read=30" in body and idle.stderr == b"", (st, body, idle.stderr))
secs = closed_after(idle, time.monotonic())
report("... and closes it once idle 1 s after its goodbye (%s s)" % secs,
       secs[0].isdigit() and 0.9 <= float(secs) < 1.6, secs)
th.join(10)
report("a kept connection the front end keeps using is served (%d answers) and closed after a "
       "second request past a goodbye (%.2f s after SIGTERM)"
       % (len(busy_answers), busy_end[0][0] if busy_end else -1),
       2 <= len(busy_answers) <= 3 and all(st == 200 and b"read=20" in b for st, b in busy_answers)
       and busy_end and busy_end[0][0] < 1.5, (busy_answers, busy_end))
raw, _, _ = slow.read_response()
report("a request that ends past the drain limit is answered in full",
       raw.endswith(b"read=40\n"), raw[-60:])
secs = closed_after(slow, t0)
report("... and its connection closed right after (%s s after SIGTERM, limit 3 s)" % secs,
       secs[0].isdigit() and 3.8 <= float(secs) < 5, secs)
PY
wait_until 5 gone "$CORRAL_PID"
stop_corral
expect_eq "... corral then stops with status 0" 0 "$CORRAL_STATUS"
expect_file_match "... and the worker says so" \
    'stopped after [0-9]+ ms; kept connections: [0-9]+ goodbyes sent, 0 closed by the front end, 1 closed idle after it, 1 closed after a response as the front end ignores it, 1 closed at the drain limit' \
    "$CORRAL_LOG"

# ---- Apache (mod_proxy_fcgi with enablereuse=on): it reads the goodbye
# as part of the next response and goes on, and before it reuses a pooled
# connection it checks that the socket is not at EOF: the worker closes a
# connection after its second request past a goodbye, or idle 1 s after it.
if command -v apache2 >/dev/null && [ -f /usr/lib/apache2/modules/mod_proxy_fcgi.so ]; then
    start_corral --listen "fastcgi:unix:$T/a.sock" --chmod 0666 --wsgi-file "$APP" \
        --processes 2 --threads 2 --max-requests 20 --max-requests-jitter 10 \
        --graceful-timeout 10 || finish
    PA=$(free_port)
    start_apache "
Listen 127.0.0.1:$PA
<VirtualHost 127.0.0.1:$PA>
    ProxyPass \"/\" \"unix:$T/a.sock|fcgi://corral-drain/\" enablereuse=on
</VirtualHost>
" || finish
    ASECS=${DRAIN_APACHE_SECS:-10}
    PY_TIMEOUT=$((ASECS + 40)) py_checks "$PA" - - "$ASECS" apache <<<"$LOAD_PY"
    stop_stats "$CORRAL_LOG"
    say "apache: $stops graceful stops: median $median ms, longest $longest ms; $asked" \
        "goodbyes sent; kept connections: $peer closed by Apache, $idle closed idle after" \
        "the goodbye, $ignored closed after a response as Apache ignores it, $forced closed" \
        "at the drain limit"
    expect_eq "apache: no kept connection was left to the drain limit" 0 "$forced"
    expect_no_match "apache: corral logged no error" ' error ' "$(cat "$CORRAL_LOG")"
    # The residual race (the request written into a connection the worker
    # closes right after a response) shows in two forms: AH01073 when the
    # close came first, or AH01067 + AH01075 "Connection reset by peer"
    # when the request reached the socket first and the close reset it
    # (seen once in CI). Any other proxy error fails.
    race='AH01073|AH01067: Failed to read FastCGI header|\(104\)Connection reset by peer: .*AH01075'
    say "apache: $(grep -cE "$race" "$T/apache-error.log") log line(s) of a request written into a closing connection (AH01073, or AH01067 with AH01075 reset)"
    expect_no_match "apache: Apache logged no other proxy error" 'proxy' \
        "$(grep -vE "$race" "$T/apache-error.log")"
    stop_pid "$APACHE_PID"
    stop_corral
    expect_eq "apache: corral stops with status 0" 0 "$CORRAL_STATUS"
else
    say "apache2 with mod_proxy_fcgi is not installed: the Apache case is skipped"
fi
finish
