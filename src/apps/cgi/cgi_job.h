/*
 * cgi_job.h — one detached CGI request in the worker's CGI loop
 * (cgi_loop.h), from its turn to app_resume: resolve the script
 * (cgi_script.h), build its environment (cgi_env.h), spawn it
 * (cgi_spawn.h), drive the run (cgi_run.h), follow local redirects (at
 * most APP_CGI_REDIRECTS re-runs), answer the errors (404, 403, 502, 504,
 * 500; 503 when no turn came), end the response (request_finish), wait
 * until the connection's queue is empty, and give the request back.
 *
 * Only the loop thread touches a job once cgi_loop_push took it.
 */
#ifndef CORRAL_CGI_JOB_H
#define CORRAL_CGI_JOB_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "apps/app.h"
#include "cgi_env.h"
#include "cgi_run.h"
#include "cgi_spawn.h"
#include "cgi_watch.h"

/* What load made of the configuration: read-only afterwards. */
struct cgi_conf {
    char root[PATH_MAX];
    struct cgi_env_base base;
    struct cgi_limits limits;
    unsigned timeout_ms, queue_ms, max_scripts;
};

enum cgi_job_phase {
    CGI_JOB_WAITING,  /* for a turn (the loop's queue) */
    CGI_JOB_RUNNING,  /* a script runs */
    CGI_JOB_FLUSHING, /* the response is complete, its bytes go out */
    CGI_JOB_DONE,     /* given back (app_resume): the loop frees it */
};

struct cgi_job {
    struct cgi_job *prev, *next; /* the loop's lists */
    struct app *app;
    const struct cgi_conf *conf;
    corral_request *req;
    int epfd;
    enum cgi_job_phase phase;
    bool turn;      /* holds one of --cgi-max-scripts (the loop's count) */
    bool close;     /* the connection is closed when given back */
    bool settled;   /* DONE and seen by the loop */
    uint64_t until; /* WAITING: the queue deadline; FLUSHING: the send's */
    int hop;        /* local redirects followed */
    struct cgi_watch conn;
    struct cgi_run run;
    struct cgi_run_state *state;
    char label[512];
    char location[2][2048];
};

/* A new job for REQ (its connection in no-wait mode), WAITING. */
void cgi_job_init(struct cgi_job *job, struct app *app, const struct cgi_conf *conf,
                  corral_request *req, int epfd);

/* The job got its turn: the first run starts (or an error is answered). */
void cgi_job_start(struct cgi_job *job);

/* No turn came by the queue deadline: 503. */
void cgi_job_refuse(struct cgi_job *job);

/* The job's watch of KIND is ready with EVENTS; its next deadline; what is
 * due at NOW. After each, the job may be CGI_JOB_DONE. */
void cgi_job_event(struct cgi_job *job, enum cgi_watch_kind kind, uint32_t events);
uint64_t cgi_job_next(const struct cgi_job *job);
void cgi_job_tick(struct cgi_job *job, uint64_t now);

/* The worker is stopping and its graceful time is nearly over: a running
 * script is ended as over its time limit, WHY in the log. */
void cgi_job_cut(struct cgi_job *job, const char *why);

/* The loop ends now: a running script's group gets SIGKILL and is reaped;
 * the request is not given back (the process exits). */
void cgi_job_kill(struct cgi_job *job);

#endif
