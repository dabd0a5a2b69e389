#!/bin/bash
# cli.sh -- the corral binary on its own, without a front end: flags,
# configuration checks, handler loading, socket files, pid file, exit status.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-60}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# ---- --version, --help
run_corral version --version
expect_eq "--version exits 0" 0 "$RC"
expect_match "--version prints 'corral VERSION'" '^corral [0-9]+\.[0-9]+' "$OUT"
expect_match "--version names the embedded Python and its interpreter" \
    '^wsgi: (Python 3\.[0-9]+ \(/[^)]*python[^)]*\)|not built)' "$OUT"

run_corral help --help
expect_eq "--help exits 0" 0 "$RC"
for flag in --listen --handler --processes --threads --pidfile --chmod --io-timeout --idle-timeout --graceful-timeout; do
    expect_match "--help lists $flag" "$flag" "$OUT"
done

run_corral unknown --no-such-flag
expect_eq "an unknown flag exits 1" 1 "$RC"
expect_match "an unknown flag is named" 'no-such-flag' "$OUT"

# ---- -t with a configuration file
cat >"$T/good.conf" <<EOF
# a valid configuration
listen = ["uwsgi:unix:$T/good.sock", "fastcgi:unix:$T/good2.sock"];
handler = "$DEMO_SO";
processes = 2;
threads = 4;
io_timeout = 30;
EOF
run_corral check-good -t -c "$T/good.conf"
expect_eq "-t with a valid config exits 0" 0 "$RC"
check "-t does not create the sockets" test ! -e "$T/good.sock"

cat >"$T/bad.conf" <<EOF
listen = ["uwsgi:unix:$T/bad.sock"];
handler = "$DEMO_SO";

processes = 0;
EOF
run_corral check-bad -t -c "$T/bad.conf"
expect_eq "-t with a bad value exits 1" 1 "$RC"
expect_match "-t names file:line:key of the bad value" "bad\.conf:4:.*processes" "$OUT"

cat >"$T/typo.conf" <<EOF
listen = ["uwsgi:unix:$T/bad.sock"];
handler = "$DEMO_SO";
procesess = 2;
EOF
run_corral check-typo -t -c "$T/typo.conf"
expect_eq "-t with an unknown key exits 1" 1 "$RC"
expect_match "-t names file:line and the unknown key" "typo\.conf:3:.*procesess" "$OUT"

printf 'listen = ["uwsgi:unix:%s/x.sock"]\nhandler = \n' "$T" >"$T/syntax.conf"
run_corral check-syntax -t -c "$T/syntax.conf"
expect_eq "-t with a syntax error exits 1" 1 "$RC"
expect_match "-t names the file and line of a syntax error" "syntax\.conf:[0-9]+" "$OUT"

run_corral check-cli -t --listen "scgi:unix:$T/t.sock" --handler "$DEMO_SO"
expect_eq "-t with a valid command line exits 0" 0 "$RC"

# ---- bad --listen specs
for spec in "https:unix:$T/x.sock" "uwsgi:$T/x.sock" "uwsgi:tcp:127.0.0.1:0" "uwsgi:tcp:127.0.0.1:99999" "fastcgi:unix:" "nocolon"; do
    run_corral badlisten --listen "$spec" --handler "$DEMO_SO"
    expect_eq "--listen '$spec' is refused (exit 1)" 1 "$RC"
    expect_match "--listen '$spec' refusal has a message" 'listen.*(expected|protocol|port|path)' "$OUT"
done
run_corral nolisten --handler "$DEMO_SO"
expect_eq "no --listen at all is refused" 1 "$RC"
expect_match "no --listen: a message" '[Ll]isten' "$OUT"

# ---- handlers
if [ -f "$BAD_ABI_SO" ]; then
    run_corral badabi --listen "uwsgi:unix:$T/abi.sock" --handler "$BAD_ABI_SO"
    expect_eq "a handler built for another ABI is refused (exit 1)" 1 "$RC"
    expect_match "the ABI refusal names the ABI versions" 'ABI [0-9]+.*ABI [0-9]+' "$OUT"
    check "a refused handler leaves no socket behind" test ! -e "$T/abi.sock"
else
    fail "requirement: $BAD_ABI_SO" "not built: run make in $top_builddir (it is in noinst_DATA)"
fi

# ---- an app that cannot start: exit at start-up, no respawn loop
BAD_INIT_SO=$top_builddir/tests/apps/bad_init.so
if [ -f "$BAD_INIT_SO" ]; then
    start_ms=$(now_ms)
    run_corral badinit --listen "uwsgi:unix:$T/init.sock" --handler "$BAD_INIT_SO" --processes 2
    expect_eq "a handler whose worker init fails makes corral exit 1" 1 "$RC"
    expect_lt "it gives up at once instead of respawning (ms)" "$(($(now_ms) - start_ms))" 5000
    expect_match "the app's own error is logged" 'bad_init: refusing to start' "$OUT"
    expect_match "the log says corral is not respawning" 'failed to start.*not respawning' "$OUT"
    expect_eq "no respawn happened" 0 "$(grep -c 'respawning in' "$T/badinit.out")"
    check "no socket is left behind" test ! -e "$T/init.sock"
