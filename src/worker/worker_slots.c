/*
 * worker_slots.c — the connection table and which worker accepts: a slot's
 * life (alloc, park, claim, close) and the balancing across the pool that
 * every open and close re-checks (the listeners in or out of the epoll set,
 * a peer that stepped back woken when it should accept again), with the
 * pause of a worker out of file descriptors and the log line of one that
 * is full (--max-conns).
 *
 * Parked connections can also be closed by the housekeeping tick (idle
 * timeout, graceful stop). Ownership is decided by a compare-and-swap on the
 * slot's state word, which also carries a generation number: the epoll data
 * of a connection names its slot and generation, so an event that arrives
 * for a connection that was closed meanwhile (its slot reused) is ignored.
 * With threads, or an app that detaches requests (whose thread gives them
 * back), connections are registered edge-triggered and stay armed
 * while owned: an event for an owned slot marks it SLOT_PENDING, and its
 * owner's park then has epoll report the bytes again (worker_slot_event,
 * worker_slot_park); an entry armed one-shot cost an epoll_ctl per request
 * to re-arm.
 */
#include "worker_state.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
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
 * The count a worker may reach before it stops accepting for a peer that
 * holds THEIRS connections: 2 more, plus an eighth of theirs. Connection
 * counts need only be roughly even: a few more or less is what matters for
 * a front end's few dozen kept connections (which EPOLLEXCLUSIVE alone puts
 * mostly on one process, contrib/bench/accept.sh), and a slack that grows
 * with the counts keeps thousands of idle parked connections from turning
 * the listeners in and out of the epoll set every few connects.
 */
static int64_t worker_balance_limit(int64_t theirs)
{
    return theirs + 2 + (theirs > 0 ? theirs / 8 : 0);
}

/* Why a worker does not take new connections (worker_should_accept). */
enum accept_block {
    ACCEPT_OK = 0,
    ACCEPT_STOPPING,  /* a graceful stop */
    ACCEPT_FULL,      /* --max-conns connections open */
    ACCEPT_NO_FDS,    /* backing off: out of file descriptors */
    ACCEPT_AHEAD,     /* well ahead of a peer that accepts and has a free thread */
    ACCEPT_NO_THREAD, /* no thread left while a peer that accepts has one */
};

/*
 * Whether this worker should take new connections: not while stopping,
 * full or out of file descriptors (worker_back_off_accept), and not while
 * it holds worker_balance_limit() connections of another running worker
 * that accepts itself (its listeners armed) and has a free thread, or has
 * no thread left while such a worker has one owed to nobody: so a worker
 * never steps back unless another one takes its place. Call with the lock.
 */
static enum accept_block worker_should_accept(const struct worker *w)
{
    if (atomic_load(&w->stopping))
        return ACCEPT_STOPPING;
    if (w->open >= w->slot_count)
        return ACCEPT_FULL;
    if (w->no_fds_until_ms)
        return ACCEPT_NO_FDS;
    const struct worker_ctx *ctx = w->ctx;
    unsigned slots = worker_pool_slots(ctx);
    if (slots <= 1 || w->accept_mode != ACCEPT_BALANCED)
        return ACCEPT_OK;
    unsigned threads = w->cfg->threads;
    /* Every thread busy, or owed to a connection parked before its first
     * request (taken by an accept batch before its bytes came): one more
     * connection would wait for a thread while a peer has one free and
     * owed to none. Connects that send nothing count as owed too, and then
     * every worker has none left: the connection counts alone decide. */
    bool no_thread_left = worker_threads_owed(&ctx->sb->workers[ctx->index]) >= threads;
    for (unsigned i = 0; i < slots; i++) {
        if (i == ctx->index)
            continue;
        const struct sb_worker *o = &ctx->sb->workers[i];
        if (atomic_load_explicit(&o->state, memory_order_relaxed) != SB_WORKER_RUNNING)
            continue;
        /* Sequentially consistent: pairs with the store of a disarm in
         * worker_arm (two workers stepping back at once). */
        if (!atomic_load(&o->accepting))
            continue;
        if (atomic_load_explicit(&o->busy, memory_order_relaxed) >= threads)
            continue;
        if (no_thread_left && worker_threads_owed(o) < threads)
            return ACCEPT_NO_THREAD;
        int32_t theirs = atomic_load_explicit(&o->conns, memory_order_relaxed);
        if ((int64_t)w->open >= worker_balance_limit(theirs))
            return ACCEPT_AHEAD;
    }
    return ACCEPT_OK;
}

