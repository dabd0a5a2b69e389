/*
 * conn.h — one connection from the front end, and the I/O on it.
 *
 * A connection owns its read buffer, its codec state, its params table, the
 * request body stream and the goodbye bookkeeping of a stopping worker; all
 * are reused for the next request on a kept FastCGI connection. The request
 * model (request.h) sits above it and reaches it through corral_request's
 * conn pointer; nothing here knows the request. Only conn.c writes the fields
 * of struct conn: other files read them and change them through the
 * functions below. Exactly one thread owns a connection at a time (the
 * worker's slot ownership: src/worker/worker_slots.c), so nothing here is
 * locked.
 *
 * I/O inside a request blocks the serving thread, bounded by the I/O timeout:
 * the socket is non-blocking and a would-block waits in poll(2). Replies the
 * codec makes before a request runs (FastCGI management answers) never wait:
 * what the socket does not take is queued in the connection (at most
 * CONN_OUT_CAP bytes), nothing more is decoded until the socket took it
 * (back-pressure), the worker parks the connection waiting to write
 * (conn_wants_write), and the queue goes out before any other byte. A peer
 * that never reads is closed by the idle timeout (worker_stop.c).
 *
 * Two deadlines bound a request as a whole (conn_set_deadlines): the time a
 * request waits in poll(2) for its body, and the time its response waits
 * for the front end to take bytes, are each added up, and may not pass a
 * base time plus one second per min_rate bytes received (sent) so far. The
 * sum is kept only around the waits themselves (a poll that returns early
 * is charged what it took), so a request that never waits pays nothing, an
 * app that streams at its own pace is never cut, and a peer that trickles
 * is. A wait that would pass the deadline returns -ETIME instead of the I/O
 * timeout's -ETIMEDOUT.
 */
#ifndef CORRAL_CONN_H
#define CORRAL_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "os/listen.h"
#include "protocols/protocol.h"

#define CONN_BUF_SIZE 16384
/* Queued reply bytes one connection may hold (the back-pressure keeps it to
 * one reply; a reply that would pass it closes the connection). */
#define CONN_OUT_CAP 16384

struct conn {
    int fd;
    const struct listener *listener;
    const struct proto_codec *codec;
    void *codec_state; /* codec->state_size bytes */
    struct params params;
    struct proto_limits limits; /* the codec's, copied at conn_init */
    uint8_t *buf;               /* read buffer; unconsumed bytes in [start, end) */
    size_t buf_start, buf_end;
    unsigned io_timeout_ms;
    char peer[64];        /* "unix" or "127.0.0.1:5555" */
    bool trusted;         /* the peer is in the listener's --trusted-proxies */
    bool in_request;      /* bytes of a request were consumed */
    bool drained;         /* the last read took all the socket held (it was
                             short, or would have blocked): bytes that come
                             later wake epoll anew (src/worker/worker_slots.c) */
    bool body_done;       /* PROTO_BODY_END seen */
    bool aborted;         /* PROTO_ABORT seen */
    bool broken;          /* must be closed after this request */
    bool replied;         /* the codec's error reply ended this request on
                             the wire, or the peer stopped reading its
                             replies: nothing more goes out for it */
    bool kept;            /* the front end keeps it between requests
                             (FastCGI keep-conn): set after a response */
    bool bye_sent;        /* a stopping worker asked the front end to
                             close it (see worker_stop.c) */
    bool bye_in_response; /* ... in the write that ended the response */
    uint8_t byes_ignored; /* requests the front end sent after a goodbye */
    /* While *bye_on_end is nonzero (the worker is stopping), a response on a
     * kept connection ends with the codec's goodbye. NULL: never. */
    const _Atomic int *bye_on_end;
    const uint8_t *pending; /* body bytes decoded but not yet read */
    size_t pending_len;
    /* Reply bytes the socket did not take yet, in out[out_start, out_start +
     * out_len): allocated (CONN_OUT_CAP) when first needed, freed at
     * conn_close. */
    uint8_t *out;
    size_t out_start, out_len;
    /* The deadlines of a request (see the top of this file); 0 = none. */
    unsigned body_timeout_ms, send_timeout_ms;
    unsigned min_rate;       /* bytes per second that buy one more second */
    uint64_t body_in;        /* body bytes of this request decoded so far */
    uint64_t body_waited_us; /* ... and the time spent waiting for them */
    uint64_t sent;           /* bytes written for this request */
    uint64_t send_waited_us; /* ... and the time spent waiting to write */
    bool discarding;         /* the response is out, the body the app did not
                                read is read and thrown away as it arrives
                                (conn_body_discard) */
    uint64_t discarded;      /* body bytes thrown away so */
    /* --post-buffering: the body read into memory before the app runs, while
     * the connection waits in epoll without a thread; served to the app
     * first (conn_body_next). Allocated when first needed, kept for the
     * next request, freed at conn_fini. */
    uint8_t *pre;
    size_t pre_len, pre_cap;
    bool prebuffering; /* parked until the body is in memory */
    bool pre_served;   /* the app was given pre[0, pre_len) */
    /* Writes never wait (conn_set_nowait): what the socket does not take
     * is queued, as replies are; the owner awaits writability itself. */
    bool nowait;
};

