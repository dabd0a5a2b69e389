/*
 * cgi_spawn.c — starting one CGI script (see cgi_spawn.h).
 */
#include "cgi_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's stack: it runs on it until execve, while the parent waits
 * (CLONE_VFORK), so it may live in the parent's frame. */
#define CGI_SPAWN_STACK 32768

struct cgi_spawn_args {
    const char *path, *dir;
    char *const *envp;
    const struct cgi_limits *lim;
    int fds[3];     /* become 0, 1, 2 */
    int err;        /* the child's errno when it could not exec */
    const char *at; /* ... and the call that failed */
};

static int cgi_spawn_limit(int resource, rlim_t value)
{
    struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
    return setrlimit(resource, &rl);
}

/* In the child, on the parent's memory: only system calls, then execve. */
static int cgi_spawn_child(void *arg)
{
    struct cgi_spawn_args *a = arg;
    const struct cgi_limits *lim = a->lim;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (setpgid(0, 0) < 0) {
        a->at = "setpgid";
        goto fail;
    }
    /* Every disposition back to SIG_DFL, the C library's own signals too
     * (its sigaction refuses them; an inherited "ignore" would survive the
     * exec): the kernel's call with an all-zero action (SIG_DFL, no flags,
     * no mask, whatever the architecture's layout). */
    static const unsigned long dfl[8];
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, dfl, NULL, (size_t)(NSIG / 8));
    }
    if ((lim->as && cgi_spawn_limit(RLIMIT_AS, lim->as) < 0) ||
        (lim->cpu && cgi_spawn_limit(RLIMIT_CPU, lim->cpu) < 0) ||
        (lim->nproc && cgi_spawn_limit(RLIMIT_NPROC, lim->nproc) < 0) ||
        (lim->nofile && cgi_spawn_limit(RLIMIT_NOFILE, lim->nofile) < 0)) {
        a->at = "setrlimit";
        goto fail;
    }
    if (chdir(a->dir) < 0) {
        a->at = "chdir";
        goto fail;
    }
    for (int i = 0; i < 3; i++) {
        /* dup2 onto itself would keep close-on-exec: clear it instead. */
        int rc = a->fds[i] == i ? fcntl(i, F_SETFD, 0) : dup2(a->fds[i], i);
        if (rc < 0) {
            a->at = "dup2";
            goto fail;
        }
    }
    close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *argv[] = {(char *)a->path, NULL};
    execve(a->path, argv, a->envp);
    a->at = "execve";
fail:
    a->err = errno;
    _exit(127);
}

static void cgi_close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

void cgi_child_close(struct cgi_child *ch)
{
    int *fds[] = {&ch->pidfd, &ch->in_fd, &ch->out_fd, &ch->err_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int cgi_spawn(const char *path, const char *dir, char *const envp[], const struct cgi_limits *lim,
              struct cgi_child *ch, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe2: %s", strerror(errno));
        goto fail;
    }
    if (fcntl(in[1], F_SETFL, O_NONBLOCK) < 0 || fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(er[0], F_SETFL, O_NONBLOCK) < 0) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        goto fail;
    }
    struct cgi_spawn_args a = {
        .path = path, .dir = dir, .envp = envp, .lim = lim, .fds = {in[0], out[1], er[1]}};
    _Alignas(16) char stack[CGI_SPAWN_STACK];
    /* No handler of the worker may run on the child's side of the shared
     * memory: every signal is blocked around the clone; the child resets
     * the dispositions before it unblocks them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    pid_t pid = clone(cgi_spawn_child, stack + sizeof(stack),
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, &pidfd);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        snprintf(err, errlen, "clone: %s", strerror(clone_errno));
        goto fail;
    }
    if (a.err) {
        /* The child ran, could not exec, and has ended: reap it. */
        waitpid(pid, NULL, 0);
        close(pidfd);
        snprintf(err, errlen, "%s: %s", a.at, strerror(a.err));
        goto fail;
    }
    close(in[0]);
    close(out[1]);
    close(er[1]);
    ch->pid = pid;
    ch->pidfd = pidfd;
    ch->in_fd = in[1];
    ch->out_fd = out[0];
    ch->err_fd = er[0];
    return 0;
fail:
    cgi_close_pair(in);
    cgi_close_pair(out);
    cgi_close_pair(er);
    return -1;
}
