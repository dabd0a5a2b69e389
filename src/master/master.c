/*
 * master.c — supervision of the worker pool (see master.h).
 *
 * Signals arrive on a signalfd and are handled in the loop, never in a
 * handler. Stopping is an explicit state: RUNNING → STOPPING (SIGTERM:
 * workers drain and finish, then exit) or STOPPING_NOW (SIGINT/SIGQUIT),
 * with SIGKILL for whatever is left when the deadline passes. With
 * --stop-delay, SIGTERM first leaves the pool RUNNING and serving for that
 * long (master_actions.c; the tick ends the delay).
 *
 * The pool has a target size (--processes, changed by scaling): slots below
 * it get a worker, forked at the top of the loop once their (re)spawn time
 * has come; workers at or above it are stopped gracefully. The control
 * socket, when configured, is served in the same loop (control.c, with the
 * commands of master_cmd.c).
 *
 * This file is the top of the master's files (master_state.h lists
 * them): the loop acts on what the others return or flag — a reload's
 * check child is reaped through master_reload_check_reaped, a passed
 * --preload check sets reexec.exec_due, a slot due sets respawn_at_ms.
 * The FastCGI programs of --fastcgi-program (master_programs.c) are
 * started at the top of the loop before the workers, reaped before them,
 * watched in the tick, and outlive the workers at a stop.
 */
#include "master.h"
#include "master_state.h"

#include <dirent.h>
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

#include "core/log.h"
#include "core/scoreboard.h"
#include "worker/worker.h"
#include "core/clock.h"

#define MASTER_TICK_MS 200

/* epoll data of the master's descriptors. */
enum { MASTER_TAG_SIGNAL = 1, MASTER_TAG_TIMER = 2, MASTER_TAG_CONTROL = 16 };

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
        mw->respawn_at_ms = clock_now_ms() + 1000;
        return;
    }
    if (pid == 0) {
        /* The child never returns into master code. */
        app_fork_child(m->app);
        close(m->epfd);
        close(m->sigfd);
        close(m->timerfd);
        control_close_in_child(m->ctl);
        systemd_notify_close(&m->notify);
        scoreboard_close_in_child(&m->sb);
        if (m->reexec.cwd_fd >= 0)
            close(m->reexec.cwd_fd);
        prctl(PR_SET_PDEATHSIG, WORKER_ORPHAN_SIGNAL); /* worker_stop.c */
        if (getppid() != master_pid)
            _exit(0); /* the master died before prctl */
        struct worker_ctx ctx = {
            .cfg = m->cfg,
            .listeners = m->listeners,
            .listener_count = m->listener_count,
            .sb = &m->sb,
            .index = i,
            .app = m->app,
        };
        worker_run(&ctx);
    }
    mw->pid = pid;
    /* In the slot at once (the worker writes it too, once it runs): a
     * --preload reload's new image finds every worker there. */
    atomic_store(&m->sb.workers[i].pid, (int32_t)pid);
    mw->started_ms = clock_now_ms();
    mw->requests_at_start = atomic_load(&m->sb.workers[i].requests);
    mw->respawn_at_ms = 0;
    m->live++;
    if (i + 1 > m->slots_used)
        m->slots_used = i + 1;
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

/* A reaped worker's slot: nobody serves there any more. Its counters stay
 * (they add up over the slot's workers). */
static void master_clear_slot(struct master *m, unsigned i)
{
    scoreboard_worker_reset(&m->sb.workers[i], SB_WORKER_EMPTY, 0);
    for (unsigned t = 0; t < m->cfg->threads; t++)
        atomic_store(&scoreboard_thread(&m->sb, i, t)->state, SB_THREAD_IDLE);
}

/* The requests the worker of slot I was serving, from the scoreboard (read
 * before master_clear_slot): " while serving GET /x (thread 0), ..." in OUT
 * ("" when none). Returns how many. */
static unsigned master_describe_serving(const struct master *m, unsigned i, char *out, size_t len)
{
    unsigned n = 0;
    size_t used = 0;
    out[0] = '\0';
    for (unsigned t = 0; t < m->sb.hdr->threads; t++) {
        char method[MASTER_METHOD_LEN], uri[MASTER_URI_LEN];
        if (!master_thread_request(m, i, t, method, uri))
            continue;
        if (used < len) {
            int k = snprintf(out + used, len - used, "%s%s %s (thread %u)",
                             n ? ", " : " while serving ", method, uri, t);
            used += k > 0 ? (size_t)k : 0;
        }
        n++;
    }
    return n;
}

