/*
 * worker_serve.c — the life of a connection while a thread owns it: decode
 * the next request's head, run the app (or status_page.c's status page or
 * health answer) for it, with --post-buffering after its body is in
 * memory, finish the response, discard an unread body without waiting, and
 * then wait for the next request (park) or close. An app that keeps a
 * request (apps/app.h's run_detached: an event loop of its own) gives it
 * back with worker_resume, from its own thread. Housekeeping (the
 * deadlines of parked connections among it) and the graceful stop's say on
 * a kept connection are worker_stop.c's.
 */
#include "worker_state.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
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

/* What a connection does after a step. WORKER_DETACHED: the app keeps it
 * (app.h's run_detached) until worker_resume. */
enum worker_next { WORKER_NEXT, WORKER_PARK, WORKER_CLOSE, WORKER_DETACHED };

/* A request is over: count it (the scoreboard, recycling). */
static void worker_count_request(struct worker *w, uint64_t end_us)
{
    atomic_store_explicit(&w->last_request_ms, end_us / 1000, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->sb->requests, 1, memory_order_relaxed);
    /* The slot's counter adds up every worker that held the slot: this
     * process's own count decides its recycling. */
    uint64_t served = atomic_fetch_add_explicit(&w->served, 1, memory_order_relaxed) + 1;
    if (w->max_requests || w->statm_fd >= 0)
        worker_check_recycle(w, served);
}

/* Run the app for the request whose params are complete on the slot's
 * connection. Returns 0 when the response is complete and the connection
 * may go on (its body may still be due), -1 when it must be closed. */
