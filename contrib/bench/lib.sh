# shellcheck shell=bash
# contrib/bench/lib.sh: what the benchmark scripts in contrib/bench share. Sourced, not run:
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   . "$here/lib.sh"
#   bench_init           # $tmp, traps: every process started through `start` is stopped on exit
#
# Knobs, with their defaults unless the caller set them first: BUILD (the repo root), ROUNDS (5),
# SECONDS_PER_RUN (5), CONNS (32), WARMUP (1), SKIP_NGINX (0); and the paths $bench
# (corral-bench), $corral and $floor (corral-floor) in BUILD.
#
# Processes: `start` runs a server in the background and waits until it listens; `stop` ends one
# before the script does; on exit (normal, error, Ctrl-C, SIGTERM) `bench_cleanup` stops all that
# are left, each by its PID with its own stop signal, waits up to 5 s for them and every
# descendant (collected before the signal, so a dead master's workers are not lost), then
# SIGKILLs what is left, and removes $tmp. `runfg` runs a client (corral-bench, wrk) so that a
# signal interrupts the wait at once.
#
# Measurements: `bench_run` (corral-bench --json) and `wrk_run` append one line per run to the
# file $results (the caller sets it): label, req/s, p50 ms, p99 ms, server CPU µs per response
# ("null" when unknown), errors, separated by tabs. `med`, `errsum` and `has_result` read it back.
# Both runners use the caller's CONNS, SECONDS_PER_RUN and WARMUP and the corral-bench at $bench.
#
# nginx: `nginx_add` writes a config in $tmp/nginx that keeps everything there (pid, logs, temp
# paths), with a server on a free port per backend; `nginx_up` starts nginx and checks each
# server with `check_hello`.
#
# The load and fault figures (connections.sh, slowpeers.sh, chaos.sh, crashstorm.sh, soak.sh,
# fdlimit.sh) share the last part: `corral_up` (corral with the demo handler, a control socket
# and an error log in $tmp), `start_client`/`end_client` (peers.py and the like, stopped by
# PID), `busy_now` (the scoreboard's busy threads), per-process readings and `md_row`.
#
# Needs bash 4.4+ (empty arrays under set -u), procps (ps), awk, sed, mktemp.

bench_name=$(basename "$0")
# The knobs every script reads; a script with another default sets it before sourcing this.
_lib_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${BUILD:-$(cd "$_lib_here/../.." && pwd)} # holds corral, corral-bench, corral-floor
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-1}
SKIP_NGINX=${SKIP_NGINX:-0}
# shellcheck disable=SC2034 # used by the scripts
bench=$BUILD/corral-bench corral=$BUILD/corral floor=$BUILD/contrib/bench/corral-floor
# corral refuses to run an app as root unless told: benchmarks run as root
# on the standard machine, with the app in the checkout.
# shellcheck disable=SC2034 # used by the scripts
corral_root=()
[ "$(id -u)" = 0 ] && corral_root=(--allow-root)
results=${results:-} # the results file; the caller sets it
tmp=
started=() # PID:SIGNAL:GROUP of everything started; GROUP is the PID that `stop` takes
fg_pid=    # the client runfg is waiting for

say() { printf '%s\n' "$*" >&2; }
die() {
    say "$bench_name: $*"
    exit 1
}

# need_built FILE...: each must be an executable of the build, else the script ends here.
need_built() {
    local f
    for f in "$@"; do
        [ -x "$f" ] || die "$f not found: build first (make), or set BUILD"
    done
}

# bench_init: makes $tmp (mode 755, so that nginx workers reach its sockets) and sets the traps.
bench_init() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/corral-${bench_name%.sh}.XXXXXX") || die "mktemp failed"
    chmod 755 "$tmp"
    trap bench_cleanup EXIT
    trap 'trap "" INT TERM; exit 130' INT TERM # one signal is enough; cleanup runs in full
}

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

