#!/usr/bin/env bash
# contrib/bench/php.sh: corral + php-cgi (--fastcgi-program) against PHP-FPM on the same PHP page
# (contrib/bench/apps/hello.php), behind nginx, with fastcgi_keep_conn (upstream keepalive 32)
# and without, in one interleaved run.
#
#   contrib/install-deps.sh --bench       # php8.2-fpm, wrk, nginx (php8.2-cgi comes with the
#   contrib/install-deps.sh               # test packages)
#   BUILD=build ROUNDS=5 SECONDS_PER_RUN=10 contrib/bench/php.sh
#
# Both sides run PHP_PROCS PHP processes (default 2) with OPcache on:
#   corral: --fastcgi-program "php-cgi -d opcache.enable=1" --program-processes PHP_PROCS,
#           --processes CORRAL_PROCS (1) --threads CORRAL_THREADS (PHP_PROCS): one worker
#           process keeps one connection to each program (FCGI_KEEP_CONN; a worker thread
#           waits while a program works);
#   PHP-FPM 8.2: pm = static, pm.max_children = PHP_PROCS, opcache.enable = 1, one pool for the
#           keep-conn runs and one for the others (nginx's idle kept connections pin the
#           children of the first).
# wrk -t1 -c CONNS -d SECONDS_PER_RUN --timeout 2s -> nginx (1 worker) -> the server, four targets
# per round (corral and FPM, keep-conn and not; even rounds in reverse order). The table shows
# medians of requests/s and p99, and the sums of errors: wrk's socket errors (timeouts: a request
# nginx never got answered within 2 s, e.g. one waiting for a PHP-FPM child pinned by a kept
# connection) and non-2xx answers (nginx's 502/504).
#
# Environment: BUILD (default: the repo root), ROUNDS (3), SECONDS_PER_RUN (5), CONNS (32),
# PHP_PROCS (2), CORRAL_PROCS (1), CORRAL_THREADS (PHP_PROCS), PHP_CGI (php-cgi),
# PHP_FPM (php-fpm8.2). Everything lives in a temp dir; the
# processes started here are stopped by PID on exit. Unix sockets and 127.0.0.1 only.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/wrk_rounds.sh"
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$top}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-32}
PHP_PROCS=${PHP_PROCS:-2}
CORRAL_PROCS=${CORRAL_PROCS:-1}
CORRAL_THREADS=${CORRAL_THREADS:-$PHP_PROCS}
PHP_CGI=${PHP_CGI:-php-cgi}
PHP_FPM=${PHP_FPM:-php-fpm8.2}

die() { echo "php.sh: $*" >&2; exit 1; }
for tool in "$PHP_CGI" "$PHP_FPM" nginx wrk; do
    command -v "$tool" >/dev/null || die "$tool is missing: contrib/install-deps.sh --bench"
done
[ -x "$BUILD/corral" ] || die "no $BUILD/corral: build first (BUILD=dir)"

T=$(mktemp -d /tmp/corral-php.XXXXXX)
chmod 755 "$T"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

docroot=$here/apps
root_opt=()
[ "$(id -u)" = 0 ] && root_opt=(--allow-root)

# corral + php-cgi.
"$BUILD/corral" "${root_opt[@]}" --listen "fastcgi:unix:$T/corral.sock" --chmod 0666 \
    --fastcgi-program "$PHP_CGI -d opcache.enable=1" --program-processes "$PHP_PROCS" \
    --processes "$CORRAL_PROCS" --threads "$CORRAL_THREADS" --error-log "$T/corral.log" \
    >/dev/null 2>&1 &
pids+=($!)

# PHP-FPM, pm = static.
cat >"$T/fpm.conf" <<CONF
[global]
pid = $T/fpm.pid
error_log = $T/fpm.log
daemonize = no
CONF
# Two pools: nginx's idle kept connections pin the keep pool's children
# (PHP-FPM's weakness), which must not starve the runs without keep-conn.
for pool in keep close; do
    cat >>"$T/fpm.conf" <<CONF
[$pool]
listen = $T/fpm-$pool.sock
listen.mode = 0666
pm = static
pm.max_children = $PHP_PROCS
php_admin_value[opcache.enable] = 1
CONF
    [ "$(id -u)" = 0 ] && printf 'user = nobody\ngroup = nogroup\n' >>"$T/fpm.conf"
done
fpm_user=()
[ "$(id -u)" = 0 ] && fpm_user=(-R)
"$PHP_FPM" "${fpm_user[@]}" -y "$T/fpm.conf" -F >/dev/null 2>&1 &
pids+=($!)

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P_CK=$(port) P_CN=$(port) P_FK=$(port) P_FN=$(port)
site() { # PORT SOCKET KEEP
    local pass="unix:$2" keep=""
    [ "$3" = keep ] && pass=$(basename "$2" .sock)_keep && keep="fastcgi_keep_conn on;"
    cat <<SITE
    server {
        listen 127.0.0.1:$1;
        root $docroot;
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass $pass;
            $keep
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
    upstream corral_keep { server unix:$T/corral.sock; keepalive 32; }
    upstream fpm-keep_keep { server unix:$T/fpm-keep.sock; keepalive 32; }
$(site "$P_CK" "$T/corral.sock" keep)
$(site "$P_CN" "$T/corral.sock" close)
$(site "$P_FK" "$T/fpm-keep.sock" keep)
$(site "$P_FN" "$T/fpm-close.sock" close)
}
CONF
for s in corral fpm-keep fpm-close; do
    for _ in $(seq 1 100); do [ -S "$T/$s.sock" ] && break; sleep 0.1; done
    [ -S "$T/$s.sock" ] || die "$s did not come up: $(tail -5 "$T/$s.log" 2>/dev/null)"
done
nginx -e "$T/nginx-error.log" -p "$T/nginx/" -c "$T/nginx.conf" -g "daemon off;" &
pids+=($!)
sleep 1

# Each target must answer the page before any figure counts.
declare -A ports=([corral-keep]=$P_CK [corral-close]=$P_CN [fpm-keep]=$P_FK [fpm-close]=$P_FN)
targets=(corral-keep fpm-keep corral-close fpm-close)
for t in "${targets[@]}"; do
    body=$(curl -sS -m 5 "http://127.0.0.1:${ports[$t]}/hello.php") || die "$t: no answer"
    [ "$body" = "Hello, World!" ] || die "$t answered: $body"
done

results=$T/results
wrk_rounds "$results" /hello.php 2s

echo
echo "PHP: corral + php-cgi against PHP-FPM, $PHP_PROCS PHP processes each, nginx, wrk -c$CONNS, $ROUNDS x ${SECONDS_PER_RUN}s (medians; errors summed)"
echo
wrk_table "$results" "socket errors (timeouts...)"
