#!/bin/bash
# paths.sh -- the paths corral opens as root never follow a symbolic link
# planted by a user who can write their directory: the pidfile (also locked:
# a second server on it refuses to start and leaves it alone), the error
# log, and the unix socket file (--chmod is applied as bind creates it,
# --chown never reaches the target of a link swapped in after the bind).
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$DEMO_SO"

# a file only root may read, with known content
victim() { printf 'precious\n' >"$1"; chmod 0600 "$1"; }

# ---- a symbolic link at the pidfile path is refused, its target untouched
victim "$T/victim-pid"
ln -s "$T/victim-pid" "$T/link.pid"
run_corral pidlink --listen "uwsgi:unix:$T/pl.sock" --handler "$DEMO_SO" \
    --pidfile "$T/link.pid" --error-log "$T/pidlink.log"
expect_eq "a symlink at the pidfile path: corral refuses to start (exit 1)" 1 "$RC"
expect_eq "the link's target keeps its content" "precious" "$(cat "$T/victim-pid")"
expect_file_match "the refusal names the pidfile" \
    "error .*the pidfile \"$T/link\.pid\": open failed: .*symbolic link" "$T/pidlink.log"
check "the link is left as it was" test -L "$T/link.pid"
check_not "no socket file was left behind" test -e "$T/pl.sock"

# ---- the pidfile is locked: a second server on it refuses and leaves it alone
if start_corral --listen "uwsgi:unix:$T/a.sock" --handler "$DEMO_SO" --processes 1 \
    --pidfile "$T/lock.pid"; then
    FIRST=$CORRAL_PID
    run_corral second --listen "uwsgi:unix:$T/b.sock" --handler "$DEMO_SO" --processes 1 \
        --pidfile "$T/lock.pid" --error-log "$T/second.log"
    expect_eq "a second corral on a locked pidfile refuses to start (exit 1)" 1 "$RC"
    expect_file_match "its one line names the pidfile and the pid holding it" \
        "error .*the pidfile \"$T/lock\.pid\" is locked by a running server \(pid $FIRST\)" \
        "$T/second.log"
    expect_eq "the refused one logged one error line" 1 "$(grep -c ' error ' "$T/second.log")"
    check_not "the refused one bound nothing" test -e "$T/b.sock"
    expect_eq "the pidfile still holds the first server's pid" "$FIRST" \
        "$(tr -d '[:space:]' <"$T/lock.pid")"
    check "the first server still runs" alive "$FIRST"
    stop_corral
    expect_eq "the first server stopped cleanly" 0 "$CORRAL_STATUS"
    check_not "the server holding the lock removes the pidfile at its stop" test -e "$T/lock.pid"
fi

# ---- a stale pidfile (no lock held) is taken over
echo 999999 >"$T/stale.pid"
if start_corral --listen "uwsgi:unix:$T/s.sock" --handler "$DEMO_SO" --processes 1 \
    --pidfile "$T/stale.pid"; then
    expect_eq "a stale pidfile gets the new pid" "$CORRAL_PID" \
        "$(tr -d '[:space:]' <"$T/stale.pid")"
    stop_corral
fi

# ---- a symbolic link where the error log goes is refused
victim "$T/victim-log"
ln -s "$T/victim-log" "$T/link.log"
run_corral loglink --listen "uwsgi:unix:$T/ll.sock" --handler "$DEMO_SO" \
    --error-log "$T/link.log" --pidfile "$T/ll.pid"
expect_eq "a symlink at the error log path: corral refuses to start (exit 1)" 1 "$RC"
expect_eq "the log link's target keeps its content" "precious" "$(cat "$T/victim-log")"
expect_match "the refusal names the log file" "open\(\"$T/link\.log\"\) failed" "$OUT"

