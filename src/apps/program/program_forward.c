/*
 * program_forward.c — forwarding one request to a FastCGI program (see
 * program_forward.h), over a connection kept from an earlier request
 * (program_keep.h) or a new one.
 */
#include "program_forward.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "apps/cgi_head.h"
#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"
#include "protocols/fastcgi_client.h"

#define PROGRAM_BUF 8192
#define PROGRAM_REQUEST_ID 1
/* How long the first read of an answer on a kept connection waits by
 * itself; a longer wait goes on in poll, up to the deadline. */
#define PROGRAM_READ_SLICE_MS 100

/* The records going to the program: a stream's content is staged (PARAMS
 * or STDIN), framed into WBUF, and WBUF goes out when full or committed, so
 * a request without a body leaves in one send. */
struct program_fwd;

struct program_out {
    struct program_fwd *fwd; /* to read the program's answer while sending */
    int fd;
    unsigned io_ms;
    bool reused;     /* the connection served an earlier request */
    bool has_body;   /* CONTENT_LENGTH is there and not 0 */
    size_t sent;     /* bytes the program took */
    bool body_taken; /* a byte of the front end's body was read */
    bool sent_all;   /* the whole request went out */
    enum fcgi_client_type type;
    size_t len; /* staged content */
    uint8_t stage[PROGRAM_BUF];
    size_t wlen;
    uint8_t wbuf[2 * (FCGI_CLIENT_HEADER_LEN + PROGRAM_BUF)];
};

/* Wait until FD is ready for EVENTS, at most MS. 0 ready, -1 not. */
static int program_wait(int fd, short events, uint64_t ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do
        rc = poll(&p, 1, ms > 600000 ? 600000 : (int)ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0 ? 0 : -1;
}

static int program_receive(struct program_fwd *f, int flags);
static void program_gone(struct program_fwd *f);

/* Send LEN bytes; while the program does not take them, read what it
 * answers (a program that writes while it reads would wait for us
 * forever). Returns 0, or -1 when the program is gone, timed out, or has
 * already ended the request (its outcome is then known). */
static int program_send(struct program_out *o, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = send(o->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            o->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = o->fd, .events = POLLOUT | POLLIN};
            int rc = poll(&pfd, 1, (int)(o->io_ms > 600000 ? 600000 : o->io_ms));
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0)
                return -1;
            if ((pfd.revents & POLLIN) && program_receive(o->fwd, MSG_DONTWAIT) < 0)
                return -1;
        } else {
            if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
                program_gone(o->fwd);
            return -1;
        }
    }
    return 0;
}

/* Send what WBUF holds. */
static int program_commit(struct program_out *o)
{
    int rc = program_send(o, o->wbuf, o->wlen);
    o->wlen = 0;
    return rc;
}

/* Frame the staged content as one record (an empty one ends the stream). */
static int program_flush(struct program_out *o)
{
    if (o->wlen + FCGI_CLIENT_HEADER_LEN + o->len > sizeof(o->wbuf) && program_commit(o) < 0)
        return -1;
    fcgi_client_header(o->wbuf + o->wlen, o->type, PROGRAM_REQUEST_ID, (uint16_t)o->len);
    memcpy(o->wbuf + o->wlen + FCGI_CLIENT_HEADER_LEN, o->stage, o->len);
    o->wlen += FCGI_CLIENT_HEADER_LEN + o->len;
    o->len = 0;
    return 0;
}

static int program_put(struct program_out *o, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        size_t take = PROGRAM_BUF - o->len < len ? PROGRAM_BUF - o->len : len;
        memcpy(o->stage + o->len, p, take);
        o->len += take;
        p += take;
        len -= take;
        if (o->len == PROGRAM_BUF && program_flush(o) < 0)
            return -1;
    }
    return 0;
}

static int program_send_params(struct program_out *o, corral_request *req)
{
    o->type = FCGI_CLIENT_PARAMS;
    size_t n = corral_param_count(req);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        request_param_at(req, i, &name, &nlen, &value, &vlen);
        if (nlen == 14 && memcmp(name, "CONTENT_LENGTH", 14) == 0)
            o->has_body = vlen && !(vlen == 1 && value[0] == '0');
        uint8_t lens[8];
        size_t used = fcgi_client_lengths(lens, nlen, vlen);
        if (program_put(o, lens, used) < 0 || program_put(o, name, nlen) < 0 ||
            program_put(o, value, vlen) < 0)
            return -1;
    }
    if (o->len && program_flush(o) < 0)
        return -1;
    return program_flush(o);
}

