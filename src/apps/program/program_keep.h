/*
 * program_keep.h — the connections one worker process keeps to its FastCGI
 * programs between requests, one per program at most, so that a request
 * costs no connect, accept and close (FCGI_KEEP_CONN). Kept only while the
 * program table allows it (program_table.h: a single worker process runs),
 * and only to the program they were made to (its slot's gen).
 *
 * A kept connection is used only by the thread holding its program's
 * claim: it takes the connection (program_keep_take), forwards, and puts
 * it back (program_keep_put) before it releases the claim. The process's
 * keeper thread closes the idle ones as soon as keeping is forbidden, and
 * program_keep_stop when the worker stops: an idle connection never pins a
 * program away from another process for longer than that.
 */
#ifndef CORRAL_PROGRAM_KEEP_H
#define CORRAL_PROGRAM_KEEP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "program_table.h"

struct program_keep {
    struct program_table *t;
    _Atomic int *fd;  /* per slot: the idle kept connection, -1 = none */
    uint32_t *gen;    /* per slot: the gen of the program it was made to */
    _Atomic bool off; /* the worker is stopping: keep nothing */
    uint64_t php_max; /* PHP_FCGI_MAX_REQUESTS of the environment, 0 = none */
    bool thread;      /* the keeper thread runs */
    pthread_t keeper;
};

/* In a worker process, for table T: the empty set and its keeper thread.
 * K must live until the process ends: the keeper is never joined.
 * 0, or -1 (out of memory, no thread): then nothing is ever kept. */
int program_keep_init(struct program_keep *k, struct program_table *t);

/* For the holder of slot I's claim: the connection kept to its current
 * program, or -1. A connection to an earlier program, or to a php-cgi
 * that has served its PHP_FCGI_MAX_REQUESTS (it exits after that one), is
 * closed instead. */
int program_keep_take(struct program_keep *k, unsigned i);

/* Whether a request on slot I should ask its program to keep the
 * connection (read once, before the request goes out). */
bool program_keep_wanted(struct program_keep *k, unsigned i);

/* Keep FD (>= 0), made to the program of gen GEN, for slot I, or close it
 * when keeping is no longer allowed. Before the claim's release. */
void program_keep_put(struct program_keep *k, unsigned i, int fd, uint32_t gen);

/* The worker stops: close the idle connections, keep no more. Any thread;
 * never blocks. */
void program_keep_stop(struct program_keep *k);

#endif
