/*
 * unframed.h — what uwsgi and SCGI share: each sends a head (the params, in
 * its own format) and then the request body as the raw CONTENT_LENGTH bytes
 * after it; the response is a plain byte stream that ends when the
 * connection closes (no frames, no end record, no keep-alive, nothing to say
 * before closing on an error).
 *
 * unframed.c runs a request of either protocol: it calls the codec's head
 * reader until the params are complete, catches CONTENT_LENGTH, keeps the
 * error reason, then hands out the body. A codec (uwsgi.c, scgi.c) supplies
 * only its head reader and what it checks beyond CONTENT_LENGTH, through a
 * struct unframed_wire, and points its struct proto_codec at the functions
 * below.
 */
#ifndef CORRAL_UNFRAMED_H
#define CORRAL_UNFRAMED_H

#include "protocol.h"

/* What a codec tells unframed.c about its wire format. */
struct unframed_wire {
    const char *name;   /* "uwsgi", "SCGI": the first word of a reason */
    const char *fields; /* "uwsgi vars", "SCGI headers": names a params error */
    size_t state_size;  /* the codec's whole state */
    bool empty_cl_is_0; /* an empty CONTENT_LENGTH means no body (else malformed) */
    /* Read head bytes: in/len may be empty, st is the codec's state. Returns
     * PROTO_NEED_MORE with every byte consumed, PROTO_PARAMS_DONE with
     * ev->consumed the bytes up to the end of the head, or PROTO_ERROR from
     * unframed_fail; always sets ev->consumed. */
    enum proto_result (*head)(void *st, const uint8_t *in, size_t len, struct params *p,
                              struct proto_event *ev);
};

/* The first member of each codec's state (the functions below take the
 * codec's state as void * and read it as this). */
struct unframed {
    const struct unframed_wire *wire;
    const struct proto_limits *lim;
    uint8_t phase; /* enum unframed_phase (unframed.c) */
    bool have_cl;  /* CONTENT_LENGTH seen */
    uint64_t content_length;
    uint64_t body_left;
    char reason[112];
};

/* A fresh state (all zero, so the head reader starts at its first step)
 * for a codec's init; the limits must outlive the state. */
void unframed_init(void *st, const struct proto_limits *lim, const struct unframed_wire *wire);

/* Report an error: the reason is printed into the state, the request is
 * over, ev->consumed is CONSUMED. Returns PROTO_ERROR. */
enum proto_result unframed_fail(struct unframed *u, struct proto_event *ev, size_t consumed,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A params_push/params_end_field failure S as an error ("uwsgi vars: ..."). */
enum proto_result unframed_params_fail(struct unframed *u, struct proto_event *ev, size_t consumed,
                                       enum params_status s);

/* A name-value pair is complete (params_last): catch CONTENT_LENGTH, which
 * must appear once, be a valid length and be within the body limit.
 * PROTO_NEED_MORE when the pair is fine, else PROTO_ERROR from unframed_fail
 * (CONSUMED bytes consumed). */
enum proto_result unframed_check_pair(struct unframed *u, const struct params *p,
                                      struct proto_event *ev, size_t consumed);

/* Whether byte C starts an HTTP method (GET, POST, PUT, HEAD, DELETE,
 * OPTIONS, CONNECT, TRACE...): the first byte of a request that someone
 * speaks in HTTP to the socket. */
bool unframed_http_start(uint8_t c);

/* The struct proto_codec members; next_request starts over with a fresh
 * state, the other members are described in protocol.h. */
void unframed_next_request(void *st);
enum proto_result unframed_decode(void *st, const uint8_t *in, size_t len, struct params *p,
                                  struct proto_event *ev);
int64_t unframed_content_length(const void *st);
bool unframed_keep_conn(const void *st);
size_t unframed_frame(void *st, uint8_t out[PROTO_FRAME_MAX], size_t len);
size_t unframed_end(const void *st, uint8_t out[PROTO_END_MAX], uint32_t app_status);
size_t unframed_error_reply(const void *st, uint8_t out[PROTO_END_MAX]);

#endif
