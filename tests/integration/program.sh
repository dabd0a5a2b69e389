#!/bin/bash
# program.sh -- --fastcgi-program: corral runs existing FastCGI programs
# (Debian's php-cgi, a libfcgi program built from tests/apps/fcgi_program.c)
# and forwards nginx's requests to them. Behind real nginx with
# fastcgi_keep_conn: a PHP app (a page, a form, a session counter, an
# upload, a slow page), 32 kept connections on 2 programs with no request
# refused, a slow page that stops nothing else, a program killed and
# respawned, harakiri, recycling by count (corral's and php-cgi's
# PHP_FCGI_MAX_REQUESTS), a reload with zero failed requests, the programs'
# stderr in the error log, and a program that cannot start. With one worker
# process corral keeps a connection to each program (FCGI_KEEP_CONN): fewer
# connections than requests, none kept with two worker processes, a killed
# program's connection not reused, dropped at once when a second worker
# process starts, and the slow page, the 32 kept connections and the respawn
# again with it.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-180}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
need nginx nginx-light
need curl curl
need php-cgi php8.2-cgi
need cc build-essential
need cgi-fcgi libfcgi-bin
[ -e /usr/include/fcgiapp.h ] || { fail "requirement: libfcgi-dev" "apt-get install libfcgi-dev"; finish; }

PHP_DIR=$top_srcdir/tests/apps/php
PROG=$T/fcgi_program
cc -O2 -o "$PROG" "$top_srcdir/tests/apps/fcgi_program.c" -lfcgi 2>"$T/cc.err"
check "the libfcgi program builds" test -x "$PROG" || finish
mkdir -p "$T/sessions" "$T/uploads"

F=$T/f.sock
PK=$(free_port) PN=$(free_port)
LOAD=$top_srcdir/tests/integration/program_load.py

# php-cgi as Debian ships it, OPcache on; sessions and uploads in $T.
PHP_CMD="php-cgi -d opcache.enable=1 -d session.save_path=$T/sessions -d upload_tmp_dir=$T/uploads"
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PHP_CMD" \
    --program-processes 2 --processes 2 --threads 8 --control "$T/ctl.sock" || finish
PHP_MASTER=$CORRAL_PID PHP_LOG=$CORRAL_LOG

# The parameters nginx sends for a PHP script.
FCGI_PHP="include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;"
start_nginx "
    upstream corral_keep {
        server unix:$F;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$PK;
        root $PHP_DIR;
        location ~ \.php\$ {
            $FCGI_PHP
            fastcgi_pass corral_keep;
            fastcgi_keep_conn on;
        }
    }
    server {
        listen 127.0.0.1:$PN;
        root $PHP_DIR;
        location ~ \.php\$ {
            $FCGI_PHP
            fastcgi_pass unix:$F;
        }
    }
" || finish

# A program in a sleep (the slow pages) is in a request: its kernel wait
# channel names the sleep.
program_sleeps() { [ -n "$1" ] && grep -q nanosleep "/proc/$1/wchan" 2>/dev/null; }
any_program_sleeps() {
    local p
    for p in $(pgrep -P "$CORRAL_PID" -x "$1"); do program_sleeps "$p" && return 0; done
    return 1
}
programs() { pgrep -P "$PHP_MASTER" -x php-cgi | sort -n | tr '\n' ' ' | sed 's/ $//'; }
wait_until 10 test "$(programs | wc -w)" = 2
PROGS=$(programs)
expect_eq "two php-cgi programs are children of the master" 2 "$(echo "$PROGS" | wc -w)"
p1=${PROGS%% *}
check "php-cgi got its socket as fd 0" test -S "/proc/$p1/fd/0" -o "$(readlink "/proc/$p1/fd/0" | cut -d: -f1)" = socket
check "php-cgi has PHP_FCGI_CHILDREN=0" grep -qz '^PHP_FCGI_CHILDREN=0$' "/proc/$p1/environ"
check "... and PHP_FCGI_MAX_REQUESTS=0 (no exit after php-cgi's default 500)" \
    grep -qz '^PHP_FCGI_MAX_REQUESTS=0$' "/proc/$p1/environ"
