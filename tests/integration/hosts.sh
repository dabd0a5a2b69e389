#!/bin/bash
# hosts.sh -- several hosts behind one front end, in network namespaces.
#
# Three "host" namespaces (A, B, C) hang on a bridge in a "front" namespace
# (10.213.0.0/24: front .1, hosts .11 .12 .13). Each host runs corral with a
# FastCGI TCP listener on its address, --allow-from the front's address
# only, --health-path and --stop-delay, serving tests/integration/
# hosts_app.py (it answers its host's name). The front runs nginx (upstream
# of the hosts, fastcgi_keep_conn, upstream keepalive, max_fails and
# fastcgi_next_upstream) on 127.0.0.1:8080 and HAProxy (fcgi-app, health
# checks on the health path, L7 retries) on 127.0.0.1:8081. A host outside
# the allow list (C before it is added) is refused.
#
# Under a paced load through both front ends (hosts_load.py, from the front
# namespace), one event at a time: A stopped gracefully (SIGTERM), B
# reloaded (SIGHUP), C added (nginx reload; HAProxy runtime API), A's master
# SIGKILLed (its workers finish and exit), B's link cut (ip link set down).
# For each: the failed requests per front end (0 for stop, reload and add; at
# most the load's connections for the kill and the cut), and for the dead
# hosts the time until each front end stops sending to them, printed.
# Needs root (ip netns), iproute2, nginx, haproxy (contrib/install-deps.sh).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-240}
. "$(dirname "$0")/lib.sh" || { echo "0 passed, 1 failed"; exit 1; }

need_build "$CORRAL"
need ip iproute2
need nginx nginx-light
need haproxy haproxy
need curl curl
if [ "$(id -u)" != 0 ]; then
    fail "requirement: root" "ip netns needs root (CI runs the tests as root)"
    finish
fi

APP=$top_srcdir/tests/integration/hosts_app.py
LOAD=$top_srcdir/tests/integration/hosts_load.py
NET=10.213.0
FRONT_IP=$NET.1
declare -A IP=([A]=$NET.11 [B]=$NET.12 [C]=$NET.13) PID=() LOG=()
NS_FRONT=corral-front-$$
declare -A NS=([A]=corral-a-$$ [B]=corral-b-$$ [C]=corral-c-$$)
PORT=9000 NGX=8080 HAP=8081
CONNS=4 RATE=200 # per front end: 4 kept connections, 200 requests a second
HSOCK=$T/haproxy.sock

# The namespaces go in every exit path: lib.sh's cleanup stops the processes
# (tracked by pid), then this removes the namespaces (and with them the
# bridge and the veth pairs).
eval "$(declare -f _cleanup | sed '1s/_cleanup/_lib_cleanup/')"
_cleanup() {
    _lib_cleanup
    local ns
    for ns in "$NS_FRONT" "${NS[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
}

in_front() { ip netns exec "$NS_FRONT" "$@"; }

# ---------------------------------------------------------------- the network
# net_setup : the namespaces, the bridge, a veth pair per host; fails at the
# first step that fails.
net_setup() {
    set -e
    ip netns add "$NS_FRONT"
    in_front ip link set lo up
    in_front ip link add br0 type bridge
    in_front ip addr add "$FRONT_IP/24" dev br0
    in_front ip link set br0 up
    local h
    for h in A B C; do
        ip netns add "${NS[$h]}"
        ip -n "${NS[$h]}" link set lo up
        ip -n "$NS_FRONT" link add "v$h" type veth peer name eth0 netns "${NS[$h]}"
        ip -n "$NS_FRONT" link set "v$h" master br0 up
        ip -n "${NS[$h]}" addr add "${IP[$h]}/24" dev eth0
        ip -n "${NS[$h]}" link set eth0 up
    done
}
( net_setup ) >"$T/net.out" 2>&1 # not in an if: set -e would be ignored there
if [ $? = 0 ]; then
    ok "netns: front and hosts A, B, C on a bridge ($NET.0/24)"
