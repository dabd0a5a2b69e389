#!/usr/bin/env bash
# contrib/bench/http.sh: corral's http listener (--listen http:...) against gunicorn (sync
# workers, Debian's gunicorn) on the same hello-world WSGI app (contrib/bench/apps/hello.py),
# directly and behind nginx, next to nginx -> corral FastCGI keep-conn, in one interleaved run.
#
#   contrib/install-deps.sh --bench      # gunicorn nginx-light wrk (and uWSGI for wsgi.sh)
#   BUILD=build ROUNDS=5 SECONDS_PER_RUN=5 contrib/bench/http.sh
#
# Targets, each with CONFIG processes x threads (gunicorn: CONFIG's processes as sync workers,
# one request at a time each, as it is deployed behind a proxy), every one probed for 200
# "Hello, World!" before it counts:
#   direct: wrk -t1 -c CONNS -> corral http:tcp        (keep-alive: wrk reuses its connections)
#           wrk -t1 -c CONNS -> gunicorn --bind tcp   (sync workers close after each response)
#   nginx:  wrk -> nginx (1 worker; auto) proxy_pass, HTTP/1.1, upstream keepalive 32 ->
#             corral http:unix                      (contrib/nginx/corral-http.conf)
#             gunicorn unix                         (the same config; gunicorn closes)
#           wrk -> nginx fastcgi_pass keep-conn -> corral fastcgi:unix   (contrib/nginx/corral.conf)
# Every target runs once per round (even rounds in reverse order); the tables show medians,
# with the server CPU µs per response (all its processes; nginx's own CPU is not counted).
# Goals (issue 14, 2 x 1): direct corral >= 4 x gunicorn; nginx -> corral http >= 3 x nginx ->
# gunicorn and >= 0.95 x nginx -> corral FastCGI keep-conn.
# Then IDLE (10000) idle keep-alive connections to a corral 2 x 2 (--max-conns 8192): each
# served one request and left open; a new connection must still be answered at once, and the
# workers' RSS is shown (IDLE=0 skips it).
#
# Two nginx run the same sites: one with worker_processes 1 (as in the other scripts), one with
# auto (a worker a CPU, Debian's nginx.conf). With one worker nginx itself is the limit of the
# corral targets (about 23 µs of its CPU a request); gunicorn, CPU-bound, does better with one
# (a second nginx worker takes CPU from it): the goal rows show each, and each at its best.
# Environment: BUILD, ROUNDS (5), SECONDS_PER_RUN (5), CONNS (32), WARMUP (1), CONFIG (2x1),
# GUNICORN (gunicorn), IDLE (10000), RESULTS=FILE keeps the raw runs. Time: about ROUNDS x
# (WARMUP + SECONDS_PER_RUN) x 8. Everything lives in a temp dir; every process started here is
# stopped by PID on exit, error or Ctrl-C. Unix sockets and 127.0.0.1 only.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
CONFIG=${CONFIG:-2x1}
GUNICORN=${GUNICORN:-gunicorn}
export PYTHONDONTWRITEBYTECODE=1
hello="Hello, World!"

