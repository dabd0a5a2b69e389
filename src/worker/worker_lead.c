/*
 * worker_lead.c — with threads, which thread waits for the epoll's events:
 * one at a time, the leader. The others sleep on a futex: one of them, the
 * deputy, watches the leader, and the rest (followers) wait to become the
 * deputy. Calls nothing else of the worker's (worker_state.h has the map).
 *
 * The leader takes the events and serves them itself, one after the other,
 * as a single-threaded worker does: a quick request costs no other thread a
 * wake-up, no accept4 or read that finds nothing, no epoll_ctl for a
 * connection accepted before its bytes came, and no turn of the GIL. The
 * other threads are there for requests that wait (a slow back-end, a
 * sleep): when one dispatch of the leader has gone on for LEAD_STEAL_US
 * without progress (the start of a request of its accept batch counts), the
 * deputy takes the lead (a compare-and-swap on the state word) and waits
 * in epoll_wait itself, and a follower is woken to be the next deputy. The
 * old leader, done with its dispatch, sees the lead gone and becomes the
 * deputy, or a follower when there is one already. So a connection waits
 * at most about LEAD_STEAL_US behind a request that blocks while a thread is
 * free, and all threads serve when all requests block.
 *
 * The deputy sleeps with a timeout while the leader serves (it wakes at the
 * latest about every LEAD_STEAL_US, to look), and with none once the
 * leader has been idle in epoll_wait for LEAD_IDLE_US: then the leader's
 * next dispatch wakes it (one futex call after an idle spell).
 */
#include "worker_state.h"

#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

/* How long one dispatch of the leader may go on without progress before
 * the deputy takes the lead. */
#define LEAD_STEAL_US 1000u
/* How long the leader idles before the deputy sleeps without a timeout. */
#define LEAD_IDLE_US 10000u

/* The state word: the time (clock_now_us) its leader began the dispatch
 * running, shifted left 2, with one of these. */
enum { LEAD_IDLE = 0, LEAD_BUSY = 1, LEAD_STOLEN = 2 };

static uint64_t worker_lead_word(uint64_t since_us, unsigned flag)
{
    return since_us << 2 | flag;
}

/* Wait on futex word WORD while it holds SEEN, at most TIMEOUT_US (0: no
 * timeout); wake-ups may be spurious. */
static void worker_lead_futex_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t timeout_us)
{
    struct timespec ts = {.tv_sec = (time_t)(timeout_us / 1000000u),
                          .tv_nsec = (long)(timeout_us % 1000000u) * 1000L};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, timeout_us ? &ts : NULL, NULL,
            0);
}

static void worker_lead_futex_wake(_Atomic uint32_t *word)
{
    atomic_fetch_add(word, 1);
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void worker_lead_begin(struct worker_thread *t)
{
    struct worker_lead *l = &t->w->lead;
    t->lead_word = worker_lead_word(clock_now_us(), LEAD_BUSY);
    /* Sequentially consistent, against the deputy's store of deputy_asleep
     * and its load of the state before it sleeps with no timeout: one of
     * the two sees the other. */
    atomic_store(&l->state, t->lead_word);
    if (atomic_load(&l->deputy_asleep) && atomic_exchange(&l->deputy_asleep, 0))
        worker_lead_futex_wake(&l->deputy_word);
}

bool worker_lead_progress(struct worker_thread *t)
{
    uint64_t expect = t->lead_word, now = worker_lead_word(clock_now_us(), LEAD_BUSY);
    if (!atomic_compare_exchange_strong(&t->w->lead.state, &expect, now))
        return false;
    t->lead_word = now;
    return true;
}

bool worker_lead_end(struct worker_thread *t)
{
    /* A stolen lead's word is LEAD_STOLEN, or a later dispatch's of the new
     * leader: a later time (the theft came LEAD_STEAL_US after ours). */
    uint64_t expect = t->lead_word;
    return atomic_compare_exchange_strong(&t->w->lead.state, &expect,
                                          worker_lead_word(0, LEAD_IDLE));
}

/* As the deputy: watch the leader until its lead is taken (returns). */
static void worker_lead_watch(struct worker_lead *l)
{
    unsigned idle_us = 0;
    for (;;) {
        uint64_t st = atomic_load(&l->state);
        if ((st & 3) == LEAD_BUSY) {
            idle_us = 0;
            uint64_t since = st >> 2, now = clock_now_us();
            if (now < since + LEAD_STEAL_US) {
                worker_lead_futex_wait(&l->deputy_word, atomic_load(&l->deputy_word),
                                       since + LEAD_STEAL_US - now);
                continue;
            }
            if (!atomic_compare_exchange_strong(&l->state, &st, worker_lead_word(since, LEAD_STOLEN)))
                continue;
            /* The lead is ours: the next deputy is a follower, if one sleeps. */
            atomic_store(&l->deputy, 0);
            if (atomic_load(&l->followers) > 0)
                worker_lead_futex_wake(&l->follow_word);
            return;
        }
        /* The leader waits in epoll_wait (or is between two dispatches). */
        uint32_t seen = atomic_load(&l->deputy_word);
        if (idle_us < LEAD_IDLE_US) {
            idle_us += LEAD_STEAL_US;
            worker_lead_futex_wait(&l->deputy_word, seen, LEAD_STEAL_US);
            continue;
        }
        atomic_store(&l->deputy_asleep, 1);
        if ((atomic_load(&l->state) & 3) != LEAD_BUSY)
            worker_lead_futex_wait(&l->deputy_word, seen, 0);
        atomic_store(&l->deputy_asleep, 0);
        idle_us = 0;
    }
}

void worker_lead_follow(struct worker_thread *t)
{
    struct worker_lead *l = &t->w->lead;
    for (;;) {
        uint32_t seen = atomic_load(&l->follow_word);
        /* Counted before the try, against the deputy that leaves: it stores
         * deputy = 0 and then reads followers (both sequentially
         * consistent), so either the try sees the place free or the
         * deputy wakes a follower. */
        atomic_fetch_add(&l->followers, 1);
        int expect = 0;
        bool deputy = atomic_compare_exchange_strong(&l->deputy, &expect, 1);
        if (!deputy)
            worker_lead_futex_wait(&l->follow_word, seen, 0);
        atomic_fetch_sub(&l->followers, 1);
        if (deputy) {
            worker_lead_watch(l);
            return;
        }
    }
}
