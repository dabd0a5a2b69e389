/*
 * master_adopt.c — reloads with --preload, the new image's side (see
 * master_reexec.c for the old one).
 *
 * main.c has already adopted the listeners and log files named in
 * $CORRAL_REEXEC and imported the app again; master_setup mapped the
 * scoreboard memfd and took over the control socket. Here the workers of
 * the previous image, which are still our children (execve keeps them),
 * are rebuilt from their scoreboard slots as the current generation, and
 * the reload goes on from STARTING exactly as a lazy one does. When the
 * import failed in this image although the check had passed (the code
 * changed in between, or it fails at random), there is nothing to go back
 * to: the old workers serve on, stranded, and the next reload tries again.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "master_state.h"
#include "core/clock.h"

void master_adopt(struct master *m, const struct reexec_state *rx)
{
    struct sb_header *h = m->sb.hdr;
    struct master_reload *r = &m->reload;
    r->generation = atomic_load(&h->generation);
    r->reloads = atomic_load(&h->reloads);
    r->failures = atomic_load(&h->reload_failed);
    r->last_ok = atomic_load(&h->reload_last_ok) == 1;
    memcpy(r->last, h->reload_last, sizeof(r->last));
    r->last[sizeof(r->last) - 1] = '\0';
    r->pending_hup = rx->pending_hup;
    snprintf(r->why, sizeof(r->why), "%s", rx->why);
    unsigned base = atomic_load(&h->bank_base);
    m->base = base == m->max_workers ? base : 0;
    if (config_pool_mode(m->cfg) == POOL_STATIC)
        m->target =
            rx->target >= 1 && rx->target <= m->max_workers ? rx->target : m->cfg->processes;
    uint64_t now = clock_now_ms();
    for (unsigned i = 0; i < 2 * m->max_workers; i++) {
        struct master_worker *mw = &m->workers[i];
        memset(mw, 0, sizeof(*mw));
        pid_t pid = atomic_load(&m->sb.workers[i].pid);
        if (pid <= 0)
            continue;
        /* Still ours? (One that ended during the exec is a zombie, still
         * ours, and reaped right after this.) */
        if (kill(pid, 0) < 0 && errno == ESRCH) {
            log_msg(LOG_WARN, "worker %u (pid %d) of the previous image is gone", i, (int)pid);
            atomic_store(&m->sb.workers[i].pid, 0);
            atomic_store(&m->sb.workers[i].state, SB_WORKER_EMPTY);
            continue;
        }
        mw->pid = pid;
        mw->started_ms = now - 60000; /* not a fast death if it ends now */
        m->live++;
        if (i + 1 > m->slots_used)
            m->slots_used = i + 1;
    }
    m->pool_was_up = true;
    m->ready_sent = true; /* READY=1 goes out when this reload ends */
}

void master_adopt_start(struct master *m, const struct reexec_state *rx, bool app_ok)
{
    struct master_reload *r = &m->reload;
    /* master_pool_start marked slots of the current bank to fork: the
     * adopted workers are there already. */
    for (unsigned i = 0; i < 2 * m->max_workers; i++)
        m->workers[i].respawn_at_ms = 0;
    log_msg(LOG_INFO, "%s: re-executed master (pid %d) took over %u workers of generation %u",
            r->why, (int)getpid(), m->live, r->generation);
    if (app_ok) {
        master_reload_adopted(m, rx->chain, rx->why);
        return;
    }
    r->phase = RELOAD_CHECKING; /* for master_reload_check_failed */
    r->stranded = true;
    master_reload_check_failed(m, "the app failed to import in the re-executed master although "
                                  "the check had passed (see the traceback above); the previous "
                                  "workers keep serving but cannot be replaced: fix the app and "
                                  "reload");
    master_reload_log_stranded(m);
}
