#!/bin/bash
# cgi.sh -- --cgi ROOT: CGI scripts behind real nginx (fastcgi_pass to
# corral), as fcgiwrap runs them: a shell and a Python script
# (tests/apps/cgi-bin/; a folder "cgi" under tests/apps, which other tests
# put on the Python path, would be imported as the cgi module that Python
# 3.13 removed: Django 3.2 then fails) for GET and POST with the body
# echoed, the RFC 3875
# environment (PATH_INFO, filtered params, HTTP_PROXY dropped), Status:,
# Location: (to the client, and a local redirect re-run inside corral,
# bounded), stderr in the error log, a hanging script and its child killed
# after --cgi-timeout (the process group), a script whose front end went
# away killed, --cgi-max-scripts with queueing and 503; a running script
# holds no thread (64 at once on 1 thread, a fast one answered meanwhile), a
# slow reader of a big answer leaves the script blocked on its pipe (small
# RSS), a reload and a graceful stop while scripts run; the refusals
# (outside ROOT via .. and via a symlink, not executable, a directory),
# --uid, no zombie left; then git's git-http-backend (git clone and git push
# over HTTP through nginx -> corral) and cgit.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-180}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
need nginx nginx-light
need curl curl
need cgi-fcgi libfcgi-bin
need git git
need /usr/lib/git-core/git-http-backend git
need /usr/lib/cgit/cgit.cgi cgit
need apache2 apache2

