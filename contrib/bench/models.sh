#!/usr/bin/env bash
# contrib/bench/models.sh: the concurrency-models table of issue 3 (section 6). corral serves two
# WSGI apps (contrib/bench/apps/models.py) under five process/thread models, and the script
# prints requests/s and p99 for each, writes them to a data file and draws a PNG chart.
#
#   contrib/install-deps.sh --bench      # gnuplot-nox
#   BUILD=build ROUNDS=5 SECONDS_PER_RUN=5 contrib/bench/models.sh
#
# Apps: /cpu, about 2 ms of pure-Python work per request (the GIL is held all along), and /io,
# time.sleep(0.01) standing in for a database call (the GIL is free while it waits).
# Models (processes x threads): linear 1x1, threaded 1x8, prefork 2x1, prefork 8x1, hybrid 2x4,
# and, when corral embeds Python 3.12+ (BUILD configured --with-python=python3.12 or 3.13), own-GIL
# 1x2 and 2x2: --own-gil, each thread runs the app in its own interpreter with its own GIL; then
# asgi 1x1 and 2x1: the same two apps as one ASGI app (apps/models_asgi.py, --asgi: /io awaits
# asyncio.sleep(0.01), /cpu runs the same loop), each worker's event loop holding many requests.
# Load: corral-bench straight to corral over a unix socket (PROTO, uwsgi by default), CONNS
# connections (32: more than any model has threads, so requests queue as they do behind a busy
# front end), every response checked (200, body "cpu ..." or "io ..."). Every (model, app) runs
# once per round, even rounds in reverse order; the table and the chart show medians. All the
# servers run for the whole script (idle ones cost no CPU). The "io ideal" column is what the
# model could do if sleeping were all: processes x threads x 100 req/s. RSS and PSS: the sum over
# the master and its workers (/proc/PID/smaps_rollup) after the last round, every thread's
# interpreter loaded; PSS splits the pages processes share, so it is what a model really costs.
#
# Environment: BUILD (default: the repo root; holds corral and corral-bench), ROUNDS (5),
# SECONDS_PER_RUN (5), CONNS (32), WARMUP (1), PROTO (uwsgi; or scgi, fastcgi),
# MODELS ("linear:1x1 threaded:1x8 prefork:2x1 prefork:8x1 hybrid:2x4", then "own-gil:1x2:own-gil
# own-gil:2x2:own-gil" when corral takes --own-gil, then "asgi:1x1:asgi asgi:2x1:asgi" when it
# takes --asgi; NAME:PxT[:own-gil|:asgi][@DIR]: @DIR runs that model with the corral built in DIR
# instead of BUILD's, so two builds (before and after a change) are measured in one interleaved
# run: "own-gil:1x2:own-gil old-own-gil:1x2:own-gil@/b"),
# MODELS_CPU_LOOPS (64000: the work of /cpu, see apps/models.py), OUT (the PNG; default
# contrib/bench/models.png), DATA (the data file; default OUT with .dat for .png),
# RESULTS=FILE keeps the raw runs. Time: about ROUNDS x (WARMUP + SECONDS_PER_RUN) x 10.
# Everything else lives in a temp dir; every process started here is stopped by PID on exit,
# error or Ctrl-C. Unix sockets only.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh" # BUILD ROUNDS SECONDS_PER_RUN CONNS WARMUP; bench corral
PROTO=${PROTO:-uwsgi}
default_models="linear:1x1 threaded:1x8 prefork:2x1 prefork:8x1 hybrid:2x4"
MODELS_CPU_LOOPS=${MODELS_CPU_LOOPS:-64000}
OUT=${OUT:-$here/models.png}
DATA=${DATA:-${OUT%.png}.dat}
export PYTHONDONTWRITEBYTECODE=1 # nothing written next to the app
app=$here/apps/models.py
asgi_app=models_asgi:app # in $here/apps
need_built "$bench" "$corral"
command -v gnuplot >/dev/null || die "gnuplot not found: contrib/install-deps.sh --bench"
case $PROTO in
uwsgi | scgi | fastcgi) ;;
*) die "PROTO: uwsgi, scgi or fastcgi, not '$PROTO'" ;;
esac
# The own-GIL rows need a corral built with Python 3.12+ (it refuses own_gil otherwise).
if "$corral" "${corral_root[@]}" --own-gil --wsgi-file "$app" --listen "uwsgi:unix:/tmp/x.sock" \
    --test-config >/dev/null 2>&1; then
    default_models="$default_models own-gil:1x2:own-gil own-gil:2x2:own-gil"
