#!/bin/bash
# pid1.sh -- corral as PID 1, as contrib/docker/Dockerfile runs it (ENTRYPOINT
# in exec form): the first process of a new pid namespace (unshare --pid
# --fork --mount-proc). It serves a request (its workers' parent is pid 1);
# a process the app orphans (a double fork) is reaped by it, leaving no
# zombie in the namespace; SIGTERM from outside the namespace is the graceful
# stop (a request in flight still gets its answer) with exit status 0; the
# error log goes to stderr.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need unshare util-linux
need_build "$CORRAL"
[ "$(id -u)" = 0 ] || { fail "requirement: root" "unshare --pid needs root"; finish; }
LP=$top_srcdir/tests/integration/lib_protocols.py
DOCKERFILE=$top_srcdir/contrib/docker/Dockerfile

# The Dockerfile's ENTRYPOINT: exec form (a JSON list), corral itself.
entry=$(sed -n 's/^ENTRYPOINT //p' "$DOCKERFILE")
expect_eq "the Dockerfile's ENTRYPOINT is the exec form of corral (no shell as PID 1)" \
    '/usr/bin/corral' "$("$PY" -c 'import json, sys; print(" ".join(json.loads(sys.argv[1])))' "$entry" 2>&1)"
expect_match "the Dockerfile's STOPSIGNAL is SIGTERM" '^STOPSIGNAL SIGTERM$' "$(cat "$DOCKERFILE")"

cat >"$T/app.py" <<'PY'
import os
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO") or environ.get("REQUEST_URI", "")
    if path == "/orphan":
        # Double fork: the grandchild (a sleep) loses its parent and is
        # re-parented to pid 1 of the namespace, which must reap it.
        child = os.fork()
        if child == 0:
            try:
                if os.fork() == 0:
                    os.execv("/bin/sleep", ["sleep", "3"])
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        body = b"orphaned"
    elif path == "/slow":
        time.sleep(1.5)
        body = b"slow done"
    else:
        body = ("ppid %d" % os.getppid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
PY

SOCK=$T/app.sock
unshare --pid --fork --mount-proc -- "$CORRAL" --listen "uwsgi:unix:$SOCK" \
    --wsgi-file "$T/app.py" --processes 1 --threads 2 "${ALLOW_ROOT[@]}" \
    >"$T/stdout" 2>"$T/stderr" &
ns_parent=$!
_track "$ns_parent"
wait_until 10 pgrep -P "$ns_parent"
pid1=$(children_of "$ns_parent")
check "corral runs in the namespace" test -n "$pid1"
expect_eq "corral is pid 1 of its namespace" "1" \
    "$(awk '/^NSpid:/ { print $NF }' "/proc/$pid1/status" 2>/dev/null)"
ns=$(readlink "/proc/$pid1/ns/pid" | tr -dc 0-9)

# The processes of corral's namespace: "PID STATE COMM" lines.
ns_procs() { ps -e -o pidns=,pid=,stat=,comm= | awk -v ns="$ns" '$1 == ns { print $2, $3, $4 }'; }
ns_zombies() { ns_procs | awk '$2 ~ /^Z/'; }
no_sleep_left() { ! ns_procs | grep -q ' sleep$'; }

check "corral serves" wait_until 15 "$PY" "$LP" ping uwsgi "$SOCK"
expect_eq "a request: 200, and the worker's parent is pid 1" "200
ppid 1" "$("$PY" "$LP" get uwsgi "$SOCK" /ppid 2>&1)"

expect_eq "the app double-forks a sleep" "200
orphaned" "$("$PY" "$LP" get uwsgi "$SOCK" /orphan 2>&1)"
expect_match "the orphaned sleep runs in the namespace" ' sleep$' "$(ns_procs)"
# The sleep ends after 3 s; a zombie would stay.
check "the orphan is reaped (gone, not a zombie) within 10 s" wait_until 10 no_sleep_left
expect_eq "no zombie in the namespace" "" "$(ns_zombies)"
check "corral still serves after reaping a process that is not its worker" \
    "$PY" "$LP" ping uwsgi "$SOCK"

# SIGTERM from outside the namespace, with a request in flight.
"$PY" "$LP" get uwsgi "$SOCK" /slow >"$T/slow.out" 2>&1 &
slow=$!
sleep 0.3 # the app answers /slow after 1.5 s: the signal lands while it runs
kill -TERM "$pid1"
wait_until 15 gone "$pid1"
check "SIGTERM stops corral (pid 1) within 15 s" gone "$pid1"
wait "$ns_parent"
rc=$?
_forget_pid "$ns_parent"
expect_eq "corral as pid 1 exits with status 0 after SIGTERM" 0 "$rc"
wait "$slow"
expect_eq "the request in flight at SIGTERM got its answer" "200
slow done" "$(cat "$T/slow.out")"
expect_file_match "the error log reaches stderr (started)" 'corral started' "$T/stderr"
expect_file_match "the error log reaches stderr (graceful stop)" 'stopping gracefully' "$T/stderr"
expect_file_match "the error log reaches stderr (stopped)" 'corral stopped' "$T/stderr"

finish
