/*
 * fastcgi.c — the FastCGI 1.0 codec: responder role, one request at a time
 * per connection, keep-conn supported (the FastCGI 1.0 specification).
 *
 * Wire format (integers big-endian):
 *
 *   record   version=1 (1) type (1) requestId (2) contentLength (2)
 *            paddingLength (1) reserved (1), then contentLength bytes of
 *            content and paddingLength (0-255) bytes of padding
 *   types    1 BEGIN_REQUEST  2 ABORT_REQUEST  3 END_REQUEST  4 PARAMS
 *            5 STDIN  6 STDOUT  7 STDERR  8 DATA  9 GET_VALUES
 *            10 GET_VALUES_RESULT  11 UNKNOWN_TYPE
 *   BEGIN    role (2: 1 RESPONDER, 2 AUTHORIZER, 3 FILTER) flags (1: bit 0
 *            = KEEP_CONN) reserved (5)
 *   END      appStatus (4) protocolStatus (1: 0 REQUEST_COMPLETE,
 *            1 CANT_MPX_CONN, 2 OVERLOADED, 3 UNKNOWN_ROLE) reserved (3)
 *   UNKNOWN  type (1) reserved (7)
 *   pairs    nameLength valueLength name value; a length is one byte
 *            (0-127) or four with the top bit set (31 bits)
 *
 * A request is BEGIN, PARAMS records, an empty PARAMS, STDIN records and an
 * empty STDIN; the response is STDOUT records, an empty STDOUT and
 * END_REQUEST. The PARAMS stream is cut into records anywhere, even inside
 * a length, name or value (Apache cuts every 16 KiB; nginx sends one
 * record). Records with requestId 0 are management records: GET_VALUES is
 * answered with GET_VALUES_RESULT, any other type with UNKNOWN_TYPE.
 *
 * The decoder has two layers. The record layer reads a header, the content
 * and the padding, byte-resumably. When a header is complete it decides,
 * once, what the record means (an "action": skip it, feed its content to
 * the params, hand it out as body, collect a BEGIN body, ...); the event a
 * record causes (a reply, PARAMS_DONE, BODY_END, ABORT) comes out when its
 * padding is consumed. Body bytes come out as they arrive, pointing into
 * the caller's input. The pair layer reads name-value pairs across record
 * boundaries, for PARAMS (into the params table) and for GET_VALUES
 * (matched against the three known names, nothing buffered beyond one
 * short name).
 *
 * The state holds only integers no wider than 32 bits, so it needs 4-byte
 * alignment and no more.
 */
#include "protocol.h"

#include <string.h>

enum fcgi_type {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_DATA = 8,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
};

enum fcgi_protocol_status {
    FCGI_REQUEST_COMPLETE = 0,
    FCGI_CANT_MPX_CONN = 1,
    FCGI_OVERLOADED = 2,
    FCGI_UNKNOWN_ROLE = 3,
};

#define FCGI_VERSION_1 1
#define FCGI_HEADER_LEN 8
#define FCGI_RESPONDER 1
#define FCGI_KEEP_CONN 1

/* Where the connection is in its current request. */
enum fcgi_phase {
    PH_IDLE,    /* no request: waiting for BEGIN_REQUEST */
    PH_PARAMS,  /* reading the PARAMS stream */
    PH_BODY,    /* reading the STDIN stream */
    PH_DONE,    /* BODY_END reported; nothing consumed until next_request */
    PH_ABORTED, /* ABORT reported; likewise */
    PH_FAILED,  /* ERROR reported; the connection is dead */
};

/* Where the record layer is inside the current record. */
enum fcgi_rstate { RS_HEADER, RS_CONTENT, RS_PADDING };

/* What the current record means, decided when its header is complete. */
enum fcgi_action {
    ACT_SKIP,         /* ignore content and padding */
    ACT_BEGIN,        /* collect the 8-byte body, then start a request */
    ACT_REFUSE,       /* a BEGIN while busy: answer CANT_MPX_CONN */
    ACT_ABORT,        /* ABORT_REQUEST for the active request */
    ACT_PARAMS,       /* content goes to the pair reader and params */
    ACT_PARAMS_END,   /* the empty PARAMS record */
    ACT_STDIN,        /* content is body */
    ACT_STDIN_END,    /* the empty STDIN record */
    ACT_GET_VALUES,   /* content goes to the pair reader, then answer */
    ACT_UNKNOWN_TYPE, /* answer UNKNOWN_TYPE */
};

