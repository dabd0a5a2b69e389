/*
 * scgi.c — the SCGI request decoder and response framing.
 *
 * Wire format (https://python.ca/scgi/protocol.txt):
 *
 *   netstring  <decimal length> ":" <headers> ","
 *              (length without leading zeros, bytes of <headers> only)
 *   headers    name NUL value NUL, repeated; the first is CONTENT_LENGTH
 *              (always present, "0" without a body); "SCGI" "1" is expected
 *              by the spec but nginx sends it only from scgi_params, so it
 *              is optional here; names are not repeated
 *   body       CONTENT_LENGTH bytes
 *
 * The response is CGI-style ("Status: 200 OK\r\n" + headers + body), ended
 * by closing the connection.
 */
#include "protocol.h"
#include "reason.h"
#include "unframed.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum scgi_phase {
    SCGI_LEN,   /* netstring length digits up to ':' */
    SCGI_NAME,  /* header name up to NUL */
    SCGI_VALUE, /* header value up to NUL */
    SCGI_COMMA, /* the ',' closing the netstring */
    SCGI_BODY,  /* body bytes, then BODY_END */
    SCGI_DONE,  /* BODY_END reported; nothing more is consumed */
    SCGI_ERROR, /* ERROR reported; reported again on every call */
};

struct scgi_state {
    const struct proto_limits *lim;
    uint8_t phase;
    bool name_open;    /* bytes of the current name were pushed */
    bool have_cl;      /* the first pair (CONTENT_LENGTH) was read */
    bool have_scgi;    /* SCGI header seen */
    uint64_t head_len; /* netstring length, while reading digits */
    size_t head_left;  /* header bytes not yet read */
    uint64_t content_length;
    uint64_t body_left;
    char reason[112];
};

static void scgi_init(void *st_, const struct proto_limits *lim)
{
    struct scgi_state *st = st_;
    memset(st, 0, sizeof(*st));
    st->lim = lim;
    st->phase = SCGI_LEN;
}

static void scgi_next_request(void *st_)
{
    struct scgi_state *st = st_;
    scgi_init(st, st->lim);
}

static enum proto_result scgi_fail(struct scgi_state *st, struct proto_event *ev, size_t consumed,
                                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
    va_end(ap);
    st->phase = SCGI_ERROR;
    ev->consumed = consumed;
    ev->reason = st->reason;
    return PROTO_ERROR;
}

static bool scgi_is(const struct params *p, const struct params_entry *e, const char *name)
{
    size_t n = strlen(name);
    return e->name_len == n && memcmp(params_name(p, e), name, n) == 0;
}

/* One digit or the ':' of the netstring length. False on error. */
static bool scgi_length_byte(struct scgi_state *st, uint8_t c, struct proto_event *ev,
                             size_t consumed)
{
    bool first = st->head_len == 0;
    if (c >= '0' && c <= '9') {
        if (first && c == '0') {
            scgi_fail(st, ev, consumed, "SCGI netstring length starts with 0");
            return false;
        }
        uint64_t max = st->lim->max_head, d = (uint64_t)(c - '0');
        if (d > max || st->head_len > (max - d) / 10) { /* head_len * 10 + d > max */
            scgi_fail(st, ev, consumed, "SCGI header block is over the limit of %zu bytes",
                      st->lim->max_head);
            return false;
        }
        st->head_len = st->head_len * 10 + d;
        return true;
    }
    if (c == ':' && !first) {
        st->head_left = (size_t)st->head_len;
        st->phase = SCGI_NAME;
        return true;
    }
    if (c == ':')
        scgi_fail(st, ev, consumed, "SCGI netstring has no length before ':'");
    else if (first && c && strchr("GPHDOCT", c)) /* GET, POST, PUT, HEAD, DELETE... */
        scgi_fail(st, ev, consumed,
                  "SCGI request starts with '%c': is someone speaking HTTP to the SCGI socket?", c);
    else
        scgi_fail(st, ev, consumed, "SCGI netstring length has a bad byte 0x%02x", c);
    return false;
}

/* A pair is complete: CONTENT_LENGTH first, no duplicates of it or of SCGI,
 * SCGI must be "1". False on error. */
