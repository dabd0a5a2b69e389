#!/bin/sh
# Streams the request body back while it reads it (tests/integration/cgi.sh):
# both pipes fill at once unless corral reads the output while it writes the
# body.
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec cat
