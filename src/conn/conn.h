/*
 * conn.h — one connection from the front end, and the I/O on it.
 *
 * A connection owns its read buffer, its codec state, its params table and
 * the state of the request being served (struct corral_request); all are
 * reused for the next request on a kept FastCGI connection. Exactly one
 * thread owns a connection at a time (epoll one-shot), so nothing here is
 * locked.
 *
 * I/O inside a request blocks the serving thread, bounded by the I/O timeout:
 * the socket is non-blocking and a would-block waits in poll(2).
 */
#ifndef CORRAL_CONN_H
#define CORRAL_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "os/listen.h"
#include "protocols/protocol.h"
#include "request.h"

#define CONN_BUF_SIZE 16384

struct conn {
    int fd;
    const struct listener *listener;
    const struct proto_codec *codec;
    void *codec_state;          /* codec->state_size bytes */
    struct params params;
    struct proto_limits limits; /* the codec's, copied at conn_init */
    uint8_t *buf;               /* read buffer; unconsumed bytes in [start, end) */
    size_t buf_start, buf_end;
    unsigned io_timeout_ms;
    char peer[64];              /* "unix" or "127.0.0.1:5555" */
    bool in_request;            /* bytes of a request were consumed */
    bool body_done;             /* PROTO_BODY_END seen */
    bool aborted;               /* PROTO_ABORT seen */
    bool broken;                /* must be closed after this request */
    bool kept;                  /* the front end keeps it between requests
                                   (FastCGI keep-conn): set after a response */
    bool bye_sent;              /* a stopping worker asked the front end to
                                   close it (see worker_stop.c) */
    bool bye_in_response;       /* ... in the write that ended the response */
    uint8_t byes_ignored;       /* requests the front end sent after a goodbye */
    /* While *bye_on_end is nonzero (the worker is stopping), a response on a
     * kept connection ends with the codec's goodbye. NULL: never. */
    const _Atomic int *bye_on_end;
    const uint8_t *pending;     /* body bytes decoded but not yet read */
    size_t pending_len;
    struct corral_request req;
};

/* Set up for a fresh accepted socket; LIM is copied (the codec keeps a
 * pointer to the copy). Returns 0 or -ENOMEM. */
int conn_init(struct conn *c, int fd, const struct listener *l,
              const struct proto_limits *lim, unsigned io_timeout_ms);
/* Release everything; the fd is closed by the caller. */
void conn_fini(struct conn *c);

/*
 * Read once into the buffer (compacting it first). TIMEOUT_MS 0 = do not
 * wait. Returns bytes read (> 0), 0 at end of stream, -EAGAIN when nothing is
 * there and TIMEOUT_MS is 0, -ETIMEDOUT, or another negative errno.
 */
ssize_t conn_fill(struct conn *c, unsigned timeout_ms);

/*
 * Run the codec over the buffered bytes and return its event (the consumed
 * bytes are dropped from the buffer). PROTO_NEED_MORE means the buffer is
 * empty. PROTO_REPLY bytes are sent here (then the next event is returned);
 * a send failure is returned as PROTO_ERROR with the reason in *reason.
 */
enum proto_result conn_decode(struct conn *c, struct proto_event *ev);

/* Write every byte of IOV (which is modified), waiting up to the I/O timeout
 * whenever the socket is full. Returns 0 or a negative errno. */
int conn_writev(struct conn *c, struct iovec *iov, int iovcnt);

/* Wait up to the I/O timeout until the socket takes more bytes. Returns 0
 * or a negative errno (-ETIMEDOUT). */
int conn_wait_writable(struct conn *c);

/* Log a protocol error naming the peer, the listener and the reason, send
 * the codec's error reply if any, and mark the connection broken. */
void conn_protocol_error(struct conn *c, const char *reason);

#endif