/* Where the pair reader is inside a name-value pair. */
enum fcgi_pstate { PR_NAME_LEN, PR_VALUE_LEN, PR_NAME, PR_VALUE };

enum fcgi_cl { CL_ABSENT, CL_EMPTY, CL_SET };

enum fcgi_err {
    ERR_NONE,
    ERR_PARAMS, /* st->perr holds the params_status */
    ERR_VERSION,
    ERR_BEGIN_LENGTH,
    ERR_BEGIN_ACTIVE,
    ERR_PARAMS_LATE,
    ERR_PARAMS_CUT,
    ERR_STDIN_EARLY,
    ERR_CL_BAD,
    ERR_CL_DUP,
    ERR_CL_LIMIT,
    ERR_BODY_LONG,
    ERR_BODY_SHORT,
    ERR_BODY_LIMIT,
    ERR_MGMT_CUT,
};

static const char *const fcgi_errors[] = {
    [ERR_NONE] = "no error",
    [ERR_PARAMS] = "params error",
    [ERR_VERSION] = "unsupported FastCGI version",
    [ERR_BEGIN_LENGTH] = "BEGIN_REQUEST content length is not 8",
    [ERR_BEGIN_ACTIVE] = "BEGIN_REQUEST repeats the active request id",
    [ERR_PARAMS_LATE] = "PARAMS after the end of the params stream",
    [ERR_PARAMS_CUT] = "params stream ends inside a name-value pair",
    [ERR_STDIN_EARLY] = "STDIN before the end of the params stream",
    [ERR_CL_BAD] = "malformed CONTENT_LENGTH",
    [ERR_CL_DUP] = "duplicate CONTENT_LENGTH",
    [ERR_CL_LIMIT] = "CONTENT_LENGTH over the body size limit",
    [ERR_BODY_LONG] = "body longer than CONTENT_LENGTH",
    [ERR_BODY_SHORT] = "body shorter than CONTENT_LENGTH",
    [ERR_BODY_LIMIT] = "body over the size limit",
    [ERR_MGMT_CUT] = "GET_VALUES record ends inside a name-value pair",
};

/* A 64-bit count kept as two 32-bit halves (see the alignment note above). */
struct fcgi_u64 {
    uint32_t hi, lo;
};

static uint64_t u64_get(struct fcgi_u64 v)
{
    return (uint64_t)v.hi << 32 | v.lo;
}

static struct fcgi_u64 u64_make(uint64_t v)
{
    return (struct fcgi_u64){.hi = (uint32_t)(v >> 32), .lo = (uint32_t)v};
}

/* One name-value pair reader. */
struct fcgi_pairs {
    uint32_t name_len, value_len;
    uint32_t left;    /* bytes still to read of the open name or value */
    uint8_t state;    /* enum fcgi_pstate */
    uint8_t len_have; /* bytes read of a 4-byte length */
    uint8_t len_buf[4];
};

/* GET_VALUES: the names we answer. */
#define FCGI_VAR_NAME_MAX 15
static const struct {
    const char *name;
    uint8_t len;
} fcgi_vars[] = {
    {"FCGI_MAX_CONNS", 14},
    {"FCGI_MAX_REQS", 13},
    {"FCGI_MPXS_CONNS", 15},
};

/* Largest reply: GET_VALUES_RESULT with all three names and 10-digit values,
 * 8 + (2+14+10) + (2+13+10) + (2+15+1) = 77 bytes, padded to 80. */
#define FCGI_REPLY_MAX 80

struct fcgi_state {
    /* limits, copied (clamped to 32 bits: FastCGI lengths are 31-bit) */
    uint32_t max_head, max_params, max_field;
    uint32_t max_conns, max_reqs;
    struct fcgi_u64 max_body;

