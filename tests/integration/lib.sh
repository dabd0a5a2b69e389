# lib.sh -- sourced by every integration test (tests/integration/*.sh).
#
# Provides: the paths of the build ($CORRAL, $DEMO_SO, $BAD_ABI_SO), a private
# temporary directory ($T), process helpers that start corral, nginx and
# Apache and stop them again by pid on exit, and assertion helpers that count
# passes and failures. Every script ends with `finish`, which prints exactly
# one line "N passed, M failed" and exits 1 when M > 0.
#
# Environment: top_srcdir and top_builddir (set by `make check`; both default
# to the repository root), TEST_TIME_LIMIT (seconds the whole script may take;
# each script sets its own default before sourcing), KEEP_TMP=1 keeps $T.

set -u

_lib_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$_lib_here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

TEST_NAME=$(basename "$0" .sh)
CORRAL=$top_builddir/corral
DEMO_SO=$top_builddir/tests/apps/demo.so
BAD_ABI_SO=$top_builddir/tests/apps/bad_abi.so
# The system python, not a pyenv shim that may lack the standard library parts
# or differ between users.
PY=/usr/bin/python3
# The Python corral embeds (configure --with-python; `corral --version` names
# it): what a virtualenv for the WSGI tests is made with. The test driver
# stays $PY.
APP_PY=$("$CORRAL" --version 2>/dev/null | sed -n 's/^wsgi: Python [0-9.]* (\(.*\))$/\1/p')
: "${APP_PY:=$PY}"
export PYTHONPATH="$top_srcdir/tests/integration${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

# corral refuses to run an app as root without --uid or --allow-root. The
# tests run as root in CI with their apps in the checkout: every corral they
# start opts in (service.sh checks the refusal and --uid).
ALLOW_ROOT=()
[ "$(id -u)" = 0 ] && ALLOW_ROOT=(--allow-root)

PASSED=0
FAILED=0
_finished=0
_pids=()          # every process we started (masters), stopped on exit
_corral_n=0
_lib_start=$(date +%s)

# ---------------------------------------------------------------- output

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }

ok() {
    PASSED=$((PASSED + 1))
    printf 'ok   %s\n' "$1"
}

# fail NAME [DETAILS...]
fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL %s\n' "$1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/     | /'
    done
}

# check NAME COMMAND... : passes when COMMAND exits 0; on failure shows the
# command and the end of its output.
check() {
    local name=$1
    shift
    local out=$T/.check.out
    if "$@" >"$out" 2>&1; then
        ok "$name"
    else
        local rc=$?
        fail "$name" "command: $* (exit $rc)" "$(tail -n 25 "$out")"
    fi
}

# check_not NAME COMMAND... : passes when COMMAND fails.
check_not() {
    local name=$1
    shift
    if "$@" >"$T/.check.out" 2>&1; then
        fail "$name" "command succeeded but should have failed: $*" "$(tail -n 25 "$T/.check.out")"
    else
        ok "$name"
    fi
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        fail "$1" "expected: $(printf '%q' "$2" | head -c 2000)" "     got: $(printf '%q' "$3" | head -c 2000)"
    fi
}

# expect_match NAME EXTENDED_REGEX ACTUAL
expect_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then
        ok "$1"
    else
        fail "$1" "expected to match: $2" "got: $(printf '%s' "$3" | head -c 3000)"
    fi
}

# expect_no_match NAME EXTENDED_REGEX ACTUAL
expect_no_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then
        fail "$1" "expected NOT to match: $2" "got: $(printf '%s' "$3" | grep -E -- "$2" | head -n 20)"
    else
        ok "$1"
    fi
}

# expect_lt NAME A B : passes when the number A < B (decimals allowed).
expect_lt() {
    if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 < b + 0) }'; then
        ok "$1 ($2 < $3)"
    else
        fail "$1" "expected $2 < $3"
    fi
}

# expect_file_match NAME EXTENDED_REGEX FILE
expect_file_match() {
    if [ -f "$3" ] && grep -Eq -- "$2" "$3"; then
        ok "$1"
    else
        fail "$1" "expected a line matching: $2" "in $3:" "$(tail -n 30 "$3" 2>/dev/null)"
    fi
}

