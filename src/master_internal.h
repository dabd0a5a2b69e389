/*
 * master_internal.h — the master's state, shared by master.c (the loop,
 * supervision, scaling) and master_cmd.c (the control commands, which read
 * it and act through the functions below). Not for other modules.
 */
#ifndef CORRAL_MASTER_INTERNAL_H
#define CORRAL_MASTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "app.h"
#include "config.h"
#include "control.h"
#include "listen.h"
#include "scoreboard.h"
#include "systemd.h"

enum master_state { MASTER_RUNNING, MASTER_STOPPING, MASTER_STOPPING_NOW };

struct master_worker {
    pid_t pid;                    /* 0 = not running */
    uint64_t started_ms;
    unsigned fast_deaths;         /* consecutive deaths soon after start */
    uint64_t respawn_at_ms;       /* 0 = no (re)spawn pending */
    bool retiring;                /* asked to stop by a scale-down */
    bool harakiri_killed;         /* the master killed it for an overrun request */
};

struct master_queue {
    bool full;                    /* inside an episode of a full queue */
    unsigned long episodes;
};

/* The pool modes' state (master_pool.c). */
struct master_pool {
    enum pool_mode mode;
    uint64_t next_adjust_ms;      /* dynamic: the next once-a-second check */
    unsigned spawn_rate;          /* forks allowed per second: 1, doubling to 32 */
    uint64_t window_ms;           /* start of the current one-second window */
    unsigned window_spawned;      /* forks in it */
    bool window_short;            /* more were wanted than the rate allowed */
    bool at_max;                  /* inside a "max processes reached" episode */
    uint64_t max_reached;         /* episodes */
    bool watching;                /* ondemand: listeners in the master's epoll */
};

struct master {
    const struct config *cfg;
    struct listener *listeners;
    size_t listener_count;
    struct app *app;
    struct scoreboard sb;
    struct master_worker *workers; /* max_workers slots */
    struct master_queue *queues;
    struct master_pool pool;
    unsigned target;              /* worker processes the pool should have */
    unsigned max_workers;         /* slots in the scoreboard */
    unsigned slots_used;          /* highest slot ever spawned + 1 */
    unsigned live;                /* workers running (pid != 0) */
    int epfd, sigfd, timerfd;
    struct control *ctl;          /* NULL without --control */
    enum master_state state;
    uint64_t deadline_ms;
    uint64_t started_ms;          /* CLOCK_MONOTONIC */
    bool pool_was_up;             /* some worker reached RUNNING once */
    struct systemd_notify notify; /* $NOTIFY_SOCKET (Type=notify); fd -1 = none */
    bool ready_sent;              /* READY=1 went out (the first generation is up) */
    int exit_status;              /* what master_run returns after a stop */
};

uint64_t master_now_ms(void);

/*
 * Change the number of worker processes to TARGET (1..max_workers): slots
 * below it that have no worker get one at the top of the loop; workers at
 * TARGET and above are stopped gracefully (SIGTERM: they finish their
 * requests). WHY names the cause in the log ("corralctl", "SIGTTIN").
 * Returns 0, or -1 with a message in err (out of range, stopping).
 */
int master_scale(struct master *m, unsigned target, const char *why, char *err, size_t errlen);

/*
 * Tell systemd (Type=notify) that a reload begins: sends RELOADING=1 with
 * a STATUS line; call master_notify_ready(m) again once the new workers
 * are up (READY=1). Does nothing without $NOTIFY_SOCKET.
 */
void master_notify_reloading(struct master *m);
void master_notify_ready(struct master *m);

/* Begin the graceful (NOW false, like SIGTERM) or immediate stop. */
void master_stop(struct master *m, bool now);

/*
 * Reopen the master's log files and send SIGUSR1 to every worker, which
 * reopens its own. Returns the number of workers signalled, or -1 with the
 * failing call in err when the master's own files could not be reopened
 * (the workers are signalled anyway).
 */
int master_reopen_logs(struct master *m, char *err, size_t errlen);

/* ---- pool modes (master_pool.c) ---- */

/* Set the mode from the config and mark the workers to start with the
 * pool (static: processes; dynamic: start_processes; ondemand: none). */
void master_pool_start(struct master *m);

/* Each tick while running: dynamic adds or removes idle workers once a
 * second; ondemand starts workers while connections wait. */
void master_pool_tick(struct master *m);

/* epoll data of the listeners the master watches (ondemand, no worker). */
bool master_pool_owns(uint64_t tag);
/* Take the listeners out of the master's epoll (before closing them). */
void master_pool_unwatch(struct master *m);
void master_pool_listener_event(struct master *m);

/* A reaped worker of slot I that the pool itself let go: an ondemand
 * worker that exited (status 0) after its idle timeout. Logged here. */
bool master_pool_idle_exit(struct master *m, unsigned i, pid_t pid, int status);

/* Copy the master's view (state, pool size, max_reached, ...) into the
 * scoreboard header for the status builders. Cheap; called every loop. */
void master_pool_publish(struct master *m);

/* Worker processes the pool has now: the target of a static pool, the live
 * workers of the others. */
unsigned master_pool_processes(const struct master *m);

/* Workers due to start (at start: the pool's initial size). */
unsigned master_pool_starting(const struct master *m);

/* Slots the pool spans (the scoreboard header's slots). */
unsigned master_pool_slots(const struct master *m);

#endif
