/*
 * fuzz_http.c — libFuzzer target for the HTTP/1.1 codec (protocols/http.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     protocols/params.c protocols/http.c tests/fuzz/fuzz_http.c -o fuzz_http
 *   ./fuzz_http tests/fuzz/corpus/http
 *
 * The input is the byte stream from the front end, decoded under three sets
 * of limits (the defaults, small ones, ones taken from the last four input
 * bytes) and, for each, cut several ways (all at once, one byte per read, a
 * fixed piece size, one split point): every cut must give the same params,
 * body bytes and outcome, every event must keep the contract of protocol.h,
 * and after each request the response encoders must stay within their
 * maxima. Up to three pipelined requests are decoded (next_request).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/protocol.h"

#define FUZZ_SMALL_HEAD 96
#define FUZZ_SMALL_PARAMS 8
#define FUZZ_SMALL_FIELD 24
#include "fuzz_splits.h"

#define CODEC proto_http
#define MAX_REQUESTS 3

static void check_params(const struct params *p, const struct proto_limits *lim)
{
    size_t total = 0;
    CHECK(p->count <= lim->max_params);
    for (size_t i = 0; i < p->count; i++) {
        const struct params_entry *e = &p->entries[i];
        const char *name = params_name(p, e);
        CHECK(e->name_len <= lim->max_field && e->value_len <= lim->max_field);
        CHECK(name[e->name_len] == '\0' && params_value(p, e)[e->value_len] == '\0');
        CHECK(strlen(params_value(p, e)) == e->value_len); /* no NUL inside */
        /* No HTTP_CONTENT_*, no name with a '_' from the wire but HTTP_'s. */
        CHECK(strcmp(name, "HTTP_CONTENT_LENGTH") != 0 && strcmp(name, "HTTP_CONTENT_TYPE") != 0);
        total += e->name_len + e->value_len;
    }
    CHECK(total <= lim->max_head);
}

/* The body length the params say, read independently of the codec. */
static int64_t expected_length(const struct params *p)
{
    size_t n;
    const char *v = params_getn(p, "CONTENT_LENGTH", 14, &n);
    if (params_get(p, "HTTP_TRANSFER_ENCODING")) {
        CHECK(!v);
        return -1;
    }
    if (!v)
        return 0;
    CHECK(n > 0 && strspn(v, "0123456789") == n);
    return (int64_t)strtoull(v, NULL, 10);
}

/* The response encoders after a request, with a status and a length from
 * the input. */
static void check_encoders(void *state, const uint8_t *in, size_t len)
{
    uint8_t sel = len ? in[len / 2] : 0;
    static const int statuses[] = {200, 204, 304, 404, 101, 500, 206, 301};
    int64_t length = sel & 8 ? -1 : sel & 16 ? -2 : (int64_t)sel;
    char head[PROTO_HEAD_MAX];
    bool framed = false;
    size_t n = CODEC.head(state, statuses[sel & 7], length, sel & 32, head, &framed);
    CHECK(n <= PROTO_HEAD_MAX);
    uint8_t fr[PROTO_FRAME_MAX], end[PROTO_END_MAX];
    size_t sizes[] = {1, 0x10, 65535, (size_t)1 << 40, SIZE_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t f = CODEC.frame(state, fr, sizes[i]);
        CHECK(f <= PROTO_FRAME_MAX && (f == 0) == !framed);
    }
    CHECK(CODEC.end(state, end, 0) <= PROTO_END_MAX);
    CHECK(CODEC.error_reply(state, end) == 0); /* the head is out */
}