# ---------------------------------------------------------------- requirements

# need COMMAND DEBIAN_PACKAGE : a missing tool is a failure, never a skip;
# the script cannot go on without it, so it ends here.
need() {
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
        fail "requirement: $1" "$1 is not installed: apt-get install $2" \
            "(contrib/install-deps.sh installs every test dependency)"
        finish
    fi
}

need_build() {
    local f
    for f in "$@"; do
        if [ ! -e "$f" ]; then
            fail "requirement: $f" "not built: run make in $top_builddir"
            finish
        fi
    done
}

# ---------------------------------------------------------------- helpers

# A free TCP port on 127.0.0.1.
free_port() {
    "$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

now_ms() { date +%s%3N; }

# wait_until SECONDS COMMAND... : polls COMMAND every 0.1 s; 0 when it
# succeeded within the time, 1 otherwise.
wait_until() {
    local limit=$1
    shift
    local end=$(($(now_ms) + limit * 1000))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ "$(now_ms)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

alive() { kill -0 "$1" 2>/dev/null; }

# gone PID : the process has exited (an unreaped zombie counts as exited).
gone() { ! alive "$1" || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

port_open() {
    "$PY" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.close()' "$1"
}

# The children of PID, space-separated, sorted.
children_of() { pgrep -P "$1" | sort -n | tr '\n' ' ' | sed 's/ $//'; }

# Resident set size of PID in KiB (0 when gone).
rss_kb() {
    local v
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    echo "${v:-0}"
}

# sha256 of a file / of stdin.
sha_file() { sha256sum "$1" | cut -d' ' -f1; }
sha_stdin() { sha256sum | cut -d' ' -f1; }

# The sha256 of the demo's pattern of SIZE bytes (byte i = 'a' + i % 26).
pattern_sha() {
    "$PY" -c 'import sys, hashlib
from lib_protocols import pattern
n = int(sys.argv[1]); h = hashlib.sha256(); off = 0
while off < n:
    k = min(1 << 20, n - off); h.update(pattern(k, off)); off += k
print(h.hexdigest())' "$1"
}

# stop_pid PID [SIGNAL] : signal it (TERM by default), wait up to 5 s, then
# KILL. Returns the exit status when PID is our child, else 0.
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    alive "$pid" || { wait "$pid" 2>/dev/null; return $?; }
    kill -"$sig" "$pid" 2>/dev/null
    local end=$(($(now_ms) + 5000))
    while alive "$pid" && [ "$(now_ms)" -lt "$end" ]; do
        # A zombie child of ours counts as gone.
        [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
        sleep 0.05
    done
    if alive "$pid" && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
}

# _track PID : stop PID on exit. The list is also kept in $T/.pids for the
# watchdog, which must be able to kill everything when the script hangs.
_track() {
    _pids+=("$1")
    echo "$1" >>"$T/.pids"
}

_forget_pid() {
    local p keep=()
    for p in "${_pids[@]}"; do
        [ "$p" != "$1" ] && keep+=("$p")
    done
    _pids=("${keep[@]}")
}

# start_notify_listener SOCKET LOG SECONDS : a stand-in for systemd's
# NOTIFY_SOCKET (Type=notify): a datagram socket at SOCKET whose messages go
# to LOG one per line (fields joined by '|'), until STOPPING=1 or SECONDS of
# silence. Sets NOTIFY_PID (tracked) and returns once SOCKET exists.
start_notify_listener() {
    "$PY" - "$1" "$2" "$3" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(float(sys.argv[3]))
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(msg.replace("\n", "|") + "\n")
        if "STOPPING=1" in msg:
            break
PY
    NOTIFY_PID=$!
    _track "$NOTIFY_PID"
    wait_until 5 test -S "$1"
}

# ---------------------------------------------------------------- corral

# run_corral NAME ARGS... : runs corral in the foreground (bounded to 10 s),
# output in $T/NAME.out and $OUT, exit status in RC.
run_corral() {
    local name=$1
    shift
    timeout 10 "$CORRAL" "${ALLOW_ROOT[@]}" "$@" >"$T/$name.out" 2>&1 </dev/null
    RC=$?
    OUT=$(cat "$T/$name.out")
}

# start_corral ARGS... : runs corral in the background with --pidfile and
# --error-log in $T unless given. Waits up to 10 s for every listener in ARGS
# to answer a request. Sets CORRAL_PID (the master), CORRAL_LOG (error log),
# CORRAL_PIDFILE, CORRAL_OUT (stdout+stderr). Returns 1 (after recording a
# failure with the log) when it does not come up.
start_corral() {
    _corral_n=$((_corral_n + 1))
    local n=$_corral_n args=("$@") a prev="" listens=() has_pid=0 has_log=0
    for a in "${args[@]}"; do
        case $prev in --listen) listens+=("$a") ;; --pidfile) CORRAL_PIDFILE=$a; has_pid=1 ;; --error-log) CORRAL_LOG=$a; has_log=1 ;; esac
        case $a in
            --listen=*) listens+=("${a#--listen=}") ;;
            --pidfile=*) CORRAL_PIDFILE=${a#--pidfile=}; has_pid=1 ;;
            --error-log=*) CORRAL_LOG=${a#--error-log=}; has_log=1 ;;
        esac
        prev=$a
    done
    if [ $has_pid = 0 ]; then
        CORRAL_PIDFILE=$T/corral$n.pid
        args+=(--pidfile "$CORRAL_PIDFILE")
    fi
    if [ $has_log = 0 ]; then
        CORRAL_LOG=$T/corral$n-error.log
        args+=(--error-log "$CORRAL_LOG")
    fi
    CORRAL_OUT=$T/corral$n.out
    "$CORRAL" "${ALLOW_ROOT[@]}" "${args[@]}" >"$CORRAL_OUT" 2>&1 </dev/null &
    CORRAL_PID=$!
    _track "$CORRAL_PID"
    local end=$(($(now_ms) + 10000)) l proto addr pending
    while :; do
        pending=""
        for l in "${listens[@]}"; do
            proto=${l%%:*}
            addr=${l#*:}
            case $addr in
                unix:*|tcp:*) "$PY" -m lib_protocols ping "$proto" "$addr" 2>/dev/null || pending="$pending $l" ;;
            esac
        done
        [ -z "$pending" ] && return 0
        if ! alive "$CORRAL_PID"; then
            wait "$CORRAL_PID" 2>/dev/null
            fail "start corral ${args[*]}" "corral exited with status $? before its listeners answered" \
                "--- output:" "$(tail -n 20 "$CORRAL_OUT")" "--- error log:" "$(tail -n 30 "$CORRAL_LOG" 2>/dev/null)"
            _forget_pid "$CORRAL_PID"
            return 1
        fi
        if [ "$(now_ms)" -ge "$end" ]; then
            fail "start corral ${args[*]}" "listeners not answering after 10 s:$pending" \
                "--- output:" "$(tail -n 20 "$CORRAL_OUT")" "--- error log:" "$(tail -n 30 "$CORRAL_LOG" 2>/dev/null)"
            return 1
        fi
        sleep 0.1
    done
}

