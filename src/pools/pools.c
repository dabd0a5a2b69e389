/*
 * pools.c — the top master's loop (see pools.h): one epoll_wait on a
 * signalfd, the datagram socket the pool masters send READY=1 to (their
 * NOTIFY_SOCKET, with the sender's pid from the kernel) and the control
 * socket, woken at least every 100 ms for the back-off timers. It never
 * blocks and runs no app code.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "os/pidfile.h"
#include "pools.h"
#include "pools_state.h"

enum { POOLS_TAG_SIGNAL = 1, POOLS_TAG_NOTIFY = 2, POOLS_TAG_CONTROL = 16 };

#define POOLS_TICK_MS 100
#define POOLS_BACKOFF_MAX_MS 30000

/* -t of one pool in a child, as `corral -t -c FILE --pool-name NAME`:
 * its app loads there (a dlopen, a Python import), never in the top
 * master. Its messages go to stderr. Returns 0 when it passed. */
static int pools_check_app(const struct pools *ps, const char *name)
{
    char *argv[] = {ps->argv[0], "-t", "-c", ps->file, "--pool-name", (char *)name, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO); /* "the configuration is valid", once per pool */
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* -t: every pool's configuration, then its app. */
static int pools_check(struct pools *ps)
{
    int status = 0;
    for (size_t i = 0; i < ps->top->pools_count; i++) {
        struct config c;
        char err[1024];
        const char *name = ps->top->pools[i];
        if (pools_load_pool(ps, name, &c, err, sizeof(err)) < 0) {
            fprintf(stderr, "corral: pool %s: %s\n", name, err);
            status = 1;
        } else if (pools_check_app(ps, name) < 0) {
            fprintf(stderr, "corral: pool %s: its app does not load (see above)\n", name);
            status = 1;
        }
        config_free(&c);
    }
    if (status == 0)
        printf("corral: the configuration in %s is valid (%zu pools)\n", ps->file,
               ps->top->pools_count);
    return status;
}

/* The notify socket: an abstract datagram socket named after this pid,
 * receiving the sender's credentials. Returns 0 or -1 (logged). */
static int pools_notify_open(struct pools *ps)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int len = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "corral-pools-%d", (int)getpid());
    snprintf(ps->notify_name, sizeof(ps->notify_name), "@%s", a.sun_path + 1);
    int one = 1;
    ps->notifyfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ps->notifyfd < 0 ||
        setsockopt(ps->notifyfd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
        bind(ps->notifyfd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len)) < 0) {
        log_msg(LOG_ERROR, "the pools' notify socket %s: %s", ps->notify_name, strerror(errno));
        return -1;
    }
    return 0;
}

static struct pool *pools_by_pid(struct pools *ps, pid_t pid, size_t *index)
{
    for (size_t i = 0; pid > 0 && i < ps->n; i++) {
        if (ps->p[i].pid == pid) {
            *index = i;
            return &ps->p[i];
        }
    }
    return NULL;
}

/* Datagrams on the notify socket: READY=1 from a pool's master. */
static void pools_notify_read(struct pools *ps)
{
    for (;;) {
        char buf[512];
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } ctl;
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(ps->notifyfd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return;
        buf[n] = '\0';
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS)
            continue;
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        size_t i;
        struct pool *p = pools_by_pid(ps, cred.pid, &i);
        bool ready = strncmp(buf, "READY=1", 7) == 0 || strstr(buf, "\nREADY=1");
        if (!p || !ready || p->state != POOLS_STARTING)
            continue;
        p->state = POOLS_SERVING;
        p->ever_ready = true;
        p->failures = 0;
        log_msg(LOG_INFO, "pool %s: serving (master pid %d)", p->name, (int)p->pid);
    }
}

/* "exited with status 1", "was killed by signal 9". */
static void pools_describe(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(st));
}

/* A master was reaped: forget, restart, or start again after a back-off. */
static void pools_reaped(struct pools *ps, size_t i, int st)
{
    struct pool *p = &ps->p[i];
    char how[64];
    pools_describe(st, how, sizeof(how));
    pid_t pid = p->pid;
    bool was_serving = p->state == POOLS_SERVING;
    p->pid = 0;
    if (ps->stop_sig) {
        log_msg(LOG_INFO, "pool %s: master (pid %d) %s", p->name, (int)pid, how);
        return;
    }
    if (p->removed) {
        log_msg(LOG_INFO, "pool %s: master (pid %d) %s: the pool is gone", p->name, (int)pid, how);
        pools_forget(ps, i);
        return;
    }
    if (p->restart) {
        p->restart = false;
        log_msg(LOG_INFO, "pool %s: master (pid %d) %s: starting its new master", p->name, (int)pid,
                how);
        pools_start(ps, p);
        return;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        log_msg(LOG_WARN,
                "pool %s: master (pid %d) stopped (a stop command?): not started "
                "again until a reload",
                p->name, (int)pid);
        p->state = POOLS_FAILED;
        return;
    }
    p->failures = was_serving ? 1 : p->failures + 1;
    unsigned shift = p->failures - 1 < 5 ? p->failures - 1 : 5;
    uint64_t delay = (uint64_t)1000 << shift;
    if (delay > POOLS_BACKOFF_MAX_MS)
        delay = POOLS_BACKOFF_MAX_MS;
    p->respawn_at_ms = clock_now_ms() + delay;
    p->state = POOLS_WAITING;
    log_msg(LOG_ERROR, "pool %s: master (pid %d) %s %s: starting it again in %.1f s", p->name,
            (int)pid, how, was_serving ? "while serving" : "before it served",
            (double)delay / 1000.0);
}

