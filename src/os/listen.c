/*
 * listen.c — listener addresses, binding and queue depth (see listen.h).
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

enum { LISTENER_KIND = 1 };

static int listen_fail(char *err, size_t errlen, const char *fmt, const char *a)
{
    snprintf(err, errlen, fmt, a);
    return -1;
}

/* The address part ADDR of SPEC ("unix:...", "tcp:...", "fd:..."; AT_OK:
 * an fd:N@ADDR may follow) into OUT's family and fields. */
static int listen_parse_addr(const char *spec, const char *addr, bool at_ok,
                             struct listen_addr *out, char *err, size_t errlen)
{
    if (strncmp(addr, "unix:", 5) == 0) {
        const char *path = addr + 5;
        if (path[0] == '\0')
            return listen_fail(err, errlen, "expected a socket path after 'unix:' in '%s'",
                               spec);
        if (strlen(path) >= sizeof(out->path))
            return listen_fail(err, errlen,
                               "unix socket path too long (at most 107 bytes) in '%s'", spec);
        out->family = LISTEN_UNIX;
        strcpy(out->path, path);
        return 0;
    }
    if (strncmp(addr, "tcp:", 4) == 0) {
        const char *hp = addr + 4;
        const char *port;
        size_t hostlen;
        if (hp[0] == '[') {
            const char *close = strchr(hp, ']');
            if (!close || close[1] != ':')
                return listen_fail(err, errlen,
                                   "expected tcp:[IPv6]:PORT in '%s'", spec);
            hostlen = (size_t)(close - hp - 1);
            memcpy(out->host, hp + 1, hostlen < sizeof(out->host) ? hostlen : 0);
            port = close + 2;
        } else {
            const char *last = strrchr(hp, ':');
            if (!last)
                return listen_fail(err, errlen, "expected tcp:HOST:PORT in '%s'", spec);
            hostlen = (size_t)(last - hp);
            if (memchr(hp, ':', hostlen))
                return listen_fail(err, errlen,
                                   "an IPv6 address needs brackets: tcp:[::1]:PORT, in '%s'",
                                   spec);
            port = last + 1;
            if (hostlen < sizeof(out->host))
                memcpy(out->host, hp, hostlen);
        }
        if (hostlen == 0 || hostlen >= sizeof(out->host))
            return listen_fail(err, errlen, "expected a host name or address in '%s'", spec);
        char *end;
        long p = strtol(port, &end, 10);
        if (port[0] < '0' || port[0] > '9' || *end || p < 1 || p > 65535)
            return listen_fail(err, errlen, "expected a port from 1 to 65535 in '%s'", spec);
        snprintf(out->port, sizeof(out->port), "%ld", p);
        out->family = LISTEN_TCP;
        return 0;
    }
    if (strncmp(addr, "fd:", 3) == 0) {
        const char *n = addr + 3;
        char *end;
        long fd = strtol(n, &end, 10);
        if (n[0] < '0' || n[0] > '9' || (*end && *end != '@') || fd < 0 || fd > 1000000)
            return listen_fail(err, errlen, "expected a descriptor number after 'fd:' in '%s'",
                               spec);
        out->family = LISTEN_FD;
        out->fd = (int)fd;
        if (*end == '@') {
            if (!at_ok)
                return listen_fail(err, errlen, "expected unix: or tcp: after '@' in '%s'",
                                   spec);
            if (listen_parse_addr(spec, end + 1, false, out, err, errlen) < 0)
                return -1;
            if (out->family == LISTEN_FD)
                return listen_fail(err, errlen, "expected unix: or tcp: after '@' in '%s'",
                                   spec);
            out->bound = out->family;
            out->family = LISTEN_FD;
        }
        return 0;
    }
    return listen_fail(err, errlen,
                       "expected the address unix:/PATH, tcp:HOST:PORT or fd:N after the "
                       "protocol, in '%s'",
                       spec);
}

int listen_parse(const char *spec, struct listen_addr *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    out->bound = LISTEN_FD;
    const char *colon = strchr(spec, ':');
    if (!colon)
        return listen_fail(err, errlen,
                           "expected PROTO:ADDR (PROTO is uwsgi, fastcgi, scgi or http), got '%s'",
                           spec);
    out->codec = proto_by_name(spec, (size_t)(colon - spec));
    if (!out->codec)
        return listen_fail(err, errlen,
                           "expected the protocol uwsgi, fastcgi, scgi or http before ':', got '%s'",
                           spec);
    return listen_parse_addr(spec, colon + 1, true, out, err, errlen);
}