# stop_corral [PID] [SIGNAL] : stops it (TERM by default) and its workers;
# sets CORRAL_STATUS to the exit status.
stop_corral() {
    local pid=${1:-$CORRAL_PID} sig=${2:-TERM} kids
    kids=$(children_of "$pid")
    stop_pid "$pid" "$sig"
    CORRAL_STATUS=$?
    _forget_pid "$pid"
    local k
    for k in $kids; do
        alive "$k" && kill -KILL "$k" 2>/dev/null
    done
    return 0
}

# ---------------------------------------------------------------- nginx

# start_nginx HTTP_BODY : writes $T/nginx.conf around HTTP_BODY (what goes
# inside http { }: upstreams and server blocks) and starts nginx with it. The
# workers keep nginx's default user when run as root (nobody): the sockets in
# $T must be reachable by it (corral --chmod 0666; $T is 0755). Waits up to
# 10 s for every "listen 127.0.0.1:PORT" in the body. Sets NGINX_PID.
# start_nginx_reload_front PORT FCGI_SOCK UWSGI_SOCK : nginx on 127.0.0.1:PORT
# in front of corral as the reload tests drive it: /f/ over FastCGI with
# kept connections (upstream keepalive), /u/ over uwsgi.
start_nginx_reload_front() {
    start_nginx "
    upstream corral_fcgi {
        server unix:$2;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$1;
        location /f/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass corral_fcgi;
            fastcgi_keep_conn on;
        }
        location /u/ {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$3;
        }
    }
