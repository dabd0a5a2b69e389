#!/usr/bin/env bash
# contrib/bench/cgi.sh: corral --cgi against fcgiwrap (Debian's) on the same CGI script, behind
# nginx, in one interleaved run; then what each does with a script that hangs.
#
#   contrib/install-deps.sh --bench       # fcgiwrap, wrk, nginx
#   BUILD=build ROUNDS=5 SECONDS_PER_RUN=10 contrib/bench/cgi.sh
#
# Both sides run CGI_PROCS scripts at once (default 4):
#   corral: --cgi ROOT --processes 1 --threads 1 --cgi-max-scripts CGI_PROCS (a running script
#           holds no thread: the worker's CGI loop runs them), --cgi-timeout HANG_LIMIT;
#   fcgiwrap 1.1: -c CGI_PROCS (preforked processes; it has no time limit).
# The script is a shell script that prints a header and "Hello, World!" (ROOT/hello.cgi).
# Part 1: wrk -t1 -c CONNS -d SECONDS_PER_RUN --timeout 5s -> nginx (1 worker, fastcgi_pass, no
# keep-conn: fcgiwrap serves one request per connection) -> the server, both targets per round
# (even rounds in reverse order). The table shows medians of requests/s and p99 and the sums of
# errors (wrk's socket errors and non-2xx answers).
# Part 2, per server: CGI_PROCS clients ask for ROOT/hang.cgi (it sleeps for ever) and give up
# after 2 s; then the scripts still running are counted, a hello request is tried (10 s at most),
# and after HANG_LIMIT + 3 s the scripts are counted again. fcgiwrap keeps every hung script (and
# its process) for ever; corral kills a script's process group when the front end goes away, and
# at the latest after --cgi-timeout.
#
# Environment: BUILD (default: the repo root), ROUNDS (3), SECONDS_PER_RUN (5), CONNS (16),
# CGI_PROCS (4), HANG_LIMIT (5, seconds). Everything lives in a temp dir; the processes started
# here, their children and the hung scripts (by the PIDs they wrote) are stopped by PID on
# exit. Unix sockets and 127.0.0.1 only.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/wrk_rounds.sh"
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$top}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-16}
CGI_PROCS=${CGI_PROCS:-4}
HANG_LIMIT=${HANG_LIMIT:-5}

die() { echo "cgi.sh: $*" >&2; exit 1; }
for tool in fcgiwrap nginx wrk curl; do
    command -v "$tool" >/dev/null || die "$tool is missing: contrib/install-deps.sh --bench"
done
[ -x "$BUILD/corral" ] || die "no $BUILD/corral: build first (BUILD=dir)"

T=$(mktemp -d /tmp/corral-cgi.XXXXXX)
chmod 755 "$T"
pids=()
hung_pids() { cat "$T"/hang-*.pids 2>/dev/null; }
cleanup() {
    local p all
    # fcgiwrap's children outlive it: take every child's PID before the signals.
    all="${pids[*]} $(for p in "${pids[@]}"; do pgrep -P "$p"; done) $(hung_pids)"
    for p in $all; do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for p in $all; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ROOT=$T/root
mkdir -p "$ROOT"
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nHello, World!\\n"\n' >"$ROOT/hello.cgi"
# The hung script records its PID (per server: HANG_TAG from nginx) so the counts and the
# cleanup find it.
cat >"$ROOT/hang.cgi" <<SCRIPT
#!/bin/sh
echo \$\$ >>"$T/hang-\${QUERY_STRING:-x}.pids"
while :; do sleep 1; done
SCRIPT
chmod 755 "$ROOT/hello.cgi" "$ROOT/hang.cgi"

root_opt=()
[ "$(id -u)" = 0 ] && root_opt=(--allow-root)
"$BUILD/corral" "${root_opt[@]}" --listen "fastcgi:unix:$T/corral.sock" --chmod 0666 \
    --cgi "$ROOT" --processes 1 --threads 1 --cgi-max-scripts "$CGI_PROCS" --cgi-timeout "$HANG_LIMIT" \
    --error-log "$T/corral.log" >/dev/null 2>&1 &
pids+=($!)
fcgiwrap -c "$CGI_PROCS" -s "unix:$T/fcgiwrap.sock" >"$T/fcgiwrap.log" 2>&1 &
pids+=($!)

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P_C=$(port) P_F=$(port)
site() { # PORT SOCKET
    cat <<SITE
    server {
        listen 127.0.0.1:$1;
        root $ROOT;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_read_timeout 600s;
            fastcgi_pass unix:$2;
        }
    }
SITE
}
mkdir -p "$T/nginx"
cat >"$T/nginx.conf" <<CONF
worker_processes 1;
error_log $T/nginx-error.log;
pid $T/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    fastcgi_temp_path $T/nginx/fastcgi;
$(site "$P_C" "$T/corral.sock")
$(site "$P_F" "$T/fcgiwrap.sock")
}
CONF
for s in corral fcgiwrap; do
    for _ in $(seq 1 100); do [ -S "$T/$s.sock" ] && break; sleep 0.1; done
    [ -S "$T/$s.sock" ] || die "$s did not come up: $(tail -5 "$T/$s.log" 2>/dev/null)"
done
chmod 666 "$T/fcgiwrap.sock"
nginx -e "$T/nginx-error.log" -p "$T/nginx/" -c "$T/nginx.conf" -g "daemon off;" &
pids+=($!)
sleep 1

declare -A ports=([corral]=$P_C [fcgiwrap]=$P_F)
targets=(corral fcgiwrap)
for t in "${targets[@]}"; do
    body=$(curl -sS -m 5 "http://127.0.0.1:${ports[$t]}/hello.cgi") || die "$t: no answer"
    [ "$body" = "Hello, World!" ] || die "$t answered: $body"
done

# ---- Part 1: requests/s
results=$T/results
wrk_rounds "$results" /hello.cgi 5s

echo
echo "CGI: corral --cgi against fcgiwrap, $CGI_PROCS scripts at once each, nginx, wrk -c$CONNS, $ROUNDS x ${SECONDS_PER_RUN}s (medians; errors summed)"
echo
wrk_table "$results"

# ---- Part 2: a script that hangs
running() { # TAG: the hung scripts of TAG still running
    local n=0 p
    for p in $(cat "$T/hang-$1.pids" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] && ! awk '{ exit !($0 ~ /\) Z /) }' "/proc/$p/stat" && n=$((n + 1))
    done
    echo "$n"
}
echo
echo "A script that hangs: $CGI_PROCS clients ask for it and give up after 2 s"
echo
echo "| server | started | running 1 s after the clients gave up | a hello request then | running $((HANG_LIMIT + 3)) s later |"
echo "|---|---:|---:|---|---:|"
for t in "${targets[@]}"; do
    clients=()
    for _ in $(seq 1 "$CGI_PROCS"); do
        curl -s -m 2 -o /dev/null "http://127.0.0.1:${ports[$t]}/hang.cgi?$t" &
        clients+=($!)
    done
    wait "${clients[@]}"
    sleep 1
    started=$(wc -l <"$T/hang-$t.pids" 2>/dev/null || echo 0)
    after=$(running "$t")
    hello=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[$t]}/hello.cgi")
    [ "$hello" = 000 ] && hello="no answer in 10 s"
    sleep $((HANG_LIMIT + 3))
    echo "| $t | $started | $after | $hello | $(running "$t") |"
done
