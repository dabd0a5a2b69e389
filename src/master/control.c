/*
 * control.c — the control socket in the master's event loop (see
 * control.h).
 *
 * A client slot holds a line buffer and one reply. Reading: bytes are read
 * while no reply is pending; each complete line is parsed and run, its
 * reply is queued and written at once as far as the socket takes it
 * (EPOLLOUT for the rest). A line that does not fit the buffer is answered
 * with an error and the connection is closed after the reply: there is no
 * telling where the next command would start. Every read of a complete
 * line and every write that makes progress pushes the client's deadline
 * back; control_tick disconnects those past it.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "os/listen.h"
#include "core/log.h"
#include "core/clock.h"

/* A client keeps a reply buffer up to this size between replies. */
#define CONTROL_KEEP_BUFFER (64u << 10)

/* ---- the parser ---- */

static bool control_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse "N", "+N" or "-N" (0..65535) of LEN bytes. */
static int control_parse_scale(const char *s, size_t len, struct control_request *out)
{
    out->scale_op = CONTROL_SCALE_SET;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        out->scale_op = s[0] == '+' ? CONTROL_SCALE_ADD : CONTROL_SCALE_SUB;
        s++;
        len--;
    }
    if (len == 0 || len > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    out->scale_n = v;
    return 0;
}

enum control_parse_result control_parse(const struct control_command *table, size_t count,
                                        const char *line, size_t len,
                                        struct control_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (len > 0 && line[len - 1] == '\r')
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            snprintf(err, errlen,
                     "byte 0x%02x at offset %zu: a command line is printable ASCII", c, i);
            return CONTROL_PARSE_BAD;
        }
    }
    size_t p = 0;
    while (p < len && control_blank(line[p]))
        p++;
    size_t name_start = p;
    while (p < len && !control_blank(line[p]))
        p++;
    size_t name_len = p - name_start;
    if (name_len == 0)
        return CONTROL_PARSE_EMPTY;
    while (p < len && control_blank(line[p]))
        p++;
    size_t arg_start = p;
    while (p < len && !control_blank(line[p]))
        p++;
    size_t arg_len = p - arg_start;
    while (p < len && control_blank(line[p]))
        p++;

    const struct control_command *cmd = NULL;
    for (size_t i = 0; i < count && !cmd; i++)
        if (strlen(table[i].name) == name_len &&
            memcmp(table[i].name, line + name_start, name_len) == 0)
            cmd = &table[i];
    if (!cmd) {
        /* Echo at most 40 bytes of what was sent: it is printable. */
        snprintf(err, errlen, "unknown command '%.*s'; try: ",
                 name_len > 40 ? 40 : (int)name_len, line + name_start);
        for (size_t i = 0; i < count; i++) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, "%s%s", i ? ", " : "", table[i].name);
        }
        return CONTROL_PARSE_BAD;
    }
    out->cmd = cmd;
    if (p < len) {
        snprintf(err, errlen, "%s: too many arguments; usage: %s", cmd->name, cmd->usage);
        return CONTROL_PARSE_BAD;
    }
    switch (cmd->arg) {
    case CONTROL_ARG_NONE:
        if (arg_len) {
            snprintf(err, errlen, "%s takes no argument; usage: %s", cmd->name, cmd->usage);
            return CONTROL_PARSE_BAD;
        }
        break;
    case CONTROL_ARG_SCALE:
        if (control_parse_scale(line + arg_start, arg_len, out) < 0) {
            snprintf(err, errlen,
                     "%s: expected N, +N or -N (N from 0 to 65535), got '%.*s'; usage: %s",
                     cmd->name, arg_len > 40 ? 40 : (int)arg_len, line + arg_start, cmd->usage);
            return CONTROL_PARSE_BAD;
        }
        break;
    }
    return CONTROL_PARSE_OK;
}

void control_reply_error(struct json *reply, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_reset(reply);
    json_object_begin(reply);
    json_kv_bool(reply, "ok", false);
    json_kv_string(reply, "error", msg);
    json_object_end(reply);
}

