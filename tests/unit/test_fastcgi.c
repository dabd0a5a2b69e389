/*
 * test_fastcgi.c — the FastCGI codec: framing as nginx and Apache send it,
 * every split point, management records, refusals, limits, hostile input,
 * the encoder's bytes, and a differential check against libfcgi (the
 * reference implementation) on the same byte streams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec_helpers.h"
#include "protocols/protocol.h"

#define CODEC (&proto_fastcgi)

/* ---- building byte streams ---- */

enum {
    T_BEGIN = 1,
    T_ABORT = 2,
    T_END = 3,
    T_PARAMS = 4,
    T_STDIN = 5,
    T_STDOUT = 6,
    T_DATA = 8,
    T_GET_VALUES = 9,
    T_GET_VALUES_RESULT = 10,
    T_UNKNOWN_TYPE = 11,
};

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u8(struct buf *b, unsigned c)
{
    uint8_t v = (uint8_t)c;
    put(b, &v, 1);
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* One record; padding bytes are 0xEE so that reading them as content shows. */
static void record_v(struct buf *b, unsigned version, unsigned type, unsigned id,
                     const void *content, size_t len, unsigned pad)
{
    assert_true(len <= 65535 && pad <= 255);
    uint8_t h[8] = {(uint8_t)version,    (uint8_t)type, (uint8_t)(id >> 8), (uint8_t)id,
                    (uint8_t)(len >> 8), (uint8_t)len,  (uint8_t)pad,       0};
    put(b, h, 8);
    put(b, content, len);
    for (unsigned i = 0; i < pad; i++)
        put_u8(b, 0xEE);
}

static void record(struct buf *b, unsigned type, unsigned id, const void *content, size_t len,
                   unsigned pad)
{
    record_v(b, 1, type, id, content, len, pad);
}

static void begin(struct buf *b, unsigned id, unsigned role, unsigned flags)
{
    uint8_t body[8] = {(uint8_t)(role >> 8), (uint8_t)role, (uint8_t)flags};
    record(b, T_BEGIN, id, body, 8, 0);
}

/* A name or value length: one byte up to 127, else four with the top bit. */
static void put_len(struct buf *b, size_t n)
{
    if (n <= 127) {
        put_u8(b, (unsigned)n);
    } else {
        put_u8(b, (unsigned)(n >> 24) | 0x80);
        put_u8(b, (unsigned)(n >> 16));
        put_u8(b, (unsigned)(n >> 8));
        put_u8(b, (unsigned)n);
    }
}

static void pair(struct buf *b, const char *name, size_t name_len, const void *value,
                 size_t value_len)
{
    put_len(b, name_len);
    put_len(b, value_len);
    put(b, name, name_len);
    put(b, value, value_len);
}

struct kv {
    const char *name;
    const char *value;
    size_t value_len; /* 0: strlen(value) */
};

static size_t kv_value_len(const struct kv *k)
{
    return k->value_len ? k->value_len : strlen(k->value);
}

static void pairs(struct buf *b, const struct kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pair(b, kv[i].name, strlen(kv[i].name), kv[i].value, kv_value_len(&kv[i]));
}

/* How a front end frames a request. */
struct style {
    size_t params_chunk; /* content bytes per PARAMS record */
    size_t stdin_chunk;  /* content bytes per STDIN record */
    int pad;             /* 0 none, 8 align to 8 bytes, else that many */
};

/* nginx: all params in one record, STDIN <= 32 KiB, padded to 8. */
static const struct style nginx_style = {65535, 32768, 8};
/* Apache mod_proxy_fcgi: params cut every 16 KiB, STDIN <= 65535, no padding. */
static const struct style apache_style = {16384, 65535, 0};
/* Hostile but legal: params cut every 5 bytes, STDIN every 3, 255 padding. */
static const struct style tiny_style = {5, 3, 255};

static unsigned style_pad(const struct style *s, size_t len)
{
    if (s->pad == 8)
        return (unsigned)(-len & 7);
    return len ? (unsigned)s->pad : 0;
}

/* A stream: its bytes cut into records of at most chunk bytes, then the
 * empty record. */
static void stream(struct buf *b, const struct style *s, unsigned type, unsigned id,
                   const uint8_t *data, size_t len, size_t chunk)
{
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        record(b, type, id, data + off, n, style_pad(s, n));
    }
    record(b, type, id, NULL, 0, 0);
}

struct req {
    const struct kv *kv;
    size_t n;
    const void *body;
    size_t body_len;
    int64_t content_length; /* what content_length() must say */
};

/* A whole request as a front end of that style sends it. */
static void request(struct buf *b, const struct style *s, unsigned id, int keep,
                    const struct req *rq)
{
    struct buf blob = {0};
    begin(b, id, 1, keep ? 1 : 0);
    pairs(&blob, rq->kv, rq->n);
    stream(b, s, T_PARAMS, id, blob.p, blob.len, s->params_chunk);
    stream(b, s, T_STDIN, id, rq->body, rq->body_len, s->stdin_chunk);
    buf_free(&blob);
}

/* ---- checking runs ---- */

static void assert_params(const struct params *p, const struct kv *kv, size_t n)
{
    assert_int_equal(p->count, n);
    for (size_t i = 0; i < n; i++) {
        const struct params_entry *e = &p->entries[i];
        size_t vl = kv_value_len(&kv[i]);
        assert_int_equal(e->name_len, strlen(kv[i].name));
        assert_string_equal(params_name(p, e), kv[i].name);
        assert_int_equal(e->value_len, vl);
        if (vl)
            assert_memory_equal(params_value(p, e), kv[i].value, vl);
        assert_int_equal(params_value(p, e)[vl], '\0');
    }
}

static void assert_request(const struct codec_run *run, const struct req *rq)
{
    if (run->error)
        fail_msg("unexpected error: %s", run->reason);
    assert_true(run->params_done);
    assert_true(run->body_end);
    assert_false(run->aborted);
    assert_params(&run->params, rq->kv, rq->n);
    assert_int_equal(run->content_length, rq->content_length);
    assert_int_equal(run->body_len, rq->body_len);
    if (rq->body_len)
        assert_memory_equal(run->body, rq->body, rq->body_len);
}

static const struct proto_limits default_limits = PROTO_LIMITS_DEFAULT;

/* Feed the stream at one split point (and step), expect the request. */
static void expect_request(const uint8_t *in, size_t len, const struct proto_limits *lim,
                           size_t split, size_t step, const struct req *rq)
{
    struct codec_run run;
    codec_feed(CODEC, lim, in, len, split, step, &run);
    assert_request(&run, rq);
    assert_int_equal(run.consumed, len);
    assert_int_equal(run.replies_len, 0);
    codec_run_free(&run);
}

/* Every split point, then a set of piece sizes. */
static void expect_request_everywhere(const uint8_t *in, size_t len, const struct proto_limits *lim,
                                      const struct req *rq)
{
    static const size_t steps[] = {1, 2, 3, 7, 8, 9, 13, 4096};
    for (size_t split = 0; split <= len; split++)
        expect_request(in, len, lim, split, 0, rq);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        expect_request(in, len, lim, 0, steps[i], rq);
}

/* Feed the stream whole and one byte at a time; expect an error whose
 * reason contains WHY. */
static void expect_error(const uint8_t *in, size_t len, const struct proto_limits *lim,
                         const char *why)
{
    for (size_t step = 0; step <= 1; step++) {
        struct codec_run run;
        codec_feed(CODEC, lim, in, len, 0, step, &run);
        if (!run.error)
            fail_msg("expected an error \"%s\" (step %zu)", why, step);
        if (!strstr(run.reason, why))
            fail_msg("reason \"%s\" lacks \"%s\"", run.reason, why);
        assert_false(run.body_end);
        codec_run_free(&run);
    }
}

/* ---- fixtures ---- */

