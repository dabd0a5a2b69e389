/*
 * app_cgi.c — the adapter of CGI scripts (see app_cgi.h): load (root,
 * limits, the environment's constant part), the worker's CGI loop
 * (cgi_loop.h: started by worker_init, ended by worker_fini, told by
 * stopping), and handle, which detaches every request: the loop runs it.
 */
#include "app_cgi.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi_job.h"
#include "cgi_loop.h"
#include "conn/conn.h"
#include "conn/request.h"
#include "core/log.h"

#define APP_CGI_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct cgi_app {
    struct cgi_conf conf;
    unsigned graceful_timeout_ms;
    struct cgi_loop *loop; /* the worker's (after worker_init) */
};

static void cgi_app_free(struct cgi_app *ca)
{
    if (!ca)
        return;
    for (size_t i = 0; i < ca->conf.base.count; i++)
        free(ca->conf.base.env[i]);
    free(ca->conf.base.env);
    for (size_t i = 0; i < ca->conf.base.params_count; i++)
        free(ca->conf.base.params[i]);
    free(ca->conf.base.params);
    free(ca);
}

static int cgi_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    if (geteuid() == 0 && !c->uid && !c->allow_root) {
        snprintf(err, errlen,
                 "cgi: refusing to run scripts as root: give --uid USER (or "
                 "--allow-root)");
        return -1;
    }
    struct cgi_app *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!realpath(c->cgi, ca->conf.root)) {
        snprintf(err, errlen, "cgi: the root %s: %s", c->cgi, strerror(errno));
        goto fail;
    }
    ca->conf.base.env = calloc(c->env_count + 1, sizeof(char *));
    ca->conf.base.params = calloc(c->cgi_params_count + 1, sizeof(char *));
    if (!ca->conf.base.env || !ca->conf.base.params)
        goto nomem;
    bool own_path = false;
    for (size_t i = 0; i < c->env_count; i++)
        own_path |= strncmp(c->env[i], "PATH=", 5) == 0;
    if (!own_path) {
        const char *path = getenv("PATH");
        size_t n = strlen(path ? path : APP_CGI_DEFAULT_PATH);
        char *s = malloc(n + 6);
        if (!s)
            goto nomem;
        memcpy(s, "PATH=", 5);
        memcpy(s + 5, path ? path : APP_CGI_DEFAULT_PATH, n + 1);
        ca->conf.base.env[ca->conf.base.count++] = s;
    }
    for (size_t i = 0; i < c->env_count; i++) {
        if (!(ca->conf.base.env[ca->conf.base.count] = strdup(c->env[i])))
            goto nomem;
        ca->conf.base.count++;
    }
    for (size_t i = 0; i < c->cgi_params_count; i++) {
        if (!(ca->conf.base.params[ca->conf.base.params_count] = strdup(c->cgi_params[i])))
            goto nomem;
        ca->conf.base.params_count++;
    }
    ca->conf.limits = (struct cgi_limits){.as = c->cgi_rlimit_as,
                                          .cpu = c->cgi_rlimit_cpu,
                                          .nproc = c->cgi_rlimit_nproc,
                                          .nofile = c->cgi_rlimit_nofile};
    ca->conf.timeout_ms = c->cgi_timeout_ms;
    ca->conf.queue_ms = c->cgi_queue_timeout_ms;
    /* A running script holds no thread (cgi_loop.h): the limit is the
     * worker's processes and descriptors, not its threads. */
    ca->conf.max_scripts = c->cgi_max_scripts ? c->cgi_max_scripts : APP_CGI_MAX_SCRIPTS;
    ca->graceful_timeout_ms = c->graceful_timeout_ms;
    app->data = ca;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    cgi_app_free(ca);
    return -1;
}

static int cgi_worker_init(struct app *app)
{
    struct cgi_app *ca = app->data;
    ca->loop = cgi_loop_new(&ca->conf, ca->graceful_timeout_ms);
    return ca->loop ? 0 : -1;
}

static int cgi_thread_init(struct app *app)
{
    (void)app;
    return 0;
}

/* The worker exits: a script still running is killed with its group. */
static void cgi_worker_fini(struct app *app)
{
    struct cgi_app *ca = app->data;
    cgi_loop_free(ca->loop);
    ca->loop = NULL;
}

static void cgi_unload(struct app *app)
{
    cgi_app_free(app->data);
    app->data = NULL;
}

/* The job run_detached hands over, made by handle in the same thread. */
static _Thread_local struct cgi_job *cgi_pending;

/* Nothing is done here but a job: the loop takes the request (resolve,
 * turn, spawn, run) once the worker let go of it (run_detached). */
static int cgi_handle(struct app *app, corral_request *req)
{
    struct cgi_app *ca = app->data;
    struct cgi_job *job = malloc(sizeof(*job));
    if (!job)
        return -1;
    cgi_job_init(job, app, &ca->conf, req, cgi_loop_epfd(ca->loop));
    cgi_pending = job;
    return APP_DETACHED;
}

static void cgi_run_detached(struct app *app, corral_request *req)
{
    struct cgi_app *ca = app->data;
    struct cgi_job *job = cgi_pending;
    cgi_pending = NULL;
    conn_set_nowait(req->conn, true);
    cgi_loop_push(ca->loop, job);
}

static void cgi_stopping(struct app *app)
{
    struct cgi_app *ca = app->data;
    if (ca->loop)
        cgi_loop_stopping(ca->loop);
}

const struct app_ops app_cgi_ops = {
    .name = "cgi",
    .load = cgi_load,
    .worker_init = cgi_worker_init,
    .thread_init = cgi_thread_init,
    .handle = cgi_handle,
    .run_detached = cgi_run_detached,
    .worker_fini = cgi_worker_fini,
    .stopping = cgi_stopping,
    .unload = cgi_unload,
};
