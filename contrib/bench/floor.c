/*
 * corral-floor: the minimal canned-response server, the floor for CPU per response.
 *
 *   corral-floor --proto uwsgi|scgi|fastcgi --listen /path.sock [--processes N=2]
 *
 * Binds a unix socket (a stale socket file is replaced; its mode follows the umask), forks N
 * processes that share it, and answers every request with "Hello, World!":
 *   uwsgi    "HTTP/1.1 200 OK" + Content-Type + Content-Length + body, then close;
 *   scgi     the same head with "Status: 200 OK" (CGI style), then close;
 *   fastcgi  one STDOUT record (CGI head + body), an empty STDOUT and END_REQUEST in one
 *            write; the connection is kept if BEGIN_REQUEST set FCGI_KEEP_CONN, else closed.
 * Each process is a single-threaded epoll loop. It parses only enough framing to know where a
 * request ends (uwsgi datasize + CONTENT_LENGTH, SCGI netstring + CONTENT_LENGTH, FastCGI
 * records up to the empty STDIN) and reads the whole body, so closing never resets the peer.
 * The ideal request costs accept, one read, one write and one close. It logs nothing;
 * management records (FastCGI requestId 0) are skipped unanswered.
 *
 * SIGTERM or SIGINT stops everything: the parent kills its children, removes the socket and
 * exits 0. Children die with the parent (PR_SET_PDEATHSIG). If a child dies on its own the
 * parent stops the rest and exits 1, since the figures would no longer mean anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

enum proto { P_UWSGI, P_SCGI, P_FCGI };

/* What feeding bytes to a request parser found. */
enum feed { F_MORE, F_DONE, F_BAD };

#define HEAD_MAX (1u << 20) /* largest SCGI head accepted; uwsgi is bounded by 16 bits */
#define BUF_INIT 16384

