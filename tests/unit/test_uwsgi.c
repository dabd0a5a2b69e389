/*
 * test_uwsgi.c — the uwsgi decoder and its response framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec_helpers.h"
#include "protocols/protocol.h"

/* ---- building packets ---- */

struct kv {
    const char *name;
    const char *value;
    size_t vlen; /* 0: strlen(value) */
};

#define KV(n, v)                                                                                   \
    {                                                                                              \
        .name = (n), .value = (v)                                                                  \
    }

struct buf {
    uint8_t *d;
    size_t len;
};

static void put(struct buf *b, const void *data, size_t n)
{
    b->d = realloc(b->d, b->len + n + 1);
    assert_non_null(b->d);
    if (n)
        memcpy(b->d + b->len, data, n);
    b->len += n;
}

static void put_u16(struct buf *b, size_t v)
{
    uint8_t le[2] = {(uint8_t)(v & 0xff), (uint8_t)(v >> 8)};
    put(b, le, 2);
}

static size_t kv_vlen(const struct kv *kv)
{
    return kv->vlen ? kv->vlen : strlen(kv->value);
}

/* A uwsgi packet: header with modifier1, the vars of KV, then BODY. */
static struct buf uwsgi_packet(uint8_t modifier1, const struct kv *kv, size_t n, const char *body,
                               size_t body_len)
{
    struct buf vars = {0}, b = {0};
    for (size_t i = 0; i < n; i++) {
        put_u16(&vars, strlen(kv[i].name));
        put(&vars, kv[i].name, strlen(kv[i].name));
        put_u16(&vars, kv_vlen(&kv[i]));
        put(&vars, kv[i].value, kv_vlen(&kv[i]));
    }
    uint8_t head[4] = {modifier1, (uint8_t)(vars.len & 0xff), (uint8_t)(vars.len >> 8), 0};
    put(&b, head, 4);
    put(&b, vars.d, vars.len);
    put(&b, body, body_len);
    free(vars.d);
    return b;
}

/* What nginx's stock uwsgi_params sends for a request (CONTENT_LENGTH and
 * CONTENT_TYPE are empty on a GET). */
#define NGINX_VARS(method, ctype, clen)                                                            \
    KV("QUERY_STRING", "a=1&b=%C3%A9"), KV("REQUEST_METHOD", method), KV("CONTENT_TYPE", ctype),   \
        KV("CONTENT_LENGTH", clen), KV("REQUEST_URI", "/app/x?a=1&b=%C3%A9"),                      \
        KV("PATH_INFO", "/app/x"), KV("DOCUMENT_ROOT", "/usr/share/nginx/html"),                   \
        KV("SERVER_PROTOCOL", "HTTP/1.1"), KV("REQUEST_SCHEME", "https"), KV("HTTPS", "on"),       \
        KV("REMOTE_ADDR", "192.0.2.7"), KV("REMOTE_PORT", "51234"), KV("SERVER_PORT", "443"),      \
        KV("SERVER_NAME", "example.org"), KV("HTTP_HOST", "example.org"),                          \
        KV("HTTP_USER_AGENT", "curl/8.5.0"), KV("HTTP_ACCEPT", "*/*")

static const struct kv nginx_get[] = {NGINX_VARS("GET", "", "")};
static const struct kv nginx_post[] = {
    NGINX_VARS("POST", "application/x-www-form-urlencoded", "11")};
static const char post_body[] = "hello=world";

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct proto_limits default_limits = PROTO_LIMITS_DEFAULT;

/* ---- checking runs ---- */

static void assert_param(const struct codec_run *run, const char *name, const void *value,
                         size_t vlen)
{
    size_t got_len = 0;
    const char *v = params_getn(&run->params, name, strlen(name), &got_len);
    assert_non_null(v);
    assert_int_equal(got_len, vlen);
    assert_memory_equal(v, value, vlen);
    assert_int_equal(v[vlen], '\0');
}

static void assert_params_are(const struct codec_run *run, const struct kv *kv, size_t n)
{
    assert_int_equal(run->params.count, n);
    for (size_t i = 0; i < n; i++) {
        const struct params_entry *e = &run->params.entries[i];
        assert_string_equal(params_name(&run->params, e), kv[i].name);
        assert_int_equal(e->value_len, kv_vlen(&kv[i]));
        assert_memory_equal(params_value(&run->params, e), kv[i].value, kv_vlen(&kv[i]));
    }
}