/* Put the listeners in or out of the epoll set. */
static void worker_listeners_epoll(struct worker *w, bool want)
{
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
}

/* ... and publish it. */
static void worker_arm(struct worker *w, bool want)
{
    worker_listeners_epoll(w, want);
    w->armed = want;
    atomic_store(&w->sb->accepting, want);
}

/* Which peers worker_poke_peers wakes. */
enum poke_whom {
    POKE_BEHIND, /* those out of the listeners that this worker's count has passed */
    POKE_OUT,    /* all those out of the listeners: this worker left them too */
    POKE_ROOM,   /* all, in or out: this worker left a connection in the queue */
    POKE_THREAD, /* those out because this worker had a thread left: it has none now */
};

/*
 * Wake running peers that are not full (they call worker_poked on
 * WORKER_POKE_SIGNAL, from worker_stop.c's worker_signal): WHOM says which.
 * With POKE_BEHIND (every balance while this worker accepts), the rule
 * above lets them accept again; each is woken once until it has accepted a
 * connection since (its scoreboard count of accepted connections moved), so
 * a peer that stays out for another reason is not woken again and again.
 * The others are rare: this worker stopped accepting for a reason of its
 * own (the peers may have stepped back for it), or it was full when woken
 * for a connection (worker_slot_reserve). A lost signal costs nothing but the
 * wait for the peer's own tick. Call with the lock.
 */
static void worker_poke_peers(struct worker *w, enum poke_whom whom)
{
    const struct worker_ctx *ctx = w->ctx;
    unsigned slots = worker_pool_slots(ctx);
    if (slots <= 1 || w->accept_mode != ACCEPT_BALANCED)
        return;
    if (slots > ctx->sb->hdr->max_workers)
        slots = ctx->sb->hdr->max_workers;
    for (unsigned i = 0; i < slots; i++) {
        if (i == ctx->index)
            continue;
        const struct sb_worker *o = &ctx->sb->workers[i];
        if (atomic_load_explicit(&o->state, memory_order_relaxed) != SB_WORKER_RUNNING ||
            (whom != POKE_ROOM && atomic_load(&o->accepting)))
            continue;
        if (whom == POKE_THREAD && !atomic_load_explicit(&o->no_thread, memory_order_relaxed))
            continue;
        int32_t theirs = atomic_load_explicit(&o->conns, memory_order_relaxed);
        if (theirs < 0 || (unsigned)theirs >= w->slot_count)
            continue; /* full: its own close takes it back */
        if (whom == POKE_BEHIND) {
            if (worker_balance_limit((int64_t)w->open) <= theirs)
                continue; /* not behind this worker */
            uint64_t accepted = atomic_load_explicit(&o->accepted, memory_order_relaxed);
            if (accepted == w->poked_at[i])
                continue; /* woken already, and it has not accepted since */
            w->poked_at[i] = accepted;
        }
        pid_t pid = atomic_load_explicit(&o->pid, memory_order_relaxed);
        if (pid > 0)
            kill(pid, WORKER_POKE_SIGNAL);
    }
}

/* The max-conns limit took the listeners out, or the worker accepts
 * again after it: one line a second at most about the first, with the
 * episodes left unlogged since; the second only after a logged first. */
