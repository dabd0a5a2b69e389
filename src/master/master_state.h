/*
 * master_state.h — the master's state and the functions its files give
 * one another. Not for other modules.
 *
 * The files call one way, each only the ones below it:
 *
 *   master.c          the loop: signals, the tick, reaping, forking workers
 *   master_cmd.c      the control socket's commands
 *   master_actions.c  stop, scale, reopen the logs (signals and commands)
 *   master_adopt.c    the new image after a --preload re-exec
 *   master_reload.c   the reload state machine
 *   master_reexec.c   a reload's check child; the --preload re-exec
 *   master_notify.c   systemd notifications
 *   master_pool.c     the pool modes, the scoreboard header
 *   master_limits.c   harakiri and the graceful timeout of stopping workers
 *   master_slots.c    the slots and banks of workers
 *   master_programs.c the FastCGI programs of --fastcgi-program (from the
 *                     loop only; it calls no other master file)
 *
 * A lower file never calls a higher one: it returns an outcome (a reaped
 * check, a failed re-exec) or sets a flag (reexec.exec_due, a slot's
 * respawn_at_ms) that a higher file or the loop acts on.
 */
#ifndef CORRAL_MASTER_STATE_H
#define CORRAL_MASTER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "apps/app.h"
#include "config/config.h"
#include "control.h"
#include "os/listen.h"
#include "reexec_state.h"
#include "core/scoreboard.h"
#include "os/systemd.h"

enum master_state { MASTER_RUNNING, MASTER_STOPPING, MASTER_STOPPING_NOW };

struct master_worker {
    pid_t pid; /* 0 = not running */
    uint64_t started_ms;
    uint64_t requests_at_start; /* the slot's scoreboard request count at the fork */
    unsigned fast_deaths;       /* consecutive deaths soon after start */
    uint64_t respawn_at_ms;     /* 0 = no (re)spawn pending */
    bool retiring;              /* asked to stop by a scale-down */
    bool harakiri_killed;       /* the master killed it for an overrun request */
    pid_t stop_seen_pid;        /* the worker seen stopping since stop_seen_ms */
    uint64_t stop_seen_ms;
};

/*
 * Reloads (master_reload.c). The worker array and the scoreboard hold two
 * banks of max_workers slots: the current generation lives in the bank at
 * `base`, a reload starts the next generation in the other bank while the
 * old one still serves. IDLE → STARTING (new workers forked; the old ones
 * serve; a new worker that dies before RUNNING, or a start deadline,
 * rolls back) → DRAINING (every new worker RUNNING: the config is
 * committed and the old bank gets SIGTERM) → IDLE once the old bank is
 * empty. chain-reload is STARTING one slot at a time.
 *
 * With --preload (master_reexec.c, master_adopt.c) a reload begins with
 * CHECKING: a child checks that the new code imports, then the master
 * re-executes itself and the new image starts the new generation from
 * STARTING. Without --preload, an adapter with a check (app.h: the native
 * handler) has CHECKING too: a child runs the check, then this image
 * starts the new generation. The values are published in the scoreboard (status.c): 0..3,
 * and 4 for "stranded" (IDLE, but the workers serving run code this image
 * could not load and cannot be replaced).
 */
enum master_reload_phase { RELOAD_IDLE, RELOAD_STARTING, RELOAD_DRAINING, RELOAD_CHECKING };
#define MASTER_RELOAD_PUBLISHED_STRANDED 4

struct master_reload {
    enum master_reload_phase phase;
    bool chain;
    bool pending_hup;             /* SIGHUP during a reload: reload again after */
    unsigned next_slot;           /* chain: the pool index being replaced */
    unsigned start_count;         /* workers the new generation starts with */
    unsigned old_base;            /* the bank being replaced */
    unsigned old_target;          /* its pool size */
    uint64_t deadline_ms;         /* STARTING: give up; DRAINING: SIGKILL */
    const struct config *old_cfg; /* kept for a rollback until the commit */
    struct app *old_app;
    bool app_owned;           /* the current app was made by a reload (heap) */
    bool old_app_owned;       /* the same for old_app */
    struct config *owned_cfg; /* the current config when a reload made it */
    struct config *old_owned; /* old_cfg when a reload made it */
    unsigned generation;      /* of the current bank */
    unsigned long reloads, failures;
    bool last_ok;
    char last[512];          /* outcome of the last reload, for status */
    char why[64];            /* what asked for the reload in progress */
    char note[256];          /* CHECKING (no --preload): settings kept, logged at start */
    struct config *next_cfg; /* CHECKING (no --preload): the config and app to start */
    struct app *next_app;    /* once the app's check passed (heap, owned) */
    bool adopted;            /* started by this image after a re-exec: no rollback */
    bool stranded;           /* the serving workers cannot be replaced (see above) */
};

