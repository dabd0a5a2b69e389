/*
 * master.h — the master process: forks the workers, reaps and replaces them,
 * scales the pool, watches the listen queues, serves the control socket and
 * runs the stop sequence. One thread, one event loop (epoll + signalfd +
 * timerfd); it never runs application code and never blocks.
 */
#ifndef CORRAL_MASTER_H
#define CORRAL_MASTER_H

#include <stddef.h>

#include "app.h"
#include "config.h"
#include "control.h"
#include "listen.h"

/*
 * Run the pool until it is stopped. The listeners are bound and the app is
 * loaded. Returns the process exit status: 0 after SIGTERM (graceful: the
 * listen queues are drained and in-flight requests finish, bounded by the
 * graceful timeout) or SIGINT/SIGQUIT (now); 1 on a setup failure.
 */
int master_run(const struct config *cfg, struct listener *listeners, size_t listener_count,
               struct app *app);

/* The commands of the control socket (master_cmd.c): status, workers,
 * scale, stop, quit, reopen-logs, reload, chain-reload, help. Their run
 * functions take the master as owner. */
extern const struct control_command master_commands[];
extern const size_t master_command_count;

#endif
