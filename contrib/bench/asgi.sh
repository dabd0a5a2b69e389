#!/usr/bin/env bash
# contrib/bench/asgi.sh: corral --asgi against uvicorn (Debian's uvicorn, the same raw ASGI app,
# contrib/bench/apps/asgi_hello.py, the same number of processes) behind nginx, in one
# interleaved run: a hello view and an I/O-bound view that awaits asyncio.sleep(0.01).
#
#   contrib/install-deps.sh --bench      # uvicorn nginx-light wrk
#   BUILD=build ROUNDS=5 SECONDS_PER_RUN=5 contrib/bench/asgi.sh
#
# Targets, each with PROCS processes (corral: PROCS x 1 thread, each worker with its own event
# loop; uvicorn: --workers PROCS, its h11/httptools and asyncio loop), every one probed for 200
# "Hello, World!" before it counts:
#   wrk -t1 -c CONNS -> nginx (1 worker) proxy_pass, HTTP/1.1, upstream keepalive 32 ->
#       corral http:unix (--asgi)            / and /sleep
#       uvicorn --uds                        / and /sleep
#   wrk -> nginx fastcgi_pass keep-conn -> corral fastcgi:unix (--asgi)   / only
# Every target runs once per round (even rounds in reverse order); the table shows medians, with
# the server CPU µs per response (nginx's own CPU is not counted).
# Goal (issue 14): corral >= 1.5 x uvicorn's req/s for hello at the same number of processes.
# Then SLEEPERS (1000) connections at once on /sleep to corral 1 x 1 directly (wrk -c SLEEPERS),
# on corral's event loop and on asyncio's (--asgi-loop asyncio), ROUNDS interleaved rounds:
# the p99 shows what one worker's loop does with that many requests in flight.
#
# Environment: BUILD, ROUNDS (5), SECONDS_PER_RUN (5), CONNS (32), WARMUP (1), PROCS (2),
# UVICORN (uvicorn), SLEEPERS (1000; 0 skips), RESULTS=FILE keeps the raw runs. Time: about
# ROUNDS x (WARMUP + SECONDS_PER_RUN) x 7. Everything lives in a temp dir; every process started
# here is stopped by PID on exit, error or Ctrl-C. Unix sockets and 127.0.0.1 only.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
PROCS=${PROCS:-2}
UVICORN=${UVICORN:-uvicorn}
SLEEPERS=${SLEEPERS:-1000}
export PYTHONDONTWRITEBYTECODE=1
hello="Hello, World!"

need_built "$bench" "$corral"
[[ "$PROCS" =~ ^[1-9][0-9]*$ ]] || die "PROCS: '$PROCS' is not a number"
for t in "$UVICORN" wrk nginx curl; do
    command -v "$t" >/dev/null || die "$t not found: contrib/install-deps.sh --bench"
done

bench_init
results=$tmp/results
: >"$results"

# ---- servers ----
corral_args=("${corral_root[@]}" --asgi asgi_hello:app --pythonpath "$here/apps"
    --processes "$PROCS" --threads 1)
start corral-asgi "$tmp/ch.sock" "$tmp/ch.pid" INT "$corral" "${corral_args[@]}" \
    --listen "http:unix:$tmp/ch.sock" --listen "fastcgi:unix:$tmp/cf.sock" --chmod 0666 \
    --pidfile "$tmp/ch.pid" || die "corral (asgi) did not start"
corral_pid=$srv_pid
start uvicorn "$tmp/uv.sock" /nonexistent TERM "$UVICORN" --workers "$PROCS" \
    --uds "$tmp/uv.sock" --app-dir "$here/apps" --no-access-log --log-level warning \
    --lifespan off asgi_hello:app || die "uvicorn did not start"
uvicorn_pid=$srv_pid

