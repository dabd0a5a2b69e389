/*
 * app_cgi.c — the adapter of CGI scripts (see app_cgi.h): load (root,
 * limits, the environment's constant part), the per-worker count of
 * running scripts, and handle: resolve, wait for a turn, build the
 * environment, spawn, run, follow local redirects.
 */
#include "app_cgi.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgi_env.h"
#include "cgi_run.h"
#include "cgi_script.h"
#include "cgi_spawn.h"
#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"

#define APP_CGI_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct cgi_app {
    char root[PATH_MAX];
    struct cgi_env_base base;
    struct cgi_limits limits;
    unsigned timeout_ms, queue_ms, max_scripts;
    /* The worker's running scripts (after worker_init). */
    pthread_mutex_t lock;
    pthread_cond_t turn;
    unsigned running;
};

static void cgi_app_free(struct cgi_app *ca)
{
    if (!ca)
        return;
    for (size_t i = 0; i < ca->base.count; i++)
        free(ca->base.env[i]);
    free(ca->base.env);
    for (size_t i = 0; i < ca->base.params_count; i++)
        free(ca->base.params[i]);
    free(ca->base.params);
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
    if (!realpath(c->cgi, ca->root)) {
        snprintf(err, errlen, "cgi: the root %s: %s", c->cgi, strerror(errno));
        goto fail;
    }
    ca->base.env = calloc(c->env_count + 1, sizeof(char *));
    ca->base.params = calloc(c->cgi_params_count + 1, sizeof(char *));
    if (!ca->base.env || !ca->base.params)
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
        ca->base.env[ca->base.count++] = s;
    }
    for (size_t i = 0; i < c->env_count; i++) {
        if (!(ca->base.env[ca->base.count] = strdup(c->env[i])))
            goto nomem;
        ca->base.count++;
    }
    for (size_t i = 0; i < c->cgi_params_count; i++) {
        if (!(ca->base.params[ca->base.params_count] = strdup(c->cgi_params[i])))
            goto nomem;
        ca->base.params_count++;
    }
    ca->limits = (struct cgi_limits){.as = c->cgi_rlimit_as,
                                     .cpu = c->cgi_rlimit_cpu,
                                     .nproc = c->cgi_rlimit_nproc,
                                     .nofile = c->cgi_rlimit_nofile};
    ca->timeout_ms = c->cgi_timeout_ms;
    ca->queue_ms = c->cgi_queue_timeout_ms;
    ca->max_scripts = c->cgi_max_scripts ? c->cgi_max_scripts : c->threads;
    /* A running script holds a worker thread: say so when that allows one. */
    if (c->threads == 1 && ca->max_scripts > 1)
        log_msg(LOG_WARN,
                "cgi: --cgi-max-scripts %u but 1 thread per worker: a worker runs "
                "one script at a time (give --threads)",
                ca->max_scripts);
    else if (c->threads == 1)
        log_msg(LOG_INFO, "cgi: a running script holds a worker thread: with 1 thread a "
                          "worker runs one script at a time (--threads N for more)");
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
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&ca->turn, &attr) != 0 || pthread_mutex_init(&ca->lock, NULL) != 0) {
        log_msg(LOG_ERROR, "cgi: pthread setup failed");
        return -1;
    }
    pthread_condattr_destroy(&attr);
    ca->running = 0;
    return 0;
}

static int cgi_thread_init(struct app *app)
{
    (void)app;
    return 0;
}

static void cgi_worker_fini(struct app *app)
{
    (void)app;
}

static void cgi_unload(struct app *app)
{
    cgi_app_free(app->data);
    app->data = NULL;
}

/* Wait for one of the worker's --cgi-max-scripts turns until the queue
 * deadline. Returns 0 with the turn taken, -1 without. */
static int cgi_take_turn(struct cgi_app *ca)
{
    pthread_mutex_lock(&ca->lock);
    if (ca->running >= ca->max_scripts) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ca->queue_ms / 1000;
        until.tv_nsec += (long)(ca->queue_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (ca->running >= ca->max_scripts) {
            if (pthread_cond_timedwait(&ca->turn, &ca->lock, &until) == ETIMEDOUT &&
                ca->running >= ca->max_scripts) {
                pthread_mutex_unlock(&ca->lock);
                return -1;
            }
        }
    }
    ca->running++;
    pthread_mutex_unlock(&ca->lock);
    return 0;
}