"
}

start_nginx() {
    need nginx nginx-light
    local body=$1 conf=$T/nginx.conf
    mkdir -p "$T/nginx"
    cat >"$conf" <<EOF
worker_processes 2;
error_log $T/nginx-error.log info;
events { worker_connections 1024; }
http {
    access_log $T/nginx-access.log;
    default_type application/octet-stream;
    client_body_temp_path $T/nginx/body;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    proxy_temp_path $T/nginx/proxy;
    client_max_body_size 0;
    keepalive_timeout 30;
$body
}
EOF
    rm -f "$T/nginx.pid"
    if ! nginx -e "$T/nginx-error.log" -p "$T/nginx/" -c "$conf" -g "pid $T/nginx.pid;" >"$T/nginx.out" 2>&1; then
        fail "start nginx" "$(cat "$T/nginx.out")" "$(tail -n 20 "$T/nginx-error.log" 2>/dev/null)"
        return 1
    fi
    if ! wait_until 10 test -s "$T/nginx.pid"; then
        fail "start nginx" "no pid file after 10 s" "$(tail -n 20 "$T/nginx-error.log")"
        return 1
    fi
    NGINX_PID=$(cat "$T/nginx.pid")
    _track "$NGINX_PID"
    local p
    for p in $(printf '%s\n' "$body" | sed -n 's/.*listen[[:space:]]*127\.0\.0\.1:\([0-9]*\).*/\1/p'); do
        if ! wait_until 10 port_open "$p"; then
            fail "start nginx" "port $p not open after 10 s" "$(tail -n 20 "$T/nginx-error.log")"
            return 1
        fi
    done
    return 0
}

# ---------------------------------------------------------------- Apache

# start_apache BODY : a self-contained Apache config ($T/apache.conf) with
# BODY appended (Listen lines, VirtualHosts, Proxy settings); run in the
# foreground in the background so that its pid is known. As root the
# children run as www-data. Waits up to 10 s for every "Listen 127.0.0.1:PORT"
# in BODY. Sets APACHE_PID.
start_apache() {
    need apache2 apache2
    local body=$1 conf=$T/apache.conf mods=/usr/lib/apache2/modules m
    mkdir -p "$T/apache"
    {
        echo "ServerRoot $T/apache"
        echo "DefaultRuntimeDir $T/apache"
        echo "PidFile $T/apache/apache.pid"
        echo "ErrorLog $T/apache-error.log"
        echo "LogLevel warn"
        echo "Mutex file:$T/apache default"
        echo "ServerName localhost"
        for m in mpm_event authz_core unixd proxy proxy_fcgi proxy_scgi proxy_uwsgi proxy_http log_config; do
            [ -f "$mods/mod_$m.so" ] && echo "LoadModule ${m}_module $mods/mod_$m.so"
        done
        if [ "$(id -u)" = 0 ]; then
            echo "User www-data"
            echo "Group www-data"
        fi
        cat <<EOF
StartServers 2
ServerLimit 4
ThreadsPerChild 64
MaxRequestWorkers 256
ThreadLimit 64
Timeout 30
KeepAlive On
# mod_proxy_uwsgi/scgi leave the client connection open after a backend
# closed mid-response (/fail-late): keep that wait short.
KeepAliveTimeout 2
LogFormat "%h \"%r\" %>s %b %D" short
CustomLog $T/apache-access.log short
<Directory />
    Require all granted
</Directory>
$body
EOF
    } >"$conf"
    if ! apache2 -t -f "$conf" >"$T/apache.out" 2>&1; then
        fail "start apache" "configuration refused:" "$(cat "$T/apache.out")"
        return 1
    fi
    apache2 -f "$conf" -D FOREGROUND >>"$T/apache.out" 2>&1 </dev/null &
    APACHE_PID=$!
    _track "$APACHE_PID"
    local p
    for p in $(printf '%s\n' "$body" | sed -n 's/^[[:space:]]*Listen[[:space:]]*127\.0\.0\.1:\([0-9]*\).*/\1/p'); do
        if ! wait_until 10 port_open "$p"; then
            fail "start apache" "port $p not open after 10 s" "$(cat "$T/apache.out")" "$(tail -n 20 "$T/apache-error.log" 2>/dev/null)"
            return 1
        fi
    done
    return 0
}