static void worker_log_full(struct worker *w, bool full)
{
    if (!full) {
        if (w->full_logged)
            log_msg(LOG_INFO, "worker %u: a connection closed: accepting again (max-conns %u)",
                    w->ctx->index, w->slot_count);
        w->full_logged = false;
        return;
    }
    unsigned long suppressed = 0;
    if (!allow_ratelimit_due(&w->full_log, clock_now_ms() / 1000, &suppressed))
        return;
    if (suppressed)
        log_msg(LOG_WARN,
                "worker %u: %u connections open, the max-conns limit (--max-conns "
                "%u): not accepting new connections until one closes (%lu more times since "
                "the last line)",
                w->ctx->index, w->open, w->slot_count, suppressed);
    else
        log_msg(LOG_WARN,
                "worker %u: %u connections open, the max-conns limit (--max-conns "
                "%u): not accepting new connections until one closes",
                w->ctx->index, w->open, w->slot_count);
    w->full_logged = true;
}

/* Put the listeners in or out of the epoll set to match the rule above. */
static void worker_balance_locked(struct worker *w)
{
    if (w->no_fds_until_ms && clock_now_ms() >= w->no_fds_until_ms)
        w->no_fds_until_ms = 0; /* the back-off is over */
    enum accept_block why = worker_should_accept(w);
    bool want = why == ACCEPT_OK;
    bool stepped_back = why == ACCEPT_AHEAD || why == ACCEPT_NO_THREAD;
    /* Out for want of a thread: a peer that had one free takes this
     * worker's place, and wakes it when it has none left (POKE_THREAD). */
    atomic_store_explicit(&w->sb->no_thread, why == ACCEPT_NO_THREAD, memory_order_relaxed);
    if (want != w->armed) {
        worker_arm(w, want);
        if (want)
            atomic_store(&w->full_poked, false);
        if (want || why == ACCEPT_FULL)
            worker_log_full(w, why == ACCEPT_FULL);
        if (stepped_back && worker_should_accept(w) == ACCEPT_OK) {
            /* Two workers stepped back at once, each because it saw the
             * other accept: the stores of worker_arm and the loads of the
             * re-check are sequentially consistent, so at least one of
             * them sees the other out now and takes the listeners back. */
            worker_arm(w, true);
        } else if (!want && !stepped_back) {
            worker_poke_peers(w, POKE_OUT);
            return;
        }
    }
    bool none_left = worker_threads_owed(w->sb) >= w->cfg->threads;
    if (w->armed) {
        worker_poke_peers(w, POKE_BEHIND);
        if (none_left && !w->none_left)
            worker_poke_peers(w, POKE_THREAD);
    }
    w->none_left = none_left;
}

void worker_balance(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    worker_balance_locked(w);
    pthread_mutex_unlock(&w->lock);
}

void worker_poked(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    bool was = w->armed;
    worker_balance_locked(w);
    if (was && w->armed) {
        /* Armed all along: a connection may wait in a queue whose wake-up
         * went to a peer that was full. Taking the listeners out and back
         * in makes epoll look at them again (an EPOLLEXCLUSIVE entry cannot
         * be modified in place). */
        worker_listeners_epoll(w, false);
        worker_listeners_epoll(w, true);
    }
    pthread_mutex_unlock(&w->lock);
}

void worker_pass_on(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    worker_poke_peers(w, POKE_ROOM);
    pthread_mutex_unlock(&w->lock);
}

bool worker_slot_reserve(struct worker *w)
{
    if (atomic_fetch_sub(&w->unreserved, 1) > 0)
        return true;
    atomic_fetch_add(&w->unreserved, 1);
    /* Full: the wake-up for a queued connection came here, and ends here;
     * once per episode (worker_balance_locked clears it on re-arming). */
    if (!atomic_exchange(&w->full_poked, true))
        worker_pass_on(w);
    return false;
}

void worker_slot_unreserve(struct worker *w)
{
    atomic_fetch_add(&w->unreserved, 1);
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
    s->hup = false;
    /* The next connection in this slot starts with no deadline running:
     * a stale one would close it at the tick's next scan. */
    atomic_store_explicit(&s->since_ms, 0, memory_order_relaxed);
    s->out_armed = s->kick = s->fresh = false;
    if (s->fresh_parked) { /* closed while parked (the tick), or its park failed */
        s->fresh_parked = false;
        atomic_fetch_sub_explicit(&w->sb->fresh, 1, memory_order_relaxed);
    }
    uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32) + 1;
    if (gen == 0xFFFFFFFFu)
        gen = 0;
    atomic_store(&s->word, slot_word(gen, SLOT_FREE));
    pthread_mutex_lock(&w->lock);
    w->free_list[w->free_count++] = (unsigned)(s - w->slots);
    w->open--;
    atomic_store_explicit(&w->sb->conns, (int32_t)w->open, memory_order_relaxed);
    /* Claimable only once it is back in the free list. */
    atomic_fetch_add(&w->unreserved, 1);
    worker_balance_locked(w);
    pthread_mutex_unlock(&w->lock);
}