static void pools_reap(struct pools *ps)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        size_t i;
        if (pools_by_pid(ps, pid, &i))
            pools_reaped(ps, i, st);
    }
}

static void pools_signal_read(struct pools *ps)
{
    struct signalfd_siginfo si;
    while (read(ps->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            if (!ps->stop_sig || si.ssi_signo != SIGTERM)
                ps->stop_sig = (int)si.ssi_signo;
            break;
        case SIGHUP:
            ps->reload_due = true;
            break;
        case SIGUSR1:
            ps->reopen_due = true;
            break;
        case SIGCHLD:
            pools_reap(ps);
            break;
        default:
            break;
        }
    }
}

/* Whether no pool has started and none may still: each one failed, or its
 * masters all exited before READY=1. */
static bool pools_none_started(const struct pools *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        const struct pool *p = &ps->p[i];
        if (p->ever_ready || p->state == POOLS_STARTING || p->state == POOLS_SERVING ||
            p->state == POOLS_STOPPING || (p->state == POOLS_WAITING && p->failures == 0))
            return false;
    }
    return true;
}

/* systemd (Type=notify): READY=1 once no pool is starting and one serves. */
static void pools_tell_ready(struct pools *ps)
{
    size_t serving = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->p[i].state == POOLS_STARTING)
            return;
        serving += ps->p[i].state == POOLS_SERVING;
    }
    if (!serving)
        return;
    char msg[256];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving: %zu of %zu pools\nMAINPID=%d", serving,
             ps->n, (int)getpid());
    int rc = systemd_notify_send(&ps->sysd, msg);
    if (rc < 0)
        log_msg(LOG_WARN, "sendto(NOTIFY_SOCKET) failed: %s", strerror(-rc));
    else if (ps->sysd.fd >= 0)
        log_msg(LOG_INFO, "%zu of %zu pools serving: told systemd READY=1", serving, ps->n);
    ps->ready_sent = true;
}

/* Once per turn: what the signals and commands asked, then the timers. */
static void pools_turn(struct pools *ps, int *sent_stop, bool *any_ready)
{
    if (ps->stop_sig && ps->stop_sig != *sent_stop) {
        *sent_stop = ps->stop_sig;
        log_msg(LOG_INFO, "stopping every pool (%s)",
                ps->stop_sig == SIGTERM ? "gracefully" : "now");
        systemd_notify_send(&ps->sysd, "STOPPING=1");
        for (size_t i = 0; i < ps->n; i++) {
            /* The masters drain their own copies of the listeners; ours
             * close now (unix socket files removed), as one master's do. */
            pools_unbind(&ps->p[i]);
            pools_signal(&ps->p[i], ps->stop_sig);
            if (ps->p[i].pid)
                ps->p[i].state = POOLS_STOPPING;
        }
    }
    if (ps->reload_due && !ps->stop_sig) {
        ps->reload_due = false;
        pools_reload(ps);
    }
    if (ps->reopen_due) {
        ps->reopen_due = false;
        log_reopen();
        for (size_t i = 0; i < ps->n; i++)
            pools_signal(&ps->p[i], SIGUSR1);
    }
    if (ps->ctl)
        control_tick(ps->ctl);
    uint64_t now = clock_now_ms();
    for (size_t i = 0; i < ps->n && !ps->stop_sig; i++) {
        struct pool *p = &ps->p[i];
        if (p->state == POOLS_WAITING && p->respawn_at_ms <= now)
            pools_start(ps, p);
        *any_ready = *any_ready || p->ever_ready;
    }
    if (!ps->ready_sent && !ps->stop_sig)
        pools_tell_ready(ps);
}

