/*
 * http.c — the HTTP/1.1 codec (RFC 9112), for a reverse proxy in front:
 * request line and header fields into the same params the other codecs
 * give, the body by Content-Length or chunked, keep-alive and pipelining,
 * 100-continue, and the response framing (Content-Length passed through, or
 * chunked, or closed).
 *
 * Params of a request:
 *   REQUEST_METHOD, REQUEST_URI (the target as sent), PATH_INFO (its path,
 *   percent-decoded), QUERY_STRING (after '?', as sent), SERVER_PROTOCOL,
 *   CONTENT_TYPE, CONTENT_LENGTH, HTTP_* for every other field (upper case,
 *   '-' as '_'), SERVER_NAME and SERVER_PORT (if it has one) from Host. A field whose name
 *   has a '_' is dropped (HTTP_X_A would be both X-A and X_A). REMOTE_* and
 *   the listener's SERVER_* are the connection's (protocol.h: conn_params).
 *
 * Strict where a proxy and a server could read one byte stream as two
 * different requests (RFC 9112 6.1-6.3, 11.2): Content-Length with
 * Transfer-Encoding, a repeated or malformed Content-Length ("1, 1" too),
 * chunked not the last (or applied twice) transfer coding, Transfer-Encoding
 * in HTTP/1.0, obs-fold, a CR without LF or a LF without CR, bytes not
 * allowed in a name, value or the request target, whitespace before a colon,
 * a chunk size over 2^60: each is PROTO_ERROR with a reason, and the error
 * reply is a 400 (413, 414, 417, 431, 501 or 505 where those fit) with
 * Connection: close.
 *
 * Expect: 100-continue: the "100 Continue" goes out when the body is first
 * decoded, that is when the app first reads it (or --post-buffering reads
 * it) and no byte of it has arrived yet. An app that answers without reading
 * (a 401, a 413) thus never makes the client send the body; that response
 * closes the connection (the client may or may not send the body after it)
 * and its body counts as empty.
 *
 * Pure and resumable: no I/O, no logging, no allocation beyond the params
 * table; a header name is kept in the state (up to HTTP_NAME_MAX bytes)
 * until its colon, everything else goes to the params as it arrives.
 */
#include "protocol.h"
#include "reason.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longest header field name kept (a longer one is refused with 431). */
#define HTTP_NAME_MAX 192

enum http_phase {
    HTTP_HEAD,  /* request line and fields */
    HTTP_BODY,  /* Content-Length bytes */
    HTTP_CHUNK, /* chunked body: see enum http_chunk_step */
    HTTP_DONE,  /* BODY_END reported; nothing more consumed */
    HTTP_ERROR, /* ERROR reported, and again on every call */
};

/* Where the head reader is. */
enum http_step {
    S_START,      /* before the request line (empty lines are skipped) */
    S_START_LF,   /* LF of an empty line before the request line */
    S_METHOD,     /* method token up to SP */
    S_TARGET,     /* request target up to SP */
    S_VERSION,    /* "HTTP/1.x" up to CR */
    S_LINE_LF,    /* LF ending the request line or a field line */
    S_NAME_START, /* a field line, or the CR of the empty line */
    S_NAME,       /* field name up to ':' */
    S_VALUE_OWS,  /* whitespace before the value */
    S_VALUE,      /* value up to CR */
    S_END_LF,     /* LF of the empty line ending the head */
};

/* Where the chunked body reader is. */
enum http_chunk_step {
    C_SIZE,         /* hex digits */
    C_SIZE_WS,      /* BWS after them: then ';' */
    C_EXT,          /* chunk extensions after a ';', up to CR */
    C_SIZE_LF,      /* LF after the size line */
    C_DATA,         /* chunk bytes */
    C_DATA_CR,      /* CR after the chunk bytes */
    C_DATA_LF,      /* LF after them */
    C_TRAILER,      /* start of a trailer line, or the CR of the last line */
    C_TRAILER_NAME, /* a trailer field's name, up to ':' */
    C_TRAILER_IN,   /* a trailer field's value, up to CR */
    C_TRAILER_LF,   /* LF ending a trailer line */
    C_END_LF,       /* LF of the last line */
};

/* The fields the codec reads (others only go to the params). */
enum http_field {
    F_OTHER,
    F_DROPPED, /* a '_' in the name: not a param */
    F_CONTENT_LENGTH,
    F_CONTENT_TYPE,
    F_TRANSFER_ENCODING,
    F_CONNECTION,
    F_EXPECT,
    F_HOST,
};

