#!/bin/bash
# service.sh -- running as a service: --allow-from on TCP listeners (loopback
# by default; a refused peer is closed without an answer and logged, at most
# once a second per listener), the refusal to run as root, --uid/--gid and
# --chown (as root), systemd readiness (a fake NOTIFY_SOCKET gets READY=1
# once the workers run and STOPPING=1 on SIGTERM) and socket activation
# (systemd-socket-activate passes the listeners).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# refused PORT : a well-formed FastCGI request for /hello on 127.0.0.1:PORT
# (one the demo answers with 200) gets no answer byte: the connection is
# closed (EOF or reset) right after the connect.
refused() {
    "$PY" - "$1" <<'PY'
import socket, sys
from lib_protocols import cgi_params, fcgi_begin, fcgi_params_records, fcgi_stdin_records
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(fcgi_begin() + fcgi_params_records(cgi_params("GET", "/hello")) +
              fcgi_stdin_records(b""))
    data = s.recv(4096)
except (ConnectionResetError, BrokenPipeError):
    data = b""
sys.exit(0 if data == b"" else 1)
PY
}

# served PROTO ADDR : GET /hello answers 200.
served() {
    local out
    out=$("$PY" -m lib_protocols get "$1" "$2" /hello 2>&1) || { echo "$out"; return 1; }
    [ "$(printf '%s\n' "$out" | head -n 1)" = 200 ] || { echo "$out"; return 1; }
}

# uid_of PID : the real uid of PID, from /proc.
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }
gid_of() { awk '/^Gid:/ { print $2 }' "/proc/$1/status"; }

# ---- --allow-from: loopback is allowed by default
P1=$(free_port)
if start_corral --listen "uwsgi:tcp:127.0.0.1:$P1" --listen "uwsgi:unix:$T/a.sock" \
    --handler "$DEMO_SO" --processes 2; then
    check "default allow_from: 127.0.0.1 is served over TCP" \
        served uwsgi "tcp:127.0.0.1:$P1"
    expect_file_match "the start-up log names the allowed peers" \
        "listening on uwsgi:tcp:127\.0\.0\.1:$P1 \(peers allowed: 127\.0\.0\.0/8, ::1/128\)" "$CORRAL_LOG"
    stop_corral
fi

# ---- --allow-from 10.0.0.0/8 only: 127.0.0.1 is refused, unix still served
P2=$(free_port)
# The listeners in a file: start_corral would wait for the refused one to answer.
cat >"$T/b.conf" <<EOF
listen = ["uwsgi:unix:$T/b.sock", "fastcgi:tcp:127.0.0.1:$P2"];
allow_from = ["10.0.0.0/8"];
EOF
if start_corral -c "$T/b.conf" --handler "$DEMO_SO" --processes 1 &&
    wait_until 10 served uwsgi "unix:$T/b.sock"; then
    check "allow_from 10.0.0.0/8: a request from 127.0.0.1 is closed without an answer" \
        refused "$P2"
    check "allow_from does not apply to unix listeners" \
        served uwsgi "unix:$T/b.sock"
    wait_until 3 grep -q "refused" "$CORRAL_LOG"
    expect_file_match "the refusal is logged with the listener and the peer" \
        "warn .*fastcgi:tcp:127\.0\.0\.1:$P2: peer 127\.0\.0\.1:[0-9]+ refused: not in allow_from" "$CORRAL_LOG"
    # A burst of 30 connections within about a second: at most a line or two,
    # and the next line counts the ones left out.
    sleep 1.1
    before=$(grep -c "refused: not in allow_from" "$CORRAL_LOG")
    start_ms=$(now_ms)
    "$PY" - "$P2" <<'PY'
import socket, sys
for _ in range(30):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    try:
        s.recv(1)
    except OSError:
        pass
    s.close()
PY
    took_s=$(( ($(now_ms) - start_ms) / 1000 + 1 ))
    sleep 1.1
    check "a refused connection after the burst is closed too" refused "$P2"
    wait_until 3 grep -q "more refused since the last line" "$CORRAL_LOG"
    after=$(grep -c "refused: not in allow_from" "$CORRAL_LOG")
    lines=$((after - before))
    expect_lt "31 refusals in ${took_s}+1 s make at most one line a second" "$lines" "$((took_s + 3))"
    expect_file_match "the line after a burst counts the suppressed refusals" \
        "refused: not in allow_from .*\(([1-9][0-9]*) more refused since the last line\)" "$CORRAL_LOG"
    suppressed=$(sed -n 's/.*(\([0-9]*\) more refused since the last line).*/\1/p' "$CORRAL_LOG" | awk '{ s += $1 } END { print s + 0 }')
    expect_eq "logged + suppressed refusals add up to the 32 connections" 32 "$((after + suppressed))"
    stop_corral
fi