/* ---- the socket ---- */

struct control_client {
    int fd;                      /* -1: a free slot */
    char line[CONTROL_LINE_MAX];
    size_t line_len;
    struct json reply;           /* the pending reply */
    size_t reply_sent;           /* bytes of it written */
    bool pending;                /* a reply is being written */
    bool close_after;            /* close once the reply is out */
    bool draining;               /* reply out, write side shut: discard input */
    uint32_t events;             /* what it is registered for */
    uint64_t deadline_ms;
};

struct control {
    int fd, epfd;
    uint64_t tag_base;
    unsigned timeout_ms;
    char path[108];
    const struct control_command *table;
    size_t count;
    void *owner;
    struct control_client clients[CONTROL_MAX_CLIENTS];
};

static struct control *control_new(const char *path, unsigned timeout_ms, int epfd,
                                   uint64_t tag_base, const struct control_command *table,
                                   size_t count, void *owner, char *err, size_t errlen)
{
    struct control *ctl = calloc(1, sizeof(*ctl));
    if (!ctl) {
        snprintf(err, errlen, "control socket: out of memory");
        return NULL;
    }
    *ctl = (struct control){.fd = -1, .epfd = epfd, .tag_base = tag_base,
                            .timeout_ms = timeout_ms, .table = table, .count = count,
                            .owner = owner};
    snprintf(ctl->path, sizeof(ctl->path), "%s", path);
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        ctl->clients[i].fd = -1;
        json_init(&ctl->clients[i].reply, CONTROL_REPLY_MAX);
    }
    return ctl;
}

struct control *control_open(const char *path, unsigned mode, unsigned timeout_ms, int epfd,
                             uint64_t tag_base, const struct control_command *table,
                             size_t count, void *owner, char *err, size_t errlen)
{
    struct control *ctl =
        control_new(path, timeout_ms, epfd, tag_base, table, count, owner, err, errlen);
    if (!ctl)
        return NULL;
    ctl->fd = listen_unix_bind(path, mode, err, errlen);
    if (ctl->fd < 0) {
        free(ctl);
        return NULL;
    }
    /* Non-blocking: accept is called until EAGAIN, and must never wait. */
    fcntl(ctl->fd, F_SETFL, fcntl(ctl->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag_base};
    if (listen(ctl->fd, 64) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, ctl->fd, &ev) < 0) {
        snprintf(err, errlen, "listen/epoll_ctl(\"%s\") failed: %s", path, strerror(errno));
        close(ctl->fd);
        unlink(path);
        free(ctl);
        return NULL;
    }
    return ctl;
}

bool control_owns(const struct control *ctl, uint64_t tag)
{
    return ctl && tag >= ctl->tag_base && tag <= ctl->tag_base + CONTROL_MAX_CLIENTS;
}

static void control_drop(struct control_client *c)
{
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->line_len = 0;
    c->pending = c->close_after = c->draining = false;
    c->events = 0;
    json_free(&c->reply);
}

/* Register C for reading (no reply pending) or writing (one is). */
static void control_want(struct control *ctl, struct control_client *c)
{
    uint32_t want = c->pending ? EPOLLOUT : EPOLLIN;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want,
                             .data.u64 = ctl->tag_base + 1 + (uint64_t)(c - ctl->clients)};
    if (epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = want;
}

/* Write what the socket takes of the pending reply. Returns false when
 * the client was dropped. */
