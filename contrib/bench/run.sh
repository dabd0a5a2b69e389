#!/usr/bin/env bash
# contrib/bench/run.sh: compare corral's native hello handler with the floor (corral-floor,
# a canned-response server) on uwsgi, SCGI, FastCGI and FastCGI keep-conn, then through nginx.
#
#   BUILD=/path/to/build ROUNDS=5 SECONDS_PER_RUN=5 contrib/bench/run.sh
#
# Direct runs: corral-bench against each target, interleaved (each round runs every target once),
# ROUNDS rounds of SECONDS_PER_RUN seconds after WARMUP seconds. Through nginx: wrk -t1 -c CONNS
# -> nginx (generated config, 127.0.0.1, worker_processes 1, access_log off) -> corral via
# uwsgi_pass and via fastcgi_pass with fastcgi_keep_conn + upstream keepalive 32, and the floor
# the same two ways. Prints the medians (requests/s, p50, p99, server CPU µs per response, errors
# summed over the rounds) and the ratios that matter.
#
# Environment: BUILD (default: the repo root; holds corral, corral-bench,
# contrib/bench/corral-floor and tests/apps/demo.so), ROUNDS (5), SECONDS_PER_RUN (5), CONNS
# (32), WARMUP (1), SKIP_NGINX=1 to skip the nginx part, RESULTS=FILE to keep the raw runs.
# A missing corral is skipped with a message (the floor still runs); nginx and wrk must be
# installed by the caller (apt-get install -y nginx-light wrk). Everything lives in a temp dir;
# every process started here is stopped by PID on exit. Nothing outside the temp dir is touched.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${BUILD:-$(cd "$here/../.." && pwd)}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-1}
SKIP_NGINX=${SKIP_NGINX:-0}

bench=$BUILD/corral-bench
floor=$BUILD/contrib/bench/corral-floor
corral=$BUILD/corral
demo=$BUILD/tests/apps/demo.so

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

for f in "$bench" "$floor"; do
    [ -x "$f" ] || die "$f not found: build first (make), or set BUILD"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/corral-bench.XXXXXX") || die "mktemp failed"
started=() # PID:SIGNAL of everything started here; cleanup stops them and their descendants
fg_pid=    # the corral-bench or wrk being waited for

alive() { # PID: running and not a zombie
    [ -r "/proc/$1/stat" ] && ! awk '{ exit !($0 ~ /\) Z /) }' "/proc/$1/stat" 2>/dev/null
}

tree_of() { # PID...: those PIDs and all their descendants
    ps -e -o pid= -o ppid= | awk -v roots="$*" 'BEGIN { n = split(roots, r, " ")
        for (i = 1; i <= n; i++) in_[r[i]] = 1 }
        { parent[$1] = $2 }
        END { do { grew = 0; for (x in parent) if (!(x in in_) && (parent[x] in in_)) {
            in_[x] = 1; grew = 1 } } while (grew); for (x in in_) print x }'
}