static const struct kv nginx_kv[] = {
    {"QUERY_STRING", "a=1&b=2", 0},
    {"REQUEST_METHOD", "POST", 0},
    {"CONTENT_TYPE", "application/x-www-form-urlencoded", 0},
    {"CONTENT_LENGTH", "11", 0},
    {"SCRIPT_NAME", "/app", 0},
    {"REQUEST_URI", "/app?a=1&b=2", 0},
    {"DOCUMENT_URI", "/app", 0},
    {"DOCUMENT_ROOT", "/srv/www", 0},
    {"SERVER_PROTOCOL", "HTTP/1.1", 0},
    {"REQUEST_SCHEME", "http", 0},
    {"GATEWAY_INTERFACE", "CGI/1.1", 0},
    {"SERVER_SOFTWARE", "nginx/1.22.1", 0},
    {"REMOTE_ADDR", "127.0.0.1", 0},
    {"REMOTE_PORT", "51234", 0},
    {"SERVER_ADDR", "127.0.0.1", 0},
    {"SERVER_PORT", "80", 0},
    {"SERVER_NAME", "localhost", 0},
    {"REDIRECT_STATUS", "200", 0},
    {"HTTP_HOST", "localhost", 0},
    {"HTTP_USER_AGENT", "curl/7.88.1", 0},
    {"HTTP_ACCEPT", "*/*", 0},
    {"HTTP_CONTENT_LENGTH", "11", 0},
};
static const char nginx_body[] = "hello=world";
static const struct req nginx_req = {nginx_kv, sizeof(nginx_kv) / sizeof(nginx_kv[0]), nginx_body,
                                     11, 11};

/* Built by setup: large names and values. */
static char *cookie_20k; /* 20000 bytes: crosses Apache's 16 KiB cuts */
static char *name_130;   /* a name needing a 4-byte length */
static char *value_200;
static char *value_70k;    /* over the default max_field */
static uint8_t *body_100k; /* several STDIN records */

static struct kv apache_kv[8];
static struct req apache_req;

static char *filled(size_t n, char seed)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + (seed + i * 7) % 26);
    s[n] = '\0';
    return s;
}

static int setup(void **state)
{
    (void)state;
    cookie_20k = filled(20000, 1);
    name_130 = filled(130, 2);
    for (size_t i = 0; i < 130; i++)
        name_130[i] = (char)('A' + i % 26);
    value_200 = filled(200, 3);
    value_70k = filled(70000, 4);
    body_100k = (uint8_t *)filled(100000, 5);
    for (size_t i = 0; i < 100000; i += 997)
        body_100k[i] = (uint8_t)i; /* some binary, including NULs */

    struct kv kv[] = {
        {"CONTENT_LENGTH", "1000", 0},
        {"REQUEST_METHOD", "PUT", 0},
        {"HTTP_COOKIE", cookie_20k, 20000},
        {"REQUEST_URI", "/upload", 0},
        {"SCRIPT_FILENAME", "proxy:fcgi://localhost/srv/app.py", 0},
        {"HTTP_X_EMPTY", "", 0},
        {"SERVER_SOFTWARE", "Apache/2.4.62 (Debian)", 0},
        {"PATH_INFO", "/x", 0},
    };
    memcpy(apache_kv, kv, sizeof(kv));
    apache_req = (struct req){apache_kv, 8, body_100k, 1000, 1000};
    return FCGX_Init();
}

static int teardown(void **state)
{
    (void)state;
    free(cookie_20k);
    free(name_130);
    free(value_200);
    free(value_70k);
    free(body_100k);
    return 0;
}

/* ---- decoding as the front ends frame it ---- */

static void fastcgi_decodes_nginx_request_at_every_split(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &nginx_req);
    expect_request_everywhere(b.p, b.len, &default_limits, &nginx_req);
    buf_free(&b);
}

static void fastcgi_decodes_apache_request_with_split_params_at_every_split(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &apache_style, 1, 0, &apache_req);
    /* The 20000-byte cookie value straddles the 16 KiB record boundary. */
    expect_request_everywhere(b.p, b.len, &default_limits, &apache_req);
    buf_free(&b);
}

static void fastcgi_decodes_params_cut_inside_lengths_and_names(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &tiny_style, 1, 0, &nginx_req);
    expect_request_everywhere(b.p, b.len, &default_limits, &nginx_req);
    buf_free(&b);
}

static void fastcgi_decodes_large_body_in_many_records(void **state)
{
    (void)state;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "100000", 0}, {"A", "b", 0}};
    struct req rq = {kv, 2, body_100k, 100000, 100000};
    struct buf b = {0};
    /* (Byte-by-byte feeding of 100 KB is slow in the helper under ASan; the
     * smaller streams cover 1-byte steps.) */
    request(&b, &nginx_style, 1, 0, &rq);
    expect_request(b.p, b.len, &default_limits, 0, 0, &rq);
    expect_request(b.p, b.len, &default_limits, 0, 251, &rq);
    expect_request(b.p, b.len, &default_limits, 40000, 0, &rq);
    expect_request(b.p, b.len, &default_limits, 32768 + 8 + 16 + 60, 0, &rq);
    buf_free(&b);
    request(&b, &apache_style, 1, 0, &rq);
    expect_request(b.p, b.len, &default_limits, 65535 + 16, 0, &rq);
    expect_request(b.p, b.len, &default_limits, 0, 4093, &rq);
    buf_free(&b);
}

static void fastcgi_skips_padding_of_any_length(void **state)
{
    (void)state;
    struct buf b = {0};
    for (unsigned pad = 0; pad <= 255; pad += 15) {
        struct style s = {7, 4, (int)pad};
        request(&b, &s, 1, 0, &nginx_req);
        expect_request(b.p, b.len, &default_limits, 0, 0, &nginx_req);
        expect_request(b.p, b.len, &default_limits, 0, 1, &nginx_req);
        b.len = 0;
    }
    buf_free(&b);
}

static void fastcgi_reads_four_byte_lengths(void **state)
{
    (void)state;
    struct kv kv[] = {
        {name_130, "short", 0},
        {"LONG", value_200, 200},
        {"CONTENT_LENGTH", "0", 0},
    };
    struct req rq = {kv, 3, NULL, 0, 0};
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &rq);
    expect_request_everywhere(b.p, b.len, &default_limits, &rq);
    buf_free(&b);
}

static void fastcgi_reads_70000_byte_value_with_raised_limits(void **state)
{
    (void)state;
    struct kv kv[] = {{"HTTP_BIG", value_70k, 70000}, {"X", "y", 0}};
    struct req rq = {kv, 2, "abc", 3, -1};
    struct proto_limits lim = default_limits;
    lim.max_field = 70000;
    lim.max_head = 70010;
    struct buf b = {0};
    request(&b, &apache_style, 1, 0, &rq);
    for (size_t step = 0; step < 3; step++)
        expect_request(b.p, b.len, &lim, 0, step, &rq);
    expect_request(b.p, b.len, &lim, 16384 + 8 + 3, 0, &rq);
    /* The default limits refuse it. */
    expect_error(b.p, b.len, &default_limits, "length limit");
    buf_free(&b);
}

static void fastcgi_accepts_long_form_length_of_short_field(void **state)
{
    (void)state;
    static const struct kv kv[] = {{"NAME", "hello", 0}};
    struct req rq = {kv, 1, NULL, 0, -1};
    struct buf blob = {0}, b = {0};
    static const uint8_t lens[] = {0x80, 0, 0, 4, 0x80, 0, 0, 5};
    put(&blob, lens, 8);
    put(&blob, "NAMEhello", 9);
    begin(&b, 1, 1, 0);
    stream(&b, &nginx_style, T_PARAMS, 1, blob.p, blob.len, 3);
    stream(&b, &nginx_style, T_STDIN, 1, NULL, 0, 1);
    expect_request_everywhere(b.p, b.len, &default_limits, &rq);
    buf_free(&blob);
    buf_free(&b);
}