/* A worker of slot I that died on its own while the pool runs: respawn it,
 * at once or after a back-off when it keeps dying right after start. A
 * worker that served or was serving a request (SERVED; SERVING says which)
 * did start: a request that crashed it (an app bug a peer can trigger at
 * will) never puts its slot in the start-up back-off. */
static void master_schedule_respawn(struct master *m, unsigned i, pid_t pid, const char *what,
                                    bool served, const char *serving)
{
    struct master_worker *mw = &m->workers[i];
    uint64_t now = clock_now_ms(), lived = now - mw->started_ms;
    if (served) {
        mw->fast_deaths = 0;
        log_msg(LOG_ERROR, "worker %u (pid %d) %s%s; respawning at once", i, (int)pid, what,
                *serving ? serving : " after serving requests");
        mw->respawn_at_ms = now;
    } else if (lived < MASTER_FAST_DEATH_MS) {
        unsigned delay = master_backoff_s(++mw->fast_deaths);
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
    atomic_fetch_add(&m->sb.workers[i].respawns, 1);
}

/* A worker that ended on purpose — recycled (--max-requests, --max-rss) or
 * by harakiri, its own or the master's — is replaced at once, without the
 * back-off of a crash. Returns whether it was one. */
static bool master_replace_at_once(struct master *m, unsigned i, pid_t pid, int status)
{
    struct master_worker *mw = &m->workers[i];
    bool killed = mw->harakiri_killed;
    mw->harakiri_killed = false;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == WORKER_EXIT_RECYCLE)
        log_msg(LOG_INFO, "worker %u (pid %d) recycled; starting its replacement", i, (int)pid);
    else if (code == WORKER_EXIT_HARAKIRI || killed)
        log_msg(LOG_WARN,
                "worker %u (pid %d) ended by harakiri (the request and its stack are "
                "logged above); starting its replacement",
                i, (int)pid);
    else
        return false;
    mw->fast_deaths = 0;
    mw->respawn_at_ms = clock_now_ms();
    atomic_fetch_add(&m->sb.workers[i].respawns, 1);
    return true;
}

static void master_reap(struct master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (master_reload_check_reaped(m, pid, status))
            continue;
        enum master_program_end pe = master_programs_reaped(m, pid, status);
        if (pe == MASTER_PROGRAM_FATAL && m->state == MASTER_RUNNING) {
            m->exit_status = 1;
            master_stop(m, true);
        }
        if (pe != MASTER_PROGRAM_OTHER)
            continue;
        unsigned i;
        for (i = 0; i < m->slots_used; i++)
            if (m->workers[i].pid == pid)
                break;
        if (i == m->slots_used)
            continue; /* not one of ours */
        struct master_worker *mw = &m->workers[i];
        bool never_ran = atomic_load(&m->sb.workers[i].state) == SB_WORKER_STARTING;
        bool retired = mw->retiring || i >= master_slot(m, m->target);
        char serving[512];
        bool served = master_describe_serving(m, i, serving, sizeof(serving)) > 0 ||
                      atomic_load(&m->sb.workers[i].requests) != mw->requests_at_start;
        mw->pid = 0;
        mw->retiring = false;
        m->live--;
        master_clear_slot(m, i);
        char what[128];
        master_describe_status(status, what, sizeof(what));
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (m->state != MASTER_RUNNING) {
            log_msg(clean ? LOG_INFO : LOG_WARN, "worker %u (pid %d) %s", i, (int)pid, what);
            continue;
        }
        if (master_reload_reaped(m, i, pid, never_ran, what))
            continue;
        if (m->reload.stranded) {
            log_msg(LOG_ERROR,
                    "worker %u (pid %d) %s and cannot be replaced: the app failed to "
                    "import after the last re-exec (--preload); fix the app and reload (%u "
                    "workers left)",
                    i, (int)pid, what, master_bank_live(m, m->base));
            master_update_slots(m);
            continue;
        }
        if (!retired && master_pool_idle_exit(m, i, pid, status)) {
            master_update_slots(m);
            continue;
        }
        if (retired) {
            log_msg(clean ? LOG_INFO : LOG_WARN, "worker %u (pid %d) %s after a scale-down", i,
                    (int)pid, what);
            /* scaled up again meanwhile */
            if (i < master_slot(m, m->target) && m->pool.mode == POOL_STATIC)
                mw->respawn_at_ms = clock_now_ms();
            master_update_slots(m);
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
        if (master_replace_at_once(m, i, pid, status))
            continue;
        master_schedule_respawn(m, i, pid, what, served && !never_ran, serving);
    }
}

