/*
 * worker_state.h — what the worker's files share (not for the rest of
 * corral: the interface is worker.h). Each file calls only the ones below
 * it in this list (and conn/, core/, os/):
 *
 *   worker.c         setup, threads, the epoll dispatch, the accept batch
 *   worker_serve.c   serving an owned connection: head, app, response, park
 *   worker_stop.c    housekeeping (idle timeout), recycling, graceful stop,
 *                    signals, exit, the master's death
 *   worker_accept.c  taking one connection: accept4, --allow-from, conn_init
 *   worker_slots.c   the connection table (alloc, park, claim, close) and
 *                    accept balancing across workers (waking a peer with
 *                    WORKER_POKE_SIGNAL, the back-off when out of file
 *                    descriptors, the log line when full)
 *   worker_lead.c    with threads: which one waits in epoll_wait (the
 *                    leader), and the hand-over when its request blocks
 */
#ifndef CORRAL_WORKER_STATE_H
#define CORRAL_WORKER_STATE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include "conn/conn.h"
#include "conn/request.h"
#include "os/allow.h"
#include "status_page.h"
#include "worker.h"

/* SLOT_PENDING: owned (busy), and an event came for it meanwhile
 * (worker_slot_event): its owner must not park it without looking again.
 * SLOT_PARKING: its owner is changing its epoll registration, and then
 * parks it (worker_slot_park). Both only with threads. */
enum { SLOT_FREE = 0, SLOT_BUSY = 1, SLOT_PARKED = 2, SLOT_PARKING = 3, SLOT_PENDING = 5 };

/* epoll data: connections are (generation << 32 | slot); the rest are tags. */
#define TAG_BASE 0xFFFFFFFF00000000ull
#define TAG_TIMER (TAG_BASE | 0)
#define TAG_SIGNAL (TAG_BASE | 1)
#define TAG_LISTENER (TAG_BASE | 16)

#define TICK_MS 100
/* A graceful stop closes idle kept connections parked at least this long,
 * which also keeps it clear of a thread that is parking one right now. */
#define PARK_SETTLE_MS 100
/* Body bytes read and thrown away, after the response, to cleanly close a
 * connection that is not kept whose request body the app did not read (a
 * kept one discards any amount to be reused, within the body deadline). */
#define DRAIN_LIMIT (4u << 20)
/* How long a worker out of file descriptors (EMFILE, ENFILE) leaves its
 * listeners out of epoll before it tries again: the tick re-arms them, so
 * the pause is this to this + TICK_MS. */
#define NO_FDS_BACKOFF_MS 200
/* Accept balancing (worker_slots.c): the signal a worker sends a peer that
 * stepped back from the listeners to make it look again (its default
 * action is to ignore it, so it is harmless to a process that has not yet
 * set up its signalfd). */
#define WORKER_POKE_SIGNAL SIGURG

struct slot {
    _Atomic uint64_t word; /* generation << 32 | SLOT_* */
    _Atomic uint64_t parked_at_ms;
    /* A deadline the tick's scan checks while the connection is parked
     * (worker_stop.c): since when a request head has been arriving (its
     * first byte: header-timeout), or since when the body the app did not
     * read has been discarded after the response (conn.discarding: the
     * body deadline). 0 = neither. Only the owner writes it. */
    _Atomic uint64_t since_ms;
    bool registered; /* fd is in the epoll set */
    /* With threads: the event that gave the slot to its owner said the peer
     * hung up (worker_slot_park must have epoll look again). */
    bool hup;
    bool out_armed; /* ... to write, not read (worker_slot_park) */
    /* The next request is buffered already (worker_resume), or a body
     * discard stopped after a batch (worker_discard): the park arms the
     * entry to write, so that a serving thread is woken at once. */
    bool kick;
    /* Accepted, and no request has started on it yet (its first head is
     * still to come); fresh_parked: so, and parked, counted in the
     * scoreboard's fresh (worker_serve.c). */
    bool fresh, fresh_parked;
    /* The connection and the request it serves, side by side: the request
     * points at the connection (request.h), never the other way. The slot
     * owns both; slots live as long as the worker process. */
    struct conn conn;
    struct corral_request req;
};

/* Threads (worker_lead.c): one leader waits in epoll_wait and serves; the
 * deputy watches it and takes the lead when a dispatch blocks; followers
 * wait to become the deputy. Only the leader touches the batch. */
#define WORKER_BATCH 64
struct worker_lead {
    _Atomic uint64_t state;       /* the leader's dispatch: since_us << 2 | LEAD_* */
    _Atomic int deputy;           /* a thread is the deputy */
    _Atomic int deputy_asleep;    /* ... asleep with no timeout: the next dispatch wakes it */
    _Atomic int followers;        /* threads asleep on follow_word (or about to be) */
    _Atomic uint32_t deputy_word; /* futex words */
    _Atomic uint32_t follow_word;
    struct epoll_event evs[WORKER_BATCH]; /* the leader's events, evs[head..count) not taken */
    int head, count;
};

struct worker {
    const struct worker_ctx *ctx;
    const struct config *cfg;
    int epfd, timerfd, sigfd;
    struct slot *slots;
    unsigned slot_count;

