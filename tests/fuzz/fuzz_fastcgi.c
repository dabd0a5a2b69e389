/*
 * fuzz_fastcgi.c — libFuzzer target for the FastCGI decoder.
 *
 * Input: one control byte, then the stream a front end would send. The
 * control byte picks how the stream is cut into reads (bits 0-2) and which
 * limits apply (bits 6-7). The stream is decoded like a connection does it:
 * unconsumed bytes are handed back with the next read, next_request() after
 * each BODY_END or ABORT, until an error, a reply asking to close, or the end
 * of the input. Every buffer handed to the decoder is a heap block of exactly
 * its length, so reading outside the input trips ASan.
 *
 * Checked: consumed <= len; NEED_MORE consumed everything; every event but
 * BODY_END, ABORT and ERROR consumed something; body only between
 * PARAMS_DONE and BODY_END and never longer than CONTENT_LENGTH or max_body;
 * BODY_END with a declared CONTENT_LENGTH has exactly that many bytes;
 * replies are whole records (8-byte header, content, padding); params are
 * NUL-terminated; the encoder's outputs have their documented sizes; the
 * scan for an ABORT_REQUEST after the body (gave_up) reads only the bytes
 * it is given. And
 * the transcript (params, body, replies, outcome) is the same whatever the
 * cuts: the chosen cuts are compared with the whole input at once and with
 * one byte at a time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/protocol.h"

#include "fuzz_check.h"

/* FNV-1a over everything a run produced. */
struct transcript {
    uint64_t hash;
    size_t requests;
};

static void mix(struct transcript *t, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        t->hash ^= p[i];
        t->hash *= 0x100000001b3ULL;
    }
}

static void mix_tag(struct transcript *t, char tag)
{
    mix(t, &tag, 1);
}

static void check_reply(const uint8_t *r, size_t len)
{
    CHECK(len >= 8);
    CHECK(r[0] == 1);
    CHECK(r[1] == 3 || r[1] == 10 || r[1] == 11); /* END, VALUES_RESULT, UNKNOWN */
    size_t clen = (size_t)r[4] << 8 | r[5];
    CHECK(8 + clen + r[6] == len);
    if (r[1] != 10)
        CHECK(clen == 8 && r[6] == 0);
}

static void check_params(const struct params *p)
{
    for (size_t i = 0; i < p->count; i++) {
        const struct params_entry *e = &p->entries[i];
        CHECK(e->name_off + e->name_len < p->store_len);
        CHECK(e->value_off + e->value_len < p->store_len);
        CHECK(p->store[e->name_off + e->name_len] == '\0');
        CHECK(p->store[e->value_off + e->value_len] == '\0');
    }
}

static void check_encoder(const void *st, bool active)
{
    const struct proto_codec *c = &proto_fastcgi;
    uint8_t out[PROTO_END_MAX];
    CHECK(c->frame(st, out, 1) == 8 && out[1] == 6);
    CHECK(c->frame(st, out, c->max_frame) == 8 && out[4] == 0xff && out[5] == 0xff);
    CHECK(c->end(st, out, 0) == 24 && out[1] == 6 && out[9] == 3);
    CHECK(c->error_reply(st, out) == (active ? 16u : 0u));
}