static void cgi_give_turn(struct cgi_app *ca)
{
    pthread_mutex_lock(&ca->lock);
    ca->running--;
    pthread_cond_signal(&ca->turn);
    pthread_mutex_unlock(&ca->lock);
}

static int cgi_answer(corral_request *req, int status, const char *text)
{
    corral_set_status(req, status, NULL);
    corral_add_header(req, "Content-Type", "text/plain");
    return corral_write_final(req, text, strlen(text));
}

/* The script a request (or a redirect's PATH) names: SCRIPT_FILENAME when
 * it is a path (Apache's mod_proxy_fcgi sends "proxy:fcgi://..."), else
 * DOCUMENT_ROOT (else ROOT, for a redirect) + SCRIPT_NAME. Writes it into NAME; returns
 * false when there is none. */
static bool cgi_name(struct cgi_app *ca, corral_request *req, const char *path, char *name,
                     size_t len)
{
    const char *docroot = corral_param(req, "DOCUMENT_ROOT");
    if (!path) {
        const char *sf = corral_param(req, "SCRIPT_FILENAME");
        if (sf && sf[0] == '/') { /* not "proxy:fcgi://..." (Apache) */
            snprintf(name, len, "%s", sf);
            return true;
        }
        path = corral_param(req, "SCRIPT_NAME");
        if (!path || !docroot || !docroot[0])
            return false;
    }
    int n = snprintf(name, len, "%s%s", docroot && docroot[0] ? docroot : ca->root, path);
    return n > 0 && (size_t)n < len;
}

/* One run: resolve the script, spawn, run. REDIR_URI is a local
 * redirect's Location: (NULL for the request itself); a redirect found by
 * this run goes into LOCATION (LOCLEN bytes). *STATUS: what the caller
 * answers when the outcome is CGI_RUN_FAILED or CGI_RUN_TIMED_OUT. */
static enum cgi_run_outcome cgi_once(struct cgi_app *ca, corral_request *req, const char *redir_uri,
                                     char *location, size_t loclen, int *status)
{
    char name[PATH_MAX], redir_path[PATH_MAX] = "";
    const char *query = "";
    if (redir_uri) {
        const char *q = strchr(redir_uri, '?');
        size_t pl = q ? (size_t)(q - redir_uri) : strlen(redir_uri);
        if (pl >= sizeof(redir_path)) {
            *status = 404;
            return CGI_RUN_FAILED;
        }
        memcpy(redir_path, redir_uri, pl);
        redir_path[pl] = '\0';
        query = q ? q + 1 : "";
    }
    const char *method = req->method ? req->method : "-";
    const char *uri = redir_uri ? redir_uri : req->uri ? req->uri : "-";
    if (!cgi_name(ca, req, redir_uri ? redir_path : NULL, name, sizeof(name))) {
        log_msg(LOG_ERROR, "cgi %s %s: %s: 404", method, uri,
                cgi_script_reason(CGI_SCRIPT_NO_NAME));
        *status = 404;
        return CGI_RUN_FAILED;
    }
    struct cgi_script *sc = malloc(sizeof(*sc));
    if (!sc) {
        *status = 500;
        return CGI_RUN_FAILED;
    }
    enum cgi_script_verdict v = cgi_script_resolve(ca->root, name, sc);
    if (v != CGI_SCRIPT_OK) {
        log_msg(LOG_ERROR, "cgi %s %s: refused %s: %s: %d", method, uri, name, cgi_script_reason(v),
                cgi_script_status(v));
        *status = cgi_script_status(v);
        free(sc);
        return CGI_RUN_FAILED;
    }
    /* A tail past the script is PATH_INFO (when the front end gave none),
     * and leaves SCRIPT_NAME. */
    const char *script_name = redir_uri ? redir_path : NULL, *path_info = NULL;
    char sn[PATH_MAX];
    if (sc->tail[0]) {
        const char *given = redir_uri ? redir_path : corral_param(req, "SCRIPT_NAME");
        const char *pi = redir_uri ? NULL : corral_param(req, "PATH_INFO");
        if (!pi || !pi[0]) {
            path_info = sc->tail;
            size_t gl = given ? strlen(given) : 0, tl = strlen(sc->tail);
            if (gl >= tl && strcmp(given + gl - tl, sc->tail) == 0) {
                snprintf(sn, sizeof(sn), "%.*s", (int)(gl - tl), given);
                script_name = sn;
            }
        }
    }
    struct cgi_env env;
    struct cgi_env_redirect redir = {.uri = redir_uri, .query = query};
    /* A redirect's re-run takes no PATH_INFO from the request: "" for none. */
    if (redir_uri && !path_info)
        path_info = "";
    if (cgi_env_build(&env, req, &ca->base, sc->path, script_name, path_info,
                      redir_uri ? &redir : NULL) < 0) {
        free(sc);
        *status = 500;
        return CGI_RUN_FAILED;
    }
    char label[512];
    snprintf(label, sizeof(label), "%.32s %.200s (%.200s)", method, uri, sc->path);
    struct cgi_child ch;
    char err[256];
    enum cgi_run_outcome out;
    if (cgi_spawn(sc->path, sc->dir, env.envp, &ca->limits, &ch, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "cgi %s: the script could not start: %s: 502", label, err);
        *status = 502;
        out = CGI_RUN_FAILED;
    } else {
        struct cgi_run run = {.req = req,
                              .label = label,
                              .timeout_ms = ca->timeout_ms,
                              .send_body = !redir_uri,
                              .location = location,
                              .location_len = loclen};
        out = cgi_run(&run, &ch);
        *status = out == CGI_RUN_TIMED_OUT ? 504 : 502;
    }
    cgi_env_free(&env);
    free(sc);
    return out;
}

