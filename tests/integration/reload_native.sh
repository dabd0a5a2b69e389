#!/bin/bash
# reload_native.sh -- a native handler (.so) is loaded by each worker after
# the fork, so a reload serves the file as it is now: the object is
# replaced (mv, as `install` does) by another build, corralctl reload, and
# the new code answers. The master checks the object in a child process at
# start and at each reload, so a bad object (another ABI, a constructor that
# crashes) fails the reload with the reason while the old workers serve on,
# and no handler code is mapped in the master unless --preload (whose
# reload re-executes the master: the same checks apply).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-60}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$top_builddir/corralctl" "$BAD_ABI_SO"
need cc build-essential
CTL=$top_builddir/corralctl
S=$T/s.sock SOCK=$T/ctl.sock H=$T/handler.so

cat >"$T/v.c" <<'EOF'
#include <corral.h>
#include <string.h>
CORRAL_MODULE();
int handler(corral_request *req)
{
    static const char body[] = "version=" VERSION "\n";
    corral_add_header(req, "Content-Type", "text/plain");
    return corral_write_final(req, body, strlen(body));
}
EOF
cat >"$T/crash.c" <<'EOF'
#include <corral.h>
#include <stdlib.h>
CORRAL_MODULE();
__attribute__((constructor)) static void boom(void) { abort(); }
int handler(corral_request *req) { (void)req; return 0; }
EOF
# A constructor that takes 2 s: the check of a reload must not stall the
# master meanwhile.
cat >"$T/slow.c" <<'EOF'
#include <corral.h>
#include <string.h>
#include <time.h>
CORRAL_MODULE();
__attribute__((constructor)) static void slow(void)
{
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
}
int handler(corral_request *req)
{
    static const char body[] = "version=slow\n";
    corral_add_header(req, "Content-Type", "text/plain");
    return corral_write_final(req, body, strlen(body));
}
EOF
built=1
for v in one two; do
    cc -shared -fPIC -I"$top_srcdir/include" -DVERSION="\"$v\"" -o "$T/$v.so" "$T/v.c" || built=0
done
cc -shared -fPIC -I"$top_srcdir/include" -o "$T/crash.so" "$T/crash.c" || built=0
cc -shared -fPIC -I"$top_srcdir/include" -o "$T/slow.so" "$T/slow.c" || built=0
expect_eq "the test handlers build" 1 "$built"

# install FILE: replace the handler the way install(1) and package managers
# do (a new file renamed over the old one: running workers keep theirs).
install_handler() { cp "$1" "$H.new" && mv "$H.new" "$H"; }
version() { "$PY" -m lib_protocols get uwsgi "unix:$S" / 2>/dev/null; }
maps_handler() { grep -c "$H" "/proc/$1/maps" 2>/dev/null; }
# reload_with FILE: install it, corralctl reload; RC its exit status, the
# reply in $T/r.out.
reload_with() {
    install_handler "$1"
    "$CTL" -s "$SOCK" reload >"$T/r.out" 2>&1
    RC=$?
}

install_handler "$T/one.so"
start_corral --listen "uwsgi:unix:$S" --handler "$H" --control "$SOCK" --processes 2 || finish
expect_match "the first build answers" "version=one" "$(version)"
expect_eq "no handler code in the master (lazy): its maps do not name the object" 0 \
    "$(maps_handler "$CORRAL_PID")"
first=$(children_of "$CORRAL_PID" | cut -d' ' -f1)
check "each worker maps the object it loaded" test "$(maps_handler "$first")" -gt 0

reload_with "$T/two.so"
expect_eq "reload after the object was replaced: exit 0" 0 "$RC"
expect_match "... and the new build answers" "version=two" "$(version)"
check "... from new workers (the first one is gone)" gone "$first"

reload_with "$BAD_ABI_SO"
expect_eq "reload with an object of another ABI: exit 1" 1 "$RC"
expect_match "... the reply names the ABI" "built for corral ABI [0-9]+, this corral has ABI" \
    "$(cat "$T/r.out")"
expect_match "... and the previous build still answers" "version=two" "$(version)"

reload_with "$T/crash.so"
expect_eq "reload with an object whose constructor aborts: exit 1" 1 "$RC"
expect_match "... the reply says the load killed the checking process" \
    "loading it killed the process \(signal 6" "$(cat "$T/r.out")"
check "... the master is alive" alive "$CORRAL_PID"
expect_match "... and the previous build still answers" "version=two" "$(version)"

reload_with "$T/one.so"
expect_eq "a good object after two bad ones: reload exit 0" 0 "$RC"
expect_match "... and it answers" "version=one" "$(version)"

# The reload's check runs in a child the master's loop reaps: while the
# slow constructor runs there, the master answers (status says the reload
# is checking) and the previous build serves.
status_checking() {
    timeout 1 "$CTL" -s "$SOCK" --json status >"$T/st.out" 2>/dev/null &&
        "$PY" -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["reload"]["state"] != "checking")' "$T/st.out"
}
install_handler "$T/slow.so"
timeout 30 "$CTL" -s "$SOCK" reload >"$T/r.out" 2>&1 &
reload_pid=$!
check "while a slow object is checked, the master answers: the reload shows checking" \
    wait_until 5 status_checking
expect_match "... and the previous build still answers" "version=one" "$(version)"
wait "$reload_pid"
expect_eq "... then the reload completes: exit 0" 0 "$?"
expect_match "... and the slow build answers" "version=slow" "$(version)"
stop_corral
install_handler "$T/one.so" # what the --preload part below starts with
expect_eq "corral stops with status 0" 0 "$CORRAL_STATUS"

# At start, the same check: a crashing object is an error, not a respawn loop.
timeout 10 "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/c.sock" --handler "$T/crash.so" \
    >"$T/crash.out" 2>&1 </dev/null
expect_eq "start with an object whose constructor aborts: exit 1" 1 "$?"
expect_match "... with the reason" "loading it killed the process \(signal 6" "$(cat "$T/crash.out")"

# --preload: the master loads the object; the workers inherit it. A reload
# re-executes the master (same pid), which loads the object anew.
start_corral --listen "uwsgi:unix:$S" --handler "$H" --preload --control "$SOCK" || finish
check "--preload: the master maps the object" test "$(maps_handler "$CORRAL_PID")" -gt 0
expect_match "--preload: it answers" "version=one" "$(version)"
reload_with "$T/two.so"
expect_eq "--preload: reload after the object was replaced: exit 0" 0 "$RC"
expect_match "--preload: ... and the new build answers" "version=two" "$(version)"
check "--preload: ... from the same master process" alive "$CORRAL_PID"
reload_with "$BAD_ABI_SO"
expect_eq "--preload: reload with an object of another ABI: exit 1" 1 "$RC"
expect_match "--preload: ... and the previous build still answers" "version=two" "$(version)"
stop_corral
expect_eq "--preload: corral stops with status 0" 0 "$CORRAL_STATUS"
finish