    /* record layer */
    uint8_t hdr[FCGI_HEADER_LEN];
    uint8_t hdr_have;
    uint8_t rstate; /* enum fcgi_rstate */
    uint8_t action; /* enum fcgi_action */
    uint8_t rec_type;
    uint16_t rec_id;
    uint16_t content_left;
    uint8_t pad_left;
    uint8_t begin_have;
    uint8_t begin[8]; /* BEGIN_REQUEST body */

    /* the request */
    uint8_t phase;  /* enum fcgi_phase */
    uint8_t active; /* a request has begun (until next_request) */
    uint8_t keep_conn;
    uint8_t cl_state; /* enum fcgi_cl */
    uint16_t req_id;
    struct fcgi_u64 content_length;
    struct fcgi_u64 body_read;
    uint32_t head_bytes; /* announced name and value bytes so far */
    struct fcgi_pairs params;

    /* GET_VALUES being read */
    struct fcgi_pairs mgmt;
    int8_t mgmt_match; /* index in fcgi_vars of the current name, or -1 */
    uint8_t mgmt_have; /* bytes of the current name in mgmt_name */
    uint8_t mgmt_done; /* bit per fcgi_vars entry already answered */
    char mgmt_name[FCGI_VAR_NAME_MAX];

    /* failure */
    uint8_t err; /* enum fcgi_err */
    int8_t perr; /* enum params_status when err == ERR_PARAMS */

    /* the reply handed out with PROTO_REPLY */
    uint8_t reply_len;
    uint8_t reply[FCGI_REPLY_MAX];
};

_Static_assert(_Alignof(struct fcgi_state) <= 4,
               "the FastCGI state must need no more than 4-byte alignment");

/* ---- wire helpers ---- */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_header(uint8_t *out, uint8_t type, uint16_t id, uint16_t len, uint8_t pad)
{
    out[0] = FCGI_VERSION_1;
    out[1] = type;
    out[2] = (uint8_t)(id >> 8);
    out[3] = (uint8_t)id;
    out[4] = (uint8_t)(len >> 8);
    out[5] = (uint8_t)len;
    out[6] = pad;
    out[7] = 0;
}