static void fastcgi_accepts_empty_names_and_values(void **state)
{
    (void)state;
    static const struct kv kv[] = {{"", "", 0}, {"EMPTY", "", 0}, {"", "v", 0}};
    struct req rq = {kv, 3, NULL, 0, -1};
    struct buf b = {0};
    request(&b, &tiny_style, 1, 0, &rq);
    expect_request_everywhere(b.p, b.len, &default_limits, &rq);
    buf_free(&b);
}

static void fastcgi_waits_on_truncated_input(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &nginx_req);
    /* Where the empty PARAMS record ends: the STDIN record follows it. */
    size_t params_end = b.len - (8 + 16) - 8;
    for (size_t k = 0; k < b.len; k++) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, k, 0, 0, &run);
        assert_false(run.error);
        assert_false(run.body_end);
        assert_int_equal(run.replies_len, 0);
        assert_int_equal(run.consumed, k);
        assert_int_equal(run.params_done, k >= params_end);
        assert_true(run.body_len <= 11);
        codec_run_free(&run);
    }
    buf_free(&b);
}

static void fastcgi_consumes_nothing_after_body_end(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 1, &nginx_req);
    size_t first = b.len;
    request(&b, &nginx_style, 1, 1, &nginx_req);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_request(&run, &nginx_req);
    assert_int_equal(run.consumed, first);
    struct proto_event ev;
    for (int i = 0; i < 2; i++) {
        enum proto_result r =
            CODEC->decode(run.state, b.p + first, b.len - first, &run.params, &ev);
        assert_int_equal(r, PROTO_BODY_END);
        assert_int_equal(ev.consumed, 0);
    }
    assert_int_equal(CODEC->decode(run.state, b.p, 0, &run.params, &ev), PROTO_BODY_END);
    codec_run_free(&run);
    buf_free(&b);
}

/* After the body, gave_up finds an ABORT_REQUEST for the request among
 * the whole records that follow, past records of other ids and management
 * records, and nothing in a cut header, another id's abort, or bytes of
 * another version; the state is left as it was. */
static void fastcgi_gave_up_finds_abort_after_body(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 1, &nginx_req);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_request(&run, &nginx_req);
    struct buf after = {0};
    record(&after, T_ABORT, 2, NULL, 0, 0);
    record(&after, T_PARAMS, 3, "junk", 4, 4);
    assert_false(CODEC->gave_up(run.state, after.p, after.len));
    record(&after, T_ABORT, 1, NULL, 0, 0);
    assert_true(CODEC->gave_up(run.state, after.p, after.len));
    assert_false(CODEC->gave_up(run.state, after.p, after.len - 1)); /* its header cut */
    struct buf bad = {0};
    record_v(&bad, 2, T_ABORT, 1, NULL, 0, 0);
    assert_false(CODEC->gave_up(run.state, bad.p, bad.len));
    struct proto_event ev;
    assert_int_equal(CODEC->decode(run.state, after.p, after.len, &run.params, &ev),
                     PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    /* After next_request (no request active): never. */
    CODEC->next_request(run.state);
    assert_false(CODEC->gave_up(run.state, after.p, after.len));
    codec_run_free(&run);
    buf_free(&b);
    buf_free(&after);
    buf_free(&bad);
}

/* ---- keep-conn ---- */

static void get_values(struct buf *b, const char *const *names, size_t n)
{
    struct buf q = {0};
    for (size_t i = 0; i < n; i++)
        pair(&q, names[i], strlen(names[i]), "", 0);
    record(b, T_GET_VALUES, 0, q.p, q.len, (unsigned)(-q.len & 7));
    buf_free(&q);
}

static void fastcgi_serves_three_requests_on_kept_connection(void **state)
{
    (void)state;
    static const struct kv kv2[] = {{"REQUEST_METHOD", "POST", 0}, {"CONTENT_LENGTH", "", 0}};
    static const struct kv kv3[] = {{"REQUEST_METHOD", "GET", 0}, {"B", "2", 0}};
    const struct req rq2 = {kv2, 2, body_100k, 33000, -1};
    const struct req rq3 = {kv3, 2, NULL, 0, -1};
    const struct req *reqs[3] = {&nginx_req, &rq2, &rq3};
    static const char *const names[] = {"FCGI_MPXS_CONNS"};

    struct buf b = {0};
    request(&b, &apache_style, 1, 1, &nginx_req);
    get_values(&b, names, 1);
    request(&b, &nginx_style, 1, 1, &rq2); /* two STDIN records */
    request(&b, &tiny_style, 7, 1, &rq3);

    static const size_t steps[] = {0, 1, 3, 8, 1000};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, b.len, 0, steps[s], &run);
        for (int i = 0; i < 3; i++) {
            if (i > 0) {
                params_reset(&run.params);
                run.body_len = 0;
                CODEC->next_request(run.state);
                codec_feed_more(CODEC, b.p + run.consumed, b.len - run.consumed, steps[s], &run);
            }
            assert_request(&run, reqs[i]);
            assert_true(run.keep_conn);
            /* The GET_VALUES between requests 1 and 2 is answered. */
            assert_int_equal(run.replies_len, i == 0 ? 0 : 32);
        }
        assert_int_equal(run.consumed, b.len);
        assert_false(run.close_after);
        codec_run_free(&run);
    }
    buf_free(&b);
}

static void fastcgi_skips_unread_body_after_next_request(void **state)
{
    (void)state;
    static const struct kv kv2[] = {{"SECOND", "yes", 0}};
    const struct req rq2 = {kv2, 1, "2nd", 3, -1};
    struct buf b = {0}, blob = {0};
    pairs(&blob, nginx_kv, sizeof(nginx_kv) / sizeof(nginx_kv[0]));
    begin(&b, 1, 1, 1);
    stream(&b, &tiny_style, T_PARAMS, 1, blob.p, blob.len, 5);
    size_t params_end = b.len;
    stream(&b, &tiny_style, T_STDIN, 1, (const uint8_t *)nginx_body, 11, 3);
    request(&b, &nginx_style, 1, 1, &rq2);

    /* The app answers after 2 body bytes and never reads the rest. */
    for (size_t extra = 0; extra < 8 + 3 + 255 + 8 + 2; extra++) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, params_end + extra, 0, 0, &run);
        assert_true(run.params_done);
        assert_false(run.body_end);
        params_reset(&run.params);
        run.body_len = 0;
        CODEC->next_request(run.state);
        codec_feed_more(CODEC, b.p + run.consumed, b.len - run.consumed, extra % 3, &run);
        assert_request(&run, &rq2);
        assert_int_equal(run.consumed, b.len);
        codec_run_free(&run);
    }
    buf_free(&b);
    buf_free(&blob);
}

/* ---- management records ---- */

static void fastcgi_answers_get_values_before_begin(void **state)
{
    (void)state;
    static const char *const names[] = {"FCGI_MAX_CONNS", "FOO", "FCGI_MAX_REQS",
                                        "FCGI_MPXS_CONNS"};
    struct proto_limits lim = default_limits;
    lim.fcgi_max_conns = 7;
    lim.fcgi_max_reqs = 1234;
    struct buf q = {0}, want = {0}, content = {0};
    get_values(&q, names, 4);
    pair(&content, "FCGI_MAX_CONNS", 14, "7", 1);
    pair(&content, "FCGI_MAX_REQS", 13, "1234", 4);
    pair(&content, "FCGI_MPXS_CONNS", 15, "0", 1);
    record(&want, T_GET_VALUES_RESULT, 0, content.p, content.len, (unsigned)(-content.len & 7));
    memset(want.p + want.len - (-content.len & 7), 0, -content.len & 7);

    /* Answered as soon as the record is read, with nothing after it. */
    for (size_t step = 0; step <= 1; step++) {
        struct codec_run run;
        codec_feed(CODEC, &lim, q.p, q.len, 0, step, &run);
        assert_false(run.error);
        assert_int_equal(run.consumed, q.len);
        assert_int_equal(run.replies_len, want.len);
        assert_memory_equal(run.replies, want.p, want.len);
        assert_int_equal(want.len % 8, 0);
        codec_run_free(&run);
    }
    /* And a request follows on the same connection. */
    size_t qlen = q.len;
    request(&q, &nginx_style, 1, 0, &nginx_req);
    struct codec_run run;
    codec_feed(CODEC, &lim, q.p, q.len, qlen - 1, 0, &run);
    assert_request(&run, &nginx_req);
    assert_int_equal(run.replies_len, want.len);
    codec_run_free(&run);
    buf_free(&q);
    buf_free(&want);
    buf_free(&content);
}