# ---- --allow-from with the peer in it
P3=$(free_port)
if start_corral --listen "scgi:tcp:127.0.0.1:$P3" --allow-from 10.0.0.0/8 \
    --allow-from 127.0.0.1/32 --handler "$DEMO_SO"; then
    check "allow_from 127.0.0.1/32 among others: served" \
        served scgi "tcp:127.0.0.1:$P3"
    stop_corral
fi

# ---- as root: refused without --uid or --allow-root
if [ "$(id -u)" = 0 ]; then
    timeout 10 "$CORRAL" --listen "uwsgi:unix:$T/r.sock" --handler "$DEMO_SO" >"$T/root.out" 2>&1 </dev/null
    rc=$?
    expect_eq "as root without --uid/--allow-root: exit status 1" 1 "$rc"
    expect_match "... with a message saying what to do" \
        "corral: refusing to run the application as root: give --uid USER .* or --allow-root" "$(cat "$T/root.out")"
    check_not "... before binding anything" test -e "$T/r.sock"
    timeout 10 "$CORRAL" -t --listen "uwsgi:unix:$T/r.sock" --handler "$DEMO_SO" >"$T/root-t.out" 2>&1 </dev/null
    expect_eq "-t as root without --uid/--allow-root: exit status 1 (the start would be refused)" 1 "$?"
    expect_match "... with the same message" "refusing to run the application as root" "$(cat "$T/root-t.out")"
    timeout 10 "$CORRAL" --listen "uwsgi:unix:$T/r.sock" --handler "$DEMO_SO" --uid root >"$T/root2.out" 2>&1 </dev/null
    expect_match "--uid root is refused too" "--uid root is root; give another user, or --allow-root" "$(cat "$T/root2.out")"

    # ---- --uid nobody --gid nogroup --chown: master and workers run as nobody
    NOBODY=$(id -u nobody) NOGROUP=$(getent group nogroup | cut -d: -f3)
    P4=$(free_port)
    # The master must not run as root: no --allow-root for this one.
    saved=("${ALLOW_ROOT[@]}")
    ALLOW_ROOT=()
    if start_corral --listen "uwsgi:unix:$T/u.sock" --listen "uwsgi:tcp:127.0.0.1:$P4" \
        --handler "$DEMO_SO" --processes 2 --uid nobody --gid nogroup \
        --chown "nobody:nogroup" --chmod 0660; then
        expect_eq "--uid nobody: the master's uid" "$NOBODY" "$(uid_of "$CORRAL_PID")"
        expect_eq "--gid nogroup: the master's gid" "$NOGROUP" "$(gid_of "$CORRAL_PID")"
        kids=$(children_of "$CORRAL_PID")
        expect_eq "two workers" 2 "$(echo "$kids" | wc -w)"
        for k in $kids; do
            expect_eq "worker $k runs as nobody:nogroup" "$NOBODY:$NOGROUP" "$(uid_of "$k"):$(gid_of "$k")"
        done
        expect_eq "the master has no supplementary group of root" "" \
            "$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$CORRAL_PID/status" | tr -d ' ' | grep -w 0)"
        expect_eq "--chown nobody:nogroup: the socket file's owner" "nobody:nogroup" "$(stat -c %U:%G "$T/u.sock")"
        expect_eq "... and --chmod still applies" "660" "$(stat -c %a "$T/u.sock")"
        check "served over the unix socket as nobody" served uwsgi "unix:$T/u.sock"
        check "served over TCP as nobody" served uwsgi "tcp:127.0.0.1:$P4"
        expect_file_match "the drop is logged" "running as uid $NOBODY, gid $NOGROUP" "$CORRAL_LOG"
        stop_corral
        expect_eq "stopped by SIGTERM as nobody: exit status 0" 0 "$CORRAL_STATUS"
        # $T belongs to root: nobody cannot unlink there. Said, not silent.
        expect_file_match "as nobody: a socket file it cannot remove is named in the log" \
            "could not remove the socket file $T/u.sock: Permission denied \\(uid $NOBODY\\)" "$CORRAL_LOG"
    fi
    ALLOW_ROOT=("${saved[@]}")
else
    timeout 10 "$CORRAL" --listen "uwsgi:unix:$T/r.sock" --handler "$DEMO_SO" --uid root >"$T/nr.out" 2>&1 </dev/null
    expect_match "not root: --uid of another user is refused" "need root to switch users" "$(cat "$T/nr.out")"
fi

# ---- systemd readiness: a fake NOTIFY_SOCKET
NOTIFY=$T/notify.sock
"$PY" - "$NOTIFY" "$T/notify.log" <<'PY' &
import os, socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
with open(log, "a", buffering=1) as out:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        fields = dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)
        extra = ""
        if "READY" in fields:
            # Which workers exist, and what state, at the moment READY=1 arrives.
            pid = fields.get("MAINPID", "0")
            kids = []
            for p in os.listdir("/proc"):
                try:
                    if p.isdigit() and open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[1] == pid:
                        kids.append(p)
                except OSError:
                    pass
            extra = " children=%d" % len(kids)
        out.write("%.3f %s%s\n" % (time.time(), msg.replace("\n", "|"), extra))
        if "STOPPING" in fields:
            break
