/*
 * fuzz_splits.h — what the decoder targets of unframed streams (uwsgi and
 * SCGI through fuzz_unframed.h, HTTP through fuzz_http.c) share: the
 * outcome of one decoding run, and the driver that decodes each input
 * under three sets of limits (the defaults, small ones, ones taken from the
 * last four input bytes) and, for each, cut several ways (all at once, one
 * byte per read, a fixed piece size derived from the input, one split
 * point): every cut must give the same outcome.
 *
 * The including file defines FUZZ_SMALL_HEAD, FUZZ_SMALL_PARAMS and
 * FUZZ_SMALL_FIELD (the small limits) and, after including, the run itself:
 *     static void run(const struct proto_limits *lim, const uint8_t *in,
 *                     size_t len, size_t first, size_t piece, struct outcome *o);
 * (FIRST: the size of the first read, PIECE: of each read; 0 = all.)
 */
#ifndef CORRAL_FUZZ_SPLITS_H
#define CORRAL_FUZZ_SPLITS_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/protocol.h"

#include "fuzz_check.h"

/* What a run produced; FNV-1a over the events, so it does not depend on how
 * the body was cut into BODY_DATA pieces. */
struct outcome {
    uint64_t hash;
    int requests; /* BODY_END seen */
    int error;
    size_t consumed;
};

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const uint8_t *d = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ull;
    return h;
}

static void run(const struct proto_limits *lim, const uint8_t *in, size_t len, size_t first,
                size_t piece, struct outcome *o);

static void check_limits(const struct proto_limits *lim, const uint8_t *in, size_t len)
{
    struct outcome whole, cut;
    run(lim, in, len, 0, 0, &whole);
    uint64_t h = fnv(14695981039346656037ull, in, len);
    const size_t cuts[][2] = {
        {0, 1},                        /* one byte per read */
        {0, 2 + h % 61},               /* a fixed piece size */
        {1 + (h >> 8) % (len + 1), 0}, /* one split point */
    };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        run(lim, in, len, cuts[i][0], cuts[i][1], &cut);
        CHECK(cut.hash == whole.hash);
        CHECK(cut.requests == whole.requests && cut.error == whole.error);
        /* An error may be found before or after a piece is consumed. */
        CHECK(whole.error || cut.consumed == whole.consumed);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct proto_limits def = PROTO_LIMITS_DEFAULT;
    check_limits(&def, data, size);

    struct proto_limits small = PROTO_LIMITS_DEFAULT;
    small.max_head = FUZZ_SMALL_HEAD;
    small.max_params = FUZZ_SMALL_PARAMS;
    small.max_field = FUZZ_SMALL_FIELD;
    small.max_body = 8;
    check_limits(&small, data, size);

    if (size >= 4) {
        const uint8_t *t = data + size - 4;
        struct proto_limits tail = PROTO_LIMITS_DEFAULT;
        tail.max_head = 1 + (size_t)t[3] * 4;
        tail.max_params = 1 + t[2] % 32;
        tail.max_field = 1 + t[1];
        tail.max_body = t[0] & 1 ? 0 : t[0] / 2;
        check_limits(&tail, data, size);
    }
    return 0;
}

#endif
