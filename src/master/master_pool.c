/*
 * master_pool.c — the pool modes (see master_state.h).
 *
 * static    the slots below the target (--processes, corralctl scale) hold
 *           a worker each; master.c does all of it.
 * dynamic   like PHP-FPM's pm = dynamic: once a second the master counts
 *           the idle workers (running, no thread busy) and starts workers
 *           while fewer than min_spare are idle, or stops the
 *           highest-numbered idle worker (one per second) while more than
 *           max_spare are.
 * ondemand  no worker until a connection waits. The master never accepts:
 *           it sees waiting connections through the kernel's listen-queue
 *           depth (listen_queue_depth, polled each tick) and, while no
 *           worker lives, through EPOLLIN on the listeners in its own epoll
 *           (level-triggered, removed as soon as a worker is on its way, so
 *           that a queued connection cannot make the loop spin). Workers
 *           are started while connections wait and every live worker is
 *           busy; a worker idle for idle_worker_timeout exits by itself
 *           (status 0), which the master takes as a scale-down.
 *
 * In dynamic and ondemand pools every slot up to --max-processes is in the
 * pool's range (target = max): a slot gets a worker only when the pool
 * marks it due (respawn_at_ms), and a retired or idle-exited slot is left
 * empty. Pool-driven forks are rate-limited: at most spawn_rate per
 * one-second window; the rate doubles (up to 32) after a window that
 * wanted more and falls back to 1 after a window that wanted none. A crash
 * keeps master.c's respawn back-off; its pending slot counts as a worker
 * on its way, so the pool does not fork around the back-off.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "master_state.h"
#include "core/clock.h"

#define MASTER_POOL_MAX_RATE 32
#define MASTER_POOL_TAG_LISTENER (1ull << 40)

#define POOL_LOAD(p) atomic_load_explicit((p), memory_order_relaxed)

/* What the pool looks like now, from the master's slots and the
 * scoreboard. */
struct master_pool_count {
    unsigned live;    /* processes */
    unsigned pending; /* empty slots with a (re)spawn due */
    unsigned coming;  /* forked but not running yet, or pending */
    unsigned idle;    /* running, no thread busy, not stopping */
    unsigned free;    /* running with a free thread, not stopping */
};

static void master_pool_count(const struct master *m, struct master_pool_count *c)
{
    memset(c, 0, sizeof(*c));
    unsigned threads = m->cfg->threads;
    for (unsigned p = 0; p < m->max_workers; p++) {
        unsigned i = master_slot(m, p);
        const struct master_worker *mw = &m->workers[i];
        const struct sb_worker *w = &m->sb.workers[i];
        if (!mw->pid) {
            c->pending += mw->respawn_at_ms != 0;
            c->coming += mw->respawn_at_ms != 0;
            continue;
        }
        c->live++;
        if (mw->retiring)
            continue;
        uint32_t state = POOL_LOAD(&w->state);
        if (state == SB_WORKER_STOPPING)
            continue;
        if (state != SB_WORKER_RUNNING) {
            c->coming++;
            continue;
        }
        uint32_t busy = POOL_LOAD(&w->busy);
        c->idle += busy == 0;
        c->free += busy < threads;
    }
}

/* Forks the rate allows in this second. */
static unsigned master_pool_budget(struct master_pool *p, uint64_t now)
{
    if (now - p->window_ms >= 1000) {
        if (p->window_short)
            p->spawn_rate =
                p->spawn_rate * 2 > MASTER_POOL_MAX_RATE ? MASTER_POOL_MAX_RATE : p->spawn_rate * 2;
        else if (!p->window_spawned)
            p->spawn_rate = 1;
        p->window_ms = now;
        p->window_spawned = 0;
        p->window_short = false;
    }
    return p->spawn_rate > p->window_spawned ? p->spawn_rate - p->window_spawned : 0;
}

/* The pool wants WANT more workers but has max_processes: count and log
 * the episode once. WAITING: connections waiting (ondemand), or -1. */
static void master_pool_max_reached(struct master *m, long waiting)
{
    struct master_pool *p = &m->pool;
    if (p->at_max)
        return;
    p->at_max = true;
    p->max_reached++;
    char what[64] = "";
    if (waiting >= 0)
        snprintf(what, sizeof(what), " with %ld connections waiting", waiting);
    log_msg(LOG_WARN,
            "pool %s: max processes (%u) reached%s (%llu times so far): raise "
            "--max-processes or --threads",
            config_pool_mode_name(p->mode), m->max_workers, what,
            (unsigned long long)p->max_reached);
}

/* Mark up to WANT empty slots due now, within the rate and the maximum;
 * OCCUPIED slots have a worker or a pending one. The forks happen at the
 * top of the loop (master_spawn_due). */