sockdir=$(dirname "$(grep -o '/[^ ]*corral-programs-[^/ ]*' "$PHP_LOG" | head -1)/x")
for port in $PK $PN; do
    curl_req "http://127.0.0.1:$port/index.php?a=1"
    expect_eq "GET /index.php on port $port: 200" 200 "$HTTP_CODE"
    expect_match "the page ran in php-cgi" '^hello php pid=[0-9]+' "$(head -1 "$T/body")"
done
# Apache as PHP-FPM is usually set up (mod_proxy_fcgi, SetHandler), pointed
# at corral's socket; php-cgi, unlike PHP-FPM, reads SCRIPT_FILENAME as a
# path, so Apache sends it as one (GENERIC, not its "proxy:fcgi://..." form).
PA=$(free_port)
start_apache "
Listen 127.0.0.1:$PA
<VirtualHost 127.0.0.1:$PA>
    DocumentRoot $PHP_DIR
    ProxyFCGIBackendType GENERIC
    <FilesMatch \"\\.php\$\">
        SetHandler \"proxy:unix:$F|fcgi://localhost/\"
    </FilesMatch>
</VirtualHost>
" || finish
curl_req "http://127.0.0.1:$PA/index.php?a=1"
expect_eq "behind Apache (mod_proxy_fcgi, SetHandler): 200" 200 "$HTTP_CODE"
expect_match "... the page ran in php-cgi" '^hello php pid=[0-9]+' "$(head -1 "$T/body")"
curl_req "http://127.0.0.1:$PA/form.php" -d 'name=Ana&color=red'
expect_eq "... a form POST through Apache" $'name=Ana\ncolor=red' "$(cat "$T/body")"

curl_req "http://127.0.0.1:$PK/status.php"
expect_eq "PHP's Status: 404 reaches the client" 404 "$HTTP_CODE"
expect_eq "PHP's header reaches the client" yes "$(head_value X-From-Php)"
curl_req "http://127.0.0.1:$PK/form.php" -d 'name=Ana%20Li&color=blue'
expect_eq "a form POST: 200" 200 "$HTTP_CODE"
expect_eq "the form's fields arrive" $'name=Ana Li\ncolor=blue' "$(cat "$T/body")"
for n in 1 2 3; do
    curl_req "http://127.0.0.1:$PK/session.php" -b "$T/jar" -c "$T/jar"
done
expect_eq "a session counter counts 3 across programs" "count=3" "$(cat "$T/body")"
head -c 300000 /dev/urandom >"$T/upfile"
curl_req "http://127.0.0.1:$PK/upload.php" -F "file=@$T/upfile"
expect_eq "an upload: 200" 200 "$HTTP_CODE"
expect_eq "the uploaded file arrives whole" "size=300000 sha256=$(sha_file "$T/upfile")" "$(tr '\n' ' ' <"$T/body" | sed 's/ $//')"

# The connections php-cgi got requests on (conn.php names each by its
# socket's inode) for N sequential requests through nginx keep-conn.
conns() { # N -> "pid=... conn=socket:[...]" lines
    local urls=() i
    for i in $(seq 1 "$1"); do urls+=("http://127.0.0.1:$PK/conn.php"); done
    curl -sS -m 20 "${urls[@]}" 2>/dev/null
}
distinct_conns() { grep -o 'conn=socket:\[[0-9]*\]' | sort -u | wc -l; }
conns 20 >"$T/conns2"
expect_eq "with 2 worker processes: 20 requests answered by php-cgi" 20 \
    "$(grep -c '^pid=' "$T/conns2")"
expect_eq "... over 20 connections (none kept: it would pin a program to one process)" 20 \
    "$(distinct_conns <"$T/conns2")"