static bool scgi_check_pair(struct scgi_state *st, const struct params *p, struct proto_event *ev,
                            size_t consumed)
{
    const struct params_entry *e = params_last(p);
    const char *v = params_value(p, e);
    char q[24];
    if (!st->have_cl) {
        uint64_t cl;
        if (!scgi_is(p, e, "CONTENT_LENGTH")) {
            scgi_fail(st, ev, consumed, "SCGI first header is \"%s\", not CONTENT_LENGTH",
                      reason_quote(q, params_name(p, e), e->name_len));
            return false;
        }
        if (params_parse_length(v, e->value_len, &cl) != 0 || cl > INT64_MAX) {
            scgi_fail(st, ev, consumed, "SCGI CONTENT_LENGTH \"%s\" is not a valid length",
                      reason_quote(q, v, e->value_len));
            return false;
        }
        if (st->lim->max_body && cl > st->lim->max_body) {
            scgi_fail(st, ev, consumed,
                      "SCGI CONTENT_LENGTH %" PRIu64 " is over the body limit %" PRIu64, cl,
                      st->lim->max_body);
            return false;
        }
        st->content_length = cl;
        st->have_cl = true;
    } else if (scgi_is(p, e, "CONTENT_LENGTH")) {
        scgi_fail(st, ev, consumed, "SCGI request has a duplicate CONTENT_LENGTH");
        return false;
    } else if (scgi_is(p, e, "SCGI")) {
        if (st->have_scgi) {
            scgi_fail(st, ev, consumed, "SCGI request has a duplicate SCGI header");
            return false;
        }
        if (e->value_len != 1 || v[0] != '1') {
            scgi_fail(st, ev, consumed, "SCGI version \"%s\" is not supported (only 1)",
                      reason_quote(q, v, e->value_len));
            return false;
        }
        st->have_scgi = true;
    }
    return true;
}

static enum proto_result scgi_params_fail(struct scgi_state *st, struct proto_event *ev,
                                          size_t consumed, enum params_status s)
{
    return scgi_fail(st, ev, consumed, "SCGI headers: %s", params_strerror(s));
}

static enum proto_result scgi_decode(void *st_, const uint8_t *in, size_t len, struct params *p,
                                     struct proto_event *ev)
{
    struct scgi_state *st = st_;
    size_t i = 0;
    enum params_status ps;

    ev->consumed = 0;
    ev->data = NULL;
    ev->len = 0;
    ev->close_after = false;
    ev->reason = NULL;

    for (;;) {
        switch (st->phase) {
        case SCGI_ERROR:
            ev->reason = st->reason;
            return PROTO_ERROR;

        case SCGI_DONE:
            return PROTO_BODY_END;

        case SCGI_BODY: {
            enum proto_result r = unframed_body(&st->body_left, in, len, ev);
            if (r == PROTO_BODY_END)
                st->phase = SCGI_DONE;
            return r;
        }

        case SCGI_LEN:
            if (i == len)
                goto need_more;
            i++;
            if (!scgi_length_byte(st, in[i - 1], ev, i))
                return PROTO_ERROR;
            break;

        case SCGI_NAME:
        case SCGI_VALUE: {
            if (st->head_left == 0) {
                if (st->phase == SCGI_VALUE || st->name_open)
                    return scgi_fail(st, ev, i,
                                     "SCGI header block ends in the middle of a name/value pair");
                st->phase = SCGI_COMMA;
                break;
            }
            if (i == len)
                goto need_more;
            size_t avail = len - i < st->head_left ? len - i : st->head_left;
            const uint8_t *nul = memchr(in + i, 0, avail);
            size_t n = nul ? (size_t)(nul - (in + i)) : avail;
            if (n > 0) {
                if ((ps = params_push(p, in + i, n)) != PARAMS_OK)
                    return scgi_params_fail(st, ev, i, ps);
                i += n;
                st->head_left -= n;
                st->name_open = st->phase == SCGI_NAME;
            }
            if (!nul)
                break;
            i++;
            st->head_left--;
            st->name_open = false;
            if ((ps = params_end_field(p)) != PARAMS_OK)
                return scgi_params_fail(st, ev, i, ps);
            if (st->phase == SCGI_NAME) {
                st->phase = SCGI_VALUE;
            } else {
                if (!scgi_check_pair(st, p, ev, i))
                    return PROTO_ERROR;
                st->phase = SCGI_NAME;
            }
            break;
        }

        case SCGI_COMMA:
            if (i == len)
                goto need_more;
            if (in[i++] != ',')
                return scgi_fail(st, ev, i, "SCGI header block is not followed by ','");
            /* The first pair is CONTENT_LENGTH, so a block that ends on a
             * pair boundary has it. */
            st->body_left = st->content_length;
            st->phase = SCGI_BODY;
            ev->consumed = i;
            return PROTO_PARAMS_DONE;
        }
    }

need_more:
    ev->consumed = i;
    return PROTO_NEED_MORE;
}

static int64_t scgi_content_length(const void *st_)
{
    const struct scgi_state *st = st_;
    return (int64_t)st->content_length;
}

const struct proto_codec proto_scgi = {
    .name = "scgi",
    .state_size = sizeof(struct scgi_state),
    .init = scgi_init,
    .next_request = scgi_next_request,
    .decode = scgi_decode,
    .content_length = scgi_content_length,
    .keep_conn = unframed_keep_conn,
    .status_prefix = "Status: ",
    .max_frame = SIZE_MAX,
    .frame = unframed_frame,
    .end = unframed_end,
    .error_reply = unframed_error_reply,
};
