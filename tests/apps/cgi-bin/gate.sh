#!/bin/sh
# Waits until the file $HANG_DIR/gate exists (at most 30 s), then answers
# (tests/integration/cgi.sh: many scripts running at once).
i=0
while [ ! -e "${HANG_DIR:-/tmp}/gate" ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
printf 'Content-Type: text/plain\r\n\r\npassed the gate pid %s\n' "$$"