/* ---- life ---- */

/* Make C a connection that holds nothing (no socket: fd -1, no buffers),
 * what conn_init expects of memory it has not used before. */
void conn_clear(struct conn *c);
/* Set up for a fresh accepted socket FD; LIM is copied (the codec keeps a
 * pointer to the copy). Returns 0 or -ENOMEM; either way c->fd is FD, so
 * conn_close closes it. */
int conn_init(struct conn *c, int fd, const struct listener *l, const struct proto_limits *lim,
              unsigned io_timeout_ms);
/* The peer's name ("unix" or address:port) from the address accept gave. */
void conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len);
/* The request deadlines of this connection (see the top of this file):
 * BODY_MS and SEND_MS base times (0 = none), MIN_RATE bytes per second that
 * extend each by a second (0 = no extension). conn_init sets none. */
void conn_set_deadlines(struct conn *c, unsigned body_ms, unsigned send_ms, unsigned min_rate);
/* The body deadline of the request now: body_timeout_ms plus a second per
 * min_rate bytes received; UINT64_MAX when there is none. */
uint64_t conn_body_budget_ms(const struct conn *c);
/* The send deadline of the response now, the same way over the bytes sent. */
uint64_t conn_send_budget_ms(const struct conn *c);
/* The method and the URI of the request as far as its params have come
 * ("-" when not known yet), for log lines. */
void conn_request_name(const struct conn *c, const char **method, const char **uri);
/* Let *FLAG (nonzero while the worker stops) add the goodbye to the end of
 * a kept response (conn_response_end). */
void conn_set_bye_on_end(struct conn *c, const _Atomic int *flag);
/* Close the socket (which also takes it out of any epoll set); c->fd is -1
 * after it. The read buffer stays for the next conn_init; queued replies
 * are dropped and their queue freed. */
void conn_close(struct conn *c);
/* Release the buffers; the fd is closed by the caller (conn_close). */
void conn_fini(struct conn *c);

/* ---- reading ---- */

/*
 * Read once into the buffer (compacting it first). TIMEOUT_MS 0 = do not
 * wait. Queued replies go first (waiting for the socket only with a
 * TIMEOUT_MS): while they wait it returns -EAGAIN; once they are out and
 * bytes are buffered it returns their count without reading. Returns bytes
 * to decode (> 0), 0 at end of stream, -EAGAIN when nothing is there (or
 * replies wait) and TIMEOUT_MS is 0, -ETIMEDOUT, or another negative errno.
 */
ssize_t conn_fill(struct conn *c, unsigned timeout_ms);

/*
 * Run the codec over the buffered bytes and return its event (the consumed
 * bytes are dropped from the buffer). PROTO_NEED_MORE means the buffer is
 * empty, or replies wait for the socket (conn_wants_write): nothing is
 * decoded then, conn_fill sends them. PROTO_REPLY bytes are sent here
 * without waiting, what the socket does not take queued (then the next
 * event is returned); queued bytes are pushed again, without waiting, on
 * each call. A failed send (or a reply that would pass CONN_OUT_CAP) ends
 * the connection: one log line (at most one a second for each cause),
 * c->replied and c->broken set, and PROTO_ERROR with a NULL reason.
 */
enum proto_result conn_decode(struct conn *c, struct proto_event *ev);

/*
 * The next codec event (as conn_decode), reading more bytes (conn_fill with
 * TIMEOUT_MS, 0 = do not wait) whenever the buffer runs dry. PROTO_NEED_MORE
 * means no event came: *END says why, -EAGAIN (nothing there, or replies
 * wait for the socket: conn_wants_write, and TIMEOUT_MS is 0), 0 (the front
 * end closed the connection), -ETIMEDOUT or another negative errno. *END is
 * untouched for any other result.
 */
