#!/bin/sh
# Sleeps ?N seconds, then answers (tests/integration/cgi.sh: the
# concurrency limit).
sleep "${QUERY_STRING:-1}"
printf 'Content-Type: text/plain\r\n\r\nslept %s pid %s\n' "${QUERY_STRING:-1}" "$$"