static void master_pool_grow(struct master *m, unsigned want, unsigned occupied, long waiting)
{
    struct master_pool *p = &m->pool;
    uint64_t now = clock_now_ms();
    unsigned room = m->max_workers > occupied ? m->max_workers - occupied : 0;
    if (want > room) {
        master_pool_max_reached(m, waiting);
        want = room;
    } else {
        p->at_max = false;
    }
    unsigned budget = master_pool_budget(p, now);
    if (want > budget) {
        p->window_short = true;
        want = budget;
    }
    for (unsigned pos = 0; pos < m->max_workers && want; pos++) {
        struct master_worker *mw = &m->workers[master_slot(m, pos)];
        if (mw->pid || mw->respawn_at_ms)
            continue;
        mw->respawn_at_ms = now;
        mw->fast_deaths = 0;
        p->window_spawned++;
        want--;
    }
}

static void master_pool_dynamic(struct master *m)
{
    const struct config *cfg = m->cfg;
    struct master_pool_count c;
    master_pool_count(m, &c);
    unsigned spare = c.idle + c.coming;
    if (spare < cfg->min_spare) {
        master_pool_grow(m, cfg->min_spare - spare, c.live + c.pending, -1);
        return;
    }
    m->pool.at_max = false;
    if (c.idle <= cfg->max_spare)
        return;
    for (unsigned p = m->max_workers; p-- > 0;) {
        unsigned i = master_slot(m, p);
        struct master_worker *mw = &m->workers[i];
        const struct sb_worker *w = &m->sb.workers[i];
        if (!mw->pid || mw->retiring || POOL_LOAD(&w->state) != SB_WORKER_RUNNING ||
            POOL_LOAD(&w->busy) != 0)
            continue;
        log_msg(LOG_INFO,
                "pool dynamic: %u idle workers, more than max_spare %u: stopping "
                "worker %u (pid %d)",
                c.idle, cfg->max_spare, i, (int)mw->pid);
        kill(mw->pid, SIGTERM);
        mw->retiring = true;
        return; /* one per second */
    }
}

/* Connections waiting in all the listen queues (kernel counts). */
static unsigned master_pool_waiting(const struct master *m)
{
    unsigned total = 0;
    for (size_t i = 0; i < m->listener_count; i++) {
        unsigned depth;
        if (m->listeners[i].fd >= 0 && listen_queue_depth(&m->listeners[i], &depth) == 0)
            total += depth;
    }
    return total;
}

/* WAITING: connections in the listen queues (from the tick, the depths
 * master_check_queues just read: one sock_diag round trip per unix
 * listener, not two). */
static void master_pool_ondemand(struct master *m, unsigned waiting)
{
    if (!waiting) {
        m->pool.at_max = false;
        return;
    }
    struct master_pool_count c;
    master_pool_count(m, &c);
    if (c.free)
        return; /* a worker with a free thread takes them */
    /* Each worker on its way will take up to --threads of them. */
    unsigned threads = m->cfg->threads;
    unsigned needed = (waiting + threads - 1) / threads;
    if (needed <= c.coming)
        return;
    master_pool_grow(m, needed - c.coming, c.live + c.pending, (long)waiting);
}

/* Ondemand: the listeners are in the master's epoll while no worker lives
 * or is on its way, and only then. */
static void master_pool_watch(struct master *m, bool on)
{
    struct master_pool *p = &m->pool;
    if (p->watching == on)
        return;
    for (size_t i = 0; i < m->listener_count; i++) {
        int fd = m->listeners[i].fd;
        if (fd < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = MASTER_POOL_TAG_LISTENER + i};
        if (epoll_ctl(m->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) < 0 && on)
            log_msg(LOG_ERROR, "epoll_ctl(%s) in the master failed: %m", m->listeners[i].name);
    }
    p->watching = on;
}

static void master_pool_update_watch(struct master *m)
{
    struct master_pool_count c;
    master_pool_count(m, &c);
    master_pool_watch(m, m->state == MASTER_RUNNING && c.live == 0 && c.coming == 0);
}

void master_pool_unwatch(struct master *m)
{
    master_pool_watch(m, false);
}

bool master_pool_owns(uint64_t tag)
{
    return tag >= MASTER_POOL_TAG_LISTENER;
}

void master_pool_listener_event(struct master *m)
{
    master_pool_watch(m, false);
    if (m->state == MASTER_RUNNING && m->pool.mode == POOL_ONDEMAND)
        master_pool_ondemand(m, master_pool_waiting(m));
}

