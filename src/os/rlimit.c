/*
 * rlimit.c — the open files limit at start (rlimit.h). Running out of
 * descriptors later is worker/worker_accept.c's: it backs off accepting.
 */
#include "rlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"

/* What an unlimited hard limit is raised to: the kernel refuses more than
 * fs.nr_open, whose default is this. */
#define RLIMIT_NOFILE_UNLIMITED (1ul << 20)

unsigned long rlimit_raise_nofile(unsigned long max_conns, unsigned long listeners)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_msg(LOG_WARN, "getrlimit(RLIMIT_NOFILE) failed: %s", strerror(errno));
        return 0;
    }
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? RLIMIT_NOFILE_UNLIMITED : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
            log_msg(LOG_WARN,
                    "setrlimit(RLIMIT_NOFILE, %lu) failed: %s; the open files limit "
                    "stays %lu",
                    (unsigned long)want, strerror(errno), (unsigned long)rl.rlim_cur);
        } else {
            log_msg(LOG_INFO, "open files limit (RLIMIT_NOFILE) raised from %lu to %lu",
                    (unsigned long)rl.rlim_cur, (unsigned long)want);
            rl.rlim_cur = want;
        }
    }
    unsigned long soft = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)RLIMIT_NOFILE_UNLIMITED
                                                      : (unsigned long)rl.rlim_cur;
    unsigned long need = max_conns + listeners + RLIMIT_NOFILE_MARGIN;
    if (need > soft)
        log_msg(LOG_WARN,
                "a worker may need %lu file descriptors (max_conns %lu, %lu listeners, "
                "%d for the rest) but the open files limit (RLIMIT_NOFILE) is %lu, hard %lu: "
                "past it a worker stops accepting for a moment; raise the limit (ulimit -n, "
                "systemd's LimitNOFILE=) or lower --max-conns",
                need, max_conns, listeners, RLIMIT_NOFILE_MARGIN, soft,
                rl.rlim_max == RLIM_INFINITY ? (unsigned long)RLIMIT_NOFILE_UNLIMITED
                                             : (unsigned long)rl.rlim_max);
    return soft;
}
