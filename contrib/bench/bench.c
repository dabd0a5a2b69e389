/*
 * corral-bench: a protocol-level load generator for uwsgi, SCGI and FastCGI servers.
 *
 * It talks to the application server directly, the way nginx does (the same params, the same
 * framing, FastCGI records padded to 8 bytes), keeps CONNS requests in flight for SECONDS after
 * a warmup, validates every response and prints requests/s, p50/p99 latency and, with
 * --server-pid, the server's CPU time per response.
 *
 *   corral-bench --proto uwsgi|scgi|fastcgi [--keep-conn] --connect unix:/path|tcp:HOST:PORT
 *                [-c CONNS=32] [-d SECONDS=5] [--warmup SECONDS=1] [--uri /path?query]
 *                [--method GET] [--body-size N] [--expect-status 200]
 *                [--expect-body-prefix STR] [--server-pid PID]... [--json]
 *   corral-bench --cpu-of PID [PID...]
 *                print the CPU time in µs used so far by the PIDs and all their descendants
 *
 * uwsgi and SCGI: one connection per request; the response ends when the server closes.
 * FastCGI: BEGIN_REQUEST (responder; FCGI_KEEP_CONN with --keep-conn), one PARAMS record, an
 * empty PARAMS, STDIN records of up to 32 KiB and an empty STDIN; the response ends at
 * END_REQUEST. With --keep-conn the connection carries the next request, else it is closed.
 * Responses: uwsgi needs an "HTTP/x.y NNN" status line; SCGI a status line or CGI headers;
 * FastCGI CGI headers. A CGI head without Status: means 200.
 *
 * Latency is connect-to-complete (send-to-complete on a reused keep-conn connection). A request
 * counts when it completes inside the measured window. Errors (connect failures, resets, no
 * complete response within 10 s, malformed responses, unexpected status or body) are counted
 * over the whole run, warmup included; a slot whose request failed waits ~0.1 s before its next
 * one. The run always ends by warmup + SECONDS + 10 s. "starved" counts connections that
 * completed no request in the window (a server that pins a worker to each kept connection).
 *
 * Server CPU: utime+stime+cutime+cstime (/proc/PID/stat fields 14-17) of every --server-pid and
 * all its descendants, read when the window opens and when it closes, divided by the responses
 * counted. cutime/cstime hold the times of reaped children, so workers that exit during the
 * window still count. The resolution is one clock tick (usually 10 ms) over the window.
 *
 * Exit status: 0 if every request succeeded, 1 if any failed or none completed, 2 on misuse.
 * Single-threaded: edge-triggered epoll, non-blocking sockets, libc and libm only.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REQ_TIMEOUT 10.0 /* seconds before an unfinished request is an error */
#define GRACE 10.0       /* seconds allowed after the window for the requests in flight */
#define TICK 0.1         /* period of the timeout scan, which also restarts failed slots */
#define FCGI_STDIN_MAX 32768

enum proto { P_UWSGI, P_SCGI, P_FCGI };
static const char *const proto_names[] = {"uwsgi", "scgi", "fastcgi"};

/* Request outcomes; everything but E_OK is an error of that kind. */
enum err { E_OK, E_CONNECT, E_IO, E_TIMEOUT, E_PROTO, E_STATUS, E_BODY, E_COUNT };
static const char *const err_names[] = {"ok",       "connect", "io",  "timeout",
                                        "protocol", "status",  "body"};

struct opts {
    enum proto proto;
    bool keep_conn, json, cpu_of;
    const char *connect, *uri, *method, *prefix;
    int conns, expect_status, npids;
    double seconds, warmup;
    size_t body_size;
    pid_t *pids;
};

struct buf {
    uint8_t *p;
    size_t len, cap;
};

/* IDLE: in the ready list or stopped; SLEEP: failed, restarted by the next scan. */
enum cstate { C_IDLE, C_CONNECTING, C_ACTIVE, C_SLEEP };

/* One request slot. It owns its socket (fd, -1 when closed) and its response head buffer. */
struct conn {
    int fd;
    enum cstate state;
    bool want_out, send_done;
    size_t sent, hlen;
    double t_start;
    long long done;        /* requests completed in the window */
    uint8_t *head;         /* first bytes of the response (FastCGI: of STDOUT) for validation */
    uint8_t fh[8], end[8]; /* FastCGI record parser: header, END_REQUEST body */
    unsigned fhave, endhave;
    uint32_t fcontent, fpad;
};

