#!/usr/bin/env bash
# contrib/bench/chaos.sh: a random worker SIGKILLed every second under load through nginx
# (issue 12, "Load and fault figures": Chaos).
#
#   BUILD=/path/to/build CHAOS_SECONDS=300 contrib/bench/chaos.sh [get] [post] [post-uwsgi]
#
# For each run (all three when none is named): corral (demo.so, PROCESSES x THREADS) and nginx
# (1 worker, generated config) are started afresh; wrk -t1 -c CONNS drives nginx for
# CHAOS_SECONDS while, every KILL_EVERY seconds, the script reads `corralctl --json workers`,
# picks a random running worker, notes the requests in flight on it and
# SIGKILLs it; the requests in flight on it are its busy threads plus its connections holding
# bytes it has not read (ss -xp: requests nginx wrote, not yet taken). Runs:
#   get         GET /hello, nginx fastcgi_pass with fastcgi_keep_conn + upstream keepalive 32
#   post        POST /echo with a BODY-byte body, the same FastCGI path
#   post-uwsgi  the same POSTs over uwsgi_pass (a connection per request)
# A failure is what wrk counts: a non-2xx response or a socket error (a timeout: no response
# within 2 s). nginx also logs the requests that did not get a 2xx (with $msec; 499: wrk
# closed first); each of those is put on the kill before it, and on that kill's replacement
# when the replacement's "worker N started" line in corral's error log came before it. Prints per kill: the victim, its busy threads, the
# failures that followed; then a Markdown table per run with the goal next to each figure. The
# master's RSS is read at the start and at the end.
#
# Environment: BUILD, CHAOS_SECONDS (300), KILL_EVERY (1), CONNS (32), BODY (2048),
# PROCESSES (2), THREADS (2), EXTRA_ARGS, KEEP_DIR (keep each run's kills, failures, logs
# there); nginx and wrk installed.
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
CHAOS_SECONDS=${CHAOS_SECONDS:-300} KILL_EVERY=${KILL_EVERY:-1} BODY=${BODY:-2048}
PROCESSES=${PROCESSES:-2} THREADS=${THREADS:-2}
need_built "$corral" "$corralctl" "$bench" "$DEMO"
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    die "needs nginx and wrk (contrib/install-deps.sh --bench)"
fi
runs=("$@")
[ "${#runs[@]}" = 0 ] && runs=(get post post-uwsgi)
for r in "${runs[@]}"; do
    case $r in get | post | post-uwsgi) ;; *) die "unknown run $r (get, post, post-uwsgi)" ;; esac
done
bench_init
printf 'wrk.method = "POST"\nwrk.body = string.rep("x", %d)\n' "$BODY" >"$tmp/post.lua"
printf 'wrk.headers["Content-Type"] = "application/octet-stream"\n' >>"$tmp/post.lua"

# analyse KILLS FAILS CORRAL_LOG: per-kill lines on stderr, one summary line on stdout:
# kills in_flight_sum failed failed_after_replacement max_failed_per_kill kills_over_in_flight
# failed_before_the_first_kill. KILLS lines: epoch-ms pid busy-threads queued-connections.
analyse() {
    python3 - "$@" <<'PY'
import sys, datetime
kills = [(float(t) / 1000, int(p), int(b) + int(q), int(b), int(q)) for t, p, b, q in
         (l.split() for l in open(sys.argv[1]) if l.strip())]
fails = sorted(float(l.split()[0]) for l in open(sys.argv[2]) if l.strip())
started = []
for l in open(sys.argv[3]):
    if " started (pid " in l and "worker " in l:
        ts = l.split()[0].rstrip("Z")
        started.append(datetime.datetime.fromisoformat(ts).replace(
            tzinfo=datetime.timezone.utc).timestamp())
started.sort()
per = [[0, 0] for _ in kills]  # failures before, after the replacement started
before_first = 0
for f in fails:
    # nginx's $msec is its cached time, a few ms behind: 50 ms of slack
    i = max((j for j, k in enumerate(kills) if k[0] - 0.05 <= f), default=None)
    if i is None:
        before_first += 1
        continue
    repl = next((s for s in started if s > kills[i][0]), None)
    per[i][1 if repl is not None and f > repl else 0] += 1
for j, ((t, p, n, b, q), (x, y)) in enumerate(zip(kills, per)):
    print("    kill %3d: pid %d, in flight %d (%d busy threads + %d connections with unread"
          " requests), failed %d before its replacement ran, %d after"
          % (j + 1, p, n, b, q, x, y), file=sys.stderr)
busy = sum(k[2] for k in kills)
tot = [sum(x) for x in per]
print(len(kills), busy, len(fails), sum(y for _, y in per), max(tot, default=0),
      sum(1 for k, t in zip(kills, tot) if t > k[2]), before_first)
PY
}