# ---------------------------------------------------------------- the end

_cleanup() {
    [ "${_cleaned:-0}" = 1 ] && return
    _cleaned=1
    local p
    for p in "${_pids[@]}"; do
        [ -n "$p" ] || continue
        local kids
        kids=$(children_of "$p")
        stop_pid "$p" TERM
        for k in $kids; do
            alive "$k" && kill -KILL "$k" 2>/dev/null
        done
    done
    _pids=()
    if [ -n "${_watchdog:-}" ]; then
        local w
        w=$(pgrep -P "$_watchdog") # its sleep
        kill "$_watchdog" $w 2>/dev/null
        wait "$_watchdog" 2>/dev/null
        _watchdog=""
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "$TEST_NAME: kept $T"
    else
        rm -rf "$T"
    fi
}

_on_exit() {
    local rc=$?
    if [ $_finished = 0 ]; then
        fail "script ended early (exit $rc)" "see the output above"
        _finished=1
        _cleanup
        echo "$PASSED passed, $FAILED failed"
        exit 1
    fi
    _cleanup
}

_on_timeout() {
    fail "time limit of ${TEST_TIME_LIMIT}s exceeded" "the test was stopped"
    _finished=1
    _cleanup
    echo "$PASSED passed, $FAILED failed"
    exit 1
}

# finish : the summary line, and the exit status.
finish() {
    _finished=1
    _cleanup
    say "took $(($(date +%s) - _lib_start)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

T=$(mktemp -d /tmp/corral-it.XXXXXX) || { echo "mktemp failed"; echo "0 passed, 1 failed"; exit 1; }
chmod 755 "$T"
trap _on_exit EXIT
trap _on_timeout USR1
trap 'fail interrupted; _finished=1; _cleanup; echo "$PASSED passed, $FAILED failed"; exit 1' INT

: "${TEST_TIME_LIMIT:=120}"
# The watchdog asks the script to stop (USR1 runs _on_timeout once the current
# command returns; every command below has its own timeout), then kills it.
# If even that does not end it within 15 s, the watchdog kills what the script
# started (by pid, from $T/.pids), then the script, and removes $T.
(
    sleep "$TEST_TIME_LIMIT"
    kill -USR1 $$
    sleep 15
    echo "$TEST_NAME: stuck after the time limit: killed" >&2
    for p in $(cat "$T/.pids" 2>/dev/null); do
        kill -KILL $(pgrep -P "$p") "$p"
    done
    kill -KILL $$
    rm -rf "$T"
) >/dev/null 2>&1 &
_watchdog=$!

[ -x "$PY" ] || { fail "requirement: /usr/bin/python3" "apt-get install python3 (contrib/install-deps.sh)"; finish; }

# py_checks ARGS... <<'PY' ... PY : runs the python snippet on stdin with
# ARGS in sys.argv[1:]; its report() lines count as checks (ok/FAIL), other
# lines are shown. A snippet that dies counts as one failure. Bounded by
# PY_TIMEOUT seconds (default 60).
py_checks() {
    local out=$T/.py.out line name detail
    timeout "${PY_TIMEOUT:-60}" "$PY" - "$@" >"$out" 2>&1
    local rc=$?
    while IFS= read -r line; do
        case $line in
            "ok	"*) ok "${line#ok	}" ;;
            "FAIL	"*)
                line=${line#FAIL	}
                name=${line%%	*}
                detail=${line#*	}
                [ "$detail" = "$line" ] && detail=""
                fail "$name" "$detail"
                ;;
            *) printf '     %s\n' "$line" ;;
        esac
    done <"$out"
    if [ $rc -ne 0 ]; then
        fail "python snippet exited with status $rc${PY_TIMEOUT:+ (limit ${PY_TIMEOUT}s)}" "$(grep -v -P '^(ok|FAIL)\t' "$out" | tail -n 15)"
    fi
}

