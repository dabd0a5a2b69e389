#!/usr/bin/env bash
# contrib/bench/wsgi.sh: corral against uWSGI on the same hello-world WSGI app
# (contrib/bench/apps/hello.py: 200, text/plain, b"Hello, World!"), next to the floor
# (corral-floor, a canned-response C server: the CPU no server can go below), in one run.
#
#   contrib/install-deps.sh --bench      # uwsgi-core uwsgi-plugin-python3 nginx-light wrk
#   BUILD=build ROUNDS=5 SECONDS_PER_RUN=5 contrib/bench/wsgi.sh
#
# 1. Direct, corral-bench over unix sockets, CONNS connections: for each CONFIG (processes x
#    threads) and each protocol (uwsgi, SCGI, FastCGI), corral and uWSGI serve the app with the
#    same processes and threads, one server instance per protocol; corral also FastCGI keep-conn
#    (uWSGI closes every FastCGI connection after the response: checked here, shown "n/a").
#    The floor runs with the same number of processes. Every target runs once per round (even
#    rounds in reverse order); the tables show medians. Before any figure counts, each target
#    must answer a short probe with 200 and "Hello, World!", and every run checks every response
#    the same way (errors are counted and shown; any error makes the exit status 1).
#    Python overhead = the server's CPU µs per response (user+system of all its processes over
#    the measured window) minus the floor's on the same protocol; the goal of issue 3 is
#    corral's overhead <= 0.5 x uWSGI's.
# 2. Through nginx (what users deploy): wrk -t1 -c CONNS -> nginx (1 worker) -> corral with the
#    recommended setup (FastCGI, fastcgi_keep_conn on, upstream keepalive 32, as in
#    contrib/nginx/corral.conf) against -> uWSGI with uwsgi_pass (its best: nginx cannot keep
#    uwsgi connections, and uWSGI cannot keep FastCGI ones), same CONFIGS; nginx -> corral with
#    uwsgi_pass too, like for like. Goal: corral >= 1.3 x uWSGI's req/s, p99 no worse.
# 3. Idle memory, after the runs: PSS (/proc/PID/smaps_rollup: shared pages split between the
#    processes that map them) and RSS (VmRSS), summed over the worker processes of each
#    server's uwsgi-protocol instance; then the master's RSS, and the PSS of master + workers
#    (uWSGI's master holds an initialized interpreter that its workers share; corral's master
#    runs no Python).
#
# uWSGI settings (Debian's uwsgi-core + python3 plugin), chosen to match corral's defaults:
#   --plugin python3 --wsgi-file APP   the same file, the same interpreter (Debian's Python 3)
#   --master                           corral has a master too (and it is how uWSGI is deployed)
#   --processes N; --threads M --enable-threads only when M > 1 (a 1-thread uWSGI is its fastest)
#   --lazy-apps                        each worker imports the app after the fork, as corral does
#                                      (corral has no --preload yet); UWSGI_LAZY=0 drops it
#   --disable-logging                  no request log: corral logs no access by default
#   --listen min(1024, somaxconn)      corral's --backlog default (uWSGI's is 100)
#   --die-on-term                      SIGTERM stops rather than reloads (we stop it with SIGINT)
#   --chmod-socket=660                 as corral's --chmod default
# Left at uWSGI's defaults: no --thunder-lock, --buffer-size 4096, no harakiri/max-requests.
# UWSGI_OPTS adds options (word-split), e.g. UWSGI_OPTS=--thunder-lock.
#
# Environment: BUILD (default: the repo root; holds corral, corral-bench,
# contrib/bench/corral-floor), ROUNDS (5), SECONDS_PER_RUN (5), CONNS (32), WARMUP (1),
# CONFIGS ("2x1 2x4": PROCESSESxTHREADS), UWSGI (uwsgi), UWSGI_OPTS (""), UWSGI_LAZY (1),
# SKIP_NGINX=1 skips part 2, RESULTS=FILE keeps the raw runs (label, req/s, p50, p99, CPU µs,
# errors). Time: about ROUNDS x (WARMUP + SECONDS_PER_RUN) x (4 + 7 x configs + 3 x configs).
# Everything lives in a temp dir; every process started here is stopped by PID on exit, error
# or Ctrl-C. Unix sockets and 127.0.0.1 only.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh" # BUILD ROUNDS SECONDS_PER_RUN CONNS WARMUP SKIP_NGINX; bench floor corral
CONFIGS=${CONFIGS:-2x1 2x4}
UWSGI=${UWSGI:-uwsgi}
UWSGI_OPTS=${UWSGI_OPTS:-}
UWSGI_LAZY=${UWSGI_LAZY:-1}
export PYTHONDONTWRITEBYTECODE=1 # nothing written next to the app
app=$here/apps/hello.py
hello="Hello, World!"