# ---- nginx: FastCGI keep-conn to corral, proxy_pass keepalive to both ----
nginx_add "fcgi" "$tmp/cf.sock" fastcgi
proxy_site() { # NAME SOCKET
    free_port || die "no free port"
    port[$1]=$free
    ntargets+=("$1")
    cat >>"$tmp/nginx/sites.conf" <<EOF2
    upstream $1-http { server unix:$2; keepalive 32; }
    server {
        listen 127.0.0.1:$free;
        location / {
            proxy_pass http://$1-http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
EOF2
}
proxy_site "corral" "$tmp/ch.sock"
proxy_site "uvicorn" "$tmp/uv.sock"
nginx_up "$hello" || die "nginx did not start"

declare -A url root
add() { # LABEL URL ROOT
    if [ "$(curl -s -m 5 -o "$tmp/probe.body" -w '%{http_code}' "$2")" = 200 ] &&
        [ "$(cat "$tmp/probe.body")" = "$hello" ]; then
        url[$1]=$2 root[$1]=$3
        targets+=("$1")
    else
        say "$bench_name: $1 does not answer 200 $hello (no figure)"
    fi
}
targets=()
for t in "${ntargets[@]}"; do
    case $t in
    fcgi) add "nginx fastcgi keep-conn -> corral --asgi ${PROCS}x1: hello" \
        "http://127.0.0.1:${port[$t]}/" "$corral_pid" ;;
    corral)
        add "nginx proxy_pass -> corral --asgi ${PROCS}x1: hello" "http://127.0.0.1:${port[$t]}/" \
            "$corral_pid"
        add "nginx proxy_pass -> corral --asgi ${PROCS}x1: sleep 10 ms" \
            "http://127.0.0.1:${port[$t]}/sleep" "$corral_pid" ;;
    uvicorn)
        add "nginx proxy_pass -> uvicorn ${PROCS}w: hello" "http://127.0.0.1:${port[$t]}/" \
            "$uvicorn_pid"
        add "nginx proxy_pass -> uvicorn ${PROCS}w: sleep 10 ms" \
            "http://127.0.0.1:${port[$t]}/sleep" "$uvicorn_pid" ;;
    esac
done

say "$ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), wrk -t1 -c$CONNS, ${#targets[@]} targets"
for round in $(seq "$ROUNDS"); do
    in_order "$round" "${targets[@]}"
    for t in "${order[@]}"; do
        wrk_run "$round" "$t" "${url[$t]}" "${root[$t]}"
    done
done

echo
echo "corral --asgi vs uvicorn behind nginx, raw ASGI app, $PROCS processes, medians of $ROUNDS runs:"
echo
md_row target "req/s" "p50 ms" "p99 ms" "server CPU µs/resp" errors
md_row --- ---: ---: ---: ---: ---:
for t in "${targets[@]}"; do
    med_cols "$t"
    md_row "$t" "${cols[@]}" "$(errsum "$t")"
done
rps() { med "$1" 2; }
echo
md_row goal ratio target
md_row --- ---: ---:
md_row "hello: corral --asgi / uvicorn" \
    "$(ratio "$(rps "nginx proxy_pass -> corral --asgi ${PROCS}x1: hello")" \
        "$(rps "nginx proxy_pass -> uvicorn ${PROCS}w: hello")")" ">= 1.5"
md_row "sleep 10 ms: corral --asgi / uvicorn" \
    "$(ratio "$(rps "nginx proxy_pass -> corral --asgi ${PROCS}x1: sleep 10 ms")" \
        "$(rps "nginx proxy_pass -> uvicorn ${PROCS}w: sleep 10 ms")")" "-"
