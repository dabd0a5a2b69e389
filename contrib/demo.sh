#!/bin/bash
# The README's demo command: install what is missing, build, then run corral
# with the demo Flask app (contrib/demo/app.py; the native demo handler
# tests/apps/demo.c when corral has no Python or Flask is missing, or with
# DEMO=native) on a unix socket and nginx in front of it on
# http://127.0.0.1:8080/ (FastCGI with kept connections, the recommended
# setup). Everything lives in a temporary directory; nothing is written to
# /etc. Ctrl-C stops both. Safe to run again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PORT=${PORT:-8080}

contrib/install-deps.sh
if [ ! -x build/corral ]; then
    if [ -f config.status ]; then
        make distclean >/dev/null 2>&1 || true
    fi
    [ -x configure ] || ./autogen.sh >/dev/null
    mkdir -p build
    (cd build && ../configure -q CFLAGS="-O2 -g")
fi
make -C build -j2 corral tests/apps/demo.so >/dev/null

DEMO=${DEMO:-flask}
if [ "$DEMO" = flask ] && ! { build/corral --help | grep -q -- --wsgi &&
                             /usr/bin/python3 -c 'import flask' 2>/dev/null; }; then
    echo "demo: no Python in this corral build or no python3-flask: the native demo instead"
    DEMO=native
fi
if [ "$DEMO" = flask ]; then
    app_args=(--wsgi-file contrib/demo/app.py)
    what="the Flask app contrib/demo/app.py"
else
    app_args=(--handler build/tests/apps/demo.so)
    what="the native handler tests/apps/demo.c"
fi

tmp=$(mktemp -d /tmp/corral-demo.XXXXXX)
chmod 755 "$tmp"
corral_pid=""
nginx_pid=""
stop() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping"
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null
    [ -n "$corral_pid" ] && kill -TERM "$corral_pid" 2>/dev/null
    for _ in $(seq 50); do
        { [ -n "$corral_pid" ] && kill -0 "$corral_pid" 2>/dev/null; } ||
        { [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; } || break
        sleep 0.1
    done
    rm -rf "$tmp"
    exit 0
}
trap stop INT TERM EXIT

sock="$tmp/corral.sock"
# The demo runs the app from this checkout as whoever started it; corral
# refuses root unless told (a real deployment gives --uid/--gid instead).
root_args=()
[ "$(id -u)" = 0 ] && root_args=(--allow-root)
build/corral --listen "fastcgi:unix:$sock" "${app_args[@]}" "${root_args[@]}" \
    --processes 2 --threads 4 --chmod 0666 --access-log /dev/stdout &
corral_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "demo: corral did not start" >&2; exit 1; }

mkdir -p "$tmp/nginx"
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
cat >"$tmp/nginx/nginx.conf" <<NGINX
$user_line
worker_processes 1;
daemon off;
error_log $tmp/nginx/error.log;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    proxy_temp_path $tmp/nginx/proxy;
    upstream corral {
        server unix:$sock;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$PORT;
        location / {
            include /etc/nginx/fastcgi_params;
            # A WSGI app is mounted at /: the path goes in PATH_INFO.
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO \$document_uri;
            fastcgi_pass corral;
            fastcgi_keep_conn on;
            fastcgi_buffering off;
        }
    }
}
NGINX
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
nginx_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/hello" && break; sleep 0.05; done
echo
echo "demo: corral (pid $corral_pid) is serving $what behind nginx."
echo "demo: open http://127.0.0.1:$PORT/  (try: curl http://127.0.0.1:$PORT/hello)"
echo "demo: Ctrl-C stops both."
echo
wait "$corral_pid"
