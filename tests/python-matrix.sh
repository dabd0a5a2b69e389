#!/bin/bash
# The WSGI tests and the ASGI loop again against every other CPython the machine has, beside
# the Debian one the main build embeds: 3.12 and 3.13 (Ubuntu 24.04's and
# Debian 13's), found as pyenv builds or python3.N on PATH, with a shared
# libpython. For each: configure into build-py3.N (--with-python), build,
# and run the WSGI tests (the app life, recycling, harakiri and slowlog
# with the Python stack, preload, virtualenv of that version; --own-gil's
# interpreters, which need 3.12+) and the ASGI event loop against that
# version's own asyncio tests (asgi_loop.sh). Versions not
# found are named as skipped. Run from the top of the source tree after
# autogen (tests/run-all.sh does). Exits 1 when a build or a test failed.
set -uo pipefail
top=$(pwd)
versions=${PYTHON_MATRIX:-"3.12 3.13"}
tests="tests/integration/wsgi.sh tests/integration/wsgi_runtime.sh tests/integration/recycle.sh
       tests/integration/reload_preload.sh tests/integration/own_gil.sh
       tests/integration/asgi_loop.sh"

# The python3.N executable of version $1 with a shared libpython, or nothing.
find_python() {
    local v=$1 cand=() p
    local root=${PYENV_ROOT:-$HOME/.pyenv}
    for p in "$root"/versions/"$v".*/bin/python"$v"; do
        [ -x "$p" ] && cand+=("$p")
    done
    p=$(command -v "python$v" 2>/dev/null) && cand+=("$p")
    for p in "${cand[@]}"; do
        if [ "$("$p" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED"))' 2>/dev/null)" = 1 ]; then
            echo "$p"
            return
        fi
    done
}

status=0
ran=()
skipped=()
for v in $versions; do
    py=$(find_python "$v")
    if [ -z "$py" ]; then
        skipped+=("$v")
        continue
    fi
    dir=build-py$v
    echo "python-matrix: Python $v: $py -> $dir"
    mkdir -p "$dir"
    if ! (cd "$dir" && "$top/configure" -q --enable-werror CFLAGS="-O2 -g" --with-python="$py") ||
       ! make -C "$dir" -j2 >"$dir/make.log" 2>&1; then
        tail -n 30 "$dir/make.log" 2>/dev/null
        echo "python-matrix: Python $v: the build failed"
        status=1
        continue
    fi
    if ! make -C "$dir" check TESTS="$(echo $tests)"; then
        tail -n 100 "$dir/test-suite.log" 2>/dev/null
        status=1
    fi
    ran+=("$v")
done
echo "python-matrix: ran Python ${ran[*]:-none}; skipped (not on this machine, or no shared libpython): ${skipped[*]:-none}"
exit $status