static void assert_complete(const struct codec_run *run, const char *body, size_t body_len)
{
    assert_false(run->error);
    assert_true(run->params_done);
    assert_true(run->body_end);
    assert_int_equal(run->content_length, body_len);
    assert_false(run->keep_conn);
    assert_int_equal(run->body_len, body_len);
    if (body_len)
        assert_memory_equal(run->body, body, body_len);
}

/* Feed the packet whole and check it fails with a reason containing WHAT. */
static void assert_refused(const struct buf *b, const struct proto_limits *lim, const char *what)
{
    struct codec_run run;
    codec_feed(&proto_uwsgi, lim, b->d, b->len, b->len, 0, &run);
    assert_true(run.error);
    assert_false(run.params_done);
    if (!strstr(run.reason, what))
        fail_msg("reason \"%s\" does not mention \"%s\"", run.reason, what);
    codec_run_free(&run);
}

static void assert_accepted(const struct buf *b, const struct proto_limits *lim)
{
    struct codec_run run;
    codec_feed(&proto_uwsgi, lim, b->d, b->len, b->len, 0, &run);
    if (run.error)
        fail_msg("refused: %s", run.reason);
    assert_true(run.body_end);
    codec_run_free(&run);
}

/* ---- typical requests ---- */

static void uwsgi_decodes_nginx_get(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_get, N(nginx_get), NULL, 0);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, NULL, 0);
    assert_params_are(&run, nginx_get, N(nginx_get));
    assert_int_equal(run.consumed, b.len);
    codec_run_free(&run);
    free(b.d);
}

static void uwsgi_decodes_nginx_post_with_body(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_post, N(nginx_post), post_body, strlen(post_body));
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, post_body, strlen(post_body));
    assert_params_are(&run, nginx_post, N(nginx_post));
    assert_int_equal(run.consumed, b.len);
    codec_run_free(&run);
    free(b.d);
}

static void uwsgi_treats_absent_content_length_as_zero(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("REQUEST_METHOD", "GET"), KV("PATH_INFO", "/")};
    struct buf b = uwsgi_packet(0, kv, N(kv), NULL, 0);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, NULL, 0);
    codec_run_free(&run);
    free(b.d);
}

static void uwsgi_ignores_modifier2(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_get, N(nginx_get), NULL, 0);
    b.d[3] = 7;
    assert_accepted(&b, &default_limits);
    free(b.d);
}

/* The same params and body whatever the split point and piece size. */
static void uwsgi_same_result_at_every_split(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_post, N(nginx_post), post_body, strlen(post_body));
    static const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t s = 0; s < N(steps); s++) {
        for (size_t split = 0; split <= b.len; split++) {
            struct codec_run run;
            codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, split, steps[s], &run);
            assert_complete(&run, post_body, strlen(post_body));
            assert_params_are(&run, nginx_post, N(nginx_post));
            assert_int_equal(run.consumed, b.len);
            codec_run_free(&run);
        }
    }
    free(b.d);
}

static void uwsgi_keeps_binary_and_non_ascii_values(void **unused)
{
    (void)unused;
    static const char bin[] = {'a', 0, (char)0xff, '\r', '\n', (char)0x80, 0, 'z'};
    static const struct kv kv[] = {
        {.name = "HTTP_X_BIN", .value = bin, .vlen = sizeof(bin)},
        KV("PATH_INFO", "/caf\xc3\xa9/\xe2\x82\xac"),
        KV("HTTP_X_HIGH", "\xfe\xfd\x01\x02"),
    };
    struct buf b = uwsgi_packet(0, kv, N(kv), NULL, 0);
    for (size_t step = 0; step <= 1; step++) {
        struct codec_run run;
        codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, 0, step, &run);
        assert_complete(&run, NULL, 0);
        assert_params_are(&run, kv, N(kv));
        assert_param(&run, "HTTP_X_BIN", bin, sizeof(bin));
        codec_run_free(&run);
    }
    free(b.d);
}

static void uwsgi_keeps_empty_values(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("QUERY_STRING", ""), KV("CONTENT_TYPE", ""), KV("X", "")};
    struct buf b = uwsgi_packet(0, kv, N(kv), NULL, 0);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 1, &run);
    assert_complete(&run, NULL, 0);
    assert_params_are(&run, kv, N(kv));
    codec_run_free(&run);
    free(b.d);
}

static void uwsgi_consumes_nothing_past_the_body(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_post, N(nginx_post), post_body, strlen(post_body));
    size_t request_len = b.len;
    put(&b, "EXTRA", 5);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, post_body, strlen(post_body));
    assert_int_equal(run.consumed, request_len);
    codec_run_free(&run);
    free(b.d);
}

/* ---- the event sequence, call by call ---- */

