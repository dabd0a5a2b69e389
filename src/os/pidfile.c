/*
 * pidfile.c — the locked --pidfile (see pidfile.h).
 */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static int pidfile_held = -1;

/* In a forked child (a worker, the import check): the lock is the
 * master's alone. */
static void pidfile_atfork_child(void)
{
    if (pidfile_held >= 0)
        close(pidfile_held);
    pidfile_held = -1;
}

static void pidfile_register_atfork(void)
{
    static bool registered;
    if (!registered && pthread_atfork(NULL, NULL, pidfile_atfork_child) == 0)
        registered = true;
}

/* FD is a regular file with one link: no FIFO, device, or hard link to
 * some other file planted at the path. */
static int pidfile_check(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "the pidfile \"%s\": fstat failed: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        snprintf(err, errlen, "the pidfile \"%s\" is refused: not a regular file with one link",
                 path);
        return -1;
    }
    return 0;
}

int pidfile_lock(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "the pidfile \"%s\": open failed: %s%s", path, strerror(errno),
                 errno == ELOOP ? " (a symbolic link is never followed)" : "");
        return -1;
    }
    if (pidfile_check(fd, path, err, errlen) < 0)
        goto fail;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, errlen, "the pidfile \"%s\" is locked by a running server (pid %s)",
                     path, buf[0] ? buf : "unknown");
        else
            snprintf(err, errlen, "the pidfile \"%s\": flock failed: %s", path, strerror(e));
        goto fail;
    }
    /* Only now, with the lock held, is its content ours to replace. */
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "writing the pidfile \"%s\" failed: %s", path, strerror(errno));
        goto fail;
    }
    pidfile_register_atfork();
    pidfile_held = fd;
    return 0;
fail:
    close(fd);
    return -1;
}

int pidfile_adopt(int fd, const char *path, char *err, size_t errlen)
{
    /* flock again on the same open file description converts our own lock;
     * it fails only if FD is not the one we hold. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "the pidfile \"%s\" (fd %d) of the previous image: %s", path, fd,
                 strerror(errno));
        close(fd);
        return -1;
    }
    pidfile_register_atfork();
    pidfile_held = fd;
    return 0;
}

int pidfile_fd(void)
{
    return pidfile_held;
}

void pidfile_remove(const char *path)
{
    struct stat held, now;
    if (pidfile_held < 0)
        return;
    if (fstat(pidfile_held, &held) == 0 && lstat(path, &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino && unlink(path) < 0)
        log_msg(LOG_WARN, "could not remove the pidfile %s: %s (uid %u)", path, strerror(errno),
                (unsigned)geteuid());
    close(pidfile_held);
    pidfile_held = -1;
}
