/*
 * watchdog.h — a thread in each worker that watches its request threads:
 * a request slower than --slowlog is logged with the stack of the thread
 * serving it (Python's for a WSGI app; the method, URI and elapsed time
 * for a native handler), once per request; a request slower than
 * --harakiri is logged the same way, then the worker exits at once with
 * WORKER_EXIT_HARAKIRI and the master replaces it.
 *
 * It runs on its own thread so that it works when every request thread is
 * stuck (in a loop, in a C call holding the GIL): it reads the scoreboard
 * and never takes a lock a request thread may hold. The master also kills
 * a worker whose request overran --harakiri by more than a grace period,
 * in case the worker cannot even run this thread.
 */
#ifndef CORRAL_WATCHDOG_H
#define CORRAL_WATCHDOG_H

#include <stdint.h>

#include "apps/app.h"
#include "core/scoreboard.h"

struct watchdog_params {
    struct app *app;
    struct sb_thread *threads;  /* this worker's thread slots */
    unsigned thread_count;
    unsigned worker_index;
    uint64_t slowlog_ms;        /* 0: off */
    uint64_t harakiri_ms;       /* 0: off */
};

/* Start the watchdog thread (nothing when both limits are off). Returns 0,
 * or -1 after logging. */
int watchdog_start(const struct watchdog_params *p);

/* Request thread INDEX tells which app thread handle is its own (from
 * app->ops->thread_handle, after thread_init): the watchdog passes it to
 * app->ops->dump_stack. */
void watchdog_set_handle(unsigned index, void *handle);

#endif
