/*
 * cgi_loop.h — the event loop that runs a worker's CGI scripts: one thread
 * and one epoll per worker own every detached CGI request (cgi_job.h) from
 * the moment a serving thread hands it over (cgi_loop_push, through a
 * queue and an eventfd) until it is given back (app_resume). No serving
 * thread ever waits on a script, so the scripts running at once are
 * bounded by --cgi-max-scripts alone (their turns, counted here); a job
 * beyond it waits in a FIFO for a turn until --cgi-queue-timeout, then is
 * answered 503.
 *
 * A graceful stop (cgi_loop_stopping): the scripts go on, and those still
 * running CGI_LOOP_STOP_MARGIN_MS before --graceful-timeout ends are cut
 * (SIGTERM, then SIGKILL to their group), so none outlives the worker.
 * cgi_loop_free (the worker exits): a script still running gets SIGKILL.
 */
#ifndef CORRAL_CGI_LOOP_H
#define CORRAL_CGI_LOOP_H

#include "cgi_job.h"

/* Before --graceful-timeout: the grace between SIGTERM and SIGKILL, and a
 * second for the reaping. */
#define CGI_LOOP_STOP_MARGIN_MS (CGI_RUN_KILL_GRACE_MS + 1000)

struct cgi_loop;

/* Start the loop thread for CONF's scripts. NULL on failure (logged). */
struct cgi_loop *cgi_loop_new(const struct cgi_conf *conf, unsigned graceful_timeout_ms);

/* Hand JOB (cgi_job_init'ed) to the loop. Any thread; never blocks long. */
void cgi_loop_push(struct cgi_loop *l, struct cgi_job *job);

/* The worker began a graceful stop. Any thread; never blocks. */
void cgi_loop_stopping(struct cgi_loop *l);

/* End the loop (the jobs left are killed, not given back), free it. */
void cgi_loop_free(struct cgi_loop *l);

/* The loop's epoll, for cgi_job_init. */
int cgi_loop_epfd(const struct cgi_loop *l);

#endif
