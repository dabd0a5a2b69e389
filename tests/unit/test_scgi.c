/*
 * test_scgi.c — the SCGI decoder and its response framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec_helpers.h"
#include "protocols/protocol.h"

/* ---- building requests ---- */

struct kv {
    const char *name;
    const char *value;
};

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

static void put_str(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* An SCGI request: netstring of the KV headers, then BODY. */
static struct buf scgi_request(const struct kv *kv, size_t n, const char *body)
{
    struct buf h = {0}, b = {0};
    for (size_t i = 0; i < n; i++) {
        put(&h, kv[i].name, strlen(kv[i].name) + 1);
        put(&h, kv[i].value, strlen(kv[i].value) + 1);
    }
    char len[32];
    snprintf(len, sizeof(len), "%zu:", h.len);
    put_str(&b, len);
    put(&b, h.d, h.len);
    put_str(&b, ",");
    put_str(&b, body);
    free(h.d);
    return b;
}

/* A request from literal bytes (which may hold NULs). */
#define RAW(lit) raw_request(lit, sizeof(lit) - 1)
static struct buf raw_request(const char *bytes, size_t n)
{
    struct buf b = {0};
    put(&b, bytes, n);
    return b;
}

/* What nginx sends: CONTENT_LENGTH (written by the module), then the stock
 * scgi_params, then the request headers. */
#define NGINX_HEADERS(clen, method, ctype)                                                         \
    {"CONTENT_LENGTH", clen}, {"REQUEST_METHOD", method}, {"REQUEST_URI", "/app/x?a=1"},           \
        {"QUERY_STRING", "a=1"}, {"CONTENT_TYPE", ctype}, {"DOCUMENT_URI", "/app/x"},              \
        {"DOCUMENT_ROOT", "/usr/share/nginx/html"}, {"SCGI", "1"},                                 \
        {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_SCHEME", "http"}, {"REMOTE_ADDR", "192.0.2.7"}, \
        {"REMOTE_PORT", "51234"}, {"SERVER_PORT", "80"}, {"SERVER_NAME", "example.org"},           \
        {"HTTP_HOST", "example.org"}, {"HTTP_USER_AGENT", "curl/8.5.0"},                           \
    {                                                                                              \
        "HTTP_ACCEPT", "*/*"                                                                       \
    }

static const struct kv nginx_get[] = {NGINX_HEADERS("0", "GET", "")};
static const struct kv nginx_post[] = {
    NGINX_HEADERS("11", "POST", "application/x-www-form-urlencoded")};
static const char post_body[] = "hello=world";

/* What Apache mod_proxy_scgi sends: CONTENT_LENGTH, SCGI, then the CGI
 * environment. */
static const struct kv apache_post[] = {
    {"CONTENT_LENGTH", "11"},
    {"SCGI", "1"},
    {"HTTP_HOST", "example.org"},
    {"CONTENT_TYPE", "application/x-www-form-urlencoded"},
    {"SERVER_SOFTWARE", "Apache/2.4.62 (Debian)"},
    {"SERVER_NAME", "example.org"},
    {"SERVER_ADDR", "192.0.2.1"},
    {"SERVER_PORT", "80"},
    {"REMOTE_ADDR", "192.0.2.7"},
    {"DOCUMENT_ROOT", "/var/www/html"},
    {"REQUEST_SCHEME", "http"},
    {"SERVER_PROTOCOL", "HTTP/1.1"},
    {"REQUEST_METHOD", "POST"},
    {"QUERY_STRING", ""},
    {"REQUEST_URI", "/app/x"},
    {"SCRIPT_NAME", "/app"},
    {"PATH_INFO", "/x"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct proto_limits default_limits = PROTO_LIMITS_DEFAULT;

/* ---- checking runs ---- */

static void assert_params_are(const struct codec_run *run, const struct kv *kv, size_t n)
{
    assert_int_equal(run->params.count, n);
    for (size_t i = 0; i < n; i++) {
        const struct params_entry *e = &run->params.entries[i];
        assert_string_equal(params_name(&run->params, e), kv[i].name);
        assert_int_equal(e->value_len, strlen(kv[i].value));
        assert_string_equal(params_value(&run->params, e), kv[i].value);
    }
}

static void assert_complete(const struct codec_run *run, const char *body)
{
    size_t body_len = strlen(body);
    if (run->error)
        fail_msg("refused: %s", run->reason);
    assert_true(run->params_done);
    assert_true(run->body_end);
    assert_int_equal(run->content_length, body_len);
    assert_false(run->keep_conn);
    assert_int_equal(run->body_len, body_len);
    if (body_len)
        assert_memory_equal(run->body, body, body_len);
}

static void assert_refused(const struct buf *b, const struct proto_limits *lim, const char *what)
{
    struct codec_run run;
    codec_feed(&proto_scgi, lim, b->d, b->len, b->len, 0, &run);
    assert_true(run.error);
    assert_false(run.params_done);
    if (!strstr(run.reason, what))
        fail_msg("reason \"%s\" does not mention \"%s\"", run.reason, what);
    codec_run_free(&run);
    /* Byte by byte: the same verdict. */
    codec_feed(&proto_scgi, lim, b->d, b->len, 0, 1, &run);
    assert_true(run.error);
    assert_false(run.params_done);
    codec_run_free(&run);
}

static void assert_accepted(const struct buf *b, const struct proto_limits *lim)
{
    struct codec_run run;
    codec_feed(&proto_scgi, lim, b->d, b->len, b->len, 0, &run);
    if (run.error)
        fail_msg("refused: %s", run.reason);
    assert_true(run.body_end);
    codec_run_free(&run);
}

/* ---- typical requests ---- */

static void scgi_decodes_nginx_get(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_get, N(nginx_get), "");
    struct codec_run run;
    codec_feed(&proto_scgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, "");
    assert_params_are(&run, nginx_get, N(nginx_get));
    assert_int_equal(run.consumed, b.len);
    codec_run_free(&run);
    free(b.d);
}

static void scgi_decodes_nginx_post_with_body(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_post, N(nginx_post), post_body);
    struct codec_run run;
    codec_feed(&proto_scgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, post_body);
    assert_params_are(&run, nginx_post, N(nginx_post));
    assert_int_equal(run.consumed, b.len);
    codec_run_free(&run);
    free(b.d);
}

static void scgi_decodes_apache_post(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(apache_post, N(apache_post), post_body);
    struct codec_run run;
    codec_feed(&proto_scgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, post_body);
    assert_params_are(&run, apache_post, N(apache_post));
    codec_run_free(&run);
    free(b.d);
}

/* The same params and body whatever the split point and piece size. */
static void scgi_same_result_at_every_split(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_post, N(nginx_post), post_body);
    static const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t s = 0; s < N(steps); s++) {
        for (size_t split = 0; split <= b.len; split++) {
            struct codec_run run;
            codec_feed(&proto_scgi, &default_limits, b.d, b.len, split, steps[s], &run);
            assert_complete(&run, post_body);
            assert_params_are(&run, nginx_post, N(nginx_post));
            assert_int_equal(run.consumed, b.len);
            codec_run_free(&run);
        }
    }
    free(b.d);
}

