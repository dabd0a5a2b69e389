#!/usr/bin/env bash
# contrib/bench/fdlimit.sh: corral out of file descriptors (issue 12, "Load and fault figures":
# fd exhaustion).
#
#   BUILD=/path/to/build contrib/bench/fdlimit.sh
#
# corral (demo.so, FastCGI, PROCESSES x THREADS) runs with its open-files limit, soft and hard,
# at FD_LIMIT (ulimit -n; corral cannot raise it). peers.py opens CONNECTS connections, each
# with one keep-conn request for /hello, and holds them: the ones past the limit stay in the
# listen queue. For HOLD_SECONDS the workers' CPU time is read (a worker that spins on EMFILE
# burns a core), and the error log's lines of that time are counted (total, and the shortest
# gap between two). Then the peers leave and recovery is checked: a corral-bench run of
# SECONDS_PER_RUN on /hello with CONNS connections must see no error, and a new hold of
# FD_LIMIT / 2 connections must be answered in full. Prints a Markdown table with the goal
# next to each figure.
#
# Environment: BUILD, FD_LIMIT (256), CONNECTS (400), HOLD_SECONDS (10), PROCESSES (1: one
# worker surely runs out; with more, CONNECTS must exceed their sum), THREADS (2), CONNS (8),
# SECONDS_PER_RUN (3), EXTRA_ARGS.
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3} CONNS=${CONNS:-8}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
FD_LIMIT=${FD_LIMIT:-256} CONNECTS=${CONNECTS:-400} HOLD_SECONDS=${HOLD_SECONDS:-10}
PROCESSES=${PROCESSES:-1} THREADS=${THREADS:-2}
need_built "$bench" "$corral" "$corralctl" "$DEMO"
bench_init
# shellcheck disable=SC2034,SC2016 # read by corral_up; $0 and $@ are the inner shell's
corral_wrap=(bash -c 'ulimit -n "$0" && exec "$@"' "$FD_LIMIT")
corral_up f fastcgi "$PROCESSES" "$THREADS" || exit 1
master=$srv_pid
sock=$tmp/f.sock
say "fd limit: corral $PROCESSES x $THREADS with ulimit -n $FD_LIMIT, $CONNECTS connections"
start_client hold python3 "$peers" hold --connect "unix:$sock" --count "$CONNECTS" \
    --timeout 5 || exit 1 # what is not answered in 5 s waits in the listen queue
hold_pid=$cli_pid
ready=$(head -1 "$tmp/hold.out")
say "  held: $ready"
workers=$(workers_of "$master")
log0=$(wc -l <"$tmp/f.err")
# shellcheck disable=SC2086 # one PID per word
c0=$("$bench" --cpu-of $workers) t0=${EPOCHREALTIME/./}
sleep "$HOLD_SECONDS"
# shellcheck disable=SC2086
c1=$("$bench" --cpu-of $workers) t1=${EPOCHREALTIME/./}
tail -n +$((log0 + 1)) "$tmp/f.err" >"$tmp/hold.log"
cpu=$(awk -v a="$c0" -v b="$c1" -v t="$((t1 - t0))" 'BEGIN { printf "%.1f%%", (b - a) * 100 / t }')
lines=$(wc -l <"$tmp/hold.log")
gap=$(python3 -c 'import datetime, sys
ts = sorted(datetime.datetime.fromisoformat(l.split()[0].rstrip("Z")).timestamp()
            for l in open(sys.argv[1]) if l[:1].isdigit())
gaps = [b - a for a, b in zip(ts, ts[1:])]
print("%.2f s" % min(gaps) if gaps else "-")' "$tmp/hold.log")
end=$(end_client hold "$hold_pid")
say "  end: $end"
sleep 1
runfg "$tmp/after.json" "$bench" --proto fastcgi --keep-conn --connect "unix:$sock" \
    -c "$CONNS" -d "$SECONDS_PER_RUN" --warmup "$WARMUP" --uri /hello \
    --expect-body-prefix "Hello, World!" --json
after=$(cat "$tmp/after.json")
say "  after: $after"
again=$((FD_LIMIT / 2))
start_client again python3 "$peers" hold --connect "unix:$sock" --count "$again" \
    --timeout 10 --seconds 0 || exit 1
second=$(head -1 "$tmp/again.out")
say "  again: $second"
echo
echo "fd exhaustion: corral $PROCESSES x $THREADS, FastCGI, ulimit -n $FD_LIMIT, $CONNECTS" \
    "kept connections held ${HOLD_SECONDS}s; $(date -u +%F), $(nproc) CPUs${EXTRA_ARGS:+, \
corral $EXTRA_ARGS}"
echo
md_row figure value goal
md_row --- ---: ---
md_row "connections answered / in the listen queue" "$(jv "$ready" answered) / $(jv "$ready" \
    unanswered)" "-"
md_row "worker CPU while out of fds (share of one core)" "$cpu" "no spin (≈ 0)"
md_row "error-log lines while out of fds / shortest gap between two" "$lines / $gap" \
    "≤ 1 a second"
md_row "after: corral-bench errors (req/s)" "$(field errors "$after") ($(printf %.0f "$(field \
    rps "$after")"))" "0"
md_row "after: a new hold of $again answered" "$(jv "$second" answered) of $again" "all"
echo
echo "The error log's lines while out of fds, by kind (digits as #):"
sed -E 's/^[0-9T:.Z-]+ //; s/\[pid [0-9]+\] //; s/[0-9]+/#/g' "$tmp/hold.log" |
    sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
