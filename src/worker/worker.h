/*
 * worker.h — a worker process: M threads sharing one epoll instance that
 * holds the listeners and every open connection (a compare-and-swap on its
 * slot decides which thread serves it), so an idle kept
 * connection costs no thread (worker.c and worker_state.h tell how).
 */
#ifndef CORRAL_WORKER_H
#define CORRAL_WORKER_H

#include <signal.h>
#include <stddef.h>

#include "apps/app.h"
#include "config/config.h"
#include "os/listen.h"
#include "core/scoreboard.h"

/* Exit status of a worker whose app could not start (import error, failing
 * corral_worker_init): at start-up the master gives up instead of looping. */
#define WORKER_EXIT_APP_INIT 3
/* A worker that ended on purpose to be replaced at once: it reached
 * --max-requests or --max-rss (and finished its requests first), or a
 * request overran --harakiri (the watchdog logged it and the stack). */
#define WORKER_EXIT_RECYCLE 4
#define WORKER_EXIT_HARAKIRI 5

/* The signal the kernel sends a worker when its master dies (the master
 * sets PR_SET_PDEATHSIG to it at the fork; the worker handles it). */
#define WORKER_ORPHAN_SIGNAL (SIGRTMAX - 2)

struct worker_ctx {
    const struct config *cfg;
    struct listener *listeners;
    size_t listener_count;
    struct scoreboard *sb;
    unsigned index;          /* this worker's scoreboard slot; the pool's
                                size is in the scoreboard header */
    struct app *app;
};

/*
 * Run a worker in the calling (freshly forked) process. Never returns: the
 * process exits with 0 after a graceful stop (SIGTERM) or a fast stop
 * (SIGINT, SIGQUIT), WORKER_EXIT_APP_INIT when the app's worker_init fails,
 * WORKER_EXIT_RECYCLE / WORKER_EXIT_HARAKIRI (above), 1 on a setup error.
 * SIGUSR1 reopens the log files. The caller has blocked the signals the
 * worker handles (it reads them from a signalfd).
 */
void worker_run(const struct worker_ctx *ctx) __attribute__((noreturn));

#endif