struct http_state {
    const struct proto_limits *lim;
    uint8_t phase, step, field, chunk_step;
    uint8_t minor; /* HTTP/1.MINOR: 0 or 1 */
    bool have_cl, have_te, te_chunked_last, te_other, have_host;
    bool conn_close, conn_keep_alive, is_head;
    bool expect, continue_sent;
    bool resp_started, resp_chunked, resp_chunk_open, resp_close;
    uint16_t err_status; /* the error reply's status */
    uint16_t name_len;
    uint8_t chunk_digits;
    size_t head_bytes;    /* head bytes consumed (against max_head) */
    size_t value_ws;      /* trailing whitespace pushed into the value */
    size_t trailer_bytes; /* chunk extensions and trailers (max_head) */
    uint64_t content_length, body_left, body_total, chunk_size;
    char name[HTTP_NAME_MAX];
    char reason[128];
};

/* ---- byte classes ---- */

/* RFC 9110 5.6.2 tchar. */
static bool http_tchar(uint8_t c)
{
    static const uint32_t tchar_bits[4] = {
        0x00000000, 0x03ff6cfa, /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
        0xc7fffffe,             /* 0x40-0x5f: A-Z ^ _ */
        0x57ffffff,             /* 0x60-0x7f: ` a-z | ~ */
    };
    return c < 128 && (tchar_bits[c >> 5] >> (c & 31) & 1);
}

/* field-vchar, SP, HTAB (RFC 9110 5.5). */
static bool http_value_byte(uint8_t c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
}

/* A request-target byte: visible ASCII but '#', and obs-text (which nginx
 * passes on from its clients as received); no SP, CTL or DEL. */
static bool http_target_byte(uint8_t c)
{
    return c > 0x20 && c != 0x7f && c != '#';
}

static int http_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- errors ---- */

