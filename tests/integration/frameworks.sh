#!/bin/bash
# frameworks.sh -- real WSGI frameworks on corral's embedded CPython:
# tests/apps/flask_app.py (Debian's python3-flask) served by
# `corral --wsgi flask_app:app --pythonpath tests/apps` (2 processes x
# 2 threads) behind real nginx (FastCGI with keep-conn and an upstream
# keepalive, and uwsgi_pass) and real Apache (mod_proxy_fcgi), checked over
# HTTP with curl: forms, JSON, a 20 MiB upload (multipart and raw), cookies,
# the session counter, a redirect, 404, a raising view (500 and its traceback
# in corral's error log) and a streaming view that arrives piece by piece.
# tests/apps/django_app.py (python3-django, a single-file project) runs in a
# second pool behind /dj/ on the same front ends: JSON, a form, a signed-cookie
# session, a redirect, 404 and a raising view.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
need nginx nginx-light
need apache2 apache2
need curl curl
if ! "$PY" -c 'import flask' >/dev/null 2>&1; then
    fail "requirement: Flask" "python3 cannot import flask: apt-get install python3-flask" \
        "(contrib/install-deps.sh installs every test dependency)"
    finish
fi
if [ ! -f /usr/lib/apache2/modules/mod_proxy_fcgi.so ]; then
    fail "requirement: mod_proxy_fcgi" "/usr/lib/apache2/modules/mod_proxy_fcgi.so is missing: apt-get install apache2"
    finish
fi

APPS=$top_srcdir/tests/apps
U=$T/u.sock F=$T/f.sock
PU=$(free_port) PF=$(free_port) PA=$(free_port)

HAVE_DJANGO=0
"$PY" -c 'import django' >/dev/null 2>&1 && HAVE_DJANGO=1
if [ $HAVE_DJANGO = 0 ]; then
    fail "requirement: Django" "python3 cannot import django: apt-get install python3-django" \
        "(contrib/install-deps.sh installs every test dependency); the Flask checks still run"
fi

start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" \
    --wsgi flask_app:app --pythonpath "$APPS" --processes 2 --threads 2 --chmod 0666 || finish
FLASK_PID=$CORRAL_PID FLASK_LOG=$CORRAL_LOG

# Django in a second pool, reached through /dj/ on the same front ends.
DU=$T/du.sock DF=$T/df.sock
if [ $HAVE_DJANGO = 1 ]; then
    start_corral --listen "uwsgi:unix:$DU" --listen "fastcgi:unix:$DF" \
        --wsgi django_app:application --pythonpath "$APPS" --processes 2 --threads 2 \
        --chmod 0666 || finish
    DJANGO_PID=$CORRAL_PID DJANGO_LOG=$CORRAL_LOG
fi

# nginx's stock fastcgi_params set SCRIPT_NAME to the whole path and no
# PATH_INFO, which a WSGI app reads as "mounted at /go, path empty" (Flask
# answers 308 to /go/). A WSGI app behind FastCGI wants SCRIPT_NAME empty
# and PATH_INFO the path: the stock list without SCRIPT_NAME, and those two.
FCGI_PARAMS="$(grep -v SCRIPT_NAME /etc/nginx/fastcgi_params)
            fastcgi_param SCRIPT_NAME \"\";
            fastcgi_param PATH_INFO \$document_uri;"

start_nginx "
    upstream corral_fastcgi {
        server unix:$F;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$PF;
        location / {
            $FCGI_PARAMS
            fastcgi_pass corral_fastcgi;
            fastcgi_keep_conn on;
        }
        location = /stream {
            $FCGI_PARAMS
            fastcgi_pass corral_fastcgi;
            fastcgi_keep_conn on;
            fastcgi_buffering off;
        }
        location /dj/ {
            $FCGI_PARAMS
            fastcgi_pass unix:$DF;
        }
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
        location /dj/ {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$DU;
        }
    }
" || finish

# mod_proxy_fcgi does the same (SCRIPT_NAME the path, no PATH_INFO): the
# path goes to PATH_INFO, SCRIPT_NAME is left out (corral makes it empty).
start_apache "
Listen 127.0.0.1:$PA
<VirtualHost 127.0.0.1:$PA>
    ProxyPass \"/dj/\" \"unix:$DF|fcgi://corral-django/dj/\"
    ProxyPass \"/\" \"unix:$F|fcgi://corral-flask/\" flushpackets=on
    ProxyFCGISetEnvIf true PATH_INFO \"%{REQUEST_URI}\"
    ProxyFCGISetEnvIf true !SCRIPT_NAME
</VirtualHost>
" || finish

WORKERS_BEFORE="$(children_of "$FLASK_PID") $(children_of "${DJANGO_PID:-0}")"
head -c 20971520 /dev/urandom >"$T/rand20m"
RAND20M_SHA=$(sha_file "$T/rand20m")