static void fastcgi_answers_get_values_with_only_known_names(void **state)
{
    (void)state;
    static const char *const unknown[] = {"FOO", "FCGI_MAX_CONN", "FCGI_MAX_CONNSX",
                                          "A_NAME_LONGER_THAN_ANY_KNOWN"};
    static const uint8_t empty_result[8] = {1, T_GET_VALUES_RESULT, 0, 0, 0, 0, 0, 0};
    struct buf q = {0};
    get_values(&q, unknown, 4);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, q.p, q.len, 0, 1, &run);
    assert_false(run.error);
    assert_int_equal(run.replies_len, 8);
    assert_memory_equal(run.replies, empty_result, 8);
    codec_run_free(&run);

    /* An empty query gets the same empty answer. */
    q.len = 0;
    record(&q, T_GET_VALUES, 0, NULL, 0, 0);
    codec_feed(CODEC, &default_limits, q.p, q.len, 0, 0, &run);
    assert_int_equal(run.replies_len, 8);
    assert_memory_equal(run.replies, empty_result, 8);
    codec_run_free(&run);
    buf_free(&q);
}

static void fastcgi_answers_get_values_with_largest_values(void **state)
{
    (void)state;
    static const char *const names[] = {"FCGI_MPXS_CONNS", "FCGI_MAX_REQS", "FCGI_MAX_CONNS",
                                        "FCGI_MPXS_CONNS"};
    struct proto_limits lim = default_limits;
    lim.fcgi_max_conns = 4294967295u;
    lim.fcgi_max_reqs = 4294967295u;
    struct buf q = {0}, want = {0}, content = {0};
    get_values(&q, names, 4);
    pair(&content, "FCGI_MPXS_CONNS", 15, "0", 1);
    pair(&content, "FCGI_MAX_REQS", 13, "4294967295", 10);
    pair(&content, "FCGI_MAX_CONNS", 14, "4294967295", 10);
    record(&want, T_GET_VALUES_RESULT, 0, content.p, content.len, 3);
    memset(want.p + want.len - 3, 0, 3);
    assert_int_equal(want.len, 80); /* the largest reply there is */
    struct codec_run run;
    codec_feed(CODEC, &lim, q.p, q.len, 0, 1, &run);
    assert_false(run.error);
    assert_int_equal(run.replies_len, want.len);
    assert_memory_equal(run.replies, want.p, want.len);
    codec_run_free(&run);
    buf_free(&q);
    buf_free(&want);
    buf_free(&content);
}

static void fastcgi_answers_each_get_values_name_once(void **state)
{
    (void)state;
    struct buf q = {0}, content = {0};
    for (int i = 0; i < 500; i++)
        pair(&content, "FCGI_MPXS_CONNS", 15, "x", 1); /* values are ignored */
    record(&q, T_GET_VALUES, 0, content.p, content.len, 0);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, q.p, q.len, 0, 0, &run);
    assert_false(run.error);
    static const uint8_t want[24] = {1,   T_GET_VALUES_RESULT,
                                     0,   0,
                                     0,   18,
                                     6,   0,
                                     15,  1,
                                     'F', 'C',
                                     'G', 'I',
                                     '_', 'M',
                                     'P', 'X',
                                     'S', '_',
                                     'C', 'O',
                                     'N', 'N'};
    assert_int_equal(run.replies_len, 32);
    assert_memory_equal(run.replies, want, 24);
    assert_int_equal(run.replies[24], 'S');
    assert_int_equal(run.replies[25], '0');
    codec_run_free(&run);
    buf_free(&q);
    buf_free(&content);
}

static void fastcgi_rejects_get_values_ending_inside_a_pair(void **state)
{
    (void)state;
    static const uint8_t cut[] = {14, 0, 'F', 'C', 'G', 'I'};
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0, 'A'};
    struct buf q = {0};
    record(&q, T_GET_VALUES, 0, cut, sizeof(cut), 0);
    expect_error(q.p, q.len, &default_limits, "GET_VALUES");
    q.len = 0;
    record(&q, T_GET_VALUES, 0, huge, sizeof(huge), 2);
    expect_error(q.p, q.len, &default_limits, "GET_VALUES");
    buf_free(&q);
}

static void fastcgi_answers_get_values_in_the_middle_of_params(void **state)
{
    (void)state;
    static const char *const names[] = {"FCGI_MAX_REQS"};
    struct buf blob = {0}, b = {0};
    pairs(&blob, nginx_kv, sizeof(nginx_kv) / sizeof(nginx_kv[0]));
    begin(&b, 1, 1, 0);
    record(&b, T_PARAMS, 1, blob.p, 101, 0); /* cuts a pair */
    get_values(&b, names, 1);
    record(&b, T_PARAMS, 1, blob.p + 101, blob.len - 101, 3);
    record(&b, T_PARAMS, 1, NULL, 0, 0);
    stream(&b, &nginx_style, T_STDIN, 1, (const uint8_t *)nginx_body, 11, 4);
    for (size_t split = 0; split <= b.len; split++) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, b.len, split, 0, &run);
        assert_request(&run, &nginx_req);
        assert_int_equal(run.replies_len, 8 + 2 + 13 + 4 + 5);
        codec_run_free(&run);
    }
    buf_free(&blob);
    buf_free(&b);
}

static void fastcgi_answers_unknown_management_type(void **state)
{
    (void)state;
    static const uint8_t want[16] = {1, T_UNKNOWN_TYPE, 0, 0, 0, 8, 0, 0, 200};
    struct buf b = {0};
    record(&b, 200, 0, "xyz", 3, 5);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 1, &run);
    assert_false(run.error);
    assert_int_equal(run.consumed, b.len);
    assert_int_equal(run.replies_len, 16);
    assert_memory_equal(run.replies, want, 16);
    codec_run_free(&run);

    /* A BEGIN_REQUEST with id 0 is a management record of an unknown type. */
    b.len = 0;
    begin(&b, 0, 1, 0);
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_int_equal(run.replies_len, 16);
    assert_int_equal(run.replies[8], T_BEGIN);
    assert_false(run.params_done);
    codec_run_free(&run);
    buf_free(&b);
}

static void fastcgi_answers_unknown_record_type_during_request(void **state)
{
    (void)state;
    struct buf b = {0}, rest = {0};
    request(&rest, &nginx_style, 1, 0, &nginx_req);
    put(&b, rest.p, 16);                  /* BEGIN */
    record(&b, 42, 1, "??", 2, 6);        /* unknown type, active id */
    record(&b, T_STDOUT, 9, "out", 3, 0); /* sent by apps only */
    put(&b, rest.p + 16, rest.len - 16);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 1, &run);
    assert_request(&run, &nginx_req);
    assert_int_equal(run.replies_len, 32);
    assert_int_equal(run.replies[1], T_UNKNOWN_TYPE);
    assert_int_equal(run.replies[8], 42);
    assert_int_equal(run.replies[16 + 8], T_STDOUT);
    codec_run_free(&run);
    buf_free(&b);
    buf_free(&rest);
}

/* ---- refusals, aborts, ignored records ---- */