else
    fail "netns: front and hosts A, B, C on a bridge" "$(cat "$T/net.out")"
    finish
fi

# ---------------------------------------------------------------- the hosts
# fcgi_ping NS ADDR : a FastCGI request to tcp:ADDR:9000 from namespace NS
# gets an answer.
fcgi_ping() { ip netns exec "$1" "$PY" -m lib_protocols ping fastcgi "tcp:$2:$PORT"; }

# start_host NAME : corral in host NAME's namespace; PID[NAME], LOG[NAME].
start_host() {
    local h=$1
    LOG[$h]=$T/corral-$h.log
    ip netns exec "${NS[$h]}" env HOSTS_NAME="$h" "$CORRAL" "${ALLOW_ROOT[@]}" \
        --listen "fastcgi:tcp:${IP[$h]}:$PORT" --allow-from "$FRONT_IP" \
        --wsgi-file "$APP" --processes 2 --threads 4 --health-path /healthz --stop-delay 3 \
        --graceful-timeout 5 --pidfile "$T/corral-$h.pid" --error-log "${LOG[$h]}" \
        >"$T/corral-$h.out" 2>&1 </dev/null &
    PID[$h]=$!
    _track "${PID[$h]}"
    if ! wait_until 10 fcgi_ping "$NS_FRONT" "${IP[$h]}"; then
        fail "host $h: corral answers the front on ${IP[$h]}:$PORT" "$(tail -n 20 "${LOG[$h]}")" \
            "$(tail -n 5 "$T/corral-$h.out")"
        finish
    fi
    ok "host $h: corral answers the front on ${IP[$h]}:$PORT"
}

start_host A
start_host B

# --allow-from: C's address is not the front's; corral closes the connection
# without an answer (and logs the refusal).
ip netns exec "${NS[C]}" "$PY" - "${IP[A]}" "$PORT" >"$T/refused.out" 2>&1 <<'PY'
import socket, sys
from lib_protocols import request
try:
    st, _, _ = request("fastcgi", "tcp:%s:%s" % (sys.argv[1], sys.argv[2]), "GET", "/", timeout=5)
    print("answered %d" % st)
except (OSError, ValueError, IndexError, EOFError) as e:
    print("refused: %r" % e)
PY
expect_match "allow-from: a connection from host C (not the front) gets no answer" \
    '^refused' "$(cat "$T/refused.out")"
check "allow-from: host A logs the refusal of ${IP[C]}" \
    wait_until 5 grep -q "peer ${IP[C]}.*refused: not in allow_from" "${LOG[A]}"

# ---------------------------------------------------------------- nginx
# upstream: zone (the failure state is shared by nginx's workers), keepalive
# (kept FastCGI connections, fastcgi_keep_conn), max_fails=1 fail_timeout=10s
# (one failed try takes a host out for 10 s, then one request tries it again).
# fastcgi_next_upstream error timeout: a refused or reset connection or a host
# that does not answer in time is retried on the next host (nginx never
# retries a request whose answer has begun, nor a POST unless
# non_idempotent is added); tries 3 within 5 s. connect 1 s and read 3 s are
# how long a silent host (a cut link) holds a request.
write_nginx_conf() {
    local servers="" h
    for h in "$@"; do
        servers="$servers        server ${IP[$h]}:$PORT max_fails=1 fail_timeout=10s;
"
    done
    mkdir -p "$T/nginx"
    cat >"$T/nginx.conf" <<EOF
worker_processes 2;
error_log $T/nginx-error.log info;
pid $T/nginx.pid;
events { worker_connections 1024; }
http {
    log_format hosts '\$msec \$request_time "\$upstream_addr" "\$upstream_status" \$status';
    access_log $T/nginx-access.log hosts;
    client_body_temp_path $T/nginx/body;
    fastcgi_temp_path $T/nginx/fastcgi;
    proxy_temp_path $T/nginx/proxy;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    upstream corral_hosts {
        zone corral_hosts 64k;
$servers        keepalive 16;
    }
    server {
        listen 127.0.0.1:$NGX;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass corral_hosts;
            fastcgi_keep_conn on;
            fastcgi_connect_timeout 1s;
            fastcgi_read_timeout 3s;
            fastcgi_next_upstream error timeout;
            fastcgi_next_upstream_tries 3;
            fastcgi_next_upstream_timeout 5s;
        }
    }
}
EOF
}
write_nginx_conf A B
if ! in_front nginx -p "$T/nginx/" -c "$T/nginx.conf" >"$T/nginx.out" 2>&1 \
    || ! wait_until 10 test -s "$T/nginx.pid"; then
    fail "nginx starts in the front namespace" "$(cat "$T/nginx.out")" "$(tail -n 20 "$T/nginx-error.log")"
    finish