    /* guards the free list, open, armed, no_fds_until_ms, full_logged, none_left, poked_at */
    pthread_mutex_t lock;
    unsigned *free_list;
    unsigned free_count;
    unsigned open; /* open connections */
    bool armed;    /* listeners are in the epoll set */
    /* Out of file descriptors: accept nothing until then (the tick's
     * worker_balance puts the listeners back); 0 = not backing off. */
    uint64_t no_fds_until_ms;
    struct allow_ratelimit no_fds_log; /* one line a second about it */
    /* The max-conns limit took the listeners out: one line a second about
     * it; full_logged says a line went out for the episode now running, so
     * that the end of it is logged too. */
    struct allow_ratelimit full_log;
    bool full_logged;
    /* Every thread was busy or owed at the last balancing: a peer that
     * stepped back for this worker is woken when this turns true. */
    bool none_left;
    /* Per peer (scoreboard index, max_workers entries): its count of
     * accepted connections when this worker last woke it to accept again
     * (UINT64_MAX = never), so that it is woken once until it accepts. */
    uint64_t *poked_at;
    /* Free slots no thread has claimed before its accept4 (worker_slot_reserve):
     * free_count less the claims not yet turned into an alloc. */
    _Atomic int unreserved;
    _Atomic bool full_poked; /* full: the peers with room were woken */

    /* How workers share the listeners. Only benchmarks change it, through
     * CORRAL_ACCEPT_MODE, to reproduce contrib/bench/accept.sh. */
    enum { ACCEPT_BALANCED, ACCEPT_EXCLUSIVE, ACCEPT_SHARED } accept_mode;
    enum pool_mode pool_mode; /* the config's, resolved once */
    bool single_thread;
    /* One thread, an app that serves each request in turn: nobody else can
     * take a connection's event while it is served, so connections stay
     * registered level-triggered and parking costs no epoll_ctl. With
     * threads, or an app that keeps requests past the serving thread
     * (run_detached: its own thread parks them), they are edge-triggered
     * and stay armed while owned: parking costs no epoll_ctl either unless
     * an event came while the connection was owned (worker_slot_park,
     * worker_slot_event). A level-triggered entry would have to leave the
     * set while the app holds its connection (an epoll_ctl out and one in
     * per request). */
    bool edge_triggered;
    _Atomic int stopping; /* 0 running, 1 graceful */
    _Atomic int exiting;
    _Atomic int recycling; /* the graceful stop is a recycling */
    /* The graceful stop (worker_stop.c): when it began, and until when kept
     * connections are left to the front end to close. */
    _Atomic uint64_t stop_begun_ms, drain_until_ms;
    _Atomic unsigned drain_asked;   /* goodbyes sent on kept connections */
    _Atomic unsigned drain_peer;    /* kept ones the front end then closed */
    _Atomic unsigned drain_idle;    /* ... closed here, idle after it */
    _Atomic unsigned drain_ignored; /* ... closed after a response: the front
                                       end ignores goodbyes */
    _Atomic unsigned drain_forced;  /* kept ones closed at drain_until_ms */
    pid_t master_pid;               /* the parent at the start (kept across a re-exec) */
    _Atomic int orphaned;           /* the master died (worker_stop.c) */
    _Atomic int orphan_logged;
    _Atomic uint64_t orphan_at_ms;
    _Atomic uint64_t served; /* requests this process served */
    uint64_t max_requests;   /* with its jitter; 0 = never */
    int statm_fd;            /* /proc/self/statm when --max-rss, else -1 */
    uint64_t page_kib;       /* the page size, for statm's page counts */
    struct sb_worker *sb;
    _Atomic uint64_t last_idle_scan_ms; /* the tick's idle scan (worker_stop.c) */
    _Atomic uint64_t last_request_ms;   /* end of the last request (ondemand idle exit) */
    struct status_src status;           /* the status page's view */
    struct worker_lead lead;            /* threads only */
};

struct worker_thread {
    struct worker *w;
    unsigned index;
    struct sb_thread *sb;
    uint64_t lead_word; /* the lead's state word this thread stored last */
};

/* Threads of worker O serving a request or owed to a connection parked
 * before its first one. */
static inline uint64_t worker_threads_owed(const struct sb_worker *o)
{
    return (uint64_t)atomic_load_explicit(&o->busy, memory_order_relaxed) +
           atomic_load_explicit(&o->fresh, memory_order_relaxed);
}

static inline uint64_t slot_word(uint32_t gen, unsigned state)
{
    return (uint64_t)gen << 32 | state;
}

/* ---- serving (worker_serve.c) ---- */

/* Serve the connection of an owned slot until it must wait for bytes (then
 * it is parked) or be closed. */
void worker_serve(struct worker_thread *t, struct slot *s);
/* app.h's resume of this worker (struct app's resume, with the worker as
 * its argument): a detached request is over; any thread. */
void worker_resume(void *worker, corral_request *req, bool close);

/* ---- housekeeping and stopping (worker_stop.c) ---- */