# ---- a --preload reload re-executes the master: the lock stays held, by
# the master alone (not its workers)
if "$CORRAL" --help 2>&1 | grep -q -- --wsgi-file && [ -x "$top_builddir/corralctl" ]; then
    cp "$top_srcdir/tests/apps/wsgi_preload.py" "$T/app.py"
    echo 0 >"$T/version"
    if start_corral --listen "uwsgi:unix:$T/w.sock" --wsgi-file "$T/app.py" --preload \
        --processes 2 --env "VERSION_FILE=$T/version" --control "$T/ctl.sock" \
        --pidfile "$T/rx.pid"; then
        timeout 20 "$top_builddir/corralctl" -s "$T/ctl.sock" reload >"$T/ctl.out" 2>&1
        expect_eq "corralctl reload (a re-exec with --preload) exits 0" 0 "$?"
        check "the master re-executed itself" grep -q "re-executing the master" "$CORRAL_LOG"
        run_corral rxsecond --listen "uwsgi:unix:$T/w2.sock" --handler "$DEMO_SO" \
            --pidfile "$T/rx.pid" --error-log "$T/rxsecond.log"
        expect_eq "after the re-exec a second corral on the pidfile still refuses (exit 1)" 1 "$RC"
        expect_file_match "and names the re-executed master's pid" \
            "is locked by a running server \(pid $CORRAL_PID\)" "$T/rxsecond.log"
        held=""
        for k in $(children_of "$CORRAL_PID"); do
            for f in /proc/$k/fd/*; do
                [ "$(readlink "$f")" = "$T/rx.pid" ] && held="$held $k"
            done
        done
        expect_eq "no worker holds the pidfile open" "" "$held"
        stop_corral
        expect_eq "the re-executed master stopped cleanly" 0 "$CORRAL_STATUS"
        check_not "and removed the pidfile it held" test -e "$T/rx.pid"
    fi
fi

if [ "$(id -u)" = 0 ]; then
    # ---- --chown/--chmod give the socket file its owner and mode
    if start_corral --listen "uwsgi:unix:$T/own.sock" --handler "$DEMO_SO" --processes 1 \
        --chown nobody:nogroup --chmod 0640; then
        expect_eq "--chown nobody:nogroup --chmod 0640: the socket's owner and mode" \
            "nobody:nogroup 640 socket" "$(stat -c '%U:%G %a %F' "$T/own.sock")"
        stop_corral
    fi
    if start_corral --listen "uwsgi:unix:$T/m.sock" --handler "$DEMO_SO" --processes 1 \
        --chmod 0602; then
        expect_eq "--chmod 0602 (umask 022 would clear the 2): the socket's mode" \
            "602" "$(stat -c '%a' "$T/m.sock")"
        stop_corral
    fi

    # ---- a symlink at the socket path before the start is not followed
    victim "$T/victim-sock"
    ln -s "$T/victim-sock" "$T/pre.sock"
    run_corral presock --listen "uwsgi:unix:$T/pre.sock" --handler "$DEMO_SO" \
        --chown nobody:nogroup --chmod 0666 --pidfile "$T/pre.pid" --error-log "$T/pre.log"
    expect_eq "a symlink at the socket path: corral refuses to start (exit 1)" 1 "$RC"
    expect_eq "its target keeps owner and mode" "root 600" "$(stat -c '%U %a' "$T/victim-sock")"

    # ---- the race: the socket file swapped for a symlink right after bind()
    # (a preloaded bind() does the swap, as a user writing the directory could)
    if cc -shared -fPIC -o "$T/swap.so" -x c - -ldl 2>"$T/cc.err" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    int (*real)(int, const struct sockaddr *, socklen_t) =
        (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    int rc = real(fd, sa, len);
    const char *path = getenv("SWAP_PATH"), *target = getenv("SWAP_TARGET");
    const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
    if (rc == 0 && path && target && sa->sa_family == AF_UNIX && !strcmp(sun->sun_path, path)) {
        char moved[200];
        snprintf(moved, sizeof(moved), "%s.moved", path);
        rename(path, moved);
        symlink(target, path);
    }
    return rc;
}
C
    then
        victim "$T/victim-race"
        SWAP_PATH=$T/race.sock SWAP_TARGET=$T/victim-race LD_PRELOAD=$T/swap.so \
            run_corral race --listen "uwsgi:unix:$T/race.sock" --handler "$DEMO_SO" \
            --processes 1 --chown nobody:nogroup --chmod 0666 --pidfile "$T/race.pid" \
            --error-log "$T/race.log"
        check "the preloaded bind() swapped the socket for a symlink" test -e "$T/race.sock.moved"
        expect_eq "a socket swapped for a symlink after bind: its target keeps owner and mode" \
            "root:root 600" "$(stat -c '%U:%G %a' "$T/victim-race")"
        expect_eq "and corral refuses to go on (exit 1)" 1 "$RC"
        expect_file_match "the refusal says the file is no longer a socket" \
            "chown\(\"$T/race\.sock\"\) refused: the file is no longer a socket" "$T/race.log"
    else
        say "skip: the bind() swap needs a C compiler: $(head -n 1 "$T/cc.err")"
    fi
else
    say "skip: --chown and the socket-path checks need root"
fi

finish
