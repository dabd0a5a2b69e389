#!/bin/bash
# wsgi_runtime.sh -- how a WSGI app lives in corral's processes
# (tests/apps/wsgi_runtime.py): lazy import (default) and --preload, a
# --virtualenv made here, Python threads the app starts, a 1 GiB upload with
# the worker's peak RSS measured, close() when the front end goes away
# mid-stream, HEAD, and an app that tries to take SIGTERM.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-150}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
APP=$top_srcdir/tests/apps/wsgi_runtime.py
CLOSE_LOG=$T/close.log
export CLOSE_LOG

# ---- lazy (default): each worker imports the app after the fork
start_corral --listen "uwsgi:unix:$T/l.sock" --wsgi-file "$APP" --processes 2 --threads 2 \
    --env "WSGI_TEST_CLOSE_LOG=$CLOSE_LOG" || finish
LAZY_MASTER=$CORRAL_PID
py_checks "$T" "$LAZY_MASTER" <<'PY'
import os, socket, sys, time
from lib_protocols import ask_worker, cgi_params, connect, hammer, header, parse_response, \
    recv_all, report, request, uwsgi_packet
T, master = sys.argv[1], int(sys.argv[2])
addr = "unix:%s/l.sock" % T
pids = set()
for _ in range(40):
    st, _, b = request("uwsgi", addr, "GET", "/pid")
    imported, worker = map(int, b.split())
    pids.add((imported, worker))
report("lazy: every worker imported the app itself (import pid == worker pid)",
       all(i == w and w != master for i, w in pids), pids)

# Python threads the app starts keep running between requests.
st, _, b = request("uwsgi", addr, "GET", "/ticker")
pid, first = map(int, b.split())
time.sleep(0.5)
b = ask_worker("uwsgi", addr, "/ticker", pid)
seen = int(b.split()[1]) if b else None
report("an app thread runs between requests (%s ticks of 10 ms in 0.5 s)" % (
       None if seen is None else seen - first), seen is not None and seen - first >= 10,
       (first, seen))

# HEAD: the head as the app made it, no body.
for method in ("GET", "HEAD"):
    s = connect(addr)
    s.sendall(uwsgi_packet(cgi_params(method, "/hello")))
    raw = recv_all(s, time.monotonic() + 10)
    s.close()
    st, h, body = parse_response(raw)
    want = b"Hello, World!" if method == "GET" else b""
    report("%s /hello: 200, Content-Length 13, body %r" % (method, want),
           st == 200 and header(h, "Content-Length") == "13" and body == want, raw)

# 1 GiB streamed up; the worker reads it in 64 KiB pieces.
size = 1 << 30
s = connect(addr, timeout=60)
s.sendall(uwsgi_packet(cgi_params("POST", "/upload", body_len=size,
                                  content_type="application/octet-stream")))