/* Stream the request body as STDIN, then send everything. Returns 0, -1
 * when the program is gone, -2 when the front end's body failed. */
static int program_send_body(struct program_out *o, corral_request *req)
{
    o->type = FCGI_CLIENT_STDIN;
    /* On a kept connection the program may have gone since its last
     * answer: the params go first, so that nothing of the body is read
     * before the connection proved alive (the request can then be sent
     * again on a new one). */
    if (o->reused && o->has_body && !o->sent && program_commit(o) < 0)
        return -1;
    for (;;) {
        ssize_t n = corral_read(req, o->stage, PROGRAM_BUF);
        if (n < 0)
            return -2;
        if (n == 0)
            break;
        o->body_taken = true;
        o->len = (size_t)n;
        if (program_flush(o) < 0)
            return -1;
    }
    if (program_flush(o) < 0 || program_commit(o) < 0)
        return -1;
    o->sent_all = true;
    return 0;
}

/* The CGI header block gathered from STDOUT before the body (cgi_head.h). */
struct program_head {
    struct cgi_head head;
    uint8_t obuf[PROGRAM_BUF]; /* body bytes not yet written (one write per read) */
    size_t olen;
};

/* Queue LEN body bytes; full, the queue goes to the front end. Returns 0,
 * or -1 when the front end is gone. */
static int program_body(corral_request *req, struct program_head *h, const void *p, size_t len)
{
    if (h->olen + len > sizeof(h->obuf)) {
        if (h->olen && corral_write(req, h->obuf, h->olen) < 0)
            return -1;
        h->olen = 0;
        if (len > sizeof(h->obuf))
            return corral_write(req, p, len) < 0 ? -1 : 0;
    }
    memcpy(h->obuf + h->olen, p, len);
    h->olen += len;
    return 0;
}

/* Write what is queued (before waiting for the program: nothing is held
 * back while it works). */
static int program_body_flush(corral_request *req, struct program_head *h)
{
    if (!h->olen)
        return 0;
    size_t n = h->olen;
    h->olen = 0;
    return corral_write(req, h->obuf, n) < 0 ? -1 : 0;
}

/* Apply the header block to REQ. */
static void program_apply_head(corral_request *req, struct cgi_head *head, unsigned index)
{
    char who[32];
    snprintf(who, sizeof(who), "FastCGI program %u", index);
    cgi_head_parse(head);
    cgi_head_apply(req, head, who);
}

/* Take a STDOUT piece: into the head until its blank line, then the body.
 * Returns 0, -1 when the front end is gone, -2 when the head is too big. */
static int program_take_out(corral_request *req, struct program_head *h, const uint8_t *p,
                            size_t len, unsigned index)
{
    if (h->head.done)
        return program_body(req, h, p, len);
    struct cgi_head_rest rest;
    enum cgi_head_state st = cgi_head_feed(&h->head, p, len, &rest);
    if (st == CGI_HEAD_TOO_BIG)
        return -2;
    if (st == CGI_HEAD_MORE)
        return 0;
    program_apply_head(req, &h->head, index);
    for (int i = 0; i < 2; i++) {
        if (rest.len[i] && program_body(req, h, rest.p[i], rest.len[i]) < 0)
            return -1;
    }
    return 0;
}

/* One line of the program's STDERR to the error log (log_msg escapes). */
static void program_log_err(unsigned index, const uint8_t *p, size_t len)
{
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (len)
        log_msg(LOG_WARN, "FastCGI program %u: %.*s", index, (int)(len > 2048 ? 2048 : len),
                (const char *)p);
}

