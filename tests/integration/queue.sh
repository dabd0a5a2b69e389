#!/bin/bash
# queue.sh -- a full listen queue (the usual cause of 502s behind an app
# server) is logged once per episode, and the queued connections are still
# served once a thread is free.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-60}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

SOCK=$T/u.sock
start_corral --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --processes 1 --threads 1 \
    --backlog 4 || finish

# The only thread sleeps in /slow; meanwhile more clients connect than the
# backlog holds, so the queue is full until the thread is free again.
py_checks "unix:$SOCK" <<'PY'
import errno, socket, sys, threading, time
from lib_protocols import connect, request, uwsgi_packet, cgi_params, recv_all, report

addr = sys.argv[1]
slow = {}
def slow_request():
    slow["r"] = request("uwsgi", addr, uri="/slow?ms=2500", timeout=20)
t = threading.Thread(target=slow_request)
t.start()
time.sleep(0.5)

queued, refused = [], 0
for i in range(12):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(addr[5:])
        s.setblocking(True)
        s.settimeout(20)
        s.sendall(uwsgi_packet(cgi_params(uri="/hello")))
        queued.append(s)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
            raise
        refused += 1
        s.close()
report("the backlog of 4 turned connections away", refused > 0,
       "queued %d, refused %d" % (len(queued), refused))
t.join()
report("the slow request finished", slow.get("r", (0,))[0] == 200, repr(slow.get("r")))
answered = 0
for s in queued:
    raw = recv_all(s, time.monotonic() + 10)
    answered += raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"Hello, World!")
    s.close()
report("every queued connection was answered once the thread was free",
       answered == len(queued), "%d of %d" % (answered, len(queued)))
PY

wait_until 5 grep -q "no longer full" "$CORRAL_LOG"
expect_file_match "the full queue is logged with the listener and the backlog" \
    "uwsgi:unix:$SOCK: the listen queue is full \(.*backlog 4, episode 1\)" "$CORRAL_LOG"
expect_eq "one line per episode" 1 "$(grep -c 'listen queue is full' "$CORRAL_LOG")"
expect_file_match "the end of the episode is logged" "listen queue is no longer full" "$CORRAL_LOG"

stop_corral
expect_eq "corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"
finish