static void scgi_keeps_non_ascii_values(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {
        {"CONTENT_LENGTH", "0"},
        {"PATH_INFO", "/caf\xc3\xa9/\xe2\x82\xac"},
        {"HTTP_X_BIN", "\x01\x7f\x80\xfe\xff\r\n,:"},
    };
    struct buf b = scgi_request(kv, N(kv), "");
    for (size_t step = 0; step <= 1; step++) {
        struct codec_run run;
        codec_feed(&proto_scgi, &default_limits, b.d, b.len, 0, step, &run);
        assert_complete(&run, "");
        assert_params_are(&run, kv, N(kv));
        codec_run_free(&run);
    }
    free(b.d);
}

static void scgi_keeps_empty_values(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {
        {"CONTENT_LENGTH", "0"}, {"QUERY_STRING", ""}, {"CONTENT_TYPE", ""}, {"X", ""}};
    struct buf b = scgi_request(kv, N(kv), "");
    struct codec_run run;
    codec_feed(&proto_scgi, &default_limits, b.d, b.len, b.len, 1, &run);
    assert_complete(&run, "");
    assert_params_are(&run, kv, N(kv));
    codec_run_free(&run);
    free(b.d);
}

static void scgi_accepts_missing_scgi_header(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "3"}, {"REQUEST_METHOD", "PUT"}};
    struct buf b = scgi_request(kv, N(kv), "abc");
    struct codec_run run;
    codec_feed(&proto_scgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, "abc");
    assert_params_are(&run, kv, N(kv));
    codec_run_free(&run);
    free(b.d);
}

static void scgi_consumes_nothing_past_the_body(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_post, N(nginx_post), post_body);
    size_t request_len = b.len;
    put_str(&b, "EXTRA");
    struct codec_run run;
    codec_feed(&proto_scgi, &default_limits, b.d, b.len, b.len, 0, &run);
    assert_complete(&run, post_body);
    assert_int_equal(run.consumed, request_len);
    codec_run_free(&run);
    free(b.d);
}