static void fastcgi_refuses_unknown_role_and_closes(void **state)
{
    (void)state;
    static const uint8_t want[16] = {1, T_END, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 3};
    struct buf b = {0};
    begin(&b, 1, 2, 0); /* AUTHORIZER */
    record(&b, T_PARAMS, 1, "\1\1AB", 4, 4);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_true(run.close_after);
    assert_false(run.error);
    assert_false(run.params_done);
    assert_int_equal(run.replies_len, 16);
    assert_memory_equal(run.replies, want, 16);
    codec_run_free(&run);
    buf_free(&b);
}

static void fastcgi_refuses_unknown_role_and_keeps_connection(void **state)
{
    (void)state;
    static const uint8_t want[16] = {1, T_END, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 3};
    static const struct kv filter_kv[] = {{"FILTER", "yes", 0}};
    struct req filter = {filter_kv, 1, "filtered", 8, -1};
    struct buf b = {0};
    begin(&b, 1, 3, 1); /* FILTER, keep-conn */
    struct buf tail = {0};
    request(&tail, &nginx_style, 1, 1, &filter);
    put(&b, tail.p + 16, tail.len - 16); /* its PARAMS and STDIN are ignored */
    record(&b, T_DATA, 1, "data", 4, 4);
    request(&b, &nginx_style, 1, 0, &nginx_req);
    for (size_t split = 0; split <= b.len; split += 5) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, b.len, split, 0, &run);
        assert_false(run.close_after);
        assert_request(&run, &nginx_req);
        assert_false(run.keep_conn);
        assert_int_equal(run.replies_len, 16);
        assert_memory_equal(run.replies, want, 16);
        codec_run_free(&run);
    }
    buf_free(&b);
    buf_free(&tail);
}

static void fastcgi_refuses_second_request_id(void **state)
{
    (void)state;
    static const uint8_t want[16] = {1, T_END, 0, 2, 0, 8, 0, 0, 0, 0, 0, 0, 1};
    static const struct kv evil_kv[] = {{"EVIL", "1", 0}};
    struct req evil = {evil_kv, 1, "evil body", 9, -1};
    struct buf blob = {0}, b = {0}, other = {0};
    pairs(&blob, nginx_kv, sizeof(nginx_kv) / sizeof(nginx_kv[0]));
    request(&other, &nginx_style, 2, 1, &evil);
    begin(&b, 1, 1, 1);
    record(&b, T_PARAMS, 1, blob.p, 50, 0);
    put(&b, other.p, other.len); /* a whole request on id 2, interleaved */
    record(&b, T_PARAMS, 1, blob.p + 50, blob.len - 50, 0);
    record(&b, T_PARAMS, 1, NULL, 0, 0);
    stream(&b, &nginx_style, T_STDIN, 1, (const uint8_t *)nginx_body, 11, 5);
    for (size_t split = 0; split <= b.len; split++) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, b.len, split, 0, &run);
        assert_request(&run, &nginx_req);
        assert_true(run.keep_conn);
        assert_false(run.close_after);
        assert_int_equal(run.replies_len, 16);
        assert_memory_equal(run.replies, want, 16);
        codec_run_free(&run);
    }
    buf_free(&blob);
    buf_free(&b);
    buf_free(&other);
}

static void fastcgi_reports_abort_of_active_request(void **state)
{
    (void)state;
    struct buf b = {0}, full = {0};
    request(&full, &nginx_style, 1, 1, &nginx_req);
    /* Abort in the middle of the body. */
    put(&b, full.p, full.len - 8 - 8 - 16);
    record(&b, T_STDIN, 1, "hel", 3, 5);
    record(&b, T_ABORT, 1, NULL, 0, 0);
    record(&b, T_STDIN, 1, "lo", 2, 6);
    for (size_t step = 0; step <= 1; step++) {
        struct codec_run run;
        codec_feed(CODEC, &default_limits, b.p, b.len, 0, step, &run);
        assert_true(run.params_done);
        assert_true(run.aborted);
        assert_false(run.body_end);
        assert_int_equal(run.body_len, 3);
        assert_int_equal(run.consumed, b.len - 16); /* not the STDIN after it */
        uint8_t out[PROTO_END_MAX];
        assert_int_equal(CODEC->error_reply(run.state, out), 16);
        struct proto_event ev;
        assert_int_equal(CODEC->decode(run.state, b.p, b.len, &run.params, &ev), PROTO_ABORT);
        assert_int_equal(ev.consumed, 0);
        codec_run_free(&run);
    }
    /* Abort while the params are read. */
    struct buf blob = {0};
    pairs(&blob, nginx_kv, sizeof(nginx_kv) / sizeof(nginx_kv[0]));
    b.len = 0;
    begin(&b, 1, 1, 0);
    record(&b, T_PARAMS, 1, blob.p, 40, 0);
    record(&b, T_ABORT, 1, NULL, 0, 0);
    buf_free(&blob);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_true(run.aborted);
    assert_false(run.params_done);
    codec_run_free(&run);
    buf_free(&b);
    buf_free(&full);
}

static void fastcgi_ignores_abort_of_other_request(void **state)
{
    (void)state;
    struct buf b = {0}, full = {0};
    request(&full, &nginx_style, 1, 0, &nginx_req);
    put(&b, full.p, 16); /* BEGIN */
    record(&b, T_ABORT, 2, NULL, 0, 0);
    record(&b, T_ABORT, 1234, "junk", 4, 4);
    put(&b, full.p + 16, full.len - 16);
    expect_request_everywhere(b.p, b.len, &default_limits, &nginx_req);
    buf_free(&b);
    buf_free(&full);
}

static void fastcgi_skips_records_of_other_ids_and_data(void **state)
{
    (void)state;
    struct buf b = {0}, full = {0};
    uint8_t junk[300];
    memset(junk, 0x80, sizeof(junk)); /* would be 4-byte lengths if parsed */
    request(&full, &nginx_style, 1, 0, &nginx_req);
    /* The nginx stream ends with: empty PARAMS (8), STDIN with 11 bytes and
     * 5 of padding (24), empty STDIN (8). */
    size_t tail = 8 + 24 + 8;
    record(&b, T_PARAMS, 9, junk, sizeof(junk), 255); /* before any BEGIN */
    record(&b, T_STDIN, 9, junk, 7, 1);
    put(&b, full.p, full.len - tail); /* BEGIN and the PARAMS record */
    record(&b, T_DATA, 1, junk, 100, 4);
    record(&b, T_PARAMS, 3, junk, 300, 0);
    record(&b, T_STDIN, 3, NULL, 0, 0);
    put(&b, full.p + full.len - tail, tail);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_request(&run, &nginx_req);
    assert_int_equal(run.replies_len, 0);
    codec_run_free(&run);
    expect_request_everywhere(b.p, b.len, &default_limits, &nginx_req);
    buf_free(&b);
    buf_free(&full);
}

/* ---- CONTENT_LENGTH and the body ---- */

static void fastcgi_streams_body_with_empty_content_length(void **state)
{
    (void)state;
    static const struct kv kv_empty[] = {{"CONTENT_LENGTH", "", 0}, {"X", "1", 0}};
    static const struct kv kv_absent[] = {{"X", "1", 0}};
    struct req rq1 = {kv_empty, 2, body_100k, 33000, -1};
    struct req rq2 = {kv_absent, 1, body_100k, 5, -1};
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &rq1);
    expect_request(b.p, b.len, &default_limits, 0, 0, &rq1);
    expect_request(b.p, b.len, &default_limits, 0, 1, &rq1);
    b.len = 0;
    request(&b, &apache_style, 1, 0, &rq2);
    expect_request_everywhere(b.p, b.len, &default_limits, &rq2);
    buf_free(&b);
}

static void fastcgi_accepts_zero_content_length_with_empty_body(void **state)
{
    (void)state;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "0", 0}};
    struct req rq = {kv, 1, NULL, 0, 0};
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &rq);
    expect_request_everywhere(b.p, b.len, &default_limits, &rq);
    buf_free(&b);
}

