/*
 * protocol.h — the one interface every wire protocol implements.
 *
 * A codec turns bytes from the front end into one request (CGI params and a
 * body stream) and frames the response going back. Nothing above the codec
 * knows which protocol it serves.
 *
 * Decoding is a pure, resumable state machine: no I/O, no logging, no
 * allocation beyond the params table. The caller hands it whatever bytes it
 * has; the codec consumes them (all of them, or up to the point where it has
 * something to say) and reports one event. Input may be split at any byte:
 * the codec keeps partial record headers and lengths in its own state, so
 * the caller never has to keep unconsumed bytes around except those the codec
 * did not consume yet (ev.consumed < len), which it passes again next call.
 *
 * Events, in the order a request produces them:
 *   PROTO_NEED_MORE    every byte given was consumed; read more and call again
 *   PROTO_REPLY        send ev.data/ev.len to the peer now (a FastCGI
 *                      management answer, HTTP's 100 Continue when the
 *                      body is first decoded, or a refusal); if
 *                      ev.close_after, close the connection once it is sent
 *   PROTO_PARAMS_DONE  the params table is complete; the app may run
 *   PROTO_BODY_DATA    ev.data/ev.len are body bytes (they point into the
 *                      caller's input buffer: use them before reusing it)
 *   PROTO_BODY_END     the request body is complete (always reported, also
 *                      for an empty body)
 *   PROTO_ABORT        the front end aborted the current request (FastCGI)
 *   PROTO_ERROR        malformed or over a limit: ev.reason says why; the
 *                      connection must be closed (after sending the bytes of
 *                      codec->error_reply, if any)
 *
 * After PROTO_BODY_END the codec consumes nothing more until next_request()
 * (FastCGI keep-conn, HTTP keep-alive) — bytes of a following request stay
 * in the caller's buffer: further calls return PROTO_BODY_END again with
 * nothing consumed.
 * PROTO_ABORT and PROTO_ERROR repeat the same way. next_request() in the
 * middle of a request makes the codec skip the rest of that request.
 *
 * A state is state_size bytes aligned for max_align_t (malloc's alignment).
 */
#ifndef CORRAL_PROTOCOL_H
#define CORRAL_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "params.h"

/* Limits shared by all codecs; every field is configurable. */
struct proto_limits {
    size_t max_head;        /* params/header block bytes (default 65536) */
    size_t max_params;      /* number of name/value pairs (default 1024) */
    size_t max_field;       /* one name or value (default 65536) */
    uint64_t max_body;      /* request body bytes, 0 = unlimited (default) */
    /* What FastCGI GET_VALUES reports. */
    unsigned fcgi_max_conns;
    unsigned fcgi_max_reqs;
};

#define PROTO_LIMITS_DEFAULT                                                   \
    {                                                                          \
        .max_head = 65536, .max_params = 1024, .max_field = 65536,             \
        .max_body = 0, .fcgi_max_conns = 1024, .fcgi_max_reqs = 1024           \
    }

enum proto_result {
    PROTO_NEED_MORE = 0,
    PROTO_REPLY,
    PROTO_PARAMS_DONE,
    PROTO_BODY_DATA,
    PROTO_BODY_END,
    PROTO_ABORT,
    PROTO_ERROR,
};

struct proto_event {
    size_t consumed;        /* input bytes used by this call */
    const uint8_t *data;    /* BODY_DATA: in the input; REPLY: in the state */
    size_t len;
    bool close_after;       /* REPLY: close once sent */
    const char *reason;     /* ERROR: NUL-terminated, valid until the next
                               call on the same state */
};

/* Largest frame header, response end (or error reply) and framing headers
 * (the head hook) any codec writes. */
#define PROTO_FRAME_MAX 24
#define PROTO_END_MAX 128
#define PROTO_HEAD_MAX 64

enum proto_kind { PROTO_UWSGI, PROTO_FASTCGI, PROTO_SCGI, PROTO_HTTP, PROTO_KIND_COUNT };

struct proto_codec {
    const char *name;            /* "uwsgi", "fastcgi", "scgi", "http" */
    size_t state_size;           /* bytes the caller allocates for a state */

    /* Prepare a fresh state for a new connection. The limits must outlive
     * the state. */
    void (*init)(void *st, const struct proto_limits *lim);
    /* After a response on a kept connection: expect the next request. */
    void (*next_request)(void *st);

