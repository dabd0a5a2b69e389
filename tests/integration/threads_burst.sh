#!/bin/bash
# threads_burst.sh -- a worker's threads share its listeners and its kept
# connections, which stay registered edge-triggered between requests
# (worker_slots.c): no connection waits in a listen queue while a thread is
# free, and no byte of a kept connection is left unread while it is parked.
#  1. Rounds of 4 connections opened at once against 1 x 4 threads, each
#     request waiting at a barrier of 4 in the app (tests/apps/wsgi_barrier.py):
#     every round meets, i.e. the 4 were served at the same time. In half of
#     the rounds the worker is stopped (SIGSTOP) while they connect and send,
#     so that the 4 wait in the listen queue together when it goes on.
#  2. HTTP pipelining on kept connections (1 x 2, 2 x 4): after a request,
#     the connection parked, two requests in one write are both answered, in
#     order, again and again.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-180}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# ---------------------------------------------------------------- bursts

if "$CORRAL" --version 2>/dev/null | grep -q '^wsgi: Python'; then
    PB=$(free_port)
    start_corral --listen "http:tcp:127.0.0.1:$PB" \
        --wsgi-file "$top_srcdir/tests/apps/wsgi_barrier.py" --processes 1 --threads 4 || finish
    PY_TIMEOUT=150 py_checks "$PB" "$(children_of "$CORRAL_PID")" <<'PY'
import os, signal, socket, sys, threading
from http_raw import Conn, req
from lib_protocols import report
TCP = "tcp:127.0.0.1:%s" % sys.argv[1]
WORKER = int(sys.argv[2])
ROUNDS = 12
bad = []
for rnd in range(ROUNDS):
    # Opened together, so that the connections arrive in a burst; each sends
    # its request at once.
    stopped = rnd % 2 == 1
    if stopped:
        os.kill(WORKER, signal.SIGSTOP)
    try:
        conns = [Conn(TCP, timeout=20) for _ in range(4)]
        for c in conns:
            c.send(req("GET", "/", headers=["Connection: close"]))
    finally:
        if stopped:
            os.kill(WORKER, signal.SIGCONT)
    got = []
    for c in conns:
        try:
            got.append(c.response().body)
        except Exception as e:  # noqa: BLE001
            got.append(repr(e))
        c.close()
    if got != [b"met"] * 4:
        bad.append((rnd, "stopped" if stopped else "running", got))
report("bursts of 4 connections on 1 x 4: the 4 requests of every round served at once "
       "(%d rounds, half of them queued while the worker was stopped)" % ROUNDS, not bad, bad)
PY
else
    fail "bursts: corral built without WSGI" "configure found no Python (contrib/install-deps.sh)"
fi

# ---------------------------------------------------------------- pipelining

for shape in "1 2" "2 4"; do
    set -- $shape
    PP=$(free_port)
    start_corral --listen "http:tcp:127.0.0.1:$PP" --handler "$DEMO_SO" --processes "$1" \
        --threads "$2" || finish
    py_checks "$PP" "$1x$2" <<'PY'
import sys, time
from http_raw import Conn, req
from lib_protocols import report
TCP, shape = "tcp:127.0.0.1:%s" % sys.argv[1], sys.argv[2]

def params(body):
    return dict(l.split("=", 1) for l in body.decode("latin-1").splitlines() if "=" in l)

bad = []
conns = [Conn(TCP) for _ in range(6)]
for rnd in range(20):
    for i, c in enumerate(conns):
        c.send(req("GET", "/hello"))
        r = c.response()
        if r.body != b"Hello, World!":
            bad.append((rnd, i, "first", r.status, r.body))
    if rnd % 2:
        time.sleep(0.02)  # parked for sure
    for i, c in enumerate(conns):
        c.send(req("GET", "/params?a%d" % rnd) + req("POST", "/echo", body=b"b%d" % rnd))
    for i, c in enumerate(conns):
        r1, r2 = c.response(), c.response()
        got = (params(r1.body).get("QUERY_STRING"), r2.body)
        if got != ("a%d" % rnd, b"b%d" % rnd):
            bad.append((rnd, i, got))
report("%s: two requests in one write on a parked kept connection: both answered, in order "
       "(6 connections x 20 rounds)" % shape, not bad, bad[:5])
report("%s: the kept connections stay open" % shape, not any(c.closed(0.01) for c in conns))
for c in conns:
    c.close()
PY
    stop_corral
done

finish