enum phase { PH_WARMUP, PH_MEASURE, PH_DRAIN };

struct run {
    const struct opts *o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool tcp;
    int ep;
    struct buf req; /* the request bytes, the same for every request */
    size_t head_cap;
    struct conn *conns;
    struct conn **ready; /* slots waiting to start their next request */
    int nready;
    enum phase phase;
    long long requests, err[E_COUNT];
    double *lat; /* latencies (ms) of the counted requests */
    size_t nlat, latcap;
};

static uint8_t scratch[65536];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("corral-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    if (!(p = realloc(p, n)))
        die("out of memory");
    return p;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = b->cap ? b->cap : 256;
        while (b->cap < b->len + n)
            b->cap *= 2;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* ---- CPU accounting through /proc ---- */

struct pstat {
    pid_t pid, ppid;
    long long ticks;
    bool in;
};

/* Reads /proc/PID/stat: ppid and utime+stime+cutime+cstime. Returns 0, or -1 if gone. */
static int read_stat(struct pstat *s)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)s->pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')'); /* comm may hold spaces and parentheses */
    long long v[16];              /* fields 3 (state) to 18 */
    int i = 0;
    for (char *tok = p ? strtok(p + 1, " ") : NULL; tok && i < 16; tok = strtok(NULL, " "))
        v[i++] = strtoll(tok, NULL, 10);
    if (i < 16)
        return -1;
    s->ppid = (pid_t)v[1];
    s->ticks = v[11] + v[12] + v[13] + v[14];
    return 0;
}

/* CPU time (µs) of the roots and all their descendants; -1 when no root exists any more. */
static long long cpu_us(const pid_t *roots, int nroots)
{
    struct pstat *ps = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir("/proc");
    if (!d)
        die("opendir(/proc): %s", strerror(errno));
    for (struct dirent *de; (de = readdir(d));) {
        struct pstat s = {.pid = (pid_t)atoi(de->d_name)};
        if (!isdigit((unsigned char)de->d_name[0]) || read_stat(&s) < 0)
            continue;
        if (n == cap)
            ps = xrealloc(ps, (cap = cap ? cap * 2 : 512) * sizeof *ps);
        for (int r = 0; r < nroots; r++)
            s.in |= s.pid == roots[r];
        ps[n++] = s;
    }
    closedir(d);
    long long ticks = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= ps[i].in;
    for (bool grew = true; grew;) { /* add children of members: trees are shallow */
        grew = false;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n && !ps[i].in; j++)
                if (ps[j].in && ps[j].pid == ps[i].ppid)
                    ps[i].in = grew = true;
    }
    for (size_t i = 0; i < n; i++)
        ticks += ps[i].in ? ps[i].ticks : 0;
    free(ps);
    return found ? ticks * 1000000LL / sysconf(_SC_CLK_TCK) : -1;
}

/* ---- the request ---- */

struct kv {
    const char *k, *v;
};

/* Fills the params nginx sends with its stock *_params files; returns how many. */
static int build_params(const struct opts *o, struct kv *kv, char *path, char *clen)
{
    const char *q = strchr(o->uri, '?');
    size_t plen = q ? (size_t)(q - o->uri) : strlen(o->uri);
    memcpy(path, o->uri, plen);
    path[plen] = '\0';
    /* nginx sends $content_length, empty without a body; SCGI always has a number */
    clen[0] = '\0';
    if (o->body_size || o->proto == P_SCGI)
        snprintf(clen, 32, "%zu", o->body_size);
    int n = 0;
    if (o->proto == P_SCGI) { /* CONTENT_LENGTH must come first */
        kv[n++] = (struct kv){"CONTENT_LENGTH", clen};
        kv[n++] = (struct kv){"SCGI", "1"};
    }
    kv[n++] = (struct kv){"QUERY_STRING", q ? q + 1 : ""};
    kv[n++] = (struct kv){"REQUEST_METHOD", o->method};
    kv[n++] = (struct kv){"CONTENT_TYPE", o->body_size ? "application/octet-stream" : ""};
    if (o->proto != P_SCGI)
        kv[n++] = (struct kv){"CONTENT_LENGTH", clen};
    kv[n++] = (struct kv){"REQUEST_URI", o->uri};
    kv[n++] = (struct kv){"PATH_INFO", path};
    kv[n++] = (struct kv){"DOCUMENT_URI", path};
    kv[n++] = (struct kv){"DOCUMENT_ROOT", "/var/www/html"};
    kv[n++] = (struct kv){"SERVER_PROTOCOL", "HTTP/1.1"};
    kv[n++] = (struct kv){"REQUEST_SCHEME", "http"};
    if (o->proto == P_FCGI) {
        kv[n++] = (struct kv){"GATEWAY_INTERFACE", "CGI/1.1"};
        kv[n++] = (struct kv){"SERVER_SOFTWARE", "nginx"};
        kv[n++] = (struct kv){"REDIRECT_STATUS", "200"};
    }
    kv[n++] = (struct kv){"REMOTE_ADDR", "127.0.0.1"};
    kv[n++] = (struct kv){"REMOTE_PORT", "40000"};
    kv[n++] = (struct kv){"SERVER_ADDR", "127.0.0.1"};
    kv[n++] = (struct kv){"SERVER_PORT", "80"};
    kv[n++] = (struct kv){"SERVER_NAME", "localhost"};
    kv[n++] = (struct kv){"HTTP_HOST", "localhost"};
    kv[n++] = (struct kv){"HTTP_USER_AGENT", "corral-bench"};
    kv[n++] = (struct kv){"HTTP_ACCEPT", "*/*"};
    return n;
}

