#!/bin/sh
# Hangs (tests/integration/cgi.sh): starts a child that ignores SIGTERM,
# records both pids, and sleeps. Only a kill of the process group ends both.
dir=${HANG_DIR:-/tmp}
tag=${QUERY_STRING:-hang}
sh -c 'trap "" TERM; while :; do sleep 1; done' &
echo "$$ $!" >"$dir/$tag.pids"
trap '' TERM
while :; do sleep 1; done
