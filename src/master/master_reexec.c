/*
 * master_reexec.c — the check child of a reload, and the re-exec of a
 * --preload reload (the old image's side).
 *
 * A reload's new code is checked in a throwaway child that the master's
 * loop reaps like a worker (master_reload.c asks here first) while the old
 * workers serve; the reload waits in RELOAD_CHECKING with its start
 * deadline. Two kinds of child:
 *
 *  - --preload (master_reexec_check): the same binary and command line
 *    with $CORRAL_CHECK_APP set, which reads the config, imports the app as
 *    --preload does, and exits 0 or 1 (its traceback on the master's error
 *    log). Only a check that passes leads to the exec; a failed one is an
 *    ordinary failed reload with nothing changed.
 *  - an adapter with a check of its own (app.h; the native handler), lazy
 *    (master_reexec_check_app): a fork of the master that runs app_check on
 *    the new app and writes the adapter's message into a pipe, read here
 *    when the child is reaped. The master's loop never waits for it.
 *
 * The app was imported in the master with --preload, so new code needs a
 * new master. The master re-executes itself (/proc/self/exe, the same
 * command line), which keeps its pid: systemd's MAINPID, the pidfile and
 * the parenthood of the old workers all stay valid, and the old workers
 * serve on through the exec and the new import.
 *
 * Across the exec go, without FD_CLOEXEC for that one call: the listeners,
 * the scoreboard memfd (the new image maps the memory the old workers write
 * to; the workers' pids are in it), the control socket and its idle client
 * connections (corralctl polls status while it waits for the reload), and
 * the log files (a master that dropped its privileges may not reopen them).
 * What else the new image needs is in $CORRAL_REEXEC (reexec_state.h);
 * $NOTIFY_SOCKET is given back so that it can tell systemd READY=1.
 *
 * This file returns outcomes; master_reload.c acts on them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "master_state.h"
#include "os/child.h"
#include "os/pidfile.h"

extern char **environ;

#define MASTER_REEXEC_SELF "/proc/self/exe"
#define MASTER_REEXEC_TEXT_MAX (64u << 10)

/* A copy of the environment without the variables this module sets, plus
 * EXTRA (up to two, NULL-terminated). Freed with master_reexec_env_free. */
static char **master_reexec_env(const char *extra1, const char *extra2)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, REEXEC_ENV "=", sizeof(REEXEC_ENV)) == 0 ||
            strncmp(e, REEXEC_CHECK_ENV "=", sizeof(REEXEC_CHECK_ENV)) == 0 ||
            strncmp(e, "NOTIFY_SOCKET=", 14) == 0)
            continue;
        env[k++] = (char *)e;
    }
    if (extra1)
        env[k++] = (char *)extra1;
    if (extra2)
        env[k++] = (char *)extra2;
    return env;
}

int master_reexec_check(struct master *m, char *err, size_t errlen)
{
    char **env = master_reexec_env(REEXEC_CHECK_ENV "=1", NULL);
    if (!env) {
        snprintf(err, errlen, "the import check: out of memory");
        return -1;
    }
    int efd, afd;
    const char *epath, *apath;
    log_files(&efd, &epath, &afd, &apath);
    pid_t master_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() for the import check failed: %s", strerror(errno));
        free(env);
        return -1;
    }
    if (pid == 0) {
        /* The child never returns into master code: it becomes a new corral
         * at once. Signals blocked for the master's signalfd would stay
         * blocked across execve. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != master_pid)
            _exit(1);
        /* Its traceback goes to the error log. (Should dup2 fail, the check
         * only writes to the master's own stderr instead.) */
        if (efd >= 0)
            dup2(efd, STDERR_FILENO);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        if (m->reexec.cwd_fd >= 0 && fchdir(m->reexec.cwd_fd) < 0)
            _exit(1);
        execve(MASTER_REEXEC_SELF, m->argv, env);
        static const char msg[] =
            "corral: the import check: execve(" MASTER_REEXEC_SELF ") failed\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)ignored;
        _exit(127);
    }
    free(env);
    m->reexec.check_pid = pid;
    m->reexec.check_fd = -1;
    log_msg(LOG_INFO,
            "import check started (pid %d): the new code is imported in a separate "
            "process before the master re-executes itself",
            (int)pid);
    return 0;
}

static int master_reexec_check_in_child(void *app, char *msg, size_t msglen)
{
    return app_check(app, msg, msglen);
}

int master_reexec_check_app(struct master *m, struct app *app, char *err, size_t errlen)
{
    pid_t pid;
    int fd;
    if (child_run(master_reexec_check_in_child, app, "the app's check", &pid, &fd, err,
                  errlen) < 0)
        return -1;
    m->reexec.check_pid = pid;
    m->reexec.check_fd = fd;
    return 0;
}