void worker_slot_park(struct worker *w, struct slot *s)
{
    unsigned idx = (unsigned)(s - w->slots);
    uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32);
    atomic_store(&s->parked_at_ms, clock_now_ms());
    /* Replies queued (conn_wants_write): wait to write, not to read (conn.c
     * decodes nothing more until they are out); the registration changes
     * only around them. */
    bool out = conn_wants_write(&s->conn) || s->kick;
    bool same = s->registered && !out && !s->out_armed;
    s->kick = false;
    if (!w->edge_triggered) {
        /* Level-triggered: the entry reports the bytes whenever they come. */
        atomic_store(&s->word, slot_word(gen, SLOT_PARKED));
        if (same)
            return;
    } else {
        /* Edge-triggered, armed while owned: bytes that came meanwhile left
         * their event to worker_slot_event, which marked the slot
         * SLOT_PENDING. Without that mark, and when the last read took all
         * there was and no hang-up came with the event (an end of file
         * that a read returning bytes did not reach), parking is this
         * exchange alone (no epoll_ctl); else the re-registration below
         * makes epoll report what is there again (it looks at the socket,
         * not at an edge). */
        uint64_t expect = slot_word(gen, SLOT_BUSY);
        if (same && s->conn.drained && !s->hup &&
            atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_PARKED)))
            return;
        /* SLOT_PARKING while registering: an event it makes waits for
         * SLOT_PARKED (worker_slot_event), so no thread takes the slot
         * before this one is done with it. */
        atomic_store(&s->word, slot_word(gen, SLOT_PARKING));
    }
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN | EPOLLRDHUP,
                             .data.u64 = (uint64_t)gen << 32 | idx};
    if (w->edge_triggered)
        ev.events |= EPOLLET;
    s->out_armed = out;
    int op = s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    s->registered = true;
    if (epoll_ctl(w->epfd, op, s->conn.fd, &ev) < 0) {
        log_msg(LOG_ERROR, "epoll_ctl(%s, fd %d) failed: %s; connection closed",
                op == EPOLL_CTL_ADD ? "ADD" : "MOD", s->conn.fd, strerror(errno));
        uint64_t expect = slot_word(gen, w->edge_triggered ? SLOT_PARKING : SLOT_PARKED);
        if (atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_BUSY)))
            worker_slot_close(w, s);
        return;
    }
    if (w->edge_triggered)
        atomic_store(&s->word, slot_word(gen, SLOT_PARKED));
}

bool worker_slot_claim(struct slot *s, uint32_t gen)
{
    uint64_t expect = slot_word(gen, SLOT_PARKED);
    return atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_BUSY));
}

bool worker_slot_event(struct slot *s, uint32_t gen)
{
    uint64_t word = atomic_load(&s->word);
    for (;;) {
        if (word == slot_word(gen, SLOT_PARKED)) {
            if (atomic_compare_exchange_weak(&s->word, &word, slot_word(gen, SLOT_BUSY)))
                return true;
        } else if (word == slot_word(gen, SLOT_BUSY)) {
            /* Owned (served, or looked at by the tick's scan): its owner
             * parks it later and must not miss these bytes. */
            if (atomic_compare_exchange_weak(&s->word, &word, slot_word(gen, SLOT_PENDING)))
                return false;
        } else if (word == slot_word(gen, SLOT_PARKING)) {
            /* Its owner is registering it (one epoll_ctl): wait for that. */
            sched_yield();
            word = atomic_load(&s->word);
        } else {
            return false; /* pending already, closed or reused */
        }
    }
}