static int program_connect(const char *path, unsigned io_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
        (errno != EAGAIN || program_wait(fd, POLLOUT, io_ms) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A connection about to be kept becomes blocking, its reads limited to
 * PROGRAM_READ_SLICE_MS: the first read of each answer then waits by itself
 * (program_exchange; every other call says MSG_DONTWAIT). 0, or -1. */
static int program_make_kept(int fd)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = PROGRAM_READ_SLICE_MS * 1000};
    if (fcntl(fd, F_SETFL, 0) < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return -1;
    return 0;
}

/* One forward: what goes out, what comes back, and how it ended. */
struct program_fwd {
    struct program_out o;
    struct program_head h;
    struct fcgi_client_dec dec;
    corral_request *req;
    unsigned index;
    bool finished;
    bool gone;    /* the program closed the connection (EOF, EPIPE, reset) */
    bool got_any; /* a byte came from the program */
    bool clean;   /* END_REQUEST was the last byte, after the whole request */
    enum program_outcome out;
    uint8_t in[PROGRAM_BUF];
};

static void program_gone(struct program_fwd *f)
{
    f->gone = true;
}

/* Whether a failed try on a kept connection may be made again on a new
 * one: the program closed it before it answered anything, and either took
 * no byte of the request or the request is one that may run twice
 * (GET, HEAD, OPTIONS: RFC 9110 9.2.2), and nothing of the front end's
 * body was read. (The program ended between two requests: php-cgi after
 * PHP_FCGI_MAX_REQUESTS, a program killed or ended on its own.) */
static bool program_may_retry(const struct program_fwd *f)
{
    if (!f->o.reused || !f->gone || f->got_any || f->o.body_taken || f->req->head_sent)
        return false;
    if (!f->o.sent)
        return true;
    const char *m = f->req->method ? f->req->method : corral_param(f->req, "REQUEST_METHOD");
    return m && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0);
}

static int program_finish(struct program_fwd *f, enum program_outcome out)
{
    f->finished = true;
    f->out = out;
    return -1;
}

/* Read once from the program (FLAGS: MSG_DONTWAIT, or 0 to wait for it)
 * and act on its records. Returns 1 after progress, 0 when nothing is
 * there (the queued body went out first), -1 once the request is over
 * (f->out says how). */
static int program_receive(struct program_fwd *f, int flags)
{
    if (f->finished)
        return -1;
    corral_request *req = f->req;
    struct program_head *h = &f->h;
    ssize_t n = recv(f->o.fd, f->in, sizeof(f->in), flags);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n < 0 && errno == EAGAIN)
        return program_body_flush(req, h) < 0 ? program_finish(f, PROGRAM_BROKEN) : 0;
    if (n <= 0) {
        int e = n < 0 ? errno : 0;
        if (n == 0 || e == ECONNRESET)
            program_gone(f);
        if (!program_may_retry(f))
            log_msg(LOG_ERROR, "FastCGI program %u: the connection ended before END_REQUEST%s%s",
                    f->index, e ? ": " : "", e ? strerror(e) : "");
        return program_finish(f, req->head_sent ? PROGRAM_BROKEN : PROGRAM_FAILED);
    }
    f->got_any = true;
    size_t pos = 0;
    while (pos < (size_t)n) {
        size_t used;
        struct fcgi_client_piece piece;
        enum fcgi_client_event ev =
            fcgi_client_decode(&f->dec, f->in + pos, (size_t)n - pos, &used, &piece);
        pos += used;
        if (ev == FCGI_CLIENT_OUT) {
            int rc = program_take_out(req, h, piece.data, piece.len, f->index);
            if (rc == -2) {
                log_msg(LOG_ERROR, "FastCGI program %u: a header block over %d bytes", f->index,
                        CGI_HEAD_MAX);
                return program_finish(f, PROGRAM_FAILED);
            }
            if (rc < 0)
                return program_finish(f, PROGRAM_BROKEN); /* the front end is gone */
        } else if (ev == FCGI_CLIENT_ERR) {
            program_log_err(f->index, piece.data, piece.len);
        } else if (ev == FCGI_CLIENT_END) {
            if (!h->head.done) {
                /* No blank line: what came is the head alone. */
                cgi_head_end(&h->head);
                program_apply_head(req, &h->head, f->index);
            }
            f->clean = pos == (size_t)n && f->o.sent_all;
            /* The last body bytes go with the end of the response. */
            int rc = corral_write_final(req, h->obuf, h->olen);
            h->olen = 0;
            return program_finish(f, rc < 0 ? PROGRAM_BROKEN : PROGRAM_OK);
        } else if (ev == FCGI_CLIENT_ERROR) {
            log_msg(LOG_ERROR, "FastCGI program %u: a malformed record", f->index);
            return program_finish(f, req->head_sent ? PROGRAM_BROKEN : PROGRAM_FAILED);
        } else {
            break;
        }
    }
    return 1;
}

