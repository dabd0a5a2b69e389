/*
 * worker.c — the worker process: threads, the shared epoll, the connection
 * table and the life of a connection (see worker.h and shared/DESIGN.md).
 *
 * Every thread waits in epoll_wait on the same instance and takes one event
 * at a time. A listener event means accept one connection and serve it on
 * the spot; a connection event means the connection is readable again. A
 * connection is armed one-shot only while parked (waiting for bytes, no
 * thread), so exactly one thread owns it while it is served.
 *
 * Parked connections can also be closed by the housekeeping tick (idle
 * timeout, graceful stop). Ownership is decided by a compare-and-swap on the
 * slot's state word, which also carries a generation number: the epoll data
 * of a connection names its slot and generation, so an event that arrives
 * for a connection that was closed meanwhile (its slot reused) is ignored.
 */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "status_page.h"
#include "watchdog.h"

enum { SLOT_FREE = 0, SLOT_BUSY = 1, SLOT_PARKED = 2 };

/* epoll data: connections are (generation << 32 | slot); the rest are tags. */
#define TAG_BASE 0xFFFFFFFF00000000ull
#define TAG_TIMER (TAG_BASE | 0)
#define TAG_SIGNAL (TAG_BASE | 1)
#define TAG_LISTENER (TAG_BASE | 16)

#define TICK_MS 100
/* A graceful stop closes idle kept connections parked at least this long,
 * which also keeps it clear of a thread that is parking one right now. */
#define PARK_SETTLE_MS 100
/* Body bytes read and thrown away to reuse or cleanly close a connection
 * whose request body the app did not read. */
#define DRAIN_LIMIT (4u << 20)

struct slot {
    _Atomic uint64_t word;        /* generation << 32 | SLOT_* */
    _Atomic uint64_t parked_at_ms;
    bool registered;              /* fd is in the epoll set */
    struct conn conn;
};

struct worker {
    const struct worker_ctx *ctx;
    const struct config *cfg;
    int epfd, timerfd, sigfd;
    struct slot *slots;
    unsigned slot_count;

    pthread_mutex_t lock;         /* guards the free list, open, armed */
    unsigned *free_list;
    unsigned free_count;
    unsigned open;                /* open connections */
    bool armed;                   /* listeners are in the epoll set */

    /* How workers share the listeners. Only benchmarks change it, through
     * CORRAL_ACCEPT_MODE, to reproduce the measurement in DESIGN.md. */
    enum { ACCEPT_BALANCED, ACCEPT_EXCLUSIVE, ACCEPT_SHARED } accept_mode;
    /* One thread: nobody else can take a connection's event while it is
     * served, so connections stay registered level-triggered and parking
     * costs no epoll_ctl (what one-shot re-arming costs per request). */
    bool single_thread;
    _Atomic int stopping;         /* 0 running, 1 graceful */
    _Atomic int exiting;
    _Atomic int recycling;        /* the graceful stop is a recycling */
    _Atomic uint64_t served;      /* requests this process served */
    uint64_t max_requests;        /* with its jitter; 0 = never */
    int statm_fd;                 /* /proc/self/statm when --max-rss, else -1 */
    uint64_t page_kib;            /* the page size, for statm's page counts */
    struct sb_worker *sb;
    uint64_t last_idle_scan_ms;
    _Atomic uint64_t last_request_ms; /* end of the last request (ondemand idle exit) */
    struct status_src status;         /* the status page's view */
};

static uint64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Workers in the pool now: scaling changes it while workers run. */
static unsigned worker_pool_slots(const struct worker_ctx *ctx)
{
    return atomic_load_explicit(&ctx->sb->hdr->slots, memory_order_relaxed);
}

static uint64_t slot_word(uint32_t gen, unsigned state)
{
    return (uint64_t)gen << 32 | state;
}

/* ---- accept balancing ---- */