/* Write a complete END_REQUEST record (16 bytes). */
static void put_end_request(uint8_t *out, uint16_t id, uint32_t app_status, uint8_t protocol_status)
{
    put_header(out, FCGI_END_REQUEST, id, 8, 0);
    out[8] = (uint8_t)(app_status >> 24);
    out[9] = (uint8_t)(app_status >> 16);
    out[10] = (uint8_t)(app_status >> 8);
    out[11] = (uint8_t)app_status;
    out[12] = protocol_status;
    memset(out + 13, 0, 3);
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ---- events ---- */

static enum proto_result fcgi_fail(struct fcgi_state *st, enum fcgi_err err)
{
    st->err = (uint8_t)err;
    return PROTO_ERROR;
}

static enum proto_result fcgi_fail_params(struct fcgi_state *st, enum params_status s)
{
    st->perr = (int8_t)s;
    return fcgi_fail(st, ERR_PARAMS);
}

static const char *fcgi_reason(const struct fcgi_state *st)
{
    if (st->err == ERR_PARAMS)
        return params_strerror((enum params_status)st->perr);
    return fcgi_errors[st->err];
}

static enum proto_result fcgi_reply(struct fcgi_state *st, size_t len, bool close_after,
                                    struct proto_event *ev)
{
    ev->data = st->reply;
    ev->len = len;
    ev->close_after = close_after;
    return PROTO_REPLY;
}

static enum proto_result fcgi_reply_end_request(struct fcgi_state *st, uint8_t protocol_status,
                                                bool close_after, struct proto_event *ev)
{
    put_end_request(st->reply, st->rec_id, 0, protocol_status);
    return fcgi_reply(st, 16, close_after, ev);
}

/* ---- the request ---- */

static void fcgi_request_reset(struct fcgi_state *st)
{
    st->active = 0;
    st->keep_conn = 0;
    st->cl_state = CL_ABSENT;
    st->content_length = u64_make(0);
    st->body_read = u64_make(0);
    st->head_bytes = 0;
    memset(&st->params, 0, sizeof(st->params));
}

/* A complete BEGIN_REQUEST while no request is active. */
static enum proto_result fcgi_begin(struct fcgi_state *st, struct proto_event *ev)
{
    uint16_t role = be16(st->begin);
    bool keep = st->begin[2] & FCGI_KEEP_CONN;
    if (role != FCGI_RESPONDER)
        return fcgi_reply_end_request(st, FCGI_UNKNOWN_ROLE, !keep, ev);
    fcgi_request_reset(st);
    st->active = 1;
    st->keep_conn = keep;
    st->req_id = st->rec_id;
    st->phase = PH_PARAMS;
    return PROTO_NEED_MORE;
}

/* A param pair is complete: catch CONTENT_LENGTH. */
static enum proto_result fcgi_param_done(struct fcgi_state *st, const struct params *p)
{
    const struct params_entry *e = params_last(p);
    if (!e || !params_is(p, e, "CONTENT_LENGTH"))
        return PROTO_NEED_MORE;
    if (st->cl_state != CL_ABSENT)
        return fcgi_fail(st, ERR_CL_DUP);
    if (e->value_len == 0) {
        st->cl_state = CL_EMPTY;
        return PROTO_NEED_MORE;
    }
    uint64_t v;
    if (params_parse_length(params_value(p, e), e->value_len, &v) != 0)
        return fcgi_fail(st, ERR_CL_BAD);
    uint64_t max_body = u64_get(st->max_body);
    if (max_body && v > max_body)
        return fcgi_fail(st, ERR_CL_LIMIT);
    st->cl_state = CL_SET;
    st->content_length = u64_make(v);
    return PROTO_NEED_MORE;
}

/* The header of a STDIN record of the active request, params done. */
static enum proto_result fcgi_stdin_header(struct fcgi_state *st, uint16_t len)
{
    uint64_t read = u64_get(st->body_read);
    uint64_t cl = u64_get(st->content_length);
    uint64_t max_body = u64_get(st->max_body);
    if (len == 0) {
        if (st->cl_state == CL_SET && read < cl)
            return fcgi_fail(st, ERR_BODY_SHORT);
        st->action = ACT_STDIN_END;
        return PROTO_NEED_MORE;
    }
    if (st->cl_state == CL_SET && read + len > cl)
        return fcgi_fail(st, ERR_BODY_LONG);
    if (max_body && read + len > max_body)
        return fcgi_fail(st, ERR_BODY_LIMIT);
    st->action = ACT_STDIN;
    return PROTO_NEED_MORE;
}

/* ---- GET_VALUES ---- */

static void fcgi_mgmt_start(struct fcgi_state *st)
{
    memset(&st->mgmt, 0, sizeof(st->mgmt));
    st->mgmt_done = 0;
    st->reply_len = FCGI_HEADER_LEN;
}

/* Append the answer for fcgi_vars[i] to the reply, once per name. */
static void fcgi_mgmt_answer(struct fcgi_state *st, int i)
{
    if (st->mgmt_done & (1u << i))
        return;
    st->mgmt_done |= (uint8_t)(1u << i);
    unsigned value = i == 0 ? st->max_conns : i == 1 ? st->max_reqs : 0;
    char digits[10];
    uint8_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    uint8_t *out = st->reply + st->reply_len;
    *out++ = fcgi_vars[i].len;
    *out++ = n;
    memcpy(out, fcgi_vars[i].name, fcgi_vars[i].len);
    out += fcgi_vars[i].len;
    while (n)
        *out++ = (uint8_t)digits[--n];
    st->reply_len = (uint8_t)(out - st->reply);
}

/* The GET_VALUES record is complete: finish the GET_VALUES_RESULT. */
static enum proto_result fcgi_mgmt_reply(struct fcgi_state *st, struct proto_event *ev)
{
    if (st->mgmt.state != PR_NAME_LEN || st->mgmt.len_have)
        return fcgi_fail(st, ERR_MGMT_CUT);
    uint16_t len = (uint16_t)(st->reply_len - FCGI_HEADER_LEN);
    uint8_t pad = (uint8_t)(-len & 7);
    memset(st->reply + st->reply_len, 0, pad);
    put_header(st->reply, FCGI_GET_VALUES_RESULT, 0, len, pad);
    return fcgi_reply(st, (size_t)st->reply_len + pad, false, ev);
}

/* ---- the pair reader ---- */

/* Both lengths of a pair are known. */
static enum proto_result fcgi_pair_start(struct fcgi_state *st, struct fcgi_pairs *pr,
                                         struct params *p)
{
    if (pr == &st->mgmt) {
        st->mgmt_have = 0;
        st->mgmt_match = -1;
        return PROTO_NEED_MORE;
    }
    /* Check the announced sizes before reading a byte of them. */
    if (pr->name_len > st->max_field || pr->value_len > st->max_field)
        return fcgi_fail_params(st, PARAMS_FIELD_TOO_LONG);
    if ((uint64_t)st->head_bytes + pr->name_len + pr->value_len > st->max_head)
        return fcgi_fail_params(st, PARAMS_TOO_BIG);
    if (p->count >= st->max_params)
        return fcgi_fail_params(st, PARAMS_TOO_MANY);
    st->head_bytes += pr->name_len + pr->value_len;
    return PROTO_NEED_MORE;
}

static enum proto_result fcgi_pair_bytes(struct fcgi_state *st, struct fcgi_pairs *pr,
                                         struct params *p, const uint8_t *b, size_t n)
{
    if (pr == &st->mgmt) {
        if (pr->state == PR_NAME && pr->name_len <= FCGI_VAR_NAME_MAX) {
            memcpy(st->mgmt_name + st->mgmt_have, b, n);
            st->mgmt_have = (uint8_t)(st->mgmt_have + n);
        }
        return PROTO_NEED_MORE;
    }
    enum params_status s = params_push(p, b, n);
    return s == PARAMS_OK ? PROTO_NEED_MORE : fcgi_fail_params(st, s);
}

static enum proto_result fcgi_pair_field_end(struct fcgi_state *st, struct fcgi_pairs *pr,
                                             struct params *p)
{
    bool value = pr->state == PR_VALUE;
    if (pr == &st->mgmt) {
        if (!value) {
            for (int i = 0; i < 3 && pr->name_len <= FCGI_VAR_NAME_MAX; i++)
                if (fcgi_vars[i].len == pr->name_len &&
                    memcmp(fcgi_vars[i].name, st->mgmt_name, pr->name_len) == 0)
                    st->mgmt_match = (int8_t)i;
        } else if (st->mgmt_match >= 0) {
            fcgi_mgmt_answer(st, st->mgmt_match);
        }
        return PROTO_NEED_MORE;
    }
    enum params_status s = params_end_field(p);
    if (s != PARAMS_OK)
        return fcgi_fail_params(st, s);
    return value ? fcgi_param_done(st, p) : PROTO_NEED_MORE;
}

/* Close the name and value whose bytes are all in (also empty ones). */
static enum proto_result fcgi_pair_settle(struct fcgi_state *st, struct fcgi_pairs *pr,
                                          struct params *p)
{
    enum proto_result r = PROTO_NEED_MORE;
    if (pr->state == PR_NAME && pr->left == 0) {
        r = fcgi_pair_field_end(st, pr, p);
        if (r != PROTO_NEED_MORE)
            return r;
        pr->state = PR_VALUE;
        pr->left = pr->value_len;
    }
    if (pr->state == PR_VALUE && pr->left == 0) {
        r = fcgi_pair_field_end(st, pr, p);
        pr->state = PR_NAME_LEN;
    }
    return r;
}

/* Feed n content bytes of a name-value stream; all of them are used. */
static enum proto_result fcgi_pairs_feed(struct fcgi_state *st, struct fcgi_pairs *pr,
                                         struct params *p, const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n) {
        enum proto_result r;
        if (pr->state == PR_NAME_LEN || pr->state == PR_VALUE_LEN) {
            uint8_t c = b[i++];
            uint32_t v;
            if (pr->len_have == 0 && c < 0x80) {
                v = c;
            } else {
                pr->len_buf[pr->len_have++] = c;
                if (pr->len_have < 4)
                    continue;
                pr->len_have = 0;
                v = (uint32_t)(pr->len_buf[0] & 0x7f) << 24 | (uint32_t)pr->len_buf[1] << 16 |
                    (uint32_t)pr->len_buf[2] << 8 | pr->len_buf[3];
            }
            if (pr->state == PR_NAME_LEN) {
                pr->name_len = v;
                pr->state = PR_VALUE_LEN;
                continue;
            }
            pr->value_len = v;
            pr->state = PR_NAME;
            pr->left = pr->name_len;
            r = fcgi_pair_start(st, pr, p);
        } else {
            size_t k = n - i < pr->left ? n - i : pr->left;
            r = fcgi_pair_bytes(st, pr, p, b + i, k);
            i += k;
            pr->left -= (uint32_t)k;
        }
        if (r == PROTO_NEED_MORE)
            r = fcgi_pair_settle(st, pr, p);
        if (r != PROTO_NEED_MORE)
            return r;
    }
    return PROTO_NEED_MORE;
}

