#!/usr/bin/env bash
# contrib/bench/accept.sh: how workers share the listeners, measured the way
# users deploy: wrk -> nginx (fastcgi_keep_conn + upstream keepalive 32) ->
# corral 2 processes x 2 threads, for each CORRAL_ACCEPT_MODE:
#   balanced   EPOLLEXCLUSIVE, and a worker ahead of another worker that
#              accepts and has a free thread by 2 connections plus an eighth
#              of that one's count stops accepting; it is woken as soon as
#              the other passes it (src/worker/worker_slots.c; the default)
#   exclusive  EPOLLEXCLUSIVE alone
#   shared     every worker's epoll wakes for every connection
# Prints requests/s and how many connections each worker held, per run, and
# the median requests/s per mode. ROUNDS (5), SECONDS_PER_RUN (4), BUILD.
# corral and nginx are started afresh for every run (so nginx's kept
# connections are new) and stopped by PID, also on error or Ctrl-C.
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh" # BUILD ROUNDS; corral
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    die "needs nginx and wrk (apt-get install nginx-light wrk)"
fi

bench_init
nginx_add corral "$tmp/f.sock" fastcgi

declare -A rps_of # mode -> the req/s of its runs
for round in $(seq "$ROUNDS"); do
    for mode in balanced exclusive shared; do
        rm -f "$tmp/f.sock"
        CORRAL_ACCEPT_MODE=$mode start "corral-$mode" "$tmp/f.sock" /nonexistent INT \
            "$corral" "${corral_root[@]}" --listen "fastcgi:unix:$tmp/f.sock" \
            --handler "$BUILD/tests/apps/demo.so:hello" --processes 2 --threads 2 --chmod 0666 \
            --error-log "$tmp/corral.log" || exit 1
        corral_pid=$srv_pid
        nginx_start || exit 1
        nginx_pid=$srv_pid
        wrk -t1 -c64 -d"$SECONDS_PER_RUN" "http://127.0.0.1:${port[corral]}/hello" \
            >"$tmp/wrk.out" 2>&1 &
        fg_pid=$!
        sleep $((SECONDS_PER_RUN / 2))
        held=""
        for w in $(pgrep -P "$corral_pid"); do
            # sockets minus the listener: connections from nginx
            s=$(find "/proc/$w/fd" -lname 'socket:*' 2>/dev/null | wc -l)
            held="$held $((s - 1))"
        done
        wait "$fg_pid"
        fg_pid=
        rps=$(awk '/Requests\/sec/ { print $2 }' "$tmp/wrk.out")
        printf 'round %d %-9s %9s req/s  connections per worker:%s\n' "$round" "$mode" "$rps" \
            "$held"
        rps_of[$mode]="${rps_of[$mode]:-} $rps"
        stop "$nginx_pid"
        stop "$corral_pid"
    done
done
echo
for mode in balanced exclusive shared; do
    printf 'median %-9s %9s req/s\n' "$mode" \
        "$(tr ' ' '\n' <<<"${rps_of[$mode]}" | grep . | median)"
done