/* A reload's check child and --preload reloads (master_reexec.c). */
struct master_reexec {
    bool enabled;    /* --preload with an adapter that preloads */
    pid_t check_pid; /* the check running; 0 = none */
    int check_fd;    /* the app check's message pipe; -1 = none (--preload) */
    bool exec_due;   /* it passed: re-execute at the top of the loop */
    int cwd_fd;      /* where corral started (the preload may chdir) */
};

struct master_queue {
    bool full; /* inside an episode of a full queue */
    unsigned long episodes;
};

/* The pool modes' state (master_pool.c). */
struct master_pool {
    enum pool_mode mode;
    uint64_t next_adjust_ms; /* dynamic: the next once-a-second check */
    unsigned spawn_rate;     /* forks allowed per second: 1, doubling to 32 */
    uint64_t window_ms;      /* start of the current one-second window */
    unsigned window_spawned; /* forks in it */
    bool window_short;       /* more were wanted than the rate allowed */
    bool at_max;             /* inside a "max processes reached" episode */
    uint64_t max_reached;    /* episodes */
    bool watching;           /* ondemand: listeners in the master's epoll */
};

/* The FastCGI programs (master_programs.c): the pools of the current app
 * and of replaced apps whose programs are still stopping. */
#define MASTER_PROGRAM_POOLS 8

/* A child (worker or FastCGI program) that dies sooner than this after its
 * start, before it served, is respawned with a back-off: 1 s after the
 * first such death in a row, doubling up to MASTER_MAX_BACKOFF_S. */
#define MASTER_FAST_DEATH_MS 1000
#define MASTER_MAX_BACKOFF_S 30

/* The back-off in seconds after the DEATHS'th (>= 1) fast death in a row. */
static inline unsigned master_backoff_s(unsigned deaths)
{
    unsigned delay = 1u << (deaths > 6 ? 6 : deaths - 1);
    return delay > MASTER_MAX_BACKOFF_S ? MASTER_MAX_BACKOFF_S : delay;
}
struct program_pool;
struct master_programs {
    struct program_pool *pools[MASTER_PROGRAM_POOLS];
    unsigned live;           /* programs running */
    bool fatal;              /* one could not start before any ran: stop corral */
    uint64_t rss_checked_ms; /* --max-rss is read once a second */
};

struct master {
    const struct config *cfg;
    struct listener *listeners;
    size_t listener_count;
    struct app *app;
    struct scoreboard sb;
    struct master_worker *workers; /* 2 banks of max_workers slots */
    struct master_queue *queues;
    unsigned queued; /* connections in all listen queues at the last tick */
    struct master_pool pool;
    unsigned target;      /* worker processes the pool should have */
    unsigned max_workers; /* slots in a bank (the pool's upper bound) */
    unsigned base;        /* first slot of the current generation's bank */
    unsigned slots_used;  /* highest slot ever spawned + 1 (both banks) */
    unsigned live;        /* workers running (pid != 0) */
    int epfd, sigfd, timerfd;
    struct control *ctl; /* NULL without --control */
    enum master_state state;
    /* A SIGTERM (or corralctl stop) with --stop-delay: while RUNNING, the
     * graceful stop begins at this time (the tick); 0 = no delay running. */
    uint64_t stop_delay_until_ms;
    uint64_t deadline_ms;
    uint64_t started_ms;          /* CLOCK_MONOTONIC */
    bool pool_was_up;             /* some worker reached RUNNING once */
    struct systemd_notify notify; /* $NOTIFY_SOCKET (Type=notify); fd -1 = none */
    bool ready_sent;              /* READY=1 went out (the first generation is up) */
    int exit_status;              /* what master_run returns after a stop */
    int argc;                     /* the command line, read again by a reload */
    char **argv;
    struct master_reload reload;
    struct master_reexec reexec;
    struct master_programs programs;
};

/* ---- master_actions.c ---- */

/*
 * Change the number of worker processes to TARGET (1..max_workers): slots
 * below it that have no worker get one at the top of the loop; workers at
 * TARGET and above are stopped gracefully (SIGTERM: they finish their
 * requests). WHY names the cause in the log ("corralctl", "SIGTTIN").
 * Returns 0, or -1 with a message in err (out of range, stopping).
 */