/*
 * Whether this worker should take new connections: not while stopping or
 * full, and not while it holds 2 or more connections more than another
 * worker that has a free thread (EPOLLEXCLUSIVE alone lets one process take
 * a whole burst of connects: measured, see DESIGN.md). Call with the lock.
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
static void worker_balance_locked(struct worker *w)
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

static void worker_balance(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    worker_balance_locked(w);
    pthread_mutex_unlock(&w->lock);
}

/* ---- the connection table ---- */

static struct slot *worker_slot_alloc(struct worker *w)
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

/* Close the connection of a slot this thread owns and free the slot. */
static void worker_slot_close(struct worker *w, struct slot *s)
{
    close(s->conn.fd); /* also takes it out of the epoll set */
    s->conn.fd = -1;
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

/* Hand a connection back to epoll until its next bytes arrive. */
static void worker_slot_park(struct worker *w, struct slot *s)
{
    unsigned idx = (unsigned)(s - w->slots);
    uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32);
    atomic_store(&s->parked_at_ms, worker_now_ms());
    /* PARKED before arming: the event may fire at once, on another thread. */
    atomic_store(&s->word, slot_word(gen, SLOT_PARKED));
    if (w->single_thread && s->registered)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                             .data.u64 = (uint64_t)gen << 32 | idx};
    if (!w->single_thread)
        ev.events |= EPOLLONESHOT;
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

/* Take ownership of a parked slot; false if someone else has it. */
static bool worker_slot_claim(struct slot *s, uint32_t gen)
{
    uint64_t expect = slot_word(gen, SLOT_PARKED);
    return atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_BUSY));
}

/* ---- serving ---- */

struct worker_thread {
    struct worker *w;
    unsigned index;
    struct sb_thread *sb;
};

/* Copy SRC (NULL = "") into DST of CAP bytes, cut if longer. */
static void worker_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static void worker_thread_mark(struct worker_thread *t, struct conn *c)
{
    struct sb_thread *sb = t->sb;
    worker_copy(sb->method, sizeof(sb->method), c->req.method);
    worker_copy(sb->uri, sizeof(sb->uri), params_get(&c->params, "REQUEST_URI"));
    atomic_store_explicit(&sb->request_start_us, request_now_us(), memory_order_relaxed);
    atomic_store_explicit(&sb->state, SB_THREAD_BUSY, memory_order_relaxed);
}

/* Run the app for the request whose params are complete. Returns 0 when the
 * connection can serve another request. */
static void worker_begin_stop(struct worker_thread *t, bool drain_queue);

