/*
 * uwsgi.c — the uwsgi request decoder and response framing.
 *
 * Wire format (all integers little-endian):
 *
 *   header   u8 modifier1 | u16 datasize | u8 modifier2
 *   vars     datasize bytes of pairs: u16 key_size, key, u16 val_size, val
 *            (no NUL terminators; a pair never runs past datasize)
 *   body     CONTENT_LENGTH bytes (no framing; absent or empty = 0)
 *
 * Only modifier1 0 (WSGI/CGI vars, what nginx and Apache send by default) is
 * served; modifier2 is ignored. The response is a raw HTTP response
 * ("HTTP/1.1 200 OK\r\n..."), ended by closing the connection.
 */
#include "protocol.h"
#include "reason.h"
#include "unframed.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum uwsgi_phase {
    UWSGI_HEAD,   /* the 4-byte packet header */
    UWSGI_KEYLEN, /* u16 key_size */
    UWSGI_KEY,    /* key bytes */
    UWSGI_VALLEN, /* u16 val_size */
    UWSGI_VAL,    /* value bytes */
    UWSGI_BODY,   /* body bytes, then BODY_END */
    UWSGI_DONE,   /* BODY_END reported; nothing more is consumed */
    UWSGI_ERROR,  /* ERROR reported; reported again on every call */
};

struct uwsgi_state {
    const struct proto_limits *lim;
    uint8_t phase;
    uint8_t got; /* header or length bytes read so far */
    uint8_t head[4];
    bool have_cl;      /* CONTENT_LENGTH seen */
    size_t vars_left;  /* vars block bytes not yet read */
    size_t field_left; /* bytes of the current key or value to read */
    uint64_t content_length;
    uint64_t body_left;
    char reason[112];
};

static void uwsgi_init(void *st_, const struct proto_limits *lim)
{
    struct uwsgi_state *st = st_;
    memset(st, 0, sizeof(*st));
    st->lim = lim;
    st->phase = UWSGI_HEAD;
}

static void uwsgi_next_request(void *st_)
{
    struct uwsgi_state *st = st_;
    uwsgi_init(st, st->lim);
}

static enum proto_result uwsgi_fail(struct uwsgi_state *st, struct proto_event *ev, size_t consumed,
                                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
    va_end(ap);
    st->phase = UWSGI_ERROR;
    ev->consumed = consumed;
    ev->reason = st->reason;
    return PROTO_ERROR;
}

/* Called when a pair is complete: catch CONTENT_LENGTH. False on error. */
static bool uwsgi_check_pair(struct uwsgi_state *st, const struct params *p, struct proto_event *ev,
                             size_t consumed)
{
    static const char cl[] = "CONTENT_LENGTH";
    const struct params_entry *e = params_last(p);
    if (e->name_len != sizeof(cl) - 1 || memcmp(params_name(p, e), cl, sizeof(cl) - 1) != 0)
        return true;
    if (st->have_cl) {
        uwsgi_fail(st, ev, consumed, "uwsgi request has a duplicate CONTENT_LENGTH");
        return false;
    }
    st->have_cl = true;
    /* nginx's stock uwsgi_params sends CONTENT_LENGTH empty without a body. */
    uint64_t v = 0;
    if (e->value_len != 0 &&
        (params_parse_length(params_value(p, e), e->value_len, &v) != 0 || v > INT64_MAX)) {
        char q[24];
        uwsgi_fail(st, ev, consumed, "uwsgi CONTENT_LENGTH \"%s\" is not a valid length",
                   reason_quote(q, params_value(p, e), e->value_len));
        return false;
    }
    if (st->lim->max_body && v > st->lim->max_body) {
        uwsgi_fail(st, ev, consumed,
                   "uwsgi CONTENT_LENGTH %" PRIu64 " is over the body limit %" PRIu64, v,
                   st->lim->max_body);
        return false;
    }
    st->content_length = v;
    return true;
}

/* The packet header is complete: validate it. False on error. */
static bool uwsgi_check_head(struct uwsgi_state *st, struct proto_event *ev, size_t consumed)
{
    const uint8_t *h = st->head;
    size_t datasize = (size_t)h[1] | (size_t)h[2] << 8;
    if (h[0] != 0) {
        /* "GET " read as a header is modifier1 71, datasize 21573 ("ET"). */
        if (datasize == 21573 ||
            (h[0] && strchr("GPHDOCT", h[0]) && h[1] >= 'A' && h[1] <= 'Z'))
            uwsgi_fail(st, ev, consumed,
                       "uwsgi packet starts with \"%c%c%c\" (datasize %zu): is someone speaking "
                       "HTTP to the uwsgi socket?",
                       reason_printable(h[0]), reason_printable(h[1]), reason_printable(h[2]),
                       datasize);
        else
            uwsgi_fail(st, ev, consumed,
                       "uwsgi modifier1 %u is not supported (only 0, WSGI/CGI vars)", h[0]);
        return false;
    }
    if (datasize == 0) {
        uwsgi_fail(st, ev, consumed, "empty uwsgi vars block");
        return false;
    }
    if (datasize > st->lim->max_head) {
        uwsgi_fail(st, ev, consumed, "uwsgi vars block of %zu bytes is over the limit %zu",
                   datasize, st->lim->max_head);
        return false;
    }
    st->vars_left = datasize;
    return true;
}