# slow_page_beside TAG PREFIX : while a 4 s page runs through nginx on
# $PK, 20 other requests are all answered (another program serves them);
# PREFIX opens the first and last check names.
slow_page_beside() {
    local tag=$1 pre=$2 slow
    curl -sS -m 30 -o "$T/slow$tag" "http://127.0.0.1:$PK/slow.php?s=4" 2>/dev/null &
    slow=$!
    wait_until 10 any_program_sleeps php-cgi
    "$PY" "$LOAD" "$PK" /index.php 4 5 >"$T/during$tag" 2>&1
    expect_eq "${pre}20 requests while a slow page runs: all 200" "ok 20" "$(grep '^ok' "$T/during$tag")"
    check "... and the slow page was still running after them" alive "$slow"
    wait "$slow"
    expect_match "${pre}the slow page completes" '^slow done after 4 s' "$(cat "$T/slow$tag")"
}

# 32 kept connections from nginx, 2 programs: every request is served.
"$PY" "$LOAD" "$PK" /index.php 32 20 >"$T/load32" 2>&1
expect_eq "32 keep-alive clients x 20 requests through nginx keep-conn: all 200" "ok 640" "$(grep '^ok' "$T/load32")"
expect_eq "... none failed" "failed 0" "$(grep '^failed' "$T/load32")"
# Both programs serve when requests overlap: 8 clients x 4 pages of 50 ms each
# (a page that answers at once may never meet another on a loaded host).
"$PY" "$LOAD" "$PK" "/slow.php?ms=50" 8 4 >"$T/both" 2>&1
expect_eq "... 8 clients x 4 pages of 50 ms: both programs served" "ok 32 pids 2" \
    "$(grep -E '^(ok|pids)' "$T/both" | tr '\n' ' ' | sed 's/ $//')"

# A slow page stops nothing else: while it runs, the other program serves.
slow_page_beside "" ""

# A program killed with SIGKILL is respawned; the next requests succeed.
victim=$(programs | cut -d' ' -f1)
kill -KILL "$victim"
wait_until 10 grep -q "FastCGI program [01] (pid $victim) was killed by signal 9" "$PHP_LOG"
check "the master logged the program's death" grep -q "(pid $victim) was killed by signal 9" "$PHP_LOG"
wait_until 10 test "$(programs | wc -w)" = 2
expect_eq "two programs run again" 2 "$(programs | wc -w)"
check_not "the killed program is not among them" grep -qw "$victim" <<<"$(programs)"
"$PY" "$LOAD" "$PK" /index.php 4 10 >"$T/after" 2>&1
expect_eq "40 requests after the respawn: all 200" "ok 40" "$(grep '^ok' "$T/after")"

# A reload under load: new programs, zero failed requests.
before=$(programs)
"$PY" "$LOAD" "$PK" /index.php 8 0 4 >"$T/reload" 2>&1 &
load=$!
sleep 1
kill -HUP "$PHP_MASTER"
wait "$load"
expect_eq "a reload under load (4 s of 8 clients): no request failed" "failed 0" \
    "$(grep '^failed' "$T/reload")"
check "... and requests were served" grep -qE '^ok [1-9]' "$T/reload"
old_re=$(echo "$before" | tr ' ' '|')
renewed() { [ "$(programs | wc -w)" = 2 ] && ! grep -qwE "$old_re" <<<"$(programs)"; }
wait_until 15 renewed
after=$(programs)
expect_eq "after the reload two programs run" 2 "$(echo "$after" | wc -w)"
check_not "... none of them an old one" grep -qwE "$(echo "$before" | tr ' ' '|')" <<<"$after"

# php-cgi's own PHP_FCGI_MAX_REQUESTS: it exits, corral respawns it, no
# request fails.
stop_corral "$PHP_MASTER"
check "the master stopped its programs" test -z "$(pgrep -x php-cgi -P "$PHP_MASTER")"
check_not "the sockets' directory is removed at the stop" test -d "$sockdir"
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PHP_CMD" \
    --program-processes 2 --processes 1 --threads 4 --env PHP_FCGI_MAX_REQUESTS=3 || finish
"$PY" "$LOAD" "$PK" /index.php 2 15 >"$T/phpmax" 2>&1
expect_eq "PHP_FCGI_MAX_REQUESTS=3: 30 requests, all 200" "ok 30" "$(grep '^ok' "$T/phpmax")"
expect_match "... served by more than 2 php-cgi processes" '^pids ([3-9]|[1-9][0-9])' "$(grep '^pids' "$T/phpmax")"
stop_corral