static void uwsgi_reports_body_end_for_empty_body_on_an_empty_call(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("CONTENT_LENGTH", "0")};
    struct buf b = uwsgi_packet(0, kv, N(kv), NULL, 0);
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    struct proto_event ev;
    params_init(&p, 65536, 1024, 65536);
    proto_uwsgi.init(state, &default_limits);

    assert_int_equal(proto_uwsgi.decode(state, b.d, b.len, &p, &ev), PROTO_PARAMS_DONE);
    assert_int_equal(ev.consumed, b.len);
    assert_int_equal(proto_uwsgi.content_length(state), 0);
    assert_int_equal(proto_uwsgi.decode(state, NULL, 0, &p, &ev), PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    /* After BODY_END: BODY_END again, nothing consumed. */
    assert_int_equal(proto_uwsgi.decode(state, (const uint8_t *)"x", 1, &p, &ev), PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    params_free(&p);
    free(b.d);
}

static void uwsgi_streams_body_from_the_input(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("CONTENT_LENGTH", "5")};
    struct buf b = uwsgi_packet(0, kv, N(kv), "abcdeXY", 7);
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    struct proto_event ev;
    params_init(&p, 65536, 1024, 65536);
    proto_uwsgi.init(state, &default_limits);

    size_t head = b.len - 7;
    assert_int_equal(proto_uwsgi.decode(state, b.d, head + 2, &p, &ev), PROTO_PARAMS_DONE);
    assert_int_equal(ev.consumed, head);
    assert_int_equal(proto_uwsgi.decode(state, b.d + head, 2, &p, &ev), PROTO_BODY_DATA);
    assert_ptr_equal(ev.data, b.d + head);
    assert_int_equal(ev.len, 2);
    assert_int_equal(ev.consumed, 2);
    /* No input with body still due: NEED_MORE, nothing consumed. */
    assert_int_equal(proto_uwsgi.decode(state, NULL, 0, &p, &ev), PROTO_NEED_MORE);
    assert_int_equal(ev.consumed, 0);
    assert_int_equal(proto_uwsgi.decode(state, b.d + head + 2, 5, &p, &ev), PROTO_BODY_DATA);
    assert_int_equal(ev.len, 3);
    assert_int_equal(ev.consumed, 3);
    assert_int_equal(proto_uwsgi.decode(state, b.d + head + 5, 2, &p, &ev), PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    params_free(&p);
    free(b.d);
}

static void uwsgi_needs_more_for_a_truncated_packet(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_get, N(nginx_get), NULL, 0);
    for (size_t cut = 0; cut < b.len; cut++) {
        struct codec_run run;
        codec_feed(&proto_uwsgi, &default_limits, b.d, cut, cut / 2, 0, &run);
        assert_false(run.error);
        assert_false(run.params_done);
        assert_int_equal(run.consumed, cut);
        codec_run_free(&run);
    }
    free(b.d);
}

static void uwsgi_repeats_the_error_without_consuming(void **unused)
{
    (void)unused;
    static const uint8_t bad[] = {72, 1, 0, 0, 'x'};
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    struct proto_event ev;
    params_init(&p, 65536, 1024, 65536);
    proto_uwsgi.init(state, &default_limits);
    assert_int_equal(proto_uwsgi.decode(state, bad, sizeof(bad), &p, &ev), PROTO_ERROR);
    assert_true(ev.consumed <= sizeof(bad));
    assert_int_equal(proto_uwsgi.decode(state, bad, sizeof(bad), &p, &ev), PROTO_ERROR);
    assert_int_equal(ev.consumed, 0);
    assert_non_null(strstr(ev.reason, "72"));
    params_free(&p);
}

static void uwsgi_decodes_a_new_request_after_next_request(void **unused)
{
    (void)unused;
    struct buf a = uwsgi_packet(0, nginx_post, N(nginx_post), post_body, strlen(post_body));
    struct buf b = uwsgi_packet(0, nginx_get, N(nginx_get), NULL, 0);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, a.d, a.len, a.len, 0, &run);
    assert_complete(&run, post_body, strlen(post_body));
    proto_uwsgi.next_request(run.state);
    params_reset(&run.params);
    free(run.body);
    run.body = NULL;
    run.body_len = 0;
    codec_feed_more(&proto_uwsgi, b.d, b.len, 3, &run);
    assert_complete(&run, NULL, 0);
    assert_params_are(&run, nginx_get, N(nginx_get));
    codec_run_free(&run);
    free(a.d);
    free(b.d);
}

/* ---- limits: exactly at is fine, one over is an error ---- */