/* The timer tick: idle timeout, balancing, the end of a graceful stop. */
void worker_tick(struct worker *w);
/* The signalfd is readable: SIGTERM stops gracefully, SIGUSR1 reopens the
 * logs, WORKER_POKE_SIGNAL re-checks the balancing (worker_poked), SIGINT
 * and SIGQUIT exit at once. */
void worker_signal(struct worker_thread *t);
/* After a response on a kept connection of a stopping worker (the caller
 * owns it): true when the connection stays open to serve what the front end
 * may still send on it, false when it is to be closed now. */
bool worker_stop_keep(struct worker *w, struct conn *c);
/* After a request: recycle past --max-requests or --max-rss. */
void worker_check_recycle(struct worker *w, uint64_t served);
/* Ondemand pools: stop after --idle-worker-timeout without a request. */
void worker_check_idle_exit(struct worker_thread *t);
/* Before the request threads start: the handler of WORKER_ORPHAN_SIGNAL
 * (the master died: worker_stop.c tells what follows). Returns 0, or -1
 * (logged). */
int worker_orphan_setup(struct worker *w);
/* End the process with STATUS (the app's worker_fini first for 0 and
 * WORKER_EXIT_RECYCLE); other threads calling it wait for the first. */
void worker_exit(struct worker *w, int status) __attribute__((noreturn));

/* ---- accepting (worker_accept.c) ---- */

/* The codec limits for a connection accepted now: the config's, with the
 * FastCGI GET_VALUES answers (FCGI_MAX_CONNS = processes x max_conns,
 * FCGI_MAX_REQS = processes x threads, at most the --fastcgi-program
 * programs) for the pool as it is: a static
 * pool's current size (corralctl scale changes it), the most processes a
 * dynamic or ondemand pool may grow to. */
void worker_conn_limits(const struct worker *w, struct proto_limits *lim);
/* Accept one connection of listener LI (allow-from checked, counted) into
 * a slot the caller owns. NULL when none was taken: *AGAIN says whether the
 * next one may still be (a refused peer) or not (the queue is empty, no
 * free slot, an error, each logged). */
struct slot *worker_take(struct worker *w, size_t li, bool *again);

/* ---- the connection table and balancing (worker_slots.c) ---- */

/* Before accept4: claim a free slot for the connection about to be taken,
 * so that it never has to be closed for want of one (two threads woken for
 * the last slot). False when every slot is open or claimed: the caller
 * leaves the connection in the queue, and the peers with room are asked
 * (once until this worker accepts again) to look at the listeners. */
bool worker_slot_reserve(struct worker *w);
/* A listener event came after this worker left the listeners: the peers
 * are asked to look at them (the event may have been a queued
 * connection's only wake-up). */
void worker_pass_on(struct worker *w);
/* Give back a claim that accept4 did not use. */
void worker_slot_unreserve(struct worker *w);
/* Take a free slot, BUSY and owned by the caller; NULL when all are open.
 * The caller holds a claim (worker_slot_reserve), which this uses up. */
struct slot *worker_slot_alloc(struct worker *w);
/* Close the connection of a slot this thread owns and free the slot. */
void worker_slot_close(struct worker *w, struct slot *s);
/* Hand a connection back to epoll until its next bytes arrive. */
void worker_slot_park(struct worker *w, struct slot *s);
/* Take ownership of a parked slot; false if someone else has it. */
bool worker_slot_claim(struct slot *s, uint32_t gen);
/* An epoll event for the connection of slot generation GEN: take it, like
 * worker_slot_claim, or, when a thread owns it now, tell the owner
 * (SLOT_PENDING) so that its park makes epoll report the bytes again.
 * True when the caller owns the slot and serves it. */
bool worker_slot_event(struct slot *s, uint32_t gen);
/* Put the listeners in or out of the epoll set: out while stopping, full,
 * or well ahead of another worker that accepts (alloc and close re-check
 * it too, the tick and WORKER_POKE_SIGNAL as well); wake the peers that
 * should accept again. */
void worker_balance(struct worker *w);
/* WORKER_POKE_SIGNAL: a peer asks this worker to look again whether to
 * accept (worker_balance), and, if it accepts, to look at the listeners'
 * queues again. */
void worker_poked(struct worker *w);
/* accept4 failed for want of file descriptors or memory: take the listeners
 * out of the epoll set for NO_FDS_BACKOFF_MS, so that a level-triggered
 * listener does not wake the threads again at once. */
void worker_back_off_accept(struct worker *w);

/* ---- the lead among threads (worker_lead.c) ---- */

/* The leader begins a dispatch (an event), and ends it: false when a
 * deputy took the lead meanwhile (the caller then follows). */
void worker_lead_begin(struct worker_thread *t);
bool worker_lead_end(struct worker_thread *t);
/* The leader made progress within a dispatch (the next request of an
 * accept batch): false when the lead was taken (it stops batching). */
bool worker_lead_progress(struct worker_thread *t);
/* Not the leader: wait as a follower, then as the deputy, until the lead is
 * this thread's (returns). */
void worker_lead_follow(struct worker_thread *t);

#endif
