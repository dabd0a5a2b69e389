#!/bin/bash
# fds.sh -- the open files limit: raised at start to the hard limit (the
# master's /proc/PID/limits), a warning when max-conns cannot fit; and a
# worker out of file descriptors neither spins nor floods the log (its
# listeners leave epoll for a moment, one log line a second), then serves
# again once the connections that filled it are gone.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"
need prlimit prlimit

# with_nofile SOFT HARD : corral runs with that RLIMIT_NOFILE (prlimit execs
# it, so CORRAL_PID is corral's).
REAL_CORRAL=$CORRAL
with_nofile() {
    CORRAL=$T/corral-nofile-$1-$2
    printf '#!/bin/sh\nexec prlimit --nofile=%s:%s "%s" "$@"\n' "$1" "$2" "$REAL_CORRAL" >"$CORRAL"
    chmod +x "$CORRAL"
}

# nofile PID : "SOFT HARD" of its open files limit.
nofile() { awk '/^Max open files/ { print $4, $5 }' "/proc/$1/limits"; }

# ---- the raise: soft 256, hard 512
with_nofile 256 512
SOCK=$T/r.sock
start_corral --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --processes 1 --threads 1 || finish
expect_eq "the master's open files limit is raised to the hard limit" "512 512" "$(nofile "$CORRAL_PID")"
w=$(children_of "$CORRAL_PID")
expect_eq "the worker inherits it" "512 512" "$(nofile "$w")"
expect_file_match "the raise is logged" "RLIMIT_NOFILE. raised from 256 to 512" "$CORRAL_LOG"
expect_file_match "max-conns 1024 cannot fit in 512: a warning says so" \
    "may need 1089 file descriptors .*open files limit .RLIMIT_NOFILE. is 512" "$CORRAL_LOG"
stop_corral

# ---- out of descriptors: soft = hard = 64, so the raise cannot help; 150
# idle connections, about 100 more than the worker can hold.
with_nofile 64 64
SOCK=$T/u.sock
start_corral --listen "uwsgi:unix:$SOCK" --handler "$DEMO_SO" --processes 1 --threads 1 \
    --backlog 1024 --idle-timeout 60 || finish
CORRAL=$REAL_CORRAL
w=$(children_of "$CORRAL_PID")
expect_eq "soft = hard = 64: the limit stays" "64 64" "$(nofile "$CORRAL_PID")"
py_checks "$SOCK" "$w" "$CORRAL_LOG" <<'PY'
import os, socket, sys, time
from lib_protocols import request, report

path, pid, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tick = os.sysconf("SC_CLK_TCK")

def cpu_s():
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def emfile_lines():
    with open(log, errors="replace") as f:
        return sum("Too many open files" in line for line in f)

before = emfile_lines()
idle = []
for i in range(150):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    idle.append(s)
t0, c0 = time.monotonic(), cpu_s()
time.sleep(3)
elapsed, cpu = time.monotonic() - t0, cpu_s() - c0
lines = emfile_lines() - before
report("out of fds: the error log says so", lines >= 1, "no EMFILE line")
report("out of fds: at most one line a second about it (%d lines in %.1f s)" % (lines, elapsed),
       lines <= elapsed + 2, "%d lines" % lines)
report("out of fds: the worker does not spin (%.2f s CPU in %.1f s)" % (cpu, elapsed),
       cpu < 0.5 * elapsed, "%.2f s CPU" % cpu)
for s in idle:
    s.close()
ok, detail = False, ""
deadline = time.monotonic() + 10
while time.monotonic() < deadline and not ok:
    try:
        st, _, body = request("uwsgi", "unix:" + path, uri="/hello", timeout=5)
        ok = st == 200 and body == b"Hello, World!"
        detail = "%s %r" % (st, body[:80])
    except Exception as e:
        detail = repr(e)
        time.sleep(0.2)
report("the idle connections gone: a request is served again", ok, detail)
PY
expect_eq "the worker is the same process (it did not die of it)" "$w" "$(children_of "$CORRAL_PID")"
finish