need_built "$bench" "$floor" "$corral"
command -v "$UWSGI" >/dev/null ||
    die "$UWSGI not found: contrib/install-deps.sh --bench (uwsgi-core uwsgi-plugin-python3)"
read -r -a configs <<<"$CONFIGS"
for c in "${configs[@]}"; do
    [[ "$c" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "CONFIGS: '$c' is not PROCESSESxTHREADS"
done

bench_init
results=$tmp/results # lines: label<TAB>rps<TAB>p50<TAB>p99<TAB>cpu<TAB>errors
: >"$results"

backlog=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 128)
[ "$backlog" -gt 1024 ] && backlog=1024

# ---- servers: one instance per server, config and protocol ----
protos=(uwsgi scgi fastcgi)
declare -A sock pid # by instance: floor-2-uwsgi, corral-2x4-fastcgi, uWSGI-2x1-scgi
for c in "${configs[@]}"; do
    np=${c%x*} nt=${c#*x}
    for p in "${protos[@]}"; do
        i=floor-$np-$p
        if [ -z "${sock[$i]:-}" ]; then
            start "$i" "$tmp/$i.sock" /nonexistent TERM "$floor" --proto "$p" \
                --listen "$tmp/$i.sock" --processes "$np" || die "the floor did not start"
            sock[$i]=$tmp/$i.sock pid[$i]=$srv_pid
        fi
        i=corral-$c-$p
        # SIGINT: corral's fast stop (SIGTERM drains, up to --graceful-timeout)
        start "$i" "$tmp/$i.sock" "$tmp/$i.pid" INT "$corral" "${corral_root[@]}" --wsgi-file "$app" \
            --listen "$p:unix:$tmp/$i.sock" --processes "$np" --threads "$nt" \
            --pidfile "$tmp/$i.pid" || die "corral did not start"
        sock[$i]=$tmp/$i.sock pid[$i]=$srv_pid
        i=uWSGI-$c-$p
        uw=("$UWSGI" --plugin python3 --master --processes "$np" --wsgi-file "$app"
            --disable-logging --listen "$backlog" --die-on-term --chmod-socket=660
            "--$p-socket" "$tmp/$i.sock" --pidfile "$tmp/$i.pid")
        [ "$nt" -gt 1 ] && uw+=(--threads "$nt" --enable-threads)
        [ "$UWSGI_LAZY" = 1 ] && uw+=(--lazy-apps)
        # shellcheck disable=SC2206 # UWSGI_OPTS is a list of options
        uw+=($UWSGI_OPTS)
        start "$i" "$tmp/$i.sock" "$tmp/$i.pid" INT "${uw[@]}" || die "uWSGI did not start"
        sock[$i]=$tmp/$i.sock pid[$i]=$srv_pid
    done
done

# ---- targets, each probed before it counts ----
# kinds: uwsgi scgi fastcgi fastcgi-kc; a target is "SERVER CONFIG KIND" (floor: "floor Np").
targets=()
declare -A t_inst t_proto t_extra
declare -A na # label -> why it has no figure
kinds=(uwsgi scgi fastcgi fastcgi-kc)
kind_name() { if [ "$1" = fastcgi-kc ]; then echo "fastcgi keep-conn"; else echo "$1"; fi; }
add_target() { # LABEL INSTANCE KIND
    local p=${3%-kc} extra=() why
    [ "$3" = fastcgi-kc ] && extra=(--keep-conn)
    if why=$(probe "$p" "${sock[$2]}" "$hello" "${extra[@]}"); then
        targets+=("$1")
        t_inst[$1]=$2 t_proto[$1]=$p t_extra[$1]=${extra[*]}
    else
        na[$1]=${why:-no answer}
        [[ "$1" == "uWSGI "*keep-conn ]] ||
            say "$bench_name: $1 does not answer 200 $hello: $why (no figure)"
    fi
}
for k in "${kinds[@]}"; do
    done_np=" "
    for c in "${configs[@]}"; do
        np=${c%x*} p=${k%-kc}
        if [[ "$done_np" != *" $np "* ]]; then
            add_target "floor ${np}p $(kind_name "$k")" "floor-$np-$p" "$k"
            done_np="$done_np$np "
        fi
        add_target "corral $c $(kind_name "$k")" "corral-$c-$p" "$k"
        add_target "uWSGI $c $(kind_name "$k")" "uWSGI-$c-$p" "$k"
    done
done

# ---- direct: corral-bench, interleaved ----
say "direct: $ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), $CONNS connections," \
    "${#targets[@]} targets"
for round in $(seq "$ROUNDS"); do
    in_order "$round" "${targets[@]}"
    for t in "${order[@]}"; do
        # shellcheck disable=SC2086 # t_extra is empty or --keep-conn
        bench_run "$round" "$t" --proto "${t_proto[$t]}" ${t_extra[$t]} \
            --connect "unix:${sock[${t_inst[$t]}]}" --expect-status 200 \
            --expect-body-prefix "$hello" --server-pid "${pid[${t_inst[$t]}]}"
    done
done

# ---- through nginx: wrk -> nginx -> corral (FastCGI keepalive, uwsgi) or uWSGI (uwsgi) ----
run_nginx=0
want_nginx && run_nginx=1
nlabel() { # SERVER CONFIG KIND -> the label of an nginx path
    if [ "$3" = fastcgi ]; then
        echo "nginx->$1 $2 fastcgi keepalive"
    else
        echo "nginx->$1 $2 uwsgi"
    fi
}
if [ "$run_nginx" = 1 ]; then
    for c in "${configs[@]}"; do
        for i in "corral-$c-fastcgi" "uWSGI-$c-uwsgi" "corral-$c-uwsgi"; do
            nginx_add "$i" "${sock[$i]}" "${i##*-}"
        done
    done
    nginx_up "$hello" || exit 1
    for round in $(seq "$ROUNDS"); do
        for i in "${ntargets[@]}"; do # i: SERVER-CONFIG-KIND
            wrk_run "$round" "$(nlabel "${i%%-*}" "$(cut -d- -f2 <<<"$i")" "${i##*-}")" \
                "http://127.0.0.1:${port[$i]}/" "${pid[$i]}"
        done
    done
fi

[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"

# ---- idle memory of the workers ----
sleep 1
kb() { awk -v k="^$1:" '$0 ~ k { print $2 }' "$2" 2>/dev/null; } # FIELD FILE: kB or empty
# mem_of MASTER: "WORKERS PSS_KB RSS_KB MASTER_RSS_KB TOTAL_PSS_KB", the first three summed over
# MASTER's children, the last over MASTER and its children
mem_of() {
    local w nw=0 pss=0 rss=0 v mpss
    for w in $(ps -o pid= --ppid "$1"); do
        nw=$((nw + 1))
        v=$(kb Pss "/proc/$w/smaps_rollup")
        pss=$((pss + ${v:-0}))
        v=$(kb VmRSS "/proc/$w/status")
        rss=$((rss + ${v:-0}))
    done
    mpss=$(kb Pss "/proc/$1/smaps_rollup") v=$(kb VmRSS "/proc/$1/status")
    echo "$nw $pss $rss ${v:-0} $((pss + ${mpss:-0}))"
}
declare -A mem
for c in "${configs[@]}"; do
    for srv in corral uWSGI; do mem[$srv-$c]=$(mem_of "${pid[$srv-$c-uwsgi]}"); done
done

# ---- report ----
# row LABEL [FLOOR-LABEL]: one line of medians; with a floor, the Python overhead column
row() {
    local l=$1 over=-
    if ! has_result "$l"; then
        printf '%-30s %10s\n' "$l" "n/a (${na[$l]:-no result})"
        return
    fi
    [ -n "${2:-}" ] && over=$(overhead "$l" "$2")
    med_cols "$l"
    printf '%-30s %10s %9s %9s %12s %11s %7s\n' "$l" "${cols[@]}" "$(fmt %.2f "$over")" \
        "$(errsum "$l")"
}
overhead() { # LABEL FLOOR-LABEL: median CPU µs/resp minus the floor's
    awk -v a="$(med "$1" 5)" -v b="$(med "$2" 5)" 'BEGIN { if (a == "-" || b == "-") print "-";
        else printf "%.3f", a - b }'
}
goal() { # VALUE OP LIMIT -> "met" / "not met" / ""
    awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { if (v == "n/a") exit
        ok = (op == "<=") ? (v + 0 <= g) : (v + 0 >= g); print ok ? "met" : "NOT met" }'
}

echo
echo "wsgi.sh: corral vs uWSGI $("$UWSGI" --version 2>/dev/null), hello-world WSGI app;" \
    "$(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)"
echo "$ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), $CONNS connections, unix" \
    "sockets; medians, errors summed over the rounds"
echo "python us = server CPU us/resp minus the floor's on the same protocol"
for c in "${configs[@]}"; do
    np=${c%x*} nt=${c#*x}
    echo
    echo "== $np process$([ "$np" = 1 ] || echo es) x $nt thread$([ "$nt" = 1 ] || echo s)" \
        "(floor: the same processes) =="
    printf '%-30s %10s %9s %9s %12s %11s %7s\n' target req/s "p50 ms" "p99 ms" "cpu us/resp" \
        "python us" errors
    for k in "${kinds[@]}"; do
        kn=$(kind_name "$k")
        row "floor ${np}p $kn"
        row "corral $c $kn" "floor ${np}p $kn"
        row "uWSGI $c $kn" "floor ${np}p $kn"
    done
done

echo
echo "Python overhead, corral / uWSGI (goal <= 0.5)"
printf '%-8s' config
for k in uwsgi scgi fastcgi; do printf ' %16s' "$k"; done
echo
for c in "${configs[@]}"; do
    np=${c%x*}
    printf '%-8s' "$c"
    for k in uwsgi scgi fastcgi; do
        r=$(ratio "$(overhead "corral $c $k" "floor ${np}p $k")" \
            "$(overhead "uWSGI $c $k" "floor ${np}p $k")")
        printf ' %16s' "$r $(goal "$r" "<=" 0.5)"
    done
    echo
done

if [ "$run_nginx" = 1 ]; then
    echo
    echo "through nginx: wrk -t1 -c$CONNS -> nginx (1 worker) -> server; cpu = the server's"
    printf '%-38s %10s %9s %9s %12s %7s\n' path req/s "p50 ms" "p99 ms" "cpu us/resp" errors
    for c in "${configs[@]}"; do
        for sk in corral:fastcgi uWSGI:uwsgi corral:uwsgi; do
            l=$(nlabel "${sk%:*}" "$c" "${sk#*:}")
            if ! has_result "$l"; then
                printf '%-38s %10s\n' "$l" "n/a (${na[$l]:-no result})"
                continue
            fi
            med_cols "$l"
            printf '%-38s %10s %9s %9s %12s %7s\n' "$l" "${cols[@]}" "$(errsum "$l")"
        done
    done
    echo
    echo "nginx->corral fastcgi keepalive / nginx->uWSGI uwsgi (goal: req/s >= 1.3, p99 <= 1)"
    for c in "${configs[@]}"; do
        a=$(nlabel corral "$c" fastcgi) b=$(nlabel uWSGI "$c" uwsgi)
        r=$(ratio "$(med "$a" 2)" "$(med "$b" 2)") q=$(ratio "$(med "$a" 4)" "$(med "$b" 4)")
        printf '  %-6s req/s %5s %-8s p99 %5s %s\n' "$c" "$r" "$(goal "$r" ">=" 1.3)" "$q" \
            "$(goal "$q" "<=" 1)"
    done
fi

echo
echo "idle memory after the runs (the uwsgi-protocol instances), MiB: workers' PSS (smaps_rollup)"
echo "and RSS (VmRSS) summed over the workers; the master's RSS; PSS of master + workers"
echo "goal: corral's workers no higher than uWSGI's"
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
printf '%-8s %-7s %8s %12s %12s %11s %10s\n' config server workers "workers PSS" \
    "workers RSS" "master RSS" "total PSS"
for c in "${configs[@]}"; do
    for srv in corral uWSGI; do
        read -r nw pss rss mrss tpss <<<"${mem[$srv-$c]}"
        printf '%-8s %-7s %8s %12s %12s %11s %10s\n' "$c" "$srv" "$nw" "$(mib "$pss")" \
            "$(mib "$rss")" "$(mib "$mrss")" "$(mib "$tpss")"
    done
    read -r _ cp cr _ ct <<<"${mem[corral-$c]}"
    read -r _ up ur _ ut <<<"${mem[uWSGI-$c]}"
    printf '%-8s corral/uWSGI: workers PSS %s, workers RSS %s, total PSS %s\n' "$c" \
        "$(ratio "$cp" "$up")" "$(ratio "$cr" "$ur")" "$(ratio "$ct" "$ut")"
done

check_errors || exit 1
