/*
 * master_programs.c — the FastCGI programs of a --fastcgi-program app
 * (src/apps/program/app_program.h): the master starts them as its own
 * children, each with its slot's listening socket as fd 0
 * (FCGI_LISTENSOCK_FILENO), PHP_FCGI_CHILDREN=0, PHP_FCGI_MAX_REQUESTS=0
 * unless the environment sets it, and its stderr on a pipe
 * the loop reads into the error log; it respawns them (1 s doubling to
 * 30 s when one keeps dying at start; a program that cannot start at all
 * before any ran stops corral), recycles them (--max-requests by the
 * adapter's count, --max-rss), kills one whose request claim overran
 * --harakiri (the workers' adapter kills first; this catches the rest),
 * frees claims left by a worker that died, and stops them: the programs
 * of a replaced app once it is retired and the reload is over, all of them
 * once no worker runs at a stop (SIGTERM, SIGKILL after
 * --graceful-timeout). It allows the workers to keep their connections to
 * the programs (program_table_set_keep) only while a single worker runs
 * (one kept connection pins a program to its process), bumps a slot's gen
 * at each start (a kept connection to its predecessor is not reused).
 *
 * The programs run as the master does: it dropped to --uid/--gid before
 * the app was loaded. The listening sockets stay open in the master, so
 * a connection made while a program restarts waits in the backlog for its
 * successor. A program is stopped only while the master holds its claim
 * (program_claim_master): never in the middle of a request.
 *
 * Called only from master.c's loop; calls no other master file.
 */
#include "master_state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/program/app_program.h"
#include "core/clock.h"
#include "core/log.h"

#define PROGRAMS_HARAKIRI_GRACE_MS 2000
#define PROGRAMS_LOG_LINES_PER_S 20
/* epoll data of a program's stderr: the tag bit, the pool, the slot; with
 * PROGRAMS_EXEC_BIT, of its exec check (programs_exec_result). */
#define PROGRAMS_TAG (1ull << 62)
#define PROGRAMS_EXEC_BIT (1ull << 61)

static void programs_epoll_del(struct master *m, struct program_slot *s)
{
    if (s->stderr_fd < 0)
        return;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, s->stderr_fd, NULL);
    close(s->stderr_fd);
    s->stderr_fd = -1;
    s->line_len = 0;
}