/* Appends one FastCGI record (requestId 1) padded to 8 bytes, as nginx does. */
static void fcgi_record(struct buf *b, unsigned type, const void *content, size_t len)
{
    static const uint8_t zeros[8];
    size_t pad = (8 - len % 8) % 8;
    uint8_t h[8] = {1, (uint8_t)type, 0, 1, (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)pad, 0};
    buf_put(b, h, 8);
    buf_put(b, content, len);
    buf_put(b, zeros, pad);
}

/* Encodes the one request every slot sends into r->req. */
static void build_request(struct run *r)
{
    const struct opts *o = r->o;
    char clen[32], *path = xrealloc(NULL, strlen(o->uri) + 1);
    struct kv kv[32];
    int n = build_params(o, kv, path, clen);
    struct buf vars = {0}, *b = &r->req;
    for (int i = 0; i < n; i++) {
        size_t kl = strlen(kv[i].k), vl = strlen(kv[i].v);
        if (o->proto == P_UWSGI) { /* u16le key size, key, u16le value size, value */
            buf_put(&vars, (uint8_t[]){kl & 0xff, kl >> 8 & 0xff}, 2);
            buf_put(&vars, kv[i].k, kl);
            buf_put(&vars, (uint8_t[]){vl & 0xff, vl >> 8 & 0xff}, 2);
            buf_put(&vars, kv[i].v, vl);
            continue;
        }
        if (o->proto == P_SCGI) { /* name NUL value NUL */
            buf_put(&vars, kv[i].k, kl + 1);
            buf_put(&vars, kv[i].v, vl + 1);
            continue;
        }
        for (int j = 0; j < 2; j++) { /* FastCGI lengths: 1 byte up to 127, else 4 */
            size_t l = j ? vl : kl;
            if (l <= 127)
                buf_put(&vars, (uint8_t[]){(uint8_t)l}, 1);
            else
                buf_put(&vars, (uint8_t[]){l >> 24 | 0x80, l >> 16 & 0xff, l >> 8 & 0xff, l & 0xff},
                        4);
        }
        buf_put(&vars, kv[i].k, kl);
        buf_put(&vars, kv[i].v, vl);
    }
    if (o->proto != P_SCGI && vars.len > 65535)
        die("the params exceed 65535 bytes (one uwsgi packet or FastCGI record)");
    uint8_t *body = xrealloc(NULL, o->body_size + 1);
    memset(body, 'x', o->body_size);
    if (o->proto == P_UWSGI) { /* modifier1 0 (WSGI), datasize LE, modifier2 0, as nginx */
        buf_put(b, (uint8_t[]){0, vars.len & 0xff, vars.len >> 8, 0}, 4);
        buf_put(b, vars.p, vars.len);
        buf_put(b, body, o->body_size);
    } else if (o->proto == P_SCGI) {
        char ns[32];
        buf_put(b, ns, (size_t)snprintf(ns, sizeof ns, "%zu:", vars.len));
        buf_put(b, vars.p, vars.len);
        buf_put(b, ",", 1);
        buf_put(b, body, o->body_size);
    } else {
        fcgi_record(b, 1, (uint8_t[]){0, 1, o->keep_conn, 0, 0, 0, 0, 0}, 8);
        fcgi_record(b, 4, vars.p, vars.len);
        fcgi_record(b, 4, NULL, 0);
        for (size_t off = 0; off < o->body_size; off += FCGI_STDIN_MAX) {
            size_t len = o->body_size - off;
            fcgi_record(b, 5, body + off, len > FCGI_STDIN_MAX ? FCGI_STDIN_MAX : len);
        }
        fcgi_record(b, 5, NULL, 0);
    }
    free(body);
    free(vars.p);
    free(path);
}

