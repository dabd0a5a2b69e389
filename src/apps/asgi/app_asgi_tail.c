/*
 * app_asgi_tail.c — the tail of an ASGI worker: the ends of responses, off
 * the event loop's thread. When many requests are in flight the loop is the
 * worker's bottleneck, and the end of a response is system calls only (its
 * last write, the connection's return to the worker's epoll through
 * app_resume): the loop hands those over (app_asgi_tail_push, one lock and,
 * when the queue was idle, one eventfd write) and goes on with the next
 * task. The worker's serving threads do them (the adapter's work_fd and
 * do_work, app.h): the eventfd is one more descriptor in the worker's epoll,
 * so a thread that is awake for the next requests also ends the last ones,
 * and no thread of its own competes with the loop for a CPU.
 *
 * A job comes with APP_ASGI_TAIL_WRITE (its last body bytes, copied into
 * the job: the loop's send() returned already), later APP_ASGI_TAIL_END
 * (the app returned: request_finish and app_resume), or both at once when
 * its first push was not taken yet. Jobs are done in the order they came,
 * by one thread at a time: the eventfd is written (an edge the worker's
 * epoll reports once, to one thread) only when no app_asgi_tail_work runs,
 * which one sets when it finds the queue empty, its last step (tail_idle);
 * nobody reads the eventfd, an edge needs no reset. Writes never wait
 * (conn_set_nowait): bytes the socket does not take stay queued on the
 * connection, and such a request goes back to the loop (the queue's back
 * list, the eventfd), which awaits writability and gives it back itself.
 * Nothing here takes the GIL or runs app code.
 */
#include "app_asgi_state.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "conn/conn.h"
#include "conn/request.h"
#include "core/log.h"

void app_asgi_tail_push(struct app_asgi_queue *q, struct app_asgi_job *job, unsigned ops, bool ok,
                        bool close)
{
    pthread_mutex_lock(&q->tail_lock);
    job->tail_ops |= ops;
    if (ops & APP_ASGI_TAIL_END) {
        job->ok = ok;
        job->close = close;
    }
    bool wake = false;
    if (!job->tail_queued) {
        job->tail_queued = true;
        job->next = NULL;
        if (q->tail_last)
            q->tail_last->next = job;
        else
            q->tail_head = job;
        q->tail_last = job;
        wake = q->tail_idle;
        q->tail_idle = false;
    }
    pthread_mutex_unlock(&q->tail_lock);
    if (wake)
        app_asgi_signal(q->tail_efd);
}

/* Hand JOB back to the loop: its bytes wait for the socket. */
static void app_asgi_tail_back(struct app_asgi_queue *q, struct app_asgi_job *job)
{
    app_asgi_queue_add(q, &q->back, job);
}

/* OPS and the END's ok and close, taken under the lock. */
static void app_asgi_tail_do(struct app_asgi_queue *q, struct app_asgi_job *job, unsigned ops,
                             bool ok, bool close)
{
    corral_request *req = job->req;
    if (ops & APP_ASGI_TAIL_WRITE) {
        if (corral_write_final(req, job->last, job->last_len) < 0 || req->failed)
            job->write_failed = true;
    }
    if (!(ops & APP_ASGI_TAIL_END))
        return;
    struct conn *c = req->conn;
    close = close || job->write_failed;
    if (request_finish(req, ok ? 0 : -1) < 0 || req->failed)
        close = true;
    if (conn_wants_write(c) && !close) {
        if (conn_push_queued(c) < 0) {
            close = true;
        } else if (conn_wants_write(c)) {
            app_asgi_tail_back(q, job);
            return;
        }
    }
    close = close || conn_wants_write(c);
    free(job);
    app_resume(q->app, req, close);
}

void app_asgi_tail_work(struct app_asgi_queue *q)
{
    pthread_mutex_lock(&q->tail_lock);
    for (;;) {
        struct app_asgi_job *job = q->tail_head;
        if (!job) {
            /* Done: the next push signals the eventfd. */
            q->tail_idle = true;
            break;
        }
        q->tail_head = job->next;
        if (!q->tail_head)
            q->tail_last = NULL;
        unsigned ops = job->tail_ops;
        bool ok = job->ok, close = job->close;
        job->tail_ops = 0;
        job->tail_queued = false;
        pthread_mutex_unlock(&q->tail_lock);
        app_asgi_tail_do(q, job, ops, ok, close);
        pthread_mutex_lock(&q->tail_lock);
    }
    pthread_mutex_unlock(&q->tail_lock);
}

int app_asgi_tail_start(struct app_asgi_queue *q)
{
    pthread_mutex_init(&q->tail_lock, NULL);
    q->tail_idle = true;
    q->tail_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->tail_efd < 0) {
        log_msg(LOG_ERROR, "asgi: eventfd for the ends of responses failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}
