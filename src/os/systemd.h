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

/* Given each passed socket as its listener spec "PROTO:fd:N": returns 1
 * when it took it, 0 when it did not (already listed), or -1 with the
 * reason in err. */
typedef int systemd_take_fn(void *ctx, const char *spec, char *err, size_t errlen);

/*
 * The sockets systemd passed: each one is handed to TAKE(CTX, ...) as
 * "PROTO:fd:N", the protocol given by the descriptor's name: "uwsgi",
 * "fastcgi", "scgi", or "PROTO:anything" (a name that is none of these is
 * an error). LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are then removed
 * from the environment, so workers and the app never see them. Variables
 * meant for another process (LISTEN_PID is not ours) are removed and
 * ignored. Returns the number of sockets TAKE took, or -1 with a message
 * in err ("socket activation: " and TAKE's reason when TAKE failed).
 */
int systemd_listen_fds(systemd_take_fn *take, void *ctx, char *err, size_t errlen);

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