/* ---- response validation ---- */

static int parse3(const uint8_t *p, size_t n)
{
    if (n < 3 || !isdigit(p[0]) || !isdigit(p[1]) || !isdigit(p[2]))
        return -1;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/*
 * Checks a response head and body start h[0..n) against the options. Returns E_OK, E_PROTO
 * (no complete head, or no status where one is needed), E_STATUS or E_BODY; *status gets the
 * code when one was found.
 */
static enum err validate(const struct opts *o, const uint8_t *h, size_t n, int *status)
{
    size_t hend = 0, body = 0; /* hend: the blank line; body: where the body starts */
    for (size_t i = 0; i + 1 < n && !body; i++) {
        if (h[i] == '\n' && h[i + 1] == '\n')
            hend = i + 1, body = i + 2;
        else if (i + 3 < n && !memcmp(h + i, "\r\n\r\n", 4))
            hend = i + 2, body = i + 4;
    }
    *status = -1;
    if (!body)
        return E_PROTO;
    if (o->proto != P_FCGI && hend > 5 && !memcmp(h, "HTTP/", 5)) {
        const uint8_t *sp = memchr(h, ' ', hend);
        if (sp)
            *status = parse3(sp + 1, hend - (size_t)(sp + 1 - h));
    } else if (o->proto != P_UWSGI) {
        *status = 200;
        for (size_t i = 0, end; i < hend; i = end + 1) {
            const uint8_t *nl = memchr(h + i, '\n', hend - i);
            end = nl ? (size_t)(nl - h) : hend;
            if (end - i >= 7 && !strncasecmp((const char *)h + i, "Status:", 7)) {
                size_t j = i + 7;
                while (j < end && h[j] == ' ')
                    j++;
                *status = parse3(h + j, end - j);
            }
        }
    }
    if (*status < 0)
        return E_PROTO;
    if (*status != o->expect_status)
        return E_STATUS;
    if (!o->prefix)
        return E_OK;
    size_t pl = strlen(o->prefix);
    return n - body < pl || memcmp(h + body, o->prefix, pl) ? E_BODY : E_OK;
}

/* ---- the slot state machine ---- */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
}

/* Ends the slot's request with outcome e (E_OK: validate the response) and queues the slot. */
static void finish(struct run *r, struct conn *c, enum err e, const char *detail)
{
    double now = mono();
    char msg[160];
    int status;
    if (e == E_OK && (e = validate(r->o, c->head, c->hlen, &status)) != E_OK) {
        if (e == E_STATUS)
            snprintf(msg, sizeof msg, "status %d, expected %d", status, r->o->expect_status);
        else if (e == E_BODY)
            snprintf(msg, sizeof msg, "body does not start with \"%s\"", r->o->prefix);
        else
            snprintf(msg, sizeof msg, "malformed response head (%zu bytes seen)", c->hlen);
        detail = msg;
    }
    if (e != E_OK) {
        if (++r->err[e] == 1) /* say what went wrong the first time, once per kind */
            fprintf(stderr, "corral-bench: first %s error: %s\n", err_names[e], detail);
        conn_close(c);
        c->state = C_SLEEP;
        return;
    }
    if (r->phase == PH_MEASURE) {
        r->requests++, c->done++;
        if (r->nlat == r->latcap)
            r->lat =
                xrealloc(r->lat, (r->latcap = r->latcap ? r->latcap * 2 : 65536) * sizeof *r->lat);
        r->lat[r->nlat++] = (now - c->t_start) * 1e3;
    }
    if (!r->o->keep_conn)
        conn_close(c);
    c->state = C_IDLE;
    r->ready[r->nready++] = c;
}