# Stops every process started here: its stop signal, 5 s, then SIGKILL for anything left of
# its tree (collected first, so that workers of a killed master are not left behind).
cleanup() {
    local s p any all
    [ -n "$fg_pid" ] && kill -TERM "$fg_pid" 2>/dev/null
    if [ "${#started[@]}" -gt 0 ]; then
        all=$(tree_of "${started[@]%%:*}")
        for s in "${started[@]}"; do kill "-${s#*:}" "${s%%:*}" 2>/dev/null; done
        for _ in $(seq 50); do
            any=0
            for p in $all; do alive "$p" && any=1; done
            [ "$any" = 0 ] && break
            sleep 0.1
        done
        for p in $all; do
            alive "$p" || continue
            say "run.sh: PID $p did not stop within 5 s: killing it"
            kill -KILL "$p" 2>/dev/null
        done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# runfg OUT CMD...: runs CMD (stdout to OUT, stderr to OUT.err) and waits for it in a way a
# signal interrupts, so the trap runs at once. Returns CMD's exit status.
runfg() {
    local out=$1 rc
    shift
    "$@" >"$out" 2>"$out.err" &
    fg_pid=$!
    wait "$fg_pid"
    rc=$?
    fg_pid=
    return "$rc"
}

# start NAME SOCKET PIDFILE STOPSIG CMD...: runs CMD in the background and waits for SOCKET.
# Sets srv_pid to the server's PID (from PIDFILE when it names a live process). Returns 1 on
# failure.
start() {
    local name=$1 sock=$2 pidfile=$3 sig=$4
    shift 4
    "$@" >"$tmp/$name.log" 2>&1 &
    local pid=$!
    disown "$pid" # no "Killed" notices; cleanup polls /proc instead of waiting
    started+=("$pid:$sig")
    for _ in $(seq 100); do
        [ -S "$sock" ] && break
        alive "$pid" || [ -s "$pidfile" ] || break
        sleep 0.1
    done
    srv_pid=$pid
    if [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; then
        srv_pid=$(cat "$pidfile")
        [ "$srv_pid" != "$pid" ] && started+=("$srv_pid:$sig")
    fi
    if [ ! -S "$sock" ] || ! alive "$srv_pid"; then
        say "run.sh: $name did not start; its output:"
        sed 's/^/    /' "$tmp/$name.log" >&2
        return 1
    fi
    sleep 0.2 # let the workers reach their loops
}

# ---- servers ----
declare -A sock pid # by server name: floor-uwsgi, corral-fastcgi, ...
protos=(uwsgi scgi fastcgi)
for p in "${protos[@]}"; do
    s=$tmp/floor-$p.sock
    start "floor-$p" "$s" /nonexistent TERM "$floor" --proto "$p" --listen "$s" --processes 2 ||
        die "the floor did not start"
    sock[floor-$p]=$s pid[floor-$p]=$srv_pid
done

have_corral=0
if [ ! -x "$corral" ] || [ ! -f "$demo" ]; then
    say "run.sh: $corral or $demo missing: skipping the corral targets (floor only)"
else
    have_corral=1
    for p in "${protos[@]}"; do
        s=$tmp/corral-$p.sock
        # SIGINT: corral's fast stop (SIGTERM drains, up to --graceful-timeout)
        if ! start "corral-$p" "$s" "$tmp/corral-$p.pid" INT "$corral" --listen "$p:unix:$s" \
            --handler "$demo:hello" --processes 2 --threads 1 --pidfile "$tmp/corral-$p.pid"; then
            say "run.sh: skipping the corral targets"
            have_corral=0
            break
        fi
        sock[corral-$p]=$s pid[corral-$p]=$srv_pid
    done
fi
servers=(floor)
[ "$have_corral" = 1 ] && servers+=(corral)

results=$tmp/results # lines: target<TAB>rps<TAB>p50<TAB>p99<TAB>cpu<TAB>errors
: >"$results"
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }

# ---- direct: corral-bench, interleaved ----
kinds=(uwsgi scgi fastcgi fastcgi-kc)
say "direct: $ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), $CONNS connections"
for round in $(seq "$ROUNDS"); do
    for k in "${kinds[@]}"; do
        for srv in "${servers[@]}"; do
            p=${k%-kc} target="$srv $p" extra=()
            [ "$k" = fastcgi-kc ] && target="$srv fastcgi keep-conn" extra=(--keep-conn)
            runfg "$tmp/bench.out" "$bench" --proto "$p" "${extra[@]}" \
                --connect "unix:${sock[$srv-$p]}" -c "$CONNS" -d "$SECONDS_PER_RUN" \
                --warmup "$WARMUP" --expect-status 200 --expect-body-prefix "Hello, World!" \
                --server-pid "${pid[$srv-$p]}" --json
            rc=$? out=$(cat "$tmp/bench.out")
            if [ -z "$out" ]; then
                say "  round $round: $target: corral-bench failed: $(cat "$tmp/bench.out.err")"
                continue
            fi
            [ "$rc" != 0 ] && sed 's/^/    /' "$tmp/bench.out.err" >&2
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$(field rps "$out")" \
                "$(field p50_ms "$out")" "$(field p99_ms "$out")" \
                "$(field server_cpu_us_per_req "$out")" "$(field errors "$out")" >>"$results"
            say "  round $round: $(tail -1 "$results" | tr '\t' ' ')"
        done
    done
done

# ---- through nginx: wrk -> nginx -> backend ----
free_port() { # a port nothing listens on, not handed out before
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        [[ " ${used_ports:-} " == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            used_ports="${used_ports:-} $p"
            echo "$p"
            return 0
        fi
    done
    return 1
}

to_ms() { # wrk latency (850.00us, 1.23ms, 2.00s) -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) \
        n *= 1000; else if (v ~ /m$/) n *= 60000; printf "%.3f", n }'
}

# nginx_site NAME PORT KIND: one server{} block; KIND uwsgi or fastcgi (keep-conn, keepalive).
nginx_site() {
    local name=$1 port=$2 kind=$3 s=${sock[$1-${3}]}
    if [ "$kind" = uwsgi ]; then
        cat <<EOF
    upstream $name-uwsgi { server unix:$s; }
    server {
        listen 127.0.0.1:$port;
        location / {
            uwsgi_param QUERY_STRING \$query_string;
            uwsgi_param REQUEST_METHOD \$request_method;
            uwsgi_param CONTENT_TYPE \$content_type;
            uwsgi_param CONTENT_LENGTH \$content_length;
            uwsgi_param REQUEST_URI \$request_uri;
            uwsgi_param PATH_INFO \$document_uri;
            uwsgi_param DOCUMENT_ROOT \$document_root;
            uwsgi_param SERVER_PROTOCOL \$server_protocol;
            uwsgi_param REQUEST_SCHEME \$scheme;
            uwsgi_param REMOTE_ADDR \$remote_addr;
            uwsgi_param REMOTE_PORT \$remote_port;
            uwsgi_param SERVER_PORT \$server_port;
            uwsgi_param SERVER_NAME \$server_name;
            uwsgi_pass $name-uwsgi;
        }
    }
EOF
    else
        cat <<EOF
    upstream $name-fastcgi { server unix:$s; keepalive 32; }
    server {
        listen 127.0.0.1:$port;
        location / {
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO \$document_uri;
            fastcgi_param REQUEST_URI \$request_uri;
            fastcgi_param DOCUMENT_URI \$document_uri;
            fastcgi_param DOCUMENT_ROOT \$document_root;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
            fastcgi_param REQUEST_SCHEME \$scheme;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx/\$nginx_version;
            fastcgi_param REMOTE_ADDR \$remote_addr;
            fastcgi_param REMOTE_PORT \$remote_port;
            fastcgi_param SERVER_ADDR \$server_addr;
            fastcgi_param SERVER_PORT \$server_port;
            fastcgi_param SERVER_NAME \$server_name;
            fastcgi_keep_conn on;
            fastcgi_pass $name-fastcgi;
        }
    }
EOF
    fi
}

# check_hello PORT: one HTTP/1.0 GET must answer 200 with "Hello, World!".
check_hello() {
    local reply
    reply=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; \
        printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3; cat <&3" 2>/dev/null)
    [[ "$reply" == "HTTP/1.1 200"* && "$reply" == *"Hello, World!"* ]]
}

run_nginx=1
if [ "$SKIP_NGINX" = 1 ]; then
    run_nginx=0
elif ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    say "run.sh: nginx or wrk not installed (apt-get install -y nginx-light wrk): skipping nginx"
    run_nginx=0
fi
ntargets=()
if [ "$run_nginx" = 1 ]; then
    n=$tmp/nginx
    mkdir -p "$n/tmp"
    declare -A port
    {
        echo "worker_processes 1;"
        echo "daemon off;"
        echo "pid $n/nginx.pid;"
        echo "error_log $n/error.log warn;"
        # as root, workers would run as nobody, who cannot reach the sockets in the temp dir
        [ "$(id -u)" = 0 ] && echo "user root;"
        echo "events { worker_connections 4096; }"
        echo "http {"
        echo "    access_log off;"
        for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $n/tmp/$t;"; done
        for srv in "${servers[@]}"; do
            for kind in uwsgi fastcgi; do
                port[$srv-$kind]=$(free_port) || die "no free port"
                nginx_site "$srv" "${port[$srv-$kind]}" "$kind"
                ntargets+=("$srv-$kind")
            done
        done
        echo "}"
    } >"$n/nginx.conf"
    if ! nginx -t -q -p "$n" -e "$n/error.log" -c "$n/nginx.conf" 2>"$tmp/nginx-t.log"; then
        say "run.sh: generated nginx config is invalid:"
        sed 's/^/    /' "$tmp/nginx-t.log" >&2
        exit 1
    fi
    nginx -p "$n" -e "$n/error.log" -c "$n/nginx.conf" 2>"$tmp/nginx.log" &
    started+=("$!:TERM")
    disown "$!"
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/${port[floor-uwsgi]}") 2>/dev/null && break
        sleep 0.1
    done
    checked=()
    for t in "${ntargets[@]}"; do
        if check_hello "${port[$t]}"; then
            checked+=("$t")
        else
            say "run.sh: nginx -> $t does not answer 200 Hello, World!: skipping it"
        fi
    done
    ntargets=("${checked[@]}")
    w_warm=${WARMUP%.*}
    say "nginx: $ROUNDS rounds x ${SECONDS_PER_RUN}s, wrk -t1 -c$CONNS"
    for round in $(seq "$ROUNDS"); do
        for t in "${ntargets[@]}"; do
            srv=${t%%-*} kind=${t#*-}
            label="nginx->$srv uwsgi"
            [ "$kind" = fastcgi ] && label="nginx->$srv fastcgi keepalive"
            url=http://127.0.0.1:${port[$t]}/
            [ "${w_warm:-0}" -gt 0 ] &&
                runfg "$tmp/wrk.out" wrk -t1 -c"$CONNS" -d"${w_warm}s" "$url"
            root_pid=${pid[$srv-$kind]}
            c0=$("$bench" --cpu-of "$root_pid")
            runfg "$tmp/wrk.out" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN%.*}s" --latency "$url"
            out=$(cat "$tmp/wrk.out" "$tmp/wrk.out.err")
            c1=$("$bench" --cpu-of "$root_pid")
            total=$(awk '/ requests in /{ print $1 }' <<<"$out")
            rps=$(awk '/^Requests\/sec:/{ print $2 }' <<<"$out")
            p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
            p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
            errs=$(awk '/Non-2xx/{ e += $NF } /Socket errors/{ gsub(/,/, ""); \
                e += $4 + $6 + $8 + $10 } END { print e + 0 }' <<<"$out")
            if [ -z "$total" ] || [ -z "$rps" ]; then
                say "  round $round: $label: wrk failed: $out"
                continue
            fi
            cpu=null
            [ -n "$c0" ] && [ -n "$c1" ] && [ "$total" -gt 0 ] &&
                cpu=$(awk -v a="$c0" -v b="$c1" -v n="$total" 'BEGIN { printf "%.2f", (b-a)/n }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$(to_ms "$p50")" \
                "$(to_ms "$p99")" "$cpu" "$errs" >>"$results"
            say "  round $round: $(tail -1 "$results" | tr '\t' ' ')"
        done
    done
fi

[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"

# ---- report ----
# med TARGET COLUMN: median of a column over the rounds ("-" when there is none)
med() {
    awk -F'\t' -v t="$1" -v c="$2" '$1 == t && $c != "null" && $c != "" { print $c }' \
        "$results" | sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
errsum() { awk -F'\t' -v t="$1" '$1 == t { e += $6 } END { print e + 0 }' "$results"; }
# fmt PRINTF-FORMAT VALUE: "-" stays "-"
# shellcheck disable=SC2059
fmt() { if [ "$2" = - ]; then echo -; else printf "$1" "$2"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "n/a"; \
    else printf "%.2f", a / b }'; }

echo
echo "corral benchmark: $(nproc) CPUs, $(uname -r), $ROUNDS rounds x ${SECONDS_PER_RUN}s," \
    "$CONNS connections; medians (errors: sum over the rounds)"
printf '%-34s %10s %9s %9s %12s %7s\n' target req/s "p50 ms" "p99 ms" "cpu us/resp" errors
targets=()
for k in uwsgi scgi fastcgi "fastcgi keep-conn"; do
    for srv in floor corral; do targets+=("$srv $k"); done
done
for srv in corral floor; do
    targets+=("nginx->$srv uwsgi" "nginx->$srv fastcgi keepalive")
done
for t in "${targets[@]}"; do
    if ! grep -q "^$t	" "$results"; then
        [[ "$t" == *corral* && "$have_corral" != 1 ]] && continue
        [[ "$t" == nginx* && "$run_nginx" != 1 ]] && continue
        printf '%-34s %10s\n' "$t" "(no result)"
        continue
    fi
    printf '%-34s %10s %9s %9s %12s %7s\n' "$t" "$(fmt %.0f "$(med "$t" 2)")" \
        "$(fmt %.3f "$(med "$t" 3)")" "$(fmt %.3f "$(med "$t" 4)")" \
        "$(fmt %.2f "$(med "$t" 5)")" "$(errsum "$t")"
done

echo
echo "ratios (of medians)"
if [ "$have_corral" = 1 ]; then
    for k in uwsgi scgi fastcgi "fastcgi keep-conn"; do
        printf '  corral/floor CPU per response, %-18s %s\n' "$k:" \
            "$(ratio "$(med "corral $k" 5)" "$(med "floor $k" 5)")"
    done
fi
for srv in "${servers[@]}"; do
    printf '  %-6s fastcgi keep-conn rps / uwsgi rps:     %s\n' "$srv" \
        "$(ratio "$(med "$srv fastcgi keep-conn" 2)" "$(med "$srv uwsgi" 2)")"
done
if [ "$run_nginx" = 1 ]; then
    [ "$have_corral" = 1 ] &&
        printf '  nginx->corral fastcgi keepalive rps / nginx->floor uwsgi rps: %s\n' \
            "$(ratio "$(med "nginx->corral fastcgi keepalive" 2)" "$(med "nginx->floor uwsgi" 2)")"
    printf '  nginx->floor fastcgi keepalive rps / nginx->floor uwsgi rps:  %s\n' \
        "$(ratio "$(med "nginx->floor fastcgi keepalive" 2)" "$(med "nginx->floor uwsgi" 2)")"
fi

total_errors=$(awk -F'\t' '{ e += $6 } END { print e + 0 }' "$results")
if [ "$total_errors" != 0 ]; then
    say "run.sh: $total_errors failed requests: the figures above are not trustworthy"
    exit 1
fi
