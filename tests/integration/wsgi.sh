#!/bin/bash
# wsgi.sh -- the WSGI adapter: tests/apps/wsgi_app.py (wrapped in
# wsgiref.validate.validator) served on uwsgi, SCGI and FastCGI at once by
# 2 processes x 2 threads; every route on every protocol, a 1 MiB body
# echoed, close() called, tracebacks in the error log, no validator
# complaint; an app file that fails to import logs its traceback.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
APP=$top_srcdir/tests/apps/wsgi_app.py
CLOSE_LOG=$T/close.log

start_corral --listen "uwsgi:unix:$T/u.sock" --listen "scgi:unix:$T/s.sock" \
    --listen "fastcgi:unix:$T/f.sock" --wsgi-file "$APP" --processes 2 --threads 2 --chmod 0666 \
    --env "WSGI_TEST_CLOSE_LOG=$CLOSE_LOG" --env "WSGI_TEST_FILE=$T/file.bin" || finish
head -c 3000000 /dev/urandom >"$T/file.bin"

py_checks "$T" <<'PY'
import os, sys
from lib_protocols import FcgiConn, hammer, header, report, request
T = sys.argv[1]
socks = {"uwsgi": "unix:%s/u.sock" % T, "scgi": "unix:%s/s.sock" % T,
         "fastcgi": "unix:%s/f.sock" % T}