# One worker process: it keeps a connection to each program.
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PHP_CMD" \
    --program-processes 2 --processes 1 --threads 4 || finish
PHP_MASTER=$CORRAL_PID
wait_until 10 test "$(programs | wc -w)" = 2
# Kept connections are allowed once the master saw its single worker run.
kept_twice() { [ "$(conns 2 | distinct_conns)" = 1 ]; }
wait_until 10 kept_twice
conns 40 >"$T/conns1"
expect_eq "one worker process: 40 requests through nginx keep-conn answered by php-cgi" 40 \
    "$(grep -c '^pid=' "$T/conns1")"
expect_match "... over at most one connection per program" '^[12]$' "$(distinct_conns <"$T/conns1")"
"$PY" "$LOAD" "$PK" /index.php 32 20 >"$T/keep32" 2>&1
expect_eq "... 32 keep-alive clients x 20 requests: all 200" "ok 640" "$(grep '^ok' "$T/keep32")"
"$PY" "$LOAD" "$PK" "/slow.php?ms=50" 8 4 >"$T/keep-both" 2>&1
expect_eq "... 8 clients x 4 pages of 50 ms: both programs served" "ok 32 pids 2" \
    "$(grep -E '^(ok|pids)' "$T/keep-both" | tr '\n' ' ' | sed 's/ $//')"
slow_page_beside 1 "... "
# The program that holds the kept connection is killed: its connection is
# not used again, the next requests are served by the others.
wait_until 10 kept_twice
victim=$(conns 1 | sed -n 's/^pid=\([0-9]*\) .*/\1/p')
kill -KILL "$victim"
conns 10 >"$T/conns-after"
expect_eq "a kept program killed: the 10 requests after it are answered by php-cgi" 10 \
    "$(grep -c '^pid=' "$T/conns-after")"
check_not "... none by the killed one" grep -q "^pid=$victim " "$T/conns-after"
check_not "... and no request failed" \
    grep -qE "connection ended before END_REQUEST|sending the (request|body) failed" "$CORRAL_LOG"
wait_until 10 test "$(programs | wc -w)" = 2
conns 10 >"$T/conns-respawn"
expect_eq "... after its respawn 10 requests answered" 10 "$(grep -c '^pid=' "$T/conns-respawn")"
# A second worker process (SIGTTIN): the first drops its idle kept
# connections at once, without a request, so that no program is pinned.
held() { # the connections the programs hold (fd 0 is their listening socket)
    local p n=0
    for p in $(programs); do
        n=$((n + $(find "/proc/$p/fd" -lname 'socket:*' ! -name 0 2>/dev/null | wc -l)))
    done
    echo "$n"
}
wait_until 10 kept_twice
check "the programs hold the kept connections" test "$(held)" -ge 1
kill -TTIN "$CORRAL_PID"
wait_until 10 test "$(pgrep -P "$CORRAL_PID" -x corral | wc -l)" = 2
wait_until 5 test "$(held)" = 0
expect_eq "a second worker process: the kept connections are closed with no request" 0 "$(held)"
"$PY" "$LOAD" "$PK" /index.php 32 10 >"$T/scaled" 2>&1
expect_eq "... then 32 keep-alive clients x 10 requests: all 200" "ok 320" \
    "$(grep '^ok' "$T/scaled")"
conns 20 >"$T/conns-scaled"
expect_eq "... and 20 requests over 20 connections" 20 "$(distinct_conns <"$T/conns-scaled")"
stop_corral

# The libfcgi program: corral's recycling by count, stderr, harakiri.
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PROG" \
    --program-processes 2 --processes 1 --threads 4 --max-requests 5 --harakiri 3 || finish
expect_eq "FCGI_GET_VALUES: connections of the pool, requests of the 2 programs" \
    "$((1 * 1024)) 2" "$(fcgi_get_values "unix:$F")"
for i in $(seq 1 12); do
    curl -sS -m 10 "http://127.0.0.1:$PN/hello.php" >>"$T/hellos" 2>&1