void master_pool_tick(struct master *m)
{
    struct master_pool *p = &m->pool;
    if (p->mode == POOL_ONDEMAND) {
        if (m->state == MASTER_RUNNING)
            master_pool_ondemand(m, m->queued);
        master_pool_update_watch(m);
        return;
    }
    if (p->mode != POOL_DYNAMIC || m->state != MASTER_RUNNING)
        return;
    uint64_t now = clock_now_ms();
    if (now < p->next_adjust_ms)
        return;
    p->next_adjust_ms = now + 1000;
    master_pool_dynamic(m);
}

bool master_pool_idle_exit(struct master *m, unsigned i, pid_t pid, int status)
{
    if (m->pool.mode != POOL_ONDEMAND || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return false;
    log_msg(LOG_INFO, "pool ondemand: worker %u (pid %d) exited after %.1f s idle", i, (int)pid,
            m->cfg->idle_worker_timeout_ms / 1000.0);
    m->workers[i].respawn_at_ms = 0;
    m->workers[i].fast_deaths = 0;
    master_pool_update_watch(m);
    return true;
}

void master_pool_start(struct master *m)
{
    struct master_pool *p = &m->pool;
    p->mode = config_pool_mode(m->cfg);
    p->spawn_rate = 1;
    p->window_ms = clock_now_ms();
    unsigned start = m->cfg->processes;
    if (p->mode != POOL_STATIC)
        m->target = m->max_workers;
    if (p->mode == POOL_DYNAMIC)
        start = config_start_processes(m->cfg);
    else if (p->mode == POOL_ONDEMAND)
        start = 0;
    for (unsigned i = 0; i < start; i++)
        m->workers[master_slot(m, i)].respawn_at_ms = m->started_ms;
    p->next_adjust_ms = m->started_ms + 1000;
    if (p->mode == POOL_ONDEMAND)
        master_pool_watch(m, true);
    master_pool_publish(m);
}

unsigned master_pool_processes(const struct master *m)
{
    return m->pool.mode == POOL_STATIC ? m->target : master_bank_live(m, m->base);
}

unsigned master_pool_starting(const struct master *m)
{
    unsigned n = 0;
    for (unsigned p = 0; p < m->max_workers; p++)
        n += m->workers[master_slot(m, p)].respawn_at_ms != 0;
    return n;
}

/* The reload state, for status.c (the message only when it changed). */
static void master_pool_publish_reload(struct master *m)
{
    struct sb_header *h = m->sb.hdr;
    const struct master_reload *r = &m->reload;
    atomic_store_explicit(&h->bank_base, m->base, memory_order_relaxed);
    atomic_store_explicit(&h->generation, r->generation, memory_order_relaxed);
    atomic_store_explicit(&h->reload_phase,
                          r->stranded && r->phase == RELOAD_IDLE ? MASTER_RELOAD_PUBLISHED_STRANDED
                                                                 : (uint32_t)r->phase,
                          memory_order_relaxed);
    atomic_store_explicit(&h->reloads, r->reloads, memory_order_relaxed);
    atomic_store_explicit(&h->reload_failed, r->failures, memory_order_relaxed);
    atomic_store_explicit(&h->reload_last_ok,
                          !(r->reloads || r->failures) ? 2u
                          : r->last_ok                 ? 1u
                                                       : 0u,
                          memory_order_relaxed);
    if (strncmp(h->reload_last, r->last, sizeof(h->reload_last) - 1) == 0)
        return;
    atomic_fetch_add_explicit(&h->reload_seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    _Static_assert(sizeof(h->reload_last) == sizeof(r->last), "reload_last");
    memcpy(h->reload_last, r->last, sizeof(h->reload_last));
    atomic_fetch_add_explicit(&h->reload_seq, 1, memory_order_release);
}

void master_pool_publish(struct master *m)
{
    struct sb_header *h = m->sb.hdr;
    uint32_t state = m->state == MASTER_STOPPING  ? SB_MASTER_STOPPING
                     : m->state != MASTER_RUNNING ? SB_MASTER_STOPPING_NOW
                     : m->stop_delay_until_ms     ? SB_MASTER_STOP_DELAY
                                                  : SB_MASTER_RUNNING;
    atomic_store_explicit(&h->master_state, state, memory_order_relaxed);
    atomic_store_explicit(&h->pool_target, master_pool_processes(m), memory_order_relaxed);
    atomic_store_explicit(&h->spawn_rate, m->pool.spawn_rate, memory_order_relaxed);
    atomic_store_explicit(&h->max_reached, m->pool.max_reached, memory_order_relaxed);
    master_pool_publish_reload(m);
    if (m->pool.mode != POOL_STATIC)
        master_update_slots(m);
}