# fcgi_get_values ADDR : asks FCGI_GET_VALUES on a new FastCGI connection to
# ADDR ("unix:PATH"); prints "FCGI_MAX_CONNS FCGI_MAX_REQS".
fcgi_get_values() {
    "$PY" - "$1" <<'PY'
import sys
from lib_protocols import (FCGI_GET_VALUES, connect, fcgi_nv, fcgi_parse_nv, fcgi_read_record,
                           fcgi_record)
s = connect(sys.argv[1], timeout=5)
s.sendall(fcgi_record(FCGI_GET_VALUES, 0, fcgi_nv(b"FCGI_MAX_CONNS", b"") +
                      fcgi_nv(b"FCGI_MAX_REQS", b"")))
v = fcgi_parse_nv(fcgi_read_record(s)[3])
s.close()
print(v.get("FCGI_MAX_CONNS"), v.get("FCGI_MAX_REQS"))
PY
}

# ---------------------------------------------------------------- corralctl

# The control client of the build; ctl talks to the socket in $SOCK.
CTL=$top_builddir/corralctl

# ctl ARGS... : corralctl on $SOCK; stdout in $T/ctl.out, stderr in
# $T/ctl.err, exit status in CTL_RC.
ctl() {
    timeout 20 "$CTL" -s "$SOCK" "$@" >"$T/ctl.out" 2>"$T/ctl.err"
    CTL_RC=$?
}

# jq_py EXPR : evaluates the python EXPR with d = the JSON in $T/ctl.out.
jq_py() {
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {"d": d}))' "$T/ctl.out" "$1" 2>&1
}

# ---------------------------------------------------------------- front ends

