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

void conn_clear(struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int conn_init(struct conn *c, int fd, const struct listener *l,
              const struct proto_limits *lim, unsigned io_timeout_ms)
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
    return 0;
}

void conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
    listen_peer_name(sa, len, c->peer, sizeof(c->peer));
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
}

void conn_fini(struct conn *c)
{
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

int conn_wait_writable(struct conn *c)
{
    return conn_wait(c, POLLOUT, c->io_timeout_ms);
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
    log_msg(LOG_ERROR, "%s: peer %s: does not read its replies (%s, %zu bytes unsent); "
            "connection closed (%lu more since the last line)", c->listener->name, c->peer,
            why, c->out_len, suppressed);
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
                "more since the last line)", c->listener->name, c->peer, strerror(-err),
                suppressed);
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
        ssize_t n = read(c->fd, c->buf + c->buf_end, CONN_BUF_SIZE - c->buf_end);
        if (n >= 0) {
            c->buf_end += (size_t)n;
            return n;
        }
        if (errno == EINTR)
            continue;
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

bool conn_input_waiting(const struct conn *c)
{
    char probe;
    return recv(c->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* ---- the request body ---- */

int conn_body_next(struct conn *c, const uint8_t **data, size_t *len)
{
    if (c->pending_len) {
        *data = c->pending;
        *len = c->pending_len;
        return 1;
    }
    if (c->body_done)
        return 0;
    if (c->aborted || c->broken)
        return -1;
    struct proto_event ev;
    int end;
    switch (conn_next(c, &ev, c->io_timeout_ms, &end)) {
    case PROTO_BODY_DATA:
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
        log_msg(LOG_WARN, "%s: peer %s: the front end aborted the request",
                c->listener->name, c->peer);
        return -1;
    case PROTO_ERROR:
        conn_protocol_error(c, ev.reason);
        return -1;
    case PROTO_NEED_MORE:
        log_msg(LOG_ERROR, "%s: peer %s: reading the request body failed: %s",
                c->listener->name, c->peer,
                end == 0 ? "the front end closed the connection" : strerror(-end));
        c->broken = true;
        return -1;
    default: /* PARAMS_DONE cannot come again; REPLY is handled in conn_decode */
        c->broken = true;
        return -1;
    }
}

void conn_body_consume(struct conn *c, size_t n)
{
    c->pending += n;
    c->pending_len -= n;
    if (!c->pending_len)
        c->pending = NULL;
}

int conn_body_drain(struct conn *c, uint64_t max_bytes)
{
    uint64_t drained = 0;
    for (;;) {
        const uint8_t *data;
        size_t len;
        int rc = conn_body_next(c, &data, &len);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        conn_body_consume(c, len);
        drained += len;
        if (drained > max_bytes)
            return -1;
    }
}

/* ---- writing ---- */

int conn_writev(struct conn *c, struct iovec *iov, int iovcnt)
{
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
            int rc = conn_wait(c, POLLOUT, c->io_timeout_ms);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

void conn_protocol_error(struct conn *c, const char *reason)
{
    if (reason)
        log_msg(LOG_ERROR, "%s: peer %s: bad request: %s; connection closed",
                c->listener->name, c->peer, reason);
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
