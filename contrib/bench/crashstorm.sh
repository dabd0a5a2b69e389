#!/usr/bin/env bash
# contrib/bench/crashstorm.sh: a route that kills its worker, hit CRASH_RATE times a second
# beside normal traffic (issue 12, "Load and fault figures": Crash storm).
#
#   BUILD=/path/to/build STORM_SECONDS=30 contrib/bench/crashstorm.sh
#
# corral (demo.so, PROTO, PROCESSES x THREADS) on a unix socket. A quiet run first:
# corral-bench, CONNS connections on /hello for SECONDS_PER_RUN. Then the same corral-bench run
# for STORM_SECONDS (no warmup: every request counts) while peers.py sends CRASH_RATE requests a
# second for /crash (demo.so: SIGSEGV in the worker), each on its own connection. corral-bench
# counts every failed request (a connection reset by the dying worker, a timeout) and waits
# 0.1 s before that slot's next one, so the success share is requests / (requests + errors);
# requests waiting in the listen queue while no worker runs are not failures until corral-bench
# gives up on them (10 s), so the storm's req/s as a share of the quiet run's is printed too.
# The worker deaths and respawns come from corral's error log. Prints a Markdown table with the
# goal next to each figure.
#
# Environment: BUILD, STORM_SECONDS (30), CRASH_RATE (10), PROTO (uwsgi; fastcgi sends
# keep-conn), PROCESSES (2), THREADS (2), CONNS (32), SECONDS_PER_RUN (5), EXTRA_ARGS, DEMO
# (the handler, default BUILD's tests/apps/demo.so; 2e331b9's has no /crash: give it a newer
# one).
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
STORM_SECONDS=${STORM_SECONDS:-30} CRASH_RATE=${CRASH_RATE:-10} PROTO=${PROTO:-uwsgi}
PROCESSES=${PROCESSES:-2} THREADS=${THREADS:-2}
need_built "$bench" "$corral" "$corralctl" "$DEMO"
bench_init
corral_up k "$PROTO" "$PROCESSES" "$THREADS" || exit 1
sock=$tmp/k.sock
kc=()
[ "$PROTO" = fastcgi ] && kc=(--keep-conn)
normal() { # SECONDS WARMUP
    "$bench" --proto "$PROTO" "${kc[@]}" --connect "unix:$sock" -c "$CONNS" -d "$1" \
        --warmup "$2" --uri /hello --expect-body-prefix "Hello, World!" --json
}
say "crash storm: $PROCESSES x $THREADS $PROTO, /crash ${CRASH_RATE}/s for ${STORM_SECONDS}s"
runfg "$tmp/quiet.json" normal "$SECONDS_PER_RUN" "$WARMUP"
quiet=$(cat "$tmp/quiet.json")
say "  quiet: $quiet"
log0=$(wc -l <"$tmp/k.err")
start_client crash python3 "$peers" crash --connect "unix:$sock" --rate "$CRASH_RATE" \
    --proto "$PROTO" --seconds $((STORM_SECONDS + 15)) || exit 1
crash_pid=$cli_pid
runfg "$tmp/storm.json" normal "$STORM_SECONDS" 0
storm=$(cat "$tmp/storm.json")
say "  storm: $storm"
crash=$(end_client crash "$crash_pid")
say "  crashes: $crash"
sleep 1 # the last respawn
tail -n +$((log0 + 1)) "$tmp/k.err" >"$tmp/storm.log"
deaths=$(grep -c 'killed by signal 11' "$tmp/storm.log")
delayed=$(grep -ci 'respawn.* in [0-9.]* *s\|delay\|back-off\|backoff' "$tmp/storm.log")
read -r _ _ live <<<"$(busy_now "$tmp/k.ctl")"
running=$(tr ',' '\n' <<<"$live" | grep -c :)
ok=$(field requests "$storm") bad=$(field errors "$storm")
share=$(awk -v o="$ok" -v b="$bad" 'BEGIN { if (o + b == 0) print "n/a"; \
    else printf "%.1f%%", o * 100 / (o + b) }')
echo
echo "Crash storm: $PROCESSES x $THREADS, $PROTO, corral-bench -c $CONNS on /hello," \
    "/crash ${CRASH_RATE}/s, ${STORM_SECONDS}s; $(date -u +%F), $(nproc) CPUs${EXTRA_ARGS:+, \
corral $EXTRA_ARGS}"
echo
md_row figure value goal
md_row --- ---: ---
md_row "normal requests that succeeded" "$share ($ok ok, $bad failed: $(jv "$storm" \
    error_kinds | tr -d "{}'" | sed 's/: /=/g'))" "≥ 90%"
md_row "normal req/s: quiet / in the storm (share)" "$(printf %.0f "$(field rps "$quiet")") / \
$(printf %.0f "$(field rps "$storm")") ($(awk -v a="$(field rps "$storm")" -v b="$(field rps \
    "$quiet")" 'BEGIN { if (b > 0) printf "%.1f%%", a * 100 / b; else print "n/a" }'))" "-"
md_row "normal p99 ms: quiet / in the storm" "$(field p99_ms "$quiet") / $(field p99_ms \
    "$storm")" "-"
md_row "/crash sent / answered / cut" "$(jv "$crash" sent) / $(jv "$crash" answered) / $(jv \
    "$crash" cut)" "-"
md_row "worker deaths (signal 11) logged" "$deaths" "-"
md_row "respawns delayed (log lines)" "$delayed" "0"
md_row "workers running at the end" "$running of $PROCESSES" "all"
if [ "$deaths" = 0 ]; then
    echo
    echo "No worker died: $DEMO has no /crash route (2e331b9's demo.so has none);" \
        "run with DEMO=/path/to/a/newer/build/tests/apps/demo.so"
fi