static int cgi_handle(struct app *app, corral_request *req)
{
    struct cgi_app *ca = app->data;
    if (cgi_take_turn(ca) < 0) {
        log_msg(LOG_ERROR, "cgi %s %s: %u scripts running (--cgi-max-scripts) for %u ms: 503",
                req->method ? req->method : "-", req->uri ? req->uri : "-", ca->max_scripts,
                ca->queue_ms);
        return cgi_answer(req, 503, "Service Unavailable: too many CGI scripts running\n");
    }
    char location[2][2048];
    const char *redir = NULL;
    int status = 500, rc = -1;
    for (int hop = 0;; hop++) {
        if (hop > APP_CGI_REDIRECTS) {
            log_msg(LOG_ERROR, "cgi %s %s: more than %d local redirects: 500",
                    req->method ? req->method : "-", req->uri ? req->uri : "-", APP_CGI_REDIRECTS);
            rc = cgi_answer(req, 500, "Internal Server Error: too many local redirects\n");
            break;
        }
        char *loc = location[hop & 1];
        enum cgi_run_outcome out = cgi_once(ca, req, redir, loc, sizeof(location[0]), &status);
        if (out == CGI_RUN_REDIRECT) {
            redir = loc;
            continue;
        }
        if (out == CGI_RUN_OK)
            rc = 0;
        else if (out == CGI_RUN_BROKEN)
            rc = -1;
        else if (status == 404)
            rc = cgi_answer(req, 404, "Not Found\n");
        else if (status == 403)
            rc = cgi_answer(req, 403, "Forbidden\n");
        else if (status == 504)
            rc = cgi_answer(req, 504, "Gateway Timeout: the CGI script ran too long\n");
        else if (status == 500)
            rc = cgi_answer(req, 500, "Internal Server Error\n");
        else
            rc = cgi_answer(req, 502, "Bad Gateway: the CGI script failed\n");
        break;
    }
    cgi_give_turn(ca);
    return rc;
}

const struct app_ops app_cgi_ops = {
    .name = "cgi",
    .load = cgi_load,
    .worker_init = cgi_worker_init,
    .thread_init = cgi_thread_init,
    .handle = cgi_handle,
    .worker_fini = cgi_worker_fini,
    .unload = cgi_unload,
};
