/*
 * master.c — supervision of the worker pool (see master.h).
 *
 * Signals arrive on a signalfd and are handled in the loop, never in a
 * handler. Stopping is an explicit state: RUNNING → STOPPING (SIGTERM:
 * workers drain and finish, then exit) or STOPPING_NOW (SIGINT/SIGQUIT),
 * with SIGKILL for whatever is left when the deadline passes.
 */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "scoreboard.h"
#include "worker.h"

enum master_state { MASTER_RUNNING, MASTER_STOPPING, MASTER_STOPPING_NOW };

#define MASTER_TICK_MS 200
#define MASTER_FAST_DEATH_MS 1000 /* a worker that dies sooner backs off */
#define MASTER_MAX_BACKOFF_S 30
#define MASTER_STOP_NOW_MS 3000   /* SIGQUIT → SIGKILL */

struct master_worker {
    pid_t pid;                    /* 0 = not running */
    uint64_t started_ms;
    unsigned fast_deaths;         /* consecutive deaths soon after start */
    uint64_t respawn_at_ms;       /* 0 = no respawn pending */
};

struct master_queue {
    bool full;                    /* inside an episode of a full queue */
    unsigned long episodes;
};

struct master {
    const struct config *cfg;
    struct listener *listeners;
    size_t listener_count;
    struct app *app;
    struct scoreboard sb;
    struct master_worker *workers;
    struct master_queue *queues;
    unsigned worker_count;
    int epfd, sigfd, timerfd;
    enum master_state state;
    uint64_t deadline_ms;
    bool pool_was_up;             /* some worker reached RUNNING once */
    int exit_status;              /* what master_run returns after a stop */
};

static uint64_t master_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void master_spawn(struct master *m, unsigned i)
{
    struct master_worker *mw = &m->workers[i];
    pid_t master_pid = getpid();
    app_fork_prepare(m->app);
    pid_t pid = fork();
    if (pid != 0)
        app_fork_parent(m->app);
    if (pid < 0) {
        log_msg(LOG_ERROR, "fork() for worker %u failed: %s; retrying in 1 s", i, strerror(errno));
        mw->respawn_at_ms = master_now_ms() + 1000;
        return;
    }
    if (pid == 0) {
        /* The child never returns into master code. */
        app_fork_child(m->app);
        close(m->epfd);
        close(m->sigfd);
        close(m->timerfd);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master_pid)
            _exit(0); /* the master died before prctl */
        struct worker_ctx ctx = {
            .cfg = m->cfg,
            .listeners = m->listeners,
            .listener_count = m->listener_count,
            .sb = &m->sb,
            .index = i,
            .worker_count = m->worker_count,
            .app = m->app,
        };
        worker_run(&ctx);
    }
    mw->pid = pid;
    mw->started_ms = master_now_ms();
    mw->respawn_at_ms = 0;
    log_msg(LOG_INFO, "worker %u started (pid %d)", i, (int)pid);
}

static void master_describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(out, len, "ended with wait status %d", status);
}

static void master_stop(struct master *m, bool now);