# curl_req URL [CURL ARGS...] : body in $T/body, head in $T/head, sets
# HTTP_CODE and CURL_RC. Bounded to 60 s.
curl_req() {
    local url=$1
    shift
    HTTP_CODE=$(curl -sS -m 60 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" "$url" 2>"$T/curl.err")
    CURL_RC=$?
}

# head_value NAME : the value of response header NAME in $T/head.
head_value() { grep -i "^$1:" "$T/head" | tail -n 1 | cut -d: -f2- | sed 's/^ *//; s/\r$//'; }

# Random test payloads, made once per script.
make_payloads() {
    [ -f "$T/rand10m" ] && return
    head -c 10485760 /dev/urandom >"$T/rand10m"
    RAND10M_SHA=$(sha_file "$T/rand10m")
    head -c 3000001 /dev/urandom >"$T/rand3m"
    RAND3M_SHA=$(sha_file "$T/rand3m")
    LARGE_SHA=$(pattern_sha 52428800)
    SENDFILE_SHA=$(pattern_sha 8388608)
}

# Requests that fail on purpose (/fail, /fail-late) make the logs report
# errors. The lines the logs in ERROR_LOGS (a space-separated list) gained
# between expected_errors_begin and expected_errors_end are set aside;
# unexpected_lines LOG prints the others.
expected_errors_begin() {
    local f
    _ee_start=()
    for f in ${ERROR_LOGS:-}; do
        _ee_start+=("$(wc -l <"$f" 2>/dev/null || echo 0)")
    done
}
expected_errors_end() {
    local f i=0
    sleep 0.3 # the logs are written around the time the client sees the end
    for f in ${ERROR_LOGS:-}; do
        echo "$f $((${_ee_start[$i]} + 1)) $(wc -l <"$f" 2>/dev/null || echo 0)" >>"$T/.expected-errors"
        i=$((i + 1))
    done
}
unexpected_lines() {
    awk -v log="$1" -v ranges="$T/.expected-errors" '
        BEGIN { n = 0; while ((getline line < ranges) > 0) { split(line, a, " "); if (a[1] == log) { lo[n] = a[2]; hi[n] = a[3]; n++ } } }
        { for (i = 0; i < n; i++) if (FNR >= lo[i] && FNR <= hi[i]) next; print }' "$1" 2>/dev/null
}

# frontend_checks LABEL PORT : the checks every front end/protocol pair
# must pass over HTTP. FRONTEND_SKIP may hold words to leave out: fail-late.
frontend_checks() {
    local L=$1 P=$2 base=http://127.0.0.1:$2 failed_before=$FAILED
    make_payloads

    curl_req "$base/hello"
    expect_eq "$L: GET /hello status" 200 "$HTTP_CODE"
    expect_eq "$L: GET /hello body" "Hello, World!" "$(cat "$T/body")"
    expect_match "$L: the handler's Content-Type header arrives" '^text/plain' "$(head_value Content-Type)"

    local code
    for code in 404 418 503; do
        curl_req "$base/status?code=$code"
        expect_eq "$L: /status?code=$code" "$code" "$HTTP_CODE"
        expect_eq "$L: /status?code=$code body" "status $code" "$(cat "$T/body")"
    done
    curl_req "$base/status?code=302"
    expect_eq "$L: /status?code=302" 302 "$HTTP_CODE"
    expect_match "$L: 302 carries Location" '^(http://[^/]+)?/hello$' "$(head_value Location)"
    curl_req "$base/no/such/route"
    expect_eq "$L: an unknown route is 404" 404 "$HTTP_CODE"

    curl_req "$base/hello" -I
    expect_eq "$L: HEAD /hello status" 200 "$HTTP_CODE"
    py_checks "$P" "$L" <<'PY'
import sys
from lib_protocols import http_request, header, report
port, label = int(sys.argv[1]), sys.argv[2]
st, h, body, _ = http_request(port, "HEAD", "/hello")
report("%s: HEAD has no body (HTTP/1.0, raw)" % label, st == 200 and body == b"", (st, body[:100]))
report("%s: HEAD keeps the Content-Type" % label, (header(h, "Content-Type") or "").startswith("text/plain"), h)
PY

    curl_req "$base/params?a=1&b=%C3%A9t%C3%A9%20x&c=%2F%3F"
    expect_eq "$L: /params status" 200 "$HTTP_CODE"
    expect_file_match "$L: QUERY_STRING arrives percent-encoded and intact" '^QUERY_STRING=a=1&b=%C3%A9t%C3%A9%20x&c=%2F%3F$' "$T/body"
    expect_file_match "$L: REQUEST_METHOD=GET" '^REQUEST_METHOD=GET$' "$T/body"
    expect_file_match "$L: REQUEST_URI with the query" '^REQUEST_URI=/params\?a=1&b=%C3%A9t%C3%A9%20x&c=%2F%3F$' "$T/body"
    curl_req "$base/params?p=1" --data-binary 'hello' -H 'Content-Type: text/x-test'
    expect_file_match "$L: POST: REQUEST_METHOD=POST" '^REQUEST_METHOD=POST$' "$T/body"
    expect_file_match "$L: POST: CONTENT_LENGTH=5" '^CONTENT_LENGTH=5$' "$T/body"
    expect_file_match "$L: POST: CONTENT_TYPE" '^CONTENT_TYPE=text/x-test$' "$T/body"

    py_checks "$P" "$L" <<'PY'
import sys
from lib_protocols import http_request, report
port, label = int(sys.argv[1]), sys.argv[2]
raw = b"/params?q=\xc3\xa9t\xc3\xa9&w=\xe2\x82\xac"
st, _, body, _ = http_request(port, "GET", raw)
report("%s: raw UTF-8 bytes in the URI: status 200" % label, st == 200, st)
report("%s: raw UTF-8 bytes in the query arrive intact" % label,
       b"\nQUERY_STRING=q=\xc3\xa9t\xc3\xa9&w=\xe2\x82\xac\n" in b"\n" + body, body[:600])
PY

    expected_errors_begin
    curl_req "$base/fail"
    expect_eq "$L: /fail answers 500" 500 "$HTTP_CODE"
    case " ${FRONTEND_SKIP:-} " in
        *" fail-late "*) ;;
        *)
            curl_req "$base/fail-late"
            if [ "$CURL_RC" -ne 0 ] || [ "$(stat -c %s "$T/body")" != 1000 ]; then
                ok "$L: /fail-late is not passed off as complete (curl $CURL_RC, $(stat -c %s "$T/body") of 1000 bytes)"
            else
                fail "$L: /fail-late is not passed off as complete" "curl exit 0 with 1000 bytes: $(head -c 100 "$T/body")"
            fi
            ;;
    esac
    expected_errors_end

    curl_req "$base/echo" --data-binary @"$T/rand10m" -H 'Content-Type: application/x-corral-test' -H 'Expect:'
    expect_eq "$L: 10 MiB POST /echo status" 200 "$HTTP_CODE"
    expect_eq "$L: 10 MiB POST echoed byte-exact (sha256)" "$RAND10M_SHA" "$(sha_file "$T/body")"
    expect_match "$L: /echo returns the request's Content-Type" '^application/x-corral-test' "$(head_value Content-Type)"

    curl_req "$base/large?size=52428800"
    expect_eq "$L: 50 MiB /large status" 200 "$HTTP_CODE"
    expect_eq "$L: 50 MiB /large byte-exact (sha256)" "$LARGE_SHA" "$(sha_file "$T/body")"

    curl_req "$base/sendfile?size=8388608"
    expect_eq "$L: /sendfile 8 MiB status" 200 "$HTTP_CODE"
    expect_eq "$L: /sendfile 8 MiB byte-exact (sha256)" "$SENDFILE_SHA" "$(sha_file "$T/body")"

    py_checks "$P" "$L" <<'PY'
