/*
 * request.h — the request model: params lookup, the body reader and the
 * response state, for one request on one connection. The public face is
 * corral.h (corral_request is this struct); adapters for other app types
 * (WSGI) use the same functions.
 */
#ifndef CORRAL_REQUEST_H
#define CORRAL_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corral.h"

struct conn;

struct corral_request {
    struct conn *conn;
    const char *method;         /* REQUEST_METHOD, or NULL (looked up once) */
    const char *uri;            /* REQUEST_URI, or NULL (looked up once) */
    int status;
    char reason[64];
    char *headers;              /* "Name: value\r\n"... */
    size_t headers_len, headers_cap;
    bool head_sent;
    bool finished;              /* the end of the response was sent */
    bool failed;                /* a write failed: the front end is gone */
    bool head_only;             /* HEAD: the head goes out, body bytes are dropped */
    bool clipped;               /* body bytes past Content-Length were dropped (logged) */
    bool complete_early;        /* ended when the body reached its length (or HEAD) */
    bool framed;                /* the codec frames this response's body (HTTP
                                   chunked: the head hook said so) */
    bool app_close;             /* HTTP: the app said Connection: close */
    int64_t body_limit;         /* the handler's Content-Length, or -1 */
    bool length_seen;           /* a Content-Length header is staged... */
    int64_t length_first;       /* ...with this value (-1: not a number) */
    bool length_conflict;       /* another one differs: the head is refused */
    uint64_t bytes_out;         /* body bytes sent */
    uint64_t start_us;          /* CLOCK_MONOTONIC, microseconds */
};

/* Param INDEX (< corral_param_count) with the lengths of its name and
 * value: corral_param_at for adapters that want no strlen. */
void request_param_at(corral_request *r, size_t index, const char **name, size_t *name_len,
                      const char **value, size_t *value_len);

/* Body bytes the handler's Content-Length still allows (UINT64_MAX when it
 * gave none); more is dropped with a warning. */
static inline uint64_t request_body_left(const corral_request *r)
{
    return r->body_limit < 0 ? UINT64_MAX : (uint64_t)r->body_limit - r->bytes_out;
}

/* Whether the LEN bytes of VALUE may be a header value (RFC 9110 5.5:
 * VCHAR, obs-text, SP and HTAB; no other control byte, no DEL). */
bool request_header_value_ok(const char *value, size_t len);

/* Forget the status and headers staged so far (before the head is sent):
 * 200, no headers, no Content-Length. */
void request_reset_head(corral_request *r);

/* Prepare R for a new request on C, whose params are complete (keeps
 * memory). HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH leave C's params here
 * (RFC 3875 4.1.18): no reader of the request sees them. */
void request_begin(struct corral_request *r, struct conn *c);

/*
 * Complete the response after the app returned APP_RC (0 = success): send
 * the head if the app sent nothing (500 if it failed), the end of the
 * response, write the access-log line. Returns 0, or -1 when the connection
 * must be closed.
 */
int request_finish(struct corral_request *r, int app_rc);

/* Release the request's memory (the header buffer); the owner of the
 * request calls it, not the connection. */
void request_free(struct corral_request *r);

/* The standard reason phrase of an HTTP status ("Unknown" if none). */
const char *request_reason_phrase(int status);

#endif