static void run(const struct proto_limits *lim, const uint8_t *in, size_t len, size_t first,
                size_t step, struct outcome *o)
{
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    CHECK(CODEC.state_size <= sizeof(state));
    params_init(&p, lim->max_head, lim->max_params, lim->max_field);
    CODEC.init(state, lim);
    memset(o, 0, sizeof(*o));
    o->hash = 14695981039346656037ull;

    size_t pos = 0, avail = first ? first : step ? step : len;
    int params_done = 0, replies = 0;
    int64_t cl = 0;
    uint64_t body = 0;
    if (avail > len)
        avail = len;
    for (size_t calls = 0;; calls++) {
        CHECK(calls < 4 * len + 16); /* every call makes progress */
        struct proto_event ev;
        memset(&ev, 0x5a, sizeof(ev));
        size_t n = avail - pos;
        enum proto_result r = CODEC.decode(state, in + pos, n, &p, &ev);
        CHECK(ev.consumed <= n);
        const uint8_t *at = in + pos;
        pos += ev.consumed;
        switch (r) {
        case PROTO_NEED_MORE:
            CHECK(ev.consumed == n);
            if (avail == len)
                goto out;
            avail = step && len - avail > step ? avail + step : len;
            break;
        case PROTO_REPLY:
            /* 100 Continue, once, before any body byte; not hashed: whether
             * it goes out depends on whether the body is here already. */
            CHECK(params_done && body == 0 && ev.consumed == 0 && !ev.close_after);
            CHECK(ev.len == 25 && memcmp(ev.data, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
            CHECK(++replies == 1);
            break;
        case PROTO_PARAMS_DONE:
            CHECK(!params_done);
            params_done = 1;
            check_params(&p, lim);
            cl = CODEC.content_length(state);
            CHECK(cl == expected_length(&p));
            CHECK(!lim->max_body || cl < 0 || (uint64_t)cl <= lim->max_body);
            CHECK(params_get(&p, "REQUEST_METHOD") && params_get(&p, "PATH_INFO") &&
                  params_get(&p, "QUERY_STRING") && params_get(&p, "SERVER_PROTOCOL"));
            o->hash = fnv(o->hash, "P", 1);
            o->hash = fnv(o->hash, p.store, p.store_len);
            o->hash = fnv(o->hash, &cl, sizeof(cl));
            break;
        case PROTO_BODY_DATA:
            CHECK(params_done);
            CHECK(ev.data >= at && ev.data + ev.len <= at + ev.consumed && ev.len > 0);
            body += ev.len;
            CHECK(cl < 0 || body <= (uint64_t)cl);
            CHECK(!lim->max_body || body <= lim->max_body);
            o->hash = fnv(o->hash, ev.data, ev.len);
            break;
        case PROTO_BODY_END:
            CHECK(params_done && (cl < 0 || body == (uint64_t)cl));
            CHECK(CODEC.decode(state, in + pos, avail - pos, &p, &ev) == PROTO_BODY_END);
            CHECK(ev.consumed == 0);
            o->hash = fnv(o->hash, "E", 1);
            check_encoders(state, in, len);
            if (++o->requests == MAX_REQUESTS || pos == len)
                goto out;
            CODEC.next_request(state);
            params_reset(&p);
            params_done = replies = 0;
            body = 0;
            cl = 0;
            break;
        case PROTO_ERROR: {
            CHECK(ev.reason && ev.reason[0] && strlen(ev.reason) < 256);
            uint8_t reply[PROTO_END_MAX];
            size_t rn = CODEC.error_reply(state, reply);
            CHECK(rn > 20 && rn <= PROTO_END_MAX &&
                  (memcmp(reply, "HTTP/1.1 4", 10) == 0 || memcmp(reply, "HTTP/1.1 5", 10) == 0));
            CHECK(CODEC.decode(state, in + pos, avail - pos, &p, &ev) == PROTO_ERROR);
            CHECK(ev.consumed == 0 && ev.reason && ev.reason[0]);
            o->hash = fnv(o->hash, "X", 1);
            o->error = 1;
            goto out;
        }
        default:
            CHECK(!"unexpected event");
        }
    }
out:
    o->consumed = pos;
    params_free(&p);
}