# stop_entries PID:SIGNAL[:GROUP]...: sends each PID its signal, waits up to 5 s for them and
# their descendants, then SIGKILLs whatever of that tree is left.
stop_entries() {
    local e p any all rest
    [ "$#" -gt 0 ] || return 0
    all=$(tree_of "${@%%:*}")
    for e in "$@"; do
        rest=${e#*:}
        kill "-${rest%%:*}" "${e%%:*}" 2>/dev/null
    done
    for _ in $(seq 50); do
        any=0
        for p in $all; do alive "$p" && any=1; done
        [ "$any" = 0 ] && break
        sleep 0.1
    done
    for p in $all; do
        alive "$p" || continue
        say "$bench_name: PID $p did not stop within 5 s: killing it"
        kill -KILL "$p" 2>/dev/null
    done
    return 0
}

# stop PID: stops what `start` started with srv_pid PID (and its descendants) before the end.
stop() {
    local e keep=() mine=()
    for e in "${started[@]}"; do
        if [ "${e##*:}" = "$1" ]; then mine+=("$e"); else keep+=("$e"); fi
    done
    started=("${keep[@]}")
    stop_entries "${mine[@]}"
}

bench_cleanup() {
    trap '' INT TERM # a second signal (timeout(1) signals the group too) must not cut this short
    [ -n "$fg_pid" ] && kill -TERM "$fg_pid" 2>/dev/null
    stop_entries "${started[@]}"
    started=()
    [ -n "$tmp" ] && rm -rf "$tmp"
}

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

listening() { # READY: a unix socket path, or tcp:PORT on 127.0.0.1
    case $1 in
    tcp:*) (exec 3<>"/dev/tcp/127.0.0.1/${1#tcp:}") 2>/dev/null ;;
    *) [ -S "$1" ] ;;
    esac
}

# start NAME READY PIDFILE STOPSIG CMD...: runs CMD in the background (output in $tmp/NAME.log)
# and waits up to 10 s until READY (a unix socket path or tcp:PORT) accepts. Sets srv_pid to
# the server's PID: the one in PIDFILE when it names a live process (a server that forks to the
# background), else CMD's. STOPSIG is the signal that stops it quickly. Returns 1, with the
# server's output on stderr, when it did not start.
start() {
    local name=$1 ready=$2 pidfile=$3 sig=$4 pid
    shift 4
    "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    disown "$pid" # no "Killed" notices; cleanup polls /proc instead of waiting
    started+=("$pid:$sig:$pid")
    for _ in $(seq 100); do
        listening "$ready" && break
        alive "$pid" || [ -s "$pidfile" ] || break
        sleep 0.1
    done
    srv_pid=$pid
    if [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; then
        srv_pid=$(cat "$pidfile")
        if [ "$srv_pid" != "$pid" ]; then # one group: `stop SRV_PID` ends both
            unset 'started[-1]'
            started+=("$pid:$sig:$srv_pid" "$srv_pid:$sig:$srv_pid")
        fi
    fi
    if ! listening "$ready" || ! alive "$srv_pid"; then
        say "$bench_name: $name did not start; its output:"
        sed 's/^/    /' "$tmp/$name.log" >&2
        return 1
    fi
    sleep 0.2 # let the workers reach their loops
}

field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; } # KEY JSON: a scalar of flat JSON

# bench_run ROUND LABEL ARGS...: one corral-bench run (-c CONNS -d SECONDS_PER_RUN
# --warmup WARMUP --json ARGS...); appends its line to $results and says it. Returns 1 when
# corral-bench printed nothing (then nothing is appended).
bench_run() {
    local round=$1 label=$2 rc out
    shift 2
    runfg "$tmp/bench.out" "$bench" -c "$CONNS" -d "$SECONDS_PER_RUN" --warmup "$WARMUP" \
        --json "$@"
    rc=$? out=$(cat "$tmp/bench.out")
    if [ -z "$out" ]; then
        say "  round $round: $label: corral-bench failed: $(cat "$tmp/bench.out.err")"
        return 1
    fi
    [ "$rc" != 0 ] && sed 's/^/    /' "$tmp/bench.out.err" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$(field rps "$out")" \
        "$(field p50_ms "$out")" "$(field p99_ms "$out")" \
        "$(field server_cpu_us_per_req "$out")" "$(field errors "$out")" >>"$results"
    say "  round $round: $(tail -1 "$results" | tr '\t' ' ')"
}

# probe PROTO SOCKET EXPECT [ARGS...]: short corral-bench runs (2 connections, 0.5 s, up to 3
# tries) whose every response must be 200 with a body starting with EXPECT. Returns 0 when one
# run is all right; else prints why (the first error corral-bench reports) and returns 1.
probe() {
    local proto=$1 sock=$2 expect=$3
    shift 3
    for _ in 1 2 3; do
        runfg "$tmp/probe.out" "$bench" --proto "$proto" --connect "unix:$sock" -c 2 -d 0.5 \
            --warmup 0 --expect-status 200 --expect-body-prefix "$expect" "$@" && return 0
    done
    cat "$tmp/probe.out" "$tmp/probe.out.err" | grep -m1 'first' ||
        tail -1 "$tmp/probe.out.err"
    return 1
}