static void uwsgi_enforces_max_head(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_get, N(nginx_get), NULL, 0);
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_head = b.len - 4;
    assert_accepted(&b, &lim);
    lim.max_head = b.len - 5;
    assert_refused(&b, &lim, "over the limit");
    free(b.d);
}

static void uwsgi_enforces_max_params(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_get, N(nginx_get), NULL, 0);
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_params = N(nginx_get);
    assert_accepted(&b, &lim);
    lim.max_params = N(nginx_get) - 1;
    assert_refused(&b, &lim, params_strerror(PARAMS_TOO_MANY));
    free(b.d);
}

static void uwsgi_enforces_max_field_on_names_and_values(void **unused)
{
    (void)unused;
    static const struct kv value16[] = {KV("A", "0123456789abcdef")};
    static const struct kv name16[] = {KV("ABCDEFGHIJKLMNOP", "v")};
    struct buf v = uwsgi_packet(0, value16, 1, NULL, 0);
    struct buf n = uwsgi_packet(0, name16, 1, NULL, 0);
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_field = 16;
    assert_accepted(&v, &lim);
    assert_accepted(&n, &lim);
    lim.max_field = 15;
    assert_refused(&v, &lim, params_strerror(PARAMS_FIELD_TOO_LONG));
    assert_refused(&n, &lim, params_strerror(PARAMS_FIELD_TOO_LONG));
    free(v.d);
    free(n.d);
}

static void uwsgi_enforces_max_body(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, nginx_post, N(nginx_post), post_body, strlen(post_body));
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_body = 11;
    assert_accepted(&b, &lim);
    lim.max_body = 10;
    assert_refused(&b, &lim, "over the body limit");
    free(b.d);
}

/* ---- malformed packets ---- */

static void uwsgi_refuses_modifier1_72(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(72, nginx_get, N(nginx_get), NULL, 0);
    assert_refused(&b, &default_limits, "modifier1 72 is not supported");
    free(b.d);
}

static void uwsgi_refuses_http_with_a_hint(void **unused)
{
    (void)unused;
    static const char http[] = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
    struct buf b = {0};
    put(&b, http, sizeof(http) - 1);
    assert_refused(&b, &default_limits, "speaking HTTP");
    assert_refused(&b, &default_limits, "21573");
    free(b.d);
}

static void uwsgi_refuses_empty_vars_block(void **unused)
{
    (void)unused;
    struct buf b = uwsgi_packet(0, NULL, 0, NULL, 0);
    assert_refused(&b, &default_limits, "empty uwsgi vars block");
    free(b.d);
}

static void uwsgi_refuses_truncated_pair(void **unused)
{
    (void)unused;
    /* datasize 1: one byte of a key length, then the block ends. */
    static const uint8_t one[] = {0, 1, 0, 0, 4};
    /* A complete pair, then one byte of the next key's length. */
    static const uint8_t half[] = {0, 7, 0, 0, 1, 0, 'A', 1, 0, 'x', 5};
    struct buf b = {0};
    put(&b, one, sizeof(one));
    assert_refused(&b, &default_limits, "runs past the vars block");
    b.len = 0;
    put(&b, half, sizeof(half));
    assert_refused(&b, &default_limits, "runs past the vars block");
    free(b.d);
}

static void uwsgi_refuses_key_length_past_datasize(void **unused)
{
    (void)unused;
    static const uint8_t key[] = {0, 8, 0, 0, 9, 0, 'A', 'B', 'C', 'D', 'E', 'F'};
    /* Key fits, but leaves no room for the value's length. */
    static const uint8_t nolen[] = {0, 4, 0, 0, 2, 0, 'A', 'B'};
    static const uint8_t val[] = {0, 7, 0, 0, 1, 0, 'A', 3, 0, 'x', 'y'};
    struct buf b = {0};
    put(&b, key, sizeof(key));
    assert_refused(&b, &default_limits, "key of 9 bytes runs past");
    b.len = 0;
    put(&b, nolen, sizeof(nolen));
    assert_refused(&b, &default_limits, "key of 2 bytes runs past");
    b.len = 0;
    put(&b, val, sizeof(val));
    assert_refused(&b, &default_limits, "value of 3 bytes runs past");
    free(b.d);
}

static void uwsgi_refuses_malformed_content_length(void **unused)
{
    (void)unused;
    static const char *const bad[] = {
        "12a",
        "-1",
        " 5",
        "5 ",
        "+5",
        "0x10",
        "99999999999999999999", /* 20 digits */
        "9223372036854775808",  /* INT64_MAX + 1 */
    };
    for (size_t i = 0; i < N(bad); i++) {
        struct kv kv[] = {KV("REQUEST_METHOD", "POST"), KV("CONTENT_LENGTH", bad[i])};
        struct buf b = uwsgi_packet(0, kv, N(kv), "hello", 5);
        assert_refused(&b, &default_limits, "CONTENT_LENGTH");
        free(b.d);
    }
}