static void build_with_cl(struct buf *b, const char *cl, const void *body, size_t len)
{
    struct kv kv[] = {{"CONTENT_LENGTH", cl, 0}};
    struct req rq = {kv, 1, body, len, 0};
    b->len = 0;
    request(b, &nginx_style, 1, 0, &rq);
}

static void fastcgi_rejects_body_longer_than_content_length(void **state)
{
    (void)state;
    struct buf b = {0};
    build_with_cl(&b, "3", "hello", 5);
    expect_error(b.p, b.len, &default_limits, "body longer than CONTENT_LENGTH");
    buf_free(&b);
}

static void fastcgi_rejects_body_shorter_than_content_length(void **state)
{
    (void)state;
    struct buf b = {0};
    build_with_cl(&b, "10", "hello", 5);
    expect_error(b.p, b.len, &default_limits, "body shorter than CONTENT_LENGTH");
    buf_free(&b);
}

static void fastcgi_rejects_malformed_content_length(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "12a", "-1", " 1", "1 ", "+1", "0x10", "99999999999999999999", "9223372036854775808"};
    struct buf b = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        build_with_cl(&b, bad[i], NULL, 0);
        expect_error(b.p, b.len, &default_limits, "malformed CONTENT_LENGTH");
    }
    build_with_cl(&b, "9223372036854775807", NULL, 0);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_true(run.params_done);
    assert_int_equal(run.content_length, INT64_MAX);
    assert_true(run.error); /* the empty STDIN comes too early */
    codec_run_free(&run);
    buf_free(&b);
}

static void fastcgi_rejects_duplicate_content_length(void **state)
{
    (void)state;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "", 0}, {"CONTENT_LENGTH", "", 0}};
    struct req rq = {kv, 2, NULL, 0, -1};
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &rq);
    expect_error(b.p, b.len, &default_limits, "duplicate CONTENT_LENGTH");
    buf_free(&b);
}

/* ---- limits ---- */

static void fastcgi_enforces_max_field(void **state)
{
    (void)state;
    struct proto_limits lim = default_limits;
    lim.max_field = 200;
    struct kv kv[] = {{"LONG", value_200, 200}};
    struct req rq = {kv, 1, NULL, 0, -1};
    struct buf b = {0};
    request(&b, &apache_style, 1, 0, &rq);
    expect_request_everywhere(b.p, b.len, &lim, &rq);
    lim.max_field = 199;
    expect_error(b.p, b.len, &lim, "length limit");
    /* A name over the limit, announced in a record cut right after it. */
    b.len = 0;
    begin(&b, 1, 1, 0);
    static const uint8_t huge_name[] = {0xff, 0xff, 0xff, 0xff, 0};
    record(&b, T_PARAMS, 1, huge_name, sizeof(huge_name), 3);
    expect_error(b.p, b.len, &default_limits, "length limit");
    buf_free(&b);
}

static void fastcgi_enforces_max_head(void **state)
{
    (void)state;
    size_t total = 0;
    for (size_t i = 0; i < nginx_req.n; i++)
        total += strlen(nginx_kv[i].name) + strlen(nginx_kv[i].value);
    struct proto_limits lim = default_limits;
    lim.max_head = total;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &nginx_req);
    expect_request(b.p, b.len, &lim, 0, 0, &nginx_req);
    expect_request(b.p, b.len, &lim, 0, 1, &nginx_req);
    lim.max_head = total - 1;
    expect_error(b.p, b.len, &lim, "size limit");
    buf_free(&b);
}

static void fastcgi_enforces_max_params(void **state)
{
    (void)state;
    struct proto_limits lim = default_limits;
    lim.max_params = nginx_req.n;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &nginx_req);
    expect_request(b.p, b.len, &lim, 0, 1, &nginx_req);
    lim.max_params = nginx_req.n - 1;
    expect_error(b.p, b.len, &lim, "too many params");
    buf_free(&b);
}

static void fastcgi_enforces_max_body(void **state)
{
    (void)state;
    struct proto_limits lim = default_limits;
    lim.max_body = 11;
    struct buf b = {0};
    /* Declared: at the limit is fine, one over is refused before any body. */
    request(&b, &nginx_style, 1, 0, &nginx_req);
    expect_request(b.p, b.len, &lim, 0, 1, &nginx_req);
    lim.max_body = 10;
    expect_error(b.p, b.len, &lim, "CONTENT_LENGTH over the body size limit");
    /* Streamed. */
    static const struct kv kv[] = {{"CONTENT_LENGTH", "", 0}};
    struct req rq = {kv, 1, body_100k, 40000, -1};
    b.len = 0;
    request(&b, &nginx_style, 1, 0, &rq);
    lim.max_body = 40000;
    expect_request(b.p, b.len, &lim, 0, 0, &rq);
    expect_request(b.p, b.len, &lim, 0, 7, &rq);
    lim.max_body = 39999;
    expect_error(b.p, b.len, &lim, "body over the size limit");
    buf_free(&b);
}

/* ---- malformed streams ---- */

static void fastcgi_rejects_version_2(void **state)
{
    (void)state;
    struct buf b = {0};
    record_v(&b, 2, T_BEGIN, 1, "\0\1\0\0\0\0\0\0", 8, 0);
    expect_error(b.p, b.len, &default_limits, "version");
    /* Mid-stream too, and the error is sticky. */
    b.len = 0;
    begin(&b, 1, 1, 0);
    record_v(&b, 0, T_PARAMS, 1, NULL, 0, 0);
    expect_error(b.p, b.len, &default_limits, "version");
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    struct proto_event ev;
    assert_int_equal(CODEC->decode(run.state, b.p, b.len, &run.params, &ev), PROTO_ERROR);
    assert_int_equal(ev.consumed, 0);
    assert_non_null(strstr(ev.reason, "version"));
    codec_run_free(&run);
    buf_free(&b);
}

static void fastcgi_rejects_begin_with_wrong_length(void **state)
{
    (void)state;
    struct buf b = {0};
    record(&b, T_BEGIN, 1, "\0\1\0\0\0\0\0", 7, 1);
    expect_error(b.p, b.len, &default_limits, "BEGIN_REQUEST");
    b.len = 0;
    record(&b, T_BEGIN, 1, NULL, 0, 0);
    expect_error(b.p, b.len, &default_limits, "BEGIN_REQUEST");
    buf_free(&b);
}

static void fastcgi_rejects_begin_repeating_active_id(void **state)
{
    (void)state;
    struct buf b = {0};
    begin(&b, 1, 1, 0);
    begin(&b, 1, 1, 0);
    expect_error(b.p, b.len, &default_limits, "BEGIN_REQUEST");
    buf_free(&b);
}

static void fastcgi_rejects_stdin_before_params_end(void **state)
{
    (void)state;
    struct buf b = {0};
    begin(&b, 1, 1, 0);
    record(&b, T_PARAMS, 1, "\1\1AB", 4, 4);
    record(&b, T_STDIN, 1, "x", 1, 7);
    expect_error(b.p, b.len, &default_limits, "STDIN before");
    b.len = 0;
    begin(&b, 1, 1, 0);
    record(&b, T_STDIN, 1, NULL, 0, 0);
    expect_error(b.p, b.len, &default_limits, "STDIN before");
    buf_free(&b);
}

static void fastcgi_rejects_params_after_params_end(void **state)
{
    (void)state;
    struct buf b = {0};
    begin(&b, 1, 1, 0);
    record(&b, T_PARAMS, 1, NULL, 0, 0);
    record(&b, T_PARAMS, 1, "\1\1AB", 4, 4);
    expect_error(b.p, b.len, &default_limits, "PARAMS after");
    buf_free(&b);
}

