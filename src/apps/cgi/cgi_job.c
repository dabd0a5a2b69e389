/*
 * cgi_job.c — one detached CGI request in the worker's CGI loop (see
 * cgi_job.h).
 */
#include "cgi_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_cgi.h"
#include "cgi_script.h"
#include "conn/conn.h"
#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"

void cgi_job_init(struct cgi_job *job, struct app *app, const struct cgi_conf *conf,
                  corral_request *req, int epfd)
{
    job->prev = job->next = NULL;
    job->app = app;
    job->conf = conf;
    job->req = req;
    job->epfd = epfd;
    job->phase = CGI_JOB_WAITING;
    job->turn = job->close = job->settled = false;
    job->until = clock_now_ms() + conf->queue_ms;
    job->hop = 0;
    job->state = NULL;
    cgi_watch_init(&job->conn, job, CGI_WATCH_CONN, req->conn->fd);
}

static const char *cgi_job_method(const struct cgi_job *job)
{
    return job->req->method ? job->req->method : "-";
}

static const char *cgi_job_uri(const struct cgi_job *job)
{
    return job->req->uri ? job->req->uri : "-";
}

/* The response is complete (APP_RC as a handler's): its end, then its
 * bytes go out before the request is given back. */
static void cgi_job_finish(struct cgi_job *job, int app_rc)
{
    corral_request *req = job->req;
    if (request_finish(req, app_rc) < 0 || req->failed)
        job->close = true;
    job->phase = CGI_JOB_FLUSHING;
    job->until = clock_now_ms() + job->conf->timeout_ms;
    cgi_job_event(job, CGI_WATCH_CONN, EPOLLOUT);
}

static void cgi_job_answer(struct cgi_job *job, int status, const char *text)
{
    corral_request *req = job->req;
    if (!req->head_sent)
        request_reset_head(req); /* not the head a failed script staged */
    corral_set_status(req, status, NULL);
    corral_add_header(req, "Content-Type", "text/plain");
    int rc = corral_write_final(req, text, strlen(text));
    cgi_job_finish(job, rc < 0 ? -1 : 0);
}

static void cgi_job_answer_status(struct cgi_job *job, int status)
{
    if (status == 404)
        cgi_job_answer(job, 404, "Not Found\n");
    else if (status == 403)
        cgi_job_answer(job, 403, "Forbidden\n");
    else if (status == 504)
        cgi_job_answer(job, 504, "Gateway Timeout: the CGI script ran too long\n");
    else if (status == 500)
        cgi_job_answer(job, 500, "Internal Server Error\n");
    else
        cgi_job_answer(job, 502, "Bad Gateway: the CGI script failed\n");
}

/* The script a request (or a redirect's PATH) names: SCRIPT_FILENAME when
 * it is a path (Apache's mod_proxy_fcgi sends "proxy:fcgi://..."), else
 * DOCUMENT_ROOT (else ROOT, for a redirect) + SCRIPT_NAME. Writes it into NAME; returns
 * false when there is none. */
static bool cgi_name(const struct cgi_conf *conf, corral_request *req, const char *path, char *name,
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
    int n = snprintf(name, len, "%s%s", docroot && docroot[0] ? docroot : conf->root, path);
    return n > 0 && (size_t)n < len;
}

/* Start one run: resolve the script, spawn it, drive it. REDIR_URI is a
 * local redirect's Location: (NULL for the request itself); a redirect
 * found by this run goes into LOCATION (LOCLEN bytes). Returns 0 with
 * job->state running, else the status the caller answers. */