elif [ -z "${MODELS:-}" ]; then
    say "models: no own-GIL rows: this corral embeds a Python older than 3.12 (configure" \
        "--with-python=python3.12 or 3.13 for them)"
fi
# The ASGI rows need a corral built with Python (--asgi).
if "$corral" "${corral_root[@]}" --asgi "$asgi_app" --pythonpath "$here/apps" \
    --listen "uwsgi:unix:/tmp/x.sock" --test-config >/dev/null 2>&1; then
    default_models="$default_models asgi:1x1:asgi asgi:2x1:asgi"
fi
MODELS=${MODELS:-$default_models}
read -r -a models <<<"$MODELS"
for m in "${models[@]}"; do
    [[ "$m" =~ ^[a-z0-9_-]+:[1-9][0-9]*x[1-9][0-9]*(:own-gil|:asgi)?(@/[^@]+)?$ ]] ||
        die "MODELS: '$m' is not NAME:PxT[:own-gil|:asgi][@DIR] (DIR absolute)"
    [[ "$m" != *@* ]] || need_built "${m#*@}/corral"
done
# pxt MODEL: its PxT; own_gil_args MODEL: --own-gil for an own-GIL model; app_args MODEL: the
# app (WSGI, or ASGI for an asgi model); ideal MODEL PxT: the io ideal column; corral_of MODEL:
# the corral that runs it.
pxt() { local r=${1%%@*}; r=${r#*:}; echo "${r%%:*}"; }
own_gil_args() { [[ "${1%%@*}" == *:own-gil ]] && echo --own-gil; }
app_args() {
    if [[ "${1%%@*}" == *:asgi ]]; then echo --asgi "$asgi_app" --pythonpath "$here/apps"; else
        echo --wsgi-file "$app"; fi
}
ideal() { if [[ "${1%%@*}" == *:asgi ]]; then echo -; else echo $((${2%x*} * ${2#*x} * 100)); fi; }
corral_of() { if [[ "$1" == *@* ]]; then echo "${1#*@}/corral"; else echo "$corral"; fi; }
# mem_kib MASTER: "RSS PSS" in KiB, summed over the master and its workers.
mem_kib() {
    local p rss=0 pss=0 r s
    for p in "$1" $(pgrep -P "$1"); do
        read -r r s < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { s = $2 } END { print r + 0, s + 0 }' \
            "/proc/$p/smaps_rollup" 2>/dev/null)
        rss=$((rss + ${r:-0})) pss=$((pss + ${s:-0}))
    done
    echo "$rss $pss"
}
[ "${#models[@]}" = "$(printf '%s\n' "${models[@]}" | sort -u | wc -l)" ] ||
    die "MODELS: a model is listed twice"

bench_init
results=$tmp/results # lines: label<TAB>rps<TAB>p50<TAB>p99<TAB>cpu<TAB>errors
: >"$results"

declare -A sock pid
n=0
for m in "${models[@]}"; do
    n=$((n + 1)) c=$(pxt "$m") i=${m%%@*} i=$n-${i//:/-}
    # SIGINT: corral's fast stop (SIGTERM drains, up to --graceful-timeout)
    # shellcheck disable=SC2046 # own_gil_args: one word or none; app_args: words without spaces
    start "$i" "$tmp/$i.sock" "$tmp/$i.pid" INT "$(corral_of "$m")" "${corral_root[@]}" \
        $(app_args "$m") \
        --env "MODELS_CPU_LOOPS=$MODELS_CPU_LOOPS" --listen "$PROTO:unix:$tmp/$i.sock" \
        --processes "${c%x*}" --threads "${c#*x}" --pidfile "$tmp/$i.pid" $(own_gil_args "$m") ||
        die "corral did not start"
    sock[$m]=$tmp/$i.sock pid[$m]=$srv_pid
done

apps=(cpu io)
runs=()
for m in "${models[@]}"; do
    for a in "${apps[@]}"; do
        if why=$(probe "$PROTO" "${sock[$m]}" "$a " --uri "/$a"); then
            runs+=("$m $a")
        else
            say "$bench_name: $m /$a does not answer 200 '$a ...': $why (no figure)"
        fi
    done
done

say "models: $ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), $CONNS connections, $PROTO"
for round in $(seq "$ROUNDS"); do
    in_order "$round" "${runs[@]}"
    for r in "${order[@]}"; do
        m=${r% *} a=${r#* }
        bench_run "$round" "$m /$a" --proto "$PROTO" --connect "unix:${sock[$m]}" --uri "/$a" \
            --expect-status 200 --expect-body-prefix "$a " --server-pid "${pid[$m]}"
    done
done
[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"
declare -A mem # model -> "RSS PSS" (KiB) after the last round
for m in "${models[@]}"; do mem[$m]=$(mem_kib "${pid[$m]}"); done

# ---- table and data file ----
stamp="$(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r); $ROUNDS rounds x ${SECONDS_PER_RUN}s,"
stamp="$stamp $CONNS connections, $PROTO; medians"
echo
echo "models.sh: corral, CPU-bound (/cpu, ~2 ms of Python) and I/O-bound (/io, sleep 10 ms) apps"
echo "$stamp (errors: sum over the rounds)"
printf '%-18s %10s %9s %12s %10s %9s %9s %8s %8s %7s\n' "model (PxT)" "cpu req/s" "cpu p99" \
    "cpu us/resp" "io req/s" "io p99" "io ideal" "RSS MiB" "PSS MiB" errors
{
    echo "# models.sh: $stamp"
    echo "# model, processes, threads, then for /cpu and /io: req/s, p50 ms, p99 ms," \
        "server CPU us per response (- when there is no figure); then RSS and PSS KiB"
    for m in "${models[@]}"; do
        c=$(pxt "$m")
        printf '%s\t%s\t%s' "${m%%:*}" "${c%x*}" "${c#*x}"
        for a in "${apps[@]}"; do
            for col in 2 3 4 5; do printf '\t%s' "$(med "$m /$a" "$col")"; done
        done
        read -r rss pss <<<"${mem[$m]}"
        printf '\t%s\t%s\n' "$rss" "$pss"
    done
} >"$tmp/models.dat"
for m in "${models[@]}"; do
    c=$(pxt "$m")
    read -r rss pss <<<"${mem[$m]}"
    printf '%-18s %10s %9s %12s %10s %9s %9s %8s %8s %7s\n' "${m%%:*} $c" \
        "$(fmt %.0f "$(med "$m /cpu" 2)")" "$(fmt %.1f "$(med "$m /cpu" 4)")" \
        "$(fmt %.0f "$(med "$m /cpu" 5)")" "$(fmt %.0f "$(med "$m /io" 2)")" \
        "$(fmt %.1f "$(med "$m /io" 4)")" "$(ideal "$m" "$c")" \
        "$(fmt %.1f "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')")" \
        "$(fmt %.1f "$(awk -v k="$pss" 'BEGIN { print k / 1024 }')")" \
        "$(($(errsum "$m /cpu") + $(errsum "$m /io")))"
done
echo "(p99 in ms; io ideal = processes x threads x 100 req/s; none for asgi: its loop holds many)"
cp "$tmp/models.dat" "$DATA" || die "cannot write $DATA"

# ---- chart: two panels, requests/s per model, p99 above each bar ----
terminal="pngcairo noenhanced size 1200,520 font 'sans,10'"
gnuplot -e "set terminal" 2>&1 | grep -q pngcairo || terminal="png noenhanced size 1200,520"
gnuplot >"$tmp/gnuplot.log" 2>&1 <<EOF
set terminal $terminal
set output "$tmp/models.png"
set datafile separator "\t"
set datafile missing "-"
set multiplot layout 1,2 title "corral concurrency models: requests/s (p99 above the bars)\n$stamp"
set style data histograms
set style histogram clustered gap 1
set boxwidth 1.3 relative
set style fill solid 0.85 border -1
set bmargin 4
set grid ytics
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set ylabel "requests/s"
unset key
set title "CPU-bound: ~2 ms of pure Python per request"
tic(x) = sprintf("%s\n%dx%d", strcol(1), column(2), column(3))
plot "$tmp/models.dat" using 4:xtic(tic(0)) lc rgb "#3b75af", \
     "" using 0:4:(sprintf("p99 %.0f ms", \$6)) with labels offset 0,0.8
set title "I/O-bound: time.sleep(0.01) per request (asgi: await asyncio.sleep(0.01))"
plot "$tmp/models.dat" using 8:xtic(tic(0)) lc rgb "#519e3e", \
     "" using 0:8:(sprintf("p99 %.0f ms", \$10)) with labels offset 0,0.8
unset multiplot
EOF
if [ ! -s "$tmp/models.png" ]; then
    say "$bench_name: gnuplot drew no chart:"
    sed 's/^/    /' "$tmp/gnuplot.log" >&2
    exit 1
fi
cp "$tmp/models.png" "$OUT" || die "cannot write $OUT"
echo "data: $DATA"
echo "chart: $OUT"

check_errors || exit 1
