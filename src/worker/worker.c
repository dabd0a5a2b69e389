/*
 * worker.c — the worker process: setup, threads, the shared epoll and the
 * dispatch of its events (the interface is worker.h). Serving a
 * connection is in worker_serve.c, housekeeping and stopping in
 * worker_stop.c, accepting in worker_accept.c, the connection table and the
 * balancing in worker_slots.c, which thread waits for events in
 * worker_lead.c (worker_state.h has the map).
 *
 * One thread waits in epoll_wait at a time: the only one, or with threads
 * the leader (worker_lead.c), which takes a batch of events and serves them
 * one after the other; when one of them blocks, another thread takes the
 * lead and the rest of the batch. A listener event means accept a
 * connection and serve it on the spot (and the next queued ones); a
 * connection event means the connection is readable again.
 * With threads (or an app that keeps requests past the serving thread) a
 * connection stays registered edge-triggered, and a
 * compare-and-swap on its slot decides who serves it, so exactly one thread
 * owns it while it is served and an event that comes meanwhile is left to
 * the owner (ownership: worker_slots.c).
 */
#include "worker_state.h"

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

/* ---- dispatch ---- */

/*
 * A listener is ready: accept and serve, then, while this worker still
 * accepts, try the next queued connection straight away — under load that
 * saves an epoll_wait per connection. Bounded, so that parked connections
 * whose bytes arrived meanwhile are not kept waiting for long.
 */
#define ACCEPT_BATCH 16
static void worker_accept_batch(struct worker_thread *t, size_t li)
{
    struct worker *w = t->w;
    /* Out of the listeners since epoll_wait gave this event, and no thread
     * left for one more connection (a peer had one: worker_slots.c): leave
     * the connection to the peers, and wake them, as the event may have
     * been its only one. Stepped back for another reason, a thread left
     * takes it as before (waking a peer costs it two epoll_ctl). */
    if (!atomic_load_explicit(&w->sb->accepting, memory_order_relaxed) &&
        worker_threads_owed(w->sb) >= w->cfg->threads) {
        worker_pass_on(w);
        return;
    }
    for (int n = 0; n < ACCEPT_BATCH; n++) {
        bool again;
        struct slot *s = worker_take(w, li, &again);
        if (s)
            worker_serve(t, s);
        else if (!again)
            return; /* nothing was waiting, or it could not be taken */
        if (atomic_load(&w->stopping) ||
            !atomic_load_explicit(&w->sb->accepting, memory_order_relaxed))
            return;
        /* With threads, a connection taken before its bytes came is parked
         * for the threads left: go on only while one is left for it besides
         * this one, which the next connection may keep busy. */
        if (!w->single_thread && worker_threads_owed(w->sb) >= w->cfg->threads)
            return;
        /* Threads: the next request is progress of the leader's dispatch
         * (worker_lead.c), unless its lead was taken meanwhile. */
        if (!w->single_thread && !worker_lead_progress(t))
            return;
    }
}

static void worker_rearm(struct worker *w, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = tag};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void worker_dispatch(struct worker_thread *t, const struct epoll_event *ev)
{
    struct worker *w = t->w;
    uint64_t tag = ev->data.u64;
    if (tag == TAG_TIMER) {
        worker_tick(w);
        worker_check_idle_exit(t);
        worker_rearm(w, w->timerfd, TAG_TIMER);
    } else if (tag == TAG_SIGNAL) {
        worker_signal(t);
        worker_rearm(w, w->sigfd, TAG_SIGNAL);
    } else if (tag >= TAG_LISTENER) {
        worker_accept_batch(t, (size_t)(tag - TAG_LISTENER));
    } else {
        unsigned idx = (unsigned)(tag & 0xFFFFFFFFu);
        if (idx < w->slot_count && worker_slot_event(&w->slots[idx], (uint32_t)(tag >> 32))) {
            if (ev->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                w->slots[idx].hup = true;
            worker_serve(t, &w->slots[idx]);
        }
    }
}

/* One thread: a batch of events per wakeup, served one after the other (no
 * other thread could serve them meanwhile). Events of a batch that went
 * stale (the connection was closed and its slot reused) fail the claim. */
static void worker_loop_single(struct worker_thread *t)
{
    struct worker *w = t->w;
    for (;;) {
        struct epoll_event evs[WORKER_BATCH];
        int n = epoll_wait(w->epfd, evs, WORKER_BATCH, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERROR, "epoll_wait failed: %s", strerror(errno));
            worker_exit(w, 1);
        }
        for (int i = 0; i < n; i++)
            worker_dispatch(t, &evs[i]);
    }
}