/* ---- the record layer ---- */

/* A record header is complete: check it and choose the action. */
static enum proto_result fcgi_on_header(struct fcgi_state *st)
{
    const uint8_t *h = st->hdr;
    if (h[0] != FCGI_VERSION_1)
        return fcgi_fail(st, ERR_VERSION);
    uint8_t type = h[1];
    uint16_t id = be16(h + 2);
    uint16_t len = be16(h + 4);
    st->rec_type = type;
    st->rec_id = id;
    st->content_left = len;
    st->pad_left = h[6];
    st->rstate = RS_CONTENT;
    st->action = ACT_SKIP;

    if (id == 0) { /* management record */
        if (type == FCGI_GET_VALUES) {
            st->action = ACT_GET_VALUES;
            fcgi_mgmt_start(st);
        } else {
            st->action = ACT_UNKNOWN_TYPE;
        }
        return PROTO_NEED_MORE;
    }
    bool mine = st->active && id == st->req_id;
    switch (type) {
    case FCGI_BEGIN_REQUEST:
        if (len != 8)
            return fcgi_fail(st, ERR_BEGIN_LENGTH);
        if (mine)
            return fcgi_fail(st, ERR_BEGIN_ACTIVE);
        st->action = st->active ? ACT_REFUSE : ACT_BEGIN;
        st->begin_have = 0;
        break;
    case FCGI_ABORT_REQUEST:
        if (mine)
            st->action = ACT_ABORT;
        break;
    case FCGI_PARAMS:
        if (!mine)
            break;
        if (st->phase != PH_PARAMS)
            return fcgi_fail(st, ERR_PARAMS_LATE);
        st->action = len ? ACT_PARAMS : ACT_PARAMS_END;
        break;
    case FCGI_STDIN:
        if (!mine)
            break;
        if (st->phase != PH_BODY)
            return fcgi_fail(st, ERR_STDIN_EARLY);
        return fcgi_stdin_header(st, len);
    case FCGI_DATA: /* FILTER role only, which we refuse */
        break;
    default: /* unknown, or only ever sent by the application */
        st->action = ACT_UNKNOWN_TYPE;
        break;
    }
    return PROTO_NEED_MORE;
}

