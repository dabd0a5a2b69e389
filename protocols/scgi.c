/*
 * scgi.c — the SCGI codec: its head reader; unframed.c runs the rest of the
 * request and the (absent) response framing.
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
#include "unframed.h"
#include "reason.h"

#include <stddef.h>
#include <string.h>

/* Where the head reader is; unframed.c runs the rest of the request. */
enum scgi_step {
    SCGI_LEN,   /* netstring length digits up to ':' */
    SCGI_NAME,  /* header name up to NUL */
    SCGI_VALUE, /* header value up to NUL */
    SCGI_COMMA, /* the ',' closing the netstring */
};

struct scgi_state {
    struct unframed u; /* first: unframed.c reads the state as this */
    uint8_t step;      /* enum scgi_step */
    bool name_open;    /* bytes of the current name were pushed */
    bool have_scgi;    /* SCGI header seen */
    uint64_t head_len; /* netstring length, while reading digits */
    size_t head_left;  /* header bytes not yet read */
};
_Static_assert(offsetof(struct scgi_state, u) == 0,
               "unframed.c reads the state as a struct unframed");

/* One digit or the ':' of the netstring length. PROTO_NEED_MORE when it is
 * fine, else PROTO_ERROR. */
static enum proto_result scgi_length_byte(struct scgi_state *st, uint8_t c, struct proto_event *ev,
                                          size_t consumed)
{
    bool first = st->head_len == 0;
    if (c >= '0' && c <= '9') {
        uint64_t max = st->u.lim->max_head, d = (uint64_t)(c - '0');
        if (first && c == '0')
            return unframed_fail(&st->u, ev, consumed, "SCGI netstring length starts with 0");
        if (d > max || st->head_len > (max - d) / 10) /* head_len * 10 + d > max */
            return unframed_fail(&st->u, ev, consumed,
                                 "SCGI header block is over the limit of %zu bytes",
                                 st->u.lim->max_head);
        st->head_len = st->head_len * 10 + d;
        return PROTO_NEED_MORE;
    }
    if (c == ':' && !first) {
        st->head_left = (size_t)st->head_len;
        st->step = SCGI_NAME;
        return PROTO_NEED_MORE;
    }
    if (c == ':')
        return unframed_fail(&st->u, ev, consumed, "SCGI netstring has no length before ':'");
    if (first && unframed_http_start(c))
        return unframed_fail(&st->u, ev, consumed,
                             "SCGI request starts with '%c': is someone speaking HTTP to the "
                             "SCGI socket?",
                             c);
    return unframed_fail(&st->u, ev, consumed, "SCGI netstring length has a bad byte 0x%02x", c);
}

/* A pair is complete: CONTENT_LENGTH first (unframed_check_pair checks it
 * and its duplicates), no duplicate SCGI, SCGI must be "1". PROTO_NEED_MORE
 * when it is fine, else PROTO_ERROR. */
static enum proto_result scgi_check_pair(struct scgi_state *st, const struct params *p,
                                         struct proto_event *ev, size_t consumed)
{
    const struct params_entry *e = params_last(p);
    const char *v = params_value(p, e);
    char q[24];
    if (!st->u.have_cl && !params_is(p, e, "CONTENT_LENGTH"))
        return unframed_fail(&st->u, ev, consumed,
                             "SCGI first header is \"%s\", not CONTENT_LENGTH",
                             reason_quote(q, params_name(p, e), e->name_len));
    if (unframed_check_pair(&st->u, p, ev, consumed) != PROTO_NEED_MORE)
        return PROTO_ERROR;
    if (!params_is(p, e, "SCGI"))
        return PROTO_NEED_MORE;
    if (st->have_scgi)
        return unframed_fail(&st->u, ev, consumed, "SCGI request has a duplicate SCGI header");
    if (e->value_len != 1 || v[0] != '1')
        return unframed_fail(&st->u, ev, consumed, "SCGI version \"%s\" is not supported (only 1)",
                             reason_quote(q, v, e->value_len));
    st->have_scgi = true;
    return PROTO_NEED_MORE;
}

/* The head reader (struct unframed_wire): the netstring of headers. */
static enum proto_result scgi_head(void *st_, const uint8_t *in, size_t len, struct params *p,
                                   struct proto_event *ev)
{
    struct scgi_state *st = st_;
    size_t i = 0;
    enum params_status ps;

    for (;;) {
        switch (st->step) {
        case SCGI_LEN:
            if (i == len)
                goto need_more;
            i++;
            if (scgi_length_byte(st, in[i - 1], ev, i) != PROTO_NEED_MORE)
                return PROTO_ERROR;
            break;

        case SCGI_NAME:
        case SCGI_VALUE: {
            if (st->head_left == 0) {
                if (st->step == SCGI_VALUE || st->name_open)
                    return unframed_fail(
                        &st->u, ev, i, "SCGI header block ends in the middle of a name/value pair");
                st->step = SCGI_COMMA;
                break;
            }
            if (i == len)
                goto need_more;
            size_t avail = len - i < st->head_left ? len - i : st->head_left;
            const uint8_t *nul = memchr(in + i, 0, avail);
            size_t n = nul ? (size_t)(nul - (in + i)) : avail;
            if (n > 0) {
                if ((ps = params_push(p, in + i, n)) != PARAMS_OK)
                    return unframed_params_fail(&st->u, ev, i, ps);
                i += n;
                st->head_left -= n;
                st->name_open = st->step == SCGI_NAME;
            }
            if (!nul)
                break;
            i++;
            st->head_left--;
            st->name_open = false;
            if ((ps = params_end_field(p)) != PARAMS_OK)
                return unframed_params_fail(&st->u, ev, i, ps);
            if (st->step == SCGI_NAME) {
                st->step = SCGI_VALUE;
            } else {
                if (scgi_check_pair(st, p, ev, i) != PROTO_NEED_MORE)
                    return PROTO_ERROR;
                st->step = SCGI_NAME;
            }
            break;
        }

        case SCGI_COMMA:
            if (i == len)
                goto need_more;
            if (in[i++] != ',')
                return unframed_fail(&st->u, ev, i, "SCGI header block is not followed by ','");
            /* The first pair is CONTENT_LENGTH, so a block that ends on a
             * pair boundary has it. */
            ev->consumed = i;
            return PROTO_PARAMS_DONE;
        }
    }

need_more:
    ev->consumed = i;
    return PROTO_NEED_MORE;
}

static const struct unframed_wire scgi_wire = {
    .name = "SCGI",
    .fields = "SCGI headers",
    .state_size = sizeof(struct scgi_state),
    .empty_cl_is_0 = false, /* the spec: "0" when there is no body */
    .head = scgi_head,
};

static void scgi_init(void *st, const struct proto_limits *lim)
{
    unframed_init(st, lim, &scgi_wire);
}

const struct proto_codec proto_scgi = {
    .name = "scgi",
    .state_size = sizeof(struct scgi_state),
    .init = scgi_init,
    .next_request = unframed_next_request,
    .decode = unframed_decode,
    .content_length = unframed_content_length,
    .keep_conn = unframed_keep_conn,
    .status_prefix = "Status: ",
    .max_frame = SIZE_MAX,
    .frame = unframed_frame,
    .end = unframed_end,
    .error_reply = unframed_error_reply,
};