/* In the child: never returns. ERR_FD gets errno if the exec fails. */
static void programs_exec(struct program_pool *pool, struct program_slot *s, int out_fd, int err_fd)
{
    if (dup2(s->listen_fd, 0) < 0 || dup2(out_fd, 2) < 0 || dup2(err_fd, 3) < 0)
        _exit(127);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, 1);
    close_range(4, ~0u, 0);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    sigset_t all;
    sigfillset(&all);
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setenv("PHP_FCGI_CHILDREN", "0", 1);
    /* php-cgi ends itself after 500 requests unless told otherwise: without
     * the user's own value, recycling is corral's (--max-requests). */
    setenv("PHP_FCGI_MAX_REQUESTS", "0", 0);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    if (pool->chdir && chdir(pool->chdir) < 0) {
        int e = errno;
        if (write(3, &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    execvp(pool->argv[0], pool->argv);
    int e = errno;
    if (write(3, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

/* Start the program of slot I. Returns 0, or -1 when the fork failed
 * (retry later). Whether it could be executed is programs_exec_result's. */
static int programs_spawn(struct master *m, unsigned pool_i, unsigned i)
{
    struct program_pool *pool = m->programs.pools[pool_i];
    struct program_slot *s = &pool->table->slots[i];
    int out[2], perr[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(perr, O_CLOEXEC) < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        programs_exec(pool, s, out[1], perr[1]);
    close(out[1]);
    close(perr[1]);
    if (pid < 0) {
        log_msg(LOG_ERROR, "fork() for FastCGI program %u failed: %s", i, strerror(errno));
        close(out[0]);
        close(perr[0]);
        return -1;
    }
    atomic_store(&s->pid, (int32_t)pid);
    atomic_fetch_add(&s->gen, 1);
    s->started_ms = clock_now_ms();
    s->respawn_at_ms = 0;
    s->stopping = false;
    atomic_store(&s->requests, 0);
    atomic_store(&s->harakiri, 0);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    s->stderr_fd = out[0];
    s->line_len = 0;
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = PROGRAMS_TAG | (uint64_t)pool_i << 32 | i};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, s->stderr_fd, &ev);
    /* Whether the exec worked is known when the pipe reports: the loop
     * never waits for a child (a chdir or exec on a slow file system). */
    fcntl(perr[0], F_SETFL, O_NONBLOCK);
    s->exec_fd = perr[0];
    ev.data.u64 |= PROGRAMS_EXEC_BIT;
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, s->exec_fd, &ev);
    m->programs.live++;
    return 0;
}

static bool programs_stopping(const struct master *m)
{
    return m->state != MASTER_RUNNING;
}

/* Slot I's exec check: its child wrote errno (the exec failed: a start-up
 * error before any program ran) or closed the pipe by its exec (it runs:
 * open it to requests). Nothing there yet: ask again at the next event. */
static void programs_exec_result(struct master *m, struct program_pool *pool, unsigned i)
{
    struct program_slot *s = &pool->table->slots[i];
    int e = 0;
    ssize_t n;
    do
        n = read(s->exec_fd, &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, s->exec_fd, NULL);
    close(s->exec_fd);
    s->exec_fd = -1;
    if (n == sizeof(e)) {
        s->exec_failed = true;
        log_msg(LOG_ERROR, "FastCGI program %u: cannot execute %s: %s%s", i, pool->argv[0],
                strerror(e),
                pool->table->up || programs_stopping(m)
                    ? ""
                    : "; before any program ran: not respawning, stopping corral");
        if (!pool->table->up)
            m->programs.fatal = true;
        return;
    }
    log_msg(LOG_INFO, "FastCGI program %u started (pid %d): %s", i, (int)atomic_load(&s->pid),
            pool->argv[0]);
    /* Open to requests: a connection waits in the socket's backlog until
     * the program accepts it. */
    program_release_master(pool->table, i);
}

void master_programs_spawn_due(struct master *m)
{
    if (programs_stopping(m))
        return;
    /* The current app's pool, once: from then on it is supervised here. */
    struct program_pool *cur = app_program_pool(m->app);
    if (cur && !cur->supervised) {
        unsigned k;
        for (k = 0; k < MASTER_PROGRAM_POOLS && m->programs.pools[k]; k++)
            ;
        if (k == MASTER_PROGRAM_POOLS) {
            log_msg(LOG_ERROR, "too many FastCGI program pools draining: not starting more");
            return;
        }
        cur->supervised = true;
        m->programs.pools[k] = cur;
        char err[256];
        if (program_table_open(cur->table, cur->sock_uid, cur->sock_gid, cur->backlog, err,
                               sizeof(err)) < 0) {
            /* At start corral stops; after a reload the new workers answer
             * 503 (the app's check cannot see this: it makes no file). */
            log_msg(LOG_ERROR, "FastCGI programs: %s%s", err,
                    m->pool_was_up ? ": their requests get 503; fix it and reload" : "");
            if (!m->pool_was_up)
                m->programs.fatal = true;
            return; /* supervised with no program: its slots stay the master's */
        }
        log_msg(LOG_INFO, "FastCGI programs: %u copies of %s, sockets in %s", cur->table->count,
                cur->argv[0], cur->table->dir);
        for (unsigned i = 0; i < cur->table->count; i++)
            cur->table->slots[i].respawn_at_ms = 1; /* due now */
    }
    uint64_t now = clock_now_ms();
    for (unsigned k = 0; k < MASTER_PROGRAM_POOLS; k++) {
        struct program_pool *pool = m->programs.pools[k];
        if (!pool || pool->retired)
            continue;
        for (unsigned i = 0; i < pool->table->count; i++) {
            struct program_slot *s = &pool->table->slots[i];
            if (atomic_load(&s->pid) || !s->respawn_at_ms || now < s->respawn_at_ms)
                continue;
            if (programs_spawn(m, k, i) < 0)
                s->respawn_at_ms = now + 1000;
        }
    }
}

/* Find the slot of PID. */
static struct program_slot *programs_find(struct master *m, pid_t pid, unsigned *pool_i,
                                          unsigned *idx)
{
    for (unsigned k = 0; k < MASTER_PROGRAM_POOLS; k++) {
        struct program_pool *pool = m->programs.pools[k];
        if (!pool)
            continue;
        for (unsigned i = 0; i < pool->table->count; i++)
            if (atomic_load(&pool->table->slots[i].pid) == pid) {
                *pool_i = k;
                *idx = i;
                return &pool->table->slots[i];
            }
    }
    return NULL;
}

/* Log what is complete in slot S's stderr buffer, rate-limited. */
static void programs_log_line(struct program_slot *s, unsigned i, const char *line, size_t len)
{
    uint64_t now = clock_now_ms();
    if (now - s->log_window_ms >= 1000) {
        if (s->log_dropped)
            log_msg(LOG_WARN, "FastCGI program %u (pid %d): %u stderr lines not logged", i,
                    (int)atomic_load(&s->pid), s->log_dropped);
        s->log_window_ms = now;
        s->log_lines = 0;
        s->log_dropped = 0;
    }
    if (++s->log_lines > PROGRAMS_LOG_LINES_PER_S) {
        s->log_dropped++;
        return;
    }
    log_msg(LOG_WARN, "FastCGI program %u (pid %d): %.*s", i, (int)atomic_load(&s->pid), (int)len,
            line);
}

static void programs_read_stderr(struct master *m, struct program_slot *s, unsigned i)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(s->stderr_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (s->line_len)
                programs_log_line(s, i, s->line, s->line_len);
            programs_epoll_del(m, s);
            return;
        }
        for (ssize_t k = 0; k < n; k++) {
            if (buf[k] == '\n' || s->line_len == sizeof(s->line)) {
                programs_log_line(s, i, s->line, s->line_len);
                s->line_len = 0;
                if (buf[k] == '\n')
                    continue;
            }
            s->line[s->line_len++] = buf[k];
        }
    }
}

bool master_programs_owns(uint64_t tag)
{
    return (tag & PROGRAMS_TAG) != 0;
}

void master_programs_event(struct master *m, uint64_t tag)
{
    unsigned k = (unsigned)(tag >> 32) & 0xffff, i = (unsigned)tag & 0xffffffffu;
    struct program_pool *pool = k < MASTER_PROGRAM_POOLS ? m->programs.pools[k] : NULL;
    if (!pool || i >= pool->table->count)
        return;
    if (tag & PROGRAMS_EXEC_BIT) {
        if (pool->table->slots[i].exec_fd >= 0)
            programs_exec_result(m, pool, i);
    } else if (pool->table->slots[i].stderr_fd >= 0) {
        programs_read_stderr(m, &pool->table->slots[i], i);
    }
}

enum master_program_end master_programs_reaped(struct master *m, pid_t pid, int status)
{
    unsigned k, i;
    struct program_slot *s = programs_find(m, pid, &k, &i);
    if (!s)
        return MASTER_PROGRAM_OTHER;
    struct program_pool *pool = m->programs.pools[k];
    if (s->exec_fd >= 0)
        programs_exec_result(m, pool, i); /* its child is gone: the pipe has told */
    if (s->stderr_fd >= 0)
        programs_read_stderr(m, s, i);
    programs_epoll_del(m, s);
    atomic_store(&s->pid, 0);
    m->programs.live--;
    uint64_t now = clock_now_ms(), lived = now - s->started_ms;
    char what[96];
    if (WIFEXITED(status))
        snprintf(what, sizeof(what), "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(what, sizeof(what), "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(what, sizeof(what), "ended (wait status %d)", status);
    bool harakiri = atomic_exchange(&s->harakiri, 0) != 0;
    /* An idle slot is the master's until the successor runs; a request's
     * claim stays its worker's, which releases it itself. */
    uint32_t idle = PROGRAM_IDLE;
    atomic_compare_exchange_strong(&s->busy, &idle, PROGRAM_CLAIM_MASTER);
    bool was_stopping = s->stopping;
    s->stopping = false;
    if (programs_stopping(m) || pool->retired) {
        log_msg(LOG_INFO, "FastCGI program %u (pid %d) %s", i, (int)pid, what);
        return MASTER_PROGRAM_HANDLED;
    }
    bool exec_failed = s->exec_failed;
    s->exec_failed = false;
    if (!pool->table->up && lived < MASTER_FAST_DEATH_MS && !atomic_load(&s->served) &&
        !was_stopping) {
        /* An exec that failed said why already (programs_exec_result). */
        if (!exec_failed)
            log_msg(LOG_ERROR,
                    "FastCGI program %u (pid %d) %s %llu ms after it started, before any "
                    "program ran: it cannot start; not respawning, stopping corral",
                    i, (int)pid, what, (unsigned long long)lived);
        m->programs.fatal = true;
        return MASTER_PROGRAM_FATAL;
    }
    if (was_stopping || harakiri) {
        log_msg(was_stopping ? LOG_INFO : LOG_WARN,
                "FastCGI program %u (pid %d) %s (%s); "
                "starting its successor",
                i, (int)pid, what, was_stopping ? "recycled" : "harakiri");
        s->fast_deaths = 0;
        s->respawn_at_ms = now;
    } else if (lived < MASTER_FAST_DEATH_MS && !atomic_load(&s->requests)) {
        unsigned delay = master_backoff_s(++s->fast_deaths);
        log_msg(LOG_ERROR,
                "FastCGI program %u (pid %d) %s %llu ms after it started (%u times in a row); "
                "respawning in %u s",
                i, (int)pid, what, (unsigned long long)lived, s->fast_deaths, delay);
        s->respawn_at_ms = now + delay * 1000u;
    } else {
        s->fast_deaths = 0;
        /* php-cgi ends itself after PHP_FCGI_MAX_REQUESTS: status 0. */
        log_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? LOG_INFO : LOG_ERROR,
                "FastCGI program %u (pid %d) %s; respawning", i, (int)pid, what);
        s->respawn_at_ms = now;
    }
    return MASTER_PROGRAM_HANDLED;
}

/* The resident set of PID in MiB, or 0 when unknown. */
static unsigned long programs_rss_mib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long size = 0, rss = 0;
    int ok = fscanf(f, "%lu %lu", &size, &rss);
    fclose(f);
    return ok == 2 ? rss * (unsigned long)sysconf(_SC_PAGESIZE) / (1024 * 1024) : 0;
}

