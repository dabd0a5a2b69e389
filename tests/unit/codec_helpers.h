/*
 * codec_helpers.h — drive a codec over a byte stream in chosen pieces and
 * collect what it produced, for the codec unit tests.
 */
#ifndef CORRAL_CODEC_HELPERS_H
#define CORRAL_CODEC_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/protocol.h"

struct codec_run {
    struct params params;
    uint8_t *body;          /* all BODY_DATA bytes, concatenated */
    size_t body_len;
    uint8_t *replies;       /* all REPLY bytes, concatenated */
    size_t replies_len;
    int params_done;        /* PROTO_PARAMS_DONE seen */
    int body_end;           /* PROTO_BODY_END seen */
    int aborted;            /* PROTO_ABORT seen */
    int error;              /* PROTO_ERROR seen */
    int close_after;        /* a REPLY asked to close */
    char reason[256];       /* the ERROR reason */
    size_t consumed;        /* input bytes consumed in total */
    int64_t content_length; /* codec->content_length after PARAMS_DONE */
    int keep_conn;          /* codec->keep_conn after PARAMS_DONE */
    _Alignas(max_align_t) uint8_t state[1024]; /* the codec state, for encoder calls */
};

/*
 * Feed IN to a fresh codec state: first the bytes [0, split), then the rest,
 * each part further cut into pieces of at most STEP bytes (0 = no cutting).
 * Stops at BODY_END, ERROR, ABORT, a REPLY with close_after, or when the
 * input is used up. The run's params use the given limits.
 */
void codec_feed(const struct proto_codec *codec, const struct proto_limits *lim,
                const uint8_t *in, size_t len, size_t split, size_t step,
                struct codec_run *run);

/* Continue an existing run (after next_request) with more input. */
void codec_feed_more(const struct proto_codec *codec, const uint8_t *in,
                     size_t len, size_t step, struct codec_run *run);

void codec_run_free(struct codec_run *run);

/*
 * A whole FastCGI request (id 1) into OUT: BEGIN_REQUEST (KEEP_CONN when
 * KEEP), the pairs of KV (NULL-terminated name, value list; each under 128
 * bytes) in one PARAMS record, the empty PARAMS, BODY (NULL or "": none) in
 * one STDIN record, the empty STDIN. OUT must hold the pairs and the body
 * plus 48 bytes. Returns the length.
 */
size_t codec_fcgi_request(uint8_t *out, const char *const *kv, const char *body, int keep);

#endif
