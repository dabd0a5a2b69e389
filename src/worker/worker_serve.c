/*
 * worker_serve.c — the life of a connection while a thread owns it: decode
 * the next request's head, run the app (or the status page) for it, finish
 * the response, drain an unread body, and then wait for the next request
 * (park) or close. Housekeeping and the graceful stop's say on a kept
 * connection are worker_stop.c's.
 */
#include "worker_state.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

/* Copy SRC (NULL = "") into DST of CAP bytes, cut if longer. */
static void worker_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static void worker_thread_mark(struct worker_thread *t, const struct corral_request *req)
{
    struct sb_thread *sb = t->sb;
    worker_copy(sb->method, sizeof(sb->method), req->method);
    worker_copy(sb->uri, sizeof(sb->uri), req->uri);
    atomic_store_explicit(&sb->request_start_us, req->start_us, memory_order_relaxed);
    atomic_store_explicit(&sb->state, SB_THREAD_BUSY, memory_order_relaxed);
}

/* Run the app for the request whose params are complete on the slot's
 * connection. Returns 0 when the connection can serve another request. */
static int worker_run_request(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    struct conn *c = &s->conn;
    struct corral_request *req = &s->req;
    request_begin(req, c);
    worker_thread_mark(t, req);
    int rc = status_page_wanted(w->cfg, req) ? status_page_serve(&w->status, req)
                                             : w->ctx->app->ops->handle(w->ctx->app, req);
    int ok = request_finish(req, rc);
    /* Only this thread writes its sub-slot: a load and a store, no locked
     * read-modify-write. */
    uint64_t end_us = clock_now_us();
    atomic_store_explicit(&t->sb->busy_us,
                          atomic_load_explicit(&t->sb->busy_us, memory_order_relaxed) +
                              (end_us - req->start_us),
                          memory_order_relaxed);
    atomic_store_explicit(&w->last_request_ms, end_us / 1000, memory_order_relaxed);
    atomic_store_explicit(&t->sb->requests,
                          atomic_load_explicit(&t->sb->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&w->sb->requests, 1, memory_order_relaxed);
    /* The slot's counter adds up every worker that held the slot: this
     * process's own count decides its recycling. */
    uint64_t served = atomic_fetch_add_explicit(&w->served, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&t->sb->state, SB_THREAD_IDLE, memory_order_relaxed);
    if (w->max_requests || w->statm_fd >= 0)
        worker_check_recycle(t, served);
    if (ok < 0 || c->aborted)
        return -1;
    if (!c->body_done) {
        bool keep = c->codec->keep_conn(c->codec_state);
        if (conn_body_drain(c, keep ? UINT64_MAX : DRAIN_LIMIT) < 0)
            return -1;
    }
    return 0;
}

void worker_serve(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    struct conn *c = &s->conn;
    atomic_fetch_add_explicit(&w->sb->busy, 1, memory_order_relaxed);
    for (;;) {
        struct proto_event ev;
        int end;
        enum proto_result r = conn_next(c, &ev, 0, &end);
        if (r == PROTO_NEED_MORE) {
            if (end == -EAGAIN) {
                worker_slot_park(w, s);
                break;
            }
            /* Told to close, nginx does so without reading the goodbye:
             * unread bytes make a unix socket's close a reset. */
            if (c->bye_sent && !c->in_request && (end == 0 || end == -ECONNRESET))
                atomic_fetch_add_explicit(&w->drain_peer, 1, memory_order_relaxed);
            else if (c->in_request || end < 0)
                log_msg(LOG_ERROR, "%s: peer %s: %s in the middle of a request", c->listener->name,
                        c->peer, end == 0 ? "connection closed" : strerror(-end));
            worker_slot_close(w, s);
            break;
        }
        if (r == PROTO_ERROR) {
            conn_protocol_error(c, ev.reason);
            atomic_fetch_add_explicit(&w->sb->errors, 1, memory_order_relaxed);
            worker_slot_close(w, s);
            break;
        }
        if (r == PROTO_ABORT) {
            /* Aborted before the app ran: end the request, nothing else,
             * without waiting (queued behind any management reply). */
            uint8_t end_rec[PROTO_END_MAX];
            size_t el = c->codec->end(c->codec_state, end_rec, 0);
            if (conn_send_reply(c, end_rec, el) < 0 || !c->codec->keep_conn(c->codec_state)) {
                worker_slot_close(w, s);
                break;
            }
        } else if (r == PROTO_PARAMS_DONE) {
            if (worker_run_request(t, s) < 0 || !c->codec->keep_conn(c->codec_state)) {
                worker_slot_close(w, s);
                break;
            }
        } else {
            /* Body events cannot come before the params: a codec bug. */
            conn_protocol_error(c, "request body before the params");
            worker_slot_close(w, s);
            break;
        }
        /* A stopping worker does not close a kept connection here: the front
         * end may already be sending the next request on it (worker_stop.c). */
        conn_note_kept(c);
        if (atomic_load(&w->stopping) && !worker_stop_keep(w, c)) {
            worker_slot_close(w, s);
            break;
        }
        /* Kept connection: the next request may already be buffered; if
         * not, wait in epoll rather than try a read that would only say
         * EAGAIN (a front end sends the next request much later). */
        conn_next_request(c);
        if (!conn_has_input(c)) {
            worker_slot_park(w, s);
            break;
        }
    }
    atomic_fetch_sub_explicit(&w->sb->busy, 1, memory_order_relaxed);
}