fi
NGINX_PID=$(cat "$T/nginx.pid")
_track "$NGINX_PID"

# ---------------------------------------------------------------- HAProxy
# fcgi-app with keep-conn; health checks over FastCGI on corral's health path
# (check-proto follows the server's proto fcgi) every 500 ms, down after 2
# failures, up after 2 successes; observe layer4 + on-error mark-down: a
# refused connection takes the host out at once, before the next check.
# retries/redispatch: a failed connection goes to another host; retry-on
# (L7 retries: HAProxy keeps the request to send it again) adds an empty or
# late answer from a host that died with the request. C is declared but
# disabled: the runtime API enables it ("set server ... state ready").
cat >"$T/haproxy.cfg" <<EOF
global
    stats socket $HSOCK mode 600 level admin
    log stdout format short local0 info
    maxconn 2000
defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 1s
    timeout client 30s
    timeout server 3s
    timeout check 1s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend fe
    bind 127.0.0.1:$HAP
    default_backend corral_hosts
backend corral_hosts
    balance roundrobin
    use-fcgi-app corral
    option httpchk GET /healthz
    http-check expect status 200
    default-server proto fcgi check inter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
    server A ${IP[A]}:$PORT
    server B ${IP[B]}:$PORT
    server C ${IP[C]}:$PORT disabled
fcgi-app corral
    docroot /
    option keep-conn
EOF
ip netns exec "$NS_FRONT" haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 </dev/null &
HAPROXY_PID=$!
_track "$HAPROXY_PID"
hap() { "$PY" "$LOAD" haproxy --sock "$HSOCK" "$@"; }
hap_wait() { "$PY" "$LOAD" haproxy-wait --sock "$HSOCK" "$@"; }
for h in A B; do
    check "haproxy: host $h is UP (health checks on /healthz over FastCGI)" \
        hap_wait --server "corral_hosts/$h" --state UP --timeout 10
done

front_get() { in_front curl -sS -m 5 "http://127.0.0.1:$1/"; }
expect_match "nginx: a request through the front is served by a host" '^host [AB] ' \
    "$(front_get $NGX 2>&1)"
expect_match "haproxy: a request through the front is served by a host" '^host [AB] ' \
    "$(front_get $HAP 2>&1)"

# ---------------------------------------------------------------- the events
# load_start NAME : both loads (nginx, HAProxy) in the front namespace.
load_start() {
    LOAD_PIDS=()
    local fe port
    for fe in nginx haproxy; do
        port=$NGX
        [ $fe = haproxy ] && port=$HAP
        ip netns exec "$NS_FRONT" "$PY" "$LOAD" run --port "$port" --conns "$CONNS" \
            --rate "$RATE" --seconds 40 --out "$T/load-$1-$fe.log" &
        LOAD_PIDS+=($!)
        _track $!
    done
}

load_stop() {
    local p
    for p in "${LOAD_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        _forget_pid "$p"
    done
}

