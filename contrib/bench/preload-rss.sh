#!/usr/bin/env bash
# contrib/bench/preload-rss.sh: memory of 4 workers of the Django test app
# (tests/apps/django_app.py, python3-django) imported lazily (the default:
# each worker imports after the fork) and with --preload (the master imports
# once, the workers share its pages copy-on-write).
#
#   BUILD=/path/to/build contrib/bench/preload-rss.sh
#
# For each mode: start corral with 4 processes x 1 thread on a unix socket,
# send every worker requests over several Django routes (so that what Django
# loads on first use is loaded), then read /proc of the master and the
# workers: RSS (what ps shows; shared pages counted in every process) and
# PSS (shared pages divided among their sharers: the sum is what the pool
# really costs). Prints one table. Environment: BUILD (default: the repo
# root), PROCESSES (4), REQUESTS (200 per route).
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$top}
PROCESSES=${PROCESSES:-4}
REQUESTS=${REQUESTS:-200}
corral=$BUILD/corral
corral_root=()
[ "$(id -u)" = 0 ] && corral_root=(--allow-root) # benchmarks run as root here
PY=/usr/bin/python3

die() { printf 'preload-rss.sh: %s\n' "$*" >&2; exit 1; }
[ -x "$corral" ] || die "$corral not found: build first, or set BUILD"
"$PY" -c 'import django' 2>/dev/null || die "python3-django is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/corral-preload.XXXXXX") || die "mktemp failed"
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# kB of FIELD (Rss or Pss) of PID from smaps_rollup.
mem_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/smaps_rollup"; }

measure() { # MODE [FLAGS...]
    local mode=$1
    shift
    local sock=$tmp/$mode.sock
    "$corral" "${corral_root[@]}" --listen "uwsgi:unix:$sock" --wsgi django_app:application \
        --pythonpath "$top/tests/apps" --processes "$PROCESSES" --threads 1 \
        --error-log "$tmp/$mode.log" "$@" >"$tmp/$mode.out" 2>&1 </dev/null &
    pid=$!
    PYTHONPATH=$top/tests/integration "$PY" - "$sock" "$REQUESTS" <<'PY' || die "$mode: requests failed (see $tmp/$mode.log)"
import sys, time
from lib_protocols import request
sock, n = "unix:" + sys.argv[1], int(sys.argv[2])
for _ in range(100):
    try:
        request("uwsgi", sock, "GET", "/dj/json", timeout=5)
        break
    except OSError:
        time.sleep(0.1)
for uri in ("/dj/json", "/dj/counter", "/dj/go", "/dj/nothing-here"):
    for _ in range(n):
        st, _, _ = request("uwsgi", sock, "GET", uri, timeout=10)
        assert st in (200, 302, 404), (uri, st)
PY
    local workers w rss=0 pss=0
    workers=$(pgrep -P "$pid" | tr '\n' ' ')
    for w in $workers; do
        rss=$((rss + $(mem_kb "$w" Rss)))
        pss=$((pss + $(mem_kb "$w" Pss)))
    done
    awk -v m="$mode" -v n="$(echo $workers | wc -w)" -v mr="$(mem_kb "$pid" Rss)" \
        -v mp="$(mem_kb "$pid" Pss)" -v wr="$rss" -v wp="$pss" 'BEGIN {
        printf "%-8s | %7d | %10.1f | %11.1f | %11.1f | %9.1f\n", m, n, mr / 1024, wr / 1024,
            wp / 1024, (wp + mp) / 1024 }'
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    pid=
}

printf 'Django test app, %d workers x 1 thread, after %d requests per route (MiB)\n' \
    "$PROCESSES" "$REQUESTS"
printf '%-8s | %7s | %10s | %11s | %11s | %9s\n' mode workers "master RSS" "workers RSS" \
    "workers PSS" "total PSS"
measure lazy
measure preload --preload