# json_field FILE KEY : one top-level field of a JSON object.
json_field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# flask_checks LABEL PORT
flask_checks() {
    local L=$1 base=http://127.0.0.1:$2

    curl_req "$base/"
    expect_eq "$L: GET / status" 200 "$HTTP_CODE"
    expect_match "$L: GET / is HTML" '^text/html' "$(head_value Content-Type)"
    expect_file_match "$L: GET / body" '<h1>Hello from Flask</h1>' "$T/body"

    curl_req "$base/where/caf%C3%A9%20au%20lait/x?q=%2F&r=%C3%A9"
    expect_eq "$L: the path reaches the router decoded, mounted at the root" \
        "script_root='' path='/where/café au lait/x' rest='café au lait/x' args=[('q', '/'), ('r', 'é')]" \
        "$(cat "$T/body")"

    curl_req "$base/form" --data-urlencode 'name=Zoë & co' -d 'colour=blue'
    expect_eq "$L: form POST status" 200 "$HTTP_CODE"
    expect_eq "$L: form POST fields decoded (request.form)" "name=Zoë & co;colour=blue;n=2" "$(cat "$T/body")"

    curl_req "$base/json" -H 'Content-Type: application/json' \
        --data-binary '{"a": [1, 2, {"b": "é"}], "n": null}'
    expect_eq "$L: JSON POST status" 200 "$HTTP_CODE"
    expect_match "$L: JSON answer is application/json" '^application/json' "$(head_value Content-Type)"
    expect_eq "$L: JSON echoed (get_json -> jsonify)" '{"a": [1, 2, {"b": "é"}], "n": null} dict' \
        "$("$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(json.dumps(d["echo"], ensure_ascii=False), d["type"])' "$T/body")"

    curl_req "$base/upload" -F "file=@$T/rand20m;filename=rand.bin" -H 'Expect:'
    expect_eq "$L: 20 MiB multipart upload status" 200 "$HTTP_CODE"
    expect_eq "$L: 20 MiB multipart upload: sha256 (request.files)" "$RAND20M_SHA" "$(json_field "$T/body" sha256)"
    expect_eq "$L: 20 MiB multipart upload: size and file name" "20971520 rand.bin" \
        "$(json_field "$T/body" size) $(json_field "$T/body" filename)"
    curl_req "$base/upload" --data-binary @"$T/rand20m" -H 'Content-Type: application/octet-stream' -H 'Expect:'
    expect_eq "$L: 20 MiB raw body: status" 200 "$HTTP_CODE"
    expect_eq "$L: 20 MiB raw body: sha256 and size (request.stream)" "$RAND20M_SHA 20971520" \
        "$(json_field "$T/body" sha256) $(json_field "$T/body" size)"

    local jar=$T/jar-$2
    rm -f "$jar"
    curl_req "$base/cookie/set?v=ginger" -c "$jar"
    expect_match "$L: Set-Cookie from the view" '^flavour=ginger' "$(head_value Set-Cookie)"
    curl_req "$base/cookie/get" -b "$jar"
    expect_eq "$L: the cookie comes back (request.cookies)" "flavour=ginger" "$(cat "$T/body")"
    local counts="" i
    for i in 1 2 3; do
        curl_req "$base/counter" -b "$jar" -c "$jar"
        counts="$counts $(cat "$T/body")"
    done
    expect_eq "$L: the session counter counts across requests" " count=1 count=2 count=3" "$counts"
    curl_req "$base/counter"
    expect_eq "$L: without the cookie the session starts again" "count=1" "$(cat "$T/body")"

    curl_req "$base/go"
    expect_eq "$L: redirect status" 302 "$HTTP_CODE"
    expect_match "$L: redirect Location" '^(http://[^/]+)?/$' "$(head_value Location)"
    curl_req "$base/go" -L
    expect_eq "$L: the redirect is followed to /" 200 "$HTTP_CODE"

    curl_req "$base/no/such/page"
    expect_eq "$L: an unknown URL is Flask's 404" 404 "$HTTP_CODE"
    expect_file_match "$L: the 404 page is Flask's" 'Not Found' "$T/body"

    local before
    before=$(grep -c 'FlaskTestError: raised on purpose' "$FLASK_LOG")
    curl_req "$base/boom"
    expect_eq "$L: a raising view answers 500" 500 "$HTTP_CODE"
    expect_file_match "$L: the 500 page is Flask's" 'Internal Server Error' "$T/body"
    sleep 0.2
    expect_eq "$L: the exception is in corral's error log" $((before + 1)) \
        "$(grep -c 'FlaskTestError: raised on purpose' "$FLASK_LOG")"
}

