#!/usr/bin/env bash
# contrib/bench/slowpeers.sh: slow and stuck peers beside normal traffic (issue 12, "Load and
# fault figures": Slow peers).
#
#   BUILD=/path/to/build SLOW_SECONDS=30 contrib/bench/slowpeers.sh
#
# corral (demo.so, FastCGI, PROCESSES x THREADS, --io-timeout IO_TIMEOUT, --max-conns
# MAX_CONNS). A quiet run first: corral-bench, CONNS keep-conn connections on /hello for
# SECONDS_PER_RUN. Then peers.py opens TRICKLE connections that send their request head 1 byte
# a second, NOREAD that ask for /large?size=8M and never read, SLOWBODY that POST to /echo a
# body 1 byte a second; once they are all open, the same corral-bench run for SLOW_SECONDS
# beside them, while `corralctl --json workers` is read every second (busy threads and the
# longest-running one). Then the peers report how many of theirs the server closed, and after
# how long; the error log's lines of the slow window are summed up by kind. Prints a Markdown
# table with the goal next to each figure.
#
# Environment: BUILD, TRICKLE (2000), NOREAD (500), SLOWBODY (500), SLOW_SECONDS (30),
# IO_TIMEOUT (10: the deadline the figures are held to; pass a newer build's own deadline
# options in EXTRA_ARGS), PROCESSES (2), THREADS (2), MAX_CONNS (4096 per worker), CONNS (32),
# SECONDS_PER_RUN (10), WARMUP (1).
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
TRICKLE=${TRICKLE:-2000} NOREAD=${NOREAD:-500} SLOWBODY=${SLOWBODY:-500}
SLOW_SECONDS=${SLOW_SECONDS:-30} IO_TIMEOUT=${IO_TIMEOUT:-10}
PROCESSES=${PROCESSES:-2} THREADS=${THREADS:-2} MAX_CONNS=${MAX_CONNS:-4096}
need_built "$bench" "$corral" "$corralctl" "$DEMO"
bench_init
corral_up s fastcgi "$PROCESSES" "$THREADS" --max-conns "$MAX_CONNS" \
    --io-timeout "$IO_TIMEOUT" || exit 1
sock=$tmp/s.sock
say "slow peers: $TRICKLE trickling heads, $NOREAD not reading, $SLOWBODY slow bodies;" \
    "$PROCESSES x $THREADS, io-timeout ${IO_TIMEOUT}s, ${SLOW_SECONDS}s beside them"

normal() { # SECONDS: corral-bench keep-conn on /hello, a JSON line
    "$bench" --proto fastcgi --keep-conn --connect "unix:$sock" -c "$CONNS" -d "$1" \
        --warmup "$WARMUP" --uri /hello --expect-body-prefix "Hello, World!" --json
}
runfg "$tmp/quiet.json" normal "$SECONDS_PER_RUN"
quiet=$(cat "$tmp/quiet.json")
say "  quiet: $quiet"

start_client slow python3 "$peers" slow --connect "unix:$sock" --trickle "$TRICKLE" \
    --noread "$NOREAD" --slowbody "$SLOWBODY" --timeout 120 \
    --seconds $((SLOW_SECONDS + WARMUP + 15)) || exit 1
slow_pid=$cli_pid
say "  peers: $(head -1 "$tmp/slow.out")"
log0=$(wc -l <"$tmp/s.err")
normal "$SLOW_SECONDS" >"$tmp/loaded.json" 2>"$tmp/loaded.err" &
fg_pid=$!
longest=0 busy_end=- samples=0
for _ in $(seq $((SLOW_SECONDS + WARMUP + 15))); do # bounded: corral-bench ends by then
    alive "$fg_pid" || break
    read -r busy ms _ <<<"$(busy_now "$tmp/s.ctl")"
    [ "$ms" != - ] && [ "$ms" -gt "$longest" ] && longest=$ms
    busy_end=$busy samples=$((samples + 1))
    sleep 1
done
wait "$fg_pid"
fg_pid=
loaded=$(cat "$tmp/loaded.json")
say "  beside them: $loaded"
sleep 1 # the error log of the window's last second
tail -n +$((log0 + 1)) "$tmp/s.err" >"$tmp/slow-window.log" # before the peers leave
end=$(end_client slow "$slow_pid")
say "  peers: $end"

q_p99=$(field p99_ms "$quiet") l_p99=$(field p99_ms "$loaded")
kind() { # KIND: closed / opened, median seconds to close
    printf '%s / %s closed (median %s s); %s still open' "$(jv "$end" "$1.closed_by_server")" \
        "$(jv "$end" "$1.opened")" "$(jv "$end" "$1.median_s_to_close")" \
        "$(jv "$end" "$1.still_open")"
}
echo
echo "Slow peers: $PROCESSES x $THREADS, FastCGI, io-timeout ${IO_TIMEOUT}s, corral-bench -c" \
    "$CONNS keep-conn, quiet ${SECONDS_PER_RUN}s then ${SLOW_SECONDS}s beside the peers;" \
    "$(date -u +%F), $(nproc) CPUs${EXTRA_ARGS:+, corral $EXTRA_ARGS}"
echo
md_row figure value goal
md_row --- ---: ---
md_row "normal req/s: quiet / beside the peers" "$(printf %.0f "$(field rps "$quiet")") / $(printf \
    %.0f "$(field rps "$loaded")")" "-"
md_row "normal p99 ms: quiet / beside the peers" "$q_p99 / $l_p99 ($(ratio "$l_p99" \
    "$q_p99")×)" "≤ 2×"
md_row "normal errors: quiet / beside the peers" "$(field errors "$quiet") / $(field errors \
    "$loaded")" "0"
md_row "longest request on a thread (sampled each s, $samples samples)" \
    "$(awk -v m="$longest" 'BEGIN { printf "%.1f s", m / 1000 }')" "≤ ${IO_TIMEOUT} s deadline"
md_row "busy threads at the end of the window" "$busy_end of $((PROCESSES * THREADS))" "-"
md_row "trickling heads ($TRICKLE)" "$(kind trickle)" "closed at the deadline"
md_row "not reading ($NOREAD)" "$(kind noread)" "closed at the deadline"
md_row "1 byte/s bodies ($SLOWBODY)" "$(kind slowbody)" "closed at the deadline"
md_row "error-log lines in the window (before the peers leave)" \
    "$(wc -l <"$tmp/slow-window.log")" "say what and why"
echo
echo "The error log's lines in the window, by kind (digits as #):"
sed -E 's/^[0-9T:.Z-]+ //; s/\[pid [0-9]+\] //; s/[0-9]+/#/g' "$tmp/slow-window.log" |
    sort | uniq -c | sort -rn | head -8 | sed 's/^/    /'
