#!/bin/sh
# A shell CGI script (tests/integration/cgi.sh): echoes the request.
# ?err=TEXT writes TEXT to stderr, ?esc a control byte, ?flood 150 lines;
# ?status=N answers with Status: N.
case "$QUERY_STRING" in
*err=*) echo "script says: ${QUERY_STRING#*err=}" >&2 ;;
esac
case "$QUERY_STRING" in
flood) i=0; while [ $i -lt 150 ]; do echo "flood line $i" >&2; i=$((i + 1)); done ;;
esc) printf 'esc:\033[31mred\n' >&2 ;;
esac
case "$QUERY_STRING" in
status=*) printf 'Status: %s Custom\r\n' "${QUERY_STRING#status=}" ;;
esac
printf 'Content-Type: text/plain\r\nX-Cgi: shell\r\n\r\n'
echo "method=$REQUEST_METHOD"
echo "gateway=$GATEWAY_INTERFACE"
echo "script_name=$SCRIPT_NAME"
echo "path_info=${PATH_INFO-}"
echo "path_translated=${PATH_TRANSLATED-}"
echo "query=$QUERY_STRING"
echo "content_length=${CONTENT_LENGTH-}"
echo "uid=$(id -u)"
echo "cwd=$(pwd)"
echo "http_proxy=${HTTP_PROXY-unset}"
echo "x_test=${HTTP_X_TEST-unset}"
echo "secret=${SECRET_PARAM-unset}"
echo "extra=${EXTRA_PARAM-unset}"
echo "rlimits=$(ulimit -t) $(ulimit -n) $(ulimit -v)"
echo "sigblk=$(grep SigBlk /proc/$$/status | cut -f2)"
echo "sigign=$(grep SigIgn /proc/$$/status | cut -f2)"
echo "pgid_is_pid=$([ "$(ps -o pgid= -p $$ | tr -d ' ')" = "$$" ] && echo yes || echo no)"
echo "leaked=$(ls -l /proc/$$/fd/ | grep -c 'socket:\|anon_inode:')"
if [ "$REQUEST_METHOD" = POST ]; then
    echo "body:"
    cat
fi