static void want_out(struct run *r, struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (!c->want_out && epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = true;
}

/* Keeps the first head_cap bytes of the response (FastCGI: of STDOUT) for validation. */
static void head_append(struct run *r, struct conn *c, const uint8_t *p, size_t n)
{
    size_t room = r->head_cap - c->hlen;
    memcpy(c->head + c->hlen, p, n < room ? n : room);
    c->hlen += n < room ? n : room;
}

/*
 * Feeds FastCGI response bytes to the slot's record parser. Only STDOUT, STDERR (ignored) and
 * END_REQUEST with requestId 1 are allowed. Returns 1 at END_REQUEST with REQUEST_COMPLETE and
 * nothing after it, 0 when more is needed, -1 when the stream is malformed.
 */
static int fcgi_feed(struct run *r, struct conn *c, const uint8_t *p, size_t n)
{
    for (size_t i = 0;;) {
        if (c->fhave < 8) {
            size_t take = 8 - c->fhave < n - i ? 8 - c->fhave : n - i;
            memcpy(c->fh + c->fhave, p + i, take);
            c->fhave += (unsigned)take, i += take;
            if (c->fhave < 8)
                return 0;
            if (c->fh[0] != 1 || c->fh[2] != 0 || c->fh[3] != 1 ||
                (c->fh[1] != 3 && c->fh[1] != 6 && c->fh[1] != 7))
                return -1;
            c->fcontent = (uint32_t)c->fh[4] << 8 | c->fh[5];
            c->fpad = c->fh[6];
            if (c->fh[1] == 3 && c->fcontent != 8)
                return -1;
        }
        size_t take = c->fcontent < n - i ? c->fcontent : n - i;
        if (c->fh[1] == 6)
            head_append(r, c, p + i, take);
        else if (c->fh[1] == 3)
            memcpy(c->end + c->endhave, p + i, take), c->endhave += (unsigned)take;
        c->fcontent -= (uint32_t)take, i += take;
        take = c->fpad < n - i ? c->fpad : n - i;
        c->fpad -= (uint32_t)take, i += take;
        if (c->fcontent || c->fpad)
            return 0;
        c->fhave = 0; /* the record is complete */
        if (c->fh[1] == 3)
            return c->end[4] == 0 && i == n ? 1 : -1;
        if (i == n)
            return 0;
    }
}

/*
 * Reads until EAGAIN or the end of the response (the set is edge-triggered). hup: the event
 * said the peer had shut down, so a read short of the buffer got all it sent and the EOF need
 * not be read: one read per uwsgi/SCGI response instead of two.
 */
static void conn_recv(struct run *r, struct conn *c, bool hup)
{
    for (;;) {
        ssize_t n = read(c->fd, scratch, sizeof scratch);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (errno == EAGAIN)
                return;
        } else if (n < 0) {
            finish(r, c, E_IO, strerror(errno));
            return;
        } else if (r->o->proto == P_FCGI) {
            int st = n ? fcgi_feed(r, c, scratch, (size_t)n) : -2;
            if (st > 0)
                finish(r, c, E_OK, NULL);
            else if (st == -1)
                finish(r, c, E_PROTO, "malformed FastCGI records");
            else if (st == -2)
                finish(r, c, E_IO, "closed before END_REQUEST");
            if (st)
                return;
        } else {
            head_append(r, c, scratch, (size_t)n);
            if (n == 0 || (hup && (size_t)n < sizeof scratch)) {
                finish(r, c, E_OK, NULL);
                return;
            }
        }
    }
}

/* Sends the rest of the request. Returns false when the slot's request has ended. */
static bool conn_send(struct run *r, struct conn *c)
{
    while (c->sent < r->req.len) {
        ssize_t n = send(c->fd, r->req.p + c->sent, r->req.len - c->sent, MSG_NOSIGNAL);
        if (n >= 0) {
            c->sent += (size_t)n;
        } else if (errno == EAGAIN) {
            want_out(r, c); /* rare: a body bigger than the socket buffer */
            return true;
        } else if (errno == EPIPE || errno == ECONNRESET) {
            conn_recv(r, c, false); /* it may have answered early and closed: read that */
            return false;
        } else if (errno != EINTR) {
            finish(r, c, E_IO, strerror(errno));
            return false;
        }
    }
    c->send_done = true;
    return true;
}

/* Starts the slot's next request: on its kept connection, or on a new one. */
static void start_request(struct run *r, struct conn *c)
{
    c->t_start = mono();
    c->sent = c->hlen = c->fhave = c->endhave = 0;
    c->send_done = false;
    c->state = C_ACTIVE;
    if (c->fd < 0) {
        int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket: %s", strerror(errno));
        if (r->tcp)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        c->fd = fd;
        c->want_out = r->tcp; /* a TCP connect completes with EPOLLOUT */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (r->tcp ? EPOLLOUT : 0),
                                 .data.ptr = c};
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&r->addr, r->addrlen) < 0) {
            if (errno == EINPROGRESS) {
                c->state = C_CONNECTING;
                return;
            }
            finish(r, c, E_CONNECT, strerror(errno));
            return;
        }
    }
    conn_send(r, c);
}

