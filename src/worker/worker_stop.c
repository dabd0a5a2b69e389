/*
 * worker_stop.c — the end of a worker: housekeeping of parked connections
 * (idle timeout, the header deadline, the deadline of a body discarded after
 * its response), recycling (--max-requests, --max-rss), the ondemand idle
 * exit, signals, the graceful stop, and the master's death (let go of the
 * listeners, stop within --graceful-timeout; at the end).
 *
 * A graceful stop (SIGTERM: reload, scale-down, whole pool; recycling; the
 * ondemand idle exit) takes no new connection, finishes the requests in
 * flight, and then has to let go of the connections the front end keeps
 * (FastCGI keep-conn) without losing a request. The front end decides alone
 * when it reuses a kept connection: nginx takes the most recently used one
 * from its upstream keepalive cache and writes the request at once. It
 * notices that we closed a cached connection only when its event loop gets
 * to that connection's read event (ngx_http_upstream_keepalive_close_handler:
 * any readable byte or EOF closes it); a request it takes the connection for
 * before that is written into a closing socket. nginx then retries GETs on
 * another connection, but not POSTs (fastcgi_next_upstream has no
 * non_idempotent by default): a 502. Closing right after a response, as
 * this worker once did, hit that window about once in 150 POSTs under
 * constant recycling (tests/integration/keepconn_drain.sh). A half-close
 * (shutdown SHUT_WR) has the same window: a request that arrives after it
 * can be read but never answered. No close by us is free of the race.
 *
 * So the worker asks the front end to close instead, with bytes that are
 * harmless whichever way the race goes — the codec's goodbye, for FastCGI an
 * empty STDERR record of request id 1:
 *  - At the end of a response (conn_response_end adds it to END_REQUEST, in the
 *    same write; or right after, if the stop began during that write):
 *    bytes after END_REQUEST make nginx drop the connection instead of
 *    caching it (ngx_http_fastcgi_module: "data after close" leaves
 *    u->keepalive 0), and it closes it.
 *  - To a connection parked idle when the stop began: nginx holds it in its
 *    cache; the record makes it readable and the keepalive close handler
 *    closes it. If nginx took the connection and sent a request before it
 *    saw the record, the record comes first in what it reads back, and
 *    nginx skips an empty STDERR in a response; we serve that request, and
 *    its response carries the goodbye as above.
 * Either way we read EOF (or a reset: nginx closes without reading the
 * record) and close. The worker therefore does not close a kept connection
 * itself while nginx may be using it: it keeps serving whatever arrives and
 * exits when the front end has closed them all — with nginx, a few
 * milliseconds after its last response.
 *
 * Front ends that do not close on the goodbye, such as Apache's
 * mod_proxy_fcgi (it reads the record as part of the next response and
 * skips it; before it reuses a pooled connection it checks only that the
 * socket is not at EOF):
 *  - A connection that carried a second request after a goodbye (nginx
 *    never does that: see worker_stop_keep) is closed right after that
 *    response. Apache checks for EOF just before reusing a connection, and
 *    our FIN arrives right behind the response, so it reconnects instead.
 *  - A connection idle DRAIN_IDLE_MS after its goodbye is closed: by then
 *    it is at the cold end of a most-recently-used pool (nginx's cache and
 *    APR's reslist are stacks), rarely the one taken next.
 *  - At the drain limit, min(graceful_timeout / 2, DRAIN_MAX_MS), below the
 *    master's kill deadline (graceful_timeout), what is left is closed when
 *    idle or right after a response.
 *   These closes are the old race, for such front ends only; Apache's check
 *   makes it small.
 * The goodbye itself assumes the front end tolerates an empty STDERR record
 * (the FastCGI spec allows any number in a response; nginx, Apache's
 * mod_proxy_fcgi and libfcgi-based clients skip an empty one).
 */
#include "worker_state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/clock.h"

static void worker_begin_stop(struct worker *w, bool drain_queue);
static void worker_check_orphan(struct worker *w, uint64_t now);

/* Upper bound of the drain of kept connections, below any graceful_timeout
 * the master kills at (min(this, graceful_timeout / 2)). */
