/*
 * corralctl_conn.c — the control client's connection (see corralctl.h):
 * a non-blocking unix socket, every wait bounded by poll.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "corralctl.h"
#include "core/clock.h"

int ctl_connect(struct ctl_conn *c, const char *path, int timeout_ms, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->path = path;
    c->timeout_ms = timeout_ms;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "cannot connect to %s: the path is longer than %zu bytes", path,
                 sizeof(sun.sun_path) - 1);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket(AF_UNIX) failed: %s", strerror(errno));
        return -1;
    }
    /* Non-blocking: a unix connect either succeeds at once or fails at
     * once (EAGAIN: the server's queue is full). */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        const char *hint = e == ENOENT         ? " (is corral running with --control?)"
                           : e == ECONNREFUSED ? " (no server is listening there)"
                           : e == EACCES       ? " (the socket's mode does not allow you)"
                           : e == EAGAIN       ? " (the server is not accepting)"
                                               : "";
        snprintf(err, errlen, "cannot connect to %s: %s (errno %d)%s", path, strerror(e), e,
                 hint);
        close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

void ctl_close(struct ctl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    free(c->reply);
    c->buf = c->reply = NULL;
    c->len = c->cap = c->reply_len = 0;
}

/* Wait for EVENTS on the socket until DEADLINE; 0, or -1 on timeout. */
static int ctl_wait(struct ctl_conn *c, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - (int64_t)clock_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = c->fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int ctl_send(struct ctl_conn *c, const char *line, int64_t deadline, char *err,
                    size_t errlen)
{
    size_t len = strlen(line), off = 0;
    char *msg = malloc(len + 1);
    if (!msg) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(msg, line, len);
    msg[len++] = '\n';
    int rc = 0;
    while (off < len) {
        ssize_t n = send(c->fd, msg + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && ctl_wait(c, POLLOUT, deadline) == 0)
            continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            snprintf(err, errlen, "%s: the server closed the connection", c->path);
        else
            snprintf(err, errlen, "sending to %s failed: %s", c->path,
                     n < 0 && errno != EAGAIN ? strerror(errno) : "timed out");
        rc = -1;
        break;
    }
    free(msg);
    return rc;
}

/* Read until a newline is buffered; its offset in *nl. */
static int ctl_read_line(struct ctl_conn *c, int64_t deadline, size_t *nl, char *err,
                         size_t errlen)
{
    for (;;) {
        char *p = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (p) {
            *nl = (size_t)(p - c->buf);
            return 0;
        }
        if (c->len >= CTL_REPLY_MAX) {
            snprintf(err, errlen, "the reply from %s is larger than %u bytes", c->path,
                     CTL_REPLY_MAX);
            return -1;
        }
        if (c->cap - c->len < 4096) {
            size_t cap = c->cap ? c->cap * 2 : 16384;
            char *grown = realloc(c->buf, cap);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            c->buf = grown;
            c->cap = cap;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (ctl_wait(c, POLLIN, deadline) == 0)
                continue;
            snprintf(err, errlen, "no reply from %s within %.1f s", c->path,
                     c->timeout_ms / 1000.0);
            return -1;
        }
        snprintf(err, errlen, "%s: %s", c->path,
                 n == 0 || errno == ECONNRESET ? "the server closed the connection"
                                               : strerror(errno));
        return -1;
    }
}

struct json_value *ctl_call(struct ctl_conn *c, const char *line, char *err, size_t errlen)
{
    int64_t deadline = (int64_t)clock_now_ms() + c->timeout_ms;
    size_t nl;
    if (ctl_send(c, line, deadline, err, errlen) < 0 ||
        ctl_read_line(c, deadline, &nl, err, errlen) < 0)
        return NULL;
    char perr[256];
    free(c->reply);
    c->reply_len = nl;
    if ((c->reply = malloc(nl + 1))) {
        memcpy(c->reply, c->buf, nl);
        c->reply[nl] = '\0';
    } else {
        c->reply_len = 0;
    }
    struct json_value *v = json_parse(c->buf, nl, perr, sizeof(perr));
    if (!v)
        snprintf(err, errlen, "the reply from %s is not JSON: %s", c->path, perr);
    else if (v->type != JSON_OBJECT) {
        snprintf(err, errlen, "the reply from %s is not a JSON object", c->path);
        json_value_free(v);
        v = NULL;
    }
    c->len -= nl + 1;
    memmove(c->buf, c->buf + nl + 1, c->len);
    return v;
}

void ctl_fmt_duration(double seconds, char *out, size_t cap)
{
    if (!(seconds >= 0))
        seconds = 0;
    unsigned long s = (unsigned long)seconds;
    if (s >= 86400)
        snprintf(out, cap, "%lud%02luh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, cap, "%luh%02lum", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, cap, "%lum%02lus", s / 60, s % 60);
    else
        snprintf(out, cap, "%lus", s);
}

void ctl_sanitize(const char *in, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t n = 0;
    if (cap == 0)
        return;
    while (*p) {
        /* The length of this character (the reader made valid UTF-8). */
        size_t len = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
        bool control = *p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F);
        if (n + (control ? 1 : len) >= cap)
            break;
        if (control) {
            out[n++] = '?';
            p += len;
            continue;
        }
        for (size_t i = 0; i < len && *p; i++)
            out[n++] = (char)*p++;
    }
    out[n] = '\0';
}

bool ctl_thread_current(const struct json_value *th, char *out, size_t cap)
{
    if (strcmp(json_str(json_get(th, "state"), ""), "busy") != 0)
        return false;
    char method[64], uri[256];
    ctl_sanitize(json_str(json_get(th, "method"), ""), method, sizeof(method));
    ctl_sanitize(json_str(json_get(th, "uri"), ""), uri, sizeof(uri));
    snprintf(out, cap, "%s %s (%.0f ms)", method, uri, json_number(json_get(th, "elapsed_ms"), 0));
    return true;
}