/* One try over F->o.fd: the request out, the answer back. */
static void program_exchange(struct program_fwd *f, uint64_t deadline_ms, bool keep)
{
    corral_request *req = f->req;
    unsigned index = f->index;
    f->o.len = 0;
    f->o.sent = 0;
    f->o.has_body = false;
    f->o.body_taken = false;
    f->o.sent_all = false;
    cgi_head_init(&f->h.head);
    f->h.olen = 0;
    f->finished = false;
    f->gone = false;
    f->got_any = false;
    f->clean = false;
    f->out = PROGRAM_FAILED;
    fcgi_client_dec_init(&f->dec, PROGRAM_REQUEST_ID);
    fcgi_client_begin(f->o.wbuf, PROGRAM_REQUEST_ID, keep);
    f->o.wlen = 16;
    if (program_send_params(&f->o, req) < 0) {
        if (!f->finished && !program_may_retry(f))
            log_msg(LOG_ERROR, "FastCGI program %u: sending the request failed: %s", index,
                    strerror(errno));
        return;
    }
    int b = program_send_body(&f->o, req);
    if (b == -2) {
        f->out = PROGRAM_BROKEN; /* the front end's body failed (logged): abort */
        return;
    }
    if (b < 0) {
        if (!f->finished && !program_may_retry(f))
            log_msg(LOG_ERROR, "FastCGI program %u: sending the body failed: %s", index,
                    strerror(errno));
        return;
    }
    /* The program has just been given the request: wait before the first
     * read rather than try it first (one system call less per request); on
     * a kept connection the read itself waits (one less again), for
     * PROGRAM_READ_SLICE_MS at most. */
    int flags = MSG_DONTWAIT;
    uint64_t first = clock_now_ms();
    bool room = deadline_ms == UINT64_MAX ||
                (first < deadline_ms && deadline_ms - first >= PROGRAM_READ_SLICE_MS);
    if (f->o.reused && room)
        flags = 0;
    else if (first < deadline_ms)
        program_wait(f->o.fd, POLLIN, deadline_ms - first);
    for (;;) {
        uint64_t now = clock_now_ms();
        if (now >= deadline_ms) {
            f->out = req->head_sent ? PROGRAM_BROKEN : PROGRAM_TIMED_OUT;
            return;
        }
        int r = program_receive(f, flags);
        flags = MSG_DONTWAIT;
        if (r < 0)
            return;
        if (r > 0)
            continue;
        /* The program may think as long as it likes: only --harakiri
         * (DEADLINE_MS) bounds it, as for any app. */
        program_wait(f->o.fd, POLLIN, deadline_ms - now);
    }
}

enum program_outcome program_forward(const char *path, unsigned index, corral_request *req,
                                     uint64_t deadline_ms, unsigned io_ms, int *fd, bool keep)
{
    struct program_fwd *f = malloc(sizeof(*f));
    if (!f) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return PROGRAM_FAILED;
    }
    f->o.fwd = f;
    f->o.io_ms = io_ms;
    f->o.reused = *fd >= 0;
    f->req = req;
    f->index = index;
    for (;;) {
        if (*fd < 0 && (*fd = program_connect(path, io_ms)) < 0) {
            log_msg(LOG_ERROR, "FastCGI program %u: connect(%s): %s", index, path, strerror(errno));
            free(f);
            return PROGRAM_FAILED;
        }
        f->o.fd = *fd;
        program_exchange(f, deadline_ms, keep);
        if (f->out == PROGRAM_OK || !program_may_retry(f))
            break;
        /* The kept connection had lost its program: once more, on a new
         * one (it waits in the socket's backlog for a successor). */
        close(*fd);
        *fd = -1;
        f->o.reused = false;
    }
    enum program_outcome out = f->out;
    if (!(keep && f->clean) || (!f->o.reused && program_make_kept(*fd) < 0)) {
        close(*fd);
        *fd = -1;
    }
    free(f);
    return out;
}
