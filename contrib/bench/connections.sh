#!/usr/bin/env bash
# contrib/bench/connections.sh: many kept FastCGI connections on one pool (issue 12, "Load and
# fault figures": Connections).
#
#   BUILD=/path/to/build HOLD=10000 SECONDS_PER_RUN=10 contrib/bench/connections.sh
#
# corral (demo.so, PROCESSES x THREADS, --max-conns MAX_CONNS) on a unix socket. First a quiet
# run: corral-bench, CONNS (32) FastCGI keep-conn connections for SECONDS_PER_RUN on /hello.
# Then peers.py opens HOLD connections one after another, each with one keep-conn request it
# waits for, and holds them idle; the connect rate is connections per second until all were
# answered. With them held, the same corral-bench run again. RSS and sockets of each worker
# are read while they are held. Prints a Markdown table with the goal next to each figure.
#
# Environment: BUILD, HOLD (10000), PROCESSES (2), THREADS (2), MAX_CONNS (HOLD + 1000, per
# worker, so that it never limits), HOLD_TIMEOUT (60: seconds the connecting may take; what is
# not answered by then counts as not held), CONNS (32), SECONDS_PER_RUN (10), WARMUP (1),
# EXTRA_ARGS. The client's own ceiling: the same HOLD against corral-floor (when built).
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
HOLD=${HOLD:-10000} PROCESSES=${PROCESSES:-2} THREADS=${THREADS:-2}
MAX_CONNS=${MAX_CONNS:-$((HOLD + 1000))} HOLD_TIMEOUT=${HOLD_TIMEOUT:-60}
need_built "$bench" "$corral" "$DEMO"
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt $((HOLD + 100)) ] ||
    die "the hard open-files limit ($(ulimit -Hn)) is below HOLD + 100"
bench_init
ceiling=-
if [ -x "$floor" ]; then # what peers.py itself can do on this machine
    start floor "$tmp/floor.sock" /nonexistent TERM "$floor" --proto fastcgi \
        --listen "$tmp/floor.sock" --processes 2 || exit 1
    start_client floorhold python3 "$peers" hold --connect "unix:$tmp/floor.sock" \
        --count "$HOLD" --timeout "$HOLD_TIMEOUT" --seconds 0 || exit 1
    ceiling=$(jv "$(head -1 "$tmp/floorhold.out")" answer_rate)
    end_client floorhold "$cli_pid" >/dev/null
    stop "$srv_pid"
fi
corral_up c fastcgi "$PROCESSES" "$THREADS" --max-conns "$MAX_CONNS" || exit 1
master=$srv_pid
sock=$tmp/c.sock
say "connections: $PROCESSES x $THREADS, $HOLD held, $CONNS others for ${SECONDS_PER_RUN}s"

# one_run NAME: corral-bench keep-conn on /hello; its JSON line in $tmp/NAME.json
one_run() {
    runfg "$tmp/$1.json" "$bench" --proto fastcgi --keep-conn --connect "unix:$sock" \
        -c "$CONNS" -d "$SECONDS_PER_RUN" --warmup "$WARMUP" --uri /hello \
        --expect-body-prefix "Hello, World!" --json
    say "  $1: $(cat "$tmp/$1.json")"
}
one_run quiet
declare -A rss0 # worker PID -> its RSS (KiB) before the held connections
for w in $(workers_of "$master"); do rss0[$w]=$(rss_kib "$w"); done

start_client hold python3 "$peers" hold --connect "unix:$sock" --count "$HOLD" \
    --timeout "$HOLD_TIMEOUT" || exit 1
hold_pid=$cli_pid
ready=$(head -1 "$tmp/hold.out")
say "  held: $ready"
one_run held
per_worker="" rss_idle="" rss_per="" grown=0
for w in $(workers_of "$master"); do
    r=$(rss_kib "$w") r0=${rss0[$w]:-0} # a worker that was not there before: all growth
    per_worker="$per_worker $(($(nsocks "$w") - 1))"
    rss_idle="$rss_idle $(fmt %.1f "$(awk -v r="$r0" 'BEGIN { print r / 1024 }')")"
    rss_per="$rss_per $(fmt %.1f "$(awk -v r="$r" 'BEGIN { print r / 1024 }')")"
    grown=$((grown + r - r0))
done
end=$(end_client hold "$hold_pid")
say "  end: $end"

q_rps=$(field rps "$(cat "$tmp/quiet.json")") q_p99=$(field p99_ms "$(cat "$tmp/quiet.json")")
h_rps=$(field rps "$(cat "$tmp/held.json")") h_p99=$(field p99_ms "$(cat "$tmp/held.json")")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; \
    else printf "%+.1f%%", (a - b) * 100 / b }'; }
echo
echo "Connections: $HOLD kept FastCGI connections on $PROCESSES x $THREADS (max-conns" \
    "$MAX_CONNS), corral-bench -c $CONNS keep-conn ${SECONDS_PER_RUN}s; $(date -u +%F)," \
    "$(nproc) CPUs${EXTRA_ARGS:+, corral $EXTRA_ARGS}"
echo
md_row figure value goal
md_row --- ---: ---
md_row "connections held (answered / asked)" "$(jv "$ready" answered) / $HOLD" "all"
md_row "connect rate while held, per s (connect + first response)" \
    "$(jv "$ready" answer_rate) (client ceiling: $ceiling)" "≥ 5000"
md_row "closed by the server while held" "$(jv "$end" closed_by_server)" "0"
md_row "req/s of $CONNS others: quiet / beside the held" "$(printf %.0f "$q_rps") / $(printf %.0f \
    "$h_rps") ($(pct "$h_rps" "$q_rps"))" "within 10%"
md_row "p99 ms of $CONNS others: quiet / beside the held" "$q_p99 / $h_p99 ($(pct "$h_p99" \
    "$q_p99"))" "within 10%"
md_row "errors of the others: quiet / held" "$(field errors "$(cat "$tmp/quiet.json")") / $(field \
    errors "$(cat "$tmp/held.json")")" "0"
md_row "held connections per worker" "${per_worker# }" "balanced"
md_row "RSS per worker MiB: idle / holding" "${rss_idle# } / ${rss_per# }" "-"
md_row "worker RSS growth per held connection, KiB" "$(awk -v g="$grown" -v h="$HOLD" \
    'BEGIN { printf "%.2f", g / h }')" "-"
