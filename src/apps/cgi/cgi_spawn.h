/*
 * cgi_spawn.h — starting one CGI script from a multi-threaded worker.
 *
 * clone(2) with CLONE_VM | CLONE_VFORK, as posix_spawn does, never fork(2):
 * nothing of the worker (its threads, its locks, an embedded interpreter)
 * is copied or run in the child, which only sets up and execs while the
 * calling thread waits. The child gets: its own process group (so the
 * script and whatever it starts are signalled together), PR_SET_PDEATHSIG
 * (a worker that dies takes its scripts' leaders along), every signal at
 * its default disposition and none blocked, the rlimits given, the
 * script's directory as working directory, the three pipes as fds 0, 1 and
 * 2 and no other fd (close_range; every fd of corral is close-on-exec as
 * well). CLONE_PIDFD gives a descriptor that becomes readable when the
 * script ends, to poll beside the pipes.
 */
#ifndef CORRAL_CGI_SPAWN_H
#define CORRAL_CGI_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cgi_limits {
    uint64_t as;     /* RLIMIT_AS bytes; 0 = inherited */
    unsigned cpu;    /* RLIMIT_CPU seconds; 0 = inherited */
    unsigned nproc;  /* RLIMIT_NPROC; 0 = inherited */
    unsigned nofile; /* RLIMIT_NOFILE; 0 = inherited */
};

/* A running script: the caller owns the fds and must reap PID. */
struct cgi_child {
    pid_t pid;  /* also its process group */
    int pidfd;  /* readable once the script has ended */
    int in_fd;  /* its stdin (write end, non-blocking) */
    int out_fd; /* its stdout (read end, non-blocking) */
    int err_fd; /* its stderr (read end, non-blocking) */
};

/*
 * Start PATH in DIR with ENVP (NULL-terminated "NAME=VALUE") and LIM.
 * Returns 0 with *CH filled, or -1 with the failing call and errno's text in
 * ERR (nothing is left running or open).
 */
int cgi_spawn(const char *path, const char *dir, char *const envp[], const struct cgi_limits *lim,
              struct cgi_child *ch, char *err, size_t errlen);

/* Close what the caller still holds of CH (-1 fds are skipped). */
void cgi_child_close(struct cgi_child *ch);

#endif