static int worker_run_request(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    struct conn *c = &s->conn;
    struct corral_request *req = &s->req;
    request_begin(req, c);
    worker_thread_mark(t, req);
    enum status_page_kind page = status_page_wanted(w->cfg, req);
    int rc = page == STATUS_PAGE_HEALTH   ? status_page_health(&w->status, w->sb, req)
             : page == STATUS_PAGE_STATUS ? status_page_serve(&w->status, req)
                                          : w->ctx->app->ops->handle(w->ctx->app, req);
    bool detached = rc == APP_DETACHED && page == STATUS_PAGE_NONE;
    int ok = detached ? 0 : request_finish(req, rc);
    /* Only this thread writes its sub-slot: a load and a store, no locked
     * read-modify-write. */
    uint64_t end_us = clock_now_us();
    atomic_store_explicit(&t->sb->busy_us,
                          atomic_load_explicit(&t->sb->busy_us, memory_order_relaxed) +
                              (end_us - req->start_us),
                          memory_order_relaxed);
    atomic_store_explicit(&t->sb->state, SB_THREAD_IDLE, memory_order_relaxed);
    if (detached)
        return 1; /* counted when it comes back (worker_resume) */
    atomic_store_explicit(&t->sb->requests,
                          atomic_load_explicit(&t->sb->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    worker_count_request(w, end_us);
    return ok < 0 || c->aborted ? -1 : 0;
}

/* A request is over on the wire: close, or keep the connection for the
 * next request (served now if it is buffered, else parked). */
static enum worker_next worker_keep(struct worker *w, struct conn *c)
{
    if (!c->codec->keep_conn(c->codec_state))
        return WORKER_CLOSE;
    /* A stopping worker does not close a kept connection here: the front
     * end may already be sending the next request on it (worker_stop.c). */
    conn_note_kept(c);
    if (atomic_load(&w->stopping) && !worker_stop_keep(w, c))
        return WORKER_CLOSE;
    /* The next request may already be buffered; if not, wait in epoll
     * rather than try a read that would only say EAGAIN (a front end sends
     * the next request much later). */
    conn_next_request(c);
    return conn_has_input(c) ? WORKER_NEXT : WORKER_PARK;
}

/* After a body step that never waits (RC: -1 close, 1 more is due, 0 the
 * body is in): close, park with the body deadline running from the first
 * park (the tick's scan, worker_stop.c), or go on (WORKER_NEXT). */
static enum worker_next worker_body_wait(struct slot *s, int rc)
{
    if (rc < 0)
        return WORKER_CLOSE;
    if (rc > 0) {
        if (!atomic_load_explicit(&s->since_ms, memory_order_relaxed))
            atomic_store_explicit(&s->since_ms, clock_now_ms(), memory_order_relaxed);
        return WORKER_PARK;
    }
    atomic_store_explicit(&s->since_ms, 0, memory_order_relaxed);
    return WORKER_NEXT;
}

/*
 * The response is complete: throw away the body the app did not read, what
 * is there now and never waiting for more (conn_body_discard). If more is
 * due, the connection is parked (kicked when a batch ended the step, as
 * what is left may be buffered) and discards as the body arrives, within
 * the body deadline from now (the tick's scan, worker_stop.c): a front end
 * that sends the whole body, as nginx does before it reads the response,
 * keeps its connection, and a front end that never sends the rest (a
 * FastCGI request without its STDIN) holds no thread, only a slot until the
 * deadline. A connection that is not kept is closed once the body is in,
 * so the close is not a reset that could cut the response short.
 */
static enum worker_next worker_discard(struct worker *w, struct slot *s)
{
    struct conn *c = &s->conn;
    if (!c->body_done) {
        bool keep = c->codec->keep_conn(c->codec_state);
        int rc = conn_body_discard(c, keep ? UINT64_MAX : DRAIN_LIMIT);
        /* Stopped after a batch: the rest may sit in the buffer with the
         * socket empty, and no byte the peer sends later is promised (the
         * next request may be buffered too). The park has epoll report the
         * slot at once (kick), so other connections go first, then a
         * serving thread goes on. */
        if (rc == 2)
            s->kick = true;
        enum worker_next next = worker_body_wait(s, rc);
        if (next != WORKER_NEXT)
            return next;
    }
    return worker_keep(w, c);
}

/*
 * The params are complete: run the request. With --post-buffering the body
 * is read into memory first, never waiting: while more of it is due the
 * connection is parked (no thread) and this runs again when it is
 * readable, within the body deadline (the tick's scan, worker_stop.c).
 */
static enum worker_next worker_start_request(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    struct conn *c = &s->conn;
    const struct config *cfg = w->cfg;
    s->fresh = false;
    if (!c->prebuffering)
        /* Stores only: the config of this worker, which a reload replaces
         * together with the worker. */
        conn_set_deadlines(c, cfg->body_timeout_ms, cfg->send_timeout_ms, cfg->min_rate);
    if (cfg->post_buffering && !c->body_done) {
        enum worker_next next = worker_body_wait(s, conn_body_prebuffer(c, cfg->post_buffering));
        if (next != WORKER_NEXT)
            return next;
    }
    int rc = worker_run_request(t, s);
    if (rc != 0)
        return rc < 0 ? WORKER_CLOSE : WORKER_DETACHED;
    return worker_discard(w, s);
}

/* Decode the next event of the slot's connection and act on it. */
static enum worker_next worker_step(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    struct conn *c = &s->conn;
    struct proto_event ev;
    int end;
    enum proto_result r = conn_next(c, &ev, 0, &end);
    switch (r) {
    case PROTO_NEED_MORE:
        if (end == -EAGAIN) {
            /* Part of a head is here: the header deadline runs from its
             * first byte (worker_stop.c checks it while parked). */
            if ((c->in_request || conn_has_input(c)) &&
                !atomic_load_explicit(&s->since_ms, memory_order_relaxed))
                atomic_store_explicit(&s->since_ms, clock_now_ms(), memory_order_relaxed);
            return WORKER_PARK;
        }
        /* Told to close, nginx does so without reading the goodbye:
         * unread bytes make a unix socket's close a reset. */
        if (c->bye_sent && !c->in_request && (end == 0 || end == -ECONNRESET))
            atomic_fetch_add_explicit(&w->drain_peer, 1, memory_order_relaxed);
        else if (c->in_request || end < 0)
            log_msg(LOG_ERROR, "%s: peer %s: %s in the middle of a request", c->listener->name,
                    c->peer, end == 0 ? "connection closed" : strerror(-end));
        return WORKER_CLOSE;
    case PROTO_ERROR:
        conn_protocol_error(c, ev.reason);
        atomic_fetch_add_explicit(&w->sb->errors, 1, memory_order_relaxed);
        return WORKER_CLOSE;
    case PROTO_ABORT: {
        /* Aborted before the app ran: end the request, nothing else,
         * without waiting (queued behind any management reply). */
        uint8_t end_rec[PROTO_END_MAX];
        size_t el = c->codec->end(c->codec_state, end_rec, 0);
        atomic_store_explicit(&s->since_ms, 0, memory_order_relaxed);
        if (conn_send_reply(c, end_rec, el) < 0)
            return WORKER_CLOSE;
        return worker_keep(w, c);
    }
    case PROTO_PARAMS_DONE:
        atomic_store_explicit(&s->since_ms, 0, memory_order_relaxed);
        return worker_start_request(t, s);
    default:
        /* Body events cannot come before the params: a codec bug. */
        conn_protocol_error(c, "request body before the params");
        return WORKER_CLOSE;
    }
}

void worker_serve(struct worker_thread *t, struct slot *s)
{
    struct worker *w = t->w;
    atomic_fetch_add_explicit(&w->sb->busy, 1, memory_order_relaxed);
    if (s->fresh_parked) {
        s->fresh_parked = false;
        atomic_fetch_sub_explicit(&w->sb->fresh, 1, memory_order_relaxed);
    }
    /* Woken while discarding a body after a response, or post-buffering
     * one before the app runs: more of it came. */
    enum worker_next next = s->conn.discarding     ? worker_discard(w, s)
                            : s->conn.prebuffering ? worker_start_request(t, s)
                                                   : WORKER_NEXT;
    while (next == WORKER_NEXT)
        next = worker_step(t, s);
    /* With threads, parked before its first request: counted from before
     * the park (when another thread may take it at once). This thread is
     * idle before the park or the close, whose balancing counts the threads
     * left (worker_slots.c). One thread serves what it parked in turn: a
     * count of it would only make the worker step back more often. */
    bool fresh_park = !w->single_thread && next == WORKER_PARK && s->fresh;
    if (fresh_park) {
        s->fresh_parked = true;
        atomic_fetch_add_explicit(&w->sb->fresh, 1, memory_order_relaxed);
    }
    atomic_fetch_sub_explicit(&w->sb->busy, 1, memory_order_relaxed);
    if (next == WORKER_PARK)
        worker_slot_park(w, s);
    else if (next == WORKER_CLOSE)
        worker_slot_close(w, s);
    if (fresh_park)
        worker_balance(w);
    if (next == WORKER_DETACHED) {
        /* The slot stays owned (SLOT_BUSY) while the app has it, its entry
         * in the set: edge-triggered (worker_setup, for an app that
         * detaches), so bytes or a hang-up meanwhile mark the slot
         * SLOT_PENDING once and worker_resume's park has epoll report them
         * again. */
        s->hup = false;
        atomic_fetch_add_explicit(&w->sb->detached, 1, memory_order_relaxed);
        /* The last touch of the slot here: the app may give it back at once. */
        w->ctx->app->ops->run_detached(w->ctx->app, &s->req);
    }
}

void worker_resume(void *arg, corral_request *req, bool close)
{
    struct worker *w = arg;
    struct slot *s = (struct slot *)((char *)req - offsetof(struct slot, req));
    struct conn *c = &s->conn;
    conn_set_nowait(c, false);
    atomic_fetch_sub_explicit(&w->sb->detached, 1, memory_order_relaxed);
    worker_count_request(w, clock_now_us());
    enum worker_next next = close || c->aborted ? WORKER_CLOSE : worker_discard(w, s);
    if (next == WORKER_CLOSE) {
        worker_slot_close(w, s);
        return;
    }
    /* WORKER_NEXT: the next request is buffered already; a serving thread
     * takes it (not this one, the app's): the entry is armed to write,
     * which the idle socket is, so epoll reports it at once. */
    if (next == WORKER_NEXT)
        s->kick = true; /* also kept when worker_discard set it */
    worker_slot_park(w, s);
}
