/*
 * listen.h — listener addresses: parsing "PROTO:ADDR", binding, inherited
 * descriptors, and reading a listener's queue depth from the kernel.
 */
#ifndef CORRAL_LISTEN_H
#define CORRAL_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "allow.h"
#include "protocols/protocol.h"

enum listen_family { LISTEN_UNIX, LISTEN_TCP, LISTEN_FD };

/* A parsed "PROTO:ADDR". */
struct listen_addr {
    const struct proto_codec *codec;
    enum listen_family family;
    char path[108];        /* LISTEN_UNIX: the socket path */
    char host[256];        /* LISTEN_TCP: host without brackets */
    char port[8];          /* LISTEN_TCP: decimal port */
    int fd;                /* LISTEN_FD: the inherited descriptor */
    /* LISTEN_FD given as fd:N@ADDR: LISTEN_UNIX or LISTEN_TCP, the address
     * (in path, or host and port) the descriptor is bound to, which names
     * the listener; LISTEN_FD otherwise. */
    enum listen_family bound;
};

/*
 * Parse SPEC: PROTO is uwsgi, fastcgi, scgi or http; ADDR is unix:/path,
 * tcp:HOST:PORT (HOST an IPv4 address, a name, or [IPv6]), fd:N, or
 * fd:N@unix:/path or fd:N@tcp:HOST:PORT (an inherited descriptor and the
 * address it is bound to, which then names the listener: how a pool's
 * master is handed its listeners, src/pools/pools_spawn.c).
 * Returns 0, or -1 with a message saying what was expected in err.
 */
int listen_parse(const char *spec, struct listen_addr *out, char *err,
                 size_t errlen);

/* A bound, listening socket. */
struct listener {
    int kind;                 /* first field: tells epoll data apart */
    int fd;
    struct listen_addr addr;
    char name[320];           /* "uwsgi:unix:/run/app.sock", for logs */
    unsigned backlog;
    bool owns_path;           /* we created the unix socket file */
    bool inet;                /* a TCP socket (tcp:, or an inherited one) */
    /* The peers a TCP listener accepts (--allow-from), set by the caller
     * after listen_open; NULL = everyone (unix listeners). */
    const struct allow_list *allow;
    /* The peers whose X-Forwarded-* and Forwarded an http listener believes
     * (--trusted-proxies), set by the caller after listen_open; NULL =
     * nobody. */
    const struct allow_list *trusted;
    struct allow_ratelimit refused; /* the "peer refused" log line, per process */
};

/*
 * Bind and listen. Unix sockets: a stale socket file left by a dead server
 * is replaced; one a live server listens on is refused; the mode is set to
 * MODE. fd:N: N must be a listening stream socket. Returns 0, or -1 with
 * the failing call, the object and strerror in err.
 */
int listen_open(struct listener *l, const struct listen_addr *addr,
                unsigned backlog, unsigned mode, char *err, size_t errlen);

/*
 * A listener from the previous image of a re-executed master: FD is
 * listening already (checked like fd:N), SPEC is what it was opened from,
 * OWNS_PATH whether its socket file is ours to remove. Returns 0, or -1
 * with the reason in err.
 */
int listen_adopt(struct listener *l, const char *spec, int fd, unsigned backlog, bool owns_path,
                 char *err, size_t errlen);

/*
 * Give the unix socket file of L (when corral created it) to UID:GID
 * (-1 keeps one), as --chown asks; call it after listen_open (which set
 * the mode) and before dropping privileges. A symbolic link (or anything
 * but a socket) found at the path is never followed: refused. Returns 0,
 * or -1 with the failing call, the path and strerror in err.
 */
int listen_chown(const struct listener *l, long uid, long gid, char *err, size_t errlen);

/*
 * Create and bind a unix stream socket at PATH (not yet listening), with the
 * file's mode set to MODE as bind creates it (through the umask: no path
 * operation follows). A stale socket file left by a dead server is
 * replaced; a path where a live server listens, or that is no socket, is
 * refused. Returns the descriptor (close-on-exec), or -1 with the failing
 * call, the path and strerror in err. Also used for the control socket.
 */
int listen_unix_bind(const char *path, unsigned mode, char *err, size_t errlen);

/* Close; remove the socket file if we created it and REMOVE_PATH. */
void listen_close(struct listener *l, bool remove_path);

/*
 * The number of connections waiting in the accept queue, read from the
 * kernel (TCP_INFO for TCP, sock_diag for unix sockets). Returns 0 and sets
 * *depth, or a negative errno when it cannot be read.
 */
int listen_queue_depth(const struct listener *l, unsigned *depth);

/* The peer of an accepted connection as text ("unix", "127.0.0.1:5555",
 * "[::1]:5555"), for logs. */
void listen_peer_name(const struct sockaddr *sa, socklen_t len, char *out,
                      size_t outlen);

#endif