    /* See the event list above. params is filled between the first call and
     * PROTO_PARAMS_DONE; it is not reset by the codec (the caller resets it
     * with params_reset before a new request). */
    enum proto_result (*decode)(void *st, const uint8_t *in, size_t len,
                                struct params *params, struct proto_event *ev);

    /* Body length announced by the request: >= 0, or -1 when the body is
     * read to the end of stream (FastCGI with an empty CONTENT_LENGTH).
     * Valid after PROTO_PARAMS_DONE. */
    int64_t (*content_length)(const void *st);

    /* Whether the front end keeps the connection open after the response
     * (FastCGI FCGI_KEEP_CONN; HTTP keep-alive, which the response's
     * framing may rule out: valid for it after the head hook). Valid after
     * PROTO_PARAMS_DONE. */
    bool (*keep_conn)(const void *st);

    /* The codec cannot know the peer's and the listener's addresses (it
     * sees bytes only): after PROTO_PARAMS_DONE the connection adds
     * REMOTE_ADDR and REMOTE_PORT, and SERVER_NAME/SERVER_PORT when the
     * request did not give them (src/conn/peer.c). False when the front end
     * sends them as params. */
    bool conn_params;

    /* ---- encoding ---- */

    /* What comes before "200 OK\r\n" in the response head:
     * "HTTP/1.1 " (uwsgi) or "Status: " (SCGI, FastCGI). */
    const char *status_prefix;

    /* Largest body piece one frame carries (65535 for FastCGI STDOUT);
     * SIZE_MAX when the protocol does not frame the response. */
    size_t max_frame;

    /* Write the header that precedes a piece of len bytes (len <=
     * max_frame, len > 0) of response stream into out; return its size
     * (0 for unframed protocols). Called in the order the pieces go out (an
     * HTTP chunk header carries the CRLF that ends the chunk before it). */
    size_t (*frame)(void *st, uint8_t out[PROTO_FRAME_MAX], size_t len);

    /* NULL, or (HTTP) called once per response as its head is built, after
     * the app's headers: write the framing headers the codec adds into out
     * ("Transfer-Encoding: chunked\r\n", "Connection: close\r\n"...) and
     * return their size. STATUS is the response's; LENGTH the app's
     * Content-Length (-1 none, -2 one that is not a number); CLOSING: the
     * worker stops, or the app said Connection: close; the connection must
     * not be kept. The head (status line, headers, these, the empty line)
     * goes out unframed: frame() covers the body only. Sets *FRAMED when the
     * body pieces are framed (frame() returns headers): the response body
     * cannot then go out by sendfile. From here on keep_conn() says whether
     * this response leaves the connection kept, and error_reply() says
     * nothing (the head is out). */
    size_t (*head)(void *st, int status, int64_t length, bool closing,
                   char out[PROTO_HEAD_MAX], bool *framed);

    /* Write the bytes that end a complete response into out (FastCGI: an
     * empty STDOUT and END_REQUEST with app_status); return their size
     * (0 when closing the connection ends the response). */
    size_t (*end)(const void *st, uint8_t out[PROTO_END_MAX],
                  uint32_t app_status);

    /* NULL, or (FastCGI) after PROTO_BODY_END, while the response is not
     * ended: whether IN, bytes the front end sent after the request's last
     * record, tell that it gave the request up (an ABORT_REQUEST for it).
     * Reads whole records from the start of IN and consumes nothing: the
     * bytes stay for the next request. */
    bool (*gave_up)(const void *st, const uint8_t *in, size_t len);

    /* Bytes to send before closing after PROTO_ERROR or a failed response,
     * when the protocol allows (FastCGI: END_REQUEST for the active
     * request); 0 when there is nothing to say. */
    size_t (*error_reply)(const void *st, uint8_t out[PROTO_END_MAX]);

    /* Bytes that make the front end close a kept connection (a worker that
     * stops sends them between requests), harmless if they arrive just as
     * the front end sends a request on it: they are read as the start of
     * that request's response and skipped. FastCGI: an empty STDERR record
     * of the last request id (what nginx does with it: worker_stop.c). NULL
     * for protocols whose connections carry one request. */
    size_t (*goodbye)(const void *st, uint8_t out[PROTO_FRAME_MAX]);
};

extern const struct proto_codec proto_uwsgi;
extern const struct proto_codec proto_fastcgi;
extern const struct proto_codec proto_scgi;
extern const struct proto_codec proto_http;

/* The codec for a protocol name ("uwsgi", "fastcgi", "scgi", "http"), or
 * NULL. */
const struct proto_codec *proto_by_name(const char *name, size_t len);

#endif