need_built "$bench" "$corral"
[[ "$CONFIG" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "CONFIG: '$CONFIG' is not PROCESSESxTHREADS"
for t in "$GUNICORN" wrk nginx curl; do
    command -v "$t" >/dev/null || die "$t not found: contrib/install-deps.sh --bench"
done
np=${CONFIG%x*} nt=${CONFIG#*x}

bench_init
results=$tmp/results
: >"$results"

# ---- servers ----
corral_args=("${corral_root[@]}" --wsgi-file "$here/apps/hello.py" --processes "$np"
    --threads "$nt")
free_port || die "no free port"
pc=$free
start corral-http "tcp:$pc" "$tmp/ch.pid" INT "$corral" "${corral_args[@]}" \
    --listen "http:tcp:127.0.0.1:$pc" --listen "http:unix:$tmp/ch.sock" --chmod 0666 \
    --pidfile "$tmp/ch.pid" || die "corral (http) did not start"
corral_http_pid=$srv_pid
start corral-fcgi "$tmp/cf.sock" "$tmp/cf.pid" INT "$corral" "${corral_args[@]}" \
    --listen "fastcgi:unix:$tmp/cf.sock" --chmod 0666 --pidfile "$tmp/cf.pid" ||
    die "corral (fastcgi) did not start"
corral_fcgi_pid=$srv_pid
free_port || die "no free port"
pg=$free
# Two gunicorns: one on TCP (direct), one on a unix socket (nginx), like corral's two listeners.
start gunicorn-tcp "tcp:$pg" "$tmp/gt.pid" TERM "$GUNICORN" --workers "$np" \
    --worker-class sync --bind "127.0.0.1:$pg" --chdir "$here/apps" --pid "$tmp/gt.pid" \
    hello:application || die "gunicorn did not start"
gunicorn_tcp_pid=$srv_pid
start gunicorn-unix "$tmp/gu.sock" "$tmp/gu.pid" TERM "$GUNICORN" --workers "$np" \
    --worker-class sync --bind "unix:$tmp/gu.sock" --chdir "$here/apps" --pid "$tmp/gu.pid" \
    hello:application || die "gunicorn did not start"
gunicorn_unix_pid=$srv_pid

# ---- nginx: the FastCGI site from lib.sh, then the two proxy_pass sites ----
nginx_add "fcgi" "$tmp/cf.sock" fastcgi
proxy_site() { # NAME SOCKET
    free_port || die "no free port"
    port[$1]=$free
    ntargets+=("$1")
    cat >>"$tmp/nginx/sites.conf" <<EOF
    upstream $1-http { server unix:$2; keepalive 32; }
    server {
        listen 127.0.0.1:$free;
        location / {
            proxy_pass http://$1-http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
EOF
}
proxy_site "corral-http" "$tmp/ch.sock"
proxy_site "gunicorn" "$tmp/gu.sock"
nginx_up "$hello" || die "nginx did not start"

# ---- a second nginx with worker_processes auto: the same sites on ports of their own ----
n2=$tmp/nginx-auto
mkdir -p "$n2/tmp"
sed -e "s|^worker_processes [^;]*;|worker_processes auto;|" -e "s|$tmp/nginx/|$n2/|g" \
    "$tmp/nginx/nginx.conf" >"$n2/nginx.conf"
declare -A port2
cp "$tmp/nginx/sites.conf" "$n2/sites.conf"
for t in "${ntargets[@]}"; do
    free_port || die "no free port"
    port2[$t]=$free
    sed -i "s|listen 127.0.0.1:${port[$t]};|listen 127.0.0.1:$free;|" "$n2/sites.conf"
done
start nginx-auto "tcp:${port2[${ntargets[0]}]}" /nonexistent TERM \
    nginx -p "$n2" -e "$n2/error.log" -c "$n2/nginx.conf" || die "nginx (auto) did not start"

# ---- targets: LABEL -> URL and the PID whose process tree is the server ----
declare -A url root
add() { # LABEL URL ROOT: probed with curl (gunicorn answers HTTP/1.0 with HTTP/1.0)
    if [ "$(curl -s -m 5 -o "$tmp/probe.body" -w '%{http_code}' "$2")" = 200 ] &&
        [ "$(cat "$tmp/probe.body")" = "$hello" ]; then
        url[$1]=$2 root[$1]=$3
        targets+=("$1")
    else
        say "$bench_name: $1 does not answer 200 $hello (no figure)"
    fi
}
targets=()
add "direct corral http $CONFIG" "http://127.0.0.1:$pc/" "$corral_http_pid"
add "direct gunicorn sync ${np}w" "http://127.0.0.1:$pg/" "$gunicorn_tcp_pid"
for nw in 1 auto; do
    for t in "${ntargets[@]}"; do
        p=${port[$t]}
        [ "$nw" = auto ] && p=${port2[$t]}
        case $t in
        fcgi) add "nginx $nw -> corral fastcgi keep-conn $CONFIG" "http://127.0.0.1:$p/" \
            "$corral_fcgi_pid" ;;
        corral-http) add "nginx $nw -> corral http keepalive $CONFIG" "http://127.0.0.1:$p/" \
            "$corral_http_pid" ;;
        gunicorn) add "nginx $nw -> gunicorn sync ${np}w" "http://127.0.0.1:$p/" \
            "$gunicorn_unix_pid" ;;
        esac
    done
done

say "$ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), wrk -t1 -c$CONNS, ${#targets[@]} targets"
for round in $(seq "$ROUNDS"); do
    in_order "$round" "${targets[@]}"
    for t in "${order[@]}"; do
        wrk_run "$round" "$t" "${url[$t]}" "${root[$t]}"
    done
done

# ---- tables ----
echo
echo "corral http listener vs gunicorn, hello app, $CONFIG, medians of $ROUNDS runs" \
    "(nginx N: worker_processes N):"
echo
md_row target "req/s" "p50 ms" "p99 ms" "server CPU µs/resp" errors
md_row --- ---: ---: ---: ---: ---:
for t in "${targets[@]}"; do
    med_cols "$t"
    md_row "$t" "${cols[@]}" "$(errsum "$t")"
done
rps() { med "$1" 2; }
echo
md_row goal ratio target
md_row --- ---: ---:
md_row "direct: corral http / gunicorn" \
    "$(ratio "$(rps "direct corral http $CONFIG")" "$(rps "direct gunicorn sync ${np}w")")" ">= 4"
for nw in 1 auto; do
    md_row "nginx $nw: corral http / gunicorn" \
        "$(ratio "$(rps "nginx $nw -> corral http keepalive $CONFIG")" \
            "$(rps "nginx $nw -> gunicorn sync ${np}w")")" ">= 3"
done
# Each at its better nginx: gunicorn's is one worker (a second takes CPU from its workers).
best() { printf '%s\n' "$(rps "nginx 1 -> $1")" "$(rps "nginx auto -> $1")" | sort -g | tail -1; }
md_row "nginx, each at its best: corral http / gunicorn" \
    "$(ratio "$(best "corral http keepalive $CONFIG")" "$(best "gunicorn sync ${np}w")")" ">= 3"
for nw in 1 auto; do
    md_row "nginx $nw: corral http / corral fastcgi keep-conn" \
        "$(ratio "$(rps "nginx $nw -> corral http keepalive $CONFIG")" \
            "$(rps "nginx $nw -> corral fastcgi keep-conn $CONFIG")")" ">= 0.95"
done
[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"
check_errors
status=$?

# ---- idle keep-alive connections: no thread each ----
IDLE=${IDLE:-10000}
[ "$IDLE" -gt 0 ] || exit $status
free_port || die "no free port"
pi=$free
start corral-idle "tcp:$pi" "$tmp/ci.pid" INT "$corral" "${corral_root[@]}" \
    --wsgi-file "$here/apps/hello.py" --processes 2 --threads 2 --max-conns 8192 \
    --listen "http:tcp:127.0.0.1:$pi" --pidfile "$tmp/ci.pid" || die "corral (idle) did not start"
idle_pid=$srv_pid
python3 - "$pi" "$IDLE" <<'PY' || status=1
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
req = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"
conns, t0 = [], time.monotonic()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    data = b""
    while not data.endswith(b"Hello, World!"):
        b = s.recv(4096)
        if not b:
            sys.exit("idle: connection %d closed: %r" % (i, data))
        data += b
    conns.append(s)
opened = time.monotonic() - t0
t1 = time.monotonic()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(req)
reply = s.recv(4096)
ms = (time.monotonic() - t1) * 1000
ok = reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"Hello, World!")
closed = 0
for c in conns:
    c.setblocking(False)
    try:
        if c.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
print("idle: %d kept connections opened in %.1f s; %d closed by corral since; a new request "
      "answered %s in %.1f ms" % (n, opened, closed, "200" if ok else "WRONG", ms))
sys.exit(0 if ok and closed == 0 else 1)
PY
rss=0
for w in $(workers_of "$idle_pid"); do rss=$((rss + $(rss_kib "$w"))); done
say "idle: the 2 workers' RSS with $IDLE idle connections: $((rss / 1024)) MiB"
exit $status
