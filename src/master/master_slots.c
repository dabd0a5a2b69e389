/*
 * master_slots.c — the worker slots as the master sees them: which bank a
 * slot is in, how many workers a bank has, the slots the pool spans and
 * the scoreboard's count of them, the request a worker's thread is serving,
 * and signalling every worker. The bottom
 * of the master's files: it calls none of them (master_state.h).
 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "master_state.h"

unsigned master_bank_live(const struct master *m, unsigned base)
{
    unsigned n = 0;
    for (unsigned i = base; i < base + m->max_workers && i < m->slots_used; i++)
        n += m->workers[i].pid != 0;
    return n;
}

unsigned master_slots_span(const struct master *m)
{
    if (m->pool.mode == POOL_STATIC)
        return master_slot(m, m->target);
    /* Up to the highest slot of the current bank with a worker or one due. */
    unsigned slots = master_slot(m, 0);
    for (unsigned p = 0; p < m->max_workers; p++) {
        const struct master_worker *mw = &m->workers[master_slot(m, p)];
        if (mw->pid || mw->respawn_at_ms)
            slots = master_slot(m, p) + 1;
    }
    return slots;
}

/* Up to the current bank's span, or further while workers above it
 * (scaled down, or of the other generation) are still stopping. */
void master_update_slots(struct master *m)
{
    unsigned slots = master_slots_span(m);
    for (unsigned i = m->slots_used; i > slots; i--) {
        if (m->workers[i - 1].pid) {
            slots = i;
            break;
        }
    }
    atomic_store(&m->sb.hdr->slots, slots);
}

bool master_thread_request(const struct master *m, unsigned i, unsigned t,
                           char method[MASTER_METHOD_LEN], char uri[MASTER_URI_LEN])
{
    struct sb_thread *st = scoreboard_thread(&m->sb, i, t);
    if (atomic_load_explicit(&st->state, memory_order_relaxed) != SB_THREAD_BUSY)
        return false;
    memcpy(method, st->method, MASTER_METHOD_LEN);
    memcpy(uri, st->uri, MASTER_URI_LEN);
    method[MASTER_METHOD_LEN - 1] = uri[MASTER_URI_LEN - 1] = '\0';
    return true;
}

void master_signal_workers(struct master *m, int sig)
{
    for (unsigned i = 0; i < m->slots_used; i++)
        if (m->workers[i].pid)
            kill(m->workers[i].pid, sig);
}