/* Stop the program of slot S now that the master holds its claim. */
static void programs_stop_one(struct program_slot *s, uint64_t now)
{
    int32_t pid = atomic_load(&s->pid);
    s->stopping = true;
    s->stop_sent_ms = now;
    if (pid > 0)
        kill(pid, SIGTERM);
}

static void programs_tick_pool(struct master *m, struct program_pool *pool, bool stop_all,
                               uint64_t now)
{
    struct program_table *t = pool->table;
    for (unsigned i = 0; i < t->count; i++) {
        struct program_slot *s = &t->slots[i];
        int32_t pid = atomic_load(&s->pid);
        if (!pid)
            continue;
        if (!t->up && (now - s->started_ms >= MASTER_FAST_DEATH_MS || atomic_load(&s->served)))
            t->up = true;
        uint32_t busy = atomic_load(&s->busy);
        if (busy == PROGRAM_CLAIM_REQUEST) {
            int32_t owner = atomic_load(&s->owner);
            if (owner > 0 && kill(owner, 0) < 0 && errno == ESRCH) {
                /* The worker died holding it: the program may be mid-way
                 * through that request; recycle it. */
                log_msg(LOG_WARN,
                        "FastCGI program %u: its worker (pid %d) died in a request; "
                        "recycling it",
                        i, (int)owner);
                uint32_t want = PROGRAM_CLAIM_REQUEST;
                if (atomic_compare_exchange_strong(&s->busy, &want, PROGRAM_CLAIM_MASTER))
                    programs_stop_one(s, now);
                continue;
            }
            uint64_t since = atomic_load(&s->claimed_ms);
            if (pool->harakiri_ms && now > since &&
                now - since > pool->harakiri_ms + PROGRAMS_HARAKIRI_GRACE_MS &&
                !atomic_load(&s->harakiri)) {
                log_msg(LOG_ERROR,
                        "harakiri: FastCGI program %u (pid %d) busy for %llu ms: "
                        "killed",
                        i, (int)pid, (unsigned long long)(now - since));
                atomic_store(&s->harakiri, 1);
                kill(pid, SIGKILL);
            }
            continue;
        }
        if (s->stopping) {
            if (now - s->stop_sent_ms > pool->graceful_ms) {
                log_msg(LOG_WARN,
                        "FastCGI program %u (pid %d) still running %u ms after "
                        "SIGTERM: killing it",
                        i, (int)pid, pool->graceful_ms);
                kill(pid, SIGKILL);
                s->stop_sent_ms = now;
            }
            continue;
        }
        bool recycle = pool->max_requests && atomic_load(&s->requests) >= pool->max_requests;
        bool fat = false;
        if (!recycle && pool->max_rss_mib && now - m->programs.rss_checked_ms >= 1000) {
            unsigned long rss = programs_rss_mib(pid);
            fat = rss > pool->max_rss_mib;
            if (fat)
                log_msg(LOG_INFO, "FastCGI program %u (pid %d): RSS %lu MiB over --max-rss", i,
                        (int)pid, rss);
        }
        if ((stop_all || recycle || fat) && program_claim_master(t, i)) {
            if (recycle)
                log_msg(LOG_INFO,
                        "FastCGI program %u (pid %d) served %llu requests: "
                        "recycling it",
                        i, (int)pid, (unsigned long long)atomic_load(&s->requests));
            programs_stop_one(s, now);
        } else if (stop_all && busy == PROGRAM_CLAIM_MASTER) {
            programs_stop_one(s, now); /* claimed by the master, not yet stopped */
        }
    }
}

