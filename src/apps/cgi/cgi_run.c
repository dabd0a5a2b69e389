/*
 * cgi_run.c — one run of a CGI script, driven by the worker's CGI loop
 * (see cgi_run.h).
 */
#include "cgi_run.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/cgi_head.h"
#include "conn/conn.h"
#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"

#define CGI_RUN_IN 8192
#define CGI_RUN_OUT 16384
#define CGI_RUN_ERR_LINE 1024
/* Bytes given to the connection in one write: with the head and the
 * framing they fit its queue (CONN_OUT_CAP) when the socket takes none. */
#define CGI_RUN_PIECE 8192
#define CGI_RUN_FIRST_PIECE 4096 /* the one that carries the head (<= CGI_HEAD_MAX) */

struct cgi_run_state {
    struct cgi_run *r;
    struct cgi_child ch;
    struct cgi_watch w_in, w_out, w_err, w_pid;
    uint64_t deadline, kill_at; /* kill_at: 0 until SIGTERM was sent */
    uint64_t body_from;         /* waiting for body bytes since (0: not waiting) */
    uint64_t body_until;        /* the body deadline of that wait (0: none) */
    uint64_t body_waited_us;    /* waited, not yet charged (conn_body_wait) */
    bool killed;                /* SIGKILL was sent */
    bool timed_out, gone;       /* why the group was signalled */
    bool failed;                /* the output was malformed */
    bool discard;               /* stdout goes nowhere any more */
    bool redirect;
    bool body_eof, out_eof, exited;
    bool ended;    /* the script is gone (reaped), its stderr logged */
    bool draining; /* ended, the rest of the body is read and dropped */
    int wstatus;
    size_t in_len, in_off;
    size_t err_len;
    unsigned err_lines, err_dropped;
    /* Body bytes not given to the connection yet: held until the request
     * body is read, or the one read the connection's queue did not take. */
    uint8_t *hold;
    size_t hold_off, hold_len, hold_cap;
    struct cgi_head head;
    uint8_t in[CGI_RUN_IN];
    uint8_t out[CGI_RUN_OUT];
    char err[CGI_RUN_ERR_LINE];
};

static struct conn *cgi_run_conn(const struct cgi_run_state *s)
{
    return s->r->req->conn;
}

/* SIGTERM to the script's group now, SIGKILL after the grace. */
static void cgi_run_terminate(struct cgi_run_state *s, const char *why)
{
    s->discard = true;
    s->hold_off = s->hold_len = 0;
    if (s->kill_at || s->exited)
        return;
    log_msg(LOG_WARN, "cgi %s: %s: SIGTERM to its process group %d", s->r->label, why,
            (int)s->ch.pid);
    kill(-s->ch.pid, SIGTERM);
    s->kill_at = clock_now_ms() + CGI_RUN_KILL_GRACE_MS;
}

/* Out of the loop's set, then closed. */
static void cgi_run_close(struct cgi_run_state *s, struct cgi_watch *w, int *fd)
{
    cgi_watch_drop(s->r->epfd, w);
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Log the stderr line gathered so far (within the run's line budget). */
static void cgi_run_err_line(struct cgi_run_state *s)
{
    size_t n = s->err_len;
    s->err_len = 0;
    while (n && s->err[n - 1] == '\r')
        n--;
    if (!n)
        return;
    if (s->err_lines >= CGI_RUN_ERR_LINES) {
        s->err_dropped++;
        return;
    }
    s->err_lines++;
    log_msg(LOG_WARN, "cgi %s: stderr: %.*s", s->r->label, (int)n, s->err);
}

static void cgi_run_take_err(struct cgi_run_state *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            cgi_run_err_line(s);
            continue;
        }
        if (s->err_len == sizeof(s->err))
            cgi_run_err_line(s);
        s->err[s->err_len++] = p[i];
    }
}

static void cgi_run_broken(struct cgi_run_state *s)
{
    s->gone = true;
    cgi_run_terminate(s, "the front end went away");
}

/* Give the held bytes to the connection while its queue is empty. */
static void cgi_run_flush(struct cgi_run_state *s)
{
    struct conn *c = cgi_run_conn(s);
    if (s->gone)
        return;
    if (conn_wants_write(c) && conn_push_queued(c) < 0) {
        cgi_run_broken(s);
        return;
    }
    while (s->body_eof && !s->discard && s->hold_off < s->hold_len && !conn_wants_write(c)) {
        size_t n = s->hold_len - s->hold_off;
        size_t max = s->r->req->head_sent ? CGI_RUN_PIECE : CGI_RUN_FIRST_PIECE;
        n = n < max ? n : max;
        if (corral_write(s->r->req, s->hold + s->hold_off, n) < 0 || s->r->req->failed) {
            cgi_run_broken(s);
            return;
        }
        s->hold_off += n;
    }
    if (s->hold_off == s->hold_len)
        s->hold_off = s->hold_len = 0;
}

