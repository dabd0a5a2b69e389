#!/bin/bash
# The README's test command: install what is missing, build, and run every
# test — unit and integration tests (gcc, warnings are errors), the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer (clang,
# warnings are errors), the WSGI tests against every other Python of the
# machine (tests/python-matrix.sh), and a bounded libFuzzer run of every
# decoder.
# Exits non-zero when anything fails. Safe to run again.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
failed_steps=()

step() { printf '\n==== %s ====\n' "$*"; }

# The failed checks of every failed test of build dir $1, each with the lines
# after it, then the end of each such log: a CI page shows what failed even
# when the whole test-suite.log is too long to read.
show_failures() {
    local trs log
    for trs in $(grep -l '^:test-result: \(FAIL\|ERROR\)' "$1"/tests/*/*.trs 2>/dev/null); do
        log=${trs%.trs}.log
        printf '\n---- %s: failed checks ----\n' "${log#"$1"/}"
        grep -E -A8 '^(FAIL|not ok)' "$log" | head -n 80
        printf -- '---- %s: its end ----\n' "${log#"$1"/}"
        tail -n 15 "$log"
    done
}

step "dependencies"
contrib/install-deps.sh || { echo "run-all: installing dependencies failed" >&2; exit 1; }

step "autogen"
if [ -f config.status ]; then
    echo "run-all: the source tree is configured in place; cleaning it so builds go to build/"
    make distclean >/dev/null 2>&1 || true
fi
./autogen.sh >build-autogen.log 2>&1 || { cat build-autogen.log; exit 1; }

# $1 = build dir, rest = configure arguments
configure_in() {
    local dir=$1; shift
    mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q "$@") || return 1
}

step "build (gcc, -Werror) and make check"
if configure_in build --enable-werror CFLAGS="-O2 -g" &&
   make -C build -j2 >build/make.log 2>&1; then
    if ! make -C build -j2 check; then
        failed_steps+=("make check")
        show_failures build
    fi
else
    tail -n 50 build/make.log 2>/dev/null
    failed_steps+=("gcc build")
fi

step "the WSGI tests and the ASGI loop against the other Pythons of the machine (3.12, 3.13)"
if ! tests/python-matrix.sh; then
    failed_steps+=("python matrix")
fi

step "unit tests under ASan + UBSan (clang, -Werror)"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
unit_tests=$(sed -n '/^UNIT_TESTS = /,/^$/p' Makefile.am | grep -o 'tests/unit/test_[a-z_]*' | tr '\n' ' ')
if configure_in build-asan --enable-werror CC=clang CFLAGS="-g -O1 $SAN" LDFLAGS="$SAN" &&
   make -C build-asan -j2 >build-asan/make.log 2>&1; then
    if ! make -C build-asan -j2 check TESTS="$unit_tests"; then
        failed_steps+=("sanitizer unit tests")
        show_failures build-asan
    fi
else
    tail -n 50 build-asan/make.log 2>/dev/null
    failed_steps+=("clang sanitizer build")
fi

step "fuzz smoke (${FUZZ_SECONDS}s per protocol decoder, a third of it per other decoder)"
if ! tests/fuzz/run.sh "$FUZZ_SECONDS" build-fuzz; then
    failed_steps+=("fuzzing")
fi

step "summary"
# Count individual checks: cmocka cases and the integration scripts' checks.
passed=0
failed=0
for log in build/tests/unit/*.log build-asan/tests/unit/*.log build/tests/integration/*.log \
           build-py*/tests/integration/*.log build-fuzz/*.log; do
    [ -f "$log" ] || continue
    p=$(grep -aoE '^\[  PASSED  \] [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    f=$(grep -aoE '^\[  FAILED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | tail -n 1)
    line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | cut -d' ' -f1)
        f=$(echo "$line" | cut -d' ' -f3)
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
done
if [ ${#failed_steps[@]} -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
    [ "$failed" -eq 0 ] && failed=${#failed_steps[@]}
fi
echo "corral: $passed passed, $failed failed"
[ ${#failed_steps[@]} -eq 0 ] && [ "$failed" -eq 0 ]