/* n > 0 content bytes of the current record; all of them are used. */
static enum proto_result fcgi_on_content(struct fcgi_state *st, struct params *p, const uint8_t *b,
                                         size_t n, struct proto_event *ev)
{
    switch (st->action) {
    case ACT_BEGIN:
        memcpy(st->begin + st->begin_have, b, n); /* len == 8, checked */
        st->begin_have = (uint8_t)(st->begin_have + n);
        return PROTO_NEED_MORE;
    case ACT_PARAMS:
        return fcgi_pairs_feed(st, &st->params, p, b, n);
    case ACT_GET_VALUES:
        return fcgi_pairs_feed(st, &st->mgmt, p, b, n);
    case ACT_STDIN:
        st->body_read = u64_make(u64_get(st->body_read) + n);
        ev->data = b;
        ev->len = n;
        return PROTO_BODY_DATA;
    default:
        return PROTO_NEED_MORE;
    }
}

/* The current record, padding included, is consumed. */
static enum proto_result fcgi_on_record_end(struct fcgi_state *st, struct proto_event *ev)
{
    switch (st->action) {
    case ACT_BEGIN:
        return fcgi_begin(st, ev);
    case ACT_REFUSE:
        return fcgi_reply_end_request(st, FCGI_CANT_MPX_CONN, false, ev);
    case ACT_ABORT:
        st->phase = PH_ABORTED;
        return PROTO_ABORT;
    case ACT_PARAMS_END:
        if (st->params.state != PR_NAME_LEN || st->params.len_have)
            return fcgi_fail(st, ERR_PARAMS_CUT);
        st->phase = PH_BODY;
        return PROTO_PARAMS_DONE;
    case ACT_STDIN_END:
        st->phase = PH_DONE;
        return PROTO_BODY_END;
    case ACT_GET_VALUES:
        return fcgi_mgmt_reply(st, ev);
    case ACT_UNKNOWN_TYPE:
        put_header(st->reply, FCGI_UNKNOWN_TYPE, 0, 8, 0);
        memset(st->reply + FCGI_HEADER_LEN, 0, 8);
        st->reply[FCGI_HEADER_LEN] = st->rec_type;
        return fcgi_reply(st, 16, false, ev);
    default:
        return PROTO_NEED_MORE;
    }
}

