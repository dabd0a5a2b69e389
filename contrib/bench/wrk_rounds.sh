# shellcheck shell=bash
# contrib/bench/wrk_rounds.sh: interleaved wrk rounds against several front-end ports and their
# table of medians, for the scripts that start their own servers (cgi.sh, php.sh). Sourced:
#
#   declare -A ports=([corral]=8001 [fcgiwrap]=8002)
#   targets=(corral fcgiwrap)
#   wrk_rounds "$T/results" /hello.cgi 5s    # ROUNDS x SECONDS_PER_RUN, CONNS; wrk --timeout 5s
#   wrk_table "$T/results"                   # | target | req/s | p99 ms | socket errors | non-2xx |
#
# Odd rounds run the targets in their order, even rounds in the reverse order, so that neither
# always runs first. Each run appends: target, req/s, p99 ms, socket errors, non-2xx (tabs).

wrk_to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) \
    { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }'; }

wrk_rounds() { # RESULTS PATH TIMEOUT
    local results=$1 path=$2 timeout=$3 r t i out rps p99 sockerr non2xx order
    for r in $(seq 1 "$ROUNDS"); do
        order=("${targets[@]}")
        if [ $((r % 2)) = 0 ]; then
            order=()
            for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[$i]}"); done
        fi
        for t in "${order[@]}"; do
            out=$(wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --timeout "$timeout" --latency \
                "http://127.0.0.1:${ports[$t]}$path" 2>&1)
            rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
            p99=$(awk '$1 == "99%" { print $2 }' <<<"$out" | wrk_to_ms)
            sockerr=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' <<<"$out" | awk '{ print $1 + $2 + $3 + $4 }')
            non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
            printf '%s\t%s\t%s\t%s\t%s\n' "$t" "${rps:-0}" "${p99:--}" "${sockerr:-0}" \
                "${non2xx:-0}" >>"$results"
            echo "round $r $t: ${rps:-0} req/s, p99 ${p99:--} ms, socket errors ${sockerr:-0}, non-2xx ${non2xx:-0}" >&2
        done
    done
}

wrk_median() { sort -n | awk '{ a[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

wrk_table() { # RESULTS [ERRORS-HEADER]
    local results=$1 t rps p99 se nx
    echo "| target | req/s | p99 ms | ${2:-socket errors} | non-2xx |"
    echo "|---|---:|---:|---:|---:|"
    for t in "${targets[@]}"; do
        rps=$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$results" | wrk_median)
        p99=$(awk -F'\t' -v t="$t" '$1 == t { print $3 }' "$results" | wrk_median)
        se=$(awk -F'\t' -v t="$t" '$1 == t { s += $4 } END { print s + 0 }' "$results")
        nx=$(awk -F'\t' -v t="$t" '$1 == t { s += $5 } END { print s + 0 }' "$results")
        echo "| $t | $rps | $p99 | $se | $nx |"
    done
}
