/*
 * systemd.c — readiness notification and socket activation (see systemd.h).
 */
#include "systemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"

#define SYSTEMD_LISTEN_FDS_START 3

static void systemd_unset_listen(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* The NAMES entry of descriptor I (':'-separated), copied into OUT; "" when
 * there is none. */
static void systemd_fd_name(const char *names, int i, char *out, size_t outlen)
{
    out[0] = '\0';
    for (; names && i > 0; i--) {
        names = strchr(names, ':');
        if (names)
            names++;
    }
    if (!names)
        return;
    size_t len = strcspn(names, ":");
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, names, len);
    out[len] = '\0';
}

int systemd_listen_fds(systemd_take_fn *take, void *ctx, char *err, size_t errlen)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    if (!pid_s || !fds_s) {
        systemd_unset_listen();
        return 0;
    }
    char *end;
    long pid = strtol(pid_s, &end, 10);
    if (*end || pid != (long)getpid()) {
        systemd_unset_listen(); /* meant for another process */
        return 0;
    }
    long n = strtol(fds_s, &end, 10);
    if (*end || n < 0 || n > 1024) {
        snprintf(err, errlen, "LISTEN_FDS: expected a number of descriptors, got '%s'", fds_s);
        systemd_unset_listen();
        return -1;
    }
    const char *names = getenv("LISTEN_FDNAMES");
    int rc = 0;
    for (long i = 0; i < n; i++) {
        int fd = SYSTEMD_LISTEN_FDS_START + (int)i;
        char name[128], spec[160], why[256];
        systemd_fd_name(names, (int)i, name, sizeof(name));
        size_t plen = strcspn(name, ":");
        struct listen_addr addr;
        snprintf(spec, sizeof(spec), "%.*s:fd:%d", (int)plen, name, fd);
        if (listen_parse(spec, &addr, why, sizeof(why)) < 0) {
            snprintf(err, errlen,
                     "socket activation: descriptor %d is named '%s' (LISTEN_FDNAMES): expected "
                     "uwsgi, fastcgi, scgi or PROTO:NAME (FileDescriptorName= in the .socket "
                     "unit)", fd, name);
            rc = -1;
            break;
        }
        int taken = take(ctx, spec, why, sizeof(why));
        if (taken < 0) {
            snprintf(err, errlen, "socket activation: %s", why);
            rc = -1;
            break;
        }
        rc += taken;
    }
    systemd_unset_listen();
    return rc;
}

int systemd_notify_open(struct systemd_notify *n, char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path)
        return 0;
    size_t len = strlen(path);
    if (len < 2 || len >= sizeof(n->addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
        snprintf(err, errlen, "NOTIFY_SOCKET: expected an absolute path or @abstract name of "
                 "at most %zu bytes, got '%s'", sizeof(n->addr.sun_path) - 1, path);
        unsetenv("NOTIFY_SOCKET");
        return -1;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract: the length counts, not a NUL */
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    unsetenv("NOTIFY_SOCKET");
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0) {
        snprintf(err, errlen, "socket(AF_UNIX, SOCK_DGRAM) for NOTIFY_SOCKET failed: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}

int systemd_notify_send(const struct systemd_notify *n, const char *state)
{
    if (n->fd < 0)
        return 0;
    if (sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
               n->addr_len) < 0)
        return -errno;
    return 0;
}

void systemd_notify_close(struct systemd_notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}
