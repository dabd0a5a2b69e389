#!/bin/bash
# keepalive.sh -- the test that proves the epoll design: nginx keeps up to 32
# idle FastCGI connections per worker to a pool of only 2 processes x 2
# threads. A server that pins a thread to each kept connection starves here
# (requests hang on connections no thread watches); corral parks idle
# connections in epoll, so every request is answered quickly. Also: an idle
# kept connection is closed after --idle-timeout, quietly.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need nginx nginx-light

F=$T/f.sock
P=$(free_port)
start_corral --listen "fastcgi:unix:$F" --handler "$DEMO_SO" --processes 2 --threads 2 --chmod 0666 || finish
MAIN_PID=$CORRAL_PID MAIN_LOG=$CORRAL_LOG

start_nginx "
    upstream corral {
        server unix:$F;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$P;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass corral;
            fastcgi_keep_conn on;
        }
    }
" || finish

# kept_conns : server-side unix connections of corral's socket right now.
kept_conns() { ss -x 2>/dev/null | grep -c -F " $F "; }

max_kept=0
for round in 1 2 3; do
    py_checks "$P" "$round" <<'PY'
import sys
from lib_protocols import http_hammer, report
port, rnd = int(sys.argv[1]), sys.argv[2]
good, errs, secs = http_hammer(port, 500, 64, timeout=10, path_fmt="/hello?r=%d",
                               expect=lambda i, st, b: st == 200 and b == b"Hello, World!")
report("round %s: 500 requests from 64 clients through keep-conn: all 200 Hello (%d)" % (rnd, good), good == 500, errs)
report("round %s: the run takes well under the keep-alive timeouts (%.2f s < 20 s)" % (rnd, secs), secs < 20, secs)
PY
    n=$(kept_conns)
    [ "$n" -gt "$max_kept" ] && max_kept=$n
    say "round $round: $n FastCGI connections open between nginx and corral"
done

# nginx really kept connections, more of them than corral has threads: the
# idle ones are parked in epoll, not holding a thread each.
if command -v ss >/dev/null 2>&1; then
    if [ "$max_kept" -gt 4 ]; then
        ok "nginx keeps up to $max_kept idle connections open to a pool of 4 threads"
    else
        fail "nginx keeps more idle connections than corral has threads" "at most $max_kept connections on $F after a round"
    fi
else
    fail "requirement: ss" "ss is not installed: apt-get install iproute2"
fi

# With every kept connection idle, a request on a fresh direct connection is
# still answered at once: no thread is pinned to an idle connection.
py_checks "$F" <<'PY'
import sys, time
from lib_protocols import request, report
t0 = time.monotonic()
st, _, b = request("fastcgi", "unix:" + sys.argv[1], "GET", "/hello", timeout=5)
dt = time.monotonic() - t0
report("a direct request beside the idle kept connections answers in %.3f s" % dt, st == 200 and dt < 1.0, (st, b))
PY

expect_no_match "nginx logged no upstream errors" '\[(error|crit|alert)\]' "$(cat "$T/nginx-error.log")"
expect_no_match "corral logged no errors" ' error ' "$(cat "$MAIN_LOG")"

# ---- --idle-timeout: an idle kept connection is closed by the server
I=$T/idle.sock
start_corral --listen "fastcgi:unix:$I" --handler "$DEMO_SO" --processes 1 --threads 1 --idle-timeout 2 || finish
py_checks "$I" <<'PY'
import socket, sys, time
from lib_protocols import FcgiConn, report
c = FcgiConn("unix:" + sys.argv[1], keep_conn=True, timeout=10)
st, _, b = c.request("GET", "/hello")
report("idle-timeout: a keep-conn request is answered", st == 200 and b == b"Hello, World!", (st, b))
st, _, b = c.request("GET", "/hello")
report("idle-timeout: a second request on the same connection is answered", st == 200 and b == b"Hello, World!", (st, b))
t0 = time.monotonic()
c.sock.settimeout(8)
try:
    got = c.sock.recv(100)
    closed_after = time.monotonic() - t0
except socket.timeout:
    got, closed_after = None, None
report("idle-timeout 2: the server closed the idle kept connection (recv -> b'') after %s s" % (closed_after and round(closed_after, 2)),
       got == b"" and closed_after is not None and 1.5 <= closed_after < 5, (got, closed_after))
c.close()
# A connection kept busy is not closed: a request every second for 4 s.
c = FcgiConn("unix:" + sys.argv[1], keep_conn=True, timeout=10)
ok = True
for i in range(5):
    try:
        st, _, b = c.request("GET", "/hello")
        ok = ok and st == 200
    except Exception as e:
        ok = False
        break
    time.sleep(1)
report("idle-timeout 2: a connection used every second stays open for 5 requests", ok)
c.close()
PY
expect_no_match "idle-timeout: closing idle connections logs no errors" ' error ' "$(cat "$CORRAL_LOG")"

finish
