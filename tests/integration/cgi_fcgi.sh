#!/bin/bash
# cgi_fcgi.sh -- libfcgi's cgi-fcgi (the reference implementation's client)
# talks to corral's FastCGI socket directly: the CGI variables come from its
# environment, the body from its stdin, the CGI response goes to stdout.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-60}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need cgi-fcgi libfcgi-bin

SOCK=$T/f.sock
start_corral --listen "fastcgi:unix:$SOCK" --handler "$DEMO_SO" --processes 1 --threads 2 || finish

# cgi_fcgi OUTFILE VAR=VALUE... : one request, bounded; stdin is the body.
cgi_fcgi() {
    local out=$1
    shift
    env -i PATH="$PATH" "$@" timeout 10 cgi-fcgi -bind -connect "$SOCK" >"$out" 2>"$out.err"
}

cgi_fcgi "$T/hello" REQUEST_METHOD=GET REQUEST_URI=/hello QUERY_STRING= </dev/null
expect_eq "cgi-fcgi GET /hello exits 0" 0 "$?"
expect_file_match "the response has a CGI Status: 200 header" $'^Status: 200( OK)?\r?$' "$T/hello"
expect_file_match "the response has Content-Type: text/plain" $'^Content-Type: text/plain\r?$' "$T/hello"
expect_eq "the body follows an empty line" "Hello, World!" "$(sed -n '/^\r\{0,1\}$/,$p' "$T/hello" | tail -n +2)"
check "the head ends with CRLF CRLF" grep -q $'\r$' "$T/hello"

cgi_fcgi "$T/st" REQUEST_METHOD=GET REQUEST_URI='/status?code=418' QUERY_STRING=code=418 </dev/null
expect_file_match "Status: 418 for /status?code=418" '^Status: 418' "$T/st"

cgi_fcgi "$T/nf" REQUEST_METHOD=GET REQUEST_URI=/nope QUERY_STRING= </dev/null
expect_file_match "Status: 404 for an unknown route" '^Status: 404' "$T/nf"

cgi_fcgi "$T/params" REQUEST_METHOD=GET REQUEST_URI='/params?x=1&y=%C3%A9' QUERY_STRING='x=1&y=%C3%A9' HTTP_X_TEST=abc </dev/null
expect_file_match "cgi-fcgi's variables arrive: QUERY_STRING" '^QUERY_STRING=x=1&y=%C3%A9$' "$T/params"
expect_file_match "cgi-fcgi's variables arrive: HTTP_X_TEST" '^HTTP_X_TEST=abc$' "$T/params"

# POST bodies: small with a NUL byte, and 1 MiB of random bytes.
printf 'abc\0def\n' >"$T/small"
cgi_fcgi "$T/echo-small" REQUEST_METHOD=POST REQUEST_URI=/echo CONTENT_LENGTH=8 <"$T/small"
expect_file_match "POST /echo: Status 200" '^Status: 200' "$T/echo-small"
sed '1,/^\r\{0,1\}$/d' "$T/echo-small" >"$T/echo-small.body"
expect_eq "POST /echo echoes the 8 bytes (with the NUL)" "$(sha_file "$T/small")" "$(sha_file "$T/echo-small.body")"

head -c 1048576 /dev/urandom >"$T/big"
cgi_fcgi "$T/echo-big" REQUEST_METHOD=POST REQUEST_URI=/echo CONTENT_LENGTH=1048576 CONTENT_TYPE=application/octet-stream <"$T/big"
expect_eq "cgi-fcgi POST of 1 MiB exits 0" 0 "$?"
# Strip the head (up to the first empty line) byte-exactly.
"$PY" -c 'import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\r\n\r\n")
open(sys.argv[2], "wb").write(d[i + 4:] if i >= 0 else b"")' "$T/echo-big" "$T/echo-big.body"
expect_eq "POST of 1 MiB echoed byte-exact (sha256)" "$(sha_file "$T/big")" "$(sha_file "$T/echo-big.body")"
expect_file_match "the echo has Content-Length: 1048576" $'^Content-Length: 1048576\r?$' "$T/echo-big"

cgi_fcgi "$T/large" REQUEST_METHOD=GET REQUEST_URI='/large?size=1000000' QUERY_STRING=size=1000000 </dev/null
"$PY" -c 'import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\r\n\r\n")
open(sys.argv[2], "wb").write(d[i + 4:])' "$T/large" "$T/large.body"
expect_eq "GET /large?size=1000000 byte-exact through cgi-fcgi" "$(pattern_sha 1000000)" "$(sha_file "$T/large.body")"

cgi_fcgi "$T/fail" REQUEST_METHOD=GET REQUEST_URI=/fail QUERY_STRING= </dev/null
expect_file_match "/fail: Status: 500" '^Status: 500' "$T/fail"

# Several in parallel (cgi-fcgi opens one connection each).
jobs_=()
for i in 1 2 3 4 5 6 7 8; do
    cgi_fcgi "$T/par$i" REQUEST_METHOD=GET REQUEST_URI="/params?i=$i" QUERY_STRING="i=$i" </dev/null &
    jobs_+=($!)
done
wait "${jobs_[@]}" # not a bare wait: corral is a child too
n=0
for i in 1 2 3 4 5 6 7 8; do grep -q "^QUERY_STRING=i=$i\$" "$T/par$i" && n=$((n + 1)); done
expect_eq "8 parallel cgi-fcgi requests each get their own answer" 8 "$n"

expect_no_match "corral logged no errors apart from /fail" ' error ' "$(grep -v -E 'fail|handler' "$CORRAL_LOG")"

finish
