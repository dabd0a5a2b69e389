/*
 * fuzz_unframed.h — the libFuzzer driver shared by the uwsgi and SCGI
 * targets (both decode a head, then CONTENT_LENGTH raw body bytes).
 *
 * The input is the byte stream from the front end. Each input is decoded
 * under three sets of limits (the defaults, small ones, and ones taken from
 * the last four input bytes, which are body bytes in a valid request) and,
 * for each, with several ways of cutting the stream: all at once, one byte
 * per read, a fixed piece size derived from the input, and one split point.
 * Every cut must give the same outcome, and every event must keep the
 * contract of protocol.h. After BODY_END the rest of the input is decoded as
 * the next request (next_request), up to a few requests.
 *
 * The including file defines CODEC and, before including, a function
 *     static int64_t expected_length(const struct params *p);
 * that reads the CONTENT_LENGTH the params say, independently of the codec.
 */
#ifndef CORRAL_FUZZ_UNFRAMED_H
#define CORRAL_FUZZ_UNFRAMED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/protocol.h"

#define MAX_REQUESTS 3

#define FUZZ_SMALL_HEAD 64
#define FUZZ_SMALL_PARAMS 4
#define FUZZ_SMALL_FIELD 16
#include "fuzz_splits.h"

static int64_t expected_length(const struct params *p);

static void check_params(const struct params *p, const struct proto_limits *lim)
{
    size_t total = 0;
    CHECK(p->count <= lim->max_params);
    for (size_t i = 0; i < p->count; i++) {
        const struct params_entry *e = &p->entries[i];
        CHECK(e->name_len <= lim->max_field && e->value_len <= lim->max_field);
        CHECK(params_name(p, e)[e->name_len] == '\0');
        CHECK(params_value(p, e)[e->value_len] == '\0');
        total += e->name_len + e->value_len;
    }
    CHECK(total <= lim->max_head);
}

/* Decode IN as a front end would deliver it: the first read brings FIRST
 * bytes (0 = STEP), each later read STEP more (0 = the rest). */
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
    int params_done = 0;
    int64_t cl = 0;
    uint64_t body = 0;
    if (avail > len)
        avail = len;
    for (size_t calls = 0;; calls++) {
        CHECK(calls < 3 * len + 16); /* every call makes progress */
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
        case PROTO_PARAMS_DONE:
            CHECK(!params_done);
            params_done = 1;
            check_params(&p, lim);
            cl = CODEC.content_length(state);
            CHECK(cl >= 0);
            CHECK(cl == expected_length(&p));
            CHECK(!lim->max_body || (uint64_t)cl <= lim->max_body);
            CHECK(!CODEC.keep_conn(state));
            o->hash = fnv(o->hash, "P", 1);
            o->hash = fnv(o->hash, p.store, p.store_len);
            o->hash = fnv(o->hash, &cl, sizeof(cl));
            break;
        case PROTO_BODY_DATA:
            CHECK(params_done);
            CHECK(ev.data == at && ev.len == ev.consumed && ev.len > 0);
            body += ev.len;
            CHECK(body <= (uint64_t)cl);
            o->hash = fnv(o->hash, ev.data, ev.len);
            break;
        case PROTO_BODY_END:
            CHECK(params_done && body == (uint64_t)cl);
            CHECK(ev.consumed == 0);
            CHECK(CODEC.decode(state, in + pos, avail - pos, &p, &ev) == PROTO_BODY_END);
            CHECK(ev.consumed == 0);
            o->hash = fnv(o->hash, "E", 1);
            if (++o->requests == MAX_REQUESTS || pos == len)
                goto out;
            CODEC.next_request(state);
            params_reset(&p);
            params_done = 0;
            body = 0;
            cl = 0;
            break;
        case PROTO_ERROR:
            CHECK(ev.reason && ev.reason[0] && strlen(ev.reason) < 256);
            CHECK(CODEC.decode(state, in + pos, avail - pos, &p, &ev) == PROTO_ERROR);
            CHECK(ev.consumed == 0 && ev.reason && ev.reason[0]);
            o->hash = fnv(o->hash, "X", 1);
            o->error = 1;
            goto out;
        default:
            CHECK(!"unexpected event");
        }
    }
out:
    o->consumed = pos;
    params_free(&p);
}

#endif