static enum proto_result http_fail(struct http_state *st, struct proto_event *ev, size_t consumed,
                                   int status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum proto_result http_fail(struct http_state *st, struct proto_event *ev, size_t consumed,
                                   int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
    va_end(ap);
    st->phase = HTTP_ERROR;
    st->err_status = (uint16_t)status;
    ev->consumed = consumed;
    ev->reason = st->reason;
    return PROTO_ERROR;
}

static enum proto_result http_params_fail(struct http_state *st, struct proto_event *ev,
                                          size_t consumed, enum params_status s, bool target)
{
    return http_fail(st, ev, consumed, target ? 414 : 431, "HTTP %s: %s",
                     target ? "request target" : "request head", params_strerror(s));
}

/* ---- life ---- */

static void http_init(void *vst, const struct proto_limits *lim)
{
    struct http_state *st = vst;
    memset(st, 0, sizeof(*st));
    st->lim = lim;
}

static void http_next_request(void *vst)
{
    struct http_state *st = vst;
    http_init(st, st->lim);
}

/* ---- the request line ---- */

/* Push the pair NAME = VALUE[0, len). */
static enum params_status http_pair(struct params *p, const char *name, const char *value,
                                    size_t len)
{
    enum params_status s;
    if ((s = params_push(p, name, strlen(name))) != PARAMS_OK ||
        (s = params_end_field(p)) != PARAMS_OK || (s = params_push(p, value, len)) != PARAMS_OK)
        return s;
    return params_end_field(p);
}

/* REQUEST_URI is complete (the last pair): add PATH_INFO (its path,
 * percent-decoded) and QUERY_STRING. The target is read back from the
 * store by offset, through a small buffer, since pushing may move the
 * store. Returns PROTO_NEED_MORE or PROTO_ERROR. */
static enum proto_result http_split_target(struct http_state *st, struct params *p,
                                           struct proto_event *ev, size_t consumed)
{
    const struct params_entry *e = params_last(p);
    size_t off = e->value_off, len = e->value_len, path = 0, end;
    const char *t = p->store + off;
    char q[24];
    enum params_status s;
    bool asterisk = len == 1 && t[0] == '*', absolute = !asterisk && t[0] != '/';

    if (asterisk) { /* asterisk-form (OPTIONS *): no path */
        path = len;
    } else if (absolute) {
        /* absolute-form: "http://" or "https://", authority, then the path */
        size_t i = len >= 7 && strncasecmp(t, "http://", 7) == 0    ? 4
                   : len >= 8 && strncasecmp(t, "https://", 8) == 0 ? 5
                                                                    : 0;
        if (i == 0)
            return http_fail(st, ev, consumed, 400,
                             "HTTP request target \"%s\" is not a path or an absolute URI",
                             reason_quote(q, t, len));
        const char *slash = memchr(t + i + 3, '/', len - i - 3);
        const char *qm = memchr(t + i + 3, '?', len - i - 3);
        path = slash && (!qm || slash < qm) ? (size_t)(slash - t) : qm ? (size_t)(qm - t) : len;
        /* RFC 3986 authority: unreserved, %, sub-delims, ':', '@', '[', ']' */
        for (size_t k = i + 3; k < path; k++)
            if (!isalnum((unsigned char)t[k]) && !strchr("-._~%!$&'()*+,;=:@[]", t[k]))
                return http_fail(st, ev, consumed, 400,
                                 "HTTP request target \"%s\" has a bad authority",
                                 reason_quote(q, t, len));
        if (path == i + 3)
            return http_fail(st, ev, consumed, 400,
                             "HTTP request target \"%s\" has a bad authority",
                             reason_quote(q, t, len));
    }
    const char *qm = memchr(t + path, '?', len - path);
    end = qm ? (size_t)(qm - t) : len;

    if ((s = params_push(p, "PATH_INFO", 9)) != PARAMS_OK || (s = params_end_field(p)) != PARAMS_OK)
        return http_params_fail(st, ev, consumed, s, true);
    if (path == end && absolute) {
        if ((s = params_push(p, "/", 1)) != PARAMS_OK) /* "http://host" is "/" */
            return http_params_fail(st, ev, consumed, s, true);
    }
    char out[256];
    size_t n = 0;
    for (size_t i = path; i < end;) {
        const char *u = p->store + off; /* again: a push may have moved it */
        char c = u[i];
        if (c == '%') {
            int hi = i + 2 < end ? http_hex((uint8_t)u[i + 1]) : -1;
            int lo = hi >= 0 ? http_hex((uint8_t)u[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return http_fail(st, ev, consumed, 400,
                                 "HTTP request target has a bad %%-escape (or %%00) at byte %zu",
                                 i);
            c = (char)(hi << 4 | lo);
            i += 3;
        } else {
            i++;
        }
        out[n++] = c;
        if (n == sizeof(out) || i == end) {
            if ((s = params_push(p, out, n)) != PARAMS_OK)
                return http_params_fail(st, ev, consumed, s, true);
            n = 0;
        }
    }
    if ((s = params_end_field(p)) != PARAMS_OK)
        return http_params_fail(st, ev, consumed, s, true);
    /* QUERY_STRING: copied the same way. */
    if ((s = params_push(p, "QUERY_STRING", 12)) != PARAMS_OK ||
        (s = params_end_field(p)) != PARAMS_OK)
        return http_params_fail(st, ev, consumed, s, true);
    for (size_t i = end + (qm ? 1 : 0); i < len;) {
        size_t k = len - i < sizeof(out) ? len - i : sizeof(out);
        memcpy(out, p->store + off + i, k);
        if ((s = params_push(p, out, k)) != PARAMS_OK)
            return http_params_fail(st, ev, consumed, s, true);
        i += k;
    }
    if ((s = params_end_field(p)) != PARAMS_OK)
        return http_params_fail(st, ev, consumed, s, true);
    return PROTO_NEED_MORE;
}

/* The version (in st->name, name_len bytes) before the CR. */
static enum proto_result http_version(struct http_state *st, struct params *p,
                                      struct proto_event *ev, size_t consumed)
{
    const char *v = st->name;
    char q[24];
    enum params_status s;
    if (st->name_len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
        v[6] != '.' || v[7] < '0' || v[7] > '9')
        return http_fail(st, ev, consumed, 400, "HTTP version \"%s\" is malformed",
                         reason_quote(q, v, st->name_len));
    if (v[5] != '1' || v[7] > '1')
        return http_fail(st, ev, consumed, 505, "HTTP version \"%s\" is not supported",
                         reason_quote(q, v, st->name_len));
    st->minor = (uint8_t)(v[7] - '0');
    if ((s = http_pair(p, "SERVER_PROTOCOL", v, 8)) != PARAMS_OK)
        return http_params_fail(st, ev, consumed, s, false);
    return PROTO_NEED_MORE;
}

/* ---- field names and values ---- */

/* The name in st->name is complete: which field, and push its param name. */
static enum proto_result http_name_done(struct http_state *st, struct params *p,
                                        struct proto_event *ev, size_t consumed)
{
    static const struct {
        const char *name;
        uint8_t field;
    } known[] = {
        {"content-length", F_CONTENT_LENGTH},
        {"content-type", F_CONTENT_TYPE},
        {"transfer-encoding", F_TRANSFER_ENCODING},
        {"connection", F_CONNECTION},
        {"expect", F_EXPECT},
        {"host", F_HOST},
    };
    size_t n = st->name_len;
    enum params_status s;
    st->field = F_OTHER;
    if (memchr(st->name, '_', n)) {
        st->field = F_DROPPED;
        return PROTO_NEED_MORE;
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i].name) == n && strncasecmp(known[i].name, st->name, n) == 0)
            st->field = known[i].field;
    if (st->field == F_CONTENT_LENGTH || st->field == F_CONTENT_TYPE) {
        const char *pn = st->field == F_CONTENT_LENGTH ? "CONTENT_LENGTH" : "CONTENT_TYPE";
        if (st->field == F_CONTENT_LENGTH && st->have_cl)
            return http_fail(st, ev, consumed, 400, "HTTP request has two Content-Length fields");
        s = params_push(p, pn, strlen(pn));
    } else {
        char up[HTTP_NAME_MAX + 5];
        memcpy(up, "HTTP_", 5);
        for (size_t i = 0; i < n; i++) {
            char c = st->name[i];
            up[5 + i] = c == '-' ? '_' : c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
        }
        s = params_push(p, up, n + 5);
    }
    if (s == PARAMS_OK)
        s = params_end_field(p);
    if (s != PARAMS_OK)
        return http_params_fail(st, ev, consumed, s, false);
    return PROTO_NEED_MORE;
}

/* Each comma-separated element of V (LEN bytes) in turn: *I is where the
 * scan is; returns false at the end; the element (OWS trimmed) in *EL and *ELEN,
 * possibly empty. */
static bool http_list_next(const char *v, size_t len, size_t *i, const char **el, size_t *elen)
{
    if (*i > len)
        return false;
    size_t a = *i, b;
    const char *comma = memchr(v + a, ',', len - a);
    b = comma ? (size_t)(comma - v) : len;
    *i = b + 1;
    while (a < b && (v[a] == ' ' || v[a] == '\t'))
        a++;
    size_t z = b;
    while (z > a && (v[z - 1] == ' ' || v[z - 1] == '\t'))
        z--;
    *el = v + a;
    *elen = z - a;
    return true;
}

static bool http_token_is(const char *t, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(t, word, n) == 0;
}

/* A field line is complete (its value, trimmed, is the last pair unless
 * the field is dropped): check the fields the codec reads. */
static enum proto_result http_value_done(struct http_state *st, struct params *p,
                                         struct proto_event *ev, size_t consumed)
{
    if (st->field == F_DROPPED || st->field == F_OTHER || st->field == F_CONTENT_TYPE)
        return PROTO_NEED_MORE;
    const struct params_entry *e = params_last(p);
    const char *v = params_value(p, e);
    size_t len = e->value_len, i = 0, n;
    const char *el;
    char q[24];
    switch (st->field) {
    case F_CONTENT_LENGTH:
        st->have_cl = true;
        if (params_parse_length(v, len, &st->content_length) != 0)
            return http_fail(st, ev, consumed, 400,
                             "HTTP Content-Length \"%s\" is not a valid length",
                             reason_quote(q, v, len));
        if (st->lim->max_body && st->content_length > st->lim->max_body)
            return http_fail(st, ev, consumed, 413,
                             "HTTP Content-Length %" PRIu64 " is over the body limit %" PRIu64,
                             st->content_length, st->lim->max_body);
        break;
    case F_TRANSFER_ENCODING:
        st->have_te = true;
        while (http_list_next(v, len, &i, &el, &n)) {
            /* An empty element is allowed in lists (RFC 9110 5.6.1), but
             * a proxy that reads ",chunked" otherwise than this codec could
             * frame the body otherwise: refused. */
            if (n == 0)
                return http_fail(st, ev, consumed, 400,
                                 "HTTP Transfer-Encoding \"%s\" has an empty element",
                                 reason_quote(q, v, len));
            for (size_t k = 0; k < n; k++)
                if (!http_tchar((uint8_t)el[k]))
                    return http_fail(st, ev, consumed, 400,
                                     "HTTP Transfer-Encoding \"%s\" is malformed",
                                     reason_quote(q, v, len));
            if (st->te_chunked_last)
                return http_fail(st, ev, consumed, 400,
                                 "HTTP Transfer-Encoding has a coding after chunked");
            if (http_token_is(el, n, "chunked"))
                st->te_chunked_last = true;
            else
                st->te_other = true;
        }
        break;
    case F_CONNECTION:
        while (http_list_next(v, len, &i, &el, &n)) {
            if (http_token_is(el, n, "close"))
                st->conn_close = true;
            else if (http_token_is(el, n, "keep-alive"))
                st->conn_keep_alive = true;
        }
        break;
    case F_EXPECT:
        if (!http_token_is(v, len, "100-continue"))
            return http_fail(st, ev, consumed, 417, "HTTP Expect \"%s\" is not supported",
                             reason_quote(q, v, len));
        st->expect = true;
        break;
    case F_HOST:
        if (st->have_host)
            return http_fail(st, ev, consumed, 400, "HTTP request has two Host fields");
        st->have_host = true;
        for (size_t k = 0; k < len; k++)
            if (!http_tchar((uint8_t)v[k]) && !strchr("[]:;=,()", v[k]))
                return http_fail(st, ev, consumed, 400, "HTTP Host \"%s\" is malformed",
                                 reason_quote(q, v, len));
        break;
    default:
        break;
    }
    return PROTO_NEED_MORE;
}

/* The head is complete: decide the body's framing, add SERVER_NAME and
 * SERVER_PORT from Host. */
static enum proto_result http_head_done(struct http_state *st, struct params *p,
                                        struct proto_event *ev, size_t consumed)
{
    enum params_status s;
    if (st->minor >= 1 && !st->have_host)
        return http_fail(st, ev, consumed, 400, "HTTP/1.1 request has no Host field");
    if (st->have_te) {
        if (st->minor == 0)
            return http_fail(st, ev, consumed, 400, "HTTP/1.0 request has Transfer-Encoding");
        if (st->have_cl)
            return http_fail(st, ev, consumed, 400,
                             "HTTP request has both Content-Length and Transfer-Encoding");
        if (!st->te_chunked_last)
            return http_fail(st, ev, consumed, 400,
                             "HTTP Transfer-Encoding does not end with chunked");
        if (st->te_other)
            return http_fail(st, ev, consumed, 501,
                             "HTTP Transfer-Encoding other than chunked is not supported");
    }
    if (st->have_host) {
        size_t hl;
        const char *h = params_getn(p, "HTTP_HOST", 9, &hl);
        char host[256];
        if (hl >= sizeof(host))
            return http_fail(st, ev, consumed, 400, "HTTP Host is over 255 bytes");
        memcpy(host, h, hl); /* pushing below may move the store */
        const char *colon = memrchr(host, ':', hl);
        const char *bracket = memrchr(host, ']', hl);
        size_t nl = colon && (!bracket || colon > bracket) ? (size_t)(colon - host) : hl;
        if ((s = http_pair(p, "SERVER_NAME", host, nl)) != PARAMS_OK ||
            (nl < hl && (s = http_pair(p, "SERVER_PORT", host + nl + 1, hl - nl - 1)) != PARAMS_OK))
            return http_params_fail(st, ev, consumed, s, false);
    }
    const char *m = params_getn(p, "REQUEST_METHOD", 14, NULL);
    st->is_head = m && strcmp(m, "HEAD") == 0;
    if (st->minor == 0)
        st->expect = false; /* RFC 9110 10.1.1: ignored from HTTP/1.0 */
    if (st->have_te) {
        st->phase = HTTP_CHUNK;
        st->chunk_step = C_SIZE;
    } else {
        st->phase = HTTP_BODY;
        st->body_left = st->content_length;
        if (!st->body_left)
            st->expect = false;
    }
    ev->consumed = consumed;
    return PROTO_PARAMS_DONE;
}

/* ---- the head ---- */

static enum proto_result http_head(struct http_state *st, const uint8_t *in, size_t len,
                                   struct params *p, struct proto_event *ev)
{
    size_t i = 0;
    enum params_status s;
    enum proto_result r;
    /* Head bytes beyond max_head: checked on what this call may consume. */
    size_t room = st->lim->max_head > st->head_bytes ? st->lim->max_head - st->head_bytes : 0;
    if (len > room + 1)
        len = room + 1;

    while (i < len) {
        uint8_t c = in[i];
        switch (st->step) {
        case S_START:
            i++;
            if (c == '\r') {
                st->step = S_START_LF;
            } else if (http_tchar(c)) {
                if ((s = params_push(p, "REQUEST_METHOD", 14)) != PARAMS_OK ||
                    (s = params_end_field(p)) != PARAMS_OK || (s = params_push(p, &c, 1)))
                    return http_params_fail(st, ev, i, s, false);
                st->step = S_METHOD;
            } else {
                return http_fail(st, ev, i, 400, "HTTP request starts with a bad byte 0x%02x", c);
            }
            break;
        case S_START_LF:
            i++;
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP CR without LF before the request line");
            st->step = S_START;
            break;
        case S_METHOD: {
            size_t a = i;
            while (i < len && http_tchar(in[i]))
                i++;
            if ((s = params_push(p, in + a, i - a)) != PARAMS_OK)
                return http_params_fail(st, ev, i, s, false);
            if (i == len)
                break;
            if (in[i++] != ' ')
                return http_fail(st, ev, i, 400, "HTTP method has a bad byte 0x%02x", in[i - 1]);
            if ((s = params_end_field(p)) != PARAMS_OK || (s = params_push(p, "REQUEST_URI", 11)) ||
                (s = params_end_field(p)))
                return http_params_fail(st, ev, i, s, false);
            st->step = S_TARGET;
            st->name_len = 0; /* target bytes so far, capped: empty or not */
            break;
        }
        case S_TARGET: {
            size_t a = i;
            while (i < len && http_target_byte(in[i]))
                i++;
            if ((s = params_push(p, in + a, i - a)) != PARAMS_OK)
                return http_params_fail(st, ev, i, s, true);
            if (i > a)
                st->name_len = 1;
            if (i == len)
                break;
            if (in[i++] != ' ' || !st->name_len)
                return http_fail(st, ev, i, 400, "HTTP request target has a bad byte 0x%02x",
                                 in[i - 1]);
            if ((s = params_end_field(p)) != PARAMS_OK)
                return http_params_fail(st, ev, i, s, true);
            if ((r = http_split_target(st, p, ev, i)) != PROTO_NEED_MORE)
                return r;
            st->step = S_VERSION;
            st->name_len = 0;
            break;
        }
        case S_VERSION:
            i++;
            if (c == '\r') {
                if ((r = http_version(st, p, ev, i)) != PROTO_NEED_MORE)
                    return r;
                st->step = S_LINE_LF;
            } else if (st->name_len < 8) {
                st->name[st->name_len++] = (char)c;
            } else {
                return http_fail(st, ev, i, 400, "HTTP version is malformed (or a LF without CR)");
            }
            break;
        case S_LINE_LF:
            i++;
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP CR without LF in the request head");
            st->step = S_NAME_START;
            break;
        case S_NAME_START:
            if (c == '\r') {
                i++;
                st->step = S_END_LF;
                break;
            }
            if (c == ' ' || c == '\t')
                return http_fail(st, ev, i + 1, 400,
                                 "HTTP field line starts with whitespace (obs-fold)");
            st->name_len = 0;
            st->step = S_NAME;
            /* fall through */
        case S_NAME: {
            size_t a = i;
            while (i < len && http_tchar(in[i]))
                i++;
            if (st->name_len + (i - a) > HTTP_NAME_MAX)
                return http_fail(st, ev, i, 431, "HTTP field name is over %d bytes", HTTP_NAME_MAX);
            memcpy(st->name + st->name_len, in + a, i - a);
            st->name_len = (uint16_t)(st->name_len + (i - a));
            if (i == len)
                break;
            c = in[i++];
            if (c == ' ' || c == '\t')
                return http_fail(st, ev, i, 400, "HTTP whitespace before the colon of a field");
            if (c != ':' || st->name_len == 0)
                return http_fail(st, ev, i, 400, "HTTP field name has a bad byte 0x%02x", c);
            if ((r = http_name_done(st, p, ev, i)) != PROTO_NEED_MORE)
                return r;
            st->step = S_VALUE_OWS;
            st->value_ws = 0;
            break;
        }
        case S_VALUE_OWS:
            if (c == ' ' || c == '\t') {
                i++;
                break;
            }
            st->step = S_VALUE;
            /* fall through */
        case S_VALUE: {
            size_t a = i;
            while (i < len && http_value_byte(in[i]))
                i++;
            if (i > a) {
                if (st->field != F_DROPPED && (s = params_push(p, in + a, i - a)) != PARAMS_OK)
                    return http_params_fail(st, ev, i, s, false);
                size_t k = i;
                while (k > a && (in[k - 1] == ' ' || in[k - 1] == '\t'))
                    k--;
                st->value_ws = k > a ? i - k : st->value_ws + (i - a);
            }
            if (i == len)
                break;
            c = in[i++];
            if (c != '\r')
                return http_fail(st, ev, i, 400, "HTTP field value has a bad byte 0x%02x%s", c,
                                 c == '\n' ? " (LF without CR)" : "");
            if (st->field != F_DROPPED) {
                params_unpush(p, st->value_ws);
                if ((s = params_end_field(p)) != PARAMS_OK)
                    return http_params_fail(st, ev, i, s, false);
                if ((r = http_value_done(st, p, ev, i)) != PROTO_NEED_MORE)
                    return r;
            }
            st->step = S_LINE_LF;
            break;
        }
        case S_END_LF:
            i++;
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP CR without LF at the end of the head");
            st->head_bytes += i;
            return http_head_done(st, p, ev, i);
        }
    }
    st->head_bytes += i;
    if (st->head_bytes > st->lim->max_head)
        return http_fail(st, ev, i, 431, "HTTP request head is over the limit of %zu bytes",
                         st->lim->max_head);
    ev->consumed = i;
    return PROTO_NEED_MORE;
}

/* ---- the body ---- */

static enum proto_result http_body_data(struct http_state *st, const uint8_t *in, size_t len,
                                        uint64_t *left, struct proto_event *ev)
{
    ev->data = in;
    ev->len = len < *left ? len : (size_t)*left;
    ev->consumed = ev->len;
    *left -= ev->len;
    st->body_total += ev->len;
    return PROTO_BODY_DATA;
}

static enum proto_result http_chunked(struct http_state *st, const uint8_t *in, size_t len,
                                      struct proto_event *ev)
{
    size_t i = 0;
    int h;
    for (;;) {
        if (st->chunk_step == C_DATA) {
            if (st->chunk_size == 0) {
                st->chunk_step = C_DATA_CR;
                continue;
            }
            if (i == len)
                break;
            enum proto_result r = http_body_data(st, in + i, len - i, &st->chunk_size, ev);
            ev->consumed += i;
            return r;
        }
        if (i == len)
            break;
        uint8_t c = in[i++];
        switch (st->chunk_step) {
        case C_SIZE:
            h = http_hex(c);
            if (h >= 0) {
                if (++st->chunk_digits > 15)
                    return http_fail(st, ev, i, 400, "HTTP chunk size is over 2^60");
                st->chunk_size = st->chunk_size << 4 | (uint64_t)h;
                break;
            }
            if (st->chunk_digits == 0)
                return http_fail(st, ev, i, 400, "HTTP chunk size has a bad byte 0x%02x", c);
            if (c == '\r') {
                st->chunk_step = C_SIZE_LF;
                break;
            }
            /* BWS or ';' */
            /* fall through */
        case C_SIZE_WS:
            /* RFC 9112 7.1.1: chunk-size *( BWS ";" ...) CRLF: whitespace
             * only before a ';'. */
            if (c == ';') {
                st->chunk_step = C_EXT;
            } else if (c == ' ' || c == '\t') {
                st->chunk_step = C_SIZE_WS;
            } else {
                return http_fail(st, ev, i, 400, "HTTP chunk size has a bad byte 0x%02x", c);
            }
            break;
        case C_EXT:
        case C_TRAILER_IN:
            if (++st->trailer_bytes > st->lim->max_head)
                return http_fail(st, ev, i, 431,
                                 "HTTP chunk extensions and trailers are over %zu bytes",
                                 st->lim->max_head);
            if (c == '\r')
                st->chunk_step = st->chunk_step == C_EXT ? C_SIZE_LF : C_TRAILER_LF;
            else if (!http_value_byte(c))
                return http_fail(st, ev, i, 400, "HTTP chunk %s has a bad byte 0x%02x",
                                 st->chunk_step == C_EXT ? "extension" : "trailer", c);
            break;
        case C_SIZE_LF:
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP chunk size line has CR without LF");
            if (st->chunk_size == 0) {
                st->chunk_step = C_TRAILER;
                break;
            }
            if (st->lim->max_body && st->body_total + st->chunk_size > st->lim->max_body)
                return http_fail(st, ev, i, 413,
                                 "HTTP chunked body is over the body limit %" PRIu64,
                                 st->lim->max_body);
            st->chunk_step = C_DATA;
            break;
        case C_DATA_CR:
            if (c != '\r')
                return http_fail(st, ev, i, 400, "HTTP chunk is not followed by CRLF");
            st->chunk_step = C_DATA_LF;
            break;
        case C_DATA_LF:
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP chunk is not followed by CRLF");
            st->chunk_step = C_SIZE;
            st->chunk_digits = 0;
            st->chunk_size = 0;
            break;
        case C_TRAILER:
            if (c == '\r') {
                st->chunk_step = C_END_LF;
                break;
            }
            /* a field line, its name as in the head */
            /* fall through */
        case C_TRAILER_NAME:
            if (++st->trailer_bytes > st->lim->max_head)
                return http_fail(st, ev, i, 431,
                                 "HTTP chunk extensions and trailers are over %zu bytes",
                                 st->lim->max_head);
            if (c == ':' && st->chunk_step == C_TRAILER_NAME)
                st->chunk_step = C_TRAILER_IN;
            else if (http_tchar(c))
                st->chunk_step = C_TRAILER_NAME;
            else
                return http_fail(st, ev, i, 400, "HTTP chunk trailer has a bad byte 0x%02x", c);
            break;
        case C_TRAILER_LF:
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP chunk trailer has CR without LF");
            st->chunk_step = C_TRAILER;
            break;
        case C_END_LF:
            if (c != '\n')
                return http_fail(st, ev, i, 400, "HTTP chunked body ends with CR without LF");
            st->phase = HTTP_DONE;
            ev->consumed = i;
            return PROTO_BODY_END;
        }
    }
    ev->consumed = i;
    return PROTO_NEED_MORE;
}

static enum proto_result http_decode(void *vst, const uint8_t *in, size_t len, struct params *p,
                                     struct proto_event *ev)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct http_state *st = vst;
    *ev = (struct proto_event){0};
    if ((st->phase == HTTP_BODY || st->phase == HTTP_CHUNK) && st->expect && !st->continue_sent) {
        st->continue_sent = true;
        if (len == 0 && !st->resp_started) { /* no byte of the body is here */
            ev->data = (const uint8_t *)cont;
            ev->len = sizeof(cont) - 1;
            return PROTO_REPLY;
        }
    }
    switch (st->phase) {
    case HTTP_HEAD:
        return http_head(st, in, len, p, ev);
    case HTTP_BODY:
        if (st->body_left == 0) {
            st->phase = HTTP_DONE;
            return PROTO_BODY_END;
        }
        if (len == 0)
            return PROTO_NEED_MORE;
        return http_body_data(st, in, len, &st->body_left, ev);
    case HTTP_CHUNK:
        return http_chunked(st, in, len, ev);
    case HTTP_DONE:
        return PROTO_BODY_END;
    default:
        ev->reason = st->reason;
        return PROTO_ERROR;
    }
}