/* Body bytes for the front end: into the hold, which goes out as the
 * connection takes it. While the request body is still being read they
 * stay there (a front end such as nginx reads no response before it has
 * sent the whole request: writing to it then would wait for ever). */
static void cgi_run_write(struct cgi_run_state *s, const void *p, size_t n)
{
    if (s->hold_len + n > s->hold_cap) {
        if (s->hold_off) {
            memmove(s->hold, s->hold + s->hold_off, s->hold_len - s->hold_off);
            s->hold_len -= s->hold_off;
            s->hold_off = 0;
        }
    }
    if (s->hold_len + n > s->hold_cap) {
        size_t cap = s->hold_cap ? s->hold_cap : CGI_RUN_OUT;
        while (cap < s->hold_len + n)
            cap *= 2;
        uint8_t *bigger = realloc(s->hold, cap);
        if (!bigger) {
            s->failed = true;
            cgi_run_terminate(s, "out of memory");
            return;
        }
        s->hold = bigger;
        s->hold_cap = cap;
    }
    memcpy(s->hold + s->hold_len, p, n);
    s->hold_len += n;
    cgi_run_flush(s);
}

/* The head is complete: a local redirect, or the response's head. */
static void cgi_run_head_done(struct cgi_run_state *s)
{
    cgi_head_parse(&s->head);
    if (s->head.location && s->head.location[0] == '/' && !s->head.status) {
        size_t n = strlen(s->head.location);
        if (n < s->r->location_len) {
            memcpy(s->r->location, s->head.location, n + 1);
            s->redirect = true;
        } else {
            log_msg(LOG_ERROR, "cgi %s: a local Location: of %zu bytes", s->r->label, n);
            s->failed = true;
        }
        s->discard = true; /* RFC 3875 6.2.2: no body */
        return;
    }
    cgi_head_apply(s->r->req, &s->head, s->r->label);
}

static void cgi_run_take_out(struct cgi_run_state *s, const uint8_t *p, size_t n)
{
    if (s->discard)
        return;
    if (s->head.done) {
        cgi_run_write(s, p, n);
        return;
    }
    struct cgi_head_rest rest;
    enum cgi_head_state st = cgi_head_feed(&s->head, p, n, &rest);
    if (st == CGI_HEAD_MORE)
        return;
    if (st == CGI_HEAD_TOO_BIG) {
        log_msg(LOG_ERROR, "cgi %s: a header block over %d bytes", s->r->label, CGI_HEAD_MAX);
        s->failed = true;
        cgi_run_terminate(s, "malformed output");
        return;
    }
    cgi_run_head_done(s);
    for (int i = 0; i < 2 && !s->discard; i++)
        if (rest.len[i])
            cgi_run_write(s, rest.p[i], rest.len[i]);
}

/* A piece of the request body into BUF, never waiting: its length, 0 at
 * its end, -1 when it failed (or is late: logged by conn_body_wait), -2
 * when none is there yet (the body deadline of the wait is set). */
static ssize_t cgi_run_body(struct cgi_run_state *s, uint8_t *buf, size_t cap)
{
    struct conn *c = cgi_run_conn(s);
    const uint8_t *data;
    size_t len;
    int rc = conn_body_next(c, &data, &len);
    uint64_t now = clock_now_ms();
    if (rc == 2) {
        if (s->body_from)
            s->body_waited_us += (now - s->body_from) * 1000;
        uint64_t left = conn_body_wait(c, s->body_waited_us);
        s->body_waited_us = 0;
        s->body_from = now;
        if (left == 0)
            return -1;
        s->body_until = left == UINT64_MAX ? 0 : now + left;
        return -2;
    }
    if (s->body_from) /* charged with the next wait */
        s->body_waited_us += (now - s->body_from) * 1000;
    s->body_from = s->body_until = 0;
    if (rc <= 0)
        return rc < 0 ? -1 : 0;
    size_t n = len < cap ? len : cap;
    memcpy(buf, data, n);
    conn_body_consume(c, n);
    return (ssize_t)n;
}

/* The request body is read: what was held goes out. */
static void cgi_run_release(struct cgi_run_state *s)
{
    s->draining = false;
    cgi_run_flush(s);
}

