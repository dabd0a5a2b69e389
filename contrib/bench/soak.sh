#!/usr/bin/env bash
# contrib/bench/soak.sh: corral behind nginx at full load for a long time, no recycling
# (issue 12, "Load and fault figures": Soak).
#
#   BUILD=/path/to/build contrib/bench/soak.sh [SECONDS]      # default 3600 (the README's hour)
#
# corral (demo.so, FastCGI, PROCESSES x THREADS, no --max-requests) behind nginx (1 worker,
# fastcgi_keep_conn + upstream keepalive 32); wrk -t1 -c CONNS on /hello for SECONDS. Every
# SAMPLE_EVERY seconds the RSS and open fds of the master and of each worker are read. The
# baseline is the first reading after SOAK_WARMUP seconds (allocators and caches settle), the
# end the last one. Prints a Markdown table with the goal next to each figure, and the readings.
#
# Environment: BUILD, SAMPLE_EVERY (10), SOAK_WARMUP (10), CONNS (32), PROCESSES (2),
# THREADS (2), EXTRA_ARGS; nginx and wrk installed.
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
SOAK_SECONDS=${1:-3600} SAMPLE_EVERY=${SAMPLE_EVERY:-10} SOAK_WARMUP=${SOAK_WARMUP:-10}
PROCESSES=${PROCESSES:-2} THREADS=${THREADS:-2}
if ! [[ "$SOAK_SECONDS" =~ ^[0-9]+$ ]] || [ "$SOAK_SECONDS" -le "$SOAK_WARMUP" ]; then
    die "SECONDS: a whole number above SOAK_WARMUP ($SOAK_WARMUP)"
fi
need_built "$corral" "$corralctl" "$DEMO"
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    die "needs nginx and wrk (contrib/install-deps.sh --bench)"
fi
bench_init
corral_up soak fastcgi "$PROCESSES" "$THREADS" || exit 1
master=$srv_pid
nginx_add soak "$tmp/soak.sock" fastcgi
nginx_start || exit 1
check_hello "${port[soak]}" "corral demo" || die "nginx -> corral does not answer"
say "soak: ${SOAK_SECONDS}s, wrk -t1 -c$CONNS -> nginx -> corral $PROCESSES x $THREADS"
wrk -t1 -c"$CONNS" -d"${SOAK_SECONDS}s" "http://127.0.0.1:${port[soak]}/hello" \
    >"$tmp/wrk.out" 2>&1 &
fg_pid=$!
t0=${EPOCHREALTIME/./}
: >"$tmp/samples" # lines: second  master-rss master-fds  pid:rss:fds...
for i in $(seq 0 $((SOAK_SECONDS / SAMPLE_EVERY))); do # bounded by the run's length
    t=$((i * SAMPLE_EVERY))
    [ "$t" -lt "$SOAK_WARMUP" ] && [ "$((t + SAMPLE_EVERY))" -le "$SOAK_WARMUP" ] && continue
    [ "$t" -lt "$SOAK_WARMUP" ] && t=$SOAK_WARMUP
    [ "$t" -ge "$SOAK_SECONDS" ] && t=$((SOAK_SECONDS - 1))
    wait_us=$((t0 + t * 1000000 - ${EPOCHREALTIME/./}))
    [ "$wait_us" -gt 0 ] && sleep "$(printf '%d.%06d' $((wait_us / 1000000)) \
        $((wait_us % 1000000)))"
    alive "$fg_pid" || break
    line="$t $(rss_kib "$master") $(nfds "$master")"
    for w in $(workers_of "$master"); do line="$line $w:$(rss_kib "$w"):$(nfds "$w")"; done
    echo "$line" >>"$tmp/samples"
    [ "$t" -ge $((SOAK_SECONDS - 1)) ] && break
done
wait "$fg_pid"
fg_pid=
out=$(cat "$tmp/wrk.out")
total=$(awk '/ requests in /{ print $1 }' <<<"$out")
rps=$(awk '/^Requests\/sec:/{ printf "%.0f", $2 }' <<<"$out")
errs=$(awk '/Non-2xx/{ e += $NF } /Socket errors/{ gsub(/,/, ""); \
    e += $4 + $6 + $8 + $10 } END { print e + 0 }' <<<"$out")
first=$(head -1 "$tmp/samples") last=$(tail -1 "$tmp/samples")
# per worker PID present in both: RSS growth and fds then and now
read -r growth fds_w same <<<"$(awk -v a="$first" -v b="$last" 'BEGIN {
    n = split(a, x, " ")
    for (i = 4; i <= n; i++) { split(x[i], f, ":"); r[f[1]] = f[2]; d[f[1]] = f[3] }
    m = split(b, y, " "); g = -1; fd = ""; s = 0
    for (i = 4; i <= m; i++) { split(y[i], f, ":"); if (f[1] in r) { s++
        if (f[2] - r[f[1]] > g) g = f[2] - r[f[1]]; fd = fd (fd ? "," : "") d[f[1]] "->" f[3] } }
    print (g < 0 ? "-" : g), (fd ? fd : "-"), s }')"
read -r t1 m_rss1 m_fd1 _ <<<"$first"
read -r t2 m_rss2 m_fd2 _ <<<"$last"
echo
echo "Soak: wrk -t1 -c$CONNS -> nginx (1 worker, FastCGI keepalive) -> corral $PROCESSES x" \
    "$THREADS, no recycling, ${SOAK_SECONDS}s; readings at ${t1}s and ${t2}s;" \
    "$(date -u +%F), $(nproc) CPUs${EXTRA_ARGS:+, corral $EXTRA_ARGS}"
echo
md_row figure value goal
md_row --- ---: ---
md_row "requests (req/s)" "${total:-?} (${rps:-?})" "-"
md_row "errors (wrk: non-2xx + socket errors)" "$errs" "0"
md_row "largest worker RSS growth, KiB" "$growth" "< 1024"
md_row "workers alive all along" "$same of $PROCESSES" "all"
md_row "worker fds, first -> last" "$fds_w" "flat"
md_row "master RSS KiB / fds, first -> last" "$m_rss1 -> $m_rss2 / $m_fd1 -> $m_fd2" "flat"
echo
echo "Readings (second, master RSS KiB, master fds, worker PID:RSS KiB:fds...):"
sed 's/^/    /' "$tmp/samples"
