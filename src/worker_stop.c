/*
 * worker_stop.c — the end of a worker: housekeeping of parked connections
 * (idle timeout), recycling (--max-requests, --max-rss), the ondemand idle
 * exit, signals, and the graceful stop.
 */
#include "worker_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

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
void worker_check_recycle(struct worker_thread *t, uint64_t served)
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

void worker_exit(struct worker *w, int status)
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

void worker_tick(struct worker *w)
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
void worker_check_idle_exit(struct worker_thread *t)
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

void worker_signal(struct worker_thread *t)
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
