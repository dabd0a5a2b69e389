/*
 * pools_spawn.c — one pool's listeners and master (see pools_state.h): the
 * top master binds the listeners (as root when started as root) and holds
 * them for the pool's whole life, so connections queue while its master is
 * started again; each master inherits them as descriptors 3, 4, ... and is
 * told so with --listen PROTO:fd:N@ADDR, so it never needs root to bind, and
 * names each listener by the address the file gave (its logs, status and
 * corralctl: os/listen.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "os/privs.h"
#include "pools_state.h"

/* The master's argv: corral -c FILE --pool-name NAME, then --listen
 * PROTO:fd:N@ADDR per listener. */
#define POOLS_EXE "/proc/self/exe"
#define POOLS_FIRST_FD 3

int pools_bind(struct pool *p, char *err, size_t errlen)
{
    const struct config *c = &p->cfg;
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    char why[512];
    if (c->chown && privs_resolve_owner(c->chown, &uid, &gid, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "chown: %s", why);
        return -1;
    }
    p->ls = calloc(c->listen_count, sizeof(*p->ls));
    if (!p->ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->listen_count; i++) {
        struct listen_addr addr;
        if (listen_parse(c->listen[i], &addr, why, sizeof(why)) < 0 ||
            listen_open(&p->ls[i], &addr, c->backlog, c->chmod_mode, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "listener %s: %s", c->listen[i], why);
            pools_unbind(p);
            return -1;
        }
        p->nls = i + 1;
        if (c->chown && listen_chown(&p->ls[i], (long)uid, (long)gid, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "listener %s: %s", c->listen[i], why);
            pools_unbind(p);
            return -1;
        }
    }
    return 0;
}

void pools_unbind(struct pool *p)
{
    for (size_t i = 0; i < p->nls; i++)
        listen_close(&p->ls[i], true);
    free(p->ls);
    p->ls = NULL;
    p->nls = 0;
}

/* In the child: the listeners onto 3.. (through copies above them, so no
 * dup2 overwrites one not yet moved), the signals unblocked, then exec.
 * The top master is one thread, so setenv is safe here. Never returns. */
static void pools_child(struct pool *p, char **argv, const char *notify)
{
    int tmp[64];
    int top = POOLS_FIRST_FD + (int)p->nls;
    for (size_t i = 0; i < p->nls; i++) {
        tmp[i] = fcntl(p->ls[i].fd, F_DUPFD_CLOEXEC, top);
        if (tmp[i] < 0)
            _exit(127);
    }
    for (size_t i = 0; i < p->nls; i++)
        if (dup2(tmp[i], POOLS_FIRST_FD + (int)i) < 0) /* dup2 clears close-on-exec */
            _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setenv("NOTIFY_SOCKET", notify, 1);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    execv(POOLS_EXE, argv);
    static const char msg[] = "corral: execv(" POOLS_EXE ") of a pool master failed\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(127);
}

int pools_spawn(struct pools *ps, struct pool *p, char *err, size_t errlen)
{
    enum { POOLS_SPEC = sizeof(p->ls[0].name) + 32 };
    if (p->nls > 64) {
        snprintf(err, errlen, "more than 64 listeners");
        return -1;
    }
    /* Built before the fork: the child only moves descriptors and execs. */
    size_t argc = 5 + 2 * p->nls;
    char **argv = calloc(argc + 1, sizeof(*argv));
    char *specs = calloc(p->nls ? p->nls : 1, POOLS_SPEC);
    if (!argv || !specs) {
        free(argv);
        free(specs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    argv[k++] = ps->argv[0];
    argv[k++] = "-c";
    argv[k++] = ps->file;
    argv[k++] = "--pool-name";
    argv[k++] = p->name;
    for (size_t i = 0; i < p->nls; i++) {
        char *spec = specs + i * POOLS_SPEC;
        /* The listener's name is "PROTO:ADDR" (listen_open). */
        const char *addr = strchr(p->ls[i].name, ':') + 1;
        snprintf(spec, POOLS_SPEC, "%s:fd:%d@%s", p->ls[i].addr.codec->name,
                 POOLS_FIRST_FD + (int)i, addr);
        argv[k++] = "--listen";
        argv[k++] = spec;
    }
    pid_t pid = fork();
    if (pid == 0)
        pools_child(p, argv, ps->notify_name);
    int saved = errno;
    free(argv);
    free(specs);
    if (pid < 0) {
        snprintf(err, errlen, "fork failed: %s", strerror(saved));
        return -1;
    }
    p->pid = pid;
    p->state = POOLS_STARTING;
    p->starts++;
    log_msg(LOG_INFO, "pool %s: master started (pid %d)", p->name, (int)pid);
    return 0;
}

void pools_signal(struct pool *p, int sig)
{
    if (p->pid > 0 && kill(p->pid, sig) < 0 && errno != ESRCH)
        log_msg(LOG_WARN, "pool %s: kill(%d) failed: %s", p->name, (int)p->pid, strerror(errno));
}
