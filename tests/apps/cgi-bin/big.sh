#!/bin/sh
# Writes ?N zero bytes after its head (tests/integration/cgi.sh: a slow
# reader holds the script on its pipe, not in corral's memory).
printf 'Content-Type: application/octet-stream\r\n\r\n'
head -c "${QUERY_STRING:-1000}" /dev/zero