big = os.urandom(1 << 20)
data = open(os.path.join(T, "file.bin"), "rb").read()
lines = b"".join(b"line %d %s\n" % (i, b"x" * (i % 300)) for i in range(5000))
for proto, addr in socks.items():
    def req(method, uri, body=b"", extra=None):
        return request(proto, addr, method, uri, body, extra, timeout=20)
    st, h, b = req("GET", "/hello")
    report("%s: /hello 200 Hello, World!" % proto, (st, b) == (200, b"Hello, World!"), (st, b))
    report("%s: /hello Content-Type text/plain" % proto,
           header(h, "Content-Type") == "text/plain", h)
    for code in (404, 418, 503):
        st, _, b = req("GET", "/status?code=%d" % code)
        report("%s: /status?code=%d" % (proto, code),
               (st, b) == (code, b"status %d" % code), (st, b))
    st, _, b = req("GET", "/no/such/route")
    report("%s: an unknown route is the app's 404" % proto, (st, b) == (404, b"not found"), (st, b))
    st, _, b = req("POST", "/echo", big)
    report("%s: a 1 MiB POST is echoed byte-exact" % proto, st == 200 and b == big, (st, len(b)))
    st, _, b = req("POST", "/echo", b"")
    report("%s: an empty POST echoes nothing" % proto, (st, b) == (200, b""), (st, b))
    st, _, b = req("POST", "/readline", lines)
    want = b"5000 lines, %d bytes" % len(lines)
    report("%s: a readline() loop sees every line" % proto, (st, b) == (200, want), (st, b))
    st, _, b = req("POST", "/iter", lines + b"no newline at the end")
    want = b"5001 lines, %d bytes" % (len(lines) + 21)
    report("%s: iterating wsgi.input sees every line" % proto, (st, b) == (200, want), (st, b))
    st, _, b = req("GET", "/environ?a=1", extra={"HTTP_X_LATIN": b"caf\xe9"})
    for want in ("REQUEST_METHOD='GET'", "QUERY_STRING='a=1'", "wsgi.version=(1, 0)",
                 "wsgi.url_scheme='http'", "wsgi.multithread=True", "wsgi.multiprocess=True",
                 "wsgi.run_once=False", "wsgi.input_terminated=True", "HTTP_X_LATIN='caf\u00e9'"):
        report("%s: environ has %s" % (proto, want), want in b.decode("utf-8"), b)
    st, _, b = req("GET", "/environ", extra={"HTTPS": "on"})
    report("%s: HTTPS=on gives wsgi.url_scheme https" % proto, b"url_scheme='https'" in b, b)
    st, _, b = req("GET", "/environ", extra={"REQUEST_SCHEME": "https"})
    report("%s: REQUEST_SCHEME=https gives wsgi.url_scheme https" % proto,
           b"url_scheme='https'" in b, b)
    st, _, b = req("GET", "/write")
    report("%s: the write() callable" % proto, (st, b) == (200, b"written through write()\n"),
           (st, b))
    st, _, b = req("GET", "/gen")
    report("%s: a generator body" % proto, (st, b) == (200, b"part 0\npart 1\npart 2\n"), (st, b))
    for uri, want in (("/file", data), ("/raw/file", data),
                      ("/raw/file?offset=1000", data[1000:]),
                      ("/raw/file?offset=1000&length=5000", data[1000:6000])):
        st, h, b = req("GET", uri)
        report("%s: wsgi.file_wrapper %s byte-exact" % (proto, uri),
               st == 200 and b == want, (st, len(b), len(want)))
    st, _, b = req("GET", "/raise")
    report("%s: an exception before start_response answers 500" % proto, st == 500, (st, b))
    good, errs, secs = hammer(proto, addr, "/hello", 200, 8, expect_body=b"Hello, World!")
    report("%s: 200 requests from 8 clients (%.1f s)" % (proto, secs), good == 200, errs)

    # Broken on purpose (tests/apps/wsgi_app.py, /bad/).
    for path in ("/bad/str-body", "/bad/header-crlf", "/bad/header-latin", "/bad/header-esc",
                 "/bad/two-lengths", "/bad/status"):
        st, h, b = req("GET", path)
        report("%s: %s answers 500" % (proto, path), st == 500, (st, h, b))
        report("%s: %s leaks no header" % (proto, path),
               not any(n.lower() in ("x-split", "injected", "x-euro", "x-esc", "content-length")
                       for n, _ in h), h)
    st, _, b = req("GET", "/bad/exc-info-early")
    report("%s: exc_info before the body replaces the response" % proto,
           (st, b) == (503, b"error page"), (st, b))
    for path in ("/bad/late-raise", "/bad/exc-info"):
        # uwsgi and SCGI end at the close (the first chunk, nothing after);
        # FastCGI has no END_REQUEST, which the client sees as an error.
        try:
            st, _, b = req("GET", path)
            report("%s: %s: nothing after the error reaches the client" % (proto, path),
                   proto != "fastcgi" and (st, b) == (200, b"first chunk\n"), (st, b))
        except Exception as e:  # noqa: BLE001
            report("%s: %s: the response is broken off (%s)" % (proto, path, type(e).__name__),
                   proto == "fastcgi", e)

c = FcgiConn(socks["fastcgi"], keep_conn=True, timeout=20)
try:
    answers = [c.request("POST", "/echo", b"keep %d" % i) for i in range(5)]
finally:
    c.close()
report("fastcgi: 5 requests on one kept connection",
       [(st, b) for st, _, b in answers] == [(200, b"keep %d" % i) for i in range(5)], answers)
PY

sleep 0.3 # close() runs after the last byte went out
expect_eq "close() of the result was called once per /gen request" 3 \
    "$(grep -c '^closed /gen$' "$CLOSE_LOG" 2>/dev/null)"
expect_file_match "the /raise traceback is logged with the request line" \
    'wsgi: GET /raise: Traceback \(most recent call last\)' "$CORRAL_LOG"
expect_file_match "the /raise traceback ends with the exception" \
    'wsgi: GET /raise: RuntimeError: raised on purpose by /raise' "$CORRAL_LOG"
expect_file_match "wsgi.errors writes to the error log" 'wsgi\.errors: environ was asked for' \
    "$CORRAL_LOG"
n=$(grep -c -E '^closed /bad/' "$CLOSE_LOG" 2>/dev/null)
expect_eq "close() is called after every error too (9 routes x 3 protocols)" 27 "$n"
expect_eq "the file_wrapper's file is closed once per request" 12 \
    "$(grep -c -E '^closed (/raw)?/file$' "$CLOSE_LOG" 2>/dev/null)"