static int64_t http_content_length(const void *vst)
{
    const struct http_state *st = vst;
    return st->have_te ? -1 : (int64_t)st->content_length;
}

static bool http_keep_conn(const void *vst)
{
    const struct http_state *st = vst;
    if (st->resp_close || st->conn_close)
        return false;
    return st->minor >= 1 || st->conn_keep_alive;
}

/* ---- encoding ---- */

static size_t http_head_hook(void *vst, int status, int64_t length, bool closing,
                             char out[PROTO_HEAD_MAX], bool *framed)
{
    struct http_state *st = vst;
    size_t n = 0;
    bool no_body = st->is_head || status == 204 || status == 304 || status < 200;
    st->resp_started = true;
    st->resp_chunked = false;
    if (st->expect && !st->continue_sent) {
        /* Answered before the body was asked for: the client may send it or
         * not; close after the response, and read no body. */
        st->resp_close = true;
        st->phase = HTTP_DONE;
    }
    if (closing || length == -2)
        st->resp_close = true;
    if (length == -1 && !no_body) {
        if (st->minor >= 1) {
            st->resp_chunked = true;
            static const char te[] = "Transfer-Encoding: chunked\r\n";
            memcpy(out, te, sizeof(te) - 1);
            n = sizeof(te) - 1;
        } else {
            st->resp_close = true; /* the body ends with the connection */
        }
    }
    if (!http_keep_conn(st)) {
        static const char cl[] = "Connection: close\r\n";
        memcpy(out + n, cl, sizeof(cl) - 1);
        n += sizeof(cl) - 1;
    } else if (st->minor == 0) {
        static const char ka[] = "Connection: keep-alive\r\n";
        memcpy(out + n, ka, sizeof(ka) - 1);
        n += sizeof(ka) - 1;
    }
    *framed = st->resp_chunked;
    return n;
}