/* This worker's RSS in KiB from /proc/self/statm (one pread), or 0. */
static uint64_t worker_rss_kib(const struct worker *w)
{
    char buf[128];
    ssize_t n = pread(w->statm_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return resident * w->page_kib;
}

/* After a request: past --max-requests or --max-rss, the worker finishes
 * what it has, exits with WORKER_EXIT_RECYCLE, and the master starts a new
 * one at once. */
static void worker_check_recycle(struct worker_thread *t, uint64_t served)
{
    struct worker *w = t->w;
    const struct config *cfg = w->cfg;
    char why[160];
    if (w->max_requests && served >= w->max_requests) {
        snprintf(why, sizeof(why), "served %llu requests (max-requests %u, jitter %u)",
                 (unsigned long long)served, cfg->max_requests, cfg->max_requests_jitter);
    } else if (w->statm_fd >= 0) {
        uint64_t rss = worker_rss_kib(w);
        if (rss <= (uint64_t)cfg->max_rss_mib * 1024)
            return;
        snprintf(why, sizeof(why), "RSS %.1f MiB is over max-rss %u MiB", (double)rss / 1024,
                 cfg->max_rss_mib);
    } else {
        return;
    }
    int expect = 0;
    if (atomic_load(&w->stopping) || !atomic_compare_exchange_strong(&w->recycling, &expect, 1))
        return;
    log_msg(LOG_INFO, "worker %u: %s: recycling (it finishes its requests, then a new worker "
            "starts)", w->ctx->index, why);
    worker_begin_stop(t, false); /* the other workers take the queued connections */
}

static int worker_run_request(struct worker_thread *t, struct conn *c)
{
    struct worker *w = t->w;
    request_begin(&c->req, c);
    worker_thread_mark(t, c);
    int rc = status_page_wanted(w->cfg, &c->req)
                 ? status_page_serve(&w->status, &c->req)
                 : w->ctx->app->ops->handle(w->ctx->app, &c->req);
    int ok = request_finish(&c->req, rc);
    /* Only this thread writes its sub-slot: a load and a store, no locked
     * read-modify-write. */
    uint64_t end_us = request_now_us();
    atomic_store_explicit(&t->sb->busy_us,
                          atomic_load_explicit(&t->sb->busy_us, memory_order_relaxed) +
                              (end_us - c->req.start_us),
                          memory_order_relaxed);
    atomic_store_explicit(&w->last_request_ms, end_us / 1000, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->sb->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->sb->requests, 1, memory_order_relaxed);
    /* The slot's counter adds up every worker that held the slot: this
     * process's own count decides its recycling. */
    uint64_t served = atomic_fetch_add_explicit(&w->served, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&t->sb->state, SB_THREAD_IDLE, memory_order_relaxed);
    if (w->max_requests || w->statm_fd >= 0)
        worker_check_recycle(t, served);
    if (ok < 0 || c->aborted)
        return -1;
    if (!c->body_done) {
        bool keep = c->codec->keep_conn(c->codec_state);
        if (request_drain_body(&c->req, keep ? UINT64_MAX : DRAIN_LIMIT) < 0)
            return -1;
    }
    return 0;
}

/*
 * Serve the connection of an owned slot until it must wait for bytes (then
 * it is parked) or be closed.
 */
static void worker_serve(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    struct conn *c = &s->conn;
    atomic_fetch_add_explicit(&w->sb->busy, 1, memory_order_relaxed);
    for (;;) {
        struct proto_event ev;
        enum proto_result r = conn_decode(c, &ev);
        if (r == PROTO_NEED_MORE) {
            ssize_t n = conn_fill(c, 0);
            if (n > 0)
                continue;
            if (n == -EAGAIN) {
                worker_slot_park(w, s);
                break;
            }
            if (c->in_request || n < 0)
                log_msg(LOG_ERROR, "%s: peer %s: %s in the middle of a request",
                        c->listener->name, c->peer,
                        n == 0 ? "connection closed" : strerror((int)-n));
            worker_slot_close(w, s);
            break;
        }
        if (r == PROTO_ERROR) {
            conn_protocol_error(c, ev.reason);
            atomic_fetch_add_explicit(&w->sb->errors, 1, memory_order_relaxed);
            worker_slot_close(w, s);
            break;
        }
        if (r == PROTO_ABORT) {
            /* Aborted before the app ran: end the request, nothing else. */
            uint8_t end[PROTO_END_MAX];
            size_t el = c->codec->end(c->codec_state, end, 0);
            struct iovec iov = {.iov_base = end, .iov_len = el};
            if (conn_writev(c, &iov, 1) < 0 || !c->codec->keep_conn(c->codec_state)) {
                worker_slot_close(w, s);
                break;
            }
        } else if (r == PROTO_PARAMS_DONE) {
            if (worker_run_request(t, c) < 0 || !c->codec->keep_conn(c->codec_state) ||
                atomic_load(&w->stopping)) {
                worker_slot_close(w, s);
                break;
            }
        } else {
            /* Body events cannot come before the params: a codec bug. */
            conn_protocol_error(c, "request body before the params");
            worker_slot_close(w, s);
            break;
        }
        /* Kept connection: the next request may already be buffered; if
         * not, wait in epoll rather than try a read that would only say
         * EAGAIN (a front end sends the next request much later). */
        c->codec->next_request(c->codec_state);
        params_reset(&c->params);
        c->in_request = c->body_done = c->aborted = false;
        if (c->buf_start == c->buf_end) {
            worker_slot_park(w, s);
            break;
        }
    }
    atomic_fetch_sub_explicit(&w->sb->busy, 1, memory_order_relaxed);
}

/* A peer --allow-from does not list: one log line per second per listener
 * (in this process), with the number of refusals left unlogged since. */
static void worker_refuse_peer(struct listener *l, const struct sockaddr_storage *ss,
                               socklen_t len)
{
    unsigned long suppressed = 0;
    if (!allow_ratelimit_due(&l->refused, worker_now_ms() / 1000, &suppressed))
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

/* Accept one connection and serve it. Returns false when nothing was
 * waiting or the connection could not be taken. */
static bool worker_accept_one(struct worker_thread *t, size_t li)
{
    struct worker *w = t->w;
    const struct listener *l = &w->ctx->listeners[li];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_msg(LOG_ERROR, "accept(%s) failed: %s", l->name, strerror(errno));
        return false;
    }
    if (l->allow && !allow_match(l->allow, (struct sockaddr *)&ss, len)) {
        worker_refuse_peer(&w->ctx->listeners[li], &ss, len);
        close(fd);
        return true; /* the next one may be allowed */
    }
    struct slot *s = worker_slot_alloc(w);
    if (!s) {
        log_msg(LOG_ERROR, "%s: %u connections open, the max-conns limit: connection closed",
                l->name, w->slot_count);
        close(fd);
        return false;
    }
    atomic_fetch_add_explicit(&w->sb->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(scoreboard_accepted(w->ctx->sb, w->ctx->index, li), 1,
                              memory_order_relaxed);
    if (conn_init(&s->conn, fd, l, &w->cfg->limits, w->cfg->io_timeout_ms) < 0) {
        log_msg(LOG_ERROR, "%s: out of memory for a connection", l->name);
        s->conn.fd = fd;
        worker_slot_close(w, s);
        return false;
    }
    listen_peer_name((struct sockaddr *)&ss, len, s->conn.peer, sizeof(s->conn.peer));
    worker_serve(t, s);
    return true;
}

/*
 * A listener is ready: accept and serve, then, while this worker still
 * accepts, try the next queued connection straight away — under load that
 * saves an epoll_wait per connection. Bounded, so that parked connections
 * whose bytes arrived meanwhile are not kept waiting for long.
 */
#define ACCEPT_BATCH 16
static void worker_accept(struct worker_thread *t, size_t li)
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

/* ---- housekeeping and stopping ---- */

static void worker_exit(struct worker *w, int status) __attribute__((noreturn));
static void worker_exit(struct worker *w, int status)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&w->exiting, &expect, 1)) {
        if (status == 0 || status == WORKER_EXIT_RECYCLE)
            w->ctx->app->ops->worker_fini(w->ctx->app);
        _exit(status);
    }
    for (;;)
        pause(); /* another thread is exiting the process */
}