/* What the app check's child wrote before it ended, into OUT ("" if
 * nothing); closes its pipe. */
static void master_reexec_check_message(struct master *m, char *out, size_t len)
{
    out[0] = '\0';
    if (m->reexec.check_fd < 0)
        return;
    child_read_message(m->reexec.check_fd, out, len);
    close(m->reexec.check_fd);
    m->reexec.check_fd = -1;
}

enum master_check_end master_reexec_reaped(struct master *m, pid_t pid, int status,
                                           char *reason, size_t len)
{
    if (!m->reexec.check_pid || pid != m->reexec.check_pid)
        return MASTER_CHECK_OTHER;
    m->reexec.check_pid = 0;
    bool app = m->reexec.check_fd >= 0;
    master_reexec_check_message(m, reason, len);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return MASTER_CHECK_PASSED;
    if (app && reason[0])
        return MASTER_CHECK_FAILED; /* the adapter's own message */
    if (app && WIFSIGNALED(status))
        snprintf(reason, len, "the app's check (pid %d) was killed by signal %d (%s)", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (app)
        snprintf(reason, len, "the app's check (pid %d) failed (exit status %d)", (int)pid,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (WIFEXITED(status))
        snprintf(reason, len,
                 "the app failed to import in the check (pid %d exited "
                 "with status %d: the traceback is in the error log)",
                 (int)pid, WEXITSTATUS(status));
    else
        snprintf(reason, len,
                 "the import check (pid %d) was killed by signal %d "
                 "(%s)",
                 (int)pid, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                 WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "?");
    return MASTER_CHECK_FAILED;
}

bool master_reexec_checking(const struct master *m)
{
    return m->reexec.check_pid != 0;
}

void master_reexec_cancel(struct master *m)
{
    m->reexec.exec_due = false;
    if (m->reexec.check_pid && kill(m->reexec.check_pid, SIGKILL) < 0)
        log_msg(LOG_WARN, "kill(import check pid %d) failed: %s", (int)m->reexec.check_pid,
                strerror(errno));
    /* Reaped later, as given up on; what it wrote does not matter now. */
    if (m->reexec.check_fd >= 0)
        close(m->reexec.check_fd);
    m->reexec.check_fd = -1;
}

/* Set or clear FD_CLOEXEC on the N descriptors FDS. Returns 0, or -1 with
 * the failing call in err. */
static int master_reexec_cloexec(const int *fds, size_t n, bool on, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (fcntl(fds[i], F_SETFD, on ? FD_CLOEXEC : 0) < 0) {
            snprintf(err, errlen, "fcntl(%d, F_SETFD) failed: %s", fds[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* What the new image needs, into RX; the descriptors to keep open into FDS
 * (their count in *nfds). */
static void master_reexec_describe(struct master *m, struct reexec_state *rx, int *fds,
                                   size_t *nfds)
{
    size_t n = 0;
    rx->sb_fd = fds[n++] = m->sb.fd;
    rx->target = m->target;
    rx->threads = m->cfg->threads;
    rx->max_processes = m->max_workers;
    snprintf(rx->pool, sizeof(rx->pool), "%s", config_pool_mode_name(m->pool.mode));
    rx->chain = m->reload.chain;
    rx->pending_hup = m->reload.pending_hup;
    for (size_t i = 0; i < m->listener_count && i < REEXEC_MAX_LISTENERS; i++) {
        struct reexec_listener *l = &rx->listeners[rx->listener_count++];
        l->fd = fds[n++] = m->listeners[i].fd;
        l->backlog = m->listeners[i].backlog;
        l->owns_path = m->listeners[i].owns_path;
        snprintf(l->spec, sizeof(l->spec), "%s", m->cfg->listen[i]);
    }
    rx->client_count = control_exec_fds(m->ctl, &rx->control_fd, rx->clients, REEXEC_MAX_CLIENTS);
    if (rx->control_fd >= 0) {
        fds[n++] = rx->control_fd;
        snprintf(rx->control_path, sizeof(rx->control_path), "%s", m->cfg->control);
    }
    for (size_t i = 0; i < rx->client_count; i++)
        fds[n++] = rx->clients[i];
    /* The paths as configured (the new image compares them with its
     * config), the descriptors as open. */
    const char *epath, *apath;
    log_files(&rx->error_log_fd, &epath, &rx->access_log_fd, &apath);
    if (rx->error_log_fd >= 0) {
        fds[n++] = rx->error_log_fd;
        snprintf(rx->error_log, sizeof(rx->error_log), "%s",
                 m->cfg->error_log ? m->cfg->error_log
                 : epath           ? epath
                                   : "");
    }
    if (rx->access_log_fd >= 0) {
        fds[n++] = rx->access_log_fd;
        snprintf(rx->access_log, sizeof(rx->access_log), "%s",
                 m->cfg->access_log ? m->cfg->access_log
                 : apath            ? apath
                                    : "");
    }
    snprintf(rx->pidfile, sizeof(rx->pidfile), "%s", m->cfg->pidfile ? m->cfg->pidfile : "");
    if ((rx->pidfile_fd = pidfile_fd()) >= 0) /* the lock stays held across the exec */
        fds[n++] = rx->pidfile_fd;
    snprintf(rx->why, sizeof(rx->why), "%s", m->reload.why);
    *nfds = n;
}

/* "NOTIFY_SOCKET=..." for the new image (it unset the variable at start),
 * or "" without one. */
static void master_reexec_notify_env(const struct master *m, char *out, size_t len)
{
    out[0] = '\0';
    if (m->notify.fd < 0)
        return;
    const struct sockaddr_un *a = &m->notify.addr;
    size_t plen = m->notify.addr_len - offsetof(struct sockaddr_un, sun_path);
    if (plen == 0 || plen > sizeof(a->sun_path))
        return;
    bool abstract = a->sun_path[0] == '\0';
    snprintf(out, len, "NOTIFY_SOCKET=%s%.*s", abstract ? "@" : "",
             (int)(abstract ? plen - 1 : strnlen(a->sun_path, plen)),
             a->sun_path + (abstract ? 1 : 0));
}

int master_reexec_exec(struct master *m, char *reason, size_t len)
{
    char err[256];
    struct reexec_state *rx = calloc(1, sizeof(*rx));
    char *text = malloc(MASTER_REEXEC_TEXT_MAX);
    char notify[sizeof(struct sockaddr_un) + 32];
    char **env = NULL;
    int fds[3 + REEXEC_MAX_LISTENERS + REEXEC_MAX_CLIENTS + 3];
    size_t nfds = 0;
    int here = -1;
    if (!rx || !text) {
        snprintf(reason, len, "re-executing the master: out of memory");
        goto fail;
    }
    if (m->listener_count > REEXEC_MAX_LISTENERS) {
        snprintf(reason, len, "re-executing the master: more than %d listeners",
                 REEXEC_MAX_LISTENERS);
        goto fail;
    }
    master_pool_publish(m); /* generation, counters, bank: read by the new image */
    master_reexec_describe(m, rx, fds, &nfds);
    memcpy(text, REEXEC_ENV "=", sizeof(REEXEC_ENV));
    if (reexec_format(rx, text + sizeof(REEXEC_ENV), MASTER_REEXEC_TEXT_MAX - sizeof(REEXEC_ENV)) <
        0) {
        snprintf(reason, len,
                 "re-executing the master: the state does not fit in "
                 "%u bytes",
                 MASTER_REEXEC_TEXT_MAX);
        goto fail;
    }
    master_reexec_notify_env(m, notify, sizeof(notify));
    if (!(env = master_reexec_env(text, notify[0] ? notify : NULL))) {
        snprintf(reason, len, "re-executing the master: out of memory");
        goto fail;
    }
    /* The command line may name files relative to where corral started; a
     * preload may have changed directory since. */
    here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (here < 0)
        log_msg(LOG_WARN,
                "open(\".\") failed: %s; if the exec fails the master stays in "
                "the start directory",
                strerror(errno));
    if (m->reexec.cwd_fd >= 0 && fchdir(m->reexec.cwd_fd) < 0)
        log_msg(LOG_WARN, "fchdir(start directory) failed: %s; re-executing from here",
                strerror(errno));
    if (master_reexec_cloexec(fds, nfds, false, err, sizeof(err)) < 0) {
        snprintf(reason, len, "re-executing the master: %s", err);
        goto fail;
    }
    log_msg(LOG_INFO,
            "%s: re-executing the master (pid %d) to import the new code; "
            "generation %u serves meanwhile",
            m->reload.why, (int)getpid(), m->reload.generation);
    execve(MASTER_REEXEC_SELF, m->argv, env);
    snprintf(reason, len, "execve(\"" MASTER_REEXEC_SELF "\") failed: %s",
             strerror(errno));
fail:
    if (nfds && master_reexec_cloexec(fds, nfds, true, err, sizeof(err)) < 0)
        log_msg(LOG_WARN, "after the failed re-exec: %s", err);
    if (here >= 0) {
        if (fchdir(here) < 0)
            log_msg(LOG_WARN, "fchdir(back) failed: %s", strerror(errno));
        close(here);
    }
    free(env);
    free(text);
    free(rx);
    return -1;
}
