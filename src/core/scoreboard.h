/*
 * scoreboard.h — per-worker and per-thread state in one shared mapping of
 * a memfd, made by the master before the first fork (a memfd so that a
 * --preload reload, which re-executes the master, can map it again).
 *
 * Writers: each worker writes only its own slot, its threads' sub-slots and
 * its per-listener counters, with relaxed atomic stores and adds (no lock
 * on the request path). The master writes the header's pool size and
 * resets a slot when it reaps its worker. Readers: the master, the control
 * socket and the other workers (accept balancing) read with relaxed loads;
 * a reader may see a method/URI string mid-update, or a request counted
 * before its duration, which is acceptable for a status display.
 *
 * The mapping is sized once for max_workers (--max-processes): scaling the
 * pool up to that needs no new memory, and slots are never moved. Counters
 * of a slot (requests, errors, accepted, respawns) add up over every worker
 * that has held it, so totals never go down when a worker is replaced.
 *
 * Layout: struct sb_header, then max_workers struct sb_worker, then
 * max_workers * threads struct sb_thread (worker i's threads start at
 * i * threads), then max_workers * listeners accept counters (worker i's
 * start at i * listeners).
 */
#ifndef CORRAL_SCOREBOARD_H
#define CORRAL_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sb_worker_state {
    SB_WORKER_EMPTY = 0,
    SB_WORKER_STARTING,
    SB_WORKER_RUNNING,
    SB_WORKER_STOPPING
};
enum sb_thread_state { SB_THREAD_IDLE = 0, SB_THREAD_BUSY };

struct sb_thread {
    _Atomic uint32_t state;
    _Atomic uint64_t request_start_us; /* CLOCK_MONOTONIC of the current request */
    _Atomic uint64_t requests;         /* requests finished */
    _Atomic uint64_t busy_us;          /* their durations added up */
    char method[16];                   /* current request, NUL-terminated */
    char uri[96];
};

struct sb_worker {
    _Atomic int32_t pid;
    _Atomic uint32_t state;
    _Atomic int32_t conns;         /* open connections */
    _Atomic uint32_t accepting;    /* listeners armed in its epoll */
    _Atomic uint32_t busy;         /* threads serving a request */
    _Atomic uint32_t threads_live; /* request threads started */
    _Atomic uint64_t accepted;     /* connections accepted */
    _Atomic uint64_t requests;     /* requests served */
    _Atomic uint64_t errors;       /* malformed input, failed responses */
    _Atomic int64_t started_at;    /* CLOCK_REALTIME seconds */
    _Atomic uint32_t respawns;     /* times this slot was refilled */
    /* Requests an app holds after its thread returned (apps/app.h's
     * run_detached: ASGI's event loop), counted by worker_serve.c when it
     * hands one over and when it comes back. */
    _Atomic uint32_t detached;
    /* Connections parked before their first request (taken before their
     * bytes came): each will want a thread soon (accept balancing,
     * src/worker/worker_slots.c). */
    _Atomic uint32_t fresh;
    /* Out of the listeners for want of a free thread while it had one
     * (src/worker/worker_slots.c): it is to be woken when that changes. */
    _Atomic uint32_t no_thread;
};

/* The header opens with SB_MAGIC and the layout version SB_LAYOUT, which
 * changes with any change to these structures: a re-executed master maps
 * only a scoreboard of its own layout (scoreboard_attach). Layout 1 was the
 * one without the mark. */
#define SB_MAGIC 0x42535243u /* "CRSB" */
#define SB_LAYOUT 3u

struct sb_header {
    /* These three keep their place in every layout. */
    uint32_t magic, layout;
    _Atomic uint32_t generation; /* of the workers serving; 1 at start */
    uint32_t max_workers, threads, listeners;
    /* Slots the pool spans now: the target number of workers, or more while
     * workers above it are still stopping. Written by the master. */
    _Atomic uint32_t slots;
    _Atomic uint64_t started_at; /* CLOCK_REALTIME seconds */
    /* The master's view of the pool, published by the master for the
     * status builders (status.c) of the control socket and the status page,
     * which may run in a worker. */
    _Atomic uint64_t started_mono_ms; /* CLOCK_MONOTONIC of the start */
    _Atomic int32_t master_pid;
    _Atomic uint32_t master_state; /* enum sb_master_state */
    _Atomic uint32_t pool_target;  /* static: workers the pool should have */
    _Atomic uint32_t spawn_rate;   /* dynamic/ondemand: forks allowed per second */
    _Atomic uint64_t max_reached;  /* episodes of "max processes reached" */
    /* Two banks of bank_size slots (reloads): the generation serving uses
     * the slots from bank_base on; the other bank holds an old generation
     * still draining, or a new one starting. */
    _Atomic uint32_t bank_base;
    uint32_t bank_size;            /* --max-processes */
    _Atomic uint32_t reload_phase; /* 0 idle, 1 starting, 2 draining */
    _Atomic uint32_t reloads, reload_failed;
    _Atomic uint32_t reload_last_ok; /* 2 = no reload yet */
    /* How the last reload went: written between two increments of
     * reload_seq (odd while being written). */
    _Atomic uint32_t reload_seq;
    char reload_last[512];
};