static void on_event(struct run *r, struct conn *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            finish(r, c, E_CONNECT, strerror(err));
            return;
        }
        c->state = C_ACTIVE;
        if (!conn_send(r, c))
            return;
    } else if (c->state != C_ACTIVE) {
        return;
    } else if ((ev & EPOLLOUT) && !c->send_done && !conn_send(r, c)) {
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        conn_recv(r, c, ev & (EPOLLRDHUP | EPOLLHUP));
}

/* ---- driver ---- */

/*
 * Runs the warmup, the window and the drain. *cpu gets the server CPU µs per counted response
 * (-1 if unknown); returns the window's length in seconds.
 */
static double run_loop(struct run *r, double *cpu)
{
    const struct opts *o = r->o;
    struct epoll_event *evs = xrealloc(NULL, (size_t)o->conns * sizeof *evs);
    double t0 = mono(), t_w = t0 + o->warmup, t_e = t_w + o->seconds, t_end = t_e + GRACE;
    double w_real = t0, e_real = t0, next_tick = t0 + TICK;
    long long cpu0 = -1, cpu1 = -1;
    for (;;) {
        double now = mono();
        if (r->phase == PH_WARMUP && now >= t_w) {
            cpu0 = o->npids ? cpu_us(o->pids, o->npids) : -1;
            w_real = mono(), r->phase = PH_MEASURE;
        }
        if (r->phase == PH_MEASURE && now >= t_e) {
            e_real = mono(), r->phase = PH_DRAIN;
            cpu1 = o->npids ? cpu_us(o->pids, o->npids) : -1;
        }
        if (r->phase == PH_DRAIN) { /* no new requests: close the idle slots */
            while (r->nready > 0)
                conn_close(r->ready[--r->nready]);
        }
        int active = 0;
        bool scan = now >= next_tick || r->phase == PH_DRAIN;
        for (int i = 0; i < o->conns && scan; i++) {
            struct conn *c = &r->conns[i];
            bool busy = c->state == C_ACTIVE || c->state == C_CONNECTING;
            if (busy && (now - c->t_start > REQ_TIMEOUT || now >= t_end))
                finish(r, c, E_TIMEOUT, "no complete response within 10 s");
            else if (c->state == C_SLEEP && r->phase == PH_DRAIN)
                c->state = C_IDLE;
            else if (c->state == C_SLEEP)
                c->state = C_IDLE, r->ready[r->nready++] = c;
            active += c->state == C_ACTIVE || c->state == C_CONNECTING;
        }
        if (now >= next_tick)
            next_tick = now + TICK;
        if (r->phase == PH_DRAIN && (active == 0 || now >= t_end))
            break;
        while (r->nready > 0 && r->phase != PH_DRAIN)
            start_request(r, r->ready[--r->nready]);
        if (r->nready > 0) /* a request ended at once: go round again without waiting */
            continue;
        double until = next_tick;
        if (r->phase != PH_DRAIN && (r->phase == PH_WARMUP ? t_w : t_e) < until)
            until = r->phase == PH_WARMUP ? t_w : t_e;
        int ms = (int)ceil((until - mono()) * 1e3);
        int n = epoll_wait(r->ep, evs, o->conns, ms < 0 ? 0 : ms);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            on_event(r, evs[i].data.ptr, evs[i].events);
    }
    free(evs);
    *cpu = cpu0 >= 0 && cpu1 >= 0 && r->requests ? (double)(cpu1 - cpu0) / (double)r->requests : -1;
    return e_real - w_real;
}

static void parse_addr(struct run *r, const char *spec)
{
    if (!strncmp(spec, "unix:", 5)) {
        struct sockaddr_un *un = (struct sockaddr_un *)&r->addr;
        if (strlen(spec + 5) >= sizeof un->sun_path)
            die("socket path too long: %s", spec + 5);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, spec + 5);
        r->addrlen = sizeof *un;
        return;
    }
    char host[256];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) - 4 : 0;
    if (strncmp(spec, "tcp:", 4) || !colon || colon < spec + 5 || hl >= sizeof host)
        die("--connect wants unix:/path or tcp:HOST:PORT, not %s", spec);
    memcpy(host, spec + 4, hl);
    host[hl] = '\0';
    if (host[0] == '[' && host[hl - 1] == ']') /* tcp:[::1]:9000 */
        memmove(host, host + 1, hl - 2), host[hl - 2] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc)
        die("%s: %s", spec, gai_strerror(rc));
    memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
    r->addrlen = ai->ai_addrlen;
    r->tcp = true;
    freeaddrinfo(ai);
}

