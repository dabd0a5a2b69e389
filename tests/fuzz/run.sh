#!/bin/bash
# Build every decoder's libFuzzer target (clang, ASan + UBSan) and run each
# for a bounded time from the seed corpus. Usage: run.sh SECONDS [OUTDIR [SHORT]]
# The protocol decoders (uwsgi, scgi, fastcgi, http) run SECONDS each; the other
# decoders (FastCGI's client side, the JSON reader, $CORRAL_REEXEC, control socket lines,
# --allow-from, a CGI response's header block) SHORT seconds each, a third of SECONDS by
# default (at least 1): small grammars that a few seconds already cover, and CI's default of
# 30 then stays near two minutes of fuzzing in all.
# New corpus entries go to OUTDIR, never into the repository.
set -uo pipefail
secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${2:-build-fuzz}
short=${3:-$((secs >= 3 ? secs / 3 : 1))}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# What each target links besides tests/fuzz/fuzz_TARGET.c, relative to the
# top (a word starting with - goes to the linker as it is). reexec_state.c
# also holds reexec_keep_fixed, which needs config.c and what config.c needs;
# control.c's socket half needs listen.c and log.c.
protocols="protocols/protocol.c protocols/params.c protocols/unframed.c protocols/uwsgi.c \
protocols/scgi.c protocols/fastcgi.c protocols/http.c"
declare -A sources=(
    [uwsgi]="protocols/params.c protocols/unframed.c protocols/uwsgi.c"
    [scgi]="protocols/params.c protocols/unframed.c protocols/scgi.c"
    [fastcgi]="protocols/params.c protocols/fastcgi.c"
    [http]="protocols/params.c protocols/http.c"
    [fastcgi_client]="protocols/fastcgi_client.c"
    [json_read]="src/ctl/json_read.c src/core/json.c -lm"
    [reexec]="src/master/reexec_state.c src/config/config.c src/config/options.c src/os/allow.c \
src/os/listen.c src/os/privs.c src/core/log.c $protocols -lconfig"
    [control_line]="src/master/control.c src/core/json.c src/os/listen.c src/core/log.c $protocols"
    [allow]="src/os/allow.c"
    [cgi_head]="src/apps/cgi_head.c src/core/log.c"
)
targets=(uwsgi scgi fastcgi http fastcgi_client json_read reexec control_line allow cgi_head)
declare -A seconds=([uwsgi]=$secs [scgi]=$secs [fastcgi]=$secs [http]=$secs)

status=0
for target in "${targets[@]}"; do
    src="$top/tests/fuzz/fuzz_$target.c"
    log="$out/fuzz_$target.log"
    t=${seconds[$target]:-$short}
    files=() libs=()
    for f in ${sources[$target]}; do
        case $f in
        -*) libs+=("$f") ;;
        *) files+=("$top/$f") ;;
        esac
    done
    if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -D_GNU_SOURCE -I"$top/include" -I"$top" -I"$top/src" "${files[@]}" \
        "$src" "${libs[@]}" -o "$out/fuzz_$target" 2>"$log"; then
        echo "fuzz_$target: build failed"; cat "$log"; status=1
        echo "0 passed, 1 failed" >>"$log"
        continue
    fi
    mkdir -p "$out/corpus_$target"
    if "$out/fuzz_$target" -max_total_time="$t" -print_final_stats=1 \
        "$out/corpus_$target" "$top/tests/fuzz/corpus/$target" >>"$log" 2>&1; then
        runs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
        echo "fuzz_$target: ${runs:-?} executions in ${t}s, no crash"
        echo "1 passed, 0 failed" >>"$log"
    else
        echo "fuzz_$target: FAILED"; tail -n 60 "$log"; status=1
        echo "0 passed, 1 failed" >>"$log"
    fi
done
exit $status