expect_file_match "a str body is logged" \
    'wsgi: GET /bad/str-body: TypeError: the body must be bytes: the app yielded str' "$CORRAL_LOG"
expect_file_match "a header with CR LF is logged with its name" \
    "GET /bad/header-crlf: ValueError: start_response: header 'X-Split': the value contains CR" \
    "$CORRAL_LOG"
expect_file_match "a header with ESC is logged with its name" \
    "GET /bad/header-esc: ValueError: start_response: header 'X-Esc': the value contains a control" \
    "$CORRAL_LOG"
expect_file_match "two different Content-Lengths are logged once with the request" \
    'GET /bad/two-lengths: the handler sent Content-Length headers with different values' \
    "$CORRAL_LOG"
expect_file_match "a non-Latin-1 header is logged with its name" \
    "GET /bad/header-latin: ValueError: start_response: header 'X-Euro': the value is not Latin" \
    "$CORRAL_LOG"
expect_file_match "a malformed status is logged" \
    "wsgi: GET /bad/status: ValueError: start_response: malformed status 'OK'" "$CORRAL_LOG"
expect_file_match "an exception after the first chunk is logged" \
    'wsgi: GET /bad/late-raise: RuntimeError: raised on purpose after the first chunk' "$CORRAL_LOG"
expect_file_match "exc_info after the headers is re-raised" \
    'wsgi: GET /bad/exc-info: ValueError: late error on purpose' "$CORRAL_LOG"
for path in /bad/exc-info /bad/late-raise; do
    expect_file_match "$path: the connection is closed" \
        "the handler failed \\(returned -1\\) on GET $path; part of the response was sent" \
        "$CORRAL_LOG"
done
# lib_protocols sends the path as SCRIPT_NAME without PATH_INFO, as nginx's
# stock fastcgi_params do: each worker says once how to fix it.
n=$(grep -c 'wsgi: the front end sends SCRIPT_NAME="/.*" and no PATH_INFO' "$CORRAL_LOG")
check "SCRIPT_NAME without PATH_INFO is pointed out once per worker ($n lines, 2 workers)" \
    test "$n" -ge 1 -a "$n" -le 2
# nginx sends Content-Type and Content-Length again as HTTP_CONTENT_TYPE and
# HTTP_CONTENT_LENGTH: the environ has neither (RFC 3875 4.1.18; the
# validator asserts it too), and CONTENT_TYPE/CONTENT_LENGTH as given.
PN=$(free_port)
start_nginx "
    server {
        listen 127.0.0.1:$PN;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$T/f.sock;
        }
    }
" || finish
curl_req "http://127.0.0.1:$PN/environ" -H 'Content-Type: application/x-test' --data-binary 'abc'
expect_eq "nginx fastcgi: POST /environ answers 200" 200 "$HTTP_CODE"
expect_match "nginx fastcgi: environ has CONTENT_TYPE and CONTENT_LENGTH" \
    "CONTENT_TYPE='application/x-test'.CONTENT_LENGTH='3'" "$(tr '\n' ' ' <"$T/body")"
expect_match "nginx fastcgi: environ has no HTTP_CONTENT_TYPE nor HTTP_CONTENT_LENGTH" \
    "HTTP_CONTENT_TYPE=None.HTTP_CONTENT_LENGTH=None" "$(tr '\n' ' ' <"$T/body")"
stop_pid "$NGINX_PID"
expect_no_match "the validator found nothing wrong" 'AssertionError|Warning' "$(cat "$CORRAL_LOG")"
expect_no_match "no errors apart from /raise" ' error ' \
    "$(grep -v -e 'GET /raise' -e 'GET /bad/' -e 'wsgi\.errors' "$CORRAL_LOG")"
