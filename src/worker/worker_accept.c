/*
 * worker_accept.c — taking one connection from a listener: a slot claimed
 * first, accept4, the --allow-from check and its rate-limited refusal log,
 * the back-off when out of file descriptors, the codec limits (FastCGI
 * GET_VALUES) and conn_init. Serving it is the caller's (worker.c); which
 * worker accepts at all is worker_slots.c's.
 */
#include "worker_state.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/clock.h"

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
        unsigned target = atomic_load_explicit(&w->ctx->sb->hdr->pool_target, memory_order_relaxed);
        procs = target ? target : cfg->processes;
    }
    lim->fcgi_max_conns = worker_saturating_mul(procs, cfg->max_conns);
    lim->fcgi_max_reqs = worker_saturating_mul(procs, cfg->threads);
    if (cfg->fastcgi_program && config_program_processes(cfg) < lim->fcgi_max_reqs)
        lim->fcgi_max_reqs = config_program_processes(cfg); /* one request per program */
}

/* A peer --allow-from does not list: one log line per second per listener
 * (in this process), with the number of refusals left unlogged since. */
static void worker_refuse_peer(struct listener *l, const struct sockaddr_storage *ss, socklen_t len)
{
    unsigned long suppressed = 0;
    if (!allow_ratelimit_due(&l->refused, clock_now_ms() / 1000, &suppressed))
        return;
    char peer[INET6_ADDRSTRLEN + 16];
    listen_peer_name((const struct sockaddr *)ss, len, peer, sizeof(peer));
    if (suppressed)
        log_msg(LOG_WARN,
                "%s: peer %s refused: not in allow_from (--allow-from); connection "
                "closed (%lu more refused since the last line)",
                l->name, peer, suppressed);
    else
        log_msg(LOG_WARN,
                "%s: peer %s refused: not in allow_from (--allow-from); connection "
                "closed",
                l->name, peer);
}

/* Out of file descriptors (or kernel memory): the connection stays in the
 * listen queue while the listeners are out of epoll for a moment (a
 * level-triggered listener would wake the threads again at once, and each
 * try would fail and log); one log line a second in this process, with the
 * number of failures left unlogged since. */
static void worker_out_of_fds(struct worker *w, const struct listener *l, int err)
{
    worker_back_off_accept(w);
    unsigned long suppressed = 0;
    if (!allow_ratelimit_due(&w->no_fds_log, clock_now_ms() / 1000, &suppressed))
        return;
    log_msg(LOG_ERROR,
            "accept(%s) failed: %s; not accepting for %d ms (%lu more failures "
            "since the last line)",
            l->name, strerror(err), NO_FDS_BACKOFF_MS, suppressed);
}

struct slot *worker_take(struct worker *w, size_t li, bool *again)
{
    const struct listener *l = &w->ctx->listeners[li];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    *again = false;
    /* A slot first: when full, the connection stays queued for a worker
     * with room rather than be taken only to be closed. */
    if (!worker_slot_reserve(w))
        return NULL;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        worker_slot_unreserve(w);
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            worker_out_of_fds(w, l, errno);
        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_msg(LOG_ERROR, "accept(%s) failed: %s", l->name, strerror(errno));
        return NULL;
    }
    if (l->allow && !allow_match(l->allow, (struct sockaddr *)&ss, len)) {
        worker_refuse_peer(&w->ctx->listeners[li], &ss, len);
        worker_slot_unreserve(w);
        close(fd);
        *again = true; /* the next one may be allowed */
        return NULL;
    }
    struct slot *s = worker_slot_alloc(w);
    if (!s) { /* not with the claim above: a broken count */
        worker_slot_unreserve(w);
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
        worker_slot_close(w, s); /* closes fd: conn_init kept it */
        return NULL;
    }
    s->fresh = true;
    conn_set_bye_on_end(&s->conn, &w->stopping);
    conn_set_peer(&s->conn, (struct sockaddr *)&ss, len);
    return s;
}