static inline enum proto_result conn_next(struct conn *c, struct proto_event *ev,
                                          unsigned timeout_ms, int *end)
{
    /* Inline: the worker runs it for every request head, the body reader
     * for every piece. */
    for (;;) {
        enum proto_result r = conn_decode(c, ev);
        if (r != PROTO_NEED_MORE)
            return r;
        ssize_t n = conn_fill(c, timeout_ms);
        if (n <= 0) {
            *end = (int)n;
            return PROTO_NEED_MORE;
        }
    }
}

/* Whether bytes are buffered (the next request may be here already). */
static inline bool conn_has_input(const struct conn *c)
{
    return c->buf_start != c->buf_end;
}

/*
 * For a request whose body is complete and whose response is being made
 * away from the worker (a detached request, apps/app.h): whether the front
 * end went away, never waiting. What the socket holds is read into the
 * buffer, where it stays for the next request. Returns 1 when the peer
 * closed the connection or failed, or gave the request up (the codec's
 * gave_up: FastCGI ABORT_REQUEST; c->aborted set, logged); 0 when not that
 * we know; -1 when the buffer is full and nothing more can be learnt until
 * the request ends.
 */
int conn_peer_gone(struct conn *c);

/* Whether bytes wait on the socket (one recv MSG_PEEK, no wait). */
bool conn_input_waiting(const struct conn *c);

/* Whether queued replies wait for the socket to take them: a parked
 * connection then waits to be writable, not readable (worker_slots.c). */
static inline bool conn_wants_write(const struct conn *c)
{
    return c->out_len != 0;
}

/* ---- the request body ---- */

/*
 * The next piece of the request body, in place (no copy), into *DATA and
 * *LEN; it stays the next piece until conn_body_consume takes it. Reads
 * with the I/O timeout, within the body deadline. Returns 1 with a piece, 0
 * at the end of the body, -1 on error (logged once, naming the request and,
 * for a deadline, the limit; the connection is marked broken, or aborted).
 * With conn_set_nowait it never waits: 2 when no piece is there yet (the
 * caller waits for the socket to be readable, or writable while
 * conn_wants_write, and bounds that wait itself).
 */
int conn_body_next(struct conn *c, const uint8_t **data, size_t *len);
/* conn_set_nowait: the caller waits for body bytes itself (2 from
 * conn_body_next). It charges the body deadline with each such wait,
 * WAITED_US, and learns how long it may wait next: the milliseconds left
 * (UINT64_MAX: no deadline), or 0: the body is late (logged, as
 * conn_body_next does; the connection is marked broken). */
uint64_t conn_body_wait(struct conn *c, uint64_t waited_us);
/*
 * --post-buffering: read the request body into memory, never waiting, so
 * that the app runs once it is all there (a slow body costs a parked
 * connection, not a thread). Call after the params, and again each time
 * the connection is readable. Returns 0 when the app can run: the whole
 * body is in memory, or it is bigger than CAP (what was read is served
 * first (up to CAP plus one decoded piece), the rest streams as without
 * post-buffering); 1 when more is due
 * (c->prebuffering is set: park the connection, the body deadline runs);
 * -1 when the connection must be closed (logged, as conn_body_next does).
 */
int conn_body_prebuffer(struct conn *c, size_t cap);

/* A post-buffered body (conn_body_prebuffer) is past its deadline after
 * WAITED_MS: the line that says so, one a second at most. */
void conn_prebuffer_late(const struct conn *c, uint64_t waited_ms);

/* N bytes (<= the piece's length) of the piece conn_body_next gave are used. */
void conn_body_consume(struct conn *c, size_t n);
/*
 * After the response: read and drop the body the app did not read, so the
 * connection can be reused (or closed without a reset), without ever
 * waiting: only the bytes already there, at most CONN_DISCARD_BATCH per
 * call. Returns 0 (the body is complete), 1 (more is due: c->discarding is
 * set; call again when the socket is readable, while the caller keeps the
 * body deadline from the first 1 or 2: conn_discard_late), 2 (as 1, but it
 * stopped after CONN_DISCARD_BATCH bytes: what is left may be in the
 * buffer already, which no readable socket announces, so call again soon
 * without waiting for the socket), or -1 when the
 * connection must be closed: an error, the front end closed it, or more
 * than MAX_BYTES thrown away in all (logged at most once a second per cause,
 * never as a failed request: the response was complete).
 */