# figures NAME FRONTEND EVENT_MS HOST : the JSON figures of one load in $FIG
# (and in FIG_nginx or FIG_haproxy), printed.
figures() {
    local extra=()
    [ "$2" = nginx ] && extra=(--access "$T/nginx-access.log" --addr "${IP[$4]}")
    FIG=$("$PY" "$LOAD" figures --log "$T/load-$1-$2.log" --event "$3" --host "$4" "${extra[@]}")
    printf -v "FIG_$2" '%s' "$FIG"
    say "$1 via $2: $FIG"
}

# fig_of FRONTEND : the figures of FRONTEND's last load.
fig_of() { local n=FIG_$1; printf '%s' "${!n}"; }

# fig EXPR [JSON] : EXPR (python, the figures in v) of $FIG or JSON.
fig() {
    "$PY" -c 'import json, sys; v = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' \
        "${2:-$FIG}" "$1"
}

# no_failures EVENT : every request of the event's loads answered 200.
no_failures() {
    local fe
    for fe in nginx haproxy; do
        figures "$1" $fe "$EV" "$2"
        expect_eq "$1 via $fe: 0 failed requests of $(fig 'v["requests"]')" 0 "$(fig 'v["failed"]')"
    done
}

# dead_host EVENT HOST LIVE : after HOST died: failed requests per front end at
# most the load's connections (one request in flight on each), the last
# requests of each load served by the LIVE hosts only, nginx's last requests
# not tried on HOST; the times printed.
dead_host() {
    local fe n
    for fe in nginx haproxy; do
        figures "$1" $fe "$EV" "$2"
        n=$(fig 'v["failed"]')
        if [ "$n" -le "$CONNS" ]; then
            ok "$1 via $fe: $n failed requests of $(fig 'v["requests"]') (at most the $CONNS in flight)"
        else
            fail "$1 via $fe: at most $CONNS failed requests" "$FIG"
        fi
        expect_eq "$1 via $fe: the last 100 requests are served by $3 only" "$3" \
            "$(fig '" ".join(sorted(v["served_tail"]))')"
        say "$1 via $fe: $2 served its last request" \
            "$(fig '"%s ms" % v["last_ms"] if v["last_ms"] is not None else "(none)"') after the event"
    done
    FIG=$(fig_of nginx)
    expect_eq "$1: nginx tried none of its last 100 requests on $2" 0 "$(fig 'v["tries_tail"]')"
    say "$1 via nginx: $(fig 'v["tries_after"]') requests tried on $2 after the event, the last one" \
        "begun $(fig 'v["last_try_ms"]') ms after it; the first failed try ended (nginx counts $2" \
        "failed) $(fig 'v["first_fail_ms"]') ms after it"
}

# hap_down EVENT HOST : waits for HAProxy to mark HOST down, prints the time.
hap_down() {
    if hap_wait --server "corral_hosts/$2" --state DOWN --event "$EV" --timeout 10 >"$T/hap-down" 2>&1; then
        ok "$1: haproxy takes $2 out"
        say "$1 via haproxy: $2 DOWN $(cat "$T/hap-down") ms after the event"
    else
        fail "$1: haproxy takes $2 out" "$(cat "$T/hap-down")"
    fi
}

# --- 0: both hosts serve through both front ends
load_start base
sleep 2
load_stop
EV=$(now_ms)
no_failures base A
for fe in nginx haproxy; do
    expect_eq "base via $fe: A and B both serve" "A B" \
        "$(fig '" ".join(sorted(v["served_by"]))' "$(fig_of $fe)")"
done

# --- 1: a graceful stop of A (SIGTERM: the stop delay with the health path at
# 503 while A still serves, then the drain)
load_start stop
sleep 1.5
EV=$(now_ms)
kill -TERM "${PID[A]}"
hap_down stop A
check_not "stop: haproxy took A out while A still served (in its stop delay, before the drain)" \
    grep -q 'stop delay over' "${LOG[A]}"
check "stop: A's corral exits" wait_until 15 gone "${PID[A]}"
wait "${PID[A]}"
expect_eq "stop: A's corral exits 0" 0 "$?"
_forget_pid "${PID[A]}"
sleep 1
load_stop
no_failures stop A
for fe in nginx haproxy; do
    say "stop via $fe: A served its last request $(fig 'v["last_ms"]' "$(fig_of $fe)") ms after SIGTERM"