/* STOP_DELAY: a SIGTERM came with --stop-delay; the pool still accepts and
 * serves (the health path answers 503) until the graceful stop (STOPPING). */
enum sb_master_state {
    SB_MASTER_RUNNING = 0,
    SB_MASTER_STOPPING,
    SB_MASTER_STOPPING_NOW,
    SB_MASTER_STOP_DELAY
};

struct scoreboard {
    struct sb_header *hdr;
    struct sb_worker *workers;
    struct sb_thread *threads;
    _Atomic uint64_t *accepted; /* per worker, per listener */
    void *map;
    size_t map_len;
    int fd; /* the memfd (close-on-exec); -1 = none */
};

/* Map a scoreboard for MAX_WORKERS workers of THREADS threads each, serving
 * LISTENERS listeners. Returns 0 or a negative errno. */
int scoreboard_create(struct scoreboard *sb, unsigned max_workers, unsigned threads,
                      unsigned listeners);
void scoreboard_destroy(struct scoreboard *sb);

/*
 * Map the scoreboard memfd FD that the previous image of this master made
 * (a re-exec): its geometry comes from its header, which must match the
 * file's size. FD becomes close-on-exec again. Returns 0; SB_ATTACH_LAYOUT
 * when the mapping is of another layout (another build: nothing of it can be
 * read, and FD is left as it was); or -1, with the reason in err for both.
 */
#define SB_ATTACH_LAYOUT (-2)
int scoreboard_attach(struct scoreboard *sb, int fd, char *err, size_t errlen);

/* The generation written in the scoreboard memfd FD of a marked layout,
 * whichever; 0 when FD holds none (unmarked, or unreadable). */
uint32_t scoreboard_generation_of(int fd);

/* In a forked worker: close the memfd (the mapping stays). */
void scoreboard_close_in_child(struct scoreboard *sb);

static inline struct sb_thread *scoreboard_thread(const struct scoreboard *sb, unsigned worker,
                                                  unsigned thread)
{
    return &sb->threads[(size_t)worker * sb->hdr->threads + thread];
}

/* Requests in flight in worker WORKER: its threads in a request plus the
 * requests its app holds detached; the same meaning for every adapter (one
 * per busy thread for those that serve one request per thread). */
static inline uint32_t scoreboard_in_flight(const struct scoreboard *sb, unsigned worker)
{
    uint32_t n = atomic_load_explicit(&sb->workers[worker].detached, memory_order_relaxed);
    for (unsigned t = 0; t < sb->hdr->threads; t++)
        n += atomic_load_explicit(&scoreboard_thread(sb, worker, t)->state, memory_order_relaxed) ==
             SB_THREAD_BUSY;
    return n;
}

/* A worker slot's live figures back to none, in STATE, with PID: when its
 * worker starts (the worker) and once it is reaped (the master). The
 * counters that add up over the slot's workers stay. */
static inline void scoreboard_worker_reset(struct sb_worker *sbw, uint32_t state, int32_t pid)
{
    /* A reader that sees the state sees its pid: a new pid before the state,
     * none after it. */
    if (pid)
        atomic_store(&sbw->pid, pid);
    atomic_store(&sbw->state, state);
    if (!pid)
        atomic_store(&sbw->pid, 0);
    atomic_store(&sbw->conns, 0);
    atomic_store(&sbw->busy, 0);
    atomic_store(&sbw->fresh, 0);
    atomic_store(&sbw->no_thread, 0);
    atomic_store(&sbw->detached, 0);
    atomic_store(&sbw->threads_live, 0);
}

/* Connections worker WORKER accepted on listener LISTENER. */
static inline _Atomic uint64_t *scoreboard_accepted(const struct scoreboard *sb, unsigned worker,
                                                    size_t listener)
{
    return &sb->accepted[(size_t)worker * sb->hdr->listeners + listener];
}

#endif