else
    fail "requirement: $BAD_INIT_SO" "not built: run make in $top_builddir (it is in noinst_DATA)"
fi

need cc build-essential
cat >"$T/nomodule.c" <<'EOF'
int handler(void *req) { (void)req; return -1; }
EOF
if cc -shared -fPIC -o "$T/nomodule.so" "$T/nomodule.c" 2>"$T/cc.out"; then
    run_corral nomodule --listen "uwsgi:unix:$T/nomod.sock" --handler "$T/nomodule.so"
    expect_eq "a handler without CORRAL_MODULE() is refused (exit 1)" 1 "$RC"
    expect_match "the refusal says what is missing" 'corral_module_abi|CORRAL_MODULE' "$OUT"
else
    fail "build a handler without CORRAL_MODULE()" "$(cat "$T/cc.out")"
fi

run_corral nosym --listen "uwsgi:unix:$T/nosym.sock" --handler "$DEMO_SO:no_such_symbol"
expect_eq "a missing handler symbol is refused (exit 1)" 1 "$RC"
expect_match "the refusal names the symbol" 'no_such_symbol' "$OUT"

run_corral nofile --listen "uwsgi:unix:$T/nofile.sock" --handler "$T/does-not-exist.so"
expect_eq "a missing handler file is refused (exit 1)" 1 "$RC"
expect_match "the refusal names the file" 'does-not-exist\.so' "$OUT"

# ---- a running server: socket mode, pid file, exit status
SOCK=$T/live.sock
if start_corral --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --chmod 0666 --pidfile "$T/live.pid"; then
    LIVE_PID=$CORRAL_PID
    LIVE_LOG=$CORRAL_LOG
    expect_eq "--chmod 0666 sets the socket mode" 666 "$(stat -c %a "$SOCK")"
    expect_eq "--pidfile holds the master pid" "$LIVE_PID" "$(tr -d '[:space:]' <"$T/live.pid" 2>/dev/null)"
    out=$("$PY" -m lib_protocols get uwsgi "unix:$SOCK" /hello 2>&1)
    expect_eq "the server answers /hello" "$(printf '200\nHello, World!')" "$out"

    # Another corral on the same path must not steal the socket.
    run_corral steal --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --pidfile "$T/steal.pid"
    expect_eq "a socket another live corral listens on is refused (exit 1)" 1 "$RC"
    expect_match "the refusal says another server listens" 'another server|in use|listening' "$OUT"
    out=$("$PY" -m lib_protocols get uwsgi "unix:$SOCK" /hello 2>&1)
    expect_eq "the first server still answers on its socket" "$(printf '200\nHello, World!')" "$out"

    stop_corral "$LIVE_PID" TERM
    expect_eq "exit status 0 on SIGTERM" 0 "$CORRAL_STATUS"
    check "the pid file is removed on SIGTERM" test ! -e "$T/live.pid"
    check "the socket file is removed on SIGTERM" test ! -e "$SOCK"
    expect_file_match "the error log says it stopped" 'stopp' "$LIVE_LOG"
fi

# --chmod with another mode, and the default
if start_corral --listen "scgi:unix:$T/m600.sock" --handler "$DEMO_SO" --chmod 0600; then
    expect_eq "--chmod 0600 sets the socket mode" 600 "$(stat -c %a "$T/m600.sock")"
    stop_corral
fi

# ---- a stale socket file (left by a server that died) is replaced
"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); s.close()' "$T/stale.sock"
check "a stale socket file exists before the start" test -S "$T/stale.sock"
if start_corral --listen "fastcgi:unix:$T/stale.sock" --handler "$DEMO_SO" --chmod 0666; then
    ok "corral starts on a stale socket file"
    out=$("$PY" -m lib_protocols get fastcgi "unix:$T/stale.sock" /hello 2>&1)
    expect_eq "it serves on the replaced socket" "$(printf '200\nHello, World!')" "$out"
    stop_corral
fi

# A path that exists and is not a socket is left alone.
echo keep >"$T/regular"
run_corral regular --listen "uwsgi:unix:$T/regular" --handler "$DEMO_SO"
expect_eq "a regular file at the socket path is refused (exit 1)" 1 "$RC"
expect_eq "the regular file is untouched" keep "$(cat "$T/regular")"

# ---- a TCP listener, and several listeners at once
port=$(free_port)
if start_corral --listen "scgi:tcp:127.0.0.1:$port" --listen "uwsgi:unix:$T/multi.sock" --handler "$DEMO_SO" --processes 2 --threads 2; then
    out=$("$PY" -m lib_protocols get scgi "tcp:127.0.0.1:$port" /hello 2>&1)
    expect_eq "a TCP listener serves" "$(printf '200\nHello, World!')" "$out"
    out=$("$PY" -m lib_protocols get uwsgi "unix:$T/multi.sock" /hello 2>&1)
    expect_eq "the unix listener of the same pool serves" "$(printf '200\nHello, World!')" "$out"
    expect_eq "--processes 2 forks two workers" 2 "$(children_of "$CORRAL_PID" | wc -w)"
    stop_corral "$CORRAL_PID" TERM
    expect_eq "exit status 0 on SIGTERM with 2 workers" 0 "$CORRAL_STATUS"
fi

finish
