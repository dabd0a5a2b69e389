/*
 * conn.c — one connection (see conn.h): reading, decoding, the request body
 * stream, writing (with the queue of replies made before a request runs),
 * the reset between kept requests and the goodbye bookkeeping. It calls only
 * the codec (protocols/), os/ and core/.
 */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/log.h"
#include "os/allow.h"
#include "peer.h"

void conn_clear(struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int conn_init(struct conn *c, int fd, const struct listener *l, const struct proto_limits *lim,
              unsigned io_timeout_ms)
{
    c->fd = fd; /* first: conn_close closes it whatever fails below */
    /* Buffers survive from the previous connection of this slot. */
    if (!c->buf) {
        c->buf = malloc(CONN_BUF_SIZE);
        if (!c->buf)
            return -ENOMEM;
    }
    if (!c->codec_state || c->codec != l->addr.codec) {
        free(c->codec_state);
        c->codec_state = malloc(l->addr.codec->state_size);
        if (!c->codec_state)
            return -ENOMEM;
    }
    if (!c->params.max_bytes)
        params_init(&c->params, lim->max_head, lim->max_params, lim->max_field);
    params_reset(&c->params);
    c->listener = l;
    c->codec = l->addr.codec;
    c->limits = *lim;
    c->codec->init(c->codec_state, &c->limits);
    c->buf_start = c->buf_end = 0;
    c->io_timeout_ms = io_timeout_ms;
    c->in_request = c->body_done = c->aborted = c->broken = c->replied = false;
    c->kept = c->bye_sent = c->bye_in_response = false;
    c->byes_ignored = 0;
    c->bye_on_end = NULL;
    c->pending = NULL;
    c->pending_len = 0;
    c->out_start = c->out_len = 0;
    c->body_timeout_ms = c->send_timeout_ms = c->min_rate = 0;
    c->body_in = c->body_waited_us = c->sent = c->send_waited_us = 0;
    c->discarding = false;
    c->discarded = 0;
    c->pre_len = 0;
    c->prebuffering = c->pre_served = c->nowait = false;
    return 0;
}

void conn_set_deadlines(struct conn *c, unsigned body_ms, unsigned send_ms, unsigned min_rate)
{
    c->body_timeout_ms = body_ms;
    c->send_timeout_ms = send_ms;
    c->min_rate = min_rate;
}

/* BASE_MS plus a second per MIN_RATE of BYTES; UINT64_MAX when BASE_MS is 0. */
static uint64_t conn_budget_ms(unsigned base_ms, unsigned min_rate, uint64_t bytes)
{
    if (!base_ms)
        return UINT64_MAX;
    return base_ms + (min_rate ? bytes / min_rate * 1000 + bytes % min_rate * 1000 / min_rate : 0);
}

uint64_t conn_body_budget_ms(const struct conn *c)
{
    return conn_budget_ms(c->body_timeout_ms, c->min_rate, c->body_in);
}

uint64_t conn_send_budget_ms(const struct conn *c)
{
    return conn_budget_ms(c->send_timeout_ms, c->min_rate, c->sent);
}

void conn_request_name(const struct conn *c, const char **method, const char **uri)
{
    const char *m = params_get(&c->params, "REQUEST_METHOD");
    const char *u = params_get(&c->params, "REQUEST_URI");
    *method = m ? m : "-";
    *uri = u ? u : "-";
}

void conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
    listen_peer_name(sa, len, c->peer, sizeof(c->peer));
    c->trusted = c->listener->trusted && allow_match(c->listener->trusted, sa, len);
}

void conn_set_bye_on_end(struct conn *c, const _Atomic int *flag)
{
    c->bye_on_end = flag;
}

void conn_close(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
    if (c->out) { /* only a connection that had replies queued */
        free(c->out);
        c->out = NULL;
        c->out_start = c->out_len = 0;
    }
    if (c->pre) { /* only a connection that post-buffered a body */
        free(c->pre);
        c->pre = NULL;
        c->pre_len = c->pre_cap = 0;
    }
}

void conn_fini(struct conn *c)
{
    free(c->pre);
    free(c->out);
    free(c->buf);
    free(c->codec_state);
    params_free(&c->params);
    memset(c, 0, sizeof(*c));
}