done
expect_eq "--max-requests 5: 12 requests answered" 12 "$(grep -c '^hello from' "$T/hellos")"
expect_match "... by more than 2 program processes" '^([3-9]|[1-9][0-9])$' "$(sort -u "$T/hellos" | wc -l)"
wait_until 5 grep -q "served 5 requests: recycling it" "$CORRAL_LOG"
check "... the master logged the recycling after 5 requests" grep -q "served 5 requests: recycling it" "$CORRAL_LOG"
check_not "... never after more" grep -qE "served ([6-9]|[1-9][0-9]+) requests" "$CORRAL_LOG"

# A program that writes its answer while it reads the body: corral reads
# while it sends, or both would wait for ever. (From libfcgi's cgi-fcgi,
# which sends the whole body: nginx stops sending a body once the answer
# begins.)
head -c 3000000 /dev/urandom >"$T/big"
env -i PATH="$PATH" REQUEST_METHOD=POST REQUEST_URI=/echo CONTENT_LENGTH=3000000 \
    timeout 20 cgi-fcgi -bind -connect "$F" <"$T/big" >"$T/echo-big" 2>"$T/echo-big.err"
expect_eq "a 3 MB body echoed while it is read: cgi-fcgi exits 0" 0 "$?"
"$PY" -c 'import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\r\n\r\n")
open(sys.argv[2], "wb").write(d[i + 4:] if i >= 0 else b"")' "$T/echo-big" "$T/echo-big.body"
expect_eq "... byte-exact" "$(sha_file "$T/big")" "$(sha_file "$T/echo-big.body")"
curl_req "http://127.0.0.1:$PN/stderr.php"
expect_eq "the program's own status (201) passes" 201 "$HTTP_CODE"
wait_until 5 grep -q "a line on stderr" "$CORRAL_LOG"
check "the program's stderr is in the error log with its index and pid" \
    grep -qE "FastCGI program [01] \(pid [0-9]+\): a line on stderr" "$CORRAL_LOG"
check "... escaped" grep -qF 'with\x1b an escape' "$CORRAL_LOG"
check "its FCGI_STDERR record too" grep -q "FastCGI program [01]: a FastCGI stderr record" "$CORRAL_LOG"

curl -sS -m 30 -o "$T/stuck" -w '%{http_code}' "http://127.0.0.1:$PN/slow.php?20" >"$T/stuck.code" 2>/dev/null &
stuck=$!
wait_until 10 any_program_sleeps fcgi_program
for i in 1 2 3 4; do
    curl -sS -m 10 "http://127.0.0.1:$PN/hello.php" >>"$T/beside" 2>&1
done
expect_eq "while a program is stuck, 4 requests are served" 4 "$(grep -c '^hello from' "$T/beside")"
wait "$stuck"
expect_eq "--harakiri 3: the stuck request gets 504" 504 "$(cat "$T/stuck.code")"
check "harakiri is logged" grep -q "harakiri: FastCGI program" "$CORRAL_LOG"
for i in 1 2 3 4; do
    curl -sS -m 10 "http://127.0.0.1:$PN/hello.php" >>"$T/after-h" 2>&1
done
expect_eq "after harakiri, 4 requests are served" 4 "$(grep -c '^hello from' "$T/after-h")"
check "the worker was not ended by harakiri" test -z "$(grep 'worker .* ended by harakiri' "$CORRAL_LOG")"
stop_corral

# Every program busy past --io-timeout: 503, and the busy one goes on.
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PROG" \
    --program-processes 1 --processes 1 --threads 4 --io-timeout 1 || finish
curl -sS -m 30 -o "$T/busy" "http://127.0.0.1:$PN/slow.php?3" 2>/dev/null &
busy=$!
# Not a fixed pause: on a loaded machine the slow request may not have
# reached the program yet. The program is busy once it sleeps in it.
wait_until 10 program_sleeps "$(pgrep -P "$CORRAL_PID" -x fcgi_program | head -1)"
curl_req "http://127.0.0.1:$PN/hello.php"
expect_eq "the only program busy for longer than --io-timeout: 503" 503 "$HTTP_CODE"
wait "$busy"
expect_match "... and the busy request completes" '^slow done' "$(cat "$T/busy")"
stop_corral

