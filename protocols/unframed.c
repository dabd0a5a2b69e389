/*
 * unframed.c — a uwsgi or SCGI request around the codec's head reader: the
 * phases after the head, CONTENT_LENGTH, the error reason, and the
 * (absent) response framing (see unframed.h for the contract).
 */
#include "unframed.h"
#include "reason.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Where a request is. */
enum unframed_phase {
    UNFRAMED_HEAD,  /* the codec's head reader is reading the params */
    UNFRAMED_BODY,  /* body bytes, then BODY_END */
    UNFRAMED_DONE,  /* BODY_END reported; nothing more is consumed */
    UNFRAMED_ERROR, /* ERROR reported; reported again on every call */
};

void unframed_init(void *st, const struct proto_limits *lim, const struct unframed_wire *wire)
{
    struct unframed *u = st;
    memset(st, 0, wire->state_size);
    u->wire = wire;
    u->lim = lim;
    u->phase = UNFRAMED_HEAD;
}

void unframed_next_request(void *st)
{
    struct unframed *u = st;
    unframed_init(st, u->lim, u->wire);
}

enum proto_result unframed_fail(struct unframed *u, struct proto_event *ev, size_t consumed,
                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->reason, sizeof(u->reason), fmt, ap);
    va_end(ap);
    u->phase = UNFRAMED_ERROR;
    ev->consumed = consumed;
    ev->reason = u->reason;
    return PROTO_ERROR;
}

enum proto_result unframed_params_fail(struct unframed *u, struct proto_event *ev, size_t consumed,
                                       enum params_status s)
{
    return unframed_fail(u, ev, consumed, "%s: %s", u->wire->fields, params_strerror(s));
}

enum proto_result unframed_check_pair(struct unframed *u, const struct params *p,
                                      struct proto_event *ev, size_t consumed)
{
    const struct params_entry *e = params_last(p);
    const char *v = params_value(p, e);
    const char *name = u->wire->name;
    char q[24];
    uint64_t cl = 0;
    if (!params_is(p, e, "CONTENT_LENGTH"))
        return PROTO_NEED_MORE;
    if (u->have_cl)
        return unframed_fail(u, ev, consumed, "%s request has a duplicate CONTENT_LENGTH", name);
    u->have_cl = true;
    if ((e->value_len != 0 || !u->wire->empty_cl_is_0) &&
        params_parse_length(v, e->value_len, &cl) != 0)
        return unframed_fail(u, ev, consumed, "%s CONTENT_LENGTH \"%s\" is not a valid length",
                             name, reason_quote(q, v, e->value_len));
    if (u->lim->max_body && cl > u->lim->max_body)
        return unframed_fail(u, ev, consumed,
                             "%s CONTENT_LENGTH %" PRIu64 " is over the body limit %" PRIu64, name,
                             cl, u->lim->max_body);
    u->content_length = cl;
    return PROTO_NEED_MORE;
}

bool unframed_http_start(uint8_t c)
{
    return c && strchr("GPHDOCT", c);
}

/* The body phase: BODY_DATA with at most body_left bytes of the input,
 * BODY_END once body_left is 0, or NEED_MORE on empty input. */
static enum proto_result unframed_body(struct unframed *u, const uint8_t *in, size_t len,
                                       struct proto_event *ev)
{
    if (u->body_left == 0) {
        u->phase = UNFRAMED_DONE;
        return PROTO_BODY_END;
    }
    if (len == 0)
        return PROTO_NEED_MORE;
    ev->data = in;
    ev->len = len < u->body_left ? len : (size_t)u->body_left;
    ev->consumed = ev->len;
    u->body_left -= ev->len;
    return PROTO_BODY_DATA;
}

enum proto_result unframed_decode(void *st, const uint8_t *in, size_t len, struct params *p,
                                  struct proto_event *ev)
{
    struct unframed *u = st;
    *ev = (struct proto_event){0};
    switch (u->phase) {
    case UNFRAMED_HEAD: {
        enum proto_result r = u->wire->head(st, in, len, p, ev);
        if (r == PROTO_PARAMS_DONE) {
            u->body_left = u->content_length;
            u->phase = UNFRAMED_BODY;
        }
        return r;
    }
    case UNFRAMED_BODY:
        return unframed_body(u, in, len, ev);
    case UNFRAMED_DONE:
        return PROTO_BODY_END;
    default:
        ev->reason = u->reason;
        return PROTO_ERROR;
    }
}

int64_t unframed_content_length(const void *st)
{
    const struct unframed *u = st;
    return (int64_t)u->content_length;
}

bool unframed_keep_conn(const void *st)
{
    (void)st;
    return false;
}

size_t unframed_frame(void *st, uint8_t out[PROTO_FRAME_MAX], size_t len)
{
    (void)st, (void)out, (void)len;
    return 0;
}

size_t unframed_end(const void *st, uint8_t out[PROTO_END_MAX], uint32_t app_status)
{
    (void)st, (void)out, (void)app_status;
    return 0;
}

size_t unframed_error_reply(const void *st, uint8_t out[PROTO_END_MAX])
{
    (void)st, (void)out;
    return 0;
}
