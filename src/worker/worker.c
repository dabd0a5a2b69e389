/*
 * worker.c — the worker process: threads, the shared epoll, the connection
 * table and the life of a connection (see worker.h and src/README.md).
 * Accepting is in worker_accept.c, stopping in worker_stop.c.
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
#include "worker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "watchdog.h"
#include "core/clock.h"

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

/* Close the connection of a slot this thread owns and free the slot. */
void worker_slot_close(struct worker *w, struct slot *s)
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
void worker_slot_park(struct worker *w, struct slot *s)
{
    unsigned idx = (unsigned)(s - w->slots);
    uint32_t gen = (uint32_t)(atomic_load(&s->word) >> 32);
    atomic_store(&s->parked_at_ms, clock_now_ms());
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
bool worker_slot_claim(struct slot *s, uint32_t gen)
{
    uint64_t expect = slot_word(gen, SLOT_PARKED);
    return atomic_compare_exchange_strong(&s->word, &expect, slot_word(gen, SLOT_BUSY));
}

/* ---- serving ---- */

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
    worker_copy(sb->uri, sizeof(sb->uri), c->req.uri);
    atomic_store_explicit(&sb->request_start_us, c->req.start_us, memory_order_relaxed);
    atomic_store_explicit(&sb->state, SB_THREAD_BUSY, memory_order_relaxed);
}

/* Run the app for the request whose params are complete. Returns 0 when the
 * connection can serve another request. */
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
    uint64_t end_us = clock_now_us();
    atomic_store_explicit(&t->sb->busy_us,
                          atomic_load_explicit(&t->sb->busy_us, memory_order_relaxed) +
                              (end_us - c->req.start_us),
                          memory_order_relaxed);
    atomic_store_explicit(&w->last_request_ms, end_us / 1000, memory_order_relaxed);
    atomic_store_explicit(&t->sb->requests,
                          atomic_load_explicit(&t->sb->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);
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
void worker_serve(struct worker_thread *t, struct slot *s)
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
            /* Told to close, nginx does so without reading the goodbye:
             * unread bytes make a unix socket's close a reset. */
            if (c->bye_sent && !c->in_request && (n == 0 || n == -ECONNRESET))
                atomic_fetch_add_explicit(&w->drain_peer, 1, memory_order_relaxed);
            else if (c->in_request || n < 0)
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
            if (worker_run_request(t, c) < 0 || !c->codec->keep_conn(c->codec_state)) {
                worker_slot_close(w, s);
                break;
            }
        } else {
            /* Body events cannot come before the params: a codec bug. */
            conn_protocol_error(c, "request body before the params");
            worker_slot_close(w, s);
            break;
        }
        /* A stopping worker does not close a kept connection here: the front
         * end may already be sending the next request on it (worker_stop.c). */
        c->kept = true;
        if (atomic_load(&w->stopping) && !worker_stop_keep(w, c)) {
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
    atomic_store(&w->last_request_ms, clock_now_us() / 1000);
    pthread_mutex_init(&w->lock, NULL);
    const char *mode = getenv("CORRAL_ACCEPT_MODE");
    w->accept_mode = !mode                         ? ACCEPT_BALANCED
                     : strcmp(mode, "exclusive") == 0 ? ACCEPT_EXCLUSIVE
                     : strcmp(mode, "shared") == 0    ? ACCEPT_SHARED
                                                      : ACCEPT_BALANCED;
    w->single_thread = ctx->cfg->threads == 1;
    w->pool_mode = config_pool_mode(ctx->cfg);
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
        unsigned seed = (unsigned)getpid() ^ (unsigned)clock_now_us();
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