/* ---- the codec ---- */

/* Records after the last STDIN record of the request (PH_DONE, at a record
 * boundary): an ABORT_REQUEST for it among the whole ones? */
static bool fcgi_gave_up(const void *vst, const uint8_t *in, size_t len)
{
    const struct fcgi_state *st = vst;
    if (st->phase != PH_DONE || !st->active || st->rstate != RS_HEADER || st->hdr_have)
        return false;
    for (size_t off = 0; off + FCGI_HEADER_LEN <= len;) {
        const uint8_t *h = in + off;
        if (h[0] != FCGI_VERSION_1)
            return false; /* the decoder reports that, in its time */
        if (h[1] == FCGI_ABORT_REQUEST && be16(h + 2) == st->req_id)
            return true;
        off += FCGI_HEADER_LEN + (size_t)be16(h + 4) + h[6];
    }
    return false;
}

static void fcgi_init(void *vst, const struct proto_limits *lim)
{
    struct fcgi_state *st = vst;
    memset(st, 0, sizeof(*st));
    st->max_head = clamp32(lim->max_head);
    st->max_params = clamp32(lim->max_params);
    st->max_field = clamp32(lim->max_field);
    st->max_conns = lim->fcgi_max_conns;
    st->max_reqs = lim->fcgi_max_reqs;
    st->max_body = u64_make(lim->max_body);
    st->phase = PH_IDLE;
    st->rstate = RS_HEADER;
    fcgi_request_reset(st);
}

/* Forget the request. Whatever is left of its records (a body the
 * application did not read) is skipped: they now belong to an inactive id. */
static void fcgi_next_request(void *vst)
{
    struct fcgi_state *st = vst;
    if (st->phase == PH_FAILED)
        return;
    fcgi_request_reset(st);
    st->phase = PH_IDLE;
    if (st->rstate != RS_HEADER) {
        switch (st->action) {
        case ACT_ABORT:
        case ACT_PARAMS:
        case ACT_PARAMS_END:
        case ACT_STDIN:
        case ACT_STDIN_END:
            st->action = ACT_SKIP;
            break;
        default:
            break;
        }
    }
}

static enum proto_result fcgi_decode(void *vst, const uint8_t *in, size_t len, struct params *p,
                                     struct proto_event *ev)
{
    struct fcgi_state *st = vst;
    *ev = (struct proto_event){0};
    switch (st->phase) {
    case PH_DONE:
        return PROTO_BODY_END;
    case PH_ABORTED:
        return PROTO_ABORT;
    case PH_FAILED:
        ev->reason = fcgi_reason(st);
        return PROTO_ERROR;
    default:
        break;
    }

