#!/bin/bash
# health.sh -- --health-path and --stop-delay: the worker answers the health
# path itself, never the app (200 "ok", text/plain, no-store, access-logged),
# over uwsgi, FastCGI and through nginx; off by default. With --stop-delay,
# SIGTERM first publishes the "stop-delay" state (health 503 "stopping",
# corralctl status, the status page) while new connections are still
# accepted and served, then the graceful stop follows and corral exits 0; a
# reload during the delay is refused; a second SIGTERM stops at once. A
# worker that stops on its own (recycling) answers 503 too.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-60}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$CTL" "$DEMO_SO"
need curl curl

U=$T/u.sock F=$T/f.sock SOCK=$T/ctl.sock

# health_is PROTO SOCKET STATUS BODY : one request of /healthz on a new
# connection answers STATUS with BODY, text/plain and no-store.
health_is() {
    py_checks "$@" <<'PY'
import sys
from lib_protocols import request, header
from lib_protocols import report
proto, sock, want_st, want_body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
st, h, body = request(proto, "unix:" + sock, uri="/healthz")
report("%s: /healthz answers %d %r, text/plain, no-store" % (proto, want_st, want_body),
       (st, body, header(h, "Content-Type"), header(h, "Cache-Control"))
       == (want_st, want_body.encode() + b"\n", "text/plain", "no-store"), repr((st, h, body)))
PY
}

# hello_ok PROTO SOCKET WHAT : /hello on a new connection answers 200.
hello_ok() {
    py_checks "$@" <<'PY'
import sys
from lib_protocols import request, report
proto, sock, what = sys.argv[1:4]
st, h, body = request(proto, "unix:" + sock, uri="/hello")
report("%s: %s: a new connection is accepted and /hello served" % (proto, what),
       (st, body) == (200, b"Hello, World!"), repr((st, body)))
PY
}

# ---- off by default: the app answers the path (the demo's 404)
start_corral --listen "uwsgi:unix:$U" --handler "$DEMO_SO" --processes 1 || finish
py_checks "$U" <<'PY'
import sys
from lib_protocols import request, report
st, h, body = request("uwsgi", "unix:" + sys.argv[1], uri="/healthz")
report("off by default: the app answers /healthz (404 from the demo)", (st, body) == (404, b"not found\n"), repr((st, body)))
PY
stop_corral

# ---- the health path, without the app
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --handler "$DEMO_SO" \
    --processes 2 --threads 2 --chmod 0666 --control "$SOCK" --health-path /healthz \
    --status-path /corral-status --stop-delay 4 --access-log "$T/access.log" || finish
health_is uwsgi "$U" 200 ok
health_is fastcgi "$F" 200 ok
py_checks "$U" "$F" <<'PY'
import sys
from lib_protocols import request, report
u, f = sys.argv[1:3]
st, h, body = request("fastcgi", "unix:" + f, uri="/healthz?probe=1")
report("fastcgi: a query string does not change the path", (st, body) == (200, b"ok\n"), repr((st, body)))
st, h, body = request("uwsgi", "unix:" + u, uri="/healthz/x")
report("uwsgi: a longer path goes to the app (404 from the demo)", (st, body) == (404, b"not found\n"), repr((st, body)))
st, h, body = request("uwsgi", "unix:" + u, method="HEAD", uri="/healthz")
report("uwsgi: HEAD /healthz answers 200 without a body", (st, body) == (200, b""), repr((st, body)))
PY
wait_until 5 grep -q '"GET /healthz?probe=1" 200 ' "$T/access.log"
expect_file_match "access log: the health requests are logged with their status" \
    '"GET /healthz\?probe=1" 200 3 ' "$T/access.log"

P=$(free_port)
start_nginx "
    server {
        listen 127.0.0.1:$P;
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$U;
        }
        location = /healthz {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$F;
        }
    }
" || finish
curl_req "http://127.0.0.1:$P/healthz"
expect_eq "nginx (FastCGI): /healthz answers 200" 200 "$HTTP_CODE"
expect_eq "nginx (FastCGI): body ok" "ok" "$(cat "$T/body")"
expect_eq "nginx (FastCGI): Content-Type text/plain" "text/plain" "$(head_value Content-Type)"
ctl --json status
expect_json() { expect_eq "$1" "$3" "$(jq_py "$2")"; }
expect_json "corralctl status: state running" 'd["state"]' running