int master_scale(struct master *m, unsigned target, const char *why, char *err, size_t errlen);

/*
 * Begin the graceful (NOW false, like SIGTERM) or immediate stop. A
 * graceful stop of a running pool with --stop-delay and live workers
 * begins the stop delay instead: the state stays RUNNING (the workers
 * accept and serve, nothing is signalled), stop_delay_until_ms is set and
 * published as SB_MASTER_STOP_DELAY; the tick ends it with
 * master_stop_delay_tick. A graceful stop asked during the delay, or NOW,
 * stops at once.
 */
void master_stop(struct master *m, bool now);

/* From the tick: begin the graceful stop once the stop delay has passed or
 * no worker runs. */
void master_stop_delay_tick(struct master *m, uint64_t now);

/*
 * Reopen the master's log files and send SIGUSR1 to every worker, which
 * reopens its own. Returns the number of workers signalled, or -1 with the
 * failing call in err when the master's own files could not be reopened
 * (the workers are signalled anyway).
 */
int master_reopen_logs(struct master *m, char *err, size_t errlen);

/* ---- the new image after a re-exec (master_adopt.c) ---- */

/* Take over the previous image's reload state and workers (from the
 * scoreboard, before anything publishes into it) as the current
 * generation; then, after master_pool_start, start the new generation
 * (APP_OK) or strand the old one. */
void master_adopt(struct master *m, const struct reexec_state *rx);
void master_adopt_start(struct master *m, const struct reexec_state *rx, bool app_ok);

/* ---- reloads (master_reload.c) ---- */

/*
 * Reload (CHAIN false: a whole new generation, then the old one drains;
 * true: one slot at a time). Re-reads the command line and config file,
 * validates them and loads the app; on any error the old generation
 * keeps serving and -1 is returned with the message in err (logged here).
 * On 0, NOTE holds what was kept from the old config ("" if nothing). The
 * outcome of the app's check (CHECKING) and of the new workers' start is
 * known later (m->reload: phase, generation, last). WHY names the cause in
 * the log; WHY "SIGHUP", which has no reply to refuse with, is queued
 * while a reload is in progress.
 */
int master_reload(struct master *m, bool chain, const char *why, char *err, size_t errlen,
                  char *note, size_t notelen);

/* From the loop's tick: advance a reload (new workers RUNNING, deadlines). */
void master_reload_tick(struct master *m);

/*
 * From master_reap, for a worker of slot I that ended (NEVER_RAN: before
 * it reached RUNNING; WHAT: how it ended). Returns true when the reload
 * machinery handled it (an old-generation worker, or a new one whose death
 * rolled the reload back); false for an ordinary worker of the current
 * generation.
 */
bool master_reload_reaped(struct master *m, unsigned i, pid_t pid, bool never_ran,
                          const char *what);

/* From master_reap, first: whether PID was a reload's check child (then
 * handled: the reload goes on, or fails). */
bool master_reload_check_reaped(struct master *m, pid_t pid, int status);

/* At the top of the loop once reexec.exec_due is set (a --preload check
 * passed): re-execute the master. Returns only when that failed (logged;
 * the reload is counted failed). */
void master_reload_reexec(struct master *m);

/* --preload: the new image starts the new generation beside the adopted
 * old one (master_adopt.c), as master_reload does from STARTING. */
void master_reload_adopted(struct master *m, bool chain, const char *why);

/* The import check of a --preload reload failed, or the re-exec did:
 * nothing changed, the reload is counted as failed. */
void master_reload_check_failed(struct master *m, const char *reason);

/* Log what the stranded state means and what to do. */
void master_reload_log_stranded(const struct master *m);

/* Free what reloads allocated (at the end of master_run). */
void master_reload_fini(struct master *m);

const char *master_reload_phase_name(enum master_reload_phase p);

/* ---- a reload's check child; the --preload re-exec (master_reexec.c) ---- */

/* --preload: fork the child that checks the new code imports (corral's own
 * binary, same command line, $CORRAL_CHECK_APP set). Returns 0, or -1 with
 * the failing call in err. Its end comes through master_reexec_reaped. */
int master_reexec_check(struct master *m, char *err, size_t errlen);

/* Without --preload: fork a child that runs app_check on APP (prepared by
 * app_prepare, not run in the master) and sends the adapter's message
 * back. Returns 0, or -1 with the failing call in err. */
int master_reexec_check_app(struct master *m, struct app *app, char *err, size_t errlen);