    size_t off = 0;
    enum proto_result r = PROTO_NEED_MORE;
    while (r == PROTO_NEED_MORE) {
        size_t avail = len - off;
        if (st->rstate == RS_HEADER) {
            if (!avail)
                break;
            size_t n = FCGI_HEADER_LEN - st->hdr_have;
            if (n > avail)
                n = avail;
            memcpy(st->hdr + st->hdr_have, in + off, n);
            st->hdr_have = (uint8_t)(st->hdr_have + n);
            off += n;
            if (st->hdr_have == FCGI_HEADER_LEN) {
                st->hdr_have = 0;
                r = fcgi_on_header(st);
            }
        } else if (st->rstate == RS_CONTENT) {
            if (st->content_left == 0) {
                st->rstate = RS_PADDING;
                continue;
            }
            if (!avail)
                break;
            size_t n = st->content_left < avail ? st->content_left : avail;
            st->content_left = (uint16_t)(st->content_left - n);
            r = fcgi_on_content(st, p, in + off, n, ev);
            off += n;
        } else {
            if (st->pad_left == 0) {
                st->rstate = RS_HEADER;
                r = fcgi_on_record_end(st, ev);
                continue;
            }
            if (!avail)
                break;
            size_t n = st->pad_left < avail ? st->pad_left : avail;
            st->pad_left = (uint8_t)(st->pad_left - n);
            off += n;
        }
    }
    ev->consumed = off;
    if (r == PROTO_ERROR) {
        st->phase = PH_FAILED;
        ev->reason = fcgi_reason(st);
    }
    return r;
}

static int64_t fcgi_content_length(const void *vst)
{
    const struct fcgi_state *st = vst;
    return st->cl_state == CL_SET ? (int64_t)u64_get(st->content_length) : -1;
}

static bool fcgi_keep_conn(const void *vst)
{
    const struct fcgi_state *st = vst;
    return st->keep_conn;
}

/* ---- encoding ---- */

static size_t fcgi_frame(void *vst, uint8_t out[PROTO_FRAME_MAX], size_t len)
{
    const struct fcgi_state *st = vst;
    put_header(out, FCGI_STDOUT, st->req_id, (uint16_t)len, 0);
    return FCGI_HEADER_LEN;
}

static size_t fcgi_end(const void *vst, uint8_t out[PROTO_END_MAX], uint32_t app_status)
{
    const struct fcgi_state *st = vst;
    put_header(out, FCGI_STDOUT, st->req_id, 0, 0);
    put_end_request(out + FCGI_HEADER_LEN, st->req_id, app_status, FCGI_REQUEST_COMPLETE);
    return FCGI_HEADER_LEN + 16;
}

static size_t fcgi_error_reply(const void *vst, uint8_t out[PROTO_END_MAX])
{
    const struct fcgi_state *st = vst;
    if (!st->active)
        return 0;
    put_end_request(out, st->req_id, 1, FCGI_REQUEST_COMPLETE);
    return 16;
}

/* An empty STDERR record: a response may carry any number of them, so a
 * front end that already sent a request on the connection skips it; one
 * that holds the connection idle sees bytes nobody asked for and closes
 * it. The id is the last request's (nginx always uses 1). */
static size_t fcgi_goodbye(const void *vst, uint8_t out[PROTO_FRAME_MAX])
{
    const struct fcgi_state *st = vst;
    put_header(out, FCGI_STDERR, st->req_id ? st->req_id : 1, 0, 0);
    return FCGI_HEADER_LEN;
}

const struct proto_codec proto_fastcgi = {
    .name = "fastcgi",
    .state_size = sizeof(struct fcgi_state),
    .init = fcgi_init,
    .next_request = fcgi_next_request,
    .decode = fcgi_decode,
    .content_length = fcgi_content_length,
    .keep_conn = fcgi_keep_conn,
    .status_prefix = "Status: ",
    .max_frame = 65535,
    .frame = fcgi_frame,
    .end = fcgi_end,
    .error_reply = fcgi_error_reply,
    .goodbye = fcgi_goodbye,
    .gave_up = fcgi_gave_up,
};
