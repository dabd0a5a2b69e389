/*
 * codec_helpers.c — see codec_helpers.h.
 */
#include "codec_helpers.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void append(uint8_t **buf, size_t *len, const uint8_t *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    assert(*buf);
    memcpy(*buf + *len, data, n);
    *len += n;
}

static size_t fcgi_record(uint8_t *out, int type, const void *data, size_t len)
{
    uint8_t h[8] = {1, (uint8_t)type, 0, 1, (uint8_t)(len >> 8), (uint8_t)len, 0, 0};
    memcpy(out, h, 8);
    if (len)
        memcpy(out + 8, data, len);
    return 8 + len;
}

size_t codec_fcgi_request(uint8_t *out, const char *const *kv, const char *body, int keep)
{
    uint8_t begin[8] = {0, 1, keep ? 1 : 0, 0, 0, 0, 0, 0};
    uint8_t params[4096];
    size_t pl = 0, n = 0;
    for (size_t i = 0; kv[i]; i += 2) {
        size_t a = strlen(kv[i]), b = strlen(kv[i + 1]);
        assert(a < 128 && b < 128 && pl + 2 + a + b <= sizeof(params));
        params[pl++] = (uint8_t)a;
        params[pl++] = (uint8_t)b;
        memcpy(params + pl, kv[i], a);
        pl += a;
        memcpy(params + pl, kv[i + 1], b);
        pl += b;
    }
    n += fcgi_record(out + n, 1, begin, 8);
    n += fcgi_record(out + n, 4, params, pl);
    n += fcgi_record(out + n, 4, NULL, 0);
    if (body && *body)
        n += fcgi_record(out + n, 5, body, strlen(body));
    n += fcgi_record(out + n, 5, NULL, 0);
    return n;
}

/* Returns 1 when the run reached a stopping event. */
static int feed_piece(const struct proto_codec *codec, const uint8_t *in,
                      size_t len, struct codec_run *run)
{
    size_t off = 0;
    for (;;) {
        struct proto_event ev = {0};
        enum proto_result r =
            codec->decode(run->state, in + off, len - off, &run->params, &ev);
        assert(ev.consumed <= len - off);
        off += ev.consumed;
        run->consumed += ev.consumed;
        switch (r) {
        case PROTO_NEED_MORE:
            assert(off == len);
            return 0;
        case PROTO_REPLY:
            append(&run->replies, &run->replies_len, ev.data, ev.len);
            if (ev.close_after) {
                run->close_after = 1;
                return 1;
            }
            break;
        case PROTO_PARAMS_DONE:
            run->params_done = 1;
            run->content_length = codec->content_length(run->state);
            run->keep_conn = codec->keep_conn(run->state);
            break;
        case PROTO_BODY_DATA:
            append(&run->body, &run->body_len, ev.data, ev.len);
            break;
        case PROTO_BODY_END:
            run->body_end = 1;
            return 1;
        case PROTO_ABORT:
            run->aborted = 1;
            return 1;
        case PROTO_ERROR:
            run->error = 1;
            strncpy(run->reason, ev.reason ? ev.reason : "(no reason)",
                    sizeof(run->reason) - 1);
            return 1;
        }
    }
}

static void feed_part(const struct proto_codec *codec, const uint8_t *in,
                      size_t len, size_t step, struct codec_run *run, int *stop)
{
    size_t off = 0;
    while (!*stop && off < len) {
        size_t n = len - off;
        if (step && n > step)
            n = step;
        *stop = feed_piece(codec, in + off, n, run);
        off += n;
    }
}

void codec_feed(const struct proto_codec *codec, const struct proto_limits *lim,
                const uint8_t *in, size_t len, size_t split, size_t step,
                struct codec_run *run)
{
    memset(run, 0, sizeof(*run));
    assert(codec->state_size <= sizeof(run->state));
    params_init(&run->params, lim->max_head, lim->max_params, lim->max_field);
    codec->init(run->state, lim);
    int stop = 0;
    if (split > len)
        split = len;
    feed_part(codec, in, split, step, run, &stop);
    feed_part(codec, in + split, len - split, step, run, &stop);
}

void codec_feed_more(const struct proto_codec *codec, const uint8_t *in,
                     size_t len, size_t step, struct codec_run *run)
{
    int stop = 0;
    run->params_done = run->body_end = run->aborted = 0;
    run->error = run->close_after = 0;
    feed_part(codec, in, len, step, run, &stop);
}

void codec_run_free(struct codec_run *run)
{
    params_free(&run->params);
    free(run->body);
    free(run->replies);
    run->body = run->replies = NULL;
}