[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"
check_errors
status=$?

# ---- many requests in flight on one worker with one thread ----
# corral's event loop (--asgi-loop corral, the default) and asyncio's own (--asgi-loop asyncio)
# side by side, ROUNDS interleaved rounds (the order turned each round).
[ "$SLEEPERS" -gt 0 ] || exit $status
free_port || die "no free port"
ps1=$free
start corral-1x1 "tcp:$ps1" "$tmp/c1.pid" INT "$corral" "${corral_root[@]}" \
    --asgi asgi_hello:app --pythonpath "$here/apps" --processes 1 --threads 1 \
    --max-conns $((SLEEPERS + 100)) --listen "http:tcp:127.0.0.1:$ps1" --pidfile "$tmp/c1.pid" ||
    die "corral (1 x 1) did not start"
loop_pid=$srv_pid
free_port || die "no free port"
ps2=$free
start corral-1x1-asyncio "tcp:$ps2" "$tmp/c2.pid" INT "$corral" "${corral_root[@]}" \
    --asgi asgi_hello:app --pythonpath "$here/apps" --processes 1 --threads 1 --asgi-loop asyncio \
    --max-conns $((SLEEPERS + 100)) --listen "http:tcp:127.0.0.1:$ps2" --pidfile "$tmp/c2.pid" ||
    die "corral (1 x 1, asyncio's loop) did not start"
stock_pid=$srv_pid
ulimit -n $((SLEEPERS * 2 + 200)) 2>/dev/null
: >"$results"
# thread_ticks: "NAME TICKS" for each thread of the worker of corral's loop (the asgi-loop thread
# is named; the others are the worker's own, shown as "worker": they also end the responses)
thread_ticks() {
    local w t
    w=$(pgrep -P "$loop_pid" | head -1)
    for t in /proc/"$w"/task/*; do
        awk -v n="$(cat "$t/comm")" '{ print (n ~ /^asgi-/ ? n : "worker"), $14 + $15 }' "$t/stat"
    done 2>/dev/null | awk '{ s[$1] += $2 } END { for (n in s) print n, s[n] }' | sort
}
t="direct -> corral --asgi 1x1, $SLEEPERS connections: sleep 10 ms"
t2="direct -> corral --asgi 1x1 --asgi-loop asyncio, the same"
ticks=""
for r in $(seq "$ROUNDS"); do
    order=(loop stock)
    [ $((r % 2)) = 0 ] && order=(stock loop)
    for which in "${order[@]}"; do
        if [ "$which" = loop ]; then
            ticks0=$(thread_ticks)
            CONNS=$SLEEPERS wrk_run "$r" "$t" "http://127.0.0.1:$ps1/sleep" "$loop_pid"
            ticks1=$(thread_ticks)
            # Each thread's ticks over the measured runs (warmup included).
            ticks=$(join <(echo "$ticks0") <(echo "$ticks1") | awk -v prev="$ticks" '
                BEGIN { n = split(prev, p, ";"); for (i = 1; i <= n; i++) { split(p[i], kv, "=");
                        if (kv[1] != "") d[kv[1]] = kv[2] } }
                { d[$1] += $3 - $2 } END { for (k in d) printf "%s=%d;", k, d[k] }')
        else
            CONNS=$SLEEPERS wrk_run "$r" "$t2" "http://127.0.0.1:$ps2/sleep" "$stock_pid"
        fi
    done
done
echo
md_row target "req/s" "p50 ms" "p99 ms" "server CPU µs/resp" errors
md_row --- ---: ---: ---: ---: ---:
med_cols "$t2"
md_row "$t2" "${cols[@]}" "$(errsum "$t2")"
med_cols "$t"
md_row "$t" "${cols[@]}" "$(errsum "$t")"
# The server CPU per response split by thread (the loop's is what bounds one worker).
echo
echo "corral's loop: server CPU µs/resp by thread (its share of the ticks, warmup included):"
echo "$ticks" | tr ';' '\n' | awk -F= -v cpu="${cols[3]}" '
    NF == 2 { d[$1] = $2; all += $2 }
    END { for (n in d) if (all > 0 && cpu != "-") printf "  %s: %.1f\n", n, cpu * d[n] / all }'

check_errors || status=1
exit $status
