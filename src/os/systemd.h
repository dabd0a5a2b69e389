/*
 * systemd.h — the two systemd protocols corral speaks, without libsystemd:
 *
 * Readiness (Type=notify): datagrams such as "READY=1\nSTATUS=...\nMAINPID=N"
 * sent to the AF_UNIX SOCK_DGRAM socket named by $NOTIFY_SOCKET (an
 * abstract socket when the name starts with '@').
 *
 * Socket activation: descriptors 3 .. 3+$LISTEN_FDS-1 are listening
 * sockets passed by the service manager when $LISTEN_PID is our pid, named
 * in $LISTEN_FDNAMES (':'-separated, FileDescriptorName= in the .socket
 * unit). They become "PROTO:fd:N" listeners.
 */
#ifndef CORRAL_SYSTEMD_H
#define CORRAL_SYSTEMD_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

struct config;

/*
 * Take the sockets systemd passed: for each, append "PROTO:fd:N" to
 * c->listen (unless the list already names fd:N), the protocol given by
 * the descriptor's name: "uwsgi", "fastcgi", "scgi", or "PROTO:anything".
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are then removed from the
 * environment, so workers and the app never see them. Variables meant for
 * another process (LISTEN_PID is not ours) are removed and ignored.
 * Returns the number of sockets taken, or -1 with a message in err.
 */
int systemd_listen_fds(struct config *c, char *err, size_t errlen);

/* The notify socket of the service manager; fd -1 = none (not started by
 * systemd with Type=notify). */
struct systemd_notify {
    int fd;
    struct sockaddr_un addr;
    socklen_t addr_len;
};

/*
 * Read $NOTIFY_SOCKET into *n and remove it from the environment (the app
 * must not speak for corral). Returns 0 (n->fd is -1 when the variable is
 * not set), or -1 with a message in err when it is set but unusable.
 */
int systemd_notify_open(struct systemd_notify *n, char *err, size_t errlen);

/*
 * Send STATE ("READY=1\nSTATUS=...") as one datagram. Does nothing when
 * n->fd is -1. Returns 0 or a negative errno. Never blocks.
 */
int systemd_notify_send(const struct systemd_notify *n, const char *state);

void systemd_notify_close(struct systemd_notify *n);

#endif