static size_t http_frame(void *vst, uint8_t out[PROTO_FRAME_MAX], size_t len)
{
    struct http_state *st = vst;
    if (!st->resp_chunked)
        return 0;
    size_t n = 0;
    if (st->resp_chunk_open) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    n += (size_t)snprintf((char *)out + n, PROTO_FRAME_MAX - n, "%zx\r\n", len);
    st->resp_chunk_open = true;
    return n;
}

static size_t http_end(const void *vst, uint8_t out[PROTO_END_MAX], uint32_t app_status)
{
    const struct http_state *st = vst;
    (void)app_status;
    if (!st->resp_chunked)
        return 0;
    size_t n = 0;
    if (st->resp_chunk_open) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    memcpy(out + n, "0\r\n\r\n", 5);
    return n + 5;
}

static size_t http_error_reply(const void *vst, uint8_t out[PROTO_END_MAX])
{
    const struct http_state *st = vst;
    if (st->resp_started)
        return 0;
    int status = st->err_status ? st->err_status : 400;
    const char *text = status == 413   ? "Content Too Large"
                       : status == 414 ? "URI Too Long"
                       : status == 417 ? "Expectation Failed"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 501 ? "Not Implemented"
                       : status == 505 ? "HTTP Version Not Supported"
                                       : "Bad Request";
    int n =
        snprintf((char *)out, PROTO_END_MAX,
                 "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, text);
    return n > 0 && n < PROTO_END_MAX ? (size_t)n : 0;
}

const struct proto_codec proto_http = {
    .name = "http",
    .state_size = sizeof(struct http_state),
    .init = http_init,
    .next_request = http_next_request,
    .decode = http_decode,
    .content_length = http_content_length,
    .keep_conn = http_keep_conn,
    .conn_params = true,
    .status_prefix = "HTTP/1.1 ",
    .max_frame = SIZE_MAX,
    .frame = http_frame,
    .head = http_head_hook,
    .end = http_end,
    .error_reply = http_error_reply,
    .goodbye = NULL,
};