static void master_reap(struct master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        unsigned i;
        for (i = 0; i < m->worker_count; i++)
            if (m->workers[i].pid == pid)
                break;
        if (i == m->worker_count)
            continue; /* not one of ours */
        struct master_worker *mw = &m->workers[i];
        struct sb_worker *sbw = &m->sb.workers[i];
        bool never_ran = atomic_load(&sbw->state) == SB_WORKER_STARTING;
        mw->pid = 0;
        atomic_store(&sbw->state, SB_WORKER_EMPTY);
        atomic_store(&sbw->pid, 0);
        atomic_store(&sbw->conns, 0);
        atomic_store(&sbw->busy, 0);
        char what[128];
        master_describe_status(status, what, sizeof(what));
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (m->state != MASTER_RUNNING) {
            log_msg(clean ? LOG_INFO : LOG_WARN, "worker %u (pid %d) %s", i, (int)pid, what);
            continue;
        }
        if (never_ran && !m->pool_was_up && WIFEXITED(status) &&
            WEXITSTATUS(status) == WORKER_EXIT_APP_INIT) {
            /* The app cannot start at all: respawning would only loop. */
            log_msg(LOG_ERROR,
                    "worker %u (pid %d): the application failed to start (see above); "
                    "not respawning, stopping corral",
                    i, (int)pid);
            m->exit_status = 1;
            master_stop(m, true);
            continue;
        }
        uint64_t now = master_now_ms(), lived = now - mw->started_ms;
        if (lived < MASTER_FAST_DEATH_MS) {
            mw->fast_deaths++;
            unsigned shift = mw->fast_deaths > 6 ? 6 : mw->fast_deaths - 1;
            unsigned delay = 1u << shift;
            if (delay > MASTER_MAX_BACKOFF_S)
                delay = MASTER_MAX_BACKOFF_S;
            log_msg(LOG_ERROR,
                    "worker %u (pid %d) %s %llu ms after it started (%u times in a row); "
                    "respawning in %u s",
                    i, (int)pid, what, (unsigned long long)lived, mw->fast_deaths, delay);
            mw->respawn_at_ms = now + delay * 1000u;
        } else {
            mw->fast_deaths = 0;
            log_msg(LOG_ERROR, "worker %u (pid %d) %s; respawning", i, (int)pid, what);
            mw->respawn_at_ms = now;
        }
        atomic_fetch_add(&sbw->respawns, 1);
    }
}

static unsigned master_alive(const struct master *m)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->worker_count; i++)
        n += m->workers[i].pid != 0;
    return n;
}

static void master_signal_workers(struct master *m, int sig)
{
    for (unsigned i = 0; i < m->worker_count; i++)
        if (m->workers[i].pid)
            kill(m->workers[i].pid, sig);
}

static void master_stop(struct master *m, bool now)
{
    if (m->state == MASTER_STOPPING_NOW || (m->state == MASTER_STOPPING && !now))
        return;
    if (m->state == MASTER_RUNNING) {
        /* No new connections by path; the workers still hold the sockets and
         * drain what is already queued. */
        for (size_t i = 0; i < m->listener_count; i++)
            listen_close(&m->listeners[i], true);
    }
    m->state = now ? MASTER_STOPPING_NOW : MASTER_STOPPING;
    m->deadline_ms =
        master_now_ms() + (now ? MASTER_STOP_NOW_MS : (uint64_t)m->cfg->graceful_timeout_ms);
    log_msg(LOG_INFO, "%s: %u workers to stop",
            now ? "stopping now" : "stopping gracefully (draining queued connections)",
            master_alive(m));
    master_signal_workers(m, now ? SIGQUIT : SIGTERM);
}

static void master_handle_signals(struct master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            master_reap(m);
            break;
        case SIGTERM:
            master_stop(m, false);
            break;
        case SIGINT:
        case SIGQUIT:
            master_stop(m, true);
            break;
        case SIGHUP:
            log_msg(LOG_WARN, "SIGHUP: reloading is not supported yet; ignored");
            break;
        default:
            break;
        }
    }
}

/* Log once per episode when a listen queue is full: connections beyond it
 * are refused or time out at the front end (502/504), silently otherwise. */
static void master_check_queues(struct master *m)
{
    for (size_t i = 0; i < m->listener_count; i++) {
        struct listener *l = &m->listeners[i];
        struct master_queue *q = &m->queues[i];
        unsigned depth;
        if (l->fd < 0 || listen_queue_depth(l, &depth) < 0)
            continue;
        if (!q->full && depth >= l->backlog) {
            q->full = true;
            q->episodes++;
            log_msg(LOG_ERROR,
                    "%s: the listen queue is full (%u connections waiting, backlog %u, "
                    "episode %lu): the front end gets errors; add processes or threads, or "
                    "raise --backlog",
                    l->name, depth, l->backlog, q->episodes);
        } else if (q->full && depth < l->backlog / 2) {
            q->full = false;
            log_msg(LOG_INFO, "%s: the listen queue is no longer full (%u waiting)", l->name,
                    depth);
        }
    }
}

