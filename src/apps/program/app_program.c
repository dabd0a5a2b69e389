/*
 * app_program.c — the adapter of existing FastCGI programs (see
 * app_program.h). load runs in the master before the fork: it maps the
 * program table, which every worker inherits; the master binds the
 * programs' sockets (program_table_open) when it takes the pool, before it
 * forks the workers that use it, so a load that only checks (corral -t, a
 * reload's check) makes no file. handle claims an idle program (waiting up to --io-timeout, then
 * 503), forwards the request (program_forward.c) over the connection the
 * worker keeps to it (program_keep.c) or a new one, and releases the
 * claim. fork_prepare forbids kept connections before the master forks a
 * worker: the master allows them again once a single worker runs
 * (src/master/master_programs.c).
 */
#include "app_program.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"
#include "os/privs.h"
#include "program_forward.h"
#include "program_keep.h"

/* A worker answers an overrun request this long before its own watchdog's
 * --harakiri would end the whole worker. */
#define PROGRAM_HARAKIRI_MARGIN_MS 300

struct program_app {
    struct program_pool pool; /* first: app_program_pool_free casts back */
    char *cmd;                /* the copy argv points into */
    unsigned io_ms;
    struct program_keep keep; /* in a worker: its kept connections */
    pid_t self;               /* in a worker: its pid */
};

struct program_pool *app_program_pool(struct app *app)
{
    if (!app || app->ops != &app_program_ops || !app->data)
        return NULL;
    return &((struct program_app *)app->data)->pool;
}

static void program_app_free(struct program_app *pa)
{
    if (!pa)
        return;
    program_table_destroy(pa->pool.table);
    free(pa->pool.argv);
    free(pa->pool.chdir);
    free(pa->cmd);
    free(pa);
}

/* Split CMD in place at blanks into a NULL-terminated array. */
static char **program_split(char *cmd)
{
    size_t cap = 8, n = 0;
    char **argv = malloc(cap * sizeof(*argv));
    char *save = NULL;
    for (char *w = strtok_r(cmd, " \t", &save); w && argv; w = strtok_r(NULL, " \t", &save)) {
        if (n + 2 > cap) {
            char **bigger = realloc(argv, (cap *= 2) * sizeof(*argv));
            if (!bigger) {
                free(argv);
                return NULL;
            }
            argv = bigger;
        }
        argv[n++] = w;
    }
    if (argv)
        argv[n] = NULL;
    return argv;
}

static int program_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    struct program_app *pa = calloc(1, sizeof(*pa));
    if (!pa || !(pa->cmd = strdup(c->fastcgi_program)) ||
        !(pa->pool.argv = program_split(pa->cmd))) {
        snprintf(err, errlen, "out of memory");
        program_app_free(pa);
        return -1;
    }
    if (!pa->pool.argv[0]) {
        snprintf(err, errlen, "fastcgi_program: no command");
        program_app_free(pa);
        return -1;
    }
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (c->uid && geteuid() == 0) {
        if (privs_resolve_user(c->uid, &uid, &gid, err, errlen) < 0 ||
            (c->gid && privs_resolve_group(c->gid, &gid, err, errlen) < 0)) {
            program_app_free(pa);
            return -1;
        }
    }
    unsigned n = config_program_processes(c);
    pa->pool.sock_uid = uid;
    pa->pool.sock_gid = gid;
    pa->pool.backlog = c->backlog;
    pa->pool.table = program_table_create(n, err, errlen);
    if (!pa->pool.table) {
        program_app_free(pa);
        return -1;
    }
    if (c->chdir && !(pa->pool.chdir = strdup(c->chdir))) {
        snprintf(err, errlen, "out of memory");
        program_app_free(pa);
        return -1;
    }
    pa->pool.max_requests = c->max_requests;
    pa->pool.max_rss_mib = c->max_rss_mib;
    pa->pool.harakiri_ms = c->harakiri_ms;
    pa->pool.graceful_ms = c->graceful_timeout_ms;
    pa->io_ms = c->io_timeout_ms;
    app->data = pa;
    return 0;
}

static int program_worker_init(struct app *app)
{
    struct program_app *pa = app->data;
    pa->self = getpid();
    if (program_keep_init(&pa->keep, pa->pool.table) < 0)
        log_msg(LOG_WARN, "FastCGI programs: no kept connections in this worker (%s)",
                strerror(errno));
    return 0;
}

static int program_thread_init(struct app *app)
{
    (void)app;
    return 0;
}

static int program_answer(corral_request *req, int status, const char *text)
{
    corral_set_status(req, status, NULL);
    corral_add_header(req, "Content-Type", "text/plain");
    return corral_write_final(req, text, strlen(text));
}

