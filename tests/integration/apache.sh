#!/bin/bash
# apache.sh -- Apache httpd 2.4 (mpm_event) in front of one corral pool:
# mod_proxy_fcgi (plain, and with enablereuse=on on a second vhost),
# mod_proxy_scgi and mod_proxy_uwsgi, all over unix sockets with the
# "unix:/path|scheme://host/" syntax of mod_proxy.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-150}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need apache2 apache2
need curl curl
for m in proxy proxy_fcgi proxy_scgi proxy_uwsgi mpm_event authz_core; do
    if [ ! -f "/usr/lib/apache2/modules/mod_$m.so" ]; then
        fail "requirement: mod_$m" "/usr/lib/apache2/modules/mod_$m.so is missing: apt-get install apache2"
        finish
    fi
done

U=$T/u.sock F=$T/f.sock S=$T/s.sock
PF=$(free_port) PR=$(free_port) PS=$(free_port) PU=$(free_port)

start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --listen "scgi:unix:$S" \
    --handler "$DEMO_SO" --processes 2 --threads 4 --chmod 0666 || finish

# Each ProxyPass needs its own worker name (the part after '|'), else Apache
# shares one worker and its parameters between the two fcgi vhosts.
start_apache "
Listen 127.0.0.1:$PF
Listen 127.0.0.1:$PR
Listen 127.0.0.1:$PS
Listen 127.0.0.1:$PU
<VirtualHost 127.0.0.1:$PF>
    ProxyPass \"/\" \"unix:$F|fcgi://corral-fcgi/\"
</VirtualHost>
<VirtualHost 127.0.0.1:$PR>
    ProxyPass \"/\" \"unix:$F|fcgi://corral-fcgi-reuse/\" enablereuse=on
</VirtualHost>
<VirtualHost 127.0.0.1:$PS>
    ProxyPass \"/\" \"unix:$S|scgi://corral-scgi/\"
</VirtualHost>
<VirtualHost 127.0.0.1:$PU>
    ProxyPass \"/\" \"unix:$U|uwsgi://corral-uwsgi/\"
</VirtualHost>
" || finish

WORKERS_BEFORE=$(children_of "$CORRAL_PID")
ERROR_LOGS="$T/apache-error.log $CORRAL_LOG"

frontend_checks "apache fcgi" "$PF"
# Apache streams a chunked client body to FastCGI without CONTENT_LENGTH.
chunked_echo_check "apache fcgi" "http://127.0.0.1:$PF/echo"

frontend_checks "apache fcgi enablereuse" "$PR"
chunked_echo_check "apache fcgi enablereuse" "http://127.0.0.1:$PR/echo"
# Reused connections: many sequential requests over the kept connections.
py_checks "$PR" <<'PY'
import sys
from lib_protocols import http_hammer, report
good, errs, secs = http_hammer(int(sys.argv[1]), 300, 8, timeout=10)
report("apache fcgi enablereuse: 300 requests over 8 clients on reused connections (%.1f s)" % secs, good == 300, errs)
PY

frontend_checks "apache scgi" "$PS"
frontend_checks "apache uwsgi" "$PU"

expect_eq "no corral worker died during the run" "$WORKERS_BEFORE" "$(children_of "$CORRAL_PID")"
expect_no_match "corral logged no unexpected errors" ' (error|warn) ' "$(unexpected_lines "$CORRAL_LOG")"
expect_no_match "Apache logged no unexpected proxy errors" '\[[a-z_]+:(error|crit|alert|emerg)\]' \
    "$(unexpected_lines "$T/apache-error.log")"

finish
