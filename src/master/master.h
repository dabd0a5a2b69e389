/*
 * master.h — the master process: forks the workers, reaps and replaces them,
 * scales the pool, watches the listen queues, serves the control socket and
 * runs the stop sequence. One thread, one event loop (epoll + signalfd +
 * timerfd); it never runs application code and never blocks.
 */
#ifndef CORRAL_MASTER_H
#define CORRAL_MASTER_H

#include <stdbool.h>
#include <stddef.h>

#include "apps/app.h"
#include "config/config.h"
#include "control.h"
#include "os/listen.h"

/*
 * Run the pool until it is stopped. The listeners are bound and the app is
 * loaded. Signals: SIGTERM stops gracefully (the listen queues are drained
 * and in-flight requests finish, bounded by the graceful timeout),
 * SIGINT/SIGQUIT stop now, SIGUSR1 reopens the logs (master and workers),
 * SIGTTIN/SIGTTOU add or remove one worker, SIGHUP reloads (master_reload.c:
 * ARGC/ARGV are parsed again, so they must outlive the call); the control socket
 * (cfg->control) does the same by command. Returns the process exit
 * status: 0 after a stop, 1 on a setup failure (the control socket cannot
 * be bound, say) or when the app cannot start. START says where corral
 * started and whether this image continues a --preload reload.
 */
struct reexec_state;

/* How the master starts. */
struct master_start {
    int cwd_fd;                     /* the directory corral started in (O_PATH), or -1 */
    bool preloads;                  /* --preload with an adapter that preloads: a reload
                                       re-executes the master (master_reexec.c) */
    const struct reexec_state *rx;  /* NULL, or this image comes from such a re-exec */
    bool app_ok;                    /* with RX: the app imported again */
};

int master_run(const struct config *cfg, struct listener *listeners, size_t listener_count,
               struct app *app, int argc, char **argv, const struct master_start *start);

/* The commands of the control socket (master_cmd.c): status, workers,
 * scale, stop, quit, reopen-logs, reload, chain-reload, help. Their run
 * functions take the master as owner. */
extern const struct control_command master_commands[];
extern const size_t master_command_count;

#endif