static int conn_wait(struct conn *c, short events, unsigned timeout_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, (int)timeout_ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* conn_wait up to the I/O timeout within a deadline: BUDGET_MS of waiting
 * in all (UINT64_MAX: none), *WAITED_US charged with what this wait took.
 * Returns 0, -ETIMEDOUT (the I/O timeout), -ETIME (the deadline) or
 * another negative errno. The clock is read only here, around a poll. */
static int conn_wait_within(struct conn *c, short events, uint64_t budget_ms, uint64_t *waited_us)
{
    if (budget_ms == UINT64_MAX)
        return conn_wait(c, events, c->io_timeout_ms);
    uint64_t budget_us = budget_ms * 1000;
    if (*waited_us >= budget_us)
        return -ETIME;
    uint64_t left_ms = (budget_us - *waited_us + 999) / 1000;
    bool capped = left_ms < c->io_timeout_ms;
    uint64_t t0 = clock_now_us();
    int rc = conn_wait(c, events, capped ? (unsigned)left_ms : c->io_timeout_ms);
    *waited_us += clock_now_us() - t0;
    if (rc == -ETIMEDOUT && capped)
        return -ETIME;
    return rc;
}

int conn_wait_writable(struct conn *c)
{
    return conn_wait_within(c, POLLOUT, conn_send_budget_ms(c), &c->send_waited_us);
}

void conn_count_sent(struct conn *c, size_t n)
{
    c->sent += n;
}

/* ---- the reply queue ---- */

/* One line a second at most for each reason a peer's replies end it. */
static struct allow_ratelimit conn_unread_log, conn_send_log;

/* Send queued replies without waiting. Returns 0 (bytes may be left) or a
 * negative errno. */
static int conn_out_push(struct conn *c)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_start, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        c->out_start += (size_t)n;
        c->out_len -= (size_t)n;
    }
    c->out_start = 0;
    return 0;
}

/* Send the queued replies, waiting up to TIMEOUT_MS whenever the socket is
 * full. Returns 0 (the queue is empty) or a negative errno. */
static int conn_out_flush(struct conn *c, unsigned timeout_ms)
{
    for (;;) {
        int rc = conn_out_push(c);
        if (rc < 0 || !c->out_len)
            return rc;
        rc = conn_wait(c, POLLOUT, timeout_ms);
        if (rc < 0)
            return rc;
    }
}

/* Append LEN bytes to the queue. Returns 0, -ENOBUFS when they do not fit
 * in CONN_OUT_CAP even after a send, or another negative errno. */
