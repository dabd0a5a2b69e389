/*
 * program_keep.c — the connections a worker process keeps to its FastCGI
 * programs (see program_keep.h).
 */
#include "program_keep.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* Close the idle kept connections. A slot's connection in use is not in
 * the set: its thread sees the change at program_keep_put. */
static void program_keep_drop(struct program_keep *k)
{
    for (unsigned i = 0; i < k->t->count; i++) {
        int fd = atomic_exchange(&k->fd[i], -1);
        if (fd >= 0)
            close(fd);
    }
}

static bool program_keep_allowed(struct program_keep *k)
{
    return program_table_keeps(k->t) && !atomic_load_explicit(&k->off, memory_order_relaxed);
}

/* The keeper thread: sleeps on the table's keep_epoch; whenever keeping
 * is forbidden it drops the idle connections. */
static void *program_keeper(void *arg)
{
    struct program_keep *k = arg;
    for (;;) {
        uint32_t epoch = atomic_load(&k->t->keep_epoch);
        if (!program_keep_allowed(k))
            program_keep_drop(k);
        program_keep_wait(k->t, epoch);
    }
    return NULL;
}

int program_keep_init(struct program_keep *k, struct program_table *t)
{
    k->t = t;
    k->fd = NULL;
    atomic_store(&k->off, true);
    const char *max = getenv("PHP_FCGI_MAX_REQUESTS");
    k->php_max = max ? strtoull(max, NULL, 10) : 0;
    _Atomic int *fds = malloc(t->count * sizeof(*fds));
    k->gen = calloc(t->count, sizeof(*k->gen));
    if (!fds || !k->gen) {
        free(fds);
        return -1; /* k->fd stays NULL: nothing is kept */
    }
    for (unsigned i = 0; i < t->count; i++)
        atomic_init(&fds[i], -1);
    k->fd = fds;
    /* The keeper takes no signal: the worker's threads handle them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    k->thread = pthread_create(&k->keeper, NULL, program_keeper, k) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!k->thread)
        return -1;
    atomic_store(&k->off, false);
    return 0;
}

/* Whether the program of slot I has served its PHP_FCGI_MAX_REQUESTS. */
static bool program_keep_spent(struct program_keep *k, unsigned i)
{
    return k->php_max && atomic_load(&k->t->slots[i].requests) >= k->php_max;
}

int program_keep_take(struct program_keep *k, unsigned i)
{
    if (!k->fd)
        return -1;
    int fd = atomic_exchange(&k->fd[i], -1);
    if (fd >= 0 && (k->gen[i] != atomic_load(&k->t->slots[i].gen) || program_keep_spent(k, i))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

bool program_keep_wanted(struct program_keep *k, unsigned i)
{
    /* The request about to go is the program's last: it closes anyway. */
    return k->fd && program_keep_allowed(k) &&
           !(k->php_max && atomic_load(&k->t->slots[i].requests) + 1 >= k->php_max);
}

void program_keep_put(struct program_keep *k, unsigned i, int fd, uint32_t gen)
{
    if (!k->fd || !program_keep_allowed(k)) {
        close(fd);
        return;
    }
    k->gen[i] = gen;
    atomic_store(&k->fd[i], fd);
    /* Forbidden meanwhile: the keeper may have swept before the store. */
    if (!program_keep_allowed(k)) {
        fd = atomic_exchange(&k->fd[i], -1);
        if (fd >= 0)
            close(fd);
    }
}

void program_keep_stop(struct program_keep *k)
{
    atomic_store(&k->off, true);
    if (k->fd)
        program_keep_drop(k);
}