static double num_arg(const char *name, const char *s, double min)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= min))
        die("%s: invalid value '%s'", name, s);
    return v;
}

static void add_pid(struct opts *o, const char *s)
{
    o->pids = xrealloc(o->pids, (size_t)(o->npids + 1) * sizeof *o->pids);
    o->pids[o->npids++] = (pid_t)num_arg("pid", s, 1);
}

static const char usage_text[] =
    "usage: corral-bench --proto uwsgi|scgi|fastcgi [--keep-conn]\n"
    "                    --connect unix:/path|tcp:HOST:PORT [-c CONNS=32] [-d SECONDS=5]\n"
    "                    [--warmup SECONDS=1] [--uri /path?query] [--method GET]\n"
    "                    [--body-size N] [--expect-status 200] [--expect-body-prefix STR]\n"
    "                    [--server-pid PID]... [--json]\n"
    "       corral-bench --cpu-of PID [PID...]\n";

static void parse_opts(struct opts *o, int argc, char **argv)
{
    /* clang-format off */
    static const struct option lo[] = {
        {"proto", 1, 0, 'P'}, {"keep-conn", 0, 0, 'k'}, {"connect", 1, 0, 'C'},
        {"conns", 1, 0, 'c'}, {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'},
        {"uri", 1, 0, 'u'}, {"method", 1, 0, 'm'}, {"body-size", 1, 0, 'b'},
        {"expect-status", 1, 0, 's'}, {"expect-body-prefix", 1, 0, 'x'},
        {"server-pid", 1, 0, 'p'}, {"json", 0, 0, 'j'}, {"cpu-of", 1, 0, 'U'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    /* clang-format on */
    *o = (struct opts){.conns = 32, .seconds = 5, .warmup = 1, .uri = "/", .method = "GET"};
    o->proto = (enum proto) - 1, o->expect_status = 200;
    for (int ch; (ch = getopt_long(argc, argv, "c:d:h", lo, NULL)) != -1;) {
        /* clang-format off */
        switch (ch) {
        case 'P':
            for (int i = 0; i < 3; i++)
                if (!strcmp(optarg, proto_names[i]))
                    o->proto = (enum proto)i;
            if ((int)o->proto < 0)
                die("--proto: uwsgi, scgi or fastcgi, not %s", optarg);
            break;
        case 'k': o->keep_conn = true; break;
        case 'C': o->connect = optarg; break;
        case 'c': o->conns = (int)num_arg("-c", optarg, 1); break;
        case 'd': o->seconds = num_arg("-d", optarg, 0.001); break;
        case 'w': o->warmup = num_arg("--warmup", optarg, 0); break;
        case 'u': o->uri = optarg; break;
        case 'm': o->method = optarg; break;
        case 'b': o->body_size = (size_t)num_arg("--body-size", optarg, 0); break;
        case 's': o->expect_status = (int)num_arg("--expect-status", optarg, 100); break;
        case 'x': o->prefix = optarg; break;
        case 'p': add_pid(o, optarg); break;
        case 'j': o->json = true; break;
        case 'U': o->cpu_of = true, add_pid(o, optarg); break;
        case 'h': fputs(usage_text, stdout); exit(0);
        default: fputs(usage_text, stderr); exit(2);
        }
        /* clang-format on */
    }
    for (int i = optind; o->cpu_of && i < argc; i++)
        add_pid(o, argv[i]);
    if (o->cpu_of)
        return;
    if (optind < argc || (int)o->proto < 0 || !o->connect) {
        fputs(usage_text, stderr);
        exit(2);
    }
    if (o->keep_conn && o->proto != P_FCGI)
        die("--keep-conn applies to fastcgi only (uwsgi and SCGI close after each response)");
    if (o->conns > 10000 || o->expect_status > 999)
        die("-c: at most 10000 connections; --expect-status: 100 to 999");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies. */
static double pct(const struct run *r, double p)
{
    size_t k = (size_t)ceil(p * (double)r->nlat);
    return r->nlat ? r->lat[k ? k - 1 : 0] : 0;
}

static void print_result(const struct run *r, double secs, double cpu, long long errors,
                         int starved, long long done_min, long long done_max)
{
    const struct opts *o = r->o;
    double rps = secs > 0 ? (double)r->requests / secs : 0;
    if (o->json) {
        printf("{\"proto\":\"%s\",\"keep_conn\":%s,\"conns\":%d,\"seconds\":%.3f,"
               "\"requests\":%lld,\"errors\":%lld,\"rps\":%.1f,\"p50_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"server_cpu_us_per_req\":",
               proto_names[o->proto], o->keep_conn ? "true" : "false", o->conns, secs, r->requests,
               errors, rps, pct(r, 0.50), pct(r, 0.99));
        if (cpu >= 0)
            printf("%.2f", cpu);
        else
            printf("null");
        /* Fairness: the fewest and the most requests one connection completed in the
         * window, and the 99.9th percentile of the latencies. */
        printf(",\"starved_conns\":%d,\"conn_done_min\":%lld,\"conn_done_max\":%lld,"
               "\"p999_ms\":%.3f,\"error_kinds\":{",
               starved, done_min, done_max, pct(r, 0.999));
        for (int e = 1; e < E_COUNT; e++)
            printf("%s\"%s\":%lld", e > 1 ? "," : "", err_names[e], r->err[e]);
        printf("}}\n");
        return;
    }
    printf("corral-bench: %s%s, %d connections, %s, %s %s\n", proto_names[o->proto],
           o->keep_conn ? " keep-conn" : "", o->conns, o->connect, o->method, o->uri);
    printf("  measured     %.2f s (after %.1f s warmup)\n", secs, o->warmup);
    printf("  requests     %lld (%.1f req/s)\n", r->requests, rps);
    printf("  latency      p50 %.3f ms, p99 %.3f ms\n", pct(r, 0.50), pct(r, 0.99));
    printf("  errors       %lld (", errors);
    for (int e = 1; e < E_COUNT; e++)
        printf("%s%s %lld", e > 1 ? ", " : "", err_names[e], r->err[e]);
    printf(")\n");
    if (starved)
        printf("  starved      %d of %d connections completed no request\n", starved, o->conns);
    printf("  per conn     %lld to %lld requests; p99.9 %.3f ms\n", done_min, done_max,
           pct(r, 0.999));
    if (cpu >= 0)
        printf("  server cpu   %.2f us/response\n", cpu);
    else if (o->npids)
        printf("  server cpu   unknown (server process gone, or no response)\n");
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(&o, argc, argv);
    if (o.cpu_of) {
        long long us = cpu_us(o.pids, o.npids);
        if (us < 0)
            die("--cpu-of: no such process");
        printf("%lld\n", us);
        free(o.pids);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < o.npids; i++)
        if (kill(o.pids[i], 0) < 0 && errno == ESRCH)
            die("--server-pid %d: no such process", (int)o.pids[i]);
    struct run r = {.o = &o, .head_cap = 16384 + (o.prefix ? strlen(o.prefix) : 0)};
    parse_addr(&r, o.connect);
    build_request(&r);
    if ((r.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1: %s", strerror(errno));
    r.conns = xrealloc(NULL, (size_t)o.conns * sizeof *r.conns);
    r.ready = xrealloc(NULL, (size_t)o.conns * sizeof *r.ready);
    for (int i = 0; i < o.conns; i++) {
        r.conns[i] = (struct conn){.fd = -1, .head = xrealloc(NULL, r.head_cap)};
        r.ready[r.nready++] = &r.conns[i];
    }
    double cpu, secs = run_loop(&r, &cpu);
    if (r.nlat)
        qsort(r.lat, r.nlat, sizeof *r.lat, cmp_double);
    long long errors = 0;
    int starved = 0;
    long long done_min = o.conns ? r.conns[0].done : 0, done_max = done_min;
    for (int e = 1; e < E_COUNT; e++)
        errors += r.err[e];
    for (int i = 0; i < o.conns; i++) {
        starved += r.conns[i].done == 0;
        if (r.conns[i].done < done_min)
            done_min = r.conns[i].done;
        if (r.conns[i].done > done_max)
            done_max = r.conns[i].done;
        conn_close(&r.conns[i]);
        free(r.conns[i].head);
    }
    print_result(&r, secs, cpu, errors, starved, done_min, done_max);
    free(r.conns), free(r.ready), free(r.lat), free(r.req.p), free(o.pids);
    close(r.ep);
    if (r.requests == 0)
        fprintf(stderr, "corral-bench: no response completed in the measured window\n");
    return errors || r.requests == 0 ? 1 : 0;
}