static void master_tick(struct master *m)
{
    uint64_t expirations;
    if (read(m->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    uint64_t now = master_now_ms();
    if (m->state == MASTER_RUNNING) {
        for (unsigned i = 0; i < m->worker_count && !m->pool_was_up; i++)
            m->pool_was_up = atomic_load(&m->sb.workers[i].state) == SB_WORKER_RUNNING;
        for (unsigned i = 0; i < m->worker_count; i++) {
            struct master_worker *mw = &m->workers[i];
            if (!mw->pid && mw->respawn_at_ms && now >= mw->respawn_at_ms)
                master_spawn(m, i);
        }
        master_check_queues(m);
    } else if (now >= m->deadline_ms && master_alive(m)) {
        log_msg(LOG_WARN, "stop deadline passed: killing %u workers", master_alive(m));
        master_signal_workers(m, SIGKILL);
        m->deadline_ms = now + 1000;
    }
}

static int master_setup(struct master *m)
{
    int rc = scoreboard_create(&m->sb, m->worker_count, m->cfg->threads);
    if (rc < 0) {
        log_msg(LOG_ERROR, "mmap(scoreboard) failed: %s", strerror(-rc));
        return -1;
    }
    m->workers = calloc(m->worker_count, sizeof(*m->workers));
    m->queues = calloc(m->listener_count, sizeof(*m->queues));
    if (!m->workers || !m->queues) {
        log_msg(LOG_ERROR, "master: out of memory");
        return -1;
    }
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGTTIN, SIGTTOU};
    /* Blocked and read from the signalfd. A signal the parent left ignored
     * (a shell's `corral &` ignores SIGINT and SIGQUIT) would be discarded
     * even while blocked: take each back to its default first. */
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaddset(&set, sigs[i]);
        signal(sigs[i], SIG_DFL);
    }
    sigprocmask(SIG_BLOCK, &set, NULL);
    m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    m->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (m->sigfd < 0 || m->timerfd < 0 || m->epfd < 0) {
        log_msg(LOG_ERROR, "master: signalfd/timerfd/epoll setup failed: %s", strerror(errno));
        return -1;
    }
    struct itimerspec its = {.it_interval = {0, MASTER_TICK_MS * 1000000L},
                             .it_value = {0, MASTER_TICK_MS * 1000000L}};
    timerfd_settime(m->timerfd, 0, &its, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = m->sigfd};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sigfd, &ev);
    ev.data.fd = m->timerfd;
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->timerfd, &ev);
    return 0;
}

int master_run(const struct config *cfg, struct listener *listeners, size_t listener_count,
               struct app *app)
{
    struct master m = {
        .cfg = cfg,
        .listeners = listeners,
        .listener_count = listener_count,
        .app = app,
        .worker_count = cfg->processes,
        .epfd = -1,
        .sigfd = -1,
        .timerfd = -1,
    };
    int status = 1;
    if (master_setup(&m) < 0)
        goto out;
    log_msg(LOG_INFO, "corral started: %u processes x %u threads, %zu listeners",
            cfg->processes, cfg->threads, listener_count);
    for (unsigned i = 0; i < m.worker_count; i++)
        master_spawn(&m, i);
    while (m.state == MASTER_RUNNING || master_alive(&m) > 0) {
        struct epoll_event evs[4];
        int n = epoll_wait(m.epfd, evs, 4, -1);
        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "master: epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == m.sigfd)
                master_handle_signals(&m);
            else
                master_tick(&m);
        }
    }
    status = master_alive(&m) ? 1 : m.exit_status;
    log_msg(LOG_INFO, "corral stopped");
out:
    for (size_t i = 0; i < listener_count; i++)
        listen_close(&listeners[i], true);
    if (m.epfd >= 0)
        close(m.epfd);
    if (m.sigfd >= 0)
        close(m.sigfd);
    if (m.timerfd >= 0)
        close(m.timerfd);
    free(m.workers);
    free(m.queues);
    scoreboard_destroy(&m.sb);
    return status;
}
