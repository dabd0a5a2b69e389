/*
 * worker_accept.c — taking connections: which worker accepts (balancing
 * across the pool through the scoreboard) and the accept paths.
 */
#include "worker_internal.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/clock.h"

/* Workers in the pool now: scaling changes it while workers run. */
static unsigned worker_pool_slots(const struct worker_ctx *ctx)
{
    return atomic_load_explicit(&ctx->sb->hdr->slots, memory_order_relaxed);
}

static unsigned worker_saturating_mul(unsigned a, unsigned b)
{
    return b != 0 && a > UINT_MAX / b ? UINT_MAX : a * b;
}

void worker_conn_limits(const struct worker *w, struct proto_limits *lim)
{
    const struct config *cfg = w->cfg;
    *lim = cfg->limits;
    unsigned procs = config_max_processes(cfg);
    if (w->pool_mode == POOL_STATIC) {
        /* Published by the master at every turn of its loop; 0 only
         * before its first. */
        unsigned target =
            atomic_load_explicit(&w->ctx->sb->hdr->pool_target, memory_order_relaxed);
        procs = target ? target : cfg->processes;
    }
    lim->fcgi_max_conns = worker_saturating_mul(procs, cfg->max_conns);
    lim->fcgi_max_reqs = worker_saturating_mul(procs, cfg->threads);
}

/*
 * Whether this worker should take new connections: not while stopping or
 * full, and not while it holds 2 or more connections more than another
 * worker that has a free thread (EPOLLEXCLUSIVE alone lets one process take
 * a whole burst of connects: contrib/bench/accept.sh measures it). Call with the lock.
 */
static bool worker_should_accept(const struct worker *w)
{
    if (atomic_load(&w->stopping) || w->open >= w->slot_count)
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
void worker_balance_locked(struct worker *w)
{
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

/* A peer --allow-from does not list: one log line per second per listener
 * (in this process), with the number of refusals left unlogged since. */
static void worker_refuse_peer(struct listener *l, const struct sockaddr_storage *ss,
                               socklen_t len)
{
    unsigned long suppressed = 0;
    if (!allow_ratelimit_due(&l->refused, clock_now_ms() / 1000, &suppressed))
        return;
    char peer[INET6_ADDRSTRLEN + 16];
    listen_peer_name((const struct sockaddr *)ss, len, peer, sizeof(peer));
    if (suppressed)
        log_msg(LOG_WARN, "%s: peer %s refused: not in allow_from (--allow-from); connection "
                "closed (%lu more refused since the last line)", l->name, peer, suppressed);
    else
        log_msg(LOG_WARN, "%s: peer %s refused: not in allow_from (--allow-from); connection "
                "closed", l->name, peer);
}

struct slot *worker_take(struct worker *w, size_t li, bool *again)
{
    const struct listener *l = &w->ctx->listeners[li];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    *again = false;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_msg(LOG_ERROR, "accept(%s) failed: %s", l->name, strerror(errno));
        return NULL;
    }
    if (l->allow && !allow_match(l->allow, (struct sockaddr *)&ss, len)) {
        worker_refuse_peer(&w->ctx->listeners[li], &ss, len);
        close(fd);
        *again = true; /* the next one may be allowed */
        return NULL;
    }
    struct slot *s = worker_slot_alloc(w);
    if (!s) {
        log_msg(LOG_ERROR, "%s: %u connections open, the max-conns limit: connection closed",
                l->name, w->slot_count);
        close(fd);
        return NULL;
    }
    atomic_fetch_add_explicit(&w->sb->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(scoreboard_accepted(w->ctx->sb, w->ctx->index, li), 1,
                              memory_order_relaxed);
    struct proto_limits lim;
    worker_conn_limits(w, &lim);
    if (conn_init(&s->conn, fd, l, &lim, w->cfg->io_timeout_ms) < 0) {
        log_msg(LOG_ERROR, "%s: out of memory for a connection", l->name);
        s->conn.fd = fd;
        worker_slot_close(w, s);
        return NULL;
    }
    s->conn.bye_on_end = &w->stopping;
    listen_peer_name((struct sockaddr *)&ss, len, s->conn.peer, sizeof(s->conn.peer));
    return s;
}

/* Accept one connection and serve it. Returns false when nothing was
 * waiting or the connection could not be taken. */
static bool worker_accept_one(struct worker_thread *t, size_t li)
{
    bool again;
    struct slot *s = worker_take(t->w, li, &again);
    if (s)
        worker_serve(t, s);
    return s || again;
}

/*
 * A listener is ready: accept and serve, then, while this worker still
 * accepts, try the next queued connection straight away — under load that
 * saves an epoll_wait per connection. Bounded, so that parked connections
 * whose bytes arrived meanwhile are not kept waiting for long.
 */
#define ACCEPT_BATCH 16
void worker_accept(struct worker_thread *t, size_t li)
{
    struct worker *w = t->w;
    for (int n = 0; n < ACCEPT_BATCH; n++) {
        if (!worker_accept_one(t, li))
            return;
        if (atomic_load(&w->stopping) ||
            !atomic_load_explicit(&w->sb->accepting, memory_order_relaxed))
            return;
    }
}
