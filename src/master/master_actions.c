/*
 * master_actions.c — what a signal or a control command asks of the pool:
 * stop (gracefully or now, after --stop-delay), scale to a size, reopen the
 * logs. master.c (signals) and master_cmd.c (commands) call these; the stop
 * sequence itself (deadlines, reaping) runs in master.c's loop, which ends
 * the stop delay through master_stop_delay_tick.
 */
#include <signal.h>
#include <stdio.h>

#include "core/clock.h"
#include "core/log.h"
#include "master_state.h"

#define MASTER_STOP_NOW_MS 3000 /* SIGQUIT → SIGKILL */

/* SIGTERM with --stop-delay: keep serving first (see master_stop). A
 * reload in progress goes on, but a --preload one fails before its re-exec
 * (master_reload_reexec); a new reload is refused (master_reload). */
static void master_stop_delay_begin(struct master *m)
{
    unsigned ms = m->cfg->stop_delay_ms;
    m->stop_delay_until_ms = clock_now_ms() + ms;
    systemd_notify_send(&m->notify, "STOPPING=1\nSTATUS=stop delay: still serving");
    log_msg(LOG_INFO,
            "stop delay: still accepting and serving for %u.%03u s (the health path answers "
            "503), then stopping gracefully; SIGTERM again to stop now",
            ms / 1000, ms % 1000);
}

/* The stop itself, graceful (NOW false) or immediate. */
static void master_stop_begin(struct master *m, bool now)
{
    m->stop_delay_until_ms = 0;
    if (m->state == MASTER_RUNNING) {
        /* No new connections by path; the workers still hold the sockets and
         * drain what is already queued. */
        master_pool_unwatch(m);
        for (size_t i = 0; i < m->listener_count; i++)
            listen_close(&m->listeners[i], true);
    }
    if (m->state == MASTER_RUNNING)
        systemd_notify_send(&m->notify, now ? "STOPPING=1\nSTATUS=stopping now"
                                            : "STOPPING=1\nSTATUS=stopping gracefully");
    master_reexec_cancel(m);
    m->state = now ? MASTER_STOPPING_NOW : MASTER_STOPPING;
    m->deadline_ms =
        clock_now_ms() + (now ? MASTER_STOP_NOW_MS : (uint64_t)m->cfg->graceful_timeout_ms);
    log_msg(LOG_INFO, "%s: %u workers to stop",
            now ? "stopping now" : "stopping gracefully (draining queued connections)", m->live);
    master_signal_workers(m, now ? SIGQUIT : SIGTERM);
}

void master_stop(struct master *m, bool now)
{
    if (m->state == MASTER_STOPPING_NOW || (m->state == MASTER_STOPPING && !now))
        return;
    if (m->state == MASTER_RUNNING && !now && !m->stop_delay_until_ms && m->cfg->stop_delay_ms &&
        m->live) {
        master_stop_delay_begin(m);
        return;
    }
    if (m->stop_delay_until_ms && !now)
        log_msg(LOG_INFO, "stop delay ended early: a second stop was asked");
    master_stop_begin(m, now);
}

void master_stop_delay_tick(struct master *m, uint64_t now)
{
    if (m->state != MASTER_RUNNING || !m->stop_delay_until_ms)
        return;
    if (now < m->stop_delay_until_ms && m->live)
        return;
    log_msg(LOG_INFO, "stop delay over%s", m->live ? "" : ": no worker runs");
    master_stop_begin(m, false);
}

int master_scale(struct master *m, unsigned target, const char *why, char *err, size_t errlen)
{
    if (m->state != MASTER_RUNNING || m->stop_delay_until_ms) {
        snprintf(err, errlen, "corral is stopping: the pool cannot be scaled");
        return -1;
    }
    if (m->reload.phase != RELOAD_IDLE) {
        snprintf(err, errlen, "a reload is in progress (%s): scale when it is done",
                 master_reload_phase_name(m->reload.phase));
        return -1;
    }
    if (m->reload.stranded) {
        snprintf(err, errlen,
                 "the workers serving cannot be replaced (the app failed to import "
                 "after a re-exec): reload first");
        return -1;
    }
    if (m->pool.mode != POOL_STATIC) {
        snprintf(err, errlen,
                 "the pool is %s: it sizes itself (scaling by hand applies to --pool static)",
                 config_pool_mode_name(m->pool.mode));
        return -1;
    }
    if (target < 1) {
        snprintf(err, errlen, "the pool needs at least 1 process");
        return -1;
    }
    if (target > m->max_workers) {
        snprintf(err, errlen,
                 "%u processes is over the maximum of %u (--max-processes, which sizes the "
                 "scoreboard at start: raising it needs a restart)",
                 target, m->max_workers);
        return -1;
    }
    unsigned old = m->target;
    uint64_t now = clock_now_ms();
    for (unsigned i = old; i < target; i++) {
        struct master_worker *mw = &m->workers[master_slot(m, i)];
        if (!mw->pid) {
            mw->respawn_at_ms = now;
            mw->fast_deaths = 0;
        }
        /* A worker still stopping from an earlier scale-down is replaced
         * when it exits (master_reap). */
    }
    for (unsigned i = target; i < old; i++) {
        struct master_worker *mw = &m->workers[master_slot(m, i)];
        mw->respawn_at_ms = 0;
        if (mw->pid && !mw->retiring) {
            kill(mw->pid, SIGTERM);
            mw->retiring = true;
        }
    }
    m->target = target;
    master_update_slots(m);
    if (target != old)
        log_msg(LOG_INFO, "%s: scaling from %u to %u processes", why, old, target);
    return 0;
}

int master_reopen_logs(struct master *m, char *err, size_t errlen)
{
    int rc = log_reopen_err(err, errlen);
    if (rc < 0)
        log_msg(LOG_ERROR, "reopening the logs: %s (still writing to the old file)", err);
    master_signal_workers(m, SIGUSR1);
    log_msg(LOG_INFO, "log files reopened; %u workers asked to reopen theirs", m->live);
    return rc < 0 ? -1 : (int)m->live;
}