static int conn_out_add(struct conn *c, const uint8_t *data, size_t len)
{
    if (!c->out) {
        c->out = malloc(CONN_OUT_CAP);
        if (!c->out)
            return -ENOMEM;
    }
    if (c->out_start + c->out_len + len > CONN_OUT_CAP) {
        int rc = conn_out_push(c);
        if (rc < 0)
            return rc;
        if (c->out_len + len > CONN_OUT_CAP)
            return -ENOBUFS;
        memmove(c->out, c->out + c->out_start, c->out_len);
        c->out_start = 0;
    }
    memcpy(c->out + c->out_start + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

int conn_send_reply(struct conn *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!c->out_len) { /* nothing queued: straight to the socket */
        ssize_t n;
        do
            n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
        if (!len)
            return 0;
    }
    return conn_out_add(c, p, len);
}

/* The line that says C is closed as its peer does not read its replies,
 * WHY; at most one a second (conn_unread_log). */
static void conn_log_unread(const struct conn *c, const char *why)
{
    unsigned long suppressed = 0;
    if (!allow_ratelimit_due(&conn_unread_log, clock_now_ms() / 1000, &suppressed))
        return;
    log_msg(LOG_ERROR,
            "%s: peer %s: does not read its replies (%s, %zu bytes unsent); "
            "connection closed (%lu more since the last line)",
            c->listener->name, c->peer, why, c->out_len, suppressed);
}

void conn_note_unread_close(const struct conn *c, uint64_t idle_ms)
{
    char why[48];
    snprintf(why, sizeof(why), "idle for %llu ms", (unsigned long long)idle_ms);
    conn_log_unread(c, why);
}

/* The replies of C failed with ERR (from conn_send_reply or conn_out_push):
 * log why (rate-limited), drop the queue, end the connection. */
static enum proto_result conn_out_fail(struct conn *c, int err, struct proto_event *ev)
{
    unsigned long suppressed = 0;
    if (err == -ENOBUFS)
        conn_log_unread(c, "the reply queue is full");
    else if (allow_ratelimit_due(&conn_send_log, clock_now_ms() / 1000, &suppressed))
        log_msg(err == -EPIPE || err == -ECONNRESET ? LOG_WARN : LOG_ERROR,
                "%s: peer %s: sending a management reply failed: %s; connection closed (%lu "
                "more since the last line)",
                c->listener->name, c->peer, strerror(-err), suppressed);
    c->out_start = c->out_len = 0;
    c->replied = true; /* nothing more goes out: the socket may be full */
    c->broken = true;
    ev->reason = NULL;
    return PROTO_ERROR;
}

ssize_t conn_fill(struct conn *c, unsigned timeout_ms)
{
    /* Pending body bytes point into the buffer: they must be used first. */
    if (c->pending_len)
        return -EBUSY;
    if (c->out_len) {
        /* conn_decode takes nothing more while replies wait: send them
         * (waiting only with a TIMEOUT_MS), then decode what is buffered. */
        int rc = timeout_ms ? conn_out_flush(c, timeout_ms) : conn_out_push(c);
        if (rc < 0)
            return rc;
        if (c->out_len)
            return -EAGAIN;
        if (c->buf_start != c->buf_end)
            return (ssize_t)(c->buf_end - c->buf_start);
    }
    if (c->buf_start == c->buf_end) {
        c->buf_start = c->buf_end = 0;
    } else if (c->buf_start > 0) {
        memmove(c->buf, c->buf + c->buf_start, c->buf_end - c->buf_start);
        c->buf_end -= c->buf_start;
        c->buf_start = 0;
    }
    for (;;) {
        size_t space = CONN_BUF_SIZE - c->buf_end;
        ssize_t n = read(c->fd, c->buf + c->buf_end, space);
        if (n >= 0) {
            c->buf_end += (size_t)n;
            c->drained = n > 0 && (size_t)n < space;
            return n;
        }
        if (errno == EINTR)
            continue;
        c->drained = errno == EAGAIN;
        if (errno != EAGAIN)
            return -errno;
        if (timeout_ms == 0)
            return -EAGAIN;
        int rc = conn_wait(c, POLLIN, timeout_ms);
        if (rc < 0)
            return rc;
    }
}

enum proto_result conn_decode(struct conn *c, struct proto_event *ev)
{
    if (c->out_len) { /* only a connection with replies queued */
        int rc = conn_out_push(c);
        if (rc < 0)
            return conn_out_fail(c, rc, ev);
        if (c->out_len) {
            /* Back-pressure: no more replies for a peer that does not take
             * them; its bytes stay in the buffer and the socket. */
            memset(ev, 0, sizeof(*ev));
            return PROTO_NEED_MORE;
        }
    }
    for (;;) {
        memset(ev, 0, sizeof(*ev));
        enum proto_result r = c->codec->decode(c->codec_state, c->buf + c->buf_start,
                                               c->buf_end - c->buf_start, &c->params, ev);
        c->buf_start += ev->consumed;
        if (ev->consumed)
            c->in_request = true;
        if (r == PROTO_PARAMS_DONE && c->codec->conn_params) {
            /* HTTP: the peer's and the listener's params (peer.c). */
            enum params_status ps = peer_params(c, &c->params);
            if (ps != PARAMS_OK) {
                ev->reason = params_strerror(ps);
                return PROTO_ERROR;
            }
        }
        if (r != PROTO_REPLY)
            return r;
        int rc = conn_send_reply(c, ev->data, ev->len);
        if (rc < 0)
            return conn_out_fail(c, rc, ev);
        if (ev->close_after) {
            /* What the socket took: a peer that does not read loses the rest. */
            c->broken = true;
            ev->reason = NULL;
            return PROTO_ERROR;
        }
        if (c->out_len) { /* the socket is full: the back-pressure above */
            memset(ev, 0, sizeof(*ev));
            return PROTO_NEED_MORE;
        }
    }
}

int conn_peer_gone(struct conn *c)
{
    if (c->aborted)
        return 1;
    if (!c->pending_len && c->buf_start > 0) {
        memmove(c->buf, c->buf + c->buf_start, c->buf_end - c->buf_start);
        c->buf_end -= c->buf_start;
        c->buf_start = 0;
    }
    size_t space = CONN_BUF_SIZE - c->buf_end;
    if (space == 0)
        return -1;
    ssize_t n;
    do
        n = read(c->fd, c->buf + c->buf_end, space);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        c->drained = true;
        return 0;
    }
    if (n <= 0)
        return 1;
    c->buf_end += (size_t)n;
    c->drained = (size_t)n < space;
    if (c->codec->gave_up &&
        c->codec->gave_up(c->codec_state, c->buf + c->buf_start, c->buf_end - c->buf_start)) {
        c->aborted = true;
        log_msg(LOG_WARN, "%s: peer %s: the front end aborted the request", c->listener->name,
                c->peer);
        return 1;
    }
    return 0;
}