# flask_stream_check LABEL PORT : /stream's 5 chunks, 200 ms apart, arrive one by one.
flask_stream_check() {
    py_checks "$2" "$1" <<'PY'
import sys
from lib_protocols import http_request, report
port, label = int(sys.argv[1]), sys.argv[2]
st, _, body, arrivals = http_request(port, "GET", "/stream", timeout=10)
want = b"".join(b"chunk %d\n" % i for i in range(5))
report("%s: /stream status 200" % label, st == 200, st)
report("%s: /stream body complete" % label, body == want, body)
# Each chunk is 8 bytes; the view sleeps 200 ms between them (0.8 s in all).
first = next((t for t, n in arrivals if n >= 8), None)
last = next((t for t, n in arrivals if n >= 40), None)
report("%s: /stream arrives piece by piece: chunk 0 at %s s, chunk 4 at %s s" % (label,
       first and round(first, 3), last and round(last, 3)),
       first is not None and last is not None and first < 0.4 and last - first >= 0.6, arrivals)
PY
}

flask_checks "flask nginx fastcgi" "$PF"
flask_stream_check "flask nginx fastcgi (fastcgi_buffering off)" "$PF"
flask_checks "flask nginx uwsgi" "$PU"
flask_stream_check "flask nginx uwsgi (uwsgi_buffering off)" "$PU"
flask_checks "flask apache fcgi" "$PA"
flask_stream_check "flask apache fcgi" "$PA"

expect_file_match "the traceback is logged, naming the view's line" \
    'File ".*flask_app\.py", line [0-9]+, in boom' "$FLASK_LOG"

# django_checks LABEL PORT
django_checks() {
    local L=$1 base=http://127.0.0.1:$2/dj

    curl_req "$base/json?q=caf%C3%A9"
    expect_eq "$L: JSON view status" 200 "$HTTP_CODE"
    expect_match "$L: JSON view is application/json" '^application/json' "$(head_value Content-Type)"
    expect_eq "$L: JSON view body (JsonResponse, request.GET decoded)" \
        '{"framework": "django", "method": "GET", "q": "caf\u00e9"}' "$(cat "$T/body")"

    curl_req "$base/form" --data-urlencode 'name=Zoë & co' -d 'colour=red'
    expect_eq "$L: form POST status (CSRF exempt)" 200 "$HTTP_CODE"
    expect_eq "$L: form POST fields decoded (request.POST)" "name=Zoë & co;colour=red;n=2" "$(cat "$T/body")"

    local jar=$T/djar-$2 counts="" i
    rm -f "$jar"
    for i in 1 2 3; do
        curl_req "$base/counter" -b "$jar" -c "$jar"
        counts="$counts $(cat "$T/body")"
    done
    expect_eq "$L: the signed-cookie session counts across requests" " count=1 count=2 count=3" "$counts"

    curl_req "$base/go"
    expect_eq "$L: redirect status" 302 "$HTTP_CODE"
    expect_match "$L: redirect Location" '^(http://[^/]+)?/dj/json$' "$(head_value Location)"

    curl_req "$base/no/such/page"
    expect_eq "$L: an unknown URL is Django's 404" 404 "$HTTP_CODE"
    expect_file_match "$L: the 404 page is Django's" 'The requested resource was not found' "$T/body"

    curl_req "$base/boom"
    expect_eq "$L: a raising view answers 500" 500 "$HTTP_CODE"
    expect_file_match "$L: the 500 page is Django's" 'Server Error \(500\)' "$T/body"
}

if [ $HAVE_DJANGO = 1 ]; then
    django_checks "django nginx fastcgi" "$PF"
    django_checks "django nginx uwsgi" "$PU"
    django_checks "django apache fcgi" "$PA"
    sleep 0.2
    # django.request's records go to wsgi.errors (a handler in django_app.py).
    expect_eq "django: each raising view's exception is in corral's error log (3 front ends)" 3 \
        "$(grep -c 'wsgi\.errors: .*DjangoTestError: raised on purpose' "$DJANGO_LOG")"
    expect_file_match "django: the traceback names the view's line" \
        'wsgi\.errors: .*File ".*django_app\.py", line [0-9]+, in boom_view' "$DJANGO_LOG"
fi

# The raising views log through wsgi.errors; nothing else is an error.
expect_no_match "corral logged no errors but the raising views'" ' (error|warn) ' \
    "$(cat "$FLASK_LOG" "${DJANGO_LOG:-/dev/null}" | grep -v ' wsgi\.errors: ')"
expect_no_match "nginx logged no upstream errors" '\[(error|crit|alert|emerg)\]' \
    "$(cat "$T/nginx-error.log")"
expect_no_match "Apache logged no proxy errors" '\[[a-z_]+:(error|crit|alert|emerg)\]' \
    "$(cat "$T/apache-error.log")"
expect_eq "no corral worker died during the run" "$WORKERS_BEFORE" \
    "$(children_of "$FLASK_PID") $(children_of "${DJANGO_PID:-0}")"

finish
