/*
 * child.h — a short-lived child process that runs one function and reports
 * its failure as text: the checks that try an app's code away from the
 * process that asks (apps/app_native.c at start, master/master_reexec.c at
 * a reload).
 */
#ifndef CORRAL_CHILD_H
#define CORRAL_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* The child's work: 0 on success, or -1 with a message in msg. */
typedef int (*child_fn)(void *arg, char *msg, size_t msglen);

/*
 * Fork a child that runs FN(ARG) and exits 0 when it returns 0, or writes
 * FN's message into a pipe and exits 1. The child never returns into the
 * caller's code, and it is killed when the caller dies (PR_SET_PDEATHSIG),
 * so a check that hangs cannot outlive whoever waits for it. WHAT names the
 * check in errors. Returns 0 with the child's pid in *PID and the pipe's
 * read end (O_CLOEXEC | O_NONBLOCK: the message fits in the pipe, so it is
 * all there once the child has ended) in *FD, which the caller closes; or
 * -1 with the failing call in err.
 */
int child_run(child_fn fn, void *arg, const char *what, pid_t *pid, int *fd, char *err,
              size_t errlen);

/* Read what is in the pipe FD (up to LEN - 1 bytes; "" if nothing) into
 * OUT, NUL-terminated. Returns the length read. Does not block. */
size_t child_read_message(int fd, char *out, size_t len);

#endif
