#!/usr/bin/env bash
# contrib/bench/run.sh: compare corral's native hello handler with the floor (corral-floor,
# a canned-response server) on uwsgi, SCGI, FastCGI and FastCGI keep-conn, then through nginx.
#
#   BUILD=/path/to/build ROUNDS=5 SECONDS_PER_RUN=5 contrib/bench/run.sh
#
# Direct runs: corral-bench against each target, interleaved (each round runs every target once),
# ROUNDS rounds of SECONDS_PER_RUN seconds after WARMUP seconds. Through nginx: wrk -t1 -c CONNS
# -> nginx (generated config, 127.0.0.1, worker_processes 1, access_log off) -> corral via
# uwsgi_pass and via fastcgi_pass with fastcgi_keep_conn + upstream keepalive 32, and the floor
# the same two ways. Prints the medians (requests/s, p50, p99, server CPU µs per response, errors
# summed over the rounds) and the ratios that matter.
#
# Environment: BUILD (default: the repo root; holds corral, corral-bench,
# contrib/bench/corral-floor and tests/apps/demo.so), ROUNDS (5), SECONDS_PER_RUN (5), CONNS
# (32), WARMUP (1), SKIP_NGINX=1 to skip the nginx part, RESULTS=FILE to keep the raw runs.
# A missing corral is skipped with a message (the floor still runs); nginx and wrk must be
# installed by the caller (apt-get install -y nginx-light wrk). Everything lives in a temp dir;
# every process started here is stopped by PID on exit. Nothing outside the temp dir is touched.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh" # BUILD ROUNDS SECONDS_PER_RUN CONNS WARMUP SKIP_NGINX; bench floor corral
demo=$BUILD/tests/apps/demo.so
need_built "$bench" "$floor"
bench_init

# ---- servers ----
declare -A sock pid # by server name: floor-uwsgi, corral-fastcgi, ...
protos=(uwsgi scgi fastcgi)
for p in "${protos[@]}"; do
    s=$tmp/floor-$p.sock
    start "floor-$p" "$s" /nonexistent TERM "$floor" --proto "$p" --listen "$s" --processes 2 ||
        die "the floor did not start"
    sock[floor-$p]=$s pid[floor-$p]=$srv_pid
done

have_corral=0
if [ ! -x "$corral" ] || [ ! -f "$demo" ]; then
    say "run.sh: $corral or $demo missing: skipping the corral targets (floor only)"
else
    have_corral=1
    for p in "${protos[@]}"; do
        s=$tmp/corral-$p.sock
        # SIGINT: corral's fast stop (SIGTERM drains, up to --graceful-timeout)
        if ! start "corral-$p" "$s" "$tmp/corral-$p.pid" INT "$corral" "${corral_root[@]}" --listen "$p:unix:$s" \
            --handler "$demo:hello" --processes 2 --threads 1 --pidfile "$tmp/corral-$p.pid"; then
            say "run.sh: skipping the corral targets"
            have_corral=0
            break
        fi
        sock[corral-$p]=$s pid[corral-$p]=$srv_pid
    done
fi
servers=(floor)
[ "$have_corral" = 1 ] && servers+=(corral)

results=$tmp/results # lines: target<TAB>rps<TAB>p50<TAB>p99<TAB>cpu<TAB>errors
: >"$results"

# ---- direct: corral-bench, interleaved ----
kinds=(uwsgi scgi fastcgi fastcgi-kc)
say "direct: $ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), $CONNS connections"
for round in $(seq "$ROUNDS"); do
    for k in "${kinds[@]}"; do
        for srv in "${servers[@]}"; do
            p=${k%-kc} target="$srv $p" extra=()
            [ "$k" = fastcgi-kc ] && target="$srv fastcgi keep-conn" extra=(--keep-conn)
            bench_run "$round" "$target" --proto "$p" "${extra[@]}" \
                --connect "unix:${sock[$srv-$p]}" --expect-status 200 \
                --expect-body-prefix "Hello, World!" --server-pid "${pid[$srv-$p]}"
        done
    done
done

# ---- through nginx: wrk -> nginx -> backend ----
run_nginx=0
want_nginx && run_nginx=1
if [ "$run_nginx" = 1 ]; then
    for srv in "${servers[@]}"; do
        for kind in uwsgi fastcgi; do nginx_add "$srv-$kind" "${sock[$srv-$kind]}" "$kind"; done
    done
    nginx_up "Hello, World!" || exit 1
    for round in $(seq "$ROUNDS"); do
        for t in "${ntargets[@]}"; do
            srv=${t%%-*} kind=${t#*-}
            label="nginx->$srv uwsgi"
            [ "$kind" = fastcgi ] && label="nginx->$srv fastcgi keepalive"
            wrk_run "$round" "$label" "http://127.0.0.1:${port[$t]}/" \
                "${pid[$srv-$kind]}"
        done
    done
fi

[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"

# ---- report ----
echo
echo "corral benchmark: $(nproc) CPUs, $(uname -r), $ROUNDS rounds x ${SECONDS_PER_RUN}s," \
    "$CONNS connections; medians (errors: sum over the rounds)"
printf '%-34s %10s %9s %9s %12s %7s\n' target req/s "p50 ms" "p99 ms" "cpu us/resp" errors
targets=()
for k in uwsgi scgi fastcgi "fastcgi keep-conn"; do
    for srv in floor corral; do targets+=("$srv $k"); done
done
for srv in corral floor; do
    targets+=("nginx->$srv uwsgi" "nginx->$srv fastcgi keepalive")
done
for t in "${targets[@]}"; do
    if ! has_result "$t"; then
        [[ "$t" == *corral* && "$have_corral" != 1 ]] && continue
        [[ "$t" == nginx* && "$run_nginx" != 1 ]] && continue
        printf '%-34s %10s\n' "$t" "(no result)"
        continue
    fi
    med_cols "$t"
    printf '%-34s %10s %9s %9s %12s %7s\n' "$t" "${cols[@]}" "$(errsum "$t")"
done

echo
echo "ratios (of medians)"
if [ "$have_corral" = 1 ]; then
    for k in uwsgi scgi fastcgi "fastcgi keep-conn"; do
        printf '  corral/floor CPU per response, %-18s %s\n' "$k:" \
            "$(ratio "$(med "corral $k" 5)" "$(med "floor $k" 5)")"
    done
fi
for srv in "${servers[@]}"; do
    printf '  %-6s fastcgi keep-conn rps / uwsgi rps:     %s\n' "$srv" \
        "$(ratio "$(med "$srv fastcgi keep-conn" 2)" "$(med "$srv uwsgi" 2)")"
done
if [ "$run_nginx" = 1 ]; then
    [ "$have_corral" = 1 ] &&
        printf '  nginx->corral fastcgi keepalive rps / nginx->floor uwsgi rps: %s\n' \
            "$(ratio "$(med "nginx->corral fastcgi keepalive" 2)" "$(med "nginx->floor uwsgi" 2)")"
    printf '  nginx->floor fastcgi keepalive rps / nginx->floor uwsgi rps:  %s\n' \
        "$(ratio "$(med "nginx->floor fastcgi keepalive" 2)" "$(med "nginx->floor uwsgi" 2)")"
fi

check_errors || exit 1
