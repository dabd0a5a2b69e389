#!/bin/bash
# lead.sh -- with threads, one thread (the leader) waits in epoll_wait and
# serves what it takes; when a request blocks, another thread takes the lead
# (src/worker/worker_lead.c). A request that blocks must never hold up the
# others while a thread is free:
#  1. 1 x 2, native handler: a request sleeps (/slow?ms=4000) on one kept
#     connection; requests on five other kept connections (parked: their
#     events) and on a new connection (the listener's) are all answered while
#     it still sleeps, then it is answered too. In half of the rounds the
#     worker is stopped (SIGSTOP) while all of them are sent, so that the
#     sleeping one and the others come in one batch of events, the sleeping
#     one first (the rest of the batch goes to the next leader).
#  2. The same with a WSGI app (tests/apps/wsgi_app.py's /sleep: time.sleep).
#  3. 1 x 3, native: two requests sleep at once; a third is still answered.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-180}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# blocked_round PORT WORKER_PID SLEEP_URI N_SLEEPERS LABEL
blocked_checks() {
    PY_TIMEOUT=120 py_checks "$@" <<'PY'
import os, signal, socket, sys, time
from http_raw import Conn, req
from lib_protocols import report
TCP = "tcp:127.0.0.1:%s" % sys.argv[1]
WORKER, SLOW, SLEEPERS, LABEL = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
ROUNDS = 4

def pending(c):
    """True while no byte of an answer has come on C."""
    if c.buf:
        return False
    c.s.settimeout(0)
    try:
        return not c.s.recv(1, socket.MSG_PEEK)  # b"": closed, no answer either
    except BlockingIOError:
        return True
    finally:
        c.s.settimeout(20)

bad = []
slow = [Conn(TCP, timeout=20) for _ in range(SLEEPERS)]
quick = [Conn(TCP, timeout=20) for _ in range(5)]
for c in slow + quick:  # kept and parked from now on
    c.send(req("GET", "/hello"))
    c.response()
for rnd in range(ROUNDS):
    stopped = rnd % 2 == 1
    if stopped:
        os.kill(WORKER, signal.SIGSTOP)
    try:
        for c in slow:
            c.send(req("GET", SLOW))
        if not stopped:
            time.sleep(0.3)  # the sleepers are in the app
        for c in quick:
            c.send(req("GET", "/hello"))
        new = Conn(TCP, timeout=20)
        new.send(req("GET", "/hello", headers=["Connection: close"]))
    finally:
        if stopped:
            os.kill(WORKER, signal.SIGCONT)
    got = [c.response().status for c in quick + [new]]
    new.close()
    still = [pending(c) for c in slow]
    if got != [200] * 6 or not all(still):
        bad.append((rnd, "stopped" if stopped else "running", got, still))
    for c in slow:
        r = c.response()
        if r.status != 200:
            bad.append((rnd, "sleeper", r.status, r.body[:80]))
report("%s: %d sleeping request(s) on kept connections: requests on 5 other kept connections "
       "and a new one answered meanwhile (%d rounds, half sent while the worker was stopped)"
       % (LABEL, SLEEPERS, ROUNDS), not bad, bad)
PY
}

P=$(free_port)
start_corral --listen "http:tcp:127.0.0.1:$P" --handler "$DEMO_SO" --processes 1 --threads 2 ||
    finish
blocked_checks "$P" "$(children_of "$CORRAL_PID")" "/slow?ms=4000" 1 "native 1 x 2"
stop_corral

if "$CORRAL" --version 2>/dev/null | grep -q '^wsgi: Python'; then
    P=$(free_port)
    start_corral --listen "http:tcp:127.0.0.1:$P" --wsgi-file "$top_srcdir/tests/apps/wsgi_app.py" \
        --processes 1 --threads 2 || finish
    blocked_checks "$P" "$(children_of "$CORRAL_PID")" "/sleep?ms=4000" 1 "wsgi 1 x 2"
    stop_corral
else
    fail "wsgi: corral built without WSGI" "configure found no Python (contrib/install-deps.sh)"
fi

P=$(free_port)
start_corral --listen "http:tcp:127.0.0.1:$P" --handler "$DEMO_SO" --processes 1 --threads 3 ||
    finish
blocked_checks "$P" "$(children_of "$CORRAL_PID")" "/slow?ms=4000" 2 "native 1 x 3"
stop_corral

finish