#define DRAIN_MAX_MS 5000
/* A kept connection idle this long after its goodbye is closed here (the
 * front end checks for pending bytes before reuse, or ignores them). */
#define DRAIN_IDLE_MS 1000

/* Send the codec's goodbye on an owned kept connection (see the top of this
 * file). Returns 0 (sent, or the protocol has none: the drain limit will
 * close it), -EAGAIN when the socket is full (try again later), or another
 * negative errno: the connection is broken, close it. */
static int worker_stop_goodbye(struct worker *w, struct conn *c)
{
    int rc = conn_send_goodbye(c);
    if (rc == 1)
        atomic_fetch_add_explicit(&w->drain_asked, 1, memory_order_relaxed);
    return rc < 0 ? rc : 0;
}

bool worker_stop_keep(struct worker *w, struct conn *c)
{
    /* A goodbye sent before this request was read by the front end ahead of
     * this response: it may cache the connection again after it. That
     * happens to nginx at most once (a goodbye sent to an idle connection
     * it had just taken); a front end that does it twice ignores goodbyes
     * (conn_note_response_bye counts). */
    bool ignored = conn_note_response_bye(c);
    if (c->bye_sent)
        atomic_fetch_add_explicit(&w->drain_asked, 1, memory_order_relaxed);
    if (conn_has_input(c))
        return true; /* the next request is already here: serve it */
    bool late = clock_now_ms() >= atomic_load(&w->drain_until_ms);
    if (late || ignored) {
        if (conn_input_waiting(c))
            return true;
        atomic_fetch_add_explicit(late ? &w->drain_forced : &w->drain_ignored, 1,
                                  memory_order_relaxed);
        return false;
    }
    if (c->bye_sent)
        return true;
    int rc = worker_stop_goodbye(w, c);
    return rc == 0 || rc == -EAGAIN; /* -EAGAIN: the tick sends it later */
}

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
void worker_check_recycle(struct worker *w, uint64_t served)
{
    const struct config *cfg = w->cfg;
    char why[160];
    /* Already stopping: no statm read or message for a decided stop. */
    if (atomic_load(&w->stopping))
        return;
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
    log_msg(LOG_INFO,
            "worker %u: %s: recycling (it finishes its requests, then a new worker "
            "starts)",
            w->ctx->index, why);
    worker_begin_stop(w, false); /* the other workers take the queued connections */
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

/* Whether the parked slot S, whose deadline clock runs since SINCE (its
 * since_ms), is past it at NOW: the header deadline while a head arrives,
 * the body deadline while a body is discarded after its response. */
static bool worker_past_deadline(const struct worker *w, const struct slot *s, uint64_t since,
                                 uint64_t now)
{
    if (!since || now < since)
        return false;
    uint64_t limit = s->conn.discarding || s->conn.prebuffering ? conn_body_budget_ms(&s->conn)
                                                                : w->cfg->header_timeout_ms;
    return now - since > limit;
}

/* A deadline closes the owned slot S, or a stopping worker one that is
 * discarding a body: one line says which (the discard's at most once a
 * second, conn.c). */
static void worker_close_late(struct worker *w, struct slot *s, uint64_t since, uint64_t now,
                              bool stopping)
{
    struct conn *c = &s->conn;
    if (c->discarding) {
        conn_discard_late(c, since ? now - since : 0, stopping);
    } else if (c->prebuffering) {
        conn_prebuffer_late(c, since ? now - since : 0);
    } else {
        /* One line a second at most: a slowloris opens thousands. */
        static struct allow_ratelimit head_log;
        unsigned long suppressed = 0;
        if (allow_ratelimit_due(&head_log, now / 1000, &suppressed)) {
            const char *m, *u;
            conn_request_name(c, &m, &u);
            log_msg(LOG_ERROR,
                    "%s: peer %s: %s %s: the request head did not arrive within "
                    "header-timeout (%.1f s) of its first byte: connection closed (%lu more "
                    "since the last line)",
                    c->listener->name, c->peer, m, u, (double)w->cfg->header_timeout_ms / 1000.0,
                    suppressed);
        }
    }
    worker_slot_close(w, s);
}

/* Close parked connections that idled past the timeout, or whose head, or
 * discarded or post-buffered body, is past its deadline. When stopping:
 * send the goodbye to kept ones that have not had it and leave them to the
 * front end to close, up to DRAIN_IDLE_MS idle after it or the drain limit;
 * close the other idle ones. One with bytes waiting is served first. */
static void worker_close_idle(struct worker *w, bool stopping)
{
    uint64_t now = clock_now_ms();
    bool draining = stopping && now < atomic_load(&w->drain_until_ms);
    for (unsigned i = 0; i < w->slot_count; i++) {
        struct slot *s = &w->slots[i];
        uint64_t word = atomic_load(&s->word);
        if ((word & 0xFFFFFFFFu) != SLOT_PARKED)
            continue;
        /* NOW was read when the scan began: another thread may have parked
         * this connection since, after NOW (closing many connections makes
         * the scan long); that is age 0, not an underflow that reads as
         * idle for ever. */
        uint64_t parked_at = atomic_load(&s->parked_at_ms);
        uint64_t age = parked_at < now ? now - parked_at : 0;
        /* A body discarded after its response, or post-buffered before
         * the app runs, has its own deadline. */
        bool idle_out =
            age > w->cfg->idle_timeout_ms && !s->conn.discarding && !s->conn.prebuffering;
        bool stop_out =
            stopping && age >= PARK_SETTLE_MS && (!s->conn.in_request || s->conn.discarding);
        /* Told already, the front end closes it: nothing to do but wait,
         * up to DRAIN_IDLE_MS. (Read before the claim, as in_request above:
         * only the owner writes these, and a parked slot has none.) */
        if (stop_out && draining && s->conn.kept && s->conn.bye_sent && age < DRAIN_IDLE_MS)
            stop_out = false;
        uint64_t since = atomic_load_explicit(&s->since_ms, memory_order_relaxed);
        bool late = worker_past_deadline(w, s, since, now);
        if (!idle_out && !stop_out && !late)
            continue;
        if (!worker_slot_claim(s, (uint32_t)(word >> 32)))
            continue;
        /* Owned now: the slot may have been served and parked again since
         * the reads above, so its deadline is read again. */
        since = atomic_load_explicit(&s->since_ms, memory_order_relaxed);
        if (worker_past_deadline(w, s, since, now)) {
            worker_close_late(w, s, since, now, false);
            continue;
        }
        if (!idle_out && !stop_out) {
            worker_slot_park(w, s);
            continue;
        }
        if (!idle_out && conn_input_waiting(&s->conn)) {
            worker_slot_park(w, s); /* a request is arriving: serve it */
            continue;
        }
        /* The response is out and no more of its body is arriving: a stop
         * does not wait for the rest of a body nobody reads. */
        if (stop_out && s->conn.discarding) {
            worker_close_late(w, s, since, now, true);
            continue;
        }
        if (!idle_out && draining && s->conn.kept && !s->conn.bye_sent) {
            int rc = worker_stop_goodbye(w, &s->conn);
            if (rc == 0 || rc == -EAGAIN) {
                worker_slot_park(w, s);
                continue;
            }
        } else if (!idle_out && s->conn.kept) {
            atomic_fetch_add_explicit(draining ? &w->drain_idle : &w->drain_forced, 1,
                                      memory_order_relaxed);
        }
        if (conn_wants_write(&s->conn))
            conn_note_unread_close(&s->conn, age); /* one line a second at most */
        else if (s->conn.in_request)
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
    uint64_t now = clock_now_ms();
    worker_check_orphan(w, now);
    bool stopping = atomic_load(&w->stopping);
    /* Ticks run one at a time but on whichever thread the timer's one-shot
     * event woke: relaxed atomics say so to ThreadSanitizer, which cannot
     * see the order epoll gives them. */
    if (stopping ||
        now - atomic_load_explicit(&w->last_idle_scan_ms, memory_order_relaxed) >= 1000) {
        atomic_store_explicit(&w->last_idle_scan_ms, now, memory_order_relaxed);
        worker_close_idle(w, stopping);
    }
    worker_balance(w);
    if (stopping) {
        pthread_mutex_lock(&w->lock);
        unsigned open = w->open;
        pthread_mutex_unlock(&w->lock);
        if (open == 0) {
            unsigned forced = atomic_load(&w->drain_forced);
            log_msg(forced ? LOG_WARN : LOG_INFO,
                    "worker %u: stopped after %llu ms; kept connections: %u goodbyes sent, %u "
                    "closed by the front end, %u closed idle after it, %u closed after a "
                    "response as the front end ignores it, %u closed at the drain limit",
                    w->ctx->index, (unsigned long long)(now - atomic_load(&w->stop_begun_ms)),
                    atomic_load(&w->drain_asked), atomic_load(&w->drain_peer),
                    atomic_load(&w->drain_idle), atomic_load(&w->drain_ignored), forced);
            worker_exit(w, atomic_load(&w->recycling) ? WORKER_EXIT_RECYCLE : 0);
        }
    }
}

/* Graceful stop: take no new connections; with DRAIN_QUEUE (the whole
 * pool is stopping) also serve every connection already waiting in the
 * listen queues. */
static void worker_begin_stop(struct worker *w, bool drain_queue)
{
    uint64_t now = clock_now_ms(), drain = w->cfg->graceful_timeout_ms / 2;
    atomic_store(&w->stop_begun_ms, now);
    atomic_store(&w->drain_until_ms, now + (drain < DRAIN_MAX_MS ? drain : DRAIN_MAX_MS));
    atomic_store(&w->stopping, 1);
    atomic_store_explicit(&w->sb->state, SB_WORKER_STOPPING, memory_order_relaxed);
    if (w->ctx->app->ops->stopping)
        w->ctx->app->ops->stopping(w->ctx->app); /* its long-lived requests end */
    worker_balance(w);
    for (size_t i = 0; drain_queue && i < w->ctx->listener_count; i++) {
        for (;;) {
            bool again;
            struct slot *s = worker_take(w, i, &again);
            if (s)
                worker_slot_park(w, s);
            else if (!again)
                break;
        }
    }
}

/* Ondemand pools: a worker with no busy thread and no request for
 * --idle-worker-timeout stops gracefully and exits with status 0, which
 * the master takes as a scale-down. */
void worker_check_idle_exit(struct worker_thread *t)
{
    struct worker *w = t->w;
    if (w->pool_mode != POOL_ONDEMAND || atomic_load(&w->stopping) ||
        atomic_load_explicit(&w->sb->busy, memory_order_relaxed) != 0)
        return;
    uint64_t now = clock_now_us() / 1000;
    uint64_t last = atomic_load_explicit(&w->last_request_ms, memory_order_relaxed);
    if (now < last || now - last < w->cfg->idle_worker_timeout_ms)
        return;
    log_msg(LOG_INFO, "worker %u: idle for %.1f s (idle-worker-timeout): exiting", w->ctx->index,
            (double)(now - last) / 1000.0);
    worker_begin_stop(w, false);
}

void worker_signal(struct worker_thread *t)
{
    struct signalfd_siginfo si;
    while (read(t->w->sigfd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
            /* The whole pool stops: serve what waits in the listen queues
             * too; not an orphan, whose listeners are closed. */
            if (!atomic_load(&t->w->stopping))
                worker_begin_stop(t->w, !atomic_load(&t->w->orphaned));
            break;
        case SIGUSR1:
            /* The master reopened its logs (logrotate): reopen ours. */
            log_reopen();
            break;
        case WORKER_POKE_SIGNAL:
            /* A peer's count passed ours, or it stopped accepting: look
             * again whether to accept (worker_slots.c). */
            worker_poked(t->w);
            break;
        default:
            worker_exit(t->w, 0); /* SIGINT, SIGQUIT: stop now */
        }
    }
}

/* ---- the master's death ---- */

/*
 * Only the master enforces --graceful-timeout on a stopping worker
 * (master_limits.c). Once it is gone (SIGKILL, a crash) a worker would
 * serve on, hold the listening sockets (a new corral cannot bind them) and
 * wait on a stuck request forever. So the master has the kernel send
 * WORKER_ORPHAN_SIGNAL to a worker when it dies (PR_SET_PDEATHSIG, master.c;
 * a --preload re-exec keeps the master's pid, so it holds across reloads),
 * and the tick also compares getppid() with the master's pid. The handler
 * runs in whichever thread the kernel picks, possibly one stuck in the app,
 * so it does only async-signal-safe things: it lets go of the listeners (a
 * blank socket dup3'ed over each: the listening socket is closed in this
 * process, and a thread that still holds the number gets EINVAL from
 * accept4 rather than some other file that reused it), arms a timer that
 * SIGKILLs the process a second after the graceful timeout (when every
 * thread is stuck in the app and the tick cannot run), and sends itself
 * SIGTERM: the graceful stop, through the signalfd. The tick logs, and
 * ends the process at the graceful timeout when a thread is free.
 */
static struct worker *worker_orphan_w;
static int worker_orphan_blank = -1;
static timer_t worker_orphan_timer;
static bool worker_orphan_timer_ok;
#define WORKER_ORPHAN_KILL_MARGIN_MS 1000

/* Async-signal-safe: see above. */
static void worker_orphaned(struct worker *w)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&w->orphaned, &expect, 1))
        return;
    atomic_store(&w->orphan_at_ms, clock_now_ms());
    for (size_t i = 0; i < w->ctx->listener_count; i++) {
        int fd = w->ctx->listeners[i].fd;
        if (fd >= 0 && (worker_orphan_blank < 0 || dup3(worker_orphan_blank, fd, O_CLOEXEC) < 0))
            close(fd); /* no blank socket: the number may be reused, but it is let go */
    }
    if (worker_orphan_timer_ok) {
        uint64_t ms = w->cfg->graceful_timeout_ms + WORKER_ORPHAN_KILL_MARGIN_MS;
        struct itimerspec its = {
            .it_value = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L}};
        timer_settime(worker_orphan_timer, 0, &its, NULL);
    }
    kill(getpid(), SIGTERM);
}