stop_corral
expect_eq "corral stops with status 0" 0 "$CORRAL_STATUS"
# In a sanitizer build (CPython needs ASAN_OPTIONS=detect_leaks=0), its
# reports go to stderr.
expect_no_match "no sanitizer reports" 'runtime error|ERROR: AddressSanitizer' \
    "$(cat "$CORRAL_OUT")"

# An app file that fails to import: the traceback is logged and corral
# exits at start with status 1 (no respawn loop).
BROKEN_LOG=$T/broken-error.log
start_ms=$(now_ms)
timeout 20 "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/b.sock" --processes 2 \
    --wsgi-file "$top_srcdir/tests/apps/wsgi_broken.py" \
    --error-log "$BROKEN_LOG" >"$T/broken.out" 2>&1 </dev/null
expect_eq "a failed import makes corral exit 1 at start" 1 "$?"
expect_lt "... at once, without respawning (ms)" "$(($(now_ms) - start_ms))" 10000
expect_file_match "a failed import logs the exception" 'NameError' "$BROKEN_LOG"
expect_file_match "the traceback names the file and line" \
    'wsgi: loading .*wsgi_broken\.py:   File ".*wsgi_broken\.py", line 6, in helper' "$BROKEN_LOG"
expect_file_match "the log says corral is not respawning" 'failed to start.*not respawning' \
    "$BROKEN_LOG"
check "no socket is left behind" test ! -e "$T/b.sock"

# Start-time checks in the master: nothing is forked for a bad name.
check_not "--wsgi with a malformed module name is refused" \
    "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/x.sock" --wsgi 'my-app:application'
expect_match "... and says what is expected" "expected MODULE\[:CALLABLE\]" "$(cat "$T/.check.out")"
check_not "--wsgi-file of a missing file is refused" \
    "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/x.sock" --wsgi-file "$T/nope.py"
check_not "--wsgi and --handler together are refused" \
    "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/x.sock" --wsgi-file "$APP" --handler x.so

# Threads: the GIL is released while a thread waits, so 2 threads of one
# process sleep at the same time; threading.local is per serving thread.
start_corral --listen "uwsgi:unix:$T/t.sock" --wsgi-file "$APP" --processes 1 --threads 2 ||
    finish
py_checks "$T" <<'PY'
import sys, threading, time
from lib_protocols import report, request
addr = "unix:%s/t.sock" % sys.argv[1]
out = []
def get(uri):
    out.append(request("uwsgi", addr, "GET", uri, timeout=20))
t0 = time.monotonic()
ts = [threading.Thread(target=get, args=("/sleep?ms=600",)) for _ in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
secs = time.monotonic() - t0
report("2 threads of one process sleep in parallel (%.2f s for 2 x 0.6 s)" % secs,
       secs < 1.1 and [(st, b) for st, _, b in out] == [(200, b"slept")] * 2, (secs, out))
answers = [request("uwsgi", addr, "GET", "/tlocal")[2].split() for _ in range(20)]
ones = sum(1 for n, _ in answers if n == b"1")
report("threading.local keeps its values across requests (%d of 20 answers start a count)"
       % ones, 1 <= ones <= 2, answers)
report("threading.local is the same object for a thread across requests",
       all(same == b"SAME" for _, same in answers), answers)
PY
stop_corral

# --wsgi MODULE with --pythonpath, the callable named.
start_corral --listen "uwsgi:unix:$T/m.sock" --wsgi wsgi_app:application \
    --pythonpath "$top_srcdir/tests/apps" --processes 1 --threads 1 || finish
py_checks "$T" <<'PY'
import sys
from lib_protocols import report, request
st, _, b = request("uwsgi", "unix:%s/m.sock" % sys.argv[1], "GET", "/environ")
report("--wsgi MODULE:CALLABLE with --pythonpath serves", st == 200, (st, b))
report("one thread, one process: multithread and multiprocess False",
       b"wsgi.multithread=False" in b and b"wsgi.multiprocess=False" in b, b)
PY
stop_corral

finish