static const char HTTP_RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 13\r\n\r\nHello, World!";
static const char CGI_RESP[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 13\r\n\r\nHello, World!";

/*
 * Per-connection state, in a table indexed by fd. The buffer is kept across connections on the
 * same fd number, so the request path allocates nothing after warm-up.
 */
struct fconn {
    uint8_t *buf;
    size_t len, cap;
    bool registered;
    /* uwsgi / SCGI */
    bool head_done;
    uint64_t body_left;
    /* FastCGI record stream */
    uint8_t hdr[8], begin[8];
    unsigned hhave, bhave;
    uint32_t content_left, pad_left;
    bool in_request, keep;
    uint16_t rid;
};

static enum proto proto;
static struct fconn *conns;
static size_t nconns;
static uint8_t fcgi_resp[256];
static size_t fcgi_resp_len;

static void fail(const char *what, const char *obj)
{
    fprintf(stderr, "corral-floor: %s(%s) failed: %s\n", what, obj, strerror(errno));
    exit(1);
}

static void fcgi_put(size_t *off, unsigned type, const void *content, size_t len)
{
    size_t pad = (8 - len % 8) % 8;
    uint8_t h[8] = {1, (uint8_t)type, 0, 1, (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)pad, 0};
    memcpy(fcgi_resp + *off, h, 8);
    memcpy(fcgi_resp + *off + 8, content, len);
    memset(fcgi_resp + *off + 8 + len, 0, pad);
    *off += 8 + len + pad;
}

/* STDOUT(head+body), empty STDOUT, END_REQUEST(appStatus 0, REQUEST_COMPLETE), requestId 1. */
static void fcgi_build(void)
{
    static const uint8_t end[8] = {0};
    size_t off = 0;
    fcgi_put(&off, 6, CGI_RESP, sizeof CGI_RESP - 1);
    fcgi_put(&off, 6, "", 0);
    fcgi_put(&off, 3, end, 8);
    fcgi_resp_len = off;
}

/* Parses a decimal CONTENT_LENGTH value; empty is 0. Returns -1 when malformed. */
static int64_t parse_cl(const uint8_t *p, size_t n)
{
    int64_t v = 0;
    if (n > 15)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static bool is_cl(const uint8_t *k, size_t n)
{
    return n == 14 && !memcmp(k, "CONTENT_LENGTH", 14);
}

/* Makes room for need bytes of head; false when over the limit or out of memory. */
static bool reserve(struct fconn *c, size_t need)
{
    if (need <= c->cap)
        return true;
    if (need > HEAD_MAX + 16)
        return false;
    uint8_t *p = realloc(c->buf, need);
    if (!p)
        return false;
    c->buf = p, c->cap = need;
    return true;
}

/*
 * After the head: consumes body bytes (the head's leftover, then each read); the buffer is
 * reused from its start since the body is discarded.
 */
static enum feed body_feed(struct fconn *c, size_t extra)
{
    c->len = 0;
    if (extra >= c->body_left)
        return F_DONE;
    c->body_left -= extra;
    return F_MORE;
}

/* uwsgi: 4-byte header (modifier1, datasize LE, modifier2), vars, body of CONTENT_LENGTH. */
static enum feed uwsgi_feed(struct fconn *c, size_t n)
{
    if (c->head_done)
        return body_feed(c, n);
    if (c->len < 4)
        return F_MORE;
    size_t ds = c->buf[1] | (size_t)c->buf[2] << 8, end = 4 + ds;
    if (c->len < end)
        return reserve(c, end) ? F_MORE : F_BAD;
    int64_t cl = 0;
    for (size_t i = 4; i < end;) {
        if (end - i < 2)
            return F_BAD;
        size_t kl = c->buf[i] | (size_t)c->buf[i + 1] << 8;
        if (end - i - 2 < kl + 2)
            return F_BAD;
        const uint8_t *k = c->buf + i + 2;
        i += 2 + kl;
        size_t vl = c->buf[i] | (size_t)c->buf[i + 1] << 8;
        if (end - i - 2 < vl)
            return F_BAD;
        if (is_cl(k, kl) && (cl = parse_cl(c->buf + i + 2, vl)) < 0)
            return F_BAD;
        i += 2 + vl;
    }
    c->head_done = true;
    c->body_left = (uint64_t)cl;
    return body_feed(c, c->len - end);
}

/* SCGI: netstring "LEN:" name NUL value NUL ... "," then a body of CONTENT_LENGTH. */
static enum feed scgi_feed(struct fconn *c, size_t n)
{
    if (c->head_done)
        return body_feed(c, n);
    size_t i = 0, len = 0;
    for (; i < c->len && c->buf[i] != ':'; i++) {
        if (c->buf[i] < '0' || c->buf[i] > '9' || i > 7 || (i == 0 && c->buf[i] == '0'))
            return F_BAD;
        len = len * 10 + (size_t)(c->buf[i] - '0');
    }
    if (i == c->len)
        return F_MORE;
    size_t start = i + 1, end = start + len + 1;
    if (i == 0 || len > HEAD_MAX)
        return F_BAD;
    if (c->len < end)
        return reserve(c, end) ? F_MORE : F_BAD;
    if (c->buf[end - 1] != ',')
        return F_BAD;
    int64_t cl = 0;
    for (size_t p = start; p < end - 1;) {
        const uint8_t *k = c->buf + p, *z = memchr(k, 0, end - 1 - p);
        if (!z)
            return F_BAD;
        const uint8_t *v = z + 1, *vz = memchr(v, 0, (size_t)(c->buf + end - 1 - v));
        if (!vz)
            return F_BAD;
        if (is_cl(k, (size_t)(z - k)) && (cl = parse_cl(v, (size_t)(vz - v))) < 0)
            return F_BAD;
        p = (size_t)(vz + 1 - c->buf);
    }
    c->head_done = true;
    c->body_left = (uint64_t)cl;
    return body_feed(c, c->len - end);
}

/*
 * FastCGI: streams records out of p[0..n) without buffering them. Returns F_DONE at the empty
 * STDIN of the current request, with *used telling how far it got (the caller answers and
 * feeds the rest); F_MORE when all was consumed; F_BAD on a malformed stream.
 */
static enum feed fcgi_feed(struct fconn *c, const uint8_t *p, size_t n, size_t *used)
{
    size_t i = 0;
    for (;;) {
        if (c->hhave < 8) {
            size_t take = 8 - c->hhave < n - i ? 8 - c->hhave : n - i;
            memcpy(c->hdr + c->hhave, p + i, take);
            c->hhave += (unsigned)take, i += take;
            if (c->hhave < 8)
                break;
            if (c->hdr[0] != 1)
                return F_BAD;
            c->content_left = (uint32_t)c->hdr[4] << 8 | c->hdr[5];
            c->pad_left = c->hdr[6];
            c->bhave = 0;
        }
        uint8_t type = c->hdr[1];
        uint16_t rid = (uint16_t)(c->hdr[2] << 8 | c->hdr[3]);
        size_t take = c->content_left < n - i ? c->content_left : n - i;
        if (type == 1 && c->bhave < 8) { /* BEGIN_REQUEST body: role(2) flags(1) */
            size_t b = take < 8 - c->bhave ? take : 8 - c->bhave;
            memcpy(c->begin + c->bhave, p + i, b);
            c->bhave += (unsigned)b;
        }
        c->content_left -= (uint32_t)take, i += take;
        take = c->pad_left < n - i ? c->pad_left : n - i;
        c->pad_left -= (uint32_t)take, i += take;
        if (c->content_left || c->pad_left)
            break;
        c->hhave = 0; /* the record is complete */
        if (type == 1 && rid != 0) {
            if (c->in_request || c->bhave < 3)
                return F_BAD;
            c->in_request = true;
            c->keep = c->begin[2] & 1;
            c->rid = rid;
        } else if (type == 5 && rid == c->rid && c->in_request && c->hdr[5] == 0 &&
                   c->hdr[4] == 0) {
            c->in_request = false;
            *used = i;
            return F_DONE;
        }
        if (i == n)
            break;
    }
    *used = i;
    return F_MORE;
}

/* Writes the whole response; a full socket buffer (never seen with this size) is waited out. */
static bool write_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p = (const uint8_t *)p + w, n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, 10000) <= 0)
                return false;
        } else if (w < 0 && errno != EINTR) {
            return false;
        }
    }
    return true;
}