# free_port: sets free to a port of 127.0.0.1 nothing listens on and not handed out before.
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        [[ " ${used_ports:-} " == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            used_ports="${used_ports:-} $p"
            free=$p
            return 0
        fi
    done
    return 1
}

to_ms() { # wrk latency (850.00us, 1.23ms, 2.00s) -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) \
        n *= 1000; else if (v ~ /m$/) n *= 60000; printf "%.3f", n }'
}

# wrk_run ROUND LABEL URL PID: wrk -t1 -c CONNS for SECONDS_PER_RUN after WARMUP s (whole
# seconds) on URL; the server CPU is that of PID and its descendants. Appends a line to $results
# and says it; returns 1 when wrk gave no figure.
wrk_run() {
    local round=$1 label=$2 url=$3 root=$4 w_warm=${WARMUP%.*} out c0 c1 total rps
    local p50 p99 errs cpu=null
    [ "${w_warm:-0}" -gt 0 ] && runfg "$tmp/wrk.out" wrk -t1 -c"$CONNS" -d"${w_warm}s" "$url"
    c0=$("$bench" --cpu-of "$root")
    runfg "$tmp/wrk.out" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN%.*}s" --latency "$url"
    out=$(cat "$tmp/wrk.out" "$tmp/wrk.out.err")
    c1=$("$bench" --cpu-of "$root")
    total=$(awk '/ requests in /{ print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec:/{ print $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    errs=$(awk '/Non-2xx/{ e += $NF } /Socket errors/{ gsub(/,/, ""); \
        e += $4 + $6 + $8 + $10 } END { print e + 0 }' <<<"$out")
    if [ -z "$total" ] || [ -z "$rps" ]; then
        say "  round $round: $label: wrk failed: $out"
        return 1
    fi
    [ -n "$c0" ] && [ -n "$c1" ] && [ "$total" -gt 0 ] &&
        cpu=$(awk -v a="$c0" -v b="$c1" -v n="$total" 'BEGIN { printf "%.2f", (b-a)/n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$(to_ms "$p50")" \
        "$(to_ms "$p99")" "$cpu" "$errs" >>"$results"
    say "  round $round: $(tail -1 "$results" | tr '\t' ' ')"
}

# nginx: nginx_add SITE... writes the config in $tmp/nginx, nginx_up starts nginx and checks
# every SITE. The config keeps nginx's pid, logs and temp files there, runs NGINX_WORKERS workers
# (1; "auto" is one a CPU, Debian's default) in the foreground and logs no access; the servers are in sites.conf, which it includes.
declare -A port # SITE -> its port on 127.0.0.1
ntargets=()     # the SITEs, then those that answered

# nginx_add SITE SOCKET KIND: adds an upstream and a server for SITE (a name without spaces) on a
# free port (port[SITE]), to the backend at SOCKET (nginx_site); adds SITE to ntargets.
nginx_add() {
    local n=$tmp/nginx t
    if [ ! -e "$n/nginx.conf" ]; then
        mkdir -p "$n/tmp"
        {
            echo "worker_processes ${NGINX_WORKERS:-1};"
            echo "daemon off;"
            echo "pid $n/nginx.pid;"
            echo "error_log $n/error.log warn;"
            # as root, workers would run as nobody, who cannot reach the sockets in the temp dir
            [ "$(id -u)" = 0 ] && echo "user root;"
            echo "events { worker_connections 4096; }"
            echo "http {"
            echo "    access_log off;"
            for t in client_body proxy fastcgi uwsgi scgi; do
                echo "    ${t}_temp_path $n/tmp/$t;"
            done
            echo "    include $n/sites.conf;"
            echo "}"
        } >"$n/nginx.conf"
    fi
    free_port || die "no free port"
    port[$1]=$free
    nginx_site "$1" "$2" "$free" "$3" >>"$n/sites.conf"
    ntargets+=("$1")
}

# nginx_site NAME SOCKET PORT KIND: one upstream NAME-KIND and one server{} on 127.0.0.1:PORT.
# KIND: uwsgi (uwsgi_pass, a connection per request) or fastcgi (fastcgi_keep_conn on and an
# upstream keepalive pool of 32, as in contrib/nginx/corral.conf). WSGI-ready params: FastCGI
# sends SCRIPT_NAME "" and PATH_INFO.
nginx_site() {
    local name=$1 s=$2 p=$3 kind=$4
    if [ "$kind" = uwsgi ]; then
        cat <<EOF
    upstream $name-uwsgi { server unix:$s; }
    server {
        listen 127.0.0.1:$p;
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
        listen 127.0.0.1:$p;
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

# nginx_start: checks the config (nginx -t) and starts nginx on it; waits until the port of the
# first SITE accepts. Sets srv_pid. Returns 1, saying why, when either fails.
nginx_start() {
    local n=$tmp/nginx
    if ! nginx -t -q -p "$n" -e "$n/error.log" -c "$n/nginx.conf" 2>"$n/nginx-t.log"; then
        say "$bench_name: generated nginx config is invalid:"
        sed 's/^/    /' "$n/nginx-t.log" >&2
        return 1
    fi
    start nginx "tcp:${port[${ntargets[0]}]}" /nonexistent TERM \
        nginx -p "$n" -e "$n/error.log" -c "$n/nginx.conf"
}

# check_hello PORT [PREFIX]: one HTTP/1.0 GET / must answer 200 with PREFIX (Hello, World!) in
# the body.
check_hello() {
    local reply
    reply=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; \
        printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3; cat <&3" 2>/dev/null)
    [[ "$reply" == "HTTP/1.1 200"* && "$reply" == *"${2:-Hello, World!}"* ]]
}

# in_order ROUND ITEM...: sets the array order to the ITEMs, reversed on even rounds, so that
# no target always runs first in a round.
in_order() {
    local round=$1 j
    shift
    order=("$@")
    if [ $((round % 2)) = 0 ]; then
        order=()
        for ((j = $#; j >= 1; j--)); do order+=("${!j}"); done
    fi
}

# want_nginx: true unless SKIP_NGINX=1 or nginx or wrk is missing (then it says so).
want_nginx() {
    [ "$SKIP_NGINX" = 1 ] && return 1
    if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
        say "$bench_name: nginx or wrk not installed (contrib/install-deps.sh --bench):" \
            "skipping nginx"
        return 1
    fi
}

# nginx_up PREFIX: nginx_start, then keeps in ntargets the SITEs whose server answers 200 with
# PREFIX (check_hello), saying which do not. Returns 1 when nginx did not start.
nginx_up() {
    local t all=("${ntargets[@]}")
    nginx_start || return 1
    ntargets=()
    for t in "${all[@]}"; do
        if check_hello "${port[$t]}" "$1"; then
            ntargets+=("$t")
        else
            say "$bench_name: nginx -> $t does not answer 200 $1: skipping it"
        fi
    done
    say "nginx: $ROUNDS rounds x ${SECONDS_PER_RUN}s, wrk -t1 -c$CONNS"
}

# ---- reading results back ----
median() { # numbers on stdin, one a line -> their median ("-" when there is none)
    sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# med LABEL COLUMN: median of a column of $results over the rounds ("-" when there is none)
med() {
    awk -F'\t' -v t="$1" -v c="$2" '$1 == t && $c != "null" && $c != "" { print $c }' \
        "$results" | median
}
# shellcheck disable=SC2034 # cols is read by the caller
# med_cols LABEL: sets the array cols to LABEL's medians as printed in the tables: req/s (%.0f),
# p50 ms, p99 ms (%.3f), server CPU µs per response (%.2f); "-" where there is none.
med_cols() {
    cols=("$(fmt %.0f "$(med "$1" 2)")" "$(fmt %.3f "$(med "$1" 3)")"
        "$(fmt %.3f "$(med "$1" 4)")" "$(fmt %.2f "$(med "$1" 5)")")
}
errsum() { awk -F'\t' -v t="$1" '$1 == t { e += $6 } END { print e + 0 }' "$results"; } # LABEL
has_result() { grep -q "^$1	" "$results"; }                                           # LABEL
# fmt PRINTF-FORMAT VALUE: "-" stays "-"
# shellcheck disable=SC2059
fmt() { if [ "$2" = - ]; then echo -; else printf "$1" "$2"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "n/a"; \
    else printf "%.2f", a / b }'; }

# check_errors: false, saying so, when any run in $results counted a failed request.
check_errors() {
    local total
    total=$(awk -F'\t' '{ e += $6 } END { print e + 0 }' "$results")
    [ "$total" = 0 ] && return 0
    say "$bench_name: $total failed requests: the figures above are not trustworthy"
    return 1
}

# ---- the load and fault figures (connections.sh slowpeers.sh chaos.sh crashstorm.sh soak.sh
# fdlimit.sh): corral with a control socket, background clients, per-process readings ----
# shellcheck disable=SC2034 # used by the scripts
peers=$_lib_here/peers.py
EXTRA_ARGS=${EXTRA_ARGS:-} # more corral options (split on spaces), e.g. a newer build's deadlines
DEMO=${DEMO:-$BUILD/tests/apps/demo.so} # the handler: a build older than /crash can take a newer one
corral_wrap=() # a command corral_up runs corral through (fdlimit.sh: a lower open-files limit)

# corral_up NAME PROTO PROCESSES THREADS [OPTION...]: starts corral with the demo handler
# ($DEMO, tests/apps/demo.so: every route) on unix:$tmp/NAME.sock, the control socket $tmp/NAME.ctl,
# the error log $tmp/NAME.err and the pidfile $tmp/NAME.pid, plus EXTRA_ARGS and the OPTIONs.
# Sets srv_pid (the master). Stopped with SIGINT (the fast stop) at exit or by `stop`. The
# command is prefixed with the array corral_wrap when the caller set it (it must exec corral).
corral_up() {
    local name=$1 proto=$2 procs=$3 threads=$4 extra=()
    shift 4
    read -r -a extra <<<"$EXTRA_ARGS"
    rm -f "$tmp/$name.sock" "$tmp/$name.pid"
    start "$name" "$tmp/$name.sock" "$tmp/$name.pid" INT "${corral_wrap[@]}" "$corral" \
        "${corral_root[@]}" \
        --listen "$proto:unix:$tmp/$name.sock" --handler "$DEMO" \
        --processes "$procs" --threads "$threads" --chmod 0666 --control "$tmp/$name.ctl" \
        --error-log "$tmp/$name.err" --pidfile "$tmp/$name.pid" "${extra[@]}" "$@"
}

# start_client NAME CMD...: runs a client (peers.py) in the background, its stdout in
# $tmp/NAME.out, stopped with SIGTERM at exit or by `stop`; waits up to 120 s for its first line
# (peers.py says "ready"). Sets cli_pid. Returns 1, with its stderr, when no line came.
start_client() {
    local name=$1
    shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    cli_pid=$!
    disown "$cli_pid"
    started+=("$cli_pid:TERM:$cli_pid")
    for _ in $(seq 1200); do
        [ -s "$tmp/$name.out" ] && return 0
        alive "$cli_pid" || break
        sleep 0.1
    done
    say "$bench_name: $name gave no line; its stderr:"
    sed 's/^/    /' "$tmp/$name.err" >&2
    return 1
}

# end_client NAME PID: SIGTERM to the client and up to 30 s for its last line (then it is
# killed); prints that line.
end_client() {
    kill -TERM "$2" 2>/dev/null
    for _ in $(seq 300); do alive "$2" || break; sleep 0.1; done
    stop "$2"
    tail -1 "$tmp/$1.out"
}

# jv JSON KEY[.KEY...]: a value of a JSON object (nested keys with dots); "-" when absent.
jv() {
    python3 -c 'import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("-" if v is None else v)' "$1" "$2"
}

workers_of() { pgrep -P "$1" | sort -n | tr '\n' ' '; } # MASTER: its worker PIDs
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo -; } # PID
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }          # PID
nsocks() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }              # PID

# md_row CELL...: one Markdown table row.
md_row() {
    local c line="|"
    for c in "$@"; do line="$line $c |"; done
    printf '%s\n' "$line"
}

# shellcheck disable=SC2034 # used by the scripts
corralctl=$BUILD/corralctl
# busy_now CTL: reads `corralctl --json workers` once; prints the busy threads, the longest
# elapsed_ms among them (0 when none) and the running workers' PIDs with their busy threads
# (PID:BUSY,...); "- - -" when the server did not answer.
busy_now() {
    "$corralctl" -s "$1" -t 2 --json workers 2>/dev/null | python3 -c 'import json, sys
try:
    ws = json.load(sys.stdin)["workers"]
except Exception:
    print("- - -"); sys.exit()
busy = longest = 0
live = []
for w in ws:
    for t in w.get("threads", []):
        if t.get("state") == "busy":
            busy += 1
            longest = max(longest, t.get("elapsed_ms", 0))
    if w.get("state") == "running" and w.get("pid"):
        live.append("%d:%d" % (w["pid"], w.get("busy", 0)))
print(busy, longest, ",".join(live) or "-")'
}
