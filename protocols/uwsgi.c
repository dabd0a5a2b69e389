/*
 * uwsgi.c — the uwsgi codec: its head reader; unframed.c runs the rest of the
 * request and the (absent) response framing.
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
#include "unframed.h"
#include "reason.h"

#include <stddef.h>
#include <string.h>

/* Where the head reader is; unframed.c runs the rest of the request. */
enum uwsgi_step {
    UWSGI_HEAD,   /* the 4-byte packet header */
    UWSGI_KEYLEN, /* u16 key_size */
    UWSGI_KEY,    /* key bytes */
    UWSGI_VALLEN, /* u16 val_size */
    UWSGI_VAL,    /* value bytes */
};

struct uwsgi_state {
    struct unframed u; /* first: unframed.c reads the state as this */
    uint8_t step;      /* enum uwsgi_step */
    uint8_t got;       /* header or length bytes read so far */
    uint8_t head[4];
    size_t vars_left;  /* vars block bytes not yet read */
    size_t field_left; /* bytes of the current key or value to read */
};
_Static_assert(offsetof(struct uwsgi_state, u) == 0,
               "unframed.c reads the state as a struct unframed");

/* The packet header is complete: validate it. PROTO_NEED_MORE when it is
 * fine, else PROTO_ERROR. */
static enum proto_result uwsgi_check_head(struct uwsgi_state *st, struct proto_event *ev,
                                          size_t consumed)
{
    const uint8_t *h = st->head;
    size_t datasize = (size_t)h[1] | (size_t)h[2] << 8;
    /* "GET " read as a header is modifier1 71, datasize 21573 ("ET"). */
    if (h[0] != 0 &&
        (datasize == 21573 || (unframed_http_start(h[0]) && h[1] >= 'A' && h[1] <= 'Z')))
        return unframed_fail(&st->u, ev, consumed,
                             "uwsgi packet starts with \"%c%c%c\" (datasize %zu): is someone "
                             "speaking HTTP to the uwsgi socket?",
                             reason_printable(h[0]), reason_printable(h[1]), reason_printable(h[2]),
                             datasize);
    if (h[0] != 0)
        return unframed_fail(&st->u, ev, consumed,
                             "uwsgi modifier1 %u is not supported (only 0, WSGI/CGI vars)", h[0]);
    if (datasize == 0)
        return unframed_fail(&st->u, ev, consumed, "empty uwsgi vars block");
    if (datasize > st->u.lim->max_head)
        return unframed_fail(&st->u, ev, consumed,
                             "uwsgi vars block of %zu bytes is over the limit %zu", datasize,
                             st->u.lim->max_head);
    st->vars_left = datasize;
    return PROTO_NEED_MORE;
}

/* The head reader (struct unframed_wire): the packet header and the vars. */
static enum proto_result uwsgi_head(void *st_, const uint8_t *in, size_t len, struct params *p,
                                    struct proto_event *ev)
{
    struct uwsgi_state *st = st_;
    size_t i = 0;
    enum params_status ps;

    for (;;) {
        switch (st->step) {
        case UWSGI_HEAD:
            if (i == len)
                goto need_more;
            st->head[st->got++] = in[i++];
            if (st->got < 4)
                break;
            st->got = 0;
            if (uwsgi_check_head(st, ev, i) != PROTO_NEED_MORE)
                return PROTO_ERROR;
            st->step = UWSGI_KEYLEN;
            break;

        case UWSGI_KEYLEN:
        case UWSGI_VALLEN:
            if (i == len)
                goto need_more;
            if (st->got == 0) {
                if (st->vars_left < 2)
                    return unframed_fail(&st->u, ev, i,
                                         "uwsgi var length runs past the vars block");
                st->field_left = in[i++];
                st->got = 1;
            } else {
                st->field_left |= (size_t)in[i++] << 8;
                st->got = 0;
                st->vars_left -= 2;
                bool key = st->step == UWSGI_KEYLEN;
                /* A key must leave room for its value's length. */
                if (st->field_left + (key ? 2 : 0) > st->vars_left)
                    return unframed_fail(&st->u, ev, i,
                                         "uwsgi %s of %zu bytes runs past the vars block",
                                         key ? "key" : "value", st->field_left);
                st->step = key ? UWSGI_KEY : UWSGI_VAL;
            }
            break;

        case UWSGI_KEY:
        case UWSGI_VAL: {
            size_t n = len - i < st->field_left ? len - i : st->field_left;
            if (n > 0) {
                if ((ps = params_push(p, in + i, n)) != PARAMS_OK)
                    return unframed_params_fail(&st->u, ev, i, ps);
                i += n;
                st->field_left -= n;
                st->vars_left -= n;
            }
            if (st->field_left > 0)
                goto need_more;
            if ((ps = params_end_field(p)) != PARAMS_OK)
                return unframed_params_fail(&st->u, ev, i, ps);
            if (st->step == UWSGI_KEY) {
                st->step = UWSGI_VALLEN;
                break;
            }
            if (unframed_check_pair(&st->u, p, ev, i) != PROTO_NEED_MORE)
                return PROTO_ERROR;
            if (st->vars_left > 0) {
                st->step = UWSGI_KEYLEN;
                break;
            }
            ev->consumed = i;
            return PROTO_PARAMS_DONE;
        }
        }
    }

need_more:
    ev->consumed = i;
    return PROTO_NEED_MORE;
}

static const struct unframed_wire uwsgi_wire = {
    .name = "uwsgi",
    .fields = "uwsgi vars",
    .state_size = sizeof(struct uwsgi_state),
    /* nginx's stock uwsgi_params sends CONTENT_LENGTH empty without a body. */
    .empty_cl_is_0 = true,
    .head = uwsgi_head,
};

static void uwsgi_init(void *st, const struct proto_limits *lim)
{
    unframed_init(st, lim, &uwsgi_wire);
}

const struct proto_codec proto_uwsgi = {
    .name = "uwsgi",
    .state_size = sizeof(struct uwsgi_state),
    .init = uwsgi_init,
    .next_request = unframed_next_request,
    .decode = unframed_decode,
    .content_length = unframed_content_length,
    .keep_conn = unframed_keep_conn,
    .status_prefix = "HTTP/1.1 ",
    .max_frame = SIZE_MAX,
    .frame = unframed_frame,
    .end = unframed_end,
    .error_reply = unframed_error_reply,
};
