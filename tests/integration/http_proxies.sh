#!/bin/bash
# http_proxies.sh -- HAProxy (mode http), Caddy (reverse_proxy) and Apache
# (mod_proxy_http) in front of corral's http listener, each with its
# connections to corral kept and reused: the checks every front end passes
# (frontend_checks), a streamed response, a chunked request body.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-300}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need curl curl
need haproxy haproxy
need caddy caddy

P=$(free_port)
H=$T/h.sock
start_corral --listen "http:tcp:127.0.0.1:$P" --listen "http:unix:$H" --handler "$DEMO_SO" \
    --processes 2 --threads 4 --chmod 0666 || finish
ERROR_LOGS="$CORRAL_LOG"

# Distinct REMOTE_PORTs over 40 requests through the front end on PORT: the
# TCP connections to corral it opened.
upstream_conns() {
    for i in $(seq 1 40); do
        curl -s "http://127.0.0.1:$1/params?i=$i" | sed -n 's/^REMOTE_PORT=//p'
    done | sort -u | wc -l
}

# ---------------------------------------------------------------- HAProxy

PH=$(free_port)
cat >"$T/haproxy.cfg" <<CFG
global
    maxconn 512
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend f
    bind 127.0.0.1:$PH
    # HAProxy answers a raw non-ASCII byte in the URI with its own 400;
    # nginx and corral take them (frontend_checks sends some).
    option accept-invalid-http-request
    default_backend corral
backend corral
    http-reuse always
    server c1 127.0.0.1:$P
CFG
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.out" 2>&1 </dev/null &
HAPROXY_PID=$!
_track "$HAPROXY_PID"
if wait_until 10 port_open "$PH"; then
    frontend_checks "haproxy" "$PH"
    stream_check "haproxy" "$PH"
    chunked_echo_check "haproxy" "http://127.0.0.1:$PH/echo"
    expect_lt "haproxy: 40 requests over a few reused connections" "$(upstream_conns "$PH")" 9
else
    fail "start haproxy" "$(cat "$T/haproxy.out")"
fi

# ---------------------------------------------------------------- Caddy

PC=$(free_port)
mkdir -p "$T/caddy"
cat >"$T/Caddyfile" <<CFG
{
    admin off
    auto_https off
    storage file_system $T/caddy
}
# Any Host (the checks send Host: localhost): a port-only site address.
:$PC {
    bind 127.0.0.1
    reverse_proxy 127.0.0.1:$P {
        flush_interval -1
        # Caddy 2.6 cuts an answer given before the request body was passed
        # on, now and then, for any backend (README, "Caddy"): as the README
        # says, buffer the body.
        buffer_requests
    }
}
CFG
XDG_DATA_HOME=$T/caddy XDG_CONFIG_HOME=$T/caddy HOME=$T/caddy \
    caddy run --config "$T/Caddyfile" --adapter caddyfile >"$T/caddy.out" 2>&1 </dev/null &
CADDY_PID=$!
_track "$CADDY_PID"
if wait_until 15 port_open "$PC"; then
    frontend_checks "caddy" "$PC"
    stream_check "caddy" "$PC"
    chunked_echo_check "caddy" "http://127.0.0.1:$PC/echo"
    expect_lt "caddy: 40 requests over a few reused connections" "$(upstream_conns "$PC")" 9
else
    fail "start caddy" "$(tail -n 20 "$T/caddy.out")"
fi

# ---------------------------------------------------------------- Apache

PA=$(free_port)
PAU=$(free_port)
start_apache "
Listen 127.0.0.1:$PA
Listen 127.0.0.1:$PAU
<VirtualHost 127.0.0.1:$PA>
    ProxyPass \"/\" \"http://127.0.0.1:$P/\" enablereuse=on
</VirtualHost>
<VirtualHost 127.0.0.1:$PAU>
    ProxyPass \"/\" \"unix:$H|http://localhost/\"
</VirtualHost>
" || finish
ERROR_LOGS="$CORRAL_LOG $T/apache-error.log"
frontend_checks "apache proxy_http" "$PA"
chunked_echo_check "apache proxy_http" "http://127.0.0.1:$PA/echo"
expect_lt "apache proxy_http: 40 requests over a few reused connections" "$(upstream_conns "$PA")" 20
frontend_checks "apache proxy_http unix" "$PAU"

unexpected=$(unexpected_lines "$CORRAL_LOG" | grep -E ' (error|crit) ')
expect_eq "no unexpected errors in corral's log" "" "$unexpected"

finish