/* Close parked connections that idled past the timeout, or, when stopping,
 * every idle parked connection (one with bytes waiting is served first). */
static void worker_close_idle(struct worker *w, bool stopping)
{
    uint64_t now = worker_now_ms();
    for (unsigned i = 0; i < w->slot_count; i++) {
        struct slot *s = &w->slots[i];
        uint64_t word = atomic_load(&s->word);
        if ((word & 0xFFFFFFFFu) != SLOT_PARKED)
            continue;
        uint64_t age = now - atomic_load(&s->parked_at_ms);
        bool idle_out = age > w->cfg->idle_timeout_ms;
        bool stop_out = stopping && age >= PARK_SETTLE_MS && !s->conn.in_request;
        if (!idle_out && !stop_out)
            continue;
        if (!worker_slot_claim(s, (uint32_t)(word >> 32)))
            continue;
        char probe;
        if (!idle_out && recv(s->conn.fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
            worker_slot_park(w, s); /* a request is arriving: serve it */
            continue;
        }
        if (s->conn.in_request)
            log_msg(LOG_ERROR, "%s: peer %s: request incomplete after %llu ms; connection closed",
                    s->conn.listener->name, s->conn.peer, (unsigned long long)age);
        worker_slot_close(w, s);
    }
}

static void worker_tick(struct worker *w)
{
    uint64_t expirations;
    if (read(w->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        log_msg(LOG_ERROR, "read(timerfd) failed: %s", strerror(errno));
    bool stopping = atomic_load(&w->stopping);
    uint64_t now = worker_now_ms();
    if (stopping || now - w->last_idle_scan_ms >= 1000) {
        w->last_idle_scan_ms = now;
        worker_close_idle(w, stopping);
    }
    worker_balance(w);
    if (stopping) {
        pthread_mutex_lock(&w->lock);
        unsigned open = w->open;
        pthread_mutex_unlock(&w->lock);
        if (open == 0)
            worker_exit(w, atomic_load(&w->recycling) ? WORKER_EXIT_RECYCLE : 0);
    }
}

/* Graceful stop: take no new connections; with DRAIN_QUEUE (the whole
 * pool is stopping) also serve every connection already waiting in the
 * listen queues. */
static void worker_begin_stop(struct worker_thread *t, bool drain_queue)
{
    struct worker *w = t->w;
    atomic_store(&w->stopping, 1);
    atomic_store_explicit(&w->sb->state, SB_WORKER_STOPPING, memory_order_relaxed);
    worker_balance(w);
    for (size_t i = 0; drain_queue && i < w->ctx->listener_count; i++) {
        const struct listener *l = &w->ctx->listeners[i];
        for (;;) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof(ss);
            int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            struct slot *s = worker_slot_alloc(w);
            if (!s || conn_init(&s->conn, fd, l, &w->cfg->limits, w->cfg->io_timeout_ms) < 0) {
                log_msg(LOG_ERROR, "%s: could not take a queued connection while stopping",
                        l->name);
                close(fd);
                if (s) {
                    s->conn.fd = -1;
                    worker_slot_close(w, s);
                }
                continue;
            }
            atomic_fetch_add_explicit(&w->sb->accepted, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(scoreboard_accepted(w->ctx->sb, w->ctx->index, i), 1,
                                      memory_order_relaxed);
            listen_peer_name((struct sockaddr *)&ss, len, s->conn.peer, sizeof(s->conn.peer));
            worker_slot_park(w, s);
        }
    }
}

/* Ondemand pools: a worker with no busy thread and no request for
 * --idle-worker-timeout stops gracefully and exits with status 0, which
 * the master takes as a scale-down. */
static void worker_check_idle_exit(struct worker_thread *t)
{
    struct worker *w = t->w;
    if (config_pool_mode(w->cfg) != POOL_ONDEMAND || atomic_load(&w->stopping) ||
        atomic_load_explicit(&w->sb->busy, memory_order_relaxed) != 0)
        return;
    uint64_t now = request_now_us() / 1000;
    uint64_t last = atomic_load_explicit(&w->last_request_ms, memory_order_relaxed);
    if (now < last || now - last < w->cfg->idle_worker_timeout_ms)
        return;
    log_msg(LOG_INFO, "worker %u: idle for %.1f s (idle-worker-timeout): exiting",
            w->ctx->index, (double)(now - last) / 1000.0);
    worker_begin_stop(t, false);
}

static void worker_signal(struct worker_thread *t)
{
    struct signalfd_siginfo si;
    while (read(t->w->sigfd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
            if (!atomic_load(&t->w->stopping))
                worker_begin_stop(t, true);
            break;
        case SIGUSR1:
            /* The master reopened its logs (logrotate): reopen ours. */
            log_reopen();
            break;
        default:
            worker_exit(t->w, 0); /* SIGINT, SIGQUIT: stop now */
        }
    }
}

static void worker_rearm(struct worker *w, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = tag};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev);
}

#define WORKER_BATCH 64

static void worker_dispatch(struct worker_thread *t, uint64_t tag)
{
    struct worker *w = t->w;
    if (tag == TAG_TIMER) {
        worker_tick(w);
        worker_check_idle_exit(t);
        worker_rearm(w, w->timerfd, TAG_TIMER);
    } else if (tag == TAG_SIGNAL) {
        worker_signal(t);
        worker_rearm(w, w->sigfd, TAG_SIGNAL);
    } else if (tag >= TAG_LISTENER) {
        worker_accept(t, (size_t)(tag - TAG_LISTENER));
    } else {
        unsigned idx = (unsigned)(tag & 0xFFFFFFFFu);
        if (idx < w->slot_count && worker_slot_claim(&w->slots[idx], (uint32_t)(tag >> 32)))
            worker_serve(t, &w->slots[idx]);
    }
}

static void *worker_thread_main(void *arg)
{
    struct worker_thread *t = arg;
    struct worker *w = t->w;
    if (w->ctx->app->ops->thread_init(w->ctx->app) < 0) {
        log_msg(LOG_ERROR, "worker thread %u: the app's thread init failed", t->index);
        worker_exit(w, WORKER_EXIT_APP_INIT);
    }
    if (w->ctx->app->ops->thread_handle)
        watchdog_set_handle(t->index, w->ctx->app->ops->thread_handle(w->ctx->app));
    atomic_fetch_add_explicit(&w->sb->threads_live, 1, memory_order_relaxed);
    for (;;) {
        /* A single-threaded worker takes a batch of events per wakeup (no
         * other thread could serve them meanwhile); with more threads each
         * takes one event, so a ready connection never waits behind
         * another thread's work. Events of a batch that went stale (the
         * connection was closed and its slot reused) fail the claim. */
        struct epoll_event evs[WORKER_BATCH];
        int n = epoll_wait(w->epfd, evs, w->single_thread ? WORKER_BATCH : 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERROR, "epoll_wait failed: %s", strerror(errno));
            worker_exit(w, 1);
        }
        for (int i = 0; i < n; i++)
            worker_dispatch(t, evs[i].data.u64);
    }
    return NULL;
}

