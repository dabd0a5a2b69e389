/*
 * unframed.h — what uwsgi and SCGI share: the request body is the raw
 * CONTENT_LENGTH bytes after the head, and the response is a plain byte
 * stream that ends when the connection closes (no frames, no end record,
 * no keep-alive, nothing to say before closing on an error).
 */
#ifndef CORRAL_UNFRAMED_H
#define CORRAL_UNFRAMED_H

#include "protocol.h"

/* The body phase: BODY_DATA with at most *left bytes of the input,
 * BODY_END once *left is 0, or NEED_MORE on empty input. */
static inline enum proto_result unframed_body(uint64_t *left, const uint8_t *in, size_t len,
                                              struct proto_event *ev)
{
    if (*left == 0)
        return PROTO_BODY_END;
    if (len == 0)
        return PROTO_NEED_MORE;
    ev->data = in;
    ev->len = len < *left ? len : (size_t)*left;
    ev->consumed = ev->len;
    *left -= ev->len;
    return PROTO_BODY_DATA;
}

static inline bool unframed_keep_conn(const void *st)
{
    (void)st;
    return false;
}

static inline size_t unframed_frame(const void *st, uint8_t out[PROTO_FRAME_MAX], size_t len)
{
    (void)st, (void)out, (void)len;
    return 0;
}

static inline size_t unframed_end(const void *st, uint8_t out[PROTO_END_MAX],
                                  uint32_t app_status)
{
    (void)st, (void)out, (void)app_status;
    return 0;
}

static inline size_t unframed_error_reply(const void *st, uint8_t out[PROTO_END_MAX])
{
    (void)st, (void)out;
    return 0;
}

#endif