chunk = bytes(range(256)) * 4096  # 1 MiB
import zlib
crc = 0
for _ in range(size // len(chunk)):
    s.sendall(chunk)
for _ in range(size // len(chunk)):
    crc = zlib.crc32(chunk, crc)
raw = recv_all(s, time.monotonic() + 60)
s.close()
st, _, body = parse_response(raw)
total, got_crc, hwm, before = map(int, body.split())
report("1 GiB upload: every byte arrived (crc32 matches)", st == 200 and total == size and
       got_crc == crc, body)
report("1 GiB upload: the worker's peak RSS grew %d KiB (< 32 MiB; peak %d KiB)" % (
       hwm - before, hwm), hwm - before < 32 * 1024, (hwm, before))

# The front end goes away mid-stream: close() runs, the generator stops.
s = connect(addr)
s.sendall(uwsgi_packet(cgi_params("GET", "/drip")))
got = b""
while b"tick 2\n" not in got:
    got += s.recv(4096)
s.close()
t0 = time.monotonic()
line = ""
while time.monotonic() - t0 < 5:
    try:
        line = open(os.environ["CLOSE_LOG"]).read()
    except FileNotFoundError:
        pass
    if line:
        break
    time.sleep(0.05)
n = int(line.split()[-1]) if line.startswith("closed after") else -1
report("the client went away: close() ran %.2f s later, after %d of 500 ticks" % (
       time.monotonic() - t0, n), 0 < n < 100, line)
PY
expect_file_match "the lost client is logged once, as a warning, with the request" \
    'warn .* GET /drip: the front end closed the connection before the response was complete' \
    "$CORRAL_LOG"
expect_no_match "... and not as a handler failure" 'handler failed' "$(cat "$CORRAL_LOG")"
expect_no_match "the app's own import stays out of the master" 'preloaded' "$(cat "$CORRAL_LOG")"
stop_corral

# ---- --preload: the master imports once; workers inherit it across fork
start_corral --listen "uwsgi:unix:$T/p.sock" --listen "fastcgi:unix:$T/pf.sock" \
    --wsgi-file "$APP" --processes 2 --threads 2 --preload || finish
PRE_MASTER=$CORRAL_PID
py_checks "$T" "$PRE_MASTER" <<'PY'
import sys, threading, time
from lib_protocols import FcgiConn, ask_worker, hammer, report, request
T, master = sys.argv[1], int(sys.argv[2])
addr = "unix:%s/p.sock" % T
seen = set()
def ask():
    _, _, b = request("uwsgi", addr, "GET", "/pid?ms=100")
    seen.add(tuple(map(int, b.split())))
for _ in range(3):  # 8 at once on 2 x 2 threads: both workers must serve
    ts = [threading.Thread(target=ask) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
imports = {i for i, _ in seen}
workers = {w for _, w in seen}
report("preload: the app was imported once, in the master", imports == {master}, seen)
report("preload: both workers serve it", len(workers) == 2 and master not in workers, seen)
_, _, b = request("uwsgi", addr, "GET", "/ticker")
pid, first = map(int, b.split())
time.sleep(0.5)
b = ask_worker("uwsgi", addr, "/ticker", pid)
seen = int(b.split()[1]) if b else None
report("preload: a thread the app starts after the fork runs", seen is not None and
       seen - first >= 10, (first, seen))
good, errs, secs = hammer("uwsgi", addr, "/hello", 300, 8, expect_body=b"Hello, World!")
report("preload: 300 requests from 8 clients (%.1f s)" % secs, good == 300, errs)
c = FcgiConn("unix:%s/pf.sock" % T, keep_conn=True, timeout=20)
try:
    answers = [c.request("GET", "/hello")[2] for _ in range(5)]
finally:
    c.close()
report("preload: FastCGI keep-conn serves too", answers == [b"Hello, World!"] * 5, answers)
PY
expect_file_match "preload is logged" 'wsgi: preloaded in the master' "$CORRAL_LOG"
stop_corral
expect_eq "preload: corral stops with status 0" 0 "$CORRAL_STATUS"

# A broken app with --preload: the master logs the traceback, exits 1 at
# once, leaves no socket behind.
start_ms=$(now_ms)
timeout 20 "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/pb.sock" --processes 2 --preload \
    --wsgi-file "$top_srcdir/tests/apps/wsgi_broken.py" \
    --error-log "$T/pb-error.log" >"$T/pb.out" 2>&1 </dev/null
expect_eq "preload of a broken app: corral exits 1" 1 "$?"
expect_lt "... at once (ms)" "$(($(now_ms) - start_ms))" 10000
expect_file_match "... with the traceback" \
    'wsgi: loading .*wsgi_broken\.py:   File ".*wsgi_broken\.py", line 6, in helper' \
    "$T/pb-error.log"
expect_file_match "... and says the master stops" 'failed to load in the master' "$T/pb-error.log"
check "... and removes its socket" test ! -e "$T/pb.sock"

# ---- --virtualenv: a venv made here, with a module only it has
VENV=$T/venv
# A module of the embedded Python's own site-packages (Debian's: flask,
# installed by contrib/install-deps.sh; a pyenv build's: pip).
SYS_MODULE=$("$APP_PY" -c 'import importlib.util as u
print(next((n for n in ("flask", "pip") if u.find_spec(n)), "flask"))')
if "$APP_PY" -m venv --without-pip "$VENV" >"$T/venv.out" 2>&1; then
    site=$(echo "$VENV"/lib/python3*/site-packages)
    mkdir -p "$site/venvmark"
    : >"$site/venvmark/__init__.py"
    start_corral --listen "uwsgi:unix:$T/v.sock" --wsgi-file "$APP" --virtualenv "$VENV" || finish
    py_checks "$T" "$SYS_MODULE" <<'PY'
import sys
from lib_protocols import report, request
T, mod = sys.argv[1], sys.argv[2]
st, _, b = request("uwsgi", "unix:%s/v.sock" % T, "GET", "/prefix?module=" + mod)
words = b.decode().split()
report("virtualenv: sys.prefix is the venv", st == 200 and words[0] == T + "/venv", b)
report("virtualenv: its site-packages are on the path", "venvmark" in words, b)
report("virtualenv: the system's packages are not (include-system-site-packages = false)",
       mod not in words, b)
PY
    stop_corral
    sed -i 's/^include-system-site-packages = .*/include-system-site-packages = true/' \
        "$VENV/pyvenv.cfg"
    start_corral --listen "uwsgi:unix:$T/v2.sock" --wsgi-file "$APP" --virtualenv "$VENV" ||
        finish
    py_checks "$T" "$SYS_MODULE" <<'PY'
import sys
from lib_protocols import report, request
mod = sys.argv[2]
st, _, b = request("uwsgi", "unix:%s/v2.sock" % sys.argv[1], "GET", "/prefix?module=" + mod)
report("virtualenv with include-system-site-packages = true sees both (%s)" % mod,
       b"venvmark" in b and mod.encode() in b.split(), b)
PY
    stop_corral
    sed -i 's/^version = .*/version = 3.1.0/' "$VENV/pyvenv.cfg"
    check_not "a venv of another Python version is refused" \
        "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/x.sock" --wsgi-file "$APP" --virtualenv "$VENV"
    expect_match "... saying which versions" 'made by Python 3\.1, but corral embeds Python 3\.' \
        "$(cat "$T/.check.out")"
else
    fail "$APP_PY -m venv --without-pip works" "$(cat "$T/venv.out")"
fi
check_not "a directory that is not a venv is refused" \
    "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/x.sock" --wsgi-file "$APP" --virtualenv "$T"
expect_match "... naming pyvenv.cfg" "virtualenv '$T': not a virtual environment \(no readable pyvenv.cfg\)" \
    "$(cat "$T/.check.out")"
check_not "--virtualenv with a native handler is refused" \
    "$CORRAL" "${ALLOW_ROOT[@]}" --listen "uwsgi:unix:$T/x.sock" --handler "$DEMO_SO" --virtualenv "$T"
expect_match "... saying why" 'virtualenv applies to WSGI apps' "$(cat "$T/.check.out")"

# ---- the app cannot take corral's signals, lazy or preloaded
for mode in lazy preload; do
    extra=()
    [ $mode = preload ] && extra=(--preload)
    start_corral --listen "uwsgi:unix:$T/s-$mode.sock" --wsgi-file "$APP" --processes 2 \
        --env WSGI_TEST_GRAB_SIGNALS=1 "${extra[@]}" || finish
    check "$mode: the app serves" "$PY" -m lib_protocols ping uwsgi "unix:$T/s-$mode.sock"
    expect_file_match "$mode: signal.signal(SIGTERM) is refused with a warning" \
        'warn .*the app tried to set a handler for SIGTERM: ignored' "$CORRAL_LOG"
    expect_file_match "$mode: a C-level SIGUSR1 change is undone with a warning" \
        'warn .*changed the handling of SIGUSR1: restored' "$CORRAL_LOG"
    t0=$(now_ms)
    stop_corral
    expect_eq "$mode: SIGTERM still stops corral gracefully (status)" 0 "$CORRAL_STATUS"
    expect_lt "$mode: ... promptly, not at the 30 s kill deadline (ms)" "$(($(now_ms) - t0))" 5000
    expect_no_match "$mode: no worker had to be killed" 'SIGKILL|killing' "$(cat "$CORRAL_LOG")"
done

finish
