/*
 * cgi_run.c — one run of a CGI script, from the serving thread (see
 * cgi_run.h).
 */
#include "cgi_run.h"

#include <errno.h>
#include <poll.h>
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

struct cgi_run_state {
    struct cgi_run *r;
    struct cgi_child *ch;
    uint64_t deadline, kill_at; /* kill_at: 0 until SIGTERM was sent */
    bool killed;                /* SIGKILL was sent */
    bool timed_out, gone;       /* why the group was signalled */
    bool failed;                /* the output was malformed */
    bool discard;               /* stdout goes nowhere any more */
    bool redirect;
    bool body_eof, out_eof, exited;
    int wstatus;
    size_t in_len, in_off;
    size_t err_len;
    unsigned err_lines, err_dropped;
    uint8_t *hold; /* body bytes held until the request body is read */
    size_t hold_len, hold_cap;
    struct cgi_head head;
    uint8_t in[CGI_RUN_IN];
    uint8_t out[CGI_RUN_OUT];
    char err[CGI_RUN_ERR_LINE];
};

/* SIGTERM to the script's group now, SIGKILL after the grace. */
static void cgi_run_terminate(struct cgi_run_state *s, const char *why)
{
    s->discard = true;
    if (s->kill_at || s->exited)
        return;
    log_msg(LOG_WARN, "cgi %s: %s: SIGTERM to its process group %d", s->r->label, why,
            (int)s->ch->pid);
    kill(-s->ch->pid, SIGTERM);
    s->kill_at = clock_now_ms() + CGI_RUN_KILL_GRACE_MS;
}

