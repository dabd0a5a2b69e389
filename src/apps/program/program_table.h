/*
 * program_table.h — the FastCGI programs of a --fastcgi-program pool, in a
 * shared mapping made in the master before any fork: the master
 * (src/master/master_programs.c) starts, watches and stops them; every
 * worker's adapter (app_program.c) claims an idle one per request.
 *
 * A slot's claim (busy) is taken with a compare-and-swap from 0: by a
 * worker thread for one request (PROGRAM_CLAIM_REQUEST, owner = its pid),
 * or by the master while the program is down or being stopped
 * (PROGRAM_CLAIM_MASTER). Whoever releases a claim bumps the table's
 * futex word `released` and wakes the waiters (program_claim). Only the
 * master writes the fields marked "master".
 *
 * Kept connections (program_keep.h): a worker process may keep its
 * connection to a program between requests (FCGI_KEEP_CONN) only while
 * the table's `keep` word is 1. A program serves one connection at a time,
 * so an idle kept connection pins it to the process that holds it: the
 * master sets `keep` only while a single worker process runs
 * (master_programs.c), and clears it before it forks another
 * (app_program.c's fork_prepare); clearing bumps the futex word
 * `keep_epoch`, on which every worker's keeper thread waits to drop its
 * idle connections at once. A slot's `gen` changes at each start of its
 * program: a connection kept to an older one is never reused.
 */
#ifndef CORRAL_PROGRAM_TABLE_H
#define CORRAL_PROGRAM_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROGRAM_MAX 1024
#define PROGRAM_PATH_MAX 108

enum program_claim { PROGRAM_IDLE = 0, PROGRAM_CLAIM_REQUEST = 1, PROGRAM_CLAIM_MASTER = 2 };

struct program_slot {
    _Atomic uint32_t busy;       /* enum program_claim */
    _Atomic int32_t owner;       /* the worker pid holding a request claim */
    _Atomic int32_t pid;         /* the program's pid, 0 = none (master) */
    _Atomic uint64_t claimed_ms; /* when the request claim was taken */
    _Atomic uint64_t requests;   /* requests forwarded since its start */
    _Atomic uint64_t served;     /* ... in all, over its respawns */
    _Atomic uint32_t harakiri;   /* a worker killed it for an overrun request */
    _Atomic uint32_t gen;        /* bumped by the master at each start (master) */
    char path[PROGRAM_PATH_MAX]; /* its listening socket */
    /* master only */
    int listen_fd; /* kept across respawns: connections queue there */
    int stderr_fd; /* the read end of its stderr, -1 = none */
    int exec_fd;   /* until its exec: errno if the exec failed, EOF once done; -1 = none */
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* 0 = none due */
    unsigned fast_deaths;
    bool stopping; /* sent SIGTERM on purpose (recycle, reload, stop) */
    bool exec_failed; /* its exec failed (logged with the reason) */
    uint64_t stop_sent_ms;
    uint64_t log_window_ms; /* stderr rate limit: lines in this second */
    unsigned log_lines;
    unsigned log_dropped;
    char line[512]; /* a partial stderr line */
    size_t line_len;
};

struct program_table {
    _Atomic uint32_t released; /* futex word: bumped at each release */
    _Atomic uint32_t waiters;
    _Atomic uint32_t keep;       /* 1: workers may keep connections (master) */
    _Atomic uint32_t keep_epoch; /* futex word: bumped when keep is cleared */
    unsigned count;
    bool up;                    /* master: a program lived past its first second */
    char dir[PROGRAM_PATH_MAX]; /* the sockets' private directory */
    size_t map_len;
    struct program_slot slots[];
};

/* Map a table of COUNT programs (shared, anonymous; every slot claimed by
 * the master until its program runs). Returns it, or NULL with a message
 * in err. Makes no file: program_table_open does. */
struct program_table *program_table_create(unsigned count, char *err, size_t errlen);

/* Make the private directory of the sockets (mode 0700, owned by UID:GID
 * when they are not -1) and bind each slot's listening socket there (the
 * master, before it forks workers for this table). 0, or -1 with a
 * message; program_table_destroy cleans up either way. */
int program_table_open(struct program_table *t, uid_t uid, gid_t gid, unsigned backlog, char *err,
                       size_t errlen);

/* Close the sockets, remove them and the directory, unmap. In the master. */
void program_table_destroy(struct program_table *t);

/* Claim an idle program for a request; wait until DEADLINE_MS (clock.h's
 * clock_now_ms) when none is. A program that served MAX_REQUESTS (0 = no
 * limit) is passed over: the master recycles it. Returns its index, or -1
 * at the deadline. */
int program_claim(struct program_table *t, uint64_t deadline_ms, uint64_t max_requests);

/* The same for process SELF (its pid, which program_claim asks the kernel
 * for). */
int program_claim_as(struct program_table *t, uint64_t deadline_ms, uint64_t max_requests,
                     pid_t self);

/* Take an idle slot I for the master (recycling): true when it got it. */
bool program_claim_master(struct program_table *t, unsigned i);

/* Release the master's claim on slot I (its program runs now), if it still
 * holds it, and wake a waiter. */
void program_release_master(struct program_table *t, unsigned i);

/* Release slot I's claim and wake a waiter. */
void program_release(struct program_table *t, unsigned i);

/* Allow (ON) or forbid kept connections; forbidding wakes every keeper
 * thread (program_keep_wait) when it was allowed. In the master. */
void program_table_set_keep(struct program_table *t, bool on);

/* Whether kept connections are allowed now. */
static inline bool program_table_keeps(struct program_table *t)
{
    return atomic_load_explicit(&t->keep, memory_order_acquire) != 0;
}

/* Sleep until kept connections are forbidden after EPOCH (keep_epoch as
 * read before checking program_table_keeps), or a signal. */
void program_keep_wait(struct program_table *t, uint32_t epoch);

#endif