done
start_host A
check "haproxy: A is UP again" hap_wait --server corral_hosts/A --state UP --timeout 10

# --- 2: a reload of B (SIGHUP: a new generation of workers, the old one drains).
# nginx still leaves A out (fail_timeout after the refusals of its drain): B
# is its only host, nothing can be retried elsewhere.
load_start reload
sleep 1.5
EV=$(now_ms)
kill -HUP "${PID[B]}"
check "reload: B's new generation is done" \
    wait_until 15 grep -q 'reload: generation 2 done' "${LOG[B]}"
sleep 1
load_stop
no_failures reload B
expect_eq "reload: nginx saw no failed try on B (the listener stays, kept connections end cleanly)" \
    None "$(fig 'v["first_fail_ms"]' "$(fig_of nginx)")"
expect_eq "reload: haproxy kept B in service (no health check failed)" 0 \
    "$(grep -c 'corral_hosts/B is DOWN' "$T/haproxy.out")"
for fe in nginx haproxy; do
    expect_match "reload via $fe: B serves after the reload" '^[1-9]' \
        "$(fig 'v["served_tail"].get("B", 0)' "$(fig_of $fe)")"
done

# --- 3: host C added (nginx: a reload with C in the upstream; HAProxy: the
# runtime API takes C out of maintenance, in service once its checks pass)
start_host C
load_start add
sleep 1.5
EV=$(now_ms)
write_nginx_conf A B C
in_front nginx -p "$T/nginx/" -c "$T/nginx.conf" -s reload 2>>"$T/nginx.out"
hap set server corral_hosts/C state ready >/dev/null
check "add: haproxy has C UP" hap_wait --server corral_hosts/C --state UP --timeout 10
sleep 2
load_stop
no_failures add C
for fe in nginx haproxy; do
    FIG=$(fig_of $fe)
    expect_eq "add via $fe: A, B and C serve the last requests" "A B C" \
        "$(fig '" ".join(sorted(v["served_tail"]))')"
    say "add via $fe: $(fig 'v["resent"]') requests found their kept connection to the front" \
        "closed (nginx's reload) and were sent again on a new one"
done

# --- 4: A's master SIGKILLed. Its workers are orphans: they let go of the
# listener at once (new connections are refused), finish the requests in
# flight, close their kept connections and exit within the graceful timeout.
load_start kill
sleep 1.5
A_WORKERS=$(children_of "${PID[A]}")
disown "${PID[A]}" # no "Killed" notice from bash in the middle of the output
EV=$(now_ms)
kill -KILL "${PID[A]}"
hap_down kill A
_forget_pid "${PID[A]}"
expect_match "kill: A had workers" '^[0-9]' "$A_WORKERS"
gone_all() { local w; for w in $A_WORKERS; do gone "$w" || return 1; done; }
check "kill: A's orphaned workers exit by themselves (graceful timeout 5 s)" wait_until 10 gone_all
expect_file_match "kill: A's workers log that the master is gone" \
    "the master \\(pid ${PID[A]}\\) is gone: the listeners are closed" "${LOG[A]}"
for w in $A_WORKERS; do kill -KILL "$w" 2>/dev/null; done
sleep 2
load_stop
dead_host kill A "B C"

# --- 5: B's network cut (ip link set down in B): no refusal, no reset, only
# silence; the front ends find out by their timeouts (nginx: connect 1 s,
# read 3 s; HAProxy: the checks' 1 s timeout, twice).
load_start cut
sleep 1.5
T0=$(now_ms)
ip -n "${NS[B]}" link set eth0 down
EV=$(now_ms) # the link is down from here on (ip may take a while on a busy machine)
say "cut: ip link set down took $((EV - T0)) ms"
hap_down cut B
sleep 4
load_stop
dead_host cut B C

finish