/* Threads: the leader (worker_lead.c) takes a batch of events and serves
 * them one after the other, like one thread; when a dispatch blocks, the
 * deputy takes the lead and the rest of the batch, and this thread, done,
 * follows. */
static void worker_loop_threads(struct worker_thread *t)
{
    struct worker *w = t->w;
    struct worker_lead *l = &w->lead;
    if (t->index != 0)
        worker_lead_follow(t); /* thread 0 leads first */
    for (;;) {
        if (l->head == l->count) {
            int n = epoll_wait(w->epfd, l->evs, WORKER_BATCH, -1);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                log_msg(LOG_ERROR, "epoll_wait failed: %s", strerror(errno));
                worker_exit(w, 1);
            }
            l->head = 0;
            l->count = n;
            continue;
        }
        struct epoll_event ev = l->evs[l->head++];
        worker_lead_begin(t);
        worker_dispatch(t, &ev);
        if (!worker_lead_end(t))
            worker_lead_follow(t);
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
    if (w->single_thread)
        worker_loop_single(t);
    else
        worker_loop_threads(t);
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
    w->master_pid = getppid(); /* the master forked us and was alive after (master.c) */
    w->sb = &ctx->sb->workers[ctx->index];
    w->status = (struct status_src){.cfg = ctx->cfg,
                                    .sb = ctx->sb,
                                    .listeners = ctx->listeners,
                                    .listener_count = ctx->listener_count};
    atomic_store(&w->last_request_ms, clock_now_us() / 1000);
    pthread_mutex_init(&w->lock, NULL);
    const char *mode = getenv("CORRAL_ACCEPT_MODE");
    w->accept_mode = !mode                            ? ACCEPT_BALANCED
                     : strcmp(mode, "exclusive") == 0 ? ACCEPT_EXCLUSIVE
                     : strcmp(mode, "shared") == 0    ? ACCEPT_SHARED
                                                      : ACCEPT_BALANCED;
    w->single_thread = ctx->cfg->threads == 1;
    w->edge_triggered = !w->single_thread || ctx->app->ops->run_detached != NULL;
    w->pool_mode = config_pool_mode(ctx->cfg);
    w->slot_count = ctx->cfg->max_conns;
    w->slots = calloc(w->slot_count, sizeof(*w->slots));
    w->free_list = calloc(w->slot_count, sizeof(*w->free_list));
    w->poked_at = calloc(ctx->sb->hdr->max_workers, sizeof(*w->poked_at));
    if (!w->slots || !w->free_list || !w->poked_at) {
        log_msg(LOG_ERROR, "worker: out of memory for %u connection slots", w->slot_count);
        return -1;
    }
    /* Lowest slots first: they stay warm in the cache. */
    for (unsigned i = 0; i < w->slot_count; i++) {
        w->free_list[i] = w->slot_count - 1 - i;
        conn_clear(&w->slots[i].conn);
    }
    w->free_count = w->slot_count;
    atomic_store(&w->unreserved, (int)w->slot_count);
    for (unsigned i = 0; i < ctx->sb->hdr->max_workers; i++)
        w->poked_at[i] = UINT64_MAX;

    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    /* A peer's WORKER_POKE_SIGNAL (worker_slots.c): the master does not
     * block it before the fork, so block it here, before any other thread
     * starts (they inherit the mask), and take back a disposition of
     * "ignore" that would discard it even while blocked. */
    sigaddset(&set, WORKER_POKE_SIGNAL);
    signal(WORKER_POKE_SIGNAL, SIG_DFL);
    sigset_t poke;
    sigemptyset(&poke);
    sigaddset(&poke, WORKER_POKE_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &poke, NULL);
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
    scoreboard_worker_reset(sbw, SB_WORKER_STARTING, (int32_t)getpid());
    atomic_store(&sbw->started_at, (int64_t)time(NULL));

    if (worker_setup(&w, ctx) < 0)
        _exit(1);
    ctx->app->resume = worker_resume; /* detached requests come back here */
    ctx->app->resume_arg = &w;
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
    if (worker_orphan_setup(&w) < 0 || watchdog_start(&wd) < 0)
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