/* The loop; returns the exit status. */
static int pools_loop(struct pools *ps)
{
    int sent_stop = 0;
    bool any_ready = false;
    for (;;) {
        pools_turn(ps, &sent_stop, &any_ready);
        bool running = false;
        for (size_t i = 0; i < ps->n; i++)
            running = running || ps->p[i].pid > 0;
        if (ps->stop_sig && !running) {
            log_msg(LOG_INFO, "every pool has stopped");
            return 0;
        }
        if (!any_ready && !ps->stop_sig && pools_none_started(ps)) {
            log_msg(LOG_ERROR, "no pool started (see above): stopping");
            return 1;
        }
        struct epoll_event ev[16];
        int n = epoll_wait(ps->epfd, ev, 16, POOLS_TICK_MS);
        for (int k = 0; k < n; k++) {
            uint64_t tag = ev[k].data.u64;
            if (tag == POOLS_TAG_SIGNAL)
                pools_signal_read(ps);
            else if (tag == POOLS_TAG_NOTIFY)
                pools_notify_read(ps);
            else if (ps->ctl && control_owns(ps->ctl, tag))
                control_event(ps->ctl, tag, ev[k].events);
        }
    }
}

/* The signals, epoll, the notify and control sockets. Returns 0 or -1
 * (logged). */
static int pools_setup(struct pools *ps)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&set, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        (ps->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
        (ps->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        log_msg(LOG_ERROR, "signalfd or epoll_create1 failed: %s", strerror(errno));
        return -1;
    }
    /* systemd's socket first: it leaves the environment, and each pool
     * master gets ours instead (pools_spawn.c). */
    char nerr[256];
    if (systemd_notify_open(&ps->sysd, nerr, sizeof(nerr)) < 0)
        log_msg(LOG_WARN, "%s; going on without telling systemd", nerr);
    if (pools_notify_open(ps) < 0)
        return -1;
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = POOLS_TAG_SIGNAL};
    struct epoll_event nev = {.events = EPOLLIN, .data.u64 = POOLS_TAG_NOTIFY};
    if (epoll_ctl(ps->epfd, EPOLL_CTL_ADD, ps->sigfd, &sev) < 0 ||
        epoll_ctl(ps->epfd, EPOLL_CTL_ADD, ps->notifyfd, &nev) < 0) {
        log_msg(LOG_ERROR, "epoll_ctl failed: %s", strerror(errno));
        return -1;
    }
    if (ps->top->control) {
        char err[512];
        ps->ctl = control_open(ps->top->control, ps->top->control_chmod,
                               ps->top->control_timeout_ms, ps->epfd, POOLS_TAG_CONTROL,
                               pools_commands, pools_command_count, ps, err, sizeof(err));
        if (!ps->ctl) {
            log_msg(LOG_ERROR, "control socket: %s", err);
            return -1;
        }
        log_msg(LOG_INFO, "control socket on %s (mode %04o); each pool's is %s.NAME",
                ps->top->control, ps->top->control_chmod, ps->top->control);
    }
    return 0;
}

static void pools_teardown(struct pools *ps)
{
    control_close(ps->ctl);
    while (ps->n)
        pools_forget(ps, ps->n - 1);
    free(ps->p);
    if (ps->notifyfd >= 0)
        close(ps->notifyfd);
    if (ps->sigfd >= 0)
        close(ps->sigfd);
    if (ps->epfd >= 0)
        close(ps->epfd);
    systemd_notify_close(&ps->sysd);
}

int pools_main(const struct config *top, int argc, char **argv, bool check)
{
    struct pools ps = {.top = top,
                       .argc = argc,
                       .argv = argv,
                       .epfd = -1,
                       .sigfd = -1,
                       .notifyfd = -1,
                       .sysd = {.fd = -1}};
    char abs[PATH_MAX];
    if (!realpath(top->source_file, abs) || !(ps.file = strdup(abs))) {
        fprintf(stderr, "corral: %s: %s\n", top->source_file, strerror(errno));
        return 1;
    }
    int status = 1;
    if (check) {
        status = pools_check(&ps);
        free(ps.file);
        return status;
    }
    if (log_open(top->error_log, NULL) < 0)
        goto out;
    char err[1024];
    if (top->pidfile && pidfile_lock(top->pidfile, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "%s: stopping", err);
        goto out;
    }
    if (pools_setup(&ps) == 0) {
        log_msg(LOG_INFO, "%s: %zu pools", ps.file, top->pools_count);
        for (size_t i = 0; i < top->pools_count; i++)
            if (!pools_add(&ps, top->pools[i]))
                log_msg(LOG_ERROR, "pool %s: out of memory", top->pools[i]);
        status = pools_loop(&ps);
        if (status != 0) { /* the masters still starting stop with us */
            for (size_t i = 0; i < ps.n; i++)
                pools_signal(&ps.p[i], SIGINT);
        }
    }
    pools_teardown(&ps);
    if (top->pidfile)
        pidfile_remove(top->pidfile);
out:
    free(ps.file);
    return status;
}
