/*
 * worker_slots.c — the connection table and which worker accepts: a slot's
 * life (alloc, park, claim, close) and the balancing across the pool that
 * every open and close re-checks (the listeners in or out of the epoll set),
 * with the pause of a worker out of file descriptors.
 *
 * Parked connections can also be closed by the housekeeping tick (idle
 * timeout, graceful stop). Ownership is decided by a compare-and-swap on the
 * slot's state word, which also carries a generation number: the epoll data
 * of a connection names its slot and generation, so an event that arrives
 * for a connection that was closed meanwhile (its slot reused) is ignored.
 */
#include "worker_state.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/clock.h"
#include "core/log.h"

/* ---- balancing ---- */

/* Workers in the pool now: scaling changes it while workers run. */
static unsigned worker_pool_slots(const struct worker_ctx *ctx)
{
    return atomic_load_explicit(&ctx->sb->hdr->slots, memory_order_relaxed);
}

/*
 * Whether this worker should take new connections: not while stopping,
 * full or out of file descriptors (worker_back_off_accept), and not while
 * it holds 2 or more connections more than another worker that has a free
 * thread (EPOLLEXCLUSIVE alone lets one process take a whole burst of
 * connects: contrib/bench/accept.sh measures it). Call with the lock.
 */
static bool worker_should_accept(const struct worker *w)
{
    if (atomic_load(&w->stopping) || w->open >= w->slot_count || w->no_fds_until_ms)
        return false;
    const struct worker_ctx *ctx = w->ctx;
    unsigned slots = worker_pool_slots(ctx);
    if (slots <= 1 || w->accept_mode != ACCEPT_BALANCED)
        return true;
    unsigned threads = w->cfg->threads;
    for (unsigned i = 0; i < slots; i++) {
        if (i == ctx->index)
            continue;
        const struct sb_worker *o = &ctx->sb->workers[i];
        if (atomic_load_explicit(&o->state, memory_order_relaxed) != SB_WORKER_RUNNING)
            continue;
        if (atomic_load_explicit(&o->busy, memory_order_relaxed) >= threads)
            continue;
        int32_t theirs = atomic_load_explicit(&o->conns, memory_order_relaxed);
        if ((int64_t)w->open >= (int64_t)theirs + 2)
            return false;
    }
    return true;
}

/* Put the listeners in or out of the epoll set to match the rule above. */
static void worker_balance_locked(struct worker *w)
{
    if (w->no_fds_until_ms && clock_now_ms() >= w->no_fds_until_ms)
        w->no_fds_until_ms = 0; /* the back-off is over */
    bool want = worker_should_accept(w);
    if (want == w->armed)
        return;
    const struct worker_ctx *ctx = w->ctx;
    for (size_t i = 0; i < ctx->listener_count; i++) {
        int fd = ctx->listeners[i].fd;
        if (want) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTENER + i};
            if (worker_pool_slots(ctx) > 1 && w->accept_mode != ACCEPT_SHARED)
                ev.events |= EPOLLEXCLUSIVE;
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                log_msg(LOG_ERROR, "epoll_ctl(ADD, %s) failed: %s", ctx->listeners[i].name,
                        strerror(errno));
        } else {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
        }
    }
    w->armed = want;
    atomic_store_explicit(&w->sb->accepting, want, memory_order_relaxed);
}

void worker_balance(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    worker_balance_locked(w);
    pthread_mutex_unlock(&w->lock);
}

void worker_back_off_accept(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->no_fds_until_ms = clock_now_ms() + NO_FDS_BACKOFF_MS;
    worker_balance_locked(w);
    pthread_mutex_unlock(&w->lock);
}

/* ---- the connection table ---- */

struct slot *worker_slot_alloc(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    struct slot *s = NULL;
    if (w->free_count) {
        s = &w->slots[w->free_list[--w->free_count]];
        w->open++;
        atomic_store_explicit(&w->sb->conns, (int32_t)w->open, memory_order_relaxed);
        worker_balance_locked(w);
    }
    pthread_mutex_unlock(&w->lock);
    if (s) {
        uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32);
        atomic_store(&s->word, slot_word(gen, SLOT_BUSY));
    }
    return s;
}

void worker_slot_close(struct worker *w, struct slot *s)
{
    conn_close(&s->conn); /* also takes it out of the epoll set */
    s->registered = false;
    uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32) + 1;
    if (gen == 0xFFFFFFFFu)
        gen = 0;
    atomic_store(&s->word, slot_word(gen, SLOT_FREE));
    pthread_mutex_lock(&w->lock);
    w->free_list[w->free_count++] = (unsigned)(s - w->slots);
    w->open--;
    atomic_store_explicit(&w->sb->conns, (int32_t)w->open, memory_order_relaxed);
    worker_balance_locked(w);
    pthread_mutex_unlock(&w->lock);
}

void worker_slot_park(struct worker *w, struct slot *s)
{
    unsigned idx = (unsigned)(s - w->slots);
    uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32);
    atomic_store(&s->parked_at_ms, clock_now_ms());
    /* PARKED before arming: the event may fire at once, on another thread. */
    atomic_store(&s->word, slot_word(gen, SLOT_PARKED));
    /* Replies queued (conn_wants_write): wait to write, not to read (conn.c
     * decodes nothing more until they are out); one thread's level-triggered
     * registration changes only around them. */
    bool out = conn_wants_write(&s->conn);
    if (w->single_thread && s->registered && !out && !s->out_armed)
        return;
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN | EPOLLRDHUP,
                             .data.u64 = (uint64_t)gen << 32 | idx};
    if (!w->single_thread)
        ev.events |= EPOLLONESHOT;
    s->out_armed = out;
    int op = s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    s->registered = true;
    if (epoll_ctl(w->epfd, op, s->conn.fd, &ev) < 0) {
        log_msg(LOG_ERROR, "epoll_ctl(%s, fd %d) failed: %s; connection closed",
                op == EPOLL_CTL_ADD ? "ADD" : "MOD", s->conn.fd, strerror(errno));
        uint64_t expect = slot_word(gen, SLOT_PARKED);
        if (atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_BUSY)))
            worker_slot_close(w, s);
    }
}

bool worker_slot_claim(struct slot *s, uint32_t gen)
{
    uint64_t expect = slot_word(gen, SLOT_PARKED);
    return atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_BUSY));
}