static enum proto_result uwsgi_params_fail(struct uwsgi_state *st, struct proto_event *ev,
                                           size_t consumed, enum params_status s)
{
    return uwsgi_fail(st, ev, consumed, "uwsgi vars: %s", params_strerror(s));
}

static enum proto_result uwsgi_decode(void *st_, const uint8_t *in, size_t len, struct params *p,
                                      struct proto_event *ev)
{
    struct uwsgi_state *st = st_;
    size_t i = 0;
    enum params_status ps;

    ev->consumed = 0;
    ev->data = NULL;
    ev->len = 0;
    ev->close_after = false;
    ev->reason = NULL;

    for (;;) {
        switch (st->phase) {
        case UWSGI_ERROR:
            ev->reason = st->reason;
            return PROTO_ERROR;

        case UWSGI_DONE:
            return PROTO_BODY_END;

        case UWSGI_BODY: {
            enum proto_result r = unframed_body(&st->body_left, in, len, ev);
            if (r == PROTO_BODY_END)
                st->phase = UWSGI_DONE;
            return r;
        }

        case UWSGI_HEAD:
            if (i == len)
                goto need_more;
            st->head[st->got++] = in[i++];
            if (st->got < 4)
                break;
            st->got = 0;
            if (!uwsgi_check_head(st, ev, i))
                return PROTO_ERROR;
            st->phase = UWSGI_KEYLEN;
            break;

        case UWSGI_KEYLEN:
        case UWSGI_VALLEN:
            if (i == len)
                goto need_more;
            if (st->got == 0) {
                if (st->vars_left < 2)
                    return uwsgi_fail(st, ev, i, "uwsgi var length runs past the vars block");
                st->field_left = in[i++];
                st->got = 1;
            } else {
                st->field_left |= (size_t)in[i++] << 8;
                st->got = 0;
                st->vars_left -= 2;
                bool key = st->phase == UWSGI_KEYLEN;
                /* A key must leave room for its value's length. */
                if (st->field_left + (key ? 2 : 0) > st->vars_left)
                    return uwsgi_fail(st, ev, i, "uwsgi %s of %zu bytes runs past the vars block",
                                      key ? "key" : "value", st->field_left);
                st->phase = key ? UWSGI_KEY : UWSGI_VAL;
            }
            break;

        case UWSGI_KEY:
        case UWSGI_VAL: {
            size_t n = len - i < st->field_left ? len - i : st->field_left;
            if (n > 0) {
                if ((ps = params_push(p, in + i, n)) != PARAMS_OK)
                    return uwsgi_params_fail(st, ev, i, ps);
                i += n;
                st->field_left -= n;
                st->vars_left -= n;
            }
            if (st->field_left > 0)
                goto need_more;
            if ((ps = params_end_field(p)) != PARAMS_OK)
                return uwsgi_params_fail(st, ev, i, ps);
            if (st->phase == UWSGI_KEY) {
                st->phase = UWSGI_VALLEN;
                break;
            }
            if (!uwsgi_check_pair(st, p, ev, i))
                return PROTO_ERROR;
            if (st->vars_left > 0) {
                st->phase = UWSGI_KEYLEN;
                break;
            }
            st->body_left = st->content_length;
            st->phase = UWSGI_BODY;
            ev->consumed = i;
            return PROTO_PARAMS_DONE;
        }
        }
    }

need_more:
    ev->consumed = i;
    return PROTO_NEED_MORE;
}

static int64_t uwsgi_content_length(const void *st_)
{
    const struct uwsgi_state *st = st_;
    return (int64_t)st->content_length;
}

const struct proto_codec proto_uwsgi = {
    .name = "uwsgi",
    .state_size = sizeof(struct uwsgi_state),
    .init = uwsgi_init,
    .next_request = uwsgi_next_request,
    .decode = uwsgi_decode,
    .content_length = uwsgi_content_length,
    .keep_conn = unframed_keep_conn,
    .status_prefix = "HTTP/1.1 ",
    .max_frame = SIZE_MAX,
    .frame = unframed_frame,
    .end = unframed_end,
    .error_reply = unframed_error_reply,
};