# A program that keeps dying at its start once the pool ran: respawned with
# a back-off (1 s, then 2 s...), corral goes on, and it recovers.
cat >"$T/flaky" <<FLAKY
#!/bin/sh
[ -e "$T/broken" ] && exit 3
exec "$PROG"
FLAKY
chmod 755 "$T/flaky"
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$T/flaky" \
    --program-processes 1 --processes 1 --threads 2 || finish
expect_match "the program serves" '^hello from' "$(curl -sS -m 10 "http://127.0.0.1:$PN/hello.php")"
touch "$T/broken"
pkill -KILL -P "$CORRAL_PID" -x fcgi_program
wait_until 10 grep -q "respawning in 2 s" "$CORRAL_LOG"
check "a program dying at its start is respawned after 1 s" \
    grep -qE "FastCGI program 0 \(pid [0-9]+\) exited with status 3 [0-9]+ ms after it started \(1 times in a row\); respawning in 1 s" "$CORRAL_LOG"
check "... then after 2 s" grep -q "(2 times in a row); respawning in 2 s" "$CORRAL_LOG"
check "corral goes on" alive "$CORRAL_PID"
rm -f "$T/broken"
expect_match "once it can start again it serves" '^hello from' \
    "$(curl -sS -m 20 "http://127.0.0.1:$PN/hello.php")"
stop_corral

# --max-rss: php-cgi is bigger than 4 MiB, so it is recycled; requests go on.
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PHP_CMD" \
    --program-processes 2 --processes 1 --threads 4 --max-rss 4 || finish
wait_until 10 grep -q "over --max-rss" "$CORRAL_LOG"
check "--max-rss 4: a php-cgi over it is recycled" \
    grep -qE "FastCGI program [01] \(pid [0-9]+\): RSS [0-9]+ MiB over --max-rss" "$CORRAL_LOG"
"$PY" "$LOAD" "$PK" /index.php 2 10 >"$T/rss" 2>&1
expect_eq "... and 20 requests meanwhile: all 200" "ok 20" "$(grep '^ok' "$T/rss")"
stop_corral

# As root with --uid: the programs run as the pool's user, their sockets'
# directory is theirs alone.
if [ "$(id -u)" = 0 ]; then
    start_corral --listen "fastcgi:unix:$F" --chmod 0666 --fastcgi-program "$PROG" \
        --program-processes 1 --uid nobody --gid nogroup --chdir "$T" || finish
    wait_until 10 test -n "$(pgrep -P "$CORRAL_PID" -x fcgi_program)"
    prog=$(pgrep -P "$CORRAL_PID" -x fcgi_program | head -1)
    expect_eq "with --uid nobody the program runs as nobody" nobody "$(ps -o user= -p "$prog")"
    expect_eq "... in --chdir" "$T" "$(readlink "/proc/$prog/cwd")"
    dir=$(grep -o '/[^ ]*corral-programs-[^/ ]*' "$CORRAL_LOG" | head -1)
    expect_eq "its sockets' directory: mode 700, owned by nobody" "700 nobody" "$(stat -c '%a %U' "$dir")"
    expect_match "it serves" '^hello from' "$(curl -sS -m 10 "http://127.0.0.1:$PN/hello.php")"
    stop_corral
fi

# A program that cannot start is a start-up error: exit 1, no respawn loop.
run_corral nostart --listen "fastcgi:unix:$T/n.sock" --fastcgi-program "$T/no-such-program" \
    --program-processes 2
expect_eq "a program that cannot be executed: corral exits 1" 1 "$RC"
expect_match "... and says why" "cannot execute $T/no-such-program" "$OUT"
run_corral dies --listen "fastcgi:unix:$T/d.sock" --fastcgi-program "/bin/false" \
    --program-processes 2
expect_eq "a program that exits at once: corral exits 1" 1 "$RC"
expect_match "... and says it cannot start" "it cannot start; not respawning" "$OUT"
run_corral two --listen "fastcgi:unix:$T/d.sock" --fastcgi-program "$PROG" --handler x.so
expect_eq "--fastcgi-program and --handler together are refused" 1 "$RC"

finish