/* ---- the event sequence, call by call ---- */

static void scgi_reports_body_end_for_empty_body_on_an_empty_call(void **unused)
{
    (void)unused;
    struct buf b = RAW("17:CONTENT_LENGTH\0"
                       "0\0,");
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    struct proto_event ev;
    params_init(&p, 65536, 1024, 65536);
    proto_scgi.init(state, &default_limits);

    assert_int_equal(proto_scgi.decode(state, b.d, b.len, &p, &ev), PROTO_PARAMS_DONE);
    assert_int_equal(ev.consumed, b.len);
    assert_int_equal(proto_scgi.content_length(state), 0);
    assert_int_equal(proto_scgi.decode(state, NULL, 0, &p, &ev), PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    assert_int_equal(proto_scgi.decode(state, (const uint8_t *)"x", 1, &p, &ev), PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    params_free(&p);
    free(b.d);
}

static void scgi_streams_body_from_the_input(void **unused)
{
    (void)unused;
    struct buf b = RAW("17:CONTENT_LENGTH\0"
                       "5\0,abcdeXY");
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    struct proto_event ev;
    params_init(&p, 65536, 1024, 65536);
    proto_scgi.init(state, &default_limits);

    size_t head = b.len - 7;
    assert_int_equal(proto_scgi.decode(state, b.d, head + 2, &p, &ev), PROTO_PARAMS_DONE);
    assert_int_equal(ev.consumed, head);
    assert_int_equal(proto_scgi.decode(state, b.d + head, 2, &p, &ev), PROTO_BODY_DATA);
    assert_ptr_equal(ev.data, b.d + head);
    assert_int_equal(ev.len, 2);
    assert_int_equal(ev.consumed, 2);
    assert_int_equal(proto_scgi.decode(state, NULL, 0, &p, &ev), PROTO_NEED_MORE);
    assert_int_equal(ev.consumed, 0);
    assert_int_equal(proto_scgi.decode(state, b.d + head + 2, 5, &p, &ev), PROTO_BODY_DATA);
    assert_int_equal(ev.len, 3);
    assert_int_equal(proto_scgi.decode(state, b.d + head + 5, 2, &p, &ev), PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    params_free(&p);
    free(b.d);
}

static void scgi_needs_more_for_a_truncated_request(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_get, N(nginx_get), "");
    for (size_t cut = 0; cut < b.len; cut++) {
        struct codec_run run;
        codec_feed(&proto_scgi, &default_limits, b.d, cut, cut / 2, 0, &run);
        assert_false(run.error);
        assert_false(run.params_done);
        assert_int_equal(run.consumed, cut);
        codec_run_free(&run);
    }
    free(b.d);
}

static void scgi_repeats_the_error_without_consuming(void **unused)
{
    (void)unused;
    static const uint8_t bad[] = "05:abcde,";
    _Alignas(max_align_t) uint8_t state[1024];
    struct params p;
    struct proto_event ev;
    params_init(&p, 65536, 1024, 65536);
    proto_scgi.init(state, &default_limits);
    assert_int_equal(proto_scgi.decode(state, bad, sizeof(bad) - 1, &p, &ev), PROTO_ERROR);
    assert_true(ev.consumed <= sizeof(bad) - 1);
    assert_int_equal(proto_scgi.decode(state, bad, sizeof(bad) - 1, &p, &ev), PROTO_ERROR);
    assert_int_equal(ev.consumed, 0);
    assert_non_null(strstr(ev.reason, "starts with 0"));
    params_free(&p);
}

/* ---- limits: exactly at is fine, one over is an error ---- */

static void scgi_enforces_max_head(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_get, N(nginx_get), "");
    size_t head_len = (size_t)strtoul((const char *)b.d, NULL, 10);
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_head = head_len;
    assert_accepted(&b, &lim);
    lim.max_head = head_len - 1;
    assert_refused(&b, &lim, "over the limit");
    free(b.d);
}

static void scgi_refuses_a_length_with_too_many_digits(void **unused)
{
    (void)unused;
    struct buf b = RAW("99999999999999999999999999999:CONTENT_LENGTH\0"
                       "0\0,");
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_head = SIZE_MAX;
    assert_refused(&b, &lim, "over the limit");
    assert_refused(&b, &default_limits, "over the limit");
    free(b.d);
}

static void scgi_enforces_max_params(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_get, N(nginx_get), "");
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_params = N(nginx_get);
    assert_accepted(&b, &lim);
    lim.max_params = N(nginx_get) - 1;
    assert_refused(&b, &lim, params_strerror(PARAMS_TOO_MANY));
    free(b.d);
}

