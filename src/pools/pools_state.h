/*
 * pools_state.h — the state the files of the top master share (see
 * pools.h). Their order, top first: pools.c (the loop: signals, readiness,
 * reaping, back-off) -> pools_cmd.c (the control socket's commands: they
 * reply from this state and set flags the loop acts on) -> pools_reload.c
 * (a pool's configuration, the diff of a reload) -> pools_spawn.c (a pool's
 * listeners, the fork and exec of its master, its stop). No file calls one
 * above it.
 */
#ifndef CORRAL_POOLS_STATE_H
#define CORRAL_POOLS_STATE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "os/listen.h"
#include "os/systemd.h"

enum pool_state {
    POOLS_STARTING, /* its master runs and has not said READY=1 yet */
    POOLS_SERVING,  /* its master said READY=1 */
    POOLS_WAITING,  /* its master exited: started again at respawn_at_ms */
    POOLS_FAILED,   /* its configuration or a listener failed: until the next reload */
    POOLS_STOPPING, /* told to stop (a stop, a removal, a restart) */
};

/* One pool of the pools list. */
struct pool {
    char *name;
    struct config cfg;   /* loaded with --pool-name NAME (the file's listen specs) */
    bool cfg_ok;         /* cfg loaded (else FAILED, with why in the log) */
    struct listener *ls; /* bound by the top master, handed to each master */
    size_t nls;          /* bound listeners (0: none held) */
    pid_t pid;           /* its master, 0 = none */
    enum pool_state state;
    bool ever_ready;        /* some master of this pool said READY=1 */
    bool removed;           /* gone from the file: forgotten once its master is reaped */
    bool restart;           /* a change its master cannot reload: started again once reaped
                               (on listeners bound again when they changed) */
    unsigned failures;      /* masters in a row that exited before READY=1 */
    unsigned starts;        /* masters started */
    uint64_t respawn_at_ms; /* POOLS_WAITING: when to start again */
};

/* The top master. */
struct pools {
    const struct config *top; /* the top-level keys at start (its pools list in top->pools) */
    int argc;
    char **argv;
    char *file; /* the config file, absolute (the pool masters' -c) */
    struct pool *p;
    size_t n, cap;
    int epfd, sigfd, notifyfd;
    char notify_name[108]; /* the abstract socket the masters send READY=1 to ("@...") */
    struct control *ctl;
    struct systemd_notify sysd; /* systemd's own NOTIFY_SOCKET, if the top master has one */
    bool ready_sent;            /* READY=1 told to it */
    /* Set by signals and commands, acted on by the loop. */
    bool reload_due, reopen_due;
    int stop_sig; /* 0, or SIGTERM (graceful), SIGINT or SIGQUIT: stopping */
};

/* pools_reload.c */

/* Load pool NAME's configuration into *CFG (config_load with the command
 * line plus --pool-name NAME). Returns 0, or -1 with the reason in err. */
int pools_load_pool(const struct pools *ps, const char *name, struct config *cfg, char *err,
                    size_t errlen);

/* Bind P's listeners unless it holds them, and start its master; a
 * failure is logged with the pool's name and leaves it FAILED until the
 * next reload. */
void pools_start(struct pools *ps, struct pool *p);

/* Add pool NAME (loaded, bound and started; a failure leaves it FAILED,
 * said in the log with its name). Returns the pool, or NULL when out of
 * memory. */
struct pool *pools_add(struct pools *ps, const char *name);

/* SIGHUP or `reload`: read the file again and diff the pools by name:
 * added ones start, removed ones stop gracefully, changed ones reload
 * (SIGHUP to their master) or, when a key read at start only (listeners,
 * threads, logs, ...) or the uid or gid changed, restart (a graceful stop,
 * then a new master; unchanged listeners stay open meanwhile);
 * untouched ones are left alone. A file that no longer loads changes
 * nothing (logged). */
void pools_reload(struct pools *ps);

/* Forget pool I (its master is gone): listeners closed, memory freed. */
void pools_forget(struct pools *ps, size_t i);

/* pools_spawn.c */

/* Bind P's listeners (as the top master: root when started as root).
 * Returns 0, or -1 with the listener and the reason in err. */
int pools_bind(struct pool *p, char *err, size_t errlen);

/* Close the listeners P holds (unix socket files removed). */
void pools_unbind(struct pool *p);

/* Fork and exec P's master: corral -c FILE --pool-name NAME --listen
 * PROTO:fd:N ..., its listeners on descriptors 3.., NOTIFY_SOCKET set to
 * the top master's. Returns 0 (P->pid, STARTING), or -1 with why in err. */
int pools_spawn(struct pools *ps, struct pool *p, char *err, size_t errlen);

/* Send SIG to P's master, if it runs. */
void pools_signal(struct pool *p, int sig);

#endif