static void cgi_run_close(int *fd)
{
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

static void cgi_run_send(struct cgi_run_state *s, const void *p, size_t n)
{
    if (n && corral_write(s->r->req, p, n) < 0) {
        s->gone = true;
        cgi_run_terminate(s, "the front end went away");
    }
}

/* Body bytes for the front end. While the request body is still being
 * read they are held (a front end such as nginx reads no response before
 * it has sent the whole request: writing to it then would wait for ever). */
static void cgi_run_write(struct cgi_run_state *s, const void *p, size_t n)
{
    if (s->body_eof) {
        cgi_run_send(s, p, n);
        return;
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
}

/* The request body is read: what was held goes out. */
static void cgi_run_release(struct cgi_run_state *s)
{
    if (!s->hold_len || s->discard)
        return;
    size_t n = s->hold_len;
    s->hold_len = 0;
    cgi_run_send(s, s->hold, n);
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
        cgi_run_write(s, rest.p[i], rest.len[i]);
}

/* Read (and drop) the rest of the request body, then let the held output
 * go: the front end takes no response before it has sent its request. */
static void cgi_run_drain_body(struct cgi_run_state *s)
{
    while (!s->body_eof) {
        ssize_t n = corral_read(s->r->req, s->in, sizeof(s->in));
        if (n < 0) {
            s->gone = true;
            cgi_run_terminate(s, "the request body failed");
            return;
        }
        s->body_eof = n == 0;
    }
    cgi_run_release(s);
}

/* The request body towards stdin: read a piece when none is pending, write
 * what the pipe takes. The front end's read is bounded by the I/O timeout
 * (conn.c). */
static void cgi_run_feed(struct cgi_run_state *s)
{
    struct cgi_child *ch = s->ch;
    while (ch->in_fd >= 0) {
        if (s->in_off == s->in_len) {
            if (s->body_eof) {
                cgi_run_close(&ch->in_fd);
                cgi_run_release(s);
                return;
            }
            ssize_t n = corral_read(s->r->req, s->in, sizeof(s->in));
            if (n < 0) {
                s->gone = true;
                cgi_run_terminate(s, "the request body failed");
                cgi_run_close(&ch->in_fd);
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
            return; /* poll for POLLOUT */
        /* EPIPE: the script wants no (more) body; the rest is dropped. */
        cgi_run_close(&ch->in_fd);
        s->in_off = s->in_len = 0;
        cgi_run_drain_body(s);
        return;
    }
}

/* The script ended: kill what it left in its group, reap it. */
static void cgi_run_reap(struct cgi_run_state *s)
{
    kill(-s->ch->pid, SIGKILL);
    while (waitpid(s->ch->pid, &s->wstatus, 0) < 0 && errno == EINTR)
        ;
    s->exited = true;
    cgi_run_close(&s->ch->pidfd);
}

static void cgi_run_read_out(struct cgi_run_state *s)
{
    ssize_t n = read(s->ch->out_fd, s->out, sizeof(s->out));
    if (n > 0)
        cgi_run_take_out(s, s->out, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        s->out_eof = true;
}

static void cgi_run_read_err(struct cgi_run_state *s)
{
    char buf[4096];
    ssize_t n = read(s->ch->err_fd, buf, sizeof(buf));
    if (n > 0) {
        cgi_run_take_err(s, buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        cgi_run_err_line(s);
        cgi_run_close(&s->ch->err_fd);
    }
}

/* After the run: what is left in the stderr pipe (without waiting). */
static void cgi_run_drain_err(struct cgi_run_state *s)
{
    char buf[4096];
    ssize_t n;
    while (s->ch->err_fd >= 0 && (n = read(s->ch->err_fd, buf, sizeof(buf))) > 0)
        cgi_run_take_err(s, buf, (size_t)n);
    cgi_run_err_line(s);
    cgi_run_close(&s->ch->err_fd);
}

/* One wait: at most until the next deadline. */
static void cgi_run_wait(struct cgi_run_state *s, int conn_fd)
{
    struct cgi_child *ch = s->ch;
    struct pollfd p[5];
    int n = 0, i_out = -1, i_err = -1, i_in = -1, i_pid = -1, i_conn = -1;
    if (!s->out_eof && s->hold_len < CGI_RUN_HOLD_MAX) {
        i_out = n;
        p[n++] = (struct pollfd){.fd = ch->out_fd, .events = POLLIN};
    }
    if (ch->err_fd >= 0) {
        i_err = n;
        p[n++] = (struct pollfd){.fd = ch->err_fd, .events = POLLIN};
    }
    if (ch->in_fd >= 0 && s->in_off < s->in_len) {
        i_in = n;
        p[n++] = (struct pollfd){.fd = ch->in_fd, .events = POLLOUT};
    }
    if (!s->exited) {
        i_pid = n;
        p[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
    }
    /* The front end going away, once its request is read (before, the
     * body's bytes would make the socket readable). */
    if (conn_fd >= 0 && !s->gone && (s->body_eof || !s->r->send_body)) {
        i_conn = n;
        p[n++] = (struct pollfd){.fd = conn_fd, .events = POLLRDHUP};
    }
    uint64_t now = clock_now_ms();
    uint64_t until = !s->kill_at ? s->deadline : s->killed ? s->kill_at + 1000 : s->kill_at;
    int ms = until > now ? (until - now > 60000 ? 60000 : (int)(until - now)) : 0;
    int rc = poll(p, (nfds_t)n, ms);
    if (rc <= 0)
        return;
    short any = POLLIN | POLLHUP | POLLERR;
    if (i_out >= 0 && (p[i_out].revents & any))
        cgi_run_read_out(s);
    if (i_err >= 0 && (p[i_err].revents & any))
        cgi_run_read_err(s);
    if (i_in >= 0 && (p[i_in].revents & (POLLOUT | POLLERR | POLLHUP)))
        cgi_run_feed(s);
    if (i_pid >= 0 && (p[i_pid].revents & any))
        cgi_run_reap(s);
    if (i_conn >= 0 && (p[i_conn].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        s->gone = true;
        cgi_run_terminate(s, "the front end went away");
    }
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
    return corral_write_final(req, NULL, 0) < 0 ? CGI_RUN_BROKEN : CGI_RUN_OK;
}

enum cgi_run_outcome cgi_run(struct cgi_run *r, struct cgi_child *ch)
{
    struct cgi_run_state *s = calloc(1, sizeof(*s));
    if (!s) {
        kill(-ch->pid, SIGKILL);
        while (waitpid(ch->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        cgi_child_close(ch);
        return CGI_RUN_FAILED;
    }
    s->r = r;
    s->ch = ch;
    cgi_head_init(&s->head);
    s->deadline = clock_now_ms() + r->timeout_ms;
    int conn_fd = r->req->conn ? r->req->conn->fd : -1;
    if (!r->send_body) {
        s->body_eof = true;
        cgi_run_close(&ch->in_fd);
    }
    cgi_run_feed(s);
    while (!(s->out_eof && s->exited)) {
        uint64_t now = clock_now_ms();
        if (!s->timed_out && now >= s->deadline) {
            s->timed_out = true;
            char why[64];
            snprintf(why, sizeof(why), "over --cgi-timeout (%u ms)", r->timeout_ms);
            cgi_run_terminate(s, why);
            if (!s->kill_at) /* it had ended; something else holds its stdout */
                s->kill_at = now + CGI_RUN_KILL_GRACE_MS;
        }
        if (s->kill_at && !s->killed && now >= s->kill_at) {
            if (!s->exited)
                log_msg(LOG_WARN,
                        "cgi %s: still running %d ms after SIGTERM: SIGKILL to its process "
                        "group %d",
                        r->label, CGI_RUN_KILL_GRACE_MS, (int)ch->pid);
            kill(-ch->pid, SIGKILL);
            s->killed = true;
        }
        if (s->killed && now >= s->kill_at + 1000)
            break; /* stdout held open by a process outside the group: give up on it */
        cgi_run_wait(s, conn_fd);
        if (ch->in_fd >= 0 && s->in_off == s->in_len && !s->discard)
            cgi_run_feed(s);
    }
    if (!s->exited) {
        kill(-ch->pid, SIGKILL);
        cgi_run_reap(s);
    }
    cgi_run_drain_err(s);
    if (!s->gone && !s->timed_out)
        cgi_run_drain_body(s); /* before any byte of an answer goes out */
    if (s->err_dropped)
        log_msg(LOG_WARN, "cgi %s: %u more stderr lines not logged", r->label, s->err_dropped);
    if (WIFSIGNALED(s->wstatus) && !s->kill_at)
        log_msg(LOG_WARN, "cgi %s: the script was killed by signal %d (%s)", r->label,
                WTERMSIG(s->wstatus), strsignal(WTERMSIG(s->wstatus)));
    else if (WIFEXITED(s->wstatus) && WEXITSTATUS(s->wstatus))
        log_msg(LOG_WARN, "cgi %s: the script exited with status %d", r->label,
                WEXITSTATUS(s->wstatus));
    enum cgi_run_outcome out = cgi_run_outcome(s);
    cgi_child_close(ch);
    free(s->hold);
    free(s);
    return out;
}
