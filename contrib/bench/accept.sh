#!/usr/bin/env bash
# contrib/bench/accept.sh: how workers share the listeners, measured the way
# users deploy: wrk -> nginx (fastcgi_keep_conn + upstream keepalive 32) ->
# corral 2 processes x 2 threads, for each CORRAL_ACCEPT_MODE:
#   balanced   EPOLLEXCLUSIVE, and a worker 2 connections ahead of another
#              worker with a free thread stops accepting (the default)
#   exclusive  EPOLLEXCLUSIVE alone
#   shared     every worker's epoll wakes for every connection
# Prints requests/s and how many connections each worker held, per run, and
# the median requests/s per mode. ROUNDS (5), SECONDS_PER_RUN (4), BUILD.
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${BUILD:-$(cd "$here/../.." && pwd)}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
command -v nginx >/dev/null && command -v wrk >/dev/null ||
    { echo "accept.sh: needs nginx and wrk (apt-get install nginx-light wrk)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/corral-accept.XXXXXX)
chmod 755 "$tmp"
corral_pid=""
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null
    [ -n "$corral_pid" ] && kill -TERM "$corral_pid" 2>/dev/null
    sleep 0.5
    rm -rf "$tmp"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
cat >"$tmp/nginx.conf" <<NGINX
$user_line
worker_processes 1;
error_log $tmp/nginx-error.log;
pid $tmp/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/body; fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi; proxy_temp_path $tmp/proxy;
    upstream corral { server unix:$tmp/f.sock; keepalive 32; }
    server {
        listen 127.0.0.1:$port;
        location / { include /etc/nginx/fastcgi_params; fastcgi_keep_conn on; fastcgi_pass corral; }
    }
}
NGINX

declare -A results
for round in $(seq "$ROUNDS"); do
    for mode in balanced exclusive shared; do
        rm -f "$tmp/f.sock"
        CORRAL_ACCEPT_MODE=$mode "$BUILD/corral" --listen "fastcgi:unix:$tmp/f.sock" \
            --handler "$BUILD/tests/apps/demo.so:hello" --processes 2 --threads 2 --chmod 0666 \
            --error-log "$tmp/corral.log" &
        corral_pid=$!
        for _ in $(seq 50); do [ -S "$tmp/f.sock" ] && break; sleep 0.1; done
        nginx -c "$tmp/nginx.conf" -p "$tmp" 2>/dev/null
        for _ in $(seq 50); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.1; done
        nginx_pid=$(cat "$tmp/nginx.pid")
        wrk -t1 -c64 -d"$SECONDS_PER_RUN" "http://127.0.0.1:$port/hello" >"$tmp/wrk.out" 2>&1 &
        wrk_pid=$!
        sleep $((SECONDS_PER_RUN / 2))
        held=""
        for w in $(pgrep -P "$corral_pid"); do
            # sockets minus the listener: connections from nginx
            n=$(ls -l "/proc/$w/fd" 2>/dev/null | grep -c socket)
            held="$held $((n - 1))"
        done
        wait "$wrk_pid"
        rps=$(awk '/Requests\/sec/ { print $2 }' "$tmp/wrk.out")
        printf 'round %d %-9s %9s req/s  connections per worker:%s\n' "$round" "$mode" "$rps" "$held"
        results[$mode]="${results[$mode]:-} $rps"
        kill -QUIT "$nginx_pid"; kill -TERM "$corral_pid"
        wait "$corral_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$tmp/nginx.pid"
        nginx_pid=""
        corral_pid=""
    done
done
echo
for mode in balanced exclusive shared; do
    median=$(echo "${results[$mode]}" | tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    printf 'median %-9s %9s req/s\n' "$mode" "$median"
done
