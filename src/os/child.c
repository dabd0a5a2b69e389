/*
 * child.c — a child process that runs one function and reports its failure
 * as text (see child.h).
 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int child_run(child_fn fn, void *arg, const char *what, pid_t *pid, int *fd, char *err,
              size_t errlen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "%s: pipe failed: %s", what, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t p = fork();
    if (p < 0) {
        snprintf(err, errlen, "%s: fork failed: %s", what, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (p == 0) {
        /* Dies with the parent; a parent that died before prctl took
         * effect left this child to init: end at once. The message fits
         * in the empty pipe, so the write does not block. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        close(fds[0]);
        char msg[1024] = "";
        int rc = fn(arg, msg, sizeof(msg));
        if (rc < 0 && write(fds[1], msg, strlen(msg)) < 0)
            _exit(2);
        _exit(rc < 0 ? 1 : 0);
    }
    close(fds[1]);
    *pid = p;
    *fd = fds[0];
    return 0;
}

size_t child_read_message(int fd, char *out, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t got = read(fd, out + n, len - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    out[n] = '\0';
    return n;
}
