/*
 * conn.c — reading, decoding and writing on one connection (see conn.h).
 */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

int conn_init(struct conn *c, int fd, const struct listener *l,
              const struct proto_limits *lim, unsigned io_timeout_ms)
{
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
    c->fd = fd;
    c->listener = l;
    c->codec = l->addr.codec;
    c->limits = *lim;
    c->codec->init(c->codec_state, &c->limits);
    c->buf_start = c->buf_end = 0;
    c->io_timeout_ms = io_timeout_ms;
    c->in_request = c->body_done = c->aborted = c->broken = false;
    c->kept = c->bye_sent = c->bye_in_response = false;
    c->byes_ignored = 0;
    c->bye_on_end = NULL;
    c->pending = NULL;
    c->pending_len = 0;
    c->req.conn = c;
    return 0;
}

void conn_fini(struct conn *c)
{
    free(c->buf);
    free(c->codec_state);
    params_free(&c->params);
    request_free(&c->req);
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

ssize_t conn_fill(struct conn *c, unsigned timeout_ms)
{
    /* Pending body bytes point into the buffer: they must be used first. */
    if (c->pending_len)
        return -EBUSY;
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
    for (;;) {
        memset(ev, 0, sizeof(*ev));
        enum proto_result r = c->codec->decode(c->codec_state, c->buf + c->buf_start,
                                               c->buf_end - c->buf_start, &c->params, ev);
        c->buf_start += ev->consumed;
        if (ev->consumed)
            c->in_request = true;
        if (r != PROTO_REPLY)
            return r;
        struct iovec iov = {.iov_base = (void *)ev->data, .iov_len = ev->len};
        int rc = conn_writev(c, &iov, 1);
        if (rc < 0) {
            ev->reason = "could not send a management reply";
            return PROTO_ERROR;
        }
        if (ev->close_after) {
            c->broken = true;
            ev->reason = NULL;
            return PROTO_ERROR;
        }
    }
}

int conn_writev(struct conn *c, struct iovec *iov, int iovcnt)
{
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
    size_t n = c->codec->error_reply(c->codec_state, out);
    if (n) {
        struct iovec iov = {.iov_base = out, .iov_len = n};
        (void)conn_writev(c, &iov, 1);
    }
    c->broken = true;
}