static void fastcgi_rejects_params_ending_inside_a_pair(void **state)
{
    (void)state;
    static const uint8_t cuts[][6] = {
        {1, 10, 'A', 'v', 'a', 'l'}, /* value cut */
        {0x80, 0, 0, 0, 0, 0},       /* inside a 4-byte length (1 byte) */
        {1, 0, 0, 0, 0, 0},          /* value length missing (1 byte) */
    };
    static const size_t lens[] = {6, 1, 1};
    struct buf b = {0};
    for (size_t i = 0; i < 3; i++) {
        b.len = 0;
        begin(&b, 1, 1, 0);
        record(&b, T_PARAMS, 1, cuts[i], lens[i], 2);
        record(&b, T_PARAMS, 1, NULL, 0, 0);
        expect_error(b.p, b.len, &default_limits, "inside a name-value pair");
    }
    buf_free(&b);
}

/* ---- encoding ---- */

static void fastcgi_describes_itself(void **state)
{
    (void)state;
    assert_string_equal(CODEC->name, "fastcgi");
    assert_string_equal(CODEC->status_prefix, "Status: ");
    assert_int_equal(CODEC->max_frame, 65535);
    assert_true(CODEC->state_size < 600);
}

static void fastcgi_encodes_frame_end_and_error_reply(void **state)
{
    (void)state;
    struct codec_run run;
    uint8_t out[PROTO_END_MAX];
    struct buf b = {0};

    /* No request yet: nothing to say on error. */
    static const uint8_t nothing[1];
    codec_feed(CODEC, &default_limits, nothing, 0, 0, 0, &run);
    assert_int_equal(CODEC->error_reply(run.state, out), 0);
    codec_run_free(&run);

    request(&b, &nginx_style, 0x1234, 1, &nginx_req);
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_request(&run, &nginx_req);

    uint8_t frame[PROTO_FRAME_MAX];
    static const uint8_t want_frame[8] = {1, T_STDOUT, 0x12, 0x34, 0x01, 0x2c, 0, 0};
    assert_int_equal(CODEC->frame(run.state, frame, 300), 8);
    assert_memory_equal(frame, want_frame, 8);
    static const uint8_t want_max[8] = {1, T_STDOUT, 0x12, 0x34, 0xff, 0xff, 0, 0};
    assert_int_equal(CODEC->frame(run.state, frame, 65535), 8);
    assert_memory_equal(frame, want_max, 8);

    static const uint8_t want_end[24] = {
        1, T_STDOUT, 0x12, 0x34, 0,    0,    0,    0,    1, T_END, 0x12, 0x34,
        0, 8,        0,    0,    0x01, 0x02, 0x03, 0x04, 0, 0,     0,    0,
    };
    assert_int_equal(CODEC->end(run.state, out, 0x01020304), 24);
    assert_memory_equal(out, want_end, 24);

    static const uint8_t want_err[16] = {1, T_END, 0x12, 0x34, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(CODEC->error_reply(run.state, out), 16);
    assert_memory_equal(out, want_err, 16);

    /* After the request, error_reply has nothing to end. */
    CODEC->next_request(run.state);
    assert_int_equal(CODEC->error_reply(run.state, out), 0);
    codec_run_free(&run);
    buf_free(&b);
}

/* The goodbye a stopping worker sends on a kept connection: an empty STDERR
 * record of the last request id, also after next_request (between requests
 * is when it is sent); id 1 (nginx's) before any request. */
static void fastcgi_goodbye_is_empty_stderr_of_last_id(void **state)
{
    (void)state;
    struct codec_run run;
    struct buf b = {0};
    uint8_t out[PROTO_FRAME_MAX];
    static const uint8_t nothing[1];
    codec_feed(CODEC, &default_limits, nothing, 0, 0, 0, &run);
    static const uint8_t want_first[8] = {1, 7, 0, 1, 0, 0, 0, 0};
    assert_int_equal(CODEC->goodbye(run.state, out), 8);
    assert_memory_equal(out, want_first, 8);
    codec_run_free(&run);

    request(&b, &nginx_style, 0x1234, 1, &nginx_req);
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_request(&run, &nginx_req);
    CODEC->next_request(run.state);
    static const uint8_t want[8] = {1, 7, 0x12, 0x34, 0, 0, 0, 0};
    assert_int_equal(CODEC->goodbye(run.state, out), 8);
    assert_memory_equal(out, want, 8);
    codec_run_free(&run);
    buf_free(&b);
}

static void fastcgi_error_reply_ends_request_that_failed(void **state)
{
    (void)state;
    struct buf b = {0};
    build_with_cl(&b, "x", NULL, 0);
    struct codec_run run;
    codec_feed(CODEC, &default_limits, b.p, b.len, 0, 0, &run);
    assert_true(run.error);
    uint8_t out[PROTO_END_MAX];
    static const uint8_t want[16] = {1, T_END, 0, 1, 0, 8, 0, 0, 0, 0, 0, 1};
    assert_int_equal(CODEC->error_reply(run.state, out), 16);
    assert_memory_equal(out, want, 16);
    codec_run_free(&run);
    buf_free(&b);
}

/* ---- differential: the same bytes through libfcgi ---- */

struct oracle {
    struct params params; /* what libfcgi's envp held, FCGI_ROLE removed */
    uint8_t *body;
    size_t body_len;
};

struct writer {
    const char *path;
    const uint8_t *data;
    size_t len;
};

/* The "web server": connect, send the stream, read the answer to EOF. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w->path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        size_t off = 0;
        while (off < w->len) {
            ssize_t n = send(fd, w->data + off, w->len - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        char sink[4096];
        while (read(fd, sink, sizeof(sink)) > 0)
            ;
    }
    close(fd);
    return NULL;
}

static void libfcgi_decode(const uint8_t *in, size_t len, struct oracle *o)
{
    memset(o, 0, sizeof(*o));
    params_init(&o->params, SIZE_MAX, SIZE_MAX, SIZE_MAX);

    char dir[] = "/tmp/corral-fcgi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/s", dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);

    struct writer w = {path, in, len};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);

    FCGX_Request req;
    assert_int_equal(FCGX_InitRequest(&req, lfd, 0), 0);
    int rc = FCGX_Accept_r(&req);
    if (rc == 0) {
        for (char **e = req.envp; *e; e++) {
            const char *eq = strchr(*e, '=');
            assert_non_null(eq);
            if (e == req.envp && strncmp(*e, "FCGI_ROLE=", 10) == 0)
                continue; /* libfcgi's own addition */
            assert_int_equal(params_push(&o->params, *e, (size_t)(eq - *e)), PARAMS_OK);
            assert_int_equal(params_end_field(&o->params), PARAMS_OK);
            assert_int_equal(params_push(&o->params, eq + 1, strlen(eq + 1)), PARAMS_OK);
            assert_int_equal(params_end_field(&o->params), PARAMS_OK);
        }
        char chunk[8192];
        int n;
        while ((n = FCGX_GetStr(chunk, sizeof(chunk), req.in)) > 0) {
            o->body = realloc(o->body, o->body_len + (size_t)n);
            assert_non_null(o->body);
            memcpy(o->body + o->body_len, chunk, (size_t)n);
            o->body_len += (size_t)n;
        }
        FCGX_Finish_r(&req);
        if (req.ipcFd >= 0) /* a keep-conn request leaves it open */
            close(req.ipcFd);
    }
    pthread_join(t, NULL);
    close(lfd);
    unlink(path);
    rmdir(dir);
    assert_int_equal(rc, 0);
}

/* Decode IN with libfcgi and with our codec (whole, byte by byte, in odd
 * pieces) and require the same params, in the same order, and body. */