static void master_scale_by_signal(struct master *m, int delta, const char *why)
{
    char err[256];
    unsigned target = m->target;
    if (delta < 0 && target <= 1) {
        log_msg(LOG_WARN, "%s: the pool already has its minimum of 1 process", why);
        return;
    }
    target = delta < 0 ? target - 1 : target + 1;
    if (master_scale(m, target, why, err, sizeof(err)) < 0)
        log_msg(LOG_WARN, "%s: %s", why, err);
}

static void master_handle_signals(struct master *m)
{
    struct signalfd_siginfo si;
    char err[512];
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
        case SIGHUP: {
            char note[512];
            master_reload(m, false, "SIGHUP", err, sizeof(err), note, sizeof(note)); /* logs */
            break;
        }
        case SIGUSR1:
            master_reopen_logs(m, err, sizeof(err));
            break;
        case SIGTTIN:
            master_scale_by_signal(m, +1, "SIGTTIN");
            break;
        case SIGTTOU:
            master_scale_by_signal(m, -1, "SIGTTOU");
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
    m->queued = 0;
    for (size_t i = 0; i < m->listener_count; i++) {
        struct listener *l = &m->listeners[i];
        struct master_queue *q = &m->queues[i];
        unsigned depth;
        if (l->fd < 0 || listen_queue_depth(l, &depth) < 0)
            continue;
        m->queued += depth;
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

/* Readiness: once every worker the first generation started with is
 * RUNNING (a static pool's target, a dynamic pool's start_processes; an
 * ondemand pool starts none and is ready at once). A reload sends it
 * again itself (master_reload.c). */
static void master_check_ready(struct master *m)
{
    if (m->ready_sent || m->reload.generation > 1 || m->reload.phase != RELOAD_IDLE)
        return;
    for (unsigned p = 0; p < m->max_workers; p++) {
        unsigned i = master_slot(m, p);
        bool wanted = m->pool.mode == POOL_STATIC
                          ? p < m->target
                          : m->workers[i].pid || m->workers[i].respawn_at_ms;
        if (wanted && atomic_load(&m->sb.workers[i].state) != SB_WORKER_RUNNING)
            return;
    }
    master_notify_ready(m);
}

static void master_tick(struct master *m)
{
    uint64_t expirations;
    if (read(m->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    uint64_t now = clock_now_ms();
    control_tick(m->ctl);
    master_stop_delay_tick(m, now);
    if (m->state == MASTER_RUNNING) {
        for (unsigned i = 0; i < m->slots_used && !m->pool_was_up; i++)
            m->pool_was_up = atomic_load(&m->sb.workers[i].state) == SB_WORKER_RUNNING;
        master_check_ready(m);
        master_check_queues(m);
        master_check_harakiri(m);
        master_check_stopping(m, now);
        master_reload_tick(m);
        if (m->reload.phase != RELOAD_STARTING && !m->reload.stranded)
            master_pool_tick(m);
    } else if (now >= m->deadline_ms && m->live) {
        log_msg(LOG_WARN, "stop deadline passed: killing %u workers", m->live);
        master_signal_workers(m, SIGKILL);
        m->deadline_ms = now + 1000;
    }
    master_programs_tick(m);
}

/* Fork the workers whose (re)spawn time has come. Called only from the top
 * of the loop. */
static void master_spawn_due(struct master *m)
{
    if (m->state != MASTER_RUNNING || m->reload.stranded)
        return;
    uint64_t now = clock_now_ms();
    for (unsigned p = 0; p < m->target; p++) {
        struct master_worker *mw = &m->workers[master_slot(m, p)];
        if (!mw->pid && mw->respawn_at_ms && now >= mw->respawn_at_ms)
            master_spawn(m, master_slot(m, p));
    }
}

/* The pids of this process's children: after a re-exec, the workers of the
 * previous image (its check child was reaped before the exec). Up to MAX
 * pids into PIDS; returns how many. */
static unsigned master_children(pid_t *pids, unsigned max)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.')
            continue;
        char path[sizeof(e->d_name) + 32];
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        long pid;
        while (n < max && fscanf(f, "%ld", &pid) == 1)
            pids[n++] = (pid_t)pid;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* The previous image's scoreboard is of another layout (another build):
 * nothing in it can be read but the generation. A new scoreboard takes its
 * place, and the previous image's workers, found as our children, are
 * written into its first slots, where master_adopt takes them over as
 * usual (their own counters stay in the old mapping, which they keep
 * writing: they show as zero until the reload replaces them). Returns 0,
 * or -1 when no scoreboard can be made. */
static int master_scoreboard_refused(struct master *m, const struct reexec_state *rx,
                                     const char *why)
{
    uint32_t generation = scoreboard_generation_of(rx->sb_fd);
    close(rx->sb_fd);
    int rc =
        scoreboard_create(&m->sb, 2 * m->max_workers, m->cfg->threads, (unsigned)m->listener_count);
    if (rc < 0) {
        log_msg(LOG_ERROR, "memfd_create/mmap(scoreboard) failed: %s", strerror(-rc));
        return -1;
    }
    pid_t pids[1024];
    unsigned n = master_children(pids, sizeof(pids) / sizeof(pids[0]));
    unsigned kept = n < m->max_workers ? n : m->max_workers;
    for (unsigned i = 0; i < kept; i++) {
        atomic_store(&m->sb.workers[i].pid, (int32_t)pids[i]);
        atomic_store(&m->sb.workers[i].state, SB_WORKER_RUNNING);
    }
    for (unsigned i = kept; i < n; i++)
        kill(pids[i], SIGTERM); /* beyond a bank: stop them gracefully */
    atomic_store(&m->sb.hdr->slots, kept);
    atomic_store(&m->sb.hdr->master_pid, (int32_t)getpid());
    m->sb.hdr->bank_size = m->max_workers;
    atomic_store(&m->sb.hdr->generation, generation ? generation : 1);
    atomic_store(&m->sb.hdr->reload_last_ok, 2);
    log_msg(LOG_ERROR,
            "not adopting the scoreboard of the previous image: %s; a new one takes its "
            "place with the %u workers of generation %u found as children (%u stopped), "
            "their figures not carried over",
            why, kept, generation ? generation : 1, n - kept);
    return 0;
}

/* The scoreboard: a new one, or after a re-exec the previous image's,
 * whose geometry then wins over the config's (threads and max_processes
 * only change on a restart). */
static int master_setup_scoreboard(struct master *m, const struct reexec_state *rx)
{
    if (rx) {
        char err[256];
        int rc = scoreboard_attach(&m->sb, rx->sb_fd, err, sizeof(err));
        if (rc == SB_ATTACH_LAYOUT)
            return master_scoreboard_refused(m, rx, err);
        if (rc < 0) {
            log_msg(LOG_ERROR, "%s", err);
            return -1;
        }
        if (m->sb.hdr->threads != m->cfg->threads || m->sb.hdr->listeners != m->listener_count) {
            log_msg(LOG_ERROR,
                    "the scoreboard of the previous image has %u threads and %u "
                    "listeners, the config %u and %zu",
                    m->sb.hdr->threads, m->sb.hdr->listeners, m->cfg->threads, m->listener_count);
            return -1;
        }
        m->max_workers = m->sb.hdr->bank_size;
        return 0;
    }
    /* Two banks: a reload starts the new generation in the bank the old
     * one does not use. */
    int rc =
        scoreboard_create(&m->sb, 2 * m->max_workers, m->cfg->threads, (unsigned)m->listener_count);
    if (rc < 0) {
        log_msg(LOG_ERROR, "memfd_create/mmap(scoreboard) failed: %s", strerror(-rc));
        return -1;
    }
    atomic_store(&m->sb.hdr->slots, m->target);
    atomic_store(&m->sb.hdr->master_pid, (int32_t)getpid()); /* kept by a re-exec */
    m->sb.hdr->bank_size = m->max_workers;
    atomic_store(&m->sb.hdr->generation, 1);
    atomic_store(&m->sb.hdr->reload_last_ok, 2);
    return 0;
}

static int master_setup(struct master *m, const struct reexec_state *rx)
{
    if (master_setup_scoreboard(m, rx) < 0)
        return -1;
    m->workers = calloc(2 * (size_t)m->max_workers, sizeof(*m->workers));
    m->queues = calloc(m->listener_count ? m->listener_count : 1, sizeof(*m->queues));
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
    char nerr[256];
    if (systemd_notify_open(&m->notify, nerr, sizeof(nerr)) < 0)
        log_msg(LOG_WARN, "%s: systemd will not hear that corral is ready", nerr);
    struct itimerspec its = {.it_interval = {0, MASTER_TICK_MS * 1000000L},
                             .it_value = {0, MASTER_TICK_MS * 1000000L}};
    timerfd_settime(m->timerfd, 0, &its, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = MASTER_TAG_SIGNAL};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sigfd, &ev);
    ev.data.u64 = MASTER_TAG_TIMER;
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->timerfd, &ev);
    if (rx && rx->control_fd >= 0) {
        char err[512];
        m->ctl = control_adopt(rx->control_fd, rx->control_path, rx->clients, rx->client_count,
                               m->cfg->control_timeout_ms, m->epfd, MASTER_TAG_CONTROL,
                               master_commands, master_command_count, m, err, sizeof(err));
        if (!m->ctl) {
            log_msg(LOG_ERROR, "control socket: %s", err);
            return -1;
        }
    } else if (m->cfg->control && !rx) {
        char err[512];
        m->ctl = control_open(m->cfg->control, m->cfg->control_chmod, m->cfg->control_timeout_ms,
                              m->epfd, MASTER_TAG_CONTROL, master_commands, master_command_count, m,
                              err, sizeof(err));
        if (!m->ctl) {
            log_msg(LOG_ERROR, "control socket: %s", err);
            return -1;
        }
        log_msg(LOG_INFO, "control socket on %s (mode %04o)", m->cfg->control,
                m->cfg->control_chmod);
    }
    return 0;
}

int master_run(const struct config *cfg, struct listener *listeners, size_t listener_count,
               struct app *app, int argc, char **argv, const struct master_start *start)
{
    struct master m = {
        .cfg = cfg,
        .listeners = listeners,
        .listener_count = listener_count,
        .app = app,
        .target = cfg->processes,
        .max_workers = config_max_processes(cfg),
        .epfd = -1,
        .sigfd = -1,
        .timerfd = -1,
        .started_ms = clock_now_ms(),
        .argc = argc,
        .argv = argv,
        .reload = {.generation = 1, .last_ok = true},
        .reexec = {.enabled = start->preloads, .cwd_fd = start->cwd_fd, .check_fd = -1},
        .notify = {.fd = -1},
        .sb = {.fd = -1},
    };
    int status = 1;
    if (master_setup(&m, start->rx) < 0)
        goto out;
    if (start->rx)
        master_adopt(&m, start->rx);
    master_pool_start(&m);
    if (start->rx) {
        master_adopt_start(&m, start->rx, start->app_ok);
        master_reap(&m); /* a SIGCHLD pending across the exec was lost when set to default */
    } else {
        atomic_store(&m.sb.hdr->slots, master_slots_span(&m));
        log_msg(LOG_INFO,
                "corral started: pool %s, %u processes to start (at most %u) x %u threads, "
                "%zu listeners",
                config_pool_mode_name(m.pool.mode), master_pool_starting(&m), m.max_workers,
                cfg->threads, listener_count);
    }
    while (m.state == MASTER_RUNNING || m.live > 0 || master_programs_live(&m) > 0) {
        if (m.reexec.exec_due)
            master_reload_reexec(&m); /* returns only when the re-exec failed */
        master_programs_spawn_due(&m);
        if (m.programs.fatal && m.state == MASTER_RUNNING) {
            m.exit_status = 1;
            master_stop(&m, true);
        }
        master_spawn_due(&m);
        master_pool_publish(&m);
        struct epoll_event evs[8];
        int n = epoll_wait(m.epfd, evs, 8, -1);
        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "master: epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == MASTER_TAG_SIGNAL)
                master_handle_signals(&m);
            else if (tag == MASTER_TAG_TIMER)
                master_tick(&m);
            else if (master_programs_owns(tag))
                master_programs_event(&m, tag);
            else if (master_pool_owns(tag))
                master_pool_listener_event(&m);
            else if (control_owns(m.ctl, tag))
                control_event(m.ctl, tag, evs[i].events);
        }
    }
    status = m.live ? 1 : m.exit_status;
    log_msg(LOG_INFO, "corral stopped");
out:
    control_close(m.ctl);
    systemd_notify_close(&m.notify);
    for (size_t i = 0; i < listener_count; i++)
        listen_close(&listeners[i], true);
    if (m.epfd >= 0)
        close(m.epfd);
    if (m.sigfd >= 0)
        close(m.sigfd);
    if (m.timerfd >= 0)
        close(m.timerfd);
    master_programs_fini(&m);
    free(m.workers);
    free(m.queues);
    master_reload_fini(&m);
    scoreboard_destroy(&m.sb);
    return status;
}