bool conn_input_waiting(const struct conn *c)
{
    char probe;
    return recv(c->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* ---- the request body ---- */

/* conn_next for the body: waits (up to the I/O timeout) within the body
 * deadline; *END as conn_next's, -ETIME when the deadline passed. */
static enum proto_result conn_next_body(struct conn *c, struct proto_event *ev, int *end)
{
    for (;;) {
        enum proto_result r = conn_decode(c, ev);
        if (r != PROTO_NEED_MORE)
            return r;
        ssize_t n = conn_fill(c, 0);
        if (n == -EAGAIN && c->nowait) {
            *end = -EAGAIN; /* the owner waits (conn_set_nowait) */
            return PROTO_NEED_MORE;
        }
        if (n == -EAGAIN) {
            int rc = conn_wait_within(c, POLLIN, conn_body_budget_ms(c), &c->body_waited_us);
            if (rc == 0)
                continue;
            n = rc;
        }
        if (n <= 0) {
            *end = (int)n;
            return PROTO_NEED_MORE;
        }
    }
}

/* The body deadline passed while the app read it: one line names the
 * request and the limit. */
static void conn_body_late(struct conn *c)
{
    const char *m, *u;
    conn_request_name(c, &m, &u);
    log_msg(LOG_ERROR,
            "%s: peer %s: %s %s: the request body was late: %llu bytes arrived "
            "in %.1f s of waiting, past the body deadline (body-timeout %.1f s + 1 s per "
            "min-rate %u bytes): connection closed",
            c->listener->name, c->peer, m, u, (unsigned long long)c->body_in,
            (double)c->body_waited_us / 1e6, (double)c->body_timeout_ms / 1000.0, c->min_rate);
}

uint64_t conn_body_wait(struct conn *c, uint64_t waited_us)
{
    c->body_waited_us += waited_us;
    uint64_t budget = conn_body_budget_ms(c);
    if (budget == UINT64_MAX)
        return UINT64_MAX;
    uint64_t used = c->body_waited_us / 1000;
    if (used < budget)
        return budget - used;
    conn_body_late(c);
    c->broken = true;
    return 0;
}

/* Reading the body ended with END (0: the front end closed, else -errno):
 * one line naming the request; the connection is broken. */
static void conn_body_failed(struct conn *c, int end)
{
    const char *m, *u;
    conn_request_name(c, &m, &u);
    log_msg(LOG_ERROR, "%s: peer %s: %s %s: reading the request body failed: %s", c->listener->name,
            c->peer, m, u, end == 0 ? "the front end closed the connection" : strerror(-end));
    c->broken = true;
}

int conn_body_next(struct conn *c, const uint8_t **data, size_t *len)
{
    if (c->pending_len) {
        *data = c->pending;
        *len = c->pending_len;
        return 1;
    }
    if (c->pre_len && !c->pre_served) {
        /* Post-buffered: the body in memory goes first, as one piece. */
        c->pre_served = true;
        c->pending = c->pre;
        c->pending_len = c->pre_len;
        *data = c->pre;
        *len = c->pre_len;
        return 1;
    }
    if (c->body_done)
        return 0;
    if (c->aborted || c->broken)
        return -1;
    struct proto_event ev;
    int end;
    switch (conn_next_body(c, &ev, &end)) {
    case PROTO_BODY_DATA:
        c->body_in += ev.len;
        c->pending = ev.data;
        c->pending_len = ev.len;
        *data = ev.data;
        *len = ev.len;
        return 1;
    case PROTO_BODY_END:
        c->body_done = true;
        return 0;
    case PROTO_ABORT:
        c->aborted = true;
        log_msg(LOG_WARN, "%s: peer %s: the front end aborted the request", c->listener->name,
                c->peer);
        return -1;
    case PROTO_ERROR:
        conn_protocol_error(c, ev.reason);
        return -1;
    case PROTO_NEED_MORE:
        if (end == -EAGAIN && c->nowait)
            return 2;
        if (end == -ETIME) {
            conn_body_late(c);
            c->broken = true;
        } else {
            conn_body_failed(c, end);
        }
        return -1;
    default: /* PARAMS_DONE cannot come again; REPLY is handled in conn_decode */
        c->broken = true;
        return -1;
    }
}

/* Append LEN body bytes (one decoded piece, at most CONN_BUF_SIZE) to the
 * post-buffer, growing it. Returns false when memory is short. */
static bool conn_pre_add(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->pre_len + len > c->pre_cap) {
        size_t want = c->pre_cap ? c->pre_cap : 4096;
        while (want < c->pre_len + len)
            want *= 2;
        uint8_t *p = realloc(c->pre, want);
        if (!p)
            return false;
        c->pre = p;
        c->pre_cap = want;
    }
    memcpy(c->pre + c->pre_len, data, len);
    c->pre_len += len;
    return true;
}

int conn_body_prebuffer(struct conn *c, size_t cap)
{
    for (;;) {
        if (c->body_done || c->aborted || c->broken) {
            c->prebuffering = false;
            return c->broken ? -1 : 0;
        }
        struct proto_event ev;
        int end = 0;
        switch (conn_next(c, &ev, 0, &end)) {
        case PROTO_BODY_DATA:
            c->body_in += ev.len;
            if (!conn_pre_add(c, ev.data, ev.len)) {
                /* Out of memory: the app streams it as without the buffer. */
                c->pending = ev.data;
                c->pending_len = ev.len;
                c->prebuffering = false;
                return c->pre_len ? -1 : 0; /* bytes already held cannot go first */
            }
            if (c->pre_len >= cap) {
                /* The buffer is full (it may pass CAP by the last piece):
                 * the app reads it first, then the rest as it arrives. */
                c->prebuffering = false;
                return 0;
            }
            continue;
        case PROTO_BODY_END:
            c->body_done = true;
            continue;
        case PROTO_ABORT:
            /* The app runs and sees the abort, as it would have streaming. */
            c->aborted = true;
            log_msg(LOG_WARN, "%s: peer %s: the front end aborted the request", c->listener->name,
                    c->peer);
            continue;
        case PROTO_NEED_MORE:
            if (end == -EAGAIN) {
                c->prebuffering = true;
                return 1;
            }
            conn_body_failed(c, end);
            continue;
        case PROTO_ERROR:
            conn_protocol_error(c, ev.reason);
            continue;
        default:
            c->broken = true;
            continue;
        }
    }
}

void conn_prebuffer_late(const struct conn *c, uint64_t waited_ms)
{
    static struct allow_ratelimit limit;
    unsigned long suppressed;
    if (!allow_ratelimit_due(&limit, clock_now_ms() / 1000, &suppressed))
        return;
    const char *m, *u;
    conn_request_name(c, &m, &u);
    char more[64] = "";
    if (suppressed)
        snprintf(more, sizeof(more), " (%lu more like it not logged)", suppressed);
    log_msg(LOG_ERROR,
            "%s: peer %s: %s %s: the request body was late: %llu bytes arrived in "
            "%.1f s, past the body deadline (body-timeout %.1f s + 1 s per min-rate %u bytes); "
            "the app did not run: connection closed%s",
            c->listener->name, c->peer, m, u, (unsigned long long)c->body_in,
            (double)waited_ms / 1000.0, (double)c->body_timeout_ms / 1000.0, c->min_rate, more);
}

void conn_body_consume(struct conn *c, size_t n)
{
    c->pending += n;
    c->pending_len -= n;
    if (!c->pending_len)
        c->pending = NULL;
}

/* The ways a discard ends the connection, each logged at most once a
 * second (process-wide: the limiters are atomic). */
enum {
    CONN_DISCARD_LATE,
    CONN_DISCARD_STOPPED,
    CONN_DISCARD_CLOSED,
    CONN_DISCARD_TOO_BIG,
    CONN_DISCARD_ERROR,
    CONN_DISCARD_CAUSES
};
static struct allow_ratelimit conn_discard_log[CONN_DISCARD_CAUSES];

/* One line for a discard that ends the connection because of CAUSE, at
 * most once a second per cause; DETAIL says what happened. */
static void conn_discard_log_line(const struct conn *c, int cause, const char *detail)
{
    unsigned long suppressed;
    if (!allow_ratelimit_due(&conn_discard_log[cause], clock_now_ms() / 1000, &suppressed))
        return;
    const char *m, *u;
    conn_request_name(c, &m, &u);
    char more[64] = "";
    if (suppressed)
        snprintf(more, sizeof(more), " (%lu more like it not logged)", suppressed);
    log_msg(LOG_WARN, "%s: peer %s: %s %s: closed after the response: %s%s", c->listener->name,
            c->peer, m, u, detail, more);
}

int conn_body_discard(struct conn *c, uint64_t max_bytes)
{
    char detail[160];
    for (size_t batch = 0;;) {
        /* A piece the app left half-read first, then what is buffered,
         * then reads that never wait. */
        if (c->pending_len) {
            batch += c->pending_len;
            c->discarded += c->pending_len;
            conn_body_consume(c, c->pending_len);
        }
        if (c->discarded > max_bytes) {
            snprintf(detail, sizeof(detail),
                     "the request body the app did not read is over "
                     "%llu bytes",
                     (unsigned long long)max_bytes);
            conn_discard_log_line(c, CONN_DISCARD_TOO_BIG, detail);
            c->broken = true;
            return -1;
        }
        if (c->body_done) {
            c->discarding = false;
            return 0;
        }
        if (c->aborted || c->broken)
            return -1;
        if (batch >= CONN_DISCARD_BATCH) {
            /* More later, and maybe here already, in the buffer, where
             * epoll cannot see it: the caller must come back by itself. */
            c->discarding = true;
            return 2;
        }
        struct proto_event ev;
        int end = 0;
        switch (conn_next(c, &ev, 0, &end)) {
        case PROTO_BODY_DATA:
            c->body_in += ev.len;
            c->pending = ev.data;
            c->pending_len = ev.len;
            continue;
        case PROTO_BODY_END:
            c->body_done = true;
            continue;
        case PROTO_ABORT:
            c->aborted = true; /* the front end gave the request up: fine, and done */
            c->discarding = false;
            return -1;
        case PROTO_NEED_MORE:
            if (end == -EAGAIN) {
                c->discarding = true;
                return 1;
            }
            if (end == 0) {
                /* Where the connection closes after the response anyway,
                 * the front end may close first: nothing went wrong. */
                if (c->codec->keep_conn(c->codec_state))
                    conn_discard_log_line(c, CONN_DISCARD_CLOSED,
                                          "the front end closed the "
                                          "connection before the end of the request body");
            } else {
                snprintf(detail, sizeof(detail),
                         "reading the rest of the request body "
                         "failed: %s",
                         strerror(-end));
                conn_discard_log_line(c, CONN_DISCARD_ERROR, detail);
            }
            c->broken = true;
            return -1;
        case PROTO_ERROR:
            snprintf(detail, sizeof(detail), "bad request body: %s",
                     ev.reason ? ev.reason : "protocol error");
            conn_discard_log_line(c, CONN_DISCARD_ERROR, detail);
            c->broken = true;
            return -1;
        default:
            c->broken = true;
            return -1;
        }
    }
}

void conn_discard_late(const struct conn *c, uint64_t waited_ms, bool stopping)
{
    char detail[200];
    snprintf(detail, sizeof(detail),
             "the request body %s (%llu bytes of it in %.1f s; "
             "body-timeout %.1f s + 1 s per min-rate %u bytes)",
             stopping ? "had not all arrived when the worker stopped"
                      : "did not arrive after the response",
             (unsigned long long)c->body_in, (double)waited_ms / 1000.0,
             (double)c->body_timeout_ms / 1000.0, c->min_rate);
    conn_discard_log_line(c, stopping ? CONN_DISCARD_STOPPED : CONN_DISCARD_LATE, detail);
}

/* ---- writing ---- */

void conn_set_nowait(struct conn *c, bool nowait)
{
    c->nowait = nowait;
}

int conn_push_queued(struct conn *c)
{
    return conn_out_push(c);
}

/* Step the iovec array *IOV of *IOVCNT entries past N bytes written. */
static void conn_iov_advance(struct iovec **iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* conn_writev of a connection that never waits (conn_set_nowait). */
static int conn_writev_nowait(struct conn *c, struct iovec *iov, int iovcnt)
{
    if (c->out_len) {
        int rc = conn_out_push(c);
        if (rc < 0)
            return rc;
    }
    while (!c->out_len && iovcnt > 0) {
        ssize_t n = writev(c->fd, iov, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            break;
        }
        c->sent += (uint64_t)n;
        conn_iov_advance(&iov, &iovcnt, (size_t)n);
    }
    for (; iovcnt > 0; iov++, iovcnt--) {
        int rc = iov->iov_len ? conn_out_add(c, iov->iov_base, iov->iov_len) : 0;
        if (rc < 0)
            return rc;
        c->sent += iov->iov_len;
    }
    return 0;
}

int conn_writev(struct conn *c, struct iovec *iov, int iovcnt)
{
    if (c->nowait)
        return conn_writev_nowait(c, iov, iovcnt);
    if (c->out_len) { /* replies made before the request go first */
        int rc = conn_out_flush(c, c->io_timeout_ms);
        if (rc < 0)
            return rc;
    }
    while (iovcnt > 0) {
        ssize_t n = writev(c->fd, iov, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            int rc = conn_wait_within(c, POLLOUT, conn_send_budget_ms(c), &c->send_waited_us);
            if (rc < 0)
                return rc;
            continue;
        }
        c->sent += (uint64_t)n;
        conn_iov_advance(&iov, &iovcnt, (size_t)n);
    }
    return 0;
}

void conn_protocol_error(struct conn *c, const char *reason)
{
    if (reason)
        log_msg(LOG_ERROR, "%s: peer %s: bad request: %s; connection closed", c->listener->name,
                c->peer, reason);
    uint8_t out[PROTO_END_MAX];
    size_t n = c->replied ? 0 : c->codec->error_reply(c->codec_state, out);
    if (n) {
        struct iovec iov = {.iov_base = out, .iov_len = n};
        /* Behind queued replies the peer is slow to read: no wait for it. */
        if (c->out_len) {
            if (conn_out_add(c, out, n) == 0)
                (void)conn_out_push(c);
        } else {
            (void)conn_writev(c, &iov, 1);
        }
        c->replied = true; /* FastCGI: END_REQUEST went out for this id */
    }
    c->broken = true;
}

void conn_mark_broken(struct conn *c)
{
    c->broken = true;
}

size_t conn_response_end(struct conn *c, uint8_t *out)
{
    const struct proto_codec *codec = c->codec;
    size_t el = codec->end(c->codec_state, out, 0);
    /* A stopping worker's goodbye in the same write as the end of the
     * response: nginx reads both at once and does not cache the connection
     * at all (worker_stop.c). */
    if (c->bye_on_end && atomic_load(c->bye_on_end) && codec->goodbye &&
        el + PROTO_FRAME_MAX <= PROTO_END_MAX && codec->keep_conn(c->codec_state)) {
        el += codec->goodbye(c->codec_state, out + el);
        c->bye_in_response = true;
    }
    return el;
}

/* ---- between requests on a kept connection ---- */

void conn_note_kept(struct conn *c)
{
    c->kept = true;
}

void conn_next_request(struct conn *c)
{
    c->codec->next_request(c->codec_state);
    params_reset(&c->params);
    c->in_request = c->body_done = c->aborted = c->replied = false;
    c->body_in = c->body_waited_us = c->sent = c->send_waited_us = 0;
    c->discarding = false;
    c->discarded = 0;
    c->pre_len = 0;
    c->prebuffering = c->pre_served = false;
}

/* ---- the goodbye of a stopping worker ---- */

int conn_send_goodbye(struct conn *c)
{
    if (c->out_len)
        return -EAGAIN; /* behind the queued replies, later */
    uint8_t bye[PROTO_FRAME_MAX];
    size_t n = c->codec->goodbye ? c->codec->goodbye(c->codec_state, bye) : 0;
    if (n) {
        ssize_t sent = send(c->fd, bye, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        if (sent < 0)
            return -errno;
        if ((size_t)sent != n)
            return -EIO; /* part of a record: the stream is broken */
    }
    c->bye_sent = true;
    return n ? 1 : 0;
}

bool conn_note_response_bye(struct conn *c)
{
    /* A goodbye sent before this request was read by the front end ahead of
     * this response: it may cache the connection again after it. That
     * happens to nginx at most once (a goodbye sent to an idle connection
     * it had just taken); a front end that does it twice ignores goodbyes. */
    bool ignored = c->bye_sent && c->byes_ignored++ >= 1;
    c->bye_sent = c->bye_in_response;
    c->bye_in_response = false;
    return ignored;
}
