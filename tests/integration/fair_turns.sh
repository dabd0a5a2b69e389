#!/bin/bash
# fair_turns.sh -- kept connections are served in fair turns, and the bytes
# that arrive while a thread owns a kept connection are not lost.
#  1. Kept FastCGI connections that each send their next request as soon as
#     the last response is in (corral-bench), against 1 x 1, 1 x 2 and 2 x 2
#     pools: every connection is served, none far less than the most served
#     one (the fewest completed requests at least a quarter of the most: a
#     connection left waiting while others are served again and again
#     fails, the spread of a busy machine does not; an eighth with two
#     processes).
#  2. Beside them, as many clients that open a connection per request: the
#     accepts that follow one another (worker.c's accept batch) do not starve
#     the kept connections, nor the kept ones the new.
#  3. A request written on a kept connection while its thread still serves
#     the one before (so its bytes come while the connection is owned, not
#     parked) is answered; a request and the client's half-close that come
#     at once on a parked kept connection: the request is answered and the
#     connection closed; with 1, 2 and 4 threads.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

BENCH=$top_builddir/corral-bench
need_build "$CORRAL" "$DEMO_SO" "$BENCH"

# field JSON NAME: the number NAME of a corral-bench --json line.
field() { printf '%s' "$1" | grep -o "\"$2\":[0-9.]*" | head -1 | cut -d: -f2; }

# fair LABEL JSON DIV: the spread of completed requests across the connections: the fewest at
# least 1/DIV of the most.
fair() {
    local label=$1 json=$2 div=$3 lo hi
    lo=$(field "$json" conn_done_min) hi=$(field "$json" conn_done_max)
    say "$label: $json"
    expect_match "$label: no errors" '"errors":0,' "$json"
    expect_match "$label: every connection served" '"starved_conns":0,' "$json"
    if [ -n "$lo" ] && [ -n "$hi" ] && [ "$hi" -gt 0 ] && [ $((lo * div)) -ge "$hi" ]; then
        ok "$label: the least served connection did at least 1/$div of the most ($lo, $hi)"
    else
        fail "$label: the least served connection did at least 1/$div of the most" \
            "fewest ${lo:-?}, most ${hi:-?}"
    fi
}

F=$T/f.sock
for pool in 1x1 1x2 2x2; do
    start_corral --listen "fastcgi:unix:$F" --handler "$DEMO_SO" --processes "${pool%x*}" \
        --threads "${pool#*x}" || finish
    kept=$("$BENCH" --proto fastcgi --keep-conn --connect "unix:$F" -c 16 -d 2 --warmup 0.5 \
        --uri /hello --expect-body-prefix "Hello, World!" --json 2>&1)
    # Two processes: a kept connection stays with the process that took it, and the two
    # processes' shares of the CPU differ more on a busy machine than threads' turns do.
    div=4
    [ "${pool%x*}" = 1 ] || div=8
    fair "$pool, 16 kept connections" "$kept" "$div"

    # Both kinds at once: the kept ones and the connection-per-request ones.
    "$BENCH" --proto fastcgi --connect "unix:$F" -c 8 -d 2 --warmup 0.5 --uri /hello \
        --expect-body-prefix "Hello, World!" --json >"$T/new.json" 2>&1 &
    newpid=$!
    kept=$("$BENCH" --proto fastcgi --keep-conn --connect "unix:$F" -c 8 -d 2 --warmup 0.5 \
        --uri /hello --expect-body-prefix "Hello, World!" --json 2>&1)
    wait "$newpid"
    new=$(cat "$T/new.json")
    fair "$pool, 8 kept connections beside 8 connecting clients" "$kept" "$div"
    fair "$pool, 8 connecting clients beside 8 kept connections" "$new" "$div"
    klo=$(field "$kept" conn_done_min) nlo=$(field "$new" conn_done_min)
    khi=$(field "$kept" conn_done_max) nhi=$(field "$new" conn_done_max)
    if [ -n "$klo" ] && [ -n "$nhi" ] && [ $((klo * 4)) -ge "$nhi" ] &&
        [ -n "$nlo" ] && [ -n "$khi" ] && [ $((nlo * 16)) -ge "$khi" ]; then
        ok "$pool: neither kind starves the other (kept $klo-$khi, connecting $nlo-$nhi)"
    else
        fail "$pool: neither kind starves the other" \
            "kept ${klo:-?}-${khi:-?} requests a connection, connecting ${nlo:-?}-${nhi:-?}"
    fi
    stop_corral
done

for threads in 1 2 4; do
    start_corral --listen "fastcgi:unix:$F" --handler "$DEMO_SO" --processes 1 \
        --threads "$threads" || finish
    py_checks "unix:$F" "$threads" <<'PY'
import socket, sys, time
from lib_protocols import FcgiConn, parse_response, report

addr, threads = sys.argv[1], sys.argv[2]
ok = True
for i in range(5):
    c = FcgiConn(addr, keep_conn=True, timeout=10)
    c.send_request(uri="/slow?ms=300")
    time.sleep(0.1)  # the thread is in the app now, owning the connection
    c.send_request(uri="/hello")
    try:
        first = parse_response(c.read_response()[0])
        second = parse_response(c.read_response()[0])
    except Exception as e:
        ok = False
        print("round %d: %r" % (i, e))
        break
    if first[0] != 200 or second[0] != 200 or not second[2].startswith(b"Hello, World!"):
        ok = False
        print("round %d: %r %r" % (i, first, second))
    c.close()
report("%s thread(s): a request written while the one before is served is answered" % threads, ok)

# A kept connection, idle (parked) after a first request, gets a whole request and the
# client's half-close at once: the request is answered and the connection closed.
ok, detail = True, ""
for i in range(10):
    c = FcgiConn(addr, keep_conn=True, timeout=5)
    try:
        first = c.request(uri="/hello")
        time.sleep(0.05)  # parked now
        c.send_request(uri="/hello")
        c.sock.shutdown(socket.SHUT_WR)
        second = parse_response(c.read_response()[0])
        c.sock.settimeout(3)
        closed = c.sock.recv(65536) == b""
    except Exception as e:
        ok, detail = False, "round %d: %r" % (i, e)
        break
    finally:
        c.close()
    if first[0] != 200 or second[0] != 200 or not closed:
        ok, detail = False, "round %d: %r %r closed %r" % (i, first[0], second[0], closed)
        break
report("%s thread(s): a request and the half-close that follows it at once: answered, closed"
       % threads, ok, detail)
PY
    stop_corral
done
finish