static int program_handle(struct app *app, corral_request *req)
{
    struct program_app *pa = app->data;
    struct program_table *t = pa->pool.table;
    uint64_t now = clock_now_ms();
    uint64_t deadline = UINT64_MAX;
    if (pa->pool.harakiri_ms) {
        uint64_t start_ms = req->start_us / 1000;
        uint64_t limit = pa->pool.harakiri_ms > 2 * PROGRAM_HARAKIRI_MARGIN_MS
                             ? pa->pool.harakiri_ms - PROGRAM_HARAKIRI_MARGIN_MS
                             : pa->pool.harakiri_ms / 2;
        deadline = start_ms + limit;
    }
    uint64_t wait_until = now + pa->io_ms < deadline ? now + pa->io_ms : deadline;
    int i = program_claim_as(t, wait_until, pa->pool.max_requests, pa->self);
    if (i < 0) {
        bool late = clock_now_ms() >= deadline;
        log_msg(LOG_ERROR, "no FastCGI program became idle within %llu ms%s: %d",
                (unsigned long long)(wait_until - now), late ? " (--harakiri)" : "",
                late ? 504 : 503);
        return late ? program_answer(req, 504, "Gateway Timeout: every program is busy\n")
                    : program_answer(req, 503, "Service Unavailable: every program is busy\n");
    }
    struct program_slot *s = &t->slots[i];
    uint32_t gen = atomic_load(&s->gen); /* before any connect: see program_keep_take */
    int fd = program_keep_take(&pa->keep, (unsigned)i);
    bool keep = program_keep_wanted(&pa->keep, (unsigned)i);
    enum program_outcome out =
        program_forward(s->path, (unsigned)i, req, deadline, pa->io_ms, &fd, keep);
    if (fd >= 0)
        program_keep_put(&pa->keep, (unsigned)i, fd, gen);
    int32_t pid = atomic_load(&s->pid);
    bool overran = clock_now_ms() >= deadline;
    if (out == PROGRAM_TIMED_OUT || (out == PROGRAM_BROKEN && overran)) {
        /* Harakiri: stuck in this request; the master respawns it, the
         * other programs serve on. */
        if (pid > 0) {
            atomic_store(&s->harakiri, 1);
            kill(pid, SIGKILL);
        }
        log_msg(LOG_ERROR,
                "harakiri: FastCGI program %d (pid %d) did not answer %s %s in time: "
                "killed",
                i, (int)pid, req->method ? req->method : "-", req->uri ? req->uri : "-");
    }
    atomic_fetch_add(&s->requests, 1);
    atomic_fetch_add(&s->served, 1);
    program_release(t, (unsigned)i);
    switch (out) {
    case PROGRAM_OK:
        return 0;
    case PROGRAM_FAILED:
        return program_answer(req, 502, "Bad Gateway: the FastCGI program failed\n");
    case PROGRAM_TIMED_OUT:
        return program_answer(req, 504, "Gateway Timeout: the FastCGI program did not answer\n");
    case PROGRAM_BROKEN:
    default:
        return -1;
    }
}

static void program_worker_fini(struct app *app)
{
    struct program_app *pa = app->data;
    program_keep_stop(&pa->keep);
}

/* The worker stops taking requests: it keeps no program from another. */
static void program_stopping(struct app *app)
{
    struct program_app *pa = app->data;
    program_keep_stop(&pa->keep);
}

/* In the master, before it forks a worker: no worker keeps connections
 * while another may run (the master allows them again). */
static void program_fork_prepare(struct app *app)
{
    struct program_app *pa = app->data;
    if (pa)
        program_table_set_keep(pa->pool.table, false);
}

void app_program_pool_free(struct program_pool *pool)
{
    program_app_free((struct program_app *)pool);
}

/* A reload replaced (or rolled back) this app. Programs the master started
 * may still serve the old workers' last requests: the master stops them
 * and frees the pool (app_program_pool_free) once they are idle. */
static void program_unload(struct app *app)
{
    struct program_app *pa = app->data;
    if (!pa)
        return;
    if (pa->pool.supervised)
        pa->pool.retired = true;
    else
        program_app_free(pa);
    app->data = NULL;
}

const struct app_ops app_program_ops = {
    .name = "fastcgi-program",
    .load = program_load,
    .worker_init = program_worker_init,
    .thread_init = program_thread_init,
    .handle = program_handle,
    .worker_fini = program_worker_fini,
    .stopping = program_stopping,
    .fork_prepare = program_fork_prepare,
    .unload = program_unload,
};