PY
NOTIFY_PID=$!
_track "$NOTIFY_PID"
wait_until 5 test -S "$NOTIFY"
P5=$(free_port)
export NOTIFY_SOCKET=$NOTIFY
if start_corral --listen "fastcgi:tcp:127.0.0.1:$P5" --handler "$DEMO_SO" --processes 3 --threads 2; then
    unset NOTIFY_SOCKET
    wait_until 5 grep -q READY=1 "$T/notify.log"
    expect_file_match "READY=1 arrives, with MAINPID and a STATUS" \
        "READY=1\|STATUS=serving: 3 processes x 2 threads, 1 listeners\|MAINPID=$CORRAL_PID" "$T/notify.log"
    expect_file_match "... once the 3 workers exist" "READY=1.* children=3$" "$T/notify.log"
    expect_file_match "... and after every worker reported RUNNING" "every worker is running: told systemd READY=1" "$CORRAL_LOG"
    check "the pool serves after READY=1" served fastcgi "tcp:127.0.0.1:$P5"
    stop_corral
    wait_until 5 grep -q STOPPING=1 "$T/notify.log"
    expect_file_match "SIGTERM sends STOPPING=1" "STOPPING=1\|STATUS=stopping gracefully" "$T/notify.log"
    expect_eq "READY=1 was sent once" 1 "$(grep -c READY=1 "$T/notify.log")"
fi
unset NOTIFY_SOCKET
stop_pid "$NOTIFY_PID" >/dev/null
_forget_pid "$NOTIFY_PID"

# ---- socket activation: systemd-socket-activate passes a TCP and a unix socket
need systemd-socket-activate systemd
P6=$(free_port)
SA_LOG=$T/activate-error.log
systemd-socket-activate -l "127.0.0.1:$P6" -l "$T/act.sock" --fdname=fastcgi:uwsgi \
    "$CORRAL" "${ALLOW_ROOT[@]}" --handler "$DEMO_SO" --error-log "$SA_LOG" --chmod 0666 \
    >"$T/activate.out" 2>&1 </dev/null &
SA_PID=$!
_track "$SA_PID"
# systemd-socket-activate execs corral on the first connection: same pid.
if wait_until 10 "$PY" -m lib_protocols ping fastcgi "tcp:127.0.0.1:$P6"; then
    ok "socket activation: a FastCGI request through the inherited TCP socket"
else
    fail "socket activation: a FastCGI request through the inherited TCP socket" "$(cat "$T/activate.out")" "$(tail -n 20 "$SA_LOG" 2>/dev/null)"
fi
check "socket activation: a uwsgi request through the inherited unix socket" \
    served uwsgi "unix:$T/act.sock"
expect_file_match "the inherited sockets are listeners named by LISTEN_FDNAMES" \
    "listening on fastcgi:fd:3 \(peers allowed: 127\.0\.0\.0/8, ::1/128\)" "$SA_LOG"
expect_file_match "... the unix one too" "listening on uwsgi:fd:4$" "$SA_LOG"
expect_eq "systemd-socket-activate became corral (LISTEN_PID is ours)" "corral" "$(cat "/proc/$SA_PID/comm" 2>/dev/null)"
stop_pid "$SA_PID"
expect_eq "socket-activated corral stops with status 0" 0 "$?"
_forget_pid "$SA_PID"

# LISTEN_FDS meant for another process: ignored (no listener, so refused).
LISTEN_PID=1 LISTEN_FDS=1 LISTEN_FDNAMES=fastcgi timeout 10 "$CORRAL" "${ALLOW_ROOT[@]}" \
    --handler "$DEMO_SO" >"$T/otherpid.out" 2>&1 </dev/null
expect_match "LISTEN_PID of another process: the descriptors are not taken" "no listener" "$(cat "$T/otherpid.out")"
# A descriptor without a protocol name: a clear error.
"$PY" - "$CORRAL" "$DEMO_SO" "${ALLOW_ROOT[@]}" >"$T/noname.out" 2>&1 <<'PY'
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
os.dup2(s.fileno(), 3)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="unknown")
os.execv(sys.argv[1], [sys.argv[1], "--handler", sys.argv[2]] + sys.argv[3:])
PY
expect_match "a descriptor named 'unknown' is refused with a hint" \
    "socket activation: descriptor 3 is named 'unknown' \(LISTEN_FDNAMES\): expected uwsgi, fastcgi, scgi or PROTO:NAME" \
    "$(cat "$T/noname.out")"

finish
