/*
 * cgi_loop.c — the event loop of a worker's CGI scripts (see cgi_loop.h).
 */
#include "cgi_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

#define CGI_LOOP_EVENTS 64

/* A list of jobs through their prev and next. */
struct cgi_list {
    struct cgi_job *head, *tail;
};

struct cgi_loop {
    const struct cgi_conf *conf;
    int epfd, efd;
    pthread_t thread;
    unsigned graceful_ms;
    /* Handed over by the serving threads (a stack: reversed when taken). */
    pthread_mutex_t lock;
    struct cgi_job *inbox;
    bool woken;
    atomic_bool stopping, quit;
    /* The loop thread's alone. */
    struct cgi_list waiting, active;
    struct cgi_list dead; /* given back, freed after the epoll batch */
    unsigned running;     /* turns taken */
    uint64_t cut_at;      /* the stop's cut (0: not stopping) */
    bool cut_done;
};

static void cgi_list_add(struct cgi_list *l, struct cgi_job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void cgi_list_del(struct cgi_list *l, struct cgi_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
}

static void cgi_loop_wake(struct cgi_loop *l)
{
    uint64_t one = 1;
    while (write(l->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* After anything a job did: a job given back returns its turn, and is
 * freed once no event of the current epoll batch can name it. */
static void cgi_loop_settle(struct cgi_loop *l, struct cgi_job *job)
{
    if (job->phase != CGI_JOB_DONE || job->settled)
        return;
    job->settled = true;
    cgi_list_del(&l->active, job);
    if (job->turn)
        l->running--;
    cgi_list_add(&l->dead, job);
}

static void cgi_loop_bury(struct cgi_loop *l)
{
    struct cgi_job *j;
    while ((j = l->dead.head)) {
        cgi_list_del(&l->dead, j);
        free(j);
    }
}

/* The jobs handed over since the last look join the queue for a turn. */
static void cgi_loop_take(struct cgi_loop *l)
{
    uint64_t n;
    if (read(l->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_msg(LOG_ERROR, "cgi: read(eventfd): %s", strerror(errno));
    pthread_mutex_lock(&l->lock);
    struct cgi_job *job = l->inbox, *fifo = NULL;
    l->inbox = NULL;
    l->woken = false;
    pthread_mutex_unlock(&l->lock);
    while (job) { /* reverse: the first pushed first */
        struct cgi_job *next = job->next;
        job->next = fifo;
        fifo = job;
        job = next;
    }
    while (fifo) {
        struct cgi_job *next = fifo->next;
        cgi_list_add(&l->waiting, fifo);
        fifo = next;
    }
}

/* Turns for the waiting jobs, in order; 503 for those past the deadline. */
static void cgi_loop_turns(struct cgi_loop *l, uint64_t now)
{
    while (l->waiting.head && l->running < l->conf->max_scripts) {
        struct cgi_job *job = l->waiting.head;
        cgi_list_del(&l->waiting, job);
        cgi_list_add(&l->active, job);
        job->turn = true;
        l->running++;
        cgi_job_start(job);
        cgi_loop_settle(l, job);
    }
    while (l->waiting.head && (now >= l->waiting.head->until || l->cut_done)) {
        struct cgi_job *job = l->waiting.head;
        cgi_list_del(&l->waiting, job);
        cgi_list_add(&l->active, job);
        cgi_job_refuse(job);
        cgi_loop_settle(l, job);
    }
}

/* What is due now, and the milliseconds until the next deadline (-1). */
static int cgi_loop_timers(struct cgi_loop *l)
{
    uint64_t now = clock_now_ms();
    if (l->cut_at && !l->cut_done && now >= l->cut_at) {
        l->cut_done = true;
        for (struct cgi_job *j = l->active.head, *next; j; j = next) {
            next = j->next;
            cgi_job_cut(j, "the worker is stopping (--graceful-timeout)");
            cgi_loop_settle(l, j);
        }
    }
    for (struct cgi_job *j = l->active.head, *next; j; j = next) {
        next = j->next;
        if (cgi_job_next(j) <= now) {
            cgi_job_tick(j, now);
            cgi_loop_settle(l, j);
        }
    }
    cgi_loop_turns(l, now);
    uint64_t until = UINT64_MAX;
    for (struct cgi_job *j = l->active.head; j; j = j->next) {
        uint64_t t = cgi_job_next(j);
        until = t < until ? t : until;
    }
    if (l->waiting.head && l->waiting.head->until < until)
        until = l->waiting.head->until;
    if (l->cut_at && !l->cut_done && l->cut_at < until)
        until = l->cut_at;
    if (until == UINT64_MAX)
        return -1;
    return until <= now ? 0 : until - now > 60000 ? 60000 : (int)(until - now);
}

static void *cgi_loop_main(void *arg)
{
    struct cgi_loop *l = arg;
    struct epoll_event ev[CGI_LOOP_EVENTS];
    while (!atomic_load(&l->quit)) {
        if (atomic_load(&l->stopping) && !l->cut_at) {
            uint64_t g = l->graceful_ms;
            l->cut_at =
                clock_now_ms() + (g > CGI_LOOP_STOP_MARGIN_MS ? g - CGI_LOOP_STOP_MARGIN_MS : 0);
        }
        int ms = cgi_loop_timers(l);
        cgi_loop_bury(l);
        int n = epoll_wait(l->epfd, ev, CGI_LOOP_EVENTS, ms);
        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "cgi: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct cgi_watch *w = ev[i].data.ptr;
            if (!w) {
                cgi_loop_take(l);
                continue;
            }
            struct cgi_job *job = w->job;
            if (job->phase == CGI_JOB_DONE)
                continue; /* ended earlier in this batch */
            cgi_job_event(job, w->kind, ev[i].events);
            cgi_loop_settle(l, job);
        }
        cgi_loop_turns(l, clock_now_ms());
        cgi_loop_bury(l);
    }
    return NULL;
}

int cgi_loop_epfd(const struct cgi_loop *l)
{
    return l->epfd;
}

struct cgi_loop *cgi_loop_new(const struct cgi_conf *conf, unsigned graceful_timeout_ms)
{
    struct cgi_loop *l = calloc(1, sizeof(*l));
    if (!l) {
        log_msg(LOG_ERROR, "cgi: out of memory");
        return NULL;
    }
    l->conf = conf;
    l->graceful_ms = graceful_timeout_ms;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (l->epfd < 0 || l->efd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &ev) < 0) {
        log_msg(LOG_ERROR, "cgi: the loop's epoll: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&l->lock, NULL);
    int rc = pthread_create(&l->thread, NULL, cgi_loop_main, l);
    if (rc != 0) {
        log_msg(LOG_ERROR, "cgi: the loop thread: %s", strerror(rc));
        pthread_mutex_destroy(&l->lock);
        goto fail;
    }
    return l;
fail:
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->efd >= 0)
        close(l->efd);
    free(l);
    return NULL;
}

void cgi_loop_push(struct cgi_loop *l, struct cgi_job *job)
{
    pthread_mutex_lock(&l->lock);
    job->next = l->inbox;
    l->inbox = job;
    bool wake = !l->woken;
    l->woken = true;
    pthread_mutex_unlock(&l->lock);
    if (wake)
        cgi_loop_wake(l);
}

void cgi_loop_stopping(struct cgi_loop *l)
{
    if (!atomic_exchange(&l->stopping, true))
        cgi_loop_wake(l);
}

void cgi_loop_free(struct cgi_loop *l)
{
    if (!l)
        return;
    atomic_store(&l->quit, true);
    if (pthread_equal(pthread_self(), l->thread)) {
        /* The process exits from the loop's own thread (a resume that
         * ended the worker): the scripts die with their group, nothing
         * else is let go. */
        for (struct cgi_job *j = l->active.head; j; j = j->next)
            if (j->phase == CGI_JOB_RUNNING)
                cgi_job_kill(j);
        return;
    }
    cgi_loop_wake(l);
    pthread_join(l->thread, NULL);
    /* What is left is killed; the process exits without it. */
    cgi_loop_take(l);
    struct cgi_job *j;
    while ((j = l->active.head)) {
        cgi_job_kill(j);
        cgi_list_del(&l->active, j);
        free(j);
    }
    while ((j = l->waiting.head)) {
        cgi_list_del(&l->waiting, j);
        free(j);
    }
    cgi_loop_bury(l);
    close(l->epfd);
    close(l->efd);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