/* Decode DATA cut into pieces of PIECE bytes (0 = all at once). */
static struct transcript run(const uint8_t *data, size_t size, size_t piece,
                             const struct proto_limits *lim)
{
    const struct proto_codec *c = &proto_fastcgi;
    /* Callers may give only 4-byte alignment (see tests/unit/codec_helpers.h). */
    static _Alignas(16) uint8_t state_buf[1024 + 4];
    void *st = state_buf + 4;
    CHECK(c->state_size <= 1024);
    c->init(st, lim);
    struct params params;
    params_init(&params, lim->max_head, lim->max_params, lim->max_field);

    struct transcript t = {0xcbf29ce484222325ULL, 0};
    uint8_t *pending = NULL;
    size_t plen = 0, pos = 0;
    bool params_done = false, done = false;
    int64_t cl = -1;
    uint64_t body = 0;

    while (!done && pos < size) {
        size_t n = piece && size - pos > piece ? piece : size - pos;
        /* The connection buffer: unconsumed bytes, then the new read, in a
         * block of exactly that size. */
        uint8_t *buf = malloc(plen + n);
        CHECK(buf);
        if (plen)
            memcpy(buf, pending, plen);
        memcpy(buf + plen, data + pos, n);
        free(pending);
        pending = buf;
        plen += n;
        pos += n;

        while (!done) {
            struct proto_event ev;
            memset(&ev, 0xA5, sizeof(ev));
            enum proto_result r = c->decode(st, pending, plen, &params, &ev);
            CHECK(ev.consumed <= plen);
            switch (r) {
            case PROTO_NEED_MORE:
                CHECK(ev.consumed == plen);
                break;
            case PROTO_REPLY:
                CHECK(ev.consumed > 0);
                check_reply(ev.data, ev.len);
                CHECK(ev.data >= (const uint8_t *)st &&
                      ev.data + ev.len <= (const uint8_t *)st + c->state_size);
                mix_tag(&t, 'R');
                mix(&t, ev.data, ev.len);
                if (ev.close_after) {
                    mix_tag(&t, 'C');
                    done = true;
                }
                break;
            case PROTO_PARAMS_DONE:
                CHECK(ev.consumed > 0);
                CHECK(!params_done && body == 0);
                params_done = true;
                check_params(&params);
                cl = c->content_length(st);
                CHECK(cl >= -1);
                CHECK(!lim->max_body || cl <= (int64_t)lim->max_body);
                mix_tag(&t, 'P');
                mix(&t, params.store, params.store_len);
                mix(&t, &cl, sizeof(cl));
                break;
            case PROTO_BODY_DATA:
                CHECK(params_done);
                CHECK(ev.len > 0 && ev.consumed >= ev.len);
                CHECK(ev.data >= pending && ev.data + ev.len <= pending + ev.consumed);
                body += ev.len;
                CHECK(cl < 0 || body <= (uint64_t)cl);
                CHECK(!lim->max_body || body <= lim->max_body);
                mix(&t, ev.data, ev.len); /* untagged: cuts differ */
                break;
            case PROTO_BODY_END:
            case PROTO_ABORT: {
                CHECK(ev.consumed > 0);
                CHECK(r == PROTO_ABORT || params_done);
                CHECK(r == PROTO_ABORT || cl < 0 || body == (uint64_t)cl);
                mix_tag(&t, r == PROTO_ABORT ? 'A' : 'D');
                mix(&t, &body, sizeof(body));
                /* Sticky until next_request, consuming nothing. */
                struct proto_event again;
                CHECK(c->decode(st, pending + ev.consumed, plen - ev.consumed, &params, &again) ==
                      r);
                CHECK(again.consumed == 0);
                /* The scan for an abort after the body reads the bytes that
                 * follow (not mixed in: it sees what the cut gave it). */
                bool gave_up = c->gave_up(st, pending + ev.consumed, plen - ev.consumed);
                CHECK(r == PROTO_BODY_END || !gave_up);
                check_encoder(st, true);
                params_reset(&params);
                c->next_request(st);
                check_encoder(st, false);
                params_done = false;
                cl = -1;
                body = 0;
                t.requests++;
                break;
            }
            case PROTO_ERROR:
                CHECK(ev.reason && strlen(ev.reason) > 0);
                mix_tag(&t, 'E');
                mix(&t, ev.reason, strlen(ev.reason));
                {
                    uint8_t out[PROTO_END_MAX];
                    size_t k = c->error_reply(st, out);
                    CHECK(k == 0 || k == 16);
                }
                done = true;
                break;
            default:
                CHECK(0);
            }
            memmove(pending, pending + ev.consumed, plen - ev.consumed);
            plen -= ev.consumed;
            if (r == PROTO_NEED_MORE)
                break;
        }
    }
    free(pending);
    params_free(&params);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[8] = {0, 1, 2, 3, 5, 8, 13, 64};
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;

    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    if (ctl & 0x80) { /* small limits, so that inputs reach them */
        lim.max_head = 256;
        lim.max_params = 8;
        lim.max_field = 64;
    }
    if (ctl & 0x40)
        lim.max_body = 100;
    lim.fcgi_max_conns = ctl & 0x20 ? 4294967295u : ctl; /* 10 digits: largest reply */
    lim.fcgi_max_reqs = 4000000000u;

    struct transcript a = run(data, size, pieces[ctl & 7], &lim);
    struct transcript b = run(data, size, 0, &lim);
    CHECK(a.hash == b.hash && a.requests == b.requests);
    if (size <= 4096) {
        struct transcript one = run(data, size, 1, &lim);
        CHECK(one.hash == b.hash && one.requests == b.requests);
    }
    return 0;
}
