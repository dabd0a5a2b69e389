/*
 * master_limits.c — the master's time limits on running workers, checked
 * each tick: harakiri for a worker that could not end itself, and the
 * graceful timeout of a worker that stops on its own or on a scale-down.
 * (A whole stop and a reload keep their own deadlines.)
 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "core/log.h"
#include "master_state.h"
#include "conn/request.h"
#include "core/clock.h"

/* The worker's own watchdog ends a worker whose request overran
 * --harakiri. If it could not (the process is stopped, or stuck where its
 * watchdog thread cannot run), the master kills it a grace period later. */
#define MASTER_HARAKIRI_GRACE_MS 3000
void master_check_harakiri(struct master *m)
{
    if (!m->cfg->harakiri_ms)
        return;
    uint64_t now_us = clock_now_us();
    uint64_t limit_us = ((uint64_t)m->cfg->harakiri_ms + MASTER_HARAKIRI_GRACE_MS) * 1000;
    for (unsigned i = 0; i < m->slots_used; i++) {
        struct master_worker *mw = &m->workers[i];
        if (!mw->pid || mw->harakiri_killed)
            continue;
        for (unsigned t = 0; t < m->sb.hdr->threads; t++) {
            struct sb_thread *st = scoreboard_thread(&m->sb, i, t);
            uint64_t start = atomic_load_explicit(&st->request_start_us, memory_order_relaxed);
            char method[MASTER_METHOD_LEN], uri[MASTER_URI_LEN];
            if (!start || now_us < start || now_us - start < limit_us ||
                !master_thread_request(m, i, t, method, uri))
                continue;
            log_msg(LOG_ERROR,
                    "harakiri: worker %u (pid %d) thread %u: %s %s has run for %.1f s and the "
                    "worker did not end itself: killing it",
                    i, (int)mw->pid, t, method, uri, (double)(now_us - start) / 1e6);
            kill(mw->pid, SIGKILL);
            mw->harakiri_killed = true;
            break;
        }
    }
}

/*
 * A worker that stops on its own or on a scale-down (recycling, the ondemand
 * idle exit, SIGTERM from the pool) finishes its requests first; one that
 * is still at it after --graceful-timeout is killed, as a whole stop or a
 * reload would (a request stuck without --harakiri must not keep a
 * recycled worker, and its memory, forever). Its slot is refilled as
 * after any death.
 */
void master_check_stopping(struct master *m, uint64_t now)
{
    for (unsigned i = 0; i < m->slots_used; i++) {
        struct master_worker *mw = &m->workers[i];
        if (!mw->pid ||
            atomic_load_explicit(&m->sb.workers[i].state, memory_order_relaxed) !=
                SB_WORKER_STOPPING)
            continue;
        if (mw->stop_seen_pid != mw->pid) {
            mw->stop_seen_pid = mw->pid;
            mw->stop_seen_ms = now;
            continue;
        }
        if (now - mw->stop_seen_ms < m->cfg->graceful_timeout_ms)
            continue;
        log_msg(LOG_WARN, "worker %u (pid %d) has been stopping for %.1f s (graceful_timeout) "
                "with %d connection(s) still open: killing it", i, (int)mw->pid,
                (double)(now - mw->stop_seen_ms) / 1000.0,
                (int)atomic_load_explicit(&m->sb.workers[i].conns, memory_order_relaxed));
        kill(mw->pid, SIGKILL);
        mw->stop_seen_ms = now; /* once more a timeout later if SIGKILL is not reaped */
    }
}