import sys
from lib_protocols import http_hammer, report
port, label = int(sys.argv[1]), sys.argv[2]
good, errs, secs = http_hammer(port, 200, 50, timeout=20)
report("%s: 200 requests from 50 concurrent clients all answered correctly (%.1f s)" % (label, secs), good == 200, errs)
PY
    [ "$FAILED" -gt "$failed_before" ] && queued_sockets
}

# After a request went unanswered: the sockets with bytes queued (a request
# nobody read, an answer nobody took) and the listeners' accept queues, to
# tell a lost wake-up from a stalled accept or a front end's own wait.
queued_sockets() {
    ss -tanx 2>/dev/null | awk 'NR == 1 || $3 > 0 || ($2 != "LISTEN" && $4 > 0)' | head -n 40 | sed 's/^/     | ss: /'
}

# stream_check LABEL PORT : /stream?n=3&ms=300 arrives piece by piece.
stream_check() {
    py_checks "$2" "$1" <<'PY'
import sys
from lib_protocols import http_request, report
port, label = int(sys.argv[1]), sys.argv[2]
st, _, body, arrivals = http_request(port, "GET", "/stream?n=3&ms=300", timeout=10)
report("%s: /stream status 200" % label, st == 200, st)
report("%s: /stream body complete" % label, body == b"chunk 0\nchunk 1\nchunk 2\n", body)
# "chunk 0\n" is bytes 0-7, "chunk 2\n" ends at byte 24; the handler sleeps
# 300 ms between chunks. Buffered, both would arrive together at ~0.6 s.
first = next((t for t, n in arrivals if n >= 8), None)
last = next((t for t, n in arrivals if n >= 24), None)
report("%s: /stream arrives piece by piece: chunk 0 at %s s, chunk 2 at %s s" % (label,
       first and round(first, 3), last and round(last, 3)),
       first is not None and last is not None and first < 0.45 and last - first >= 0.45, arrivals)
PY
}

# chunked_echo_check LABEL URL : a chunked POST (no Content-Length from the
# client) is echoed byte-exact.
chunked_echo_check() {
    make_payloads
    curl_req "$2" --data-binary @"$T/rand3m" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' -H 'Expect:'
    expect_eq "$1: chunked POST status" 200 "$HTTP_CODE"
    expect_eq "$1: chunked POST of 3 MB echoed byte-exact (sha256)" "$RAND3M_SHA" "$(sha_file "$T/body")"
}