static bool control_flush(struct control *ctl, struct control_client *c)
{
    size_t len;
    const char *text = json_text(&c->reply, &len);
    while (c->reply_sent < len) {
        ssize_t n = send(c->fd, text + c->reply_sent, len - c->reply_sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true; /* EPOLLOUT tells when to go on */
        if (n <= 0) {
            control_drop(c);
            return false;
        }
        c->reply_sent += (size_t)n;
        c->deadline_ms = clock_now_ms() + ctl->timeout_ms;
    }
    c->pending = false;
    /* A large reply (workers of a big pool) does not keep its buffer. */
    if (c->reply.cap > CONTROL_KEEP_BUFFER)
        json_free(&c->reply);
    else
        json_reset(&c->reply);
    if (c->close_after) {
        /* The client sees the reply, then the end of the stream. Closing
         * now, with its unread bytes still queued, would reset the
         * connection and lose the reply: discard them until it closes or
         * times out. */
        shutdown(c->fd, SHUT_WR);
        c->draining = true;
        c->deadline_ms = clock_now_ms() + ctl->timeout_ms;
    }
    return true;
}

/* Queue the reply object in C's writer, and its newline, for writing.
 * Returns false when even an error reply could not be made (out of
 * memory): the client is then dropped. */
static bool control_queue(struct control_client *c)
{
    json_raw(&c->reply, "\n", 1); /* a no-op on a writer that failed */
    if (json_failed(&c->reply)) {
        control_reply_error(&c->reply, "the reply is larger than %u bytes", CONTROL_REPLY_MAX);
        json_raw(&c->reply, "\n", 1);
    }
    if (json_failed(&c->reply)) {
        control_drop(c);
        return false;
    }
    c->pending = true;
    c->reply_sent = 0;
    return true;
}

/* Run one line (or explain what is wrong with it) and queue its reply.
 * Returns false when the client was dropped. */
static bool control_run_line(struct control *ctl, struct control_client *c, const char *line,
                             size_t len)
{
    struct control_request req;
    char err[512];
    enum control_parse_result r =
        control_parse(ctl->table, ctl->count, line, len, &req, err, sizeof(err));
    if (r == CONTROL_PARSE_EMPTY)
        return true;
    json_reset(&c->reply);
    if (r == CONTROL_PARSE_OK)
        req.cmd->run(ctl->owner, &req, &c->reply);
    else
        control_reply_error(&c->reply, "%s", err);
    return control_queue(c);
}

/* Lines already buffered, one at a time while no reply is pending. */
static void control_process(struct control *ctl, struct control_client *c)
{
    while (c->fd >= 0 && !c->pending && !c->draining) {
        char *nl = memchr(c->line, '\n', c->line_len);
        if (!nl) {
            if (c->line_len == sizeof(c->line)) {
                control_reply_error(&c->reply, "line too long (the limit is %d bytes)",
                                    CONTROL_LINE_MAX - 1);
                c->close_after = true;
                if (!control_queue(c) || !control_flush(ctl, c))
                    return;
            }
            break;
        }
        size_t len = (size_t)(nl - c->line);
        if (!control_run_line(ctl, c, c->line, len))
            return;
        c->line_len -= len + 1;
        memmove(c->line, nl + 1, c->line_len);
        c->deadline_ms = clock_now_ms() + ctl->timeout_ms;
        if (c->pending && !control_flush(ctl, c))
            return;
    }
    if (c->fd >= 0)
        control_want(ctl, c);
}

static void control_read(struct control *ctl, struct control_client *c)
{
    if (c->draining) {
        char scrap[4096];
        ssize_t n;
        while ((n = recv(c->fd, scrap, sizeof(scrap), MSG_DONTWAIT)) > 0)
            ;
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            control_drop(c);
        return;
    }
    while (!c->pending && c->line_len < sizeof(c->line)) {
        ssize_t n = recv(c->fd, c->line + c->line_len, sizeof(c->line) - c->line_len,
                         MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            control_drop(c);
            return;
        }
        c->line_len += (size_t)n;
        control_process(ctl, c);
        if (c->fd < 0)
            return;
    }
}

/* Register a new client connection FD in a free slot. Returns false (FD
 * closed) when there is none or epoll refuses it. */
static bool control_add_client(struct control *ctl, int fd)
{
    struct control_client *c = NULL;
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS && !c; i++)
        if (ctl->clients[i].fd < 0)
            c = &ctl->clients[i];
    if (!c) {
        static const char busy[] = "{\"ok\":false,\"error\":\"too many control "
                                   "connections (the limit is 16)\"}\n";
        ssize_t ignored = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)ignored;
        close(fd);
        return false;
    }
    c->fd = fd;
    c->line_len = 0;
    c->pending = c->close_after = c->draining = false;
    c->deadline_ms = clock_now_ms() + ctl->timeout_ms;
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = ctl->tag_base + 1 + (uint64_t)(c - ctl->clients)};
    if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_msg(LOG_ERROR, "epoll_ctl(control client) failed: %s", strerror(errno));
        control_drop(c);
        return false;
    }
    return true;
}