static void expect_same_as_libfcgi(const uint8_t *in, size_t len, const struct proto_limits *lim)
{
    struct oracle o;
    libfcgi_decode(in, len, &o);
    static const size_t steps[] = {0, 1, 13, 4099};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        if (steps[s] == 1 && len > 40000)
            continue; /* slow in the helper under ASan; small streams cover it */
        struct codec_run run;
        codec_feed(CODEC, lim, in, len, 0, steps[s], &run);
        if (run.error)
            fail_msg("our codec failed: %s", run.reason);
        assert_true(run.body_end);
        assert_int_equal(run.params.count, o.params.count);
        for (size_t i = 0; i < o.params.count; i++) {
            const struct params_entry *a = &run.params.entries[i];
            const struct params_entry *b = &o.params.entries[i];
            assert_string_equal(params_name(&run.params, a), params_name(&o.params, b));
            assert_int_equal(a->value_len, b->value_len);
            assert_memory_equal(params_value(&run.params, a), params_value(&o.params, b),
                                a->value_len + 1);
        }
        assert_int_equal(run.body_len, o.body_len);
        if (o.body_len)
            assert_memory_equal(run.body, o.body, o.body_len);
        codec_run_free(&run);
    }
    params_free(&o.params);
    free(o.body);
}

static void fastcgi_matches_libfcgi_on_nginx_request(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &nginx_req);
    expect_same_as_libfcgi(b.p, b.len, &default_limits);
    buf_free(&b);
}

static void fastcgi_matches_libfcgi_on_apache_request_with_split_params(void **state)
{
    (void)state;
    struct buf b = {0};
    request(&b, &apache_style, 1, 0, &apache_req);
    expect_same_as_libfcgi(b.p, b.len, &default_limits);
    buf_free(&b);
    /* Params cut every 5 bytes, 255 bytes of padding everywhere. */
    request(&b, &tiny_style, 1, 0, &nginx_req);
    expect_same_as_libfcgi(b.p, b.len, &default_limits);
    buf_free(&b);
}

static void fastcgi_matches_libfcgi_on_four_byte_lengths(void **state)
{
    (void)state;
    struct kv kv[] = {
        {name_130, value_200, 200},
        {"HTTP_BIG", value_70k, 70000},
        {"", "", 0},
        {"EMPTY", "", 0},
    };
    struct req rq = {kv, 4, "x", 1, -1};
    struct proto_limits lim = default_limits;
    lim.max_field = lim.max_head = 1 << 20;
    struct buf b = {0};
    request(&b, &apache_style, 1, 0, &rq);
    expect_same_as_libfcgi(b.p, b.len, &lim);
    buf_free(&b);
}

static void fastcgi_matches_libfcgi_on_streamed_body(void **state)
{
    (void)state;
    static const struct kv kv[] = {{"REQUEST_METHOD", "POST", 0},
                                   {"CONTENT_LENGTH", "", 0},
                                   {"HTTP_TRANSFER_ENCODING", "chunked", 0}};
    struct req rq = {kv, 3, body_100k, 100000, -1};
    struct buf b = {0};
    request(&b, &nginx_style, 1, 0, &rq);
    expect_same_as_libfcgi(b.p, b.len, &default_limits);
    buf_free(&b);
    request(&b, &apache_style, 1, 0, &rq);
    expect_same_as_libfcgi(b.p, b.len, &default_limits);
    buf_free(&b);
}

static void fastcgi_matches_libfcgi_with_foreign_records_interleaved(void **state)
{
    (void)state;
    struct buf b = {0}, full = {0};
    request(&full, &nginx_style, 1, 0, &nginx_req);
    put(&b, full.p, 16);                     /* BEGIN id 1 */
    record(&b, T_PARAMS, 5, "\1\1XY", 4, 4); /* other ids: skipped by both */
    record(&b, T_STDIN, 5, "zzz", 3, 0);
    put(&b, full.p + 16, full.len - 16);
    expect_same_as_libfcgi(b.p, b.len, &default_limits);
    buf_free(&b);
    buf_free(&full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fastcgi_decodes_nginx_request_at_every_split),
        cmocka_unit_test(fastcgi_decodes_apache_request_with_split_params_at_every_split),
        cmocka_unit_test(fastcgi_decodes_params_cut_inside_lengths_and_names),
        cmocka_unit_test(fastcgi_decodes_large_body_in_many_records),
        cmocka_unit_test(fastcgi_skips_padding_of_any_length),
        cmocka_unit_test(fastcgi_reads_four_byte_lengths),
        cmocka_unit_test(fastcgi_reads_70000_byte_value_with_raised_limits),
        cmocka_unit_test(fastcgi_accepts_long_form_length_of_short_field),
        cmocka_unit_test(fastcgi_accepts_empty_names_and_values),
        cmocka_unit_test(fastcgi_waits_on_truncated_input),
        cmocka_unit_test(fastcgi_consumes_nothing_after_body_end),
        cmocka_unit_test(fastcgi_serves_three_requests_on_kept_connection),
        cmocka_unit_test(fastcgi_skips_unread_body_after_next_request),
        cmocka_unit_test(fastcgi_answers_get_values_before_begin),
        cmocka_unit_test(fastcgi_answers_get_values_with_only_known_names),
        cmocka_unit_test(fastcgi_answers_get_values_with_largest_values),
        cmocka_unit_test(fastcgi_answers_each_get_values_name_once),
        cmocka_unit_test(fastcgi_rejects_get_values_ending_inside_a_pair),
        cmocka_unit_test(fastcgi_answers_get_values_in_the_middle_of_params),
        cmocka_unit_test(fastcgi_answers_unknown_management_type),
        cmocka_unit_test(fastcgi_answers_unknown_record_type_during_request),
        cmocka_unit_test(fastcgi_refuses_unknown_role_and_closes),
        cmocka_unit_test(fastcgi_refuses_unknown_role_and_keeps_connection),
        cmocka_unit_test(fastcgi_refuses_second_request_id),
        cmocka_unit_test(fastcgi_gave_up_finds_abort_after_body),
        cmocka_unit_test(fastcgi_reports_abort_of_active_request),
        cmocka_unit_test(fastcgi_ignores_abort_of_other_request),
        cmocka_unit_test(fastcgi_skips_records_of_other_ids_and_data),
        cmocka_unit_test(fastcgi_streams_body_with_empty_content_length),
        cmocka_unit_test(fastcgi_accepts_zero_content_length_with_empty_body),
        cmocka_unit_test(fastcgi_rejects_body_longer_than_content_length),
        cmocka_unit_test(fastcgi_rejects_body_shorter_than_content_length),
        cmocka_unit_test(fastcgi_rejects_malformed_content_length),
        cmocka_unit_test(fastcgi_rejects_duplicate_content_length),
        cmocka_unit_test(fastcgi_enforces_max_field),
        cmocka_unit_test(fastcgi_enforces_max_head),
        cmocka_unit_test(fastcgi_enforces_max_params),
        cmocka_unit_test(fastcgi_enforces_max_body),
        cmocka_unit_test(fastcgi_rejects_version_2),
        cmocka_unit_test(fastcgi_rejects_begin_with_wrong_length),
        cmocka_unit_test(fastcgi_rejects_begin_repeating_active_id),
        cmocka_unit_test(fastcgi_rejects_stdin_before_params_end),
        cmocka_unit_test(fastcgi_rejects_params_after_params_end),
        cmocka_unit_test(fastcgi_rejects_params_ending_inside_a_pair),
        cmocka_unit_test(fastcgi_describes_itself),
        cmocka_unit_test(fastcgi_encodes_frame_end_and_error_reply),
        cmocka_unit_test(fastcgi_goodbye_is_empty_stderr_of_last_id),
        cmocka_unit_test(fastcgi_error_reply_ends_request_that_failed),
        cmocka_unit_test(fastcgi_matches_libfcgi_on_nginx_request),
        cmocka_unit_test(fastcgi_matches_libfcgi_on_apache_request_with_split_params),
        cmocka_unit_test(fastcgi_matches_libfcgi_on_four_byte_lengths),
        cmocka_unit_test(fastcgi_matches_libfcgi_on_streamed_body),
        cmocka_unit_test(fastcgi_matches_libfcgi_with_foreign_records_interleaved),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
