/*
 * app_cgi.h — the adapter of CGI scripts (--cgi ROOT): each request runs
 * the executable under ROOT that the front end names (cgi_script.h), with
 * the RFC 3875 environment (cgi_env.h), started safely from a threaded
 * worker (cgi_spawn.h) and run by the worker's CGI loop (cgi_loop.h,
 * cgi_job.h, cgi_run.h): the serving thread detaches the request
 * (apps/app.h's APP_DETACHED) and goes back to epoll, so a running script
 * holds no thread. A local redirect re-runs (at most APP_CGI_REDIRECTS
 * times). At most --cgi-max-scripts run at once in a worker
 * (APP_CGI_MAX_SCRIPTS when 0); more wait up to --cgi-queue-timeout, then
 * get 503. Scripts run as the worker's user: never root without
 * --allow-root.
 */
#ifndef CORRAL_APP_CGI_H
#define CORRAL_APP_CGI_H

#include "apps/app.h"

#define APP_CGI_REDIRECTS 5
#define APP_CGI_MAX_SCRIPTS 64 /* --cgi-max-scripts 0 */

extern const struct app_ops app_cgi_ops;

#endif