enum master_check_end {
    MASTER_CHECK_OTHER, /* not the check child */
    MASTER_CHECK_PASSED,
    MASTER_CHECK_FAILED, /* the reason in the caller's buffer */
};

/* A reaped PID: the check child's end, with the reason of a failure in
 * REASON (the adapter's message, or how the child ended). */
enum master_check_end master_reexec_reaped(struct master *m, pid_t pid, int status, char *reason,
                                           size_t len);

/* Whether a check child runs (or was killed and is not reaped yet). */
bool master_reexec_checking(const struct master *m);

/* At a stop or the check's deadline: kill a check in progress (reaped
 * later; master_reload.c has given up on it by then) and forget a pending
 * exec. */
void master_reexec_cancel(struct master *m);

/* Re-execute the master (the --preload check passed). Returns only when
 * that failed: -1 with the reason in REASON. */
int master_reexec_exec(struct master *m, char *reason, size_t len);

/* ---- systemd (master_notify.c) ---- */

/*
 * Tell systemd (Type=notify) that a reload begins: sends RELOADING=1 with
 * a STATUS line; call master_notify_ready(m) again once the new workers
 * are up (READY=1). Does nothing without $NOTIFY_SOCKET.
 */
void master_notify_reloading(struct master *m);
void master_notify_ready(struct master *m);

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

/* ---- time limits on workers (master_limits.c), from the tick ---- */

/* Kill a worker whose request overran --harakiri by the grace period (its
 * own watchdog could not end it). */
void master_check_harakiri(struct master *m);
/* Kill a worker still stopping after --graceful-timeout (recycling,
 * scale-down, ondemand idle exit). */
void master_check_stopping(struct master *m, uint64_t now);

/* ---- slots and banks (master_slots.c) ---- */

/* The sizes of the scoreboard's method and URI strings (struct sb_thread). */
#define MASTER_METHOD_LEN sizeof(((struct sb_thread *)0)->method)
#define MASTER_URI_LEN sizeof(((struct sb_thread *)0)->uri)

/* Slot of pool position P in the current generation's bank. */
static inline unsigned master_slot(const struct master *m, unsigned p)
{
    return m->base + p;
}

/* Whether slot I belongs to the current generation's bank. */
static inline bool master_is_current(const struct master *m, unsigned i)
{
    return i >= m->base && i < m->base + m->max_workers;
}

/* Live workers in the bank that starts at BASE. */
unsigned master_bank_live(const struct master *m, unsigned base);

/* Slots the pool spans: a static pool's target, otherwise up to the
 * highest slot of the current bank with a worker or one due. */
unsigned master_slots_span(const struct master *m);

/* The slots the workers look at for accept balancing (the scoreboard
 * header's slots): the span, or further while workers above it are still
 * stopping. */
void master_update_slots(struct master *m);

/* Whether request thread T of the worker in slot I is serving a request
 * (the scoreboard); if so, its method and URI are copied into METHOD and URI,
 * NUL-terminated (as the peer sent them: log_msg escapes). Read it before
 * the slot is cleared or reused. */
bool master_thread_request(const struct master *m, unsigned i, unsigned t,
                           char method[MASTER_METHOD_LEN], char uri[MASTER_URI_LEN]);

/* Send SIG to every live worker of both banks. */
void master_signal_workers(struct master *m, int sig);

/* ---- FastCGI programs (master_programs.c), from master.c ---- */

/* At the top of the loop: take the current app's programs under
 * supervision and start those due. Sets programs.fatal when one cannot be
 * executed before any ran. */
void master_programs_spawn_due(struct master *m);
/* Each tick: recycling, --max-rss, harakiri, claims of dead workers,
 * stopping the programs of a retired app, or all of them at a stop once no
 * worker runs. */
void master_programs_tick(struct master *m);

enum master_program_end {
    MASTER_PROGRAM_OTHER,   /* not a program */
    MASTER_PROGRAM_HANDLED, /* a program ended: respawn scheduled or stopped */
    MASTER_PROGRAM_FATAL,   /* it cannot start at all: stop corral (exit 1) */
};
/* From master_reap, for a reaped PID. */
enum master_program_end master_programs_reaped(struct master *m, pid_t pid, int status);

/* The stderr pipes of the programs in the master's epoll. */
bool master_programs_owns(uint64_t tag);
void master_programs_event(struct master *m, uint64_t tag);

unsigned master_programs_live(const struct master *m);
/* At the end of master_run: free retired pools, remove the socket files. */
void master_programs_fini(struct master *m);

#endif