ROOT=$T/root
mkdir -p "$ROOT/sub" "$T/outside" "$T/hang"
cp -p "$top_srcdir"/tests/apps/cgi-bin/* "$ROOT/"
chmod 755 "$ROOT"/cat.sh "$ROOT"/echo.sh "$ROOT"/echo.py "$ROOT"/hang.sh "$ROOT"/slow.sh "$ROOT"/big.sh "$ROOT"/gate.sh
chmod 644 "$ROOT/noexec.sh"
chmod 777 "$T/hang"
printf '#!/bin/sh\ntouch %s/evil-ran\nprintf "Content-Type: text/plain\\r\\n\\r\\nevil\\n"\n' "$T" >"$T/outside/evil.sh"
chmod 755 "$T/outside/evil.sh"
ln -s "$T/outside/evil.sh" "$ROOT/link.sh"
cp "$ROOT/echo.sh" "$ROOT/setuid.sh"
chmod 4755 "$ROOT/setuid.sh"

F=$T/f.sock
P=$(free_port) PD=$(free_port)
GITROOT=$T/git G=$T/g.sock C=$T/c.sock PG=$(free_port)
start_corral --listen "fastcgi:unix:$F" --chmod 0666 --cgi "$ROOT" --threads 8 \
    --cgi-timeout 3 --cgi-max-scripts 2 --cgi-queue-timeout 1 --cgi-param EXTRA_PARAM \
    --env "HANG_DIR=$T/hang" --cgi-rlimit-cpu 30 --cgi-rlimit-nofile 64 --cgi-rlimit-as 1G || finish
LOG=$CORRAL_LOG
WORKER=$(children_of "$CORRAL_PID")

# Port P: SCRIPT_FILENAME as nginx's fastcgi.conf sets it. Port PD: the stock
# fastcgi_params alone, so corral takes DOCUMENT_ROOT + SCRIPT_NAME.
start_nginx "
    server {
        listen 127.0.0.1:$P;
        root $ROOT;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param EXTRA_PARAM yes;
            fastcgi_param SECRET_PARAM no;
            fastcgi_pass unix:$F;
        }
    }
    server {
        listen 127.0.0.1:$PD;
        root $ROOT;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$F;
        }
    }
    server {
        listen 127.0.0.1:$PG;
        location /git/ {
            fastcgi_split_path_info ^(/git)(/.*)\$;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_param GIT_PROJECT_ROOT $GITROOT;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_pass unix:$G;
        }
        location /cgit/ {
            fastcgi_split_path_info ^(/cgit)(/.*)\$;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME /usr/lib/cgit/cgit.cgi;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_pass unix:$C;
        }
    }
" || finish
B=http://127.0.0.1:$P
line() { grep "^$1=" "$T/body" | head -1 | cut -d= -f2-; }

# ---- GET, the environment
curl_req "$B/echo.sh?x=1" -H 'X-Test: t' -H 'Proxy: http://evil.example:3128'
expect_eq "GET /echo.sh: 200" 200 "$HTTP_CODE"
expect_eq "the script's header reaches the client" shell "$(head_value X-Cgi)"
expect_eq "REQUEST_METHOD" GET "$(line method)"
expect_eq "GATEWAY_INTERFACE" CGI/1.1 "$(line gateway)"
expect_eq "SCRIPT_NAME" /echo.sh "$(line script_name)"
expect_eq "QUERY_STRING" x=1 "$(line query)"
expect_eq "a client header as HTTP_X_TEST" t "$(line x_test)"
expect_eq "HTTP_PROXY (httpoxy) is not passed" unset "$(line http_proxy)"
expect_eq "a param named by --cgi-param passes" yes "$(line extra)"
expect_eq "a front-end param not in the list is dropped" unset "$(line secret)"
expect_eq "the working directory is the script's" "$ROOT" "$(line cwd)"
expect_eq "the script leads its own process group" yes "$(line pgid_is_pid)"
expect_eq "no socket or epoll/signalfd of corral leaks into the script" 0 "$(line leaked)"
expect_eq "--cgi-rlimit-cpu 30, -nofile 64, -as 1G apply (ulimit -t -n -v)" "30 64 1048576" "$(line rlimits)"
expect_eq "no signal blocked in the script (corral's workers block several)" 0000000000000000 "$(line sigblk)"
expect_eq "no signal ignored in the script (corral ignores SIGPIPE)" 0000000000000000 "$(line sigign)"
curl_req "$B/echo.sh/extra/path"
expect_eq "GET /echo.sh/extra/path: 200" 200 "$HTTP_CODE"
expect_eq "... PATH_INFO is the tail past the script" /extra/path "$(line path_info)"
expect_eq "... SCRIPT_NAME is the script's" /echo.sh "$(line script_name)"
expect_eq "... PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO" "$ROOT/extra/path" "$(line path_translated)"
curl_req "http://127.0.0.1:$PD/echo.sh?dr"
expect_eq "without SCRIPT_FILENAME: DOCUMENT_ROOT + SCRIPT_NAME runs the script" 200 "$HTTP_CODE"
expect_eq "... with its query" dr "$(line query)"

# Apache's mod_proxy_fcgi sends SCRIPT_FILENAME as proxy:fcgi://...: corral
# takes DOCUMENT_ROOT + SCRIPT_NAME (here a symlink into ROOT, resolved).
PA=$(free_port)
mkdir -p "$T/adocs"
ln -s "$ROOT" "$T/adocs/cgi"
start_apache "
Listen 127.0.0.1:$PA
<VirtualHost 127.0.0.1:$PA>
    DocumentRoot $T/adocs
    ProxyPass \"/cgi/\" \"unix:$F|fcgi://corral-cgi/\"
</VirtualHost>
" || finish
curl_req "http://127.0.0.1:$PA/cgi/echo.sh?apache=1"
expect_eq "behind Apache (mod_proxy_fcgi): 200" 200 "$HTTP_CODE"
expect_eq "... the script ran with its query" apache=1 "$(line query)"

# ---- POST and the body
curl_req "$B/echo.sh" -d 'a=1&b=two'
expect_eq "POST /echo.sh: 200" 200 "$HTTP_CODE"
expect_eq "... CONTENT_LENGTH" 9 "$(line content_length)"
expect_eq "... the body reaches the script's stdin" 'a=1&b=two' "$(sed -n '/^body:$/{n;p}' "$T/body")"
head -c 3000000 /dev/urandom >"$T/big"
curl_req "$B/echo.py" --data-binary "@$T/big" -H 'Content-Type: application/octet-stream'
expect_eq "POST 3 MB to the Python script: 200" 200 "$HTTP_CODE"
expect_eq "... it read the whole body" "python method=POST len=3000000 sha256=$(sha_file "$T/big")" "$(cat "$T/body")"
# nginx reads no response before it has sent the whole request: corral holds
# the script's output (up to 1 MiB) until the body is read.
head -c 500000 "$T/big" >"$T/half"
curl_req "$B/cat.sh" --data-binary "@$T/half" -H 'Content-Type: application/octet-stream'
expect_eq "500 KB through a script that writes while it reads (cat): 200" 200 "$HTTP_CODE"
expect_eq "... the body comes back whole" "$(sha_file "$T/half")" "$(sha_file "$T/body")"
curl_req "$B/cat.sh" --data-binary "@$T/big" -H 'Content-Type: application/octet-stream'
expect_eq "3 MB through cat: over the 1 MiB held, it ends at the time limit: 504" 504 "$HTTP_CODE"
curl_req "$B/echo.py"
expect_eq "GET the Python script" "python method=GET len=0 sha256=$(printf '' | sha_stdin)" "$(cat "$T/body")"

# ---- Status:, Location:
curl_req "$B/echo.sh?status=418"
expect_eq "Status: 418 from the script" 418 "$HTTP_CODE"
curl_req "$B/echo.py?to=client"
expect_eq "Location: to another site without Status: 302" 302 "$HTTP_CODE"
expect_eq "... with its Location" http://example.com/elsewhere "$(head_value Location)"
curl_req "$B/echo.py?to=local"
expect_eq "a local redirect (Location: /echo.sh?from=local) is run inside corral: 200" 200 "$HTTP_CODE"
expect_eq "... no Location reaches the client" "" "$(head_value Location)"
expect_eq "... the redirect's query" from=local "$(line query)"
expect_eq "... run as a GET" GET "$(line method)"
expect_eq "... with SCRIPT_NAME of the target" /echo.sh "$(line script_name)"
curl_req "$B/echo.py?to=loop"
expect_eq "a local redirect to itself ends after the bound: 500" 500 "$HTTP_CODE"
check "... logged" grep -q "GET /echo.py?to=loop: more than 5 local redirects: 500" "$LOG"

# ---- stderr
curl_req "$B/echo.sh?err=hello-from-stderr"
expect_eq "a script writing to stderr: 200" 200 "$HTTP_CODE"
check "its stderr line is in the error log with the request named" \
    grep -q "cgi GET /echo.sh?err=hello-from-stderr ($ROOT/echo.sh): stderr: script says: hello-from-stderr" "$LOG"
curl_req "$B/echo.sh?esc"
check "a control byte from stderr is escaped in the log" grep -qF 'stderr: esc:\x1b[31mred' "$LOG"
curl_req "$B/echo.sh?flood"
expect_eq "150 stderr lines: 100 are logged" 100 "$(grep -c 'GET /echo.sh?flood .*stderr: flood line' "$LOG")"
check "... and the rest counted in one line" grep -q "GET /echo.sh?flood .*: 50 more stderr lines not logged" "$LOG"

# ---- refusals
curl_req "$B/noexec.sh"
expect_eq "a file that is not executable: 403" 403 "$HTTP_CODE"
check "... logged" grep -q "refused $ROOT/noexec.sh: not executable: 403" "$LOG"
curl_req "$B/sub"
expect_eq "a directory: 403" 403 "$HTTP_CODE"
check "... logged" grep -q "refused $ROOT/sub: a directory: 403" "$LOG"
curl_req "$B/link.sh"
expect_eq "a symlink to a script outside ROOT: 403" 403 "$HTTP_CODE"
check "... logged" grep -q "refused $ROOT/link.sh: outside the --cgi root" "$LOG"
curl_req "$B/setuid.sh"
expect_eq "a set-user-ID script (it would run as its owner): 403" 403 "$HTTP_CODE"
check "... logged" grep -q "refused $ROOT/setuid.sh: set-user-ID or set-group-ID" "$LOG"
curl_req "$B/missing.sh"
expect_eq "no such script: 404" 404 "$HTTP_CODE"
# nginx normalizes "..": the front end's SCRIPT_FILENAME is sent directly.
env -i REQUEST_METHOD=GET SCRIPT_FILENAME="$ROOT/../outside/evil.sh" REQUEST_URI=/dotdot \
    timeout 10 cgi-fcgi -bind -connect "$F" >"$T/dotdot" 2>&1
expect_match "SCRIPT_FILENAME with .. out of ROOT: 403" '^Status: 403' "$(head -1 "$T/dotdot")"
check "... logged" grep -q "refused $ROOT/../outside/evil.sh: outside the --cgi root" "$LOG"
check_not "the script outside ROOT never ran" test -e "$T/evil-ran"

# ---- a hanging script: SIGTERM, then SIGKILL to its group
t0=$(now_ms)
curl_req "$B/hang.sh?h1"
t1=$(now_ms)
expect_eq "a script over --cgi-timeout 3: 504" 504 "$HTTP_CODE"
read -r hpid hchild <"$T/hang/h1.pids"
check "... the script is gone" gone "$hpid"
check "... and its child that ignores SIGTERM too (the group got SIGKILL)" gone "$hchild"
check "the log names the timeout" grep -q "cgi GET /hang.sh?h1 ($ROOT/hang.sh): over --cgi-timeout (3000 ms): SIGTERM to its process group $hpid" "$LOG"
check "... and the SIGKILL" grep -q "cgi GET /hang.sh?h1 .*SIGKILL to its process group $hpid" "$LOG"
expect_lt "... answered within the limit plus the grace (ms)" $((t1 - t0)) 9000

# ---- the front end goes away: the group is killed before the time limit
curl -sS -m 1 -o /dev/null "$B/hang.sh?h2" 2>/dev/null
wait_until 10 test -s "$T/hang/h2.pids"
read -r hpid hchild <"$T/hang/h2.pids"
wait_until 10 grep -q "cgi GET /hang.sh?h2 .*the front end went away: SIGTERM" "$LOG"
check "a script whose client went away: the log says the front end went away" \
    grep -q "cgi GET /hang.sh?h2 ($ROOT/hang.sh): the front end went away: SIGTERM to its process group $hpid" "$LOG"
check_not "... and not that it ran over the time limit" grep -q "GET /hang.sh?h2 .*over --cgi-timeout" "$LOG"
wait_until 10 gone "$hchild"
check "... the script is gone" gone "$hpid"
check "... and its child" gone "$hchild"

# ---- --cgi-max-scripts 2 with a 1 s queue
for i in 1 2 3; do
    curl -sS -m 20 -o "$T/q$i" -w '%{http_code}' "$B/slow.sh?0.6" >"$T/q$i.code" 2>/dev/null &
    eval "qp$i=\$!"
done
wait "$qp1" "$qp2" "$qp3"
expect_eq "3 scripts of 0.6 s at once with 2 allowed: the third waits its turn, all 200" \
    "200 200 200" "$(cat "$T/q1.code") $(cat "$T/q2.code") $(cat "$T/q3.code")"
for i in 1 2 3; do
    curl -sS -m 20 -o "$T/r$i" -w '%{http_code}' "$B/slow.sh?2.5" >"$T/r$i.code" 2>/dev/null &
    eval "rp$i=\$!"
done
wait "$rp1" "$rp2" "$rp3"
expect_eq "3 scripts of 2.5 s at once: 2 run, the third gets 503 after the 1 s queue" \
    "200 200 503" "$(for i in 1 2 3; do cat "$T/r$i.code"; echo; done | sort | tr '\n' ' ' | sed 's/ $//')"
check "... logged" grep -q "2 scripts running (--cgi-max-scripts) for 1000 ms: 503" "$LOG"

# ---- no zombie, no script left
sleep 0.5
expect_eq "no zombie child in the worker" "" "$(ps --ppid "$WORKER" -o stat= | grep Z)"
expect_eq "no script left running under the worker" "" "$(ps --ppid "$WORKER" -o pid= | tr -d ' ')"

# ---- as root only with --allow-root; --uid
timeout 10 "$CORRAL" --cgi "$ROOT" --listen "fastcgi:unix:$T/root.sock" >"$T/root.out" 2>&1 </dev/null
expect_eq "as root without --uid or --allow-root corral refuses to start" 1 "$?"
expect_match "... saying why" 'root' "$(cat "$T/root.out")"
if [ "$(id -u)" = 0 ]; then
    start_corral --listen "fastcgi:unix:$T/u.sock" --chmod 0666 --cgi "$ROOT" --uid nobody || finish
    env -i REQUEST_METHOD=GET SCRIPT_FILENAME="$ROOT/echo.sh" timeout 10 cgi-fcgi -bind -connect "$T/u.sock" >"$T/body" 2>&1
    expect_eq "with --uid nobody the script runs as nobody" "$(id -u nobody)" "$(line uid)"
    stop_corral
fi

run_corral badroot --cgi "$T/no-such-dir" --listen "fastcgi:unix:$T/bad.sock"
expect_eq "a --cgi root that does not exist: corral does not start" 1 "$RC"
expect_match "... and says why" "cgi: the root $T/no-such-dir: No such file or directory" "$OUT"

# ---- a running script holds no thread: 1 process x 1 thread, the worker's
# CGI loop runs them all
N=$T/n.sock
start_corral --listen "fastcgi:unix:$N" --chmod 0666 --cgi "$ROOT" --processes 1 --threads 1 --cgi-max-scripts 80 \
    --cgi-timeout 60 --graceful-timeout 8 --env "HANG_DIR=$T/hang" || finish
NLOG=$CORRAL_LOG
NW=$(children_of "$CORRAL_PID")
# fcgi SCRIPT QUERY : a GET over FastCGI to corral on $N, the answer on stdout.
fcgi() {
    env -i REQUEST_METHOD=GET SCRIPT_FILENAME="$ROOT/$1" QUERY_STRING="$2" REQUEST_URI="/$1?$2" \
        timeout 40 cgi-fcgi -bind -connect "$N"
}
# scripts_running NAME COUNT : at least COUNT scripts NAME run under the worker.
scripts_running() { [ "$(pgrep -c -P "$NW" -f "$ROOT/$1")" -ge "$2" ]; }
spids=()
for i in $(seq 64); do
    fcgi gate.sh "$i" >"$T/s$i" 2>&1 &
    spids+=($!)
done
check "64 waiting scripts run at once on 1 process x 1 thread" wait_until 20 scripts_running gate.sh 64
fcgi echo.sh fast >"$T/fast" 2>&1
check "... and a request to a fast script meanwhile is answered" grep -q '^query=fast' "$T/fast"
check "... while the 64 still run" scripts_running gate.sh 64
expect_eq "... none of them answered yet" "" "$(cat "$T"/s[0-9]*)"
touch "$T/hang/gate"
wait "${spids[@]}"
expect_eq "... then the 64 answer" 64 "$(cat "$T"/s[0-9]* | grep -c '^passed the gate pid')"

# ---- a slow reader: the script waits on its pipe, corral's memory stays small
rss0=$(rss_kb "$NW")
fcgi big.sh 104857600 | { sleep 5; wc -c; } >"$T/bigcount" &
bigp=$!
check "a 100 MB answer to a client that does not read: the script is blocked, not done" \
    wait_until 10 scripts_running big.sh 1
sleep 2
check "... still running after 2 s" scripts_running big.sh 1
expect_lt "... and the worker's RSS grew by little (KiB)" "$(($(rss_kb "$NW") - rss0))" 8192
wait "$bigp"
expect_match "... then every byte goes out once the client reads" '^10485[0-9]{4}$' "$(cat "$T/bigcount")"

# ---- graceful stop and reload while scripts run
spids=()
for i in 1 2 3; do
    fcgi slow.sh 2 >"$T/g$i" 2>&1 &
    spids+=($!)
done
wait_until 10 scripts_running slow.sh 3
kill -HUP "$CORRAL_PID"
wait "${spids[@]}"
expect_eq "a reload while 3 scripts run: each ends and answers" 3 "$(cat "$T"/g[1-3] | grep -c '^slept 2 pid')"
# worker_replaced : the master's one worker is not $NW.
worker_replaced() { [ -n "$(children_of "$CORRAL_PID")" ] && [ "$(children_of "$CORRAL_PID")" != "$NW" ]; }
check "... and a new worker took over" wait_until 15 worker_replaced
NW=$(children_of "$CORRAL_PID")
fcgi echo.sh after >"$T/after" 2>&1
check "... a new script" grep -q '^query=after' "$T/after"
fcgi slow.sh 1 >"$T/stop1" 2>&1 &
sp=$!
fcgi hang.sh stop >"$T/stophang" 2>&1 &
wait_until 10 test -s "$T/hang/stop.pids"
# Both scripts run before the stop (on a loaded machine the short one's
# request may not have been accepted yet: a stop closes the listeners).
wait_until 10 scripts_running slow.sh 1
read -r spid schild <"$T/hang/stop.pids"
kill -TERM "$CORRAL_PID"
wait "$sp"
wait_until 15 gone "$CORRAL_PID"
stop_corral "$CORRAL_PID"
check "a graceful stop while scripts run: one that ends in time answers" grep -q '^slept 1 pid' "$T/stop1"
check "... one that hangs is cut before --graceful-timeout (the log says so)" \
    grep -q "cgi GET /hang.sh?stop .*: the worker is stopping (--graceful-timeout): SIGTERM to its process group $spid" "$NLOG"
check "... its script is gone" gone "$spid"
check "... and its child that ignores SIGTERM too" gone "$schild"

# ---- git-http-backend: clone and push through nginx -> corral
mkdir -p "$GITROOT"
git init -q --bare "$GITROOT/repo.git"
git -C "$GITROOT/repo.git" config http.receivepack true
git init -q "$T/seed"
git -C "$T/seed" -c user.email=t@example.com -c user.name=T commit -q --allow-empty -m "first commit"
git -C "$T/seed" push -q "$GITROOT/repo.git" HEAD:refs/heads/main
git -C "$GITROOT/repo.git" symbolic-ref HEAD refs/heads/main
start_corral --listen "fastcgi:unix:$G" --chmod 0666 --cgi /usr/lib/git-core --threads 4 \
    --cgi-param GIT_PROJECT_ROOT --cgi-param GIT_HTTP_EXPORT_ALL || finish
GLOG=$CORRAL_LOG
printf 'cache-size=0\nvirtual-root=/cgit/\nrepo.url=repo\nrepo.path=%s\n' "$GITROOT/repo.git" >"$T/cgitrc"
start_corral --listen "fastcgi:unix:$C" --chmod 0666 --cgi /usr/lib/cgit --threads 2 \
    --env "CGIT_CONFIG=$T/cgitrc" || finish
export GIT_TERMINAL_PROMPT=0
timeout 60 git clone -q "http://127.0.0.1:$PG/git/repo.git" "$T/clone" >"$T/clone.out" 2>&1
check "git clone over HTTP through nginx -> corral -> git-http-backend" test -d "$T/clone/.git"
expect_eq "... the clone has the commit" "first commit" "$(git -C "$T/clone" log -1 --format=%s 2>/dev/null)"
git -C "$T/clone" -c user.email=t@example.com -c user.name=T commit -q --allow-empty -m "pushed over http"
head -c 200000 /dev/urandom >"$T/clone/blob.bin"
git -C "$T/clone" add blob.bin
git -C "$T/clone" -c user.email=t@example.com -c user.name=T commit -q -m "a 200 KB file"
timeout 60 git -C "$T/clone" push -q origin HEAD:main >"$T/push.out" 2>&1
expect_eq "git push over HTTP: the bare repository has the pushed commits" \
    "a 200 KB file|pushed over http" "$(git -C "$GITROOT/repo.git" log -2 --format=%s main | tr '\n' '|' | sed 's/|$//')"
expect_eq "... and the file" "$(sha_file "$T/clone/blob.bin")" "$(git -C "$GITROOT/repo.git" show main:blob.bin | sha_stdin)"
curl_req "http://127.0.0.1:$PG/cgit/repo/log/"
expect_eq "cgit (Debian's) serves the repository's log: 200" 200 "$HTTP_CODE"
check "... showing the pushed commit" grep -q "pushed over http" "$T/body"
expect_eq "git-http-backend logged no error" "" "$(grep -i ' error ' "$GLOG" | grep -v __corral_test_ping)"

finish