static void uwsgi_accepts_largest_content_length(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("CONTENT_LENGTH", "9223372036854775807")};
    struct buf b = uwsgi_packet(0, kv, N(kv), NULL, 0);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_true(run.params_done);
    assert_int_equal(run.content_length, INT64_MAX);
    codec_run_free(&run);
    free(b.d);
}

/* nginx's uwsgi_params sends "CONTENT_LENGTH $content_length" without
 * if_not_empty: an empty value is every body-less nginx request. */
static void uwsgi_reads_empty_content_length_as_zero(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("CONTENT_LENGTH", "")};
    struct buf b = uwsgi_packet(0, kv, N(kv), "junk", 4);
    struct codec_run run;
    codec_feed(&proto_uwsgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, NULL, 0);
    assert_int_equal(run.consumed, b.len - 4);
    codec_run_free(&run);
    free(b.d);
}

static void uwsgi_refuses_duplicate_content_length(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {KV("CONTENT_LENGTH", "5"), KV("X", "y"),
                                   KV("CONTENT_LENGTH", "5")};
    struct buf b = uwsgi_packet(0, kv, N(kv), "hello", 5);
    assert_refused(&b, &default_limits, "duplicate CONTENT_LENGTH");
    free(b.d);
}

/* ---- encoding ---- */

static void uwsgi_encodes_raw_http_responses(void **unused)
{
    (void)unused;
    _Alignas(max_align_t) uint8_t state[1024];
    uint8_t out[PROTO_END_MAX];
    proto_uwsgi.init(state, &default_limits);
    assert_string_equal(proto_uwsgi.name, "uwsgi");
    assert_true(proto_uwsgi.state_size <= sizeof(state));
    assert_string_equal(proto_uwsgi.status_prefix, "HTTP/1.1 ");
    assert_true(proto_uwsgi.max_frame == SIZE_MAX);
    assert_int_equal(proto_uwsgi.frame(state, out, 100), 0);
    assert_int_equal(proto_uwsgi.end(state, out, 0), 0);
    assert_int_equal(proto_uwsgi.error_reply(state, out), 0);
    /* One request per connection: nothing to send a stopping worker's
     * kept connections (there are none). */
    assert_null(proto_uwsgi.goodbye);
    assert_false(proto_uwsgi.keep_conn(state));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uwsgi_decodes_nginx_get),
        cmocka_unit_test(uwsgi_decodes_nginx_post_with_body),
        cmocka_unit_test(uwsgi_treats_absent_content_length_as_zero),
        cmocka_unit_test(uwsgi_ignores_modifier2),
        cmocka_unit_test(uwsgi_same_result_at_every_split),
        cmocka_unit_test(uwsgi_keeps_binary_and_non_ascii_values),
        cmocka_unit_test(uwsgi_keeps_empty_values),
        cmocka_unit_test(uwsgi_consumes_nothing_past_the_body),
        cmocka_unit_test(uwsgi_reports_body_end_for_empty_body_on_an_empty_call),
        cmocka_unit_test(uwsgi_streams_body_from_the_input),
        cmocka_unit_test(uwsgi_needs_more_for_a_truncated_packet),
        cmocka_unit_test(uwsgi_repeats_the_error_without_consuming),
        cmocka_unit_test(uwsgi_decodes_a_new_request_after_next_request),
        cmocka_unit_test(uwsgi_enforces_max_head),
        cmocka_unit_test(uwsgi_enforces_max_params),
        cmocka_unit_test(uwsgi_enforces_max_field_on_names_and_values),
        cmocka_unit_test(uwsgi_enforces_max_body),
        cmocka_unit_test(uwsgi_refuses_modifier1_72),
        cmocka_unit_test(uwsgi_refuses_http_with_a_hint),
        cmocka_unit_test(uwsgi_refuses_empty_vars_block),
        cmocka_unit_test(uwsgi_refuses_truncated_pair),
        cmocka_unit_test(uwsgi_refuses_key_length_past_datasize),
        cmocka_unit_test(uwsgi_refuses_malformed_content_length),
        cmocka_unit_test(uwsgi_accepts_largest_content_length),
        cmocka_unit_test(uwsgi_reads_empty_content_length_as_zero),
        cmocka_unit_test(uwsgi_refuses_duplicate_content_length),
        cmocka_unit_test(uwsgi_encodes_raw_http_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