/* ---- setup ---- */

static int worker_add_fd(struct worker *w, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = tag};
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int worker_setup(struct worker *w, const struct worker_ctx *ctx)
{
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->cfg = ctx->cfg;
    w->sb = &ctx->sb->workers[ctx->index];
    w->status = (struct status_src){.cfg = ctx->cfg,
                                    .sb = ctx->sb,
                                    .listeners = ctx->listeners,
                                    .listener_count = ctx->listener_count};
    atomic_store(&w->last_request_ms, request_now_us() / 1000);
    pthread_mutex_init(&w->lock, NULL);
    const char *mode = getenv("CORRAL_ACCEPT_MODE");
    w->accept_mode = !mode                         ? ACCEPT_BALANCED
                     : strcmp(mode, "exclusive") == 0 ? ACCEPT_EXCLUSIVE
                     : strcmp(mode, "shared") == 0    ? ACCEPT_SHARED
                                                      : ACCEPT_BALANCED;
    w->single_thread = ctx->cfg->threads == 1;
    w->slot_count = ctx->cfg->max_conns;
    w->slots = calloc(w->slot_count, sizeof(*w->slots));
    w->free_list = calloc(w->slot_count, sizeof(*w->free_list));
    if (!w->slots || !w->free_list) {
        log_msg(LOG_ERROR, "worker: out of memory for %u connection slots", w->slot_count);
        return -1;
    }
    /* Lowest slots first: they stay warm in the cache. */
    for (unsigned i = 0; i < w->slot_count; i++) {
        w->free_list[i] = w->slot_count - 1 - i;
        w->slots[i].conn.fd = -1;
    }
    w->free_count = w->slot_count;

    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->epfd < 0 || w->timerfd < 0 || w->sigfd < 0) {
        log_msg(LOG_ERROR, "worker: epoll/timerfd/signalfd setup failed: %s", strerror(errno));
        return -1;
    }
    struct itimerspec its = {.it_interval = {0, TICK_MS * 1000000L},
                             .it_value = {0, TICK_MS * 1000000L}};
    timerfd_settime(w->timerfd, 0, &its, NULL);
    if (worker_add_fd(w, w->timerfd, TAG_TIMER) < 0 || worker_add_fd(w, w->sigfd, TAG_SIGNAL) < 0) {
        log_msg(LOG_ERROR, "worker: epoll_ctl failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* --max-requests (this worker's limit, with its jitter) and --max-rss. */
static void worker_setup_recycling(struct worker *w, const struct worker_ctx *ctx)
{
    const struct config *cfg = ctx->cfg;
    w->max_requests = cfg->max_requests;
    if (cfg->max_requests && cfg->max_requests_jitter) {
        /* Seeded per worker: workers started together get different limits. */
        unsigned seed = (unsigned)getpid() ^ (unsigned)request_now_us();
        w->max_requests += (uint64_t)rand_r(&seed) % ((uint64_t)cfg->max_requests_jitter + 1);
    }
    w->statm_fd = -1;
    w->page_kib = (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
    if (cfg->max_rss_mib) {
        w->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (w->statm_fd < 0)
            log_msg(LOG_ERROR, "worker %u: /proc/self/statm: %s: --max-rss is not checked",
                    ctx->index, strerror(errno));
    }
}

void worker_run(const struct worker_ctx *ctx)
{
    static struct worker w; /* lives as long as the process */
    struct sb_worker *sbw = &ctx->sb->workers[ctx->index];
    atomic_store(&sbw->pid, (int32_t)getpid());
    atomic_store(&sbw->state, SB_WORKER_STARTING);
    atomic_store(&sbw->conns, 0);
    atomic_store(&sbw->busy, 0);
    atomic_store(&sbw->threads_live, 0);
    atomic_store(&sbw->started_at, (int64_t)time(NULL));

    if (worker_setup(&w, ctx) < 0)
        _exit(1);
    if (ctx->app->ops->worker_init(ctx->app) < 0)
        _exit(WORKER_EXIT_APP_INIT);
    worker_setup_recycling(&w, ctx);

    unsigned nthreads = ctx->cfg->threads;
    struct worker_thread *threads = calloc(nthreads, sizeof(*threads));
    if (!threads)
        _exit(1);
    for (unsigned i = 0; i < nthreads; i++) {
        threads[i] = (struct worker_thread){
            .w = &w, .index = i, .sb = scoreboard_thread(ctx->sb, ctx->index, i)};
        atomic_store(&threads[i].sb->state, SB_THREAD_IDLE);
    }
    struct watchdog_params wd = {
        .app = ctx->app,
        .threads = scoreboard_thread(ctx->sb, ctx->index, 0),
        .thread_count = nthreads,
        .worker_index = ctx->index,
        .slowlog_ms = ctx->cfg->slowlog_ms,
        .harakiri_ms = ctx->cfg->harakiri_ms,
    };
    if (watchdog_start(&wd) < 0)
        _exit(1);
    atomic_store(&sbw->state, SB_WORKER_RUNNING);
    worker_balance(&w);
    for (unsigned i = 1; i < nthreads; i++) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&tid, &attr, worker_thread_main, &threads[i]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            log_msg(LOG_ERROR, "worker: pthread_create failed: %s", strerror(rc));
            _exit(1);
        }
    }
    worker_thread_main(&threads[0]);
    _exit(1);
}