static void conn_close(int fd)
{
    conns[fd].registered = false;
    close(fd); /* also leaves the epoll set */
}

/* Answers the FastCGI request that just ended; false when the connection must close. */
static bool fcgi_answer(int fd, struct fconn *c)
{
    bool ok;
    if (c->rid == 1) {
        ok = write_all(fd, fcgi_resp, fcgi_resp_len);
    } else {
        uint8_t out[sizeof fcgi_resp];
        memcpy(out, fcgi_resp, fcgi_resp_len);
        for (size_t off = 0; off < fcgi_resp_len;) {
            out[off + 2] = (uint8_t)(c->rid >> 8), out[off + 3] = (uint8_t)c->rid;
            off += 8 + ((size_t)out[off + 4] << 8 | out[off + 5]) + out[off + 6];
        }
        ok = write_all(fd, out, fcgi_resp_len);
    }
    return ok && c->keep;
}

/*
 * Serves a readable connection with one read (the epoll set is level-triggered, so anything
 * left is reported again). Called straight after accept too: when the request is already there
 * the connection never enters the epoll set.
 */
static void on_readable(int ep, int fd)
{
    struct fconn *c = &conns[fd];
    ssize_t n;
    do
        n = read(fd, c->buf + c->len, c->cap - c->len);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        conn_close(fd);
        return;
    }
    if (n > 0) {
        if (proto == P_FCGI) {
            size_t off = 0, used;
            while (off < (size_t)n) {
                enum feed f = fcgi_feed(c, c->buf + off, (size_t)n - off, &used);
                off += used;
                if (f == F_BAD || (f == F_DONE && !fcgi_answer(fd, c))) {
                    conn_close(fd);
                    return;
                }
                if (f == F_MORE)
                    break;
            }
        } else {
            c->len += (size_t)n;
            enum feed f = proto == P_UWSGI ? uwsgi_feed(c, (size_t)n) : scgi_feed(c, (size_t)n);
            if (f == F_DONE) {
                write_all(fd, proto == P_UWSGI ? HTTP_RESP : CGI_RESP,
                          (proto == P_UWSGI ? sizeof HTTP_RESP : sizeof CGI_RESP) - 1);
                conn_close(fd);
                return;
            }
            if (f == F_BAD) {
                conn_close(fd);
                return;
            }
        }
    }
    if (!c->registered) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            conn_close(fd);
            return;
        }
        c->registered = true;
    }
}

