#!/bin/bash
# Build every decoder's libFuzzer target (clang, ASan + UBSan) and run each
# for a bounded time from the seed corpus. Usage: run.sh SECONDS [OUTDIR]
# New corpus entries go to OUTDIR, never into the repository.
set -uo pipefail
secs=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${2:-build-fuzz}
mkdir -p "$out"
out=$(cd "$out" && pwd)
status=0
for target in uwsgi scgi fastcgi; do
    src="$top/tests/fuzz/fuzz_$target.c"
    log="$out/fuzz_$target.log"
    if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -D_GNU_SOURCE -I"$top/protocols" "$top/protocols/params.c" "$top/protocols/$target.c" \
        "$src" -o "$out/fuzz_$target" 2>"$log"; then
        echo "fuzz_$target: build failed"; cat "$log"; status=1
        echo "0 passed, 1 failed" >>"$log"
        continue
    fi
    mkdir -p "$out/corpus_$target"
    if "$out/fuzz_$target" -max_total_time="$secs" -print_final_stats=1 \
        "$out/corpus_$target" "$top/tests/fuzz/corpus/$target" >>"$log" 2>&1; then
        runs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
        echo "fuzz_$target: ${runs:-?} executions in ${secs}s, no crash"
        echo "1 passed, 0 failed" >>"$log"
    else
        echo "fuzz_$target: FAILED"; tail -n 60 "$log"; status=1
        echo "0 passed, 1 failed" >>"$log"
    fi
done
exit $status
