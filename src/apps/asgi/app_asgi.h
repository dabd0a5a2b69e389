/*
 * app_asgi.h — what the ASGI adapter's files share. The order, top first:
 * app_asgi.c (the adapter: load, the worker's interpreter and its event
 * loop thread, handing requests over, lifespan, the watchdog's view) ->
 * app_asgi_request.c (the Python module the loop's code uses: the request
 * queue, the response writes) -> app_asgi_scope.c (the scope of a
 * request). The loop's own code is Python,
 * asgi_glue.py, compiled into the adapter as a string (Makefile.am makes
 * app_asgi_glue.inc of it).
 *
 * The interpreter itself is started as for WSGI (src/apps/wsgi/app_wsgi.h:
 * the virtual environment, the signal guard, the watchdog's stacks).
 * Functions that take a PyObject need the GIL, and return NULL or -1 with
 * a Python exception set on failure.
 */
#ifndef CORRAL_APP_ASGI_H
#define CORRAL_APP_ASGI_H

#include "apps/wsgi/app_wsgi.h" /* Python.h first */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "apps/app.h"

/* One request handed from a serving thread to the loop, right after its
 * head: the loop reads the body as the app asks for it (never waiting in
 * C: conn_set_nowait). */
struct app_asgi_job {
    corral_request *req;
    struct app_asgi_job *next;
};

/* The queue between the serving threads and the loop thread, and what the
 * loop's code asks of C. One per worker process. */
struct app_asgi_queue {
    struct app *app;  /* app_resume's */
    int efd;          /* eventfd the loop reads (loop.add_reader) */
    pthread_mutex_t lock;
    struct app_asgi_job *head; /* pushed last first */
    bool woken;                /* an eventfd write is pending: no other */
    _Atomic uint64_t busy_since_us; /* the loop runs since then; 0 waits */
    _Atomic bool stopping;           /* worker_fini asks for the shutdown */
    _Atomic bool draining;           /* the worker stops: WebSockets end */
    /* The loop's answers: startup (1 ok, -1 failed), the shutdown's end. */
    pthread_mutex_t state_lock;
    pthread_cond_t state_cond;
    int started;
    bool stopped;
};

/* Push JOB and wake the loop (one eventfd write while none is pending).
 * Any thread, no GIL. */
void app_asgi_queue_push(struct app_asgi_queue *q, struct app_asgi_job *job);

/* app_asgi_scope.c: the shared objects every scope uses (0, or -1), then
 * the HTTP scope of REQ (a new dict; "type" is "websocket" when
 * WEBSOCKET_OK and the head asks for a WebSocket upgrade). */
int app_asgi_scope_init(void);
PyObject *app_asgi_scope_new(corral_request *req, bool websocket_ok);

/* The module "_corral_asgi" for the loop's code (new reference), bound to
 * Q, which outlives it. */
PyObject *app_asgi_module_new(struct app_asgi_queue *q);

#endif