/* "PROTO:unix:PATH", "PROTO:tcp:HOST:PORT" (IPv6 in brackets) or
 * "PROTO:fd:N" for logs and status: an fd:N@ADDR one by its ADDR. */
static void listen_name(char *out, size_t len, const struct listen_addr *a)
{
    enum listen_family f = a->family == LISTEN_FD ? a->bound : a->family;
    switch (f) {
    case LISTEN_UNIX:
        snprintf(out, len, "%s:unix:%s", a->codec->name, a->path);
        break;
    case LISTEN_TCP:
        snprintf(out, len, strchr(a->host, ':') ? "%s:tcp:[%s]:%s" : "%s:tcp:%s:%s",
                 a->codec->name, a->host, a->port);
        break;
    case LISTEN_FD:
        snprintf(out, len, "%s:fd:%d", a->codec->name, a->fd);
        break;
    }
}

/* Is a server listening on this unix socket path right now? */
static int listen_unix_alive(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    int alive = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN;
    close(fd);
    return alive;
}

int listen_unix_bind(const char *path, unsigned mode, char *err, size_t errlen)
{
    struct stat st;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "unix socket path too long (at most 107 bytes): \"%s\"", path);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "bind(\"%s\") refused: the path exists and is not a socket",
                     path);
            return -1;
        }
        if (listen_unix_alive(path)) {
            snprintf(err, errlen,
                     "bind(\"%s\") refused: another server is listening on this socket", path);
            return -1;
        }
        unlink(path); /* stale: left by a server that died */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket(AF_UNIX) failed: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    /* The socket file gets MODE as bind creates it, through the umask: no
     * chmod(path) after it, which would follow a symbolic link swapped in
     * for the new file by a user who can write the directory. (The master
     * is single-threaded here; the umask is restored at once.) */
    mode_t old_mask = umask(~(mode_t)mode & 0777);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    int bind_errno = errno;
    umask(old_mask);
    if (rc < 0) {
        snprintf(err, errlen, "bind(\"%s\") failed: %s", path, strerror(bind_errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_open_unix(struct listener *l, unsigned mode, char *err, size_t errlen)
{
    int fd = listen_unix_bind(l->addr.path, mode, err, errlen);
    if (fd < 0)
        return -1;
    l->owns_path = true;
    l->fd = fd;
    return 0;
}

static int listen_open_tcp(struct listener *l, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(l->addr.host, l->addr.port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "getaddrinfo(\"%s\") failed: %s", l->addr.host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket() failed: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        snprintf(err, errlen, "bind(\"%s\") failed: %s", l->name, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    l->fd = fd;
    l->inet = true;
    return 0;
}

static int listen_adopt_fd(struct listener *l, char *err, size_t errlen)
{
    int fd = l->addr.fd, on = 0, type = 0;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0) {
        snprintf(err, errlen, "fd %d is not a socket: %s", fd, strerror(errno));
        return -1;
    }
    len = sizeof(type);
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (!on || type != SOCK_STREAM) {
        snprintf(err, errlen, "fd %d is not a listening stream socket", fd);
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        l->inet = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
    l->fd = fd;
    return 0;
}

int listen_open(struct listener *l, const struct listen_addr *addr, unsigned backlog,
                unsigned mode, char *err, size_t errlen)
{
    memset(l, 0, sizeof(*l));
    l->kind = LISTENER_KIND;
    l->fd = -1;
    l->addr = *addr;
    l->backlog = backlog;
    listen_name(l->name, sizeof(l->name), addr);
    if (addr->family == LISTEN_FD)
        return listen_adopt_fd(l, err, errlen);
    int rc = addr->family == LISTEN_UNIX ? listen_open_unix(l, mode, err, errlen)
                                         : listen_open_tcp(l, err, errlen);
    if (rc < 0)
        return -1;
    /* Non-blocking: the threads and processes that wake for one connection
     * race for it, and the losers must get EAGAIN, not sleep in accept. */
    fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
    if (listen(l->fd, (int)backlog) < 0) {
        snprintf(err, errlen, "listen(\"%s\") failed: %s", l->name, strerror(errno));
        listen_close(l, true);
        return -1;
    }
    return 0;
}

int listen_adopt(struct listener *l, const char *spec, int fd, unsigned backlog, bool owns_path,
                 char *err, size_t errlen)
{
    struct listen_addr addr;
    if (listen_parse(spec, &addr, err, errlen) < 0)
        return -1;
    /* Named as listen_open names it, so logs and status do not change;
     * the socket itself is checked as an inherited fd:N one is. */
    struct listen_addr as_fd = addr;
    as_fd.family = LISTEN_FD;
    as_fd.fd = fd;
    if (listen_open(l, &as_fd, backlog, 0, err, errlen) < 0)
        return -1;
    l->addr = addr;
    l->owns_path = owns_path && addr.family == LISTEN_UNIX;
    if (addr.family != LISTEN_FD)
        listen_name(l->name, sizeof(l->name), &addr);
    return 0;
}

/* The directory part of PATH into DIR (LEN bytes) and its last name into
 * *BASE ("." for a bare name). Returns 0, or -1 when it does not fit. */
static int listen_split(const char *path, char *dir, size_t len, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return snprintf(dir, len, ".") < (int)len ? 0 : -1;
    }
    *base = slash + 1;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= len)
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

/* The chown is done on the name inside the directory's descriptor with
 * AT_SYMLINK_NOFOLLOW: if a user who can write the directory swapped the
 * socket file for a symbolic link, only that link changes owner, never
 * its target. A name that is no socket any more is refused. (A hard link
 * to another user's file in its place is what fs.protected_hardlinks
 * forbids.) */
int listen_chown(const struct listener *l, long uid, long gid, char *err, size_t errlen)
{
    char dir[sizeof(l->addr.path)];
    const char *base;
    struct stat st;
    if (!l->owns_path)
        return 0;
    if (listen_split(l->addr.path, dir, sizeof(dir), &base) < 0 || !*base) {
        snprintf(err, errlen, "chown(\"%s\"): not a file name", l->addr.path);
        return -1;
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", dir, strerror(errno));
        return -1;
    }
    int rc = -1;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        snprintf(err, errlen, "stat(\"%s\") failed: %s", l->addr.path, strerror(errno));
    else if (!S_ISSOCK(st.st_mode))
        snprintf(err, errlen, "chown(\"%s\") refused: the file is no longer a socket",
                 l->addr.path);
    else if (fchownat(dfd, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
        snprintf(err, errlen, "chown(\"%s\", %ld, %ld) failed: %s", l->addr.path, uid, gid,
                 strerror(errno));
    else
        rc = 0;
    close(dfd);
    return rc;
}

void listen_close(struct listener *l, bool remove_path)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    /* After --uid/--gid the master may no longer write the socket's
     * directory: say so rather than leave a socket file silently (the next
     * start replaces a stale one). */
    if (remove_path && l->owns_path && unlink(l->addr.path) < 0 && errno != ENOENT)
        log_msg(LOG_WARN, "%s: could not remove the socket file %s: %s (uid %u); the next "
                "start replaces it", l->name, l->addr.path, strerror(errno), (unsigned)geteuid());
    l->owns_path = false;
}

/* Ask sock_diag for the receive queue of a listening unix socket: for a
 * listener it is the number of connections waiting to be accepted. */
static int listen_unix_queue(int fd, unsigned *depth)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -errno;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg = {
        .nlh = {.nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST},
        .req = {.sdiag_family = AF_UNIX, .udiag_states = 1u << 10 /* TCP_LISTEN */,
                .udiag_ino = (unsigned)st.st_ino, .udiag_show = UDIAG_SHOW_RQLEN,
                .udiag_cookie = {~0u, ~0u}},
    };
    int rc = -EIO;
    if (send(nl, &msg, sizeof(msg), 0) < 0) {
        rc = -errno;
        goto out;
    }
    long buf[1024];
    ssize_t n = recv(nl, buf, sizeof(buf), 0);
    if (n < 0) {
        rc = -errno;
        goto out;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
         h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
            break;
        struct unix_diag_msg *m = NLMSG_DATA(h);
        struct rtattr *a = (struct rtattr *)(m + 1);
        int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
        for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
            if (a->rta_type == UNIX_DIAG_RQLEN) {
                struct unix_diag_rqlen *q = RTA_DATA(a);
                *depth = q->udiag_rqueue;
                rc = 0;
                goto out;
            }
        }
    }
out:
    close(nl);
    return rc;
}

int listen_queue_depth(const struct listener *l, unsigned *depth)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_UNIX)
        return listen_unix_queue(l->fd, depth);
    struct tcp_info ti;
    len = sizeof(ti);
    if (getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return -errno;
    *depth = ti.tcpi_unacked; /* for a listener: the accept queue length */
    return 0;
}

void listen_peer_name(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    if (len == 0 || sa->sa_family == AF_UNIX) {
        memcpy(out, "unix", outlen >= 5 ? 5 : 0); /* every connection: no printf */
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, outlen, "?");
    }
}