static void on_accept(int ep, int lfd)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a peer that gave up: nothing to do either way */
        if ((size_t)fd >= nconns) {
            size_t n = (size_t)fd * 2 + 64;
            struct fconn *t = realloc(conns, n * sizeof *t);
            if (!t) {
                close(fd);
                return;
            }
            memset(t + nconns, 0, (n - nconns) * sizeof *t);
            conns = t, nconns = n;
        }
        struct fconn *c = &conns[fd];
        if (!c->buf && !(c->buf = malloc(BUF_INIT))) {
            close(fd);
            continue;
        }
        if (!c->cap)
            c->cap = BUF_INIT;
        uint8_t *buf = c->buf;
        size_t cap = c->cap;
        *c = (struct fconn){.buf = buf, .cap = cap};
        on_readable(ep, fd);
    }
}

/* A child's whole life: never returns. */
static void worker(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        fail("epoll", "listener");
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == lfd)
                on_accept(ep, lfd);
            else
                on_readable(ep, evs[i].data.fd);
        }
    }
}

static void usage(FILE *f)
{
    fputs("usage: corral-floor --proto uwsgi|scgi|fastcgi --listen /path.sock "
          "[--processes N=2]\n",
          f);
}

static void stop_all(const pid_t *kids, int n)
{
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"proto", 1, 0, 'P'},
                                       {"listen", 1, 0, 'l'},
                                       {"processes", 1, 0, 'p'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *path = NULL, *pname = NULL;
    int nproc = 2, ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'P')
            pname = optarg;
        else if (ch == 'l')
            path = optarg;
        else if (ch == 'p')
            nproc = atoi(optarg);
        else {
            usage(ch == 'h' ? stdout : stderr);
            return ch == 'h' ? 0 : 2;
        }
    }
    if (!pname || !path || optind < argc || nproc < 1 || nproc > 1024) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(pname, "uwsgi"))
        proto = P_UWSGI;
    else if (!strcmp(pname, "scgi"))
        proto = P_SCGI;
    else if (!strcmp(pname, "fastcgi"))
        proto = P_FCGI;
    else {
        fprintf(stderr, "corral-floor: --proto: uwsgi, scgi or fastcgi, not %s\n", pname);
        return 2;
    }
    fcgi_build();

    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        fprintf(stderr, "corral-floor: socket path too long: %s\n", path);
        return 2;
    }
    strcpy(sun.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0)
        fail("unlink", path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        fail("socket", path);
    if (bind(lfd, (struct sockaddr *)&sun, sizeof sun) < 0)
        fail("bind", path);
    if (listen(lfd, 1024) < 0)
        fail("listen", path);

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t parent = getpid(), *kids = calloc((size_t)nproc, sizeof *kids);
    if (!kids)
        fail("calloc", "children");
    for (int i = 0; i < nproc; i++) {
        kids[i] = fork();
        if (kids[i] < 0) {
            int e = errno;
            stop_all(kids, i);
            unlink(path);
            errno = e;
            fail("fork", "worker");
        }
        if (kids[i] == 0) {
            sigprocmask(SIG_UNBLOCK, &set, NULL);
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(1);
            worker(lfd);
        }
    }
    close(lfd);
    int status = 0;
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig != SIGCHLD)
            continue;
        pid_t dead;
        bool lost = false;
        while ((dead = waitpid(-1, NULL, WNOHANG)) > 0)
            for (int i = 0; i < nproc; i++)
                if (kids[i] == dead)
                    kids[i] = 0, lost = true;
        if (lost) {
            fprintf(stderr, "corral-floor: a worker died; stopping\n");
            status = 1;
            break;
        }
    }
    stop_all(kids, nproc);
    free(kids);
    unlink(path);
    return status;
}