# ---- SIGTERM with --stop-delay 4 (room for the checks on a busy machine): still
# serving, health 503, then the stop
kill -TERM "$CORRAL_PID"
check "stop delay: the health path answers 503 soon after SIGTERM" wait_until 5 \
    "$PY" -c 'import sys; from lib_protocols import request; sys.exit(request("uwsgi", "unix:" + sys.argv[1], uri="/healthz")[0] != 503)' "$U"
health_is uwsgi "$U" 503 stopping
health_is fastcgi "$F" 503 stopping
hello_ok uwsgi "$U" "during the stop delay"
hello_ok fastcgi "$F" "during the stop delay"
curl_req "http://127.0.0.1:$P/hello"
expect_eq "nginx: /hello still answers 200 during the stop delay" 200 "$HTTP_CODE"
curl_req "http://127.0.0.1:$P/healthz"
expect_eq "nginx: /healthz answers 503 during the stop delay" 503 "$HTTP_CODE"
ctl --json status
expect_json "corralctl status: state stop-delay" 'd["state"]' stop-delay
expect_eq "corralctl status: exit status 0 during the delay" 0 "$CTL_RC"
py_checks "$U" <<'PY'
import json, sys
from lib_protocols import request, report
st, h, body = request("uwsgi", "unix:" + sys.argv[1], uri="/corral-status")
report("status page: state stop-delay", st == 200 and json.loads(body)["state"] == "stop-delay", repr((st, body[:80])))
PY
kill -HUP "$CORRAL_PID"
check "stop delay: SIGHUP is refused with a log line" wait_until 5 \
    grep -q 'SIGHUP: reload refused: corral is in its stop delay' "$CORRAL_LOG"
hello_ok uwsgi "$U" "after the refused reload"
check "stop delay: then corral stops by itself" wait_until 20 gone "$CORRAL_PID"
wait "$CORRAL_PID"
expect_eq "stop delay: corral exits 0" 0 "$?"
_forget_pid "$CORRAL_PID"
expect_file_match "log: the stop delay is logged once" 'stop delay: still accepting and serving for 4\.000 s' "$CORRAL_LOG"
expect_eq "log: one stop delay line" 1 "$(grep -c 'stop delay: still accepting' "$CORRAL_LOG")"
expect_file_match "log: then the graceful stop" 'stop delay over' "$CORRAL_LOG"
expect_file_match "log: stopping gracefully after the delay" 'stopping gracefully' "$CORRAL_LOG"
check "log: the delay is over before the graceful stop begins" \
    awk '/stop delay over/ { d = NR } /stopping gracefully/ { g = NR } END { exit !(d && g > d) }' \
    "$CORRAL_LOG"

# ---- a worker that stops on its own (recycling) answers 503 on a kept
# FastCGI connection that sends one more request after its goodbye
start_corral --listen "fastcgi:unix:$F" --handler "$DEMO_SO" --processes 1 --max-requests 3 \
    --health-path /healthz || finish
py_checks "$F" <<'PY'
import sys
from lib_protocols import FcgiConn, report
c = FcgiConn("unix:" + sys.argv[1], keep_conn=True)
got = [c.request(uri=u)[::2] for u in ("/healthz", "/hello", "/hello", "/healthz")]
c.close()
report("recycling: 200 ok before, 503 stopping once the worker stops (kept connection)",
       got == [(200, b"ok\n"), (200, b"Hello, World!"), (200, b"Hello, World!"),
               (503, b"stopping\n")], repr(got))
PY
stop_corral

# ---- a second SIGTERM ends a long delay at once; corralctl stop starts it
start_corral --listen "uwsgi:unix:$U" --handler "$DEMO_SO" --processes 1 --control "$SOCK" \
    --health-path /healthz --stop-delay 40 || finish
ctl --json stop
expect_json "corralctl stop: the reply's state is stop-delay" 'd["state"]' stop-delay
health_is uwsgi "$U" 503 stopping
ctl reload
expect_eq "corralctl reload during the delay: refused (exit 1)" 1 "$CTL_RC"
expect_match "corralctl reload: says why" "stop delay" "$(cat "$T/ctl.err")"
hello_ok uwsgi "$U" "during a 40 s delay"
kill -TERM "$CORRAL_PID"
check "a second SIGTERM: corral stops long before the 40 s delay" wait_until 15 gone "$CORRAL_PID"
wait "$CORRAL_PID"
expect_eq "a second SIGTERM: corral exits 0" 0 "$?"
_forget_pid "$CORRAL_PID"
expect_file_match "log: the delay ended early" 'stop delay ended early' "$CORRAL_LOG"

finish