# kill_one CTL KILLS: SIGKILLs a random running worker of the scoreboard (corralctl --json
# workers) and appends "epoch-ms pid busy-threads queued-connections" to KILLS. Forks little
# (corralctl, ss): on a loaded 2-core machine every fork counts. With no running worker (all
# in a respawn delay, or the control socket did not answer) it counts one in skipped.
kill_one() {
    local json pids=() busys=() re='"pid":([0-9]+),"state":"running"[^{]*"busy":([0-9]+)' j
    local victim queued t
    json=$("$corralctl" -s "$1" -t 2 --json workers 2>/dev/null)
    while [[ $json =~ $re ]]; do
        pids+=("${BASH_REMATCH[1]}") busys+=("${BASH_REMATCH[2]}")
        json=${json#*"${BASH_REMATCH[0]}"}
    done
    if [ "${#pids[@]}" = 0 ]; then # all in a respawn delay, say
        skipped=$((skipped + 1))
        return 0
    fi
    j=$((RANDOM % ${#pids[@]}))
    victim=${pids[j]}
    # its connections holding bytes it has not read: requests written to it, not yet taken
    queued=$(ss -xpn 2>/dev/null | awk -v p="pid=$victim," 'index($0, p) && $3 > 0' | wc -l)
    t=${EPOCHREALTIME/./}
    if ! kill -KILL "$victim" 2>/dev/null; then
        say "  worker $victim gone before its kill"
        return 0
    fi
    echo "$((t / 1000)) $victim ${busys[j]} $queued" >>"$2"
}

declare -A summary # run -> its table rows
for run in "${runs[@]}"; do
    kind=fastcgi
    [ "$run" = post-uwsgi ] && kind=uwsgi
    rm -rf "$tmp/nginx"
    ntargets=()
    corral_up "x-$run" "$kind" "$PROCESSES" "$THREADS" || exit 1
    master=$srv_pid
    ctl=$tmp/x-$run.ctl
    nginx_add "$run" "$tmp/x-$run.sock" "$kind"
    # only the failures, with the time they ended
    log="access_log $tmp/fail-$run.log failed if=\$failed;"
    sed -i "s|location / {|location / {\n            $log|" \
        "$tmp/nginx/sites.conf"
    { # defined before the server{} that uses them
        # shellcheck disable=SC2016 # nginx variables
        printf '    map $status $failed { ~^2 0; default 1; }\n'
        # shellcheck disable=SC2016
        printf '    log_format failed "$msec $status";\n'
        cat "$tmp/nginx/sites.conf"
    } >"$tmp/nginx/sites.new" && mv "$tmp/nginx/sites.new" "$tmp/nginx/sites.conf"
    nginx_start || exit 1
    nginx_pid=$srv_pid
    check_hello "${port[$run]}" "corral demo" || die "nginx -> corral does not answer"
    url="http://127.0.0.1:${port[$run]}/hello" wargs=()
    [ "$run" != get ] && url="http://127.0.0.1:${port[$run]}/echo" wargs=(-s "$tmp/post.lua")
    m_rss0=$(rss_kib "$master")
    say "chaos $run: ${CHAOS_SECONDS}s, a worker killed every ${KILL_EVERY}s, wrk -c$CONNS $url"
    wrk -t1 -c"$CONNS" -d"${CHAOS_SECONDS}s" "${wargs[@]}" "$url" >"$tmp/wrk-$run.out" 2>&1 &
    fg_pid=$!
    : >"$tmp/kills-$run"
    : >"$tmp/fail-$run.log"
    skipped=0
    t0=${EPOCHREALTIME/./} # µs; the kills keep to t0 + i * KILL_EVERY however long one takes
    for i in $(seq $((CHAOS_SECONDS / KILL_EVERY - 1))); do # bounded by the run's length
        wait_us=$((t0 + i * KILL_EVERY * 1000000 - ${EPOCHREALTIME/./}))
        [ "$wait_us" -gt 0 ] && sleep "$(printf '%d.%06d' $((wait_us / 1000000)) \
            $((wait_us % 1000000)))"
        alive "$fg_pid" || break
        kill_one "$ctl" "$tmp/kills-$run"
    done
    wait "$fg_pid"
    fg_pid=
    sleep 1.5 # the last replacement starts and nginx writes its log
    m_rss1=$(rss_kib "$master")
    out=$(cat "$tmp/wrk-$run.out")
    total=$(awk '/ requests in /{ print $1 }' <<<"$out")
    errs=$(awk '/Non-2xx/{ e += $NF } /Socket errors/{ gsub(/,/, ""); \
        e += $4 + $6 + $8 + $10 } END { print e + 0 }' <<<"$out")
    w_timeouts=$(awk '/Socket errors/{ print $NF + 0 }' <<<"$out")
    rps=$(awk '/^Requests\/sec:/{ printf "%.0f", $2 }' <<<"$out")
    read -r nk busy failed after maxk over early < <(analyse "$tmp/kills-$run" \
        "$tmp/fail-$run.log" "$tmp/x-$run.err")
    statuses=$(awk '{ print $2 }' "$tmp/fail-$run.log" | sort | uniq -c |
        awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $1, $2 }')
    goal_f="≤ in flight ($busy)"
    [ "$run" = get ] && goal_f="0"
    nginx_f="nginx logged ${failed}${statuses:+: $statuses}; wrk timeouts ${w_timeouts:-0}"
    summary[$run]=$(
        md_row "$run: requests (req/s)" "${total:-?} (${rps:-?})" "-"
        md_row "$run: kills done / skipped (no worker running)" "$nk / $skipped" "- / 0"
        md_row "$run: requests in flight on the victims (sum)" "$busy" "-"
        md_row "$run: failed, as wrk saw them ($nginx_f)" "$errs" "$goal_f"
        md_row "$run: kills followed by more failures than in flight (nginx log)" "$over of $nk" "0"
        md_row "$run: most failures after one kill (nginx log)" "$maxk" "-"
        md_row "$run: failed once the replacement ran (nginx log)" "$after" "0"
        md_row "$run: master RSS KiB start / end" "$m_rss0 / $m_rss1" "flat"
    )
    say "  $run: $total requests, $errs failed ($nginx_f), $nk kills ($skipped skipped)," \
        "$busy in flight, $after after the replacement ran, $early before the first kill"
    stop "$nginx_pid"
    stop "$master"
    if [ -n "${KEEP_DIR:-}" ]; then
        mkdir -p "$KEEP_DIR" && cp "$tmp/kills-$run" "$tmp/fail-$run.log" "$tmp/x-$run.err" \
            "$tmp/wrk-$run.out" "$tmp/nginx/error.log" "$KEEP_DIR/" &&
            mv "$KEEP_DIR/error.log" "$KEEP_DIR/nginx-$run.log"
    fi
done

echo
echo "Chaos: nginx (1 worker) -> corral $PROCESSES x $THREADS, wrk -t1 -c$CONNS," \
    "${CHAOS_SECONDS}s per run, a random worker SIGKILLed every ${KILL_EVERY}s; POST body" \
    "$BODY bytes; $(date -u +%F), $(nproc) CPUs${EXTRA_ARGS:+, corral $EXTRA_ARGS}"
echo
md_row figure value goal
md_row --- ---: ---
for run in "${runs[@]}"; do echo "${summary[$run]}"; done
