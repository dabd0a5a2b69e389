#!/bin/bash
# nginx.sh -- real nginx in front of one corral pool that listens on three
# unix sockets, one per protocol: uwsgi_pass, fastcgi_pass (keep-conn, an
# upstream with keepalive) and scgi_pass, each on its own HTTP port.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-150}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need nginx nginx-light
need curl curl

U=$T/u.sock F=$T/f.sock S=$T/s.sock
PU=$(free_port) PF=$(free_port) PS=$(free_port)

start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --listen "scgi:unix:$S" \
    --handler "$DEMO_SO" --processes 2 --threads 4 --chmod 0666 --access-log "$T/corral-access.log" || finish

# Parameters for the unbuffered-body FastCGI location: the stock list, but
# REQUEST_URI fixed to /echo (one value per name).
FCGI_UNBUF_PARAMS=$(grep -v REQUEST_URI /etc/nginx/fastcgi_params)

start_nginx "
    upstream corral_fastcgi {
        server unix:$F;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$PU;
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$U;
        }
        location = /stream {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$U;
            uwsgi_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$PF;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass corral_fastcgi;
            fastcgi_keep_conn on;
        }
        location = /stream {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass corral_fastcgi;
            fastcgi_keep_conn on;
            fastcgi_buffering off;
        }
        location = /echo-unbuffered {
            $FCGI_UNBUF_PARAMS
            fastcgi_param REQUEST_URI /echo;
            fastcgi_pass corral_fastcgi;
            fastcgi_keep_conn on;
            fastcgi_request_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$PS;
        location / {
            include /etc/nginx/scgi_params;
            scgi_pass unix:$S;
        }
        location = /stream {
            include /etc/nginx/scgi_params;
            scgi_pass unix:$S;
            scgi_buffering off;
        }
    }
" || finish

WORKERS_BEFORE=$(children_of "$CORRAL_PID")
ERROR_LOGS="$T/nginx-error.log $CORRAL_LOG"

frontend_checks "nginx uwsgi" "$PU"
stream_check "nginx uwsgi" "$PU"
chunked_echo_check "nginx uwsgi (nginx buffers chunked bodies)" "http://127.0.0.1:$PU/echo"

frontend_checks "nginx fastcgi" "$PF"
stream_check "nginx fastcgi" "$PF"
chunked_echo_check "nginx fastcgi" "http://127.0.0.1:$PF/echo"
# fastcgi_request_buffering off: the chunked body streams through with an
# empty CONTENT_LENGTH; corral must read STDIN to its end.
chunked_echo_check "nginx fastcgi, request buffering off (empty CONTENT_LENGTH)" "http://127.0.0.1:$PF/echo-unbuffered"
curl_req "http://127.0.0.1:$PF/echo-unbuffered" --data-binary @"$T/rand10m" -H 'Expect:'
expect_eq "nginx fastcgi, request buffering off: 10 MiB with Content-Length echoed (sha256)" "$RAND10M_SHA" "$(sha_file "$T/body")"

# nginx's fastcgi_pass sends Content-Type and Content-Length twice; the
# request's params keep CONTENT_TYPE/CONTENT_LENGTH only (RFC 3875 4.1.18).
curl_req "http://127.0.0.1:$PF/params" -H 'Content-Type: application/x-test' --data-binary 'abc'
expect_match "nginx fastcgi: /params has CONTENT_TYPE" '^CONTENT_TYPE=application/x-test$' \
    "$(cat "$T/body")"
expect_no_match "nginx fastcgi: /params has no HTTP_CONTENT_TYPE nor HTTP_CONTENT_LENGTH" \
    '^HTTP_CONTENT_(TYPE|LENGTH)=' "$(cat "$T/body")"

frontend_checks "nginx scgi" "$PS"
stream_check "nginx scgi" "$PS"
chunked_echo_check "nginx scgi (nginx buffers chunked bodies)" "http://127.0.0.1:$PS/echo"

# The pool survived all of it, and neither side logged errors that the
# tests did not ask for (/fail and /fail-late are expected to).
expect_eq "no corral worker died during the run" "$WORKERS_BEFORE" "$(children_of "$CORRAL_PID")"
expect_no_match "nginx logged no unexpected upstream errors" '\[(error|crit|alert|emerg)\]' \
    "$(unexpected_lines "$T/nginx-error.log")"
expect_no_match "corral logged no unexpected errors" ' (error|warn) ' "$(unexpected_lines "$CORRAL_LOG")"
check "the corral access log has a line per request" test "$(wc -l <"$T/corral-access.log")" -ge 600

finish