static void worker_on_orphan_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (worker_orphan_w)
        worker_orphaned(worker_orphan_w);
    errno = saved;
}

int worker_orphan_setup(struct worker *w)
{
    worker_orphan_w = w;
    worker_orphan_blank = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGKILL};
    worker_orphan_timer_ok = timer_create(CLOCK_MONOTONIC, &sev, &worker_orphan_timer) == 0;
    if (!worker_orphan_timer_ok)
        log_msg(LOG_WARN,
                "worker %u: timer_create failed: %s: a request stuck after the "
                "master died can keep this worker",
                w->ctx->index, strerror(errno));
    struct sigaction sa = {.sa_handler = worker_on_orphan_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, WORKER_ORPHAN_SIGNAL);
    if (sigaction(WORKER_ORPHAN_SIGNAL, &sa, NULL) < 0 ||
        pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0) {
        log_msg(LOG_ERROR, "worker %u: sigaction failed: %s", w->ctx->index, strerror(errno));
        return -1;
    }
    if (getppid() != w->master_pid)
        worker_orphaned(w); /* the master died before the handler was there */
    return 0;
}

/* From the tick: notice the master's death if the signal did not tell
 * (getppid), log it once, and end the process at the graceful timeout. */
static void worker_check_orphan(struct worker *w, uint64_t now)
{
    if (!atomic_load(&w->orphaned)) {
        if (getppid() == w->master_pid)
            return;
        worker_orphaned(w);
    }
    uint64_t since = atomic_load(&w->orphan_at_ms), timeout = w->cfg->graceful_timeout_ms;
    int expect = 0;
    if (atomic_compare_exchange_strong(&w->orphan_logged, &expect, 1)) {
        pthread_mutex_lock(&w->lock);
        unsigned open = w->open;
        pthread_mutex_unlock(&w->lock);
        log_msg(LOG_WARN,
                "worker %u: the master (pid %d) is gone: the listeners are closed; "
                "%u connection(s) open get the graceful timeout (%.1f s), then the worker "
                "exits",
                w->ctx->index, (int)w->master_pid, open, (double)timeout / 1000.0);
    }
    if (now < since + timeout)
        return;
    log_msg(LOG_ERROR,
            "worker %u: the master is gone and %d thread(s) are still serving after "
            "the graceful timeout (%.1f s): exiting",
            w->ctx->index, (int)atomic_load_explicit(&w->sb->busy, memory_order_relaxed),
            (double)timeout / 1000.0);
    worker_exit(w, 1);
}