struct control *control_adopt(int fd, const char *path, const int *clients, size_t client_count,
                              unsigned timeout_ms, int epfd, uint64_t tag_base,
                              const struct control_command *table, size_t count, void *owner,
                              char *err, size_t errlen)
{
    struct control *ctl =
        control_new(path, timeout_ms, epfd, tag_base, table, count, owner, err, errlen);
    if (!ctl)
        return NULL;
    ctl->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag_base};
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        snprintf(err, errlen, "fcntl/epoll_ctl(control socket \"%s\") failed: %s", path,
                 strerror(errno));
        free(ctl);
        return NULL;
    }
    /* A client may have sent its next line (corralctl polls status while
     * it waits for a reload) during the exec: it waits in the socket, and
     * epoll reports it at once. */
    for (size_t i = 0; i < client_count; i++) {
        if (fcntl(clients[i], F_SETFD, FD_CLOEXEC) < 0) {
            log_msg(LOG_ERROR, "fcntl(control client fd %d, FD_CLOEXEC) failed: %s; "
                    "disconnecting it", clients[i], strerror(errno));
            close(clients[i]);
            continue;
        }
        control_add_client(ctl, clients[i]);
    }
    return ctl;
}

size_t control_exec_fds(struct control *ctl, int *listen_fd, int *clients, size_t max)
{
    size_t n = 0;
    *listen_fd = ctl ? ctl->fd : -1;
    for (size_t i = 0; ctl && i < CONTROL_MAX_CLIENTS; i++) {
        struct control_client *c = &ctl->clients[i];
        if (c->fd < 0)
            continue;
        if (c->pending)
            control_flush(ctl, c);
        if (c->fd < 0)
            continue;
        if (c->pending || c->line_len || c->draining || n == max) {
            log_msg(LOG_WARN, "control client %zu is in the middle of a command: "
                    "disconnected by the re-exec", i);
            control_drop(c);
            continue;
        }
        clients[n++] = c->fd;
    }
    return n;
}

static void control_accept(struct control *ctl)
{
    for (;;) {
        int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_msg(LOG_ERROR, "accept(control socket \"%s\") failed: %s", ctl->path,
                        strerror(errno));
            return;
        }
        control_add_client(ctl, fd);
    }
}

void control_event(struct control *ctl, uint64_t tag, uint32_t events)
{
    if (tag == ctl->tag_base) {
        control_accept(ctl);
        return;
    }
    struct control_client *c = &ctl->clients[tag - ctl->tag_base - 1];
    if (c->fd < 0)
        return;
    if (c->pending) {
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && control_flush(ctl, c))
            control_process(ctl, c);
        return;
    }
    control_read(ctl, c);
}

void control_tick(struct control *ctl)
{
    if (!ctl)
        return;
    uint64_t now = clock_now_ms();
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct control_client *c = &ctl->clients[i];
        if (c->fd >= 0 && now >= c->deadline_ms)
            control_drop(c);
    }
}

void control_close_in_child(struct control *ctl)
{
    if (!ctl)
        return;
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->clients[i].fd >= 0)
            close(ctl->clients[i].fd);
    close(ctl->fd);
}

void control_close(struct control *ctl)
{
    if (!ctl)
        return;
    for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->clients[i].fd >= 0)
            control_drop(&ctl->clients[i]);
    close(ctl->fd);
    unlink(ctl->path);
    free(ctl);
}