static int cgi_job_once(struct cgi_job *job, const char *redir_uri, char *location, size_t loclen)
{
    const struct cgi_conf *conf = job->conf;
    corral_request *req = job->req;
    char name[PATH_MAX], redir_path[PATH_MAX] = "";
    const char *query = "";
    if (redir_uri) {
        const char *q = strchr(redir_uri, '?');
        size_t pl = q ? (size_t)(q - redir_uri) : strlen(redir_uri);
        if (pl >= sizeof(redir_path))
            return 404;
        memcpy(redir_path, redir_uri, pl);
        redir_path[pl] = '\0';
        query = q ? q + 1 : "";
    }
    const char *method = cgi_job_method(job);
    const char *uri = redir_uri ? redir_uri : cgi_job_uri(job);
    if (!cgi_name(conf, req, redir_uri ? redir_path : NULL, name, sizeof(name))) {
        log_msg(LOG_ERROR, "cgi %s %s: %s: 404", method, uri,
                cgi_script_reason(CGI_SCRIPT_NO_NAME));
        return 404;
    }
    struct cgi_script *sc = malloc(sizeof(*sc));
    if (!sc)
        return 500;
    enum cgi_script_verdict v = cgi_script_resolve(conf->root, name, sc);
    if (v != CGI_SCRIPT_OK) {
        log_msg(LOG_ERROR, "cgi %s %s: refused %s: %s: %d", method, uri, name, cgi_script_reason(v),
                cgi_script_status(v));
        free(sc);
        return cgi_script_status(v);
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
    if (cgi_env_build(&env, req, &conf->base, sc->path, script_name, path_info,
                      redir_uri ? &redir : NULL) < 0) {
        free(sc);
        return 500;
    }
    snprintf(job->label, sizeof(job->label), "%.32s %.200s (%.200s)", method, uri, sc->path);
    struct cgi_child ch;
    char err[256];
    int status = 0;
    if (cgi_spawn(sc->path, sc->dir, env.envp, &conf->limits, &ch, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "cgi %s: the script could not start: %s: 502", job->label, err);
        status = 502;
    } else {
        job->run = (struct cgi_run){.req = req,
                                    .label = job->label,
                                    .timeout_ms = conf->timeout_ms,
                                    .send_body = !redir_uri,
                                    .location = location,
                                    .location_len = loclen,
                                    .epfd = job->epfd,
                                    .job = job,
                                    .conn = &job->conn};
        job->state = cgi_run_start(&job->run, &ch);
        status = job->state ? 0 : 502;
    }
    cgi_env_free(&env);
    free(sc);
    return status;
}

/* Run (or re-run, for a redirect, REDIR) until a script runs or an answer
 * is due. */
static void cgi_job_go(struct cgi_job *job, const char *redir)
{
    if (job->hop > APP_CGI_REDIRECTS) {
        log_msg(LOG_ERROR, "cgi %s %s: more than %d local redirects: 500", cgi_job_method(job),
                cgi_job_uri(job), APP_CGI_REDIRECTS);
        cgi_job_answer(job, 500, "Internal Server Error: too many local redirects\n");
        return;
    }
    char *loc = job->location[job->hop & 1];
    int status = cgi_job_once(job, redir, loc, sizeof(job->location[0]));
    if (status == 0)
        job->phase = CGI_JOB_RUNNING;
    else
        cgi_job_answer_status(job, status);
}

/* The run is over: its outcome. */
static void cgi_job_ran(struct cgi_job *job, bool kill_now)
{
    enum cgi_run_outcome out = cgi_run_end(job->state, kill_now);
    job->state = NULL;
    if (kill_now)
        return;
    switch (out) {
    case CGI_RUN_REDIRECT: {
        const char *loc = job->location[job->hop & 1];
        job->hop++;
        cgi_job_go(job, loc);
        return;
    }
    case CGI_RUN_OK:
        cgi_job_finish(job, 0);
        return;
    case CGI_RUN_BROKEN:
        job->close = true;
        cgi_job_finish(job, -1);
        return;
    case CGI_RUN_TIMED_OUT:
        /* The rest of the body is not read: a front end such as nginx,
         * which sends it all before it reads, takes the answer once the
         * connection closes. */
        if (!job->req->conn->body_done)
            job->close = true;
        cgi_job_answer_status(job, 504);
        return;
    case CGI_RUN_FAILED:
        cgi_job_answer_status(job, 502);
        return;
    }
}

void cgi_job_start(struct cgi_job *job)
{
    cgi_job_go(job, NULL);
}

void cgi_job_refuse(struct cgi_job *job)
{
    log_msg(LOG_ERROR, "cgi %s %s: %u scripts running (--cgi-max-scripts) for %u ms: 503",
            cgi_job_method(job), cgi_job_uri(job), job->conf->max_scripts, job->conf->queue_ms);
    cgi_job_answer(job, 503, "Service Unavailable: too many CGI scripts running\n");
}

/* FLUSHING: push what is queued; once nothing is, give the request back.
 * EPOLLHUP or EPOLLERR in EVENTS: the connection is given up on. */
static void cgi_job_flush(struct cgi_job *job, uint32_t events)
{
    struct conn *c = job->req->conn;
    bool dead = (events & (EPOLLHUP | EPOLLERR)) != 0;
    if (!dead && conn_wants_write(c) && conn_push_queued(c) < 0)
        dead = true;
    if (!dead && conn_wants_write(c) && cgi_watch_set(job->epfd, &job->conn, EPOLLOUT) == 0)
        return;
    cgi_watch_set(job->epfd, &job->conn, 0);
    if (dead || conn_wants_write(c))
        job->close = true; /* never hand back a connection with bytes queued */
    job->phase = CGI_JOB_DONE;
    app_resume(job->app, job->req, job->close);
}

void cgi_job_event(struct cgi_job *job, enum cgi_watch_kind kind, uint32_t events)
{
    if (job->phase == CGI_JOB_RUNNING) {
        cgi_run_event(job->state, kind, events);
        if (cgi_run_over(job->state))
            cgi_job_ran(job, false);
    } else if (job->phase == CGI_JOB_FLUSHING && kind == CGI_WATCH_CONN) {
        cgi_job_flush(job, events);
    }
}

uint64_t cgi_job_next(const struct cgi_job *job)
{
    if (job->phase == CGI_JOB_RUNNING)
        return cgi_run_next(job->state);
    return job->phase == CGI_JOB_DONE ? UINT64_MAX : job->until;
}

void cgi_job_tick(struct cgi_job *job, uint64_t now)
{
    if (job->phase == CGI_JOB_RUNNING) {
        cgi_run_tick(job->state, now);
        if (cgi_run_over(job->state))
            cgi_job_ran(job, false);
    } else if (job->phase == CGI_JOB_FLUSHING && now >= job->until) {
        log_msg(LOG_WARN, "cgi %s %s: the front end took no bytes for %u ms: closed",
                cgi_job_method(job), cgi_job_uri(job), job->conf->timeout_ms);
        cgi_job_flush(job, EPOLLERR);
    }
}

void cgi_job_cut(struct cgi_job *job, const char *why)
{
    if (job->phase != CGI_JOB_RUNNING)
        return;
    cgi_run_cut(job->state, why);
    if (cgi_run_over(job->state))
        cgi_job_ran(job, false);
}

void cgi_job_kill(struct cgi_job *job)
{
    if (job->phase == CGI_JOB_RUNNING)
        cgi_job_ran(job, true);
    cgi_watch_set(job->epfd, &job->conn, 0);
    job->phase = CGI_JOB_DONE;
}
