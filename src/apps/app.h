/*
 * app.h — the application adapter interface. Each app type (native C
 * handler, later WSGI, CGI, FastCGI programs) is one const struct app_ops;
 * nothing below the adapter knows which app type runs.
 *
 * Call order: load (once, in the master, before the fork: errors are
 * reported at start, never as a respawn loop) and check, then in each
 * worker worker_init, thread_init in every serving thread, handle per
 * request (from several threads at once), worker_fini at a graceful stop.
 * app.c picks the adapter the configuration asks for.
 *
 * Optional (NULL when the adapter has no use for them): preload runs the
 * app's start-up in the master, once, after the logs and listeners are
 * open (--preload); the fork_* hooks surround every fork of a worker so an
 * adapter whose runtime lives in the master (CPython after preload) can
 * keep its locks consistent across fork(2).
 */
#ifndef CORRAL_APP_H
#define CORRAL_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "corral.h"

struct app;

struct app_ops {
    const char *name;
    /* Returns 0, or -1 with a message in err. */
    int (*load)(struct app *app, const struct config *c, char *err, size_t errlen);
    /* Optional: after load, whether the app's code can load, tried in a
     * child process of the caller so that none of it runs in the caller;
     * blocks until that child ends (the adapter bounds it). 0, or -1 with
     * a message in err. A reload runs it in a child of the master
     * (master_reexec.c), never in the master's loop. */
    int (*check)(struct app *app, char *err, size_t errlen);
    int (*worker_init)(struct app *app); /* 0 or -1 (the worker exits) */
    int (*thread_init)(struct app *app); /* 0 or -1 */
    /* Serve one request; return when the response is complete. 0 = success.
     * An adapter with run_detached may instead return APP_DETACHED (see
     * below) once it has what it needs from the calling thread. */
    int (*handle)(struct app *app, corral_request *req);
    /* Optional, with handle's APP_DETACHED: the serving thread has let go
     * of REQ and its connection (neither finished, parked nor closed; no
     * thread of the worker touches them: an event epoll reports meanwhile
     * waits for their return) and
     * hands them to the adapter, which serves them on a thread of its own:
     * it writes the response with the connection in no-wait mode
     * (conn_set_nowait: it awaits writability itself), calls
     * request_finish, waits until no byte is queued (conn_wants_write),
     * and then gives both back exactly once with app_resume. */
    void (*run_detached)(struct app *app, corral_request *req);
    void (*worker_fini)(struct app *app);
    /* Optional: the worker began a graceful stop (it takes no new
     * connection, and exits once every request has ended): an adapter that
     * holds long-lived requests (WebSockets) asks them to end. Any thread;
     * never blocks. */
    void (*stopping)(struct app *app);
    int (*preload)(struct app *app);       /* 0, or -1 after logging why */
    void (*fork_prepare)(struct app *app); /* in the master, just before fork() */
    void (*fork_parent)(struct app *app);  /* in the master, just after */
    void (*fork_child)(struct app *app);   /* first thing in the new worker */
    /* For the watchdog (slowlog, harakiri): the calling request thread's
     * handle (after thread_init), and the stack of the thread with HANDLE
     * written as text to FD, from another thread, without waiting for any
     * lock the stuck thread may hold. FINAL: the process ends right after
     * (harakiri): the thread may be stopped where it is. */
    void *(*thread_handle)(struct app *app);
    void (*dump_stack)(struct app *app, void *handle, int fd, bool final);
    /* Optional, for the watchdog: an adapter that runs requests on a
     * thread of its own (an event loop) returns since when (CLOCK_MONOTONIC
     * microseconds, clock_now_us) that thread has been running without a
     * pause, 0 while it waits; *HANDLE is that thread's handle for
     * dump_stack. Read from another thread: it never blocks. */
    uint64_t (*busy_since)(struct app *app, void **handle);
    /* In the master, when a reload has replaced (or rolled back) this app:
     * free what load made. Not called for an app that runs in the master
     * (preloaded): a reload of one re-executes the master. */
    void (*unload)(struct app *app);
};

/* handle's answer when the adapter keeps the request (run_detached). */
#define APP_DETACHED 1

struct app {
    const struct app_ops *ops;
    void *data; /* the adapter's own state */
    /* Set by the worker before worker_init: how a detached request comes
     * back (app_resume), with the worker's RESUME_ARG. */
    void (*resume)(void *resume_arg, corral_request *req, bool close);
    void *resume_arg;
};

/* A detached request (run_detached) is over: request_finish was called and
 * every byte of it went out; CLOSE: its connection must be closed (else the
 * worker keeps it for the next request as after any response, or closes it
 * as the protocol says). Any thread may call it; the caller touches neither
 * REQ nor its connection afterwards. */
static inline void app_resume(struct app *app, corral_request *req, bool close)
{
    app->resume(app->resume_arg, req, close);
}

extern const struct app_ops app_native_ops;
#ifdef HAVE_PYTHON
extern const struct app_ops app_wsgi_ops; /* app_wsgi.c: embedded CPython */
extern const struct app_ops app_asgi_ops; /* asgi/app_asgi.c: ASGI 3.0 on asyncio */
#endif

static inline void app_fork_prepare(struct app *app)
{
    if (app->ops->fork_prepare)
        app->ops->fork_prepare(app);
}

static inline void app_fork_parent(struct app *app)
{
    if (app->ops->fork_parent)
        app->ops->fork_parent(app);
}

static inline void app_fork_child(struct app *app)
{
    if (app->ops->fork_child)
        app->ops->fork_child(app);
}

/* Choose and load the adapter the configuration asks for (--wsgi or
 * --wsgi-file: WSGI; --handler: native) and run its check (blocks while
 * it runs). Returns 0, or -1 with a message. */
int app_load(struct app *app, const struct config *c, char *err, size_t errlen);

/* The same without the check: app_check runs it later (a reload runs it in
 * a child of the master). Returns 0, or -1 with a message. */
int app_prepare(struct app *app, const struct config *c, char *err, size_t errlen);

/* Whether the adapter of a prepared APP has a check. */
static inline bool app_has_check(const struct app *app)
{
    return app->ops && app->ops->check;
}

/* The adapter's check of a prepared APP (0 without one). Blocks. */
int app_check(struct app *app, char *err, size_t errlen);

#endif