int conn_body_discard(struct conn *c, uint64_t max_bytes);
#define CONN_DISCARD_BATCH (1u << 20)
/* The body being discarded did not arrive within WAITED_MS (past the body
 * deadline), or STOPPING: the worker stops and waits no longer for it. Log
 * it (at most once a second per cause); the caller closes. */
void conn_discard_late(const struct conn *c, uint64_t waited_ms, bool stopping);

/* ---- writing ---- */

/* Write every byte of IOV (which is modified), queued replies first, waiting
 * up to the I/O timeout whenever the socket is full, within the send
 * deadline. Returns 0 or a negative errno (-ETIME: the send deadline
 * passed). */
int conn_writev(struct conn *c, struct iovec *iov, int iovcnt);

/* Send LEN bytes of a reply made before a request runs (a request ended
 * before the app ran) at once, behind any queued reply, and queue what the
 * socket does not take: never waits. Returns 0, -ENOBUFS when the queue
 * would pass CONN_OUT_CAP (the peer does not read), or another negative
 * errno. */
int conn_send_reply(struct conn *c, const void *data, size_t len);

/*
 * Writes of a request whose owner runs its own event loop (a detached
 * request, src/apps/app.h): while NOWAIT is set conn_writev never waits
 * (nor does conn_body_next: it returns 2);
 * what the socket does not take is queued (as conn_send_reply does, at most
 * CONN_OUT_CAP bytes in all, else -ENOBUFS), and the owner waits for the
 * socket to be writable, then conn_push_queued, before it writes more
 * (conn_wants_write). The queue must be empty before NOWAIT is cleared.
 */
void conn_set_nowait(struct conn *c, bool nowait);
/* Send queued bytes without waiting. Returns 0 (some may be left:
 * conn_wants_write) or a negative errno. */
int conn_push_queued(struct conn *c);

/* Wait up to the I/O timeout until the socket takes more bytes, within the
 * send deadline. Returns 0 or a negative errno (-ETIMEDOUT, -ETIME). */
int conn_wait_writable(struct conn *c);
/* N bytes went out by another way than conn_writev (sendfile): they extend
 * the send deadline. */
void conn_count_sent(struct conn *c, size_t n);

/*
 * The end of the response into OUT (PROTO_END_MAX bytes); returns its
 * length. While the worker stops (conn_set_bye_on_end), a kept connection's
 * end carries the codec's goodbye too, noted in c->bye_in_response: the
 * front end reads both in one write (worker_stop.c).
 */
size_t conn_response_end(struct conn *c, uint8_t *out);

/* Log a protocol error naming the peer, the listener and the reason (none
 * when REASON is NULL), send the codec's error reply if any (unless
 * c->replied; behind queued replies it does not wait), and mark the
 * connection broken. */
void conn_protocol_error(struct conn *c, const char *reason);

/* The connection must be closed after this request. */
void conn_mark_broken(struct conn *c);

/* The idle timeout closes C while replies wait (conn_wants_write): log it,
 * naming the peer, at most one line a second (with the replies that fail
 * for being over CONN_OUT_CAP). */
void conn_note_unread_close(const struct conn *c, uint64_t idle_ms);

/* ---- between requests on a kept connection ---- */

/* A response went out and the front end keeps the connection. */
void conn_note_kept(struct conn *c);
/* Ready the codec, the params and the request flags for the next request;
 * buffered bytes stay. */
void conn_next_request(struct conn *c);

/* ---- the goodbye of a stopping worker (see worker_stop.c) ---- */

/*
 * Send the codec's goodbye at once, without waiting. Returns 1 (sent), 0
 * (the protocol has none), -EAGAIN when the socket is full or replies are
 * queued (nothing sent: try again later), or another negative errno: the connection is broken.
 * c->bye_sent is set on 1 and 0.
 */
int conn_send_goodbye(struct conn *c);
/*
 * After a response on a kept connection: c->bye_sent becomes whether this
 * response carried the goodbye. Returns true when a goodbye sent before
 * this request was passed over for the second time or more: the front end
 * ignores goodbyes.
 */
bool conn_note_response_bye(struct conn *c);

#endif
