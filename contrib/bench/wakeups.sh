#!/usr/bin/env bash
# contrib/bench/wakeups.sh: context switches per response of corral's worker processes (what
# contention on a shared machine distorts little): a hello-world WSGI app (apps/hello.py) or
# the native hello, CONNS connections of corral-bench for SECONDS_PER_RUN seconds, the sum of
# voluntary and nonvoluntary context switches (/proc/PID/status) of every worker process over
# the run, divided by the responses.
#
#   BUILD=build CONFIGS="2x1 2x4" PROTOS="uwsgi fastcgi-keep" contrib/bench/wakeups.sh
#   BUILDS="/work/bmain3 build" ROUNDS=3 PERF=1 contrib/bench/wakeups.sh   # A/B, interleaved
#
# Environment: BUILD, CONFIGS (PROCESSESxTHREADS, "2x1 2x2 2x4"), PROTOS (uwsgi scgi fastcgi
# fastcgi-keep; "uwsgi fastcgi-keep"), CONNS (32), SECONDS_PER_RUN (5), APP (wsgi|native),
# BODY=N posts N bytes to the native handler's /echo (APP=native),
# PERF=1 adds system calls, futex, accept4, epoll_wait, epoll_ctl and read calls per response
# (perf stat on the worker processes; the counts include the window's idle start and end, a few
# hundred calls), BUILDS (several builds: each config and protocol runs on each in turn, ROUNDS
# (1) times; the first column names the build). The CPU column: user + system time of the
# worker processes over the run (/proc/PID/stat, clock ticks) per response, in microseconds.
# Every response of a protocol that is not kept costs one accept4 that succeeds: the rest of
# accept4/resp are calls that found the queue empty (EAGAIN), a peer or thread faster.
set -u -o pipefail
BUILD=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)}
CONFIGS=${CONFIGS:-2x1 2x2 2x4}
PROTOS=${PROTOS:-uwsgi fastcgi-keep}
CONNS=${CONNS:-32}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
APP=${APP:-wsgi}
PERF=${PERF:-}
BODY=${BODY:-0}
BUILDS=${BUILDS:-$BUILD}
ROUNDS=${ROUNDS:-1}
tck=$(getconf CLK_TCK)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d) || exit 1
srv=
trap '[ -n "$srv" ] && kill -INT "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
root=()
[ "$(id -u)" = 0 ] && root=(--allow-root)
ctx_sum() { # KIND PIDs: KIND (voluntary, nonvoluntary) switches of every thread of each
    local k=$1 p t n=0
    shift
    for p in "$@"; do
        for t in /proc/"$p"/task/*/status; do
            n=$((n + $(awk -v k="$k" '$1 == k "_ctxt_switches:" {s += $2} END {print s + 0}' \
                "$t" 2>/dev/null || echo 0)))
        done
    done
    echo "$n"
}
cpu_sum() { # PIDs: user + system clock ticks of each process (all its threads)
    local p n=0
    for p in "$@"; do
        n=$((n + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
    done
    echo "$n"
}
printf '%-14s %-6s %-13s %10s %12s %12s %12s' build config proto req/s vol/resp nonvol/resp \
    cpu_us/resp
[ -n "$PERF" ] && printf ' %9s %9s %9s %9s %9s %9s' sys/resp futex accept4 epwait epctl read
echo
for c in $CONFIGS; do
    np=${c%x*} nt=${c#*x}
    # Each build in turn, ROUNDS times: A/B interleaved.
    for pk in $PROTOS; do for _round in $(seq "$ROUNDS"); do for BUILD in $BUILDS; do
        p=${pk%-keep} keep=()
        [ "$pk" != "$p" ] && keep=(--keep-conn)
        sock=$tmp/s.sock
        if [ "$APP" = native ]; then appargs=(--handler "$BUILD/tests/apps/demo.so:hello"); else appargs=(--wsgi-file "$here/apps/hello.py"); fi
        "$BUILD/corral" "${root[@]}" "${appargs[@]}" --listen "$p:unix:$sock" --processes "$np" \
            --threads "$nt" >"$tmp/log" 2>&1 &
        srv=$!
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
        sleep 0.5
        workers=$(pgrep -P "$srv" | tr '\n' ' ')
        # shellcheck disable=SC2086
        a=$(ctx_sum voluntary $workers) an=$(ctx_sum nonvoluntary $workers)
        # shellcheck disable=SC2086
        ca=$(cpu_sum $workers)
        perf_pid=
        if [ -n "$PERF" ]; then
            perf stat -x, -o "$tmp/perf" -e raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_accept4 \
                -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait \
                -e syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_read \
                -p "$(echo "$workers" | tr ' ' ,)" 2>/dev/null &
            perf_pid=$!
            sleep 0.3
        fi
        req=()
        [ "$BODY" -gt 0 ] && req=(--method POST --body-size "$BODY" --uri /echo)
        out=$("$BUILD/corral-bench" --proto "$p" "${keep[@]}" --connect "unix:$sock" -c "$CONNS" \
            -d "$SECONDS_PER_RUN" --warmup 0 "${req[@]}" --json 2>/dev/null)
        if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid"; fi
        # shellcheck disable=SC2086
        b=$(ctx_sum voluntary $workers) bn=$(ctx_sum nonvoluntary $workers)
        # shellcheck disable=SC2086
        cb=$(cpu_sum $workers)
        kill -INT "$srv"; wait "$srv" 2>/dev/null; srv=
        n=$(printf '%s' "$out" | grep -o '"requests": *[0-9]*' | grep -o '[0-9]*$')
        rps=$(printf '%s' "$out" | grep -o '"rps": *[0-9.]*' | grep -o '[0-9.]*$')
        if [ -z "$n" ] || [ "$n" = 0 ]; then
            echo "$(basename "$BUILD") $c $pk: no responses: $out"
            continue
        fi
        printf '%-14s %-6s %-13s %10s %12.3f %12.3f %12.2f' "$(basename "$BUILD")" "$c" "$pk" "$rps" \
            "$(echo "($b - $a) / $n" | bc -l)" "$(echo "($bn - $an) / $n" | bc -l)" \
            "$(echo "($cb - $ca) * 1000000 / $tck / $n" | bc -l)"
        if [ -n "$PERF" ]; then
            sc=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$tmp/perf")
            fx=$(awk -F, '/sys_enter_futex/ {print $1}' "$tmp/perf")
            ac=$(awk -F, '/sys_enter_accept4/ {print $1}' "$tmp/perf")
            ew=$(awk -F, '/sys_enter_epoll_(p)?wait/ {s += $1} END {print s + 0}' "$tmp/perf")
            ec=$(awk -F, '/sys_enter_epoll_ctl/ {print $1}' "$tmp/perf")
            rd=$(awk -F, '/sys_enter_read/ {print $1}' "$tmp/perf")
            printf ' %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f' "$(echo "${sc:-0} / $n" | bc -l)" \
                "$(echo "${fx:-0} / $n" | bc -l)" "$(echo "${ac:-0} / $n" | bc -l)" \
                "$(echo "${ew:-0} / $n" | bc -l)" "$(echo "${ec:-0} / $n" | bc -l)" \
                "$(echo "${rd:-0} / $n" | bc -l)"
        fi
        echo
    done; done; done
done