static void scgi_enforces_max_field_on_names_and_values(void **unused)
{
    (void)unused;
    static const struct kv value16[] = {{"CONTENT_LENGTH", "0"}, {"A", "0123456789abcdef"}};
    static const struct kv name16[] = {{"CONTENT_LENGTH", "0"}, {"ABCDEFGHIJKLMNOP", "v"}};
    struct buf v = scgi_request(value16, N(value16), "");
    struct buf n = scgi_request(name16, N(name16), "");
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

static void scgi_enforces_max_body(void **unused)
{
    (void)unused;
    struct buf b = scgi_request(nginx_post, N(nginx_post), post_body);
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_body = 11;
    assert_accepted(&b, &lim);
    lim.max_body = 10;
    assert_refused(&b, &lim, "over the body limit");
    free(b.d);
}

/* ---- malformed requests ---- */

static void scgi_refuses_leading_zero_length(void **unused)
{
    (void)unused;
    struct buf b = RAW("017:CONTENT_LENGTH\0"
                       "0\0,");
    assert_refused(&b, &default_limits, "starts with 0");
    free(b.d);
    b = RAW("0:,");
    assert_refused(&b, &default_limits, "starts with 0");
    free(b.d);
}

static void scgi_refuses_non_digit_length(void **unused)
{
    (void)unused;
    struct buf b = RAW("1a:CONTENT_LENGTH\0"
                       "0\0,");
    assert_refused(&b, &default_limits, "bad byte 0x61");
    free(b.d);
    b = RAW(" 17:CONTENT_LENGTH\0"
            "0\0,");
    assert_refused(&b, &default_limits, "bad byte 0x20");
    free(b.d);
    b = RAW(":CONTENT_LENGTH\0"
            "0\0,");
    assert_refused(&b, &default_limits, "no length");
    free(b.d);
}

static void scgi_refuses_http_with_a_hint(void **unused)
{
    (void)unused;
    struct buf b = RAW("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
    assert_refused(&b, &default_limits, "speaking HTTP");
    free(b.d);
}

static void scgi_refuses_missing_comma(void **unused)
{
    (void)unused;
    struct buf b = RAW("17:CONTENT_LENGTH\0"
                       "0\0;");
    assert_refused(&b, &default_limits, "not followed by ','");
    free(b.d);
    /* Length one short: the last NUL lands where the ',' belongs. */
    b = RAW("16:CONTENT_LENGTH\0"
            "0\0,");
    assert_refused(&b, &default_limits, "middle of a name/value pair");
    free(b.d);
}

static void scgi_refuses_content_length_not_first(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {{"SCGI", "1"}, {"CONTENT_LENGTH", "0"}};
    struct buf b = scgi_request(kv, N(kv), "");
    assert_refused(&b, &default_limits, "first header is \"SCGI\", not CONTENT_LENGTH");
    free(b.d);
}

static void scgi_refuses_missing_content_length(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {{"REQUEST_METHOD", "GET"}};
    struct buf b = scgi_request(kv, N(kv), "");
    assert_refused(&b, &default_limits, "not CONTENT_LENGTH");
    free(b.d);
}

static void scgi_refuses_scgi_0(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "0"}, {"SCGI", "0"}};
    struct buf b = scgi_request(kv, N(kv), "");
    assert_refused(&b, &default_limits, "SCGI version \"0\" is not supported");
    free(b.d);
    static const struct kv kv2[] = {{"CONTENT_LENGTH", "0"}, {"SCGI", "10"}};
    b = scgi_request(kv2, N(kv2), "");
    assert_refused(&b, &default_limits, "SCGI version");
    free(b.d);
}

static void scgi_refuses_duplicate_scgi(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "0"}, {"SCGI", "1"}, {"SCGI", "1"}};
    struct buf b = scgi_request(kv, N(kv), "");
    assert_refused(&b, &default_limits, "duplicate SCGI");
    free(b.d);
}

static void scgi_refuses_duplicate_content_length(void **unused)
{
    (void)unused;
    static const struct kv kv[] = {{"CONTENT_LENGTH", "5"}, {"SCGI", "1"}, {"CONTENT_LENGTH", "5"}};
    struct buf b = scgi_request(kv, N(kv), "hello");
    assert_refused(&b, &default_limits, "duplicate CONTENT_LENGTH");
    free(b.d);
}

