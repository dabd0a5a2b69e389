/*
 * master.h — the master process: forks the workers, reaps and replaces them,
 * watches the listen queues and runs the stop sequence. One thread, one
 * event loop (epoll + signalfd + timerfd); it never runs application code.
 */
#ifndef CORRAL_MASTER_H
#define CORRAL_MASTER_H

#include <stddef.h>

#include "app.h"
#include "config.h"
#include "listen.h"

/*
 * Run the pool until it is stopped. The listeners are bound and the app is
 * loaded. Returns the process exit status: 0 after SIGTERM (graceful: the
 * listen queues are drained and in-flight requests finish, bounded by the
 * graceful timeout) or SIGINT/SIGQUIT (now); 1 on a setup failure.
 */
int master_run(const struct config *cfg, struct listener *listeners, size_t listener_count,
               struct app *app);

#endif