void master_programs_tick(struct master *m)
{
    uint64_t now = clock_now_ms();
    /* At a stop the programs go once no worker needs them. */
    bool stop_all = programs_stopping(m) && m->live == 0;
    for (unsigned k = 0; k < MASTER_PROGRAM_POOLS; k++) {
        struct program_pool *pool = m->programs.pools[k];
        if (!pool)
            continue;
        /* A replaced app's programs: once the reload is over, its old
         * workers are gone. */
        bool retire = pool->retired && m->reload.phase == RELOAD_IDLE;
        /* One worker process at most: its kept connections pin nothing
         * another process would want (fork_prepare forbids them before the
         * next fork). */
        program_table_set_keep(pool->table,
                               m->live <= 1 && !pool->retired && !programs_stopping(m));
        programs_tick_pool(m, pool, stop_all || retire, now);
        if (pool->retired) {
            bool any = false;
            for (unsigned i = 0; i < pool->table->count; i++)
                any |= atomic_load(&pool->table->slots[i].pid) != 0;
            if (!any) {
                for (unsigned i = 0; i < pool->table->count; i++)
                    programs_epoll_del(m, &pool->table->slots[i]);
                app_program_pool_free(pool);
                m->programs.pools[k] = NULL;
            }
        }
    }
    if (now - m->programs.rss_checked_ms >= 1000)
        m->programs.rss_checked_ms = now;
}

unsigned master_programs_live(const struct master *m)
{
    return m->programs.live;
}

void master_programs_fini(struct master *m)
{
    for (unsigned k = 0; k < MASTER_PROGRAM_POOLS; k++) {
        struct program_pool *pool = m->programs.pools[k];
        if (!pool)
            continue;
        for (unsigned i = 0; i < pool->table->count; i++)
            programs_epoll_del(m, &pool->table->slots[i]);
        if (pool->retired) {
            app_program_pool_free(pool);
        } else {
            /* The app still owns the table: only the files go. */
            for (unsigned i = 0; i < pool->table->count; i++)
                unlink(pool->table->slots[i].path);
            rmdir(pool->table->dir);
        }
        m->programs.pools[k] = NULL;
    }
}
