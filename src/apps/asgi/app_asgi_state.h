/*
 * app_asgi_state.h — what the ASGI adapter's files share. The order, top first:
 * app_asgi.c (the adapter: load, the worker's interpreter and its event
 * loop thread, handing requests over, lifespan, the watchdog's view) ->
 * app_asgi_request.c (the Python module the loop's code uses: the request
 * queue, the response writes) -> app_asgi_scope.c (the scope of a
 * request) and app_asgi_loop.c (the event loop's per-callback paths). The
 * queue, the job and app_asgi_signal below are the files' common ground,
 * not any one file's.
 * The loop's own code is Python, asgi_glue.py, compiled into the adapter as
 * a string (Makefile.am makes app_asgi_glue.inc of it).
 *
 * The interpreter itself is started as for WSGI (src/apps/wsgi/app_wsgi.h:
 * the virtual environment, the signal guard, the watchdog's stacks).
 * Functions that take a PyObject need the GIL, and return NULL or -1 with
 * a Python exception set on failure.
 */
#ifndef CORRAL_APP_ASGI_STATE_H
#define CORRAL_APP_ASGI_STATE_H

#include "apps/wsgi/app_wsgi.h" /* Python.h first */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "apps/app.h"

/* One request handed from a serving thread to the loop, right after its
 * head: the loop reads the body as the app asks for it and writes the
 * response (never waiting in C: conn_set_nowait). */
struct app_asgi_job {
    corral_request *req;
    struct app_asgi_job *next;
};

/* The queue between the serving threads and the loop thread, and what the
 * loop's code asks of C. One per worker process. */
struct app_asgi_queue {
    struct app *app; /* app_resume's */
    int efd;         /* eventfd the loop reads (loop.add_reader) */
    pthread_mutex_t lock;
    struct app_asgi_job *head;      /* pushed last first */
    bool woken;                     /* an eventfd write is pending: no other */
    _Atomic uint64_t busy_since_us; /* the loop runs since then; 0 waits */
    _Atomic bool stopping;          /* worker_fini asks for the shutdown */
    _Atomic bool draining;          /* the worker stops: WebSockets end */
    /* The loop's answers: startup (1 ok, -1 failed), the shutdown's end. */
    pthread_mutex_t state_lock;
    pthread_cond_t state_cond;
    int started;
    bool stopped;
};

/* One write to the loop's eventfd FD: it is told there is work. 0, or -1
 * with errno. */
static inline int app_asgi_signal(int fd)
{
    uint64_t one = 1;
    ssize_t n;
    while ((n = write(fd, &one, sizeof(one))) < 0 && errno == EINTR)
        ;
    return n < 0 ? -1 : 0;
}

/* Push JOB for the loop and wake it (one eventfd write while none is
 * pending). Any thread, no GIL. */
void app_asgi_queue_push(struct app_asgi_queue *q, struct app_asgi_job *job);

/* app_asgi_scope.c: the shared objects every scope uses (0, or -1), then
 * the HTTP scope of REQ (a new dict; "type" is "websocket" when
 * WEBSOCKET_OK and the head asks for a WebSocket upgrade). */
int app_asgi_scope_init(void);
PyObject *app_asgi_scope_new(corral_request *req, bool websocket_ok);

/* app_asgi_loop.c: add to the module M the event loop's C parts, the
 * base class LoopCore and its Handle and TimerHandle; the loop marks Q's
 * busy_since_us around its waits (0, or -1). */
int app_asgi_loop_add(PyObject *m, struct app_asgi_queue *q);

/* The module "_corral_asgi" for the loop's code (new reference), bound to
 * Q, which outlives it. */
PyObject *app_asgi_module_new(struct app_asgi_queue *q);

#endif