/* Read (and drop) the rest of the request body, then let the held output
 * go: the front end takes no response before it has sent its request.
 * Without waiting: while more is due the run is draining. */
static void cgi_run_drain_body(struct cgi_run_state *s)
{
    if (s->gone || s->timed_out) {
        s->draining = false; /* no answer of the script's goes out */
        return;
    }
    while (!s->body_eof) {
        ssize_t n = cgi_run_body(s, s->in, sizeof(s->in));
        if (n == -2) {
            s->draining = true;
            return;
        }
        if (n < 0) {
            s->draining = false;
            s->gone = true;
            cgi_run_terminate(s, "the request body failed");
            return;
        }
        s->body_eof = n == 0;
    }
    cgi_run_release(s);
}

/* The request body towards stdin: read a piece when none is pending, write
 * what the pipe takes; never waits. */
static void cgi_run_feed(struct cgi_run_state *s)
{
    struct cgi_child *ch = &s->ch;
    while (ch->in_fd >= 0) {
        if (s->in_off == s->in_len) {
            if (s->body_eof) {
                cgi_run_close(s, &s->w_in, &ch->in_fd);
                cgi_run_release(s);
                return;
            }
            ssize_t n = cgi_run_body(s, s->in, sizeof(s->in));
            if (n == -2)
                return; /* the connection's EPOLLIN */
            if (n < 0) {
                s->gone = true;
                cgi_run_terminate(s, "the request body failed");
                cgi_run_close(s, &s->w_in, &ch->in_fd);
                return;
            }
            if (n == 0) {
                s->body_eof = true;
                continue;
            }
            s->in_len = (size_t)n;
            s->in_off = 0;
        }
        ssize_t w = write(ch->in_fd, s->in + s->in_off, s->in_len - s->in_off);
        if (w > 0) {
            s->in_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return; /* the pipe's EPOLLOUT */
        /* EPIPE: the script wants no (more) body; the rest is dropped. */
        cgi_run_close(s, &s->w_in, &ch->in_fd);
        s->in_off = s->in_len = 0;
        cgi_run_drain_body(s);
        return;
    }
}

/* The script ended (or got SIGKILL): kill what it left in its group, reap
 * it (waitpid on its pid alone). */
static void cgi_run_reap(struct cgi_run_state *s)
{
    kill(-s->ch.pid, SIGKILL);
    while (waitpid(s->ch.pid, &s->wstatus, 0) < 0 && errno == EINTR)
        ;
    s->exited = true;
    cgi_run_close(s, &s->w_pid, &s->ch.pidfd);
}

static void cgi_run_read_out(struct cgi_run_state *s)
{
    ssize_t n = read(s->ch.out_fd, s->out, sizeof(s->out));
    if (n > 0)
        cgi_run_take_out(s, s->out, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        s->out_eof = true;
}

static void cgi_run_read_err(struct cgi_run_state *s)
{
    char buf[4096];
    ssize_t n = read(s->ch.err_fd, buf, sizeof(buf));
    if (n > 0) {
        cgi_run_take_err(s, buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        cgi_run_err_line(s);
        cgi_run_close(s, &s->w_err, &s->ch.err_fd);
    }
}

/* After the run: what is left in the stderr pipe (without waiting). */
static void cgi_run_drain_err(struct cgi_run_state *s)
{
    char buf[4096];
    ssize_t n;
    while (s->ch.err_fd >= 0 && (n = read(s->ch.err_fd, buf, sizeof(buf))) > 0)
        cgi_run_take_err(s, buf, (size_t)n);
    cgi_run_err_line(s);
    cgi_run_close(s, &s->w_err, &s->ch.err_fd);
}

/* The script is over (its stdout closed and it exited, or given up on):
 * reap, log, then read the rest of the body before any answer goes out. */
static void cgi_run_wrapup(struct cgi_run_state *s)
{
    s->ended = true;
    if (!s->exited) {
        kill(-s->ch.pid, SIGKILL);
        cgi_run_reap(s);
    }
    cgi_run_close(s, &s->w_out, &s->ch.out_fd);
    cgi_run_close(s, &s->w_in, &s->ch.in_fd);
    cgi_run_drain_err(s);
    const char *label = s->r->label;
    if (s->err_dropped)
        log_msg(LOG_WARN, "cgi %s: %u more stderr lines not logged", label, s->err_dropped);
    if (WIFSIGNALED(s->wstatus) && !s->kill_at)
        log_msg(LOG_WARN, "cgi %s: the script was killed by signal %d (%s)", label,
                WTERMSIG(s->wstatus), strsignal(WTERMSIG(s->wstatus)));
    else if (WIFEXITED(s->wstatus) && WEXITSTATUS(s->wstatus))
        log_msg(LOG_WARN, "cgi %s: the script exited with status %d", label,
                WEXITSTATUS(s->wstatus));
    cgi_run_drain_body(s);
}

/* Bring every interest in the loop's set in line with the state. */
static void cgi_run_sync(struct cgi_run_state *s)
{
    if (!s->ended && s->out_eof && s->exited)
        cgi_run_wrapup(s);
    struct conn *c = cgi_run_conn(s);
    size_t pending = s->hold_len - s->hold_off;
    bool out_ok = s->discard ||
                  (!s->body_eof ? pending < CGI_RUN_HOLD_MAX : !pending && !conn_wants_write(c));
    bool want_body = !s->gone && !s->timed_out &&
                     (s->draining ||
                      (s->ch.in_fd >= 0 && s->in_off == s->in_len && !s->body_eof && !s->discard));
    uint32_t conn_mask = 0;
    if (!s->gone && !(s->ended && s->discard)) {
        if (want_body)
            conn_mask |= EPOLLIN;
        if (conn_wants_write(c))
            conn_mask |= EPOLLOUT;
        /* The front end going away, once its request is read (before, the
         * body's bytes would make the socket readable). */
        if (s->body_eof)
            conn_mask |= EPOLLRDHUP;
    }
    int epfd = s->r->epfd, rc = 0;
    rc |= cgi_watch_set(epfd, &s->w_in, s->ch.in_fd >= 0 && s->in_off < s->in_len ? EPOLLOUT : 0);
    rc |= cgi_watch_set(epfd, &s->w_out, !s->out_eof && out_ok ? EPOLLIN : 0);
    rc |= cgi_watch_set(epfd, &s->w_err, s->ch.err_fd >= 0 ? EPOLLIN : 0);
    rc |= cgi_watch_set(epfd, &s->w_pid, !s->exited ? EPOLLIN : 0);
    rc |= cgi_watch_set(epfd, s->r->conn, conn_mask);
    if (rc < 0 && !s->failed) {
        log_msg(LOG_ERROR, "cgi %s: epoll_ctl: %s", s->r->label, strerror(errno));
        s->failed = true;
        cgi_run_terminate(s, "the loop failed");
        if (!s->kill_at && !s->ended)
            s->kill_at = clock_now_ms();
    }
}

void cgi_run_event(struct cgi_run_state *s, enum cgi_watch_kind kind, uint32_t events)
{
    switch (kind) {
    case CGI_WATCH_IN:
        cgi_run_feed(s);
        break;
    case CGI_WATCH_OUT:
        cgi_run_read_out(s);
        break;
    case CGI_WATCH_ERR:
        cgi_run_read_err(s);
        break;
    case CGI_WATCH_PID:
        cgi_run_reap(s);
        break;
    case CGI_WATCH_CONN:
        if (events & EPOLLOUT)
            cgi_run_flush(s);
        if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->body_eof) {
            if (s->draining)
                cgi_run_drain_body(s);
            else
                cgi_run_feed(s);
        }
        if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && s->body_eof && !s->gone)
            cgi_run_broken(s);
        break;
    }
    cgi_run_sync(s);
}

uint64_t cgi_run_next(const struct cgi_run_state *s)
{
    uint64_t until = UINT64_MAX;
    if (!s->ended)
        until = !s->kill_at ? s->deadline : s->killed ? s->kill_at + 1000 : s->kill_at;
    else if (!s->timed_out && !s->gone)
        until = s->deadline;
    if (s->body_until && s->body_until < until)
        until = s->body_until;
    return until;
}

static void cgi_run_time_up(struct cgi_run_state *s, const char *why, uint64_t now)
{
    s->timed_out = true;
    s->draining = false;
    cgi_run_terminate(s, why);
    if (!s->kill_at) /* it had ended; something else holds its stdout */
        s->kill_at = now + CGI_RUN_KILL_GRACE_MS;
}

void cgi_run_tick(struct cgi_run_state *s, uint64_t now)
{
    if (!s->timed_out && !s->gone && now >= s->deadline) {
        char why[64];
        snprintf(why, sizeof(why), "over --cgi-timeout (%u ms)", s->r->timeout_ms);
        cgi_run_time_up(s, why, now);
    }
    if (!s->ended && s->kill_at && !s->killed && now >= s->kill_at) {
        if (!s->exited)
            log_msg(LOG_WARN,
                    "cgi %s: still running %d ms after SIGTERM: SIGKILL to its process "
                    "group %d",
                    s->r->label, CGI_RUN_KILL_GRACE_MS, (int)s->ch.pid);
        kill(-s->ch.pid, SIGKILL);
        s->killed = true;
    }
    if (!s->ended && s->killed && now >= s->kill_at + 1000)
        cgi_run_wrapup(s); /* stdout held open by a process outside the group: give up on it */
    if (s->body_until && now >= s->body_until) {
        s->body_waited_us += (now - s->body_from) * 1000;
        uint64_t left = conn_body_wait(cgi_run_conn(s), s->body_waited_us);
        s->body_waited_us = 0;
        s->body_from = now;
        s->body_until = left == UINT64_MAX ? 0 : now + left;
        if (left == 0) {
            s->body_until = 0;
            s->draining = false;
            s->gone = true;
            cgi_run_terminate(s, "the request body failed");
        }
    }
    cgi_run_sync(s);
}

void cgi_run_cut(struct cgi_run_state *s, const char *why)
{
    if (!s->timed_out && !s->gone)
        cgi_run_time_up(s, why, clock_now_ms());
    cgi_run_sync(s);
}

bool cgi_run_over(const struct cgi_run_state *s)
{
    if (!s->ended || s->draining)
        return false;
    if (s->discard || s->gone || s->timed_out)
        return true;
    return s->hold_off == s->hold_len && !conn_wants_write(cgi_run_conn(s));
}

static enum cgi_run_outcome cgi_run_outcome(struct cgi_run_state *s)
{
    corral_request *req = s->r->req;
    if (s->gone)
        return CGI_RUN_BROKEN;
    if (s->timed_out)
        return req->head_sent ? CGI_RUN_BROKEN : CGI_RUN_TIMED_OUT;
    if (s->redirect)
        return CGI_RUN_REDIRECT;
    if (!s->failed && !s->head.done) {
        if (s->head.len == 0) {
            log_msg(LOG_ERROR, "cgi %s: the script wrote no response", s->r->label);
            s->failed = true;
        } else {
            /* No blank line: what came is the head alone. */
            cgi_head_end(&s->head);
            cgi_run_head_done(s);
            if (s->redirect)
                return CGI_RUN_REDIRECT;
        }
    }
    if (s->failed)
        return req->head_sent ? CGI_RUN_BROKEN : CGI_RUN_FAILED;
    return corral_write_final(req, NULL, 0) < 0 || req->failed ? CGI_RUN_BROKEN : CGI_RUN_OK;
}

struct cgi_run_state *cgi_run_start(struct cgi_run *r, struct cgi_child *ch)
{
    struct cgi_run_state *s = calloc(1, sizeof(*s));
    if (!s) {
        kill(-ch->pid, SIGKILL);
        while (waitpid(ch->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        cgi_child_close(ch);
        return NULL;
    }
    s->r = r;
    s->ch = *ch;
    cgi_watch_init(&s->w_in, r->job, CGI_WATCH_IN, ch->in_fd);
    cgi_watch_init(&s->w_out, r->job, CGI_WATCH_OUT, ch->out_fd);
    cgi_watch_init(&s->w_err, r->job, CGI_WATCH_ERR, ch->err_fd);
    cgi_watch_init(&s->w_pid, r->job, CGI_WATCH_PID, ch->pidfd);
    cgi_head_init(&s->head);
    s->deadline = clock_now_ms() + r->timeout_ms;
    if (!r->send_body) {
        s->body_eof = true;
        cgi_run_close(s, &s->w_in, &s->ch.in_fd);
    }
    cgi_run_feed(s);
    cgi_run_sync(s);
    return s;
}

enum cgi_run_outcome cgi_run_end(struct cgi_run_state *s, bool kill_now)
{
    if (kill_now) {
        if (!s->exited) {
            kill(-s->ch.pid, SIGKILL);
            cgi_run_reap(s);
        }
        s->gone = true;
    }
    enum cgi_run_outcome out = cgi_run_outcome(s);
    int epfd = s->r->epfd;
    cgi_watch_drop(epfd, &s->w_in);
    cgi_watch_drop(epfd, &s->w_out);
    cgi_watch_drop(epfd, &s->w_err);
    cgi_watch_drop(epfd, &s->w_pid);
    cgi_watch_set(epfd, s->r->conn, 0);
    cgi_child_close(&s->ch);
    free(s->hold);
    free(s);
    return out;
}