static void scgi_refuses_header_block_ending_mid_pair(void **unused)
{
    (void)unused;
    /* Ends after a name's NUL (no value). */
    struct buf b = RAW("23:CONTENT_LENGTH\0"
                       "0\0SCGI\0"
                       "1,");
    assert_refused(&b, &default_limits, "middle of a name/value pair");
    free(b.d);
    /* Ends inside a name. */
    b = RAW("20:CONTENT_LENGTH\0"
            "0\0SCG,");
    assert_refused(&b, &default_limits, "middle of a name/value pair");
    free(b.d);
    /* Ends after a name and NUL. */
    b = RAW("22:CONTENT_LENGTH\0"
            "0\0SCGI\0,");
    assert_refused(&b, &default_limits, "middle of a name/value pair");
    free(b.d);
}

static void scgi_refuses_malformed_content_length(void **unused)
{
    (void)unused;
    static const char *const bad[] = {
        "12a",
        "-1",
        "",
        " 5",
        "5 ",
        "+5",
        "0x10",
        "99999999999999999999", /* 20 digits */
        "9223372036854775808",  /* INT64_MAX + 1 */
    };
    for (size_t i = 0; i < N(bad); i++) {
        struct kv kv[] = {{"CONTENT_LENGTH", bad[i]}, {"SCGI", "1"}};
        struct buf b = scgi_request(kv, N(kv), "hello");
        assert_refused(&b, &default_limits, "CONTENT_LENGTH");
        free(b.d);
    }
}

/* ---- encoding ---- */

static void scgi_encodes_cgi_style_responses(void **unused)
{
    (void)unused;
    _Alignas(max_align_t) uint8_t state[1024];
    uint8_t out[PROTO_END_MAX];
    proto_scgi.init(state, &default_limits);
    assert_string_equal(proto_scgi.name, "scgi");
    assert_true(proto_scgi.state_size <= sizeof(state));
    assert_string_equal(proto_scgi.status_prefix, "Status: ");
    assert_true(proto_scgi.max_frame == SIZE_MAX);
    assert_int_equal(proto_scgi.frame(state, out, 100), 0);
    assert_int_equal(proto_scgi.end(state, out, 0), 0);
    assert_int_equal(proto_scgi.error_reply(state, out), 0);
    /* One request per connection: nothing to send a stopping worker's
     * kept connections (there are none). */
    assert_null(proto_scgi.goodbye);
    assert_false(proto_scgi.keep_conn(state));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scgi_decodes_nginx_get),
        cmocka_unit_test(scgi_decodes_nginx_post_with_body),
        cmocka_unit_test(scgi_decodes_apache_post),
        cmocka_unit_test(scgi_same_result_at_every_split),
        cmocka_unit_test(scgi_keeps_non_ascii_values),
        cmocka_unit_test(scgi_keeps_empty_values),
        cmocka_unit_test(scgi_accepts_missing_scgi_header),
        cmocka_unit_test(scgi_consumes_nothing_past_the_body),
        cmocka_unit_test(scgi_reports_body_end_for_empty_body_on_an_empty_call),
        cmocka_unit_test(scgi_streams_body_from_the_input),
        cmocka_unit_test(scgi_needs_more_for_a_truncated_request),
        cmocka_unit_test(scgi_repeats_the_error_without_consuming),
        cmocka_unit_test(scgi_enforces_max_head),
        cmocka_unit_test(scgi_refuses_a_length_with_too_many_digits),
        cmocka_unit_test(scgi_enforces_max_params),
        cmocka_unit_test(scgi_enforces_max_field_on_names_and_values),
        cmocka_unit_test(scgi_enforces_max_body),
        cmocka_unit_test(scgi_refuses_leading_zero_length),
        cmocka_unit_test(scgi_refuses_non_digit_length),
        cmocka_unit_test(scgi_refuses_http_with_a_hint),
        cmocka_unit_test(scgi_refuses_missing_comma),
        cmocka_unit_test(scgi_refuses_content_length_not_first),
        cmocka_unit_test(scgi_refuses_missing_content_length),
        cmocka_unit_test(scgi_refuses_scgi_0),
        cmocka_unit_test(scgi_refuses_duplicate_scgi),
        cmocka_unit_test(scgi_refuses_duplicate_content_length),
        cmocka_unit_test(scgi_refuses_header_block_ending_mid_pair),
        cmocka_unit_test(scgi_refuses_malformed_content_length),
        cmocka_unit_test(scgi_encodes_cgi_style_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
