/*
 * test_http.c — the HTTP/1.1 codec (protocols/http.c): params, bodies, every
 * split point of valid requests, the request-smuggling shapes, the limits,
 * keep-alive and the response framing.
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

static const struct proto_limits lim_default = PROTO_LIMITS_DEFAULT;

static void feed(const char *req, size_t split, size_t step, struct codec_run *run,
                 const struct proto_limits *lim)
{
    codec_feed(&proto_http, lim ? lim : &lim_default, (const uint8_t *)req, strlen(req), split,
               step, run);
}

static void expect_param(const struct codec_run *run, const char *name, const char *value)
{
    const char *v = params_get(&run->params, name);
    if (!v)
        fail_msg("%s: missing (reason: %s)", name, run->reason);
    if (strcmp(v, value) != 0)
        fail_msg("%s: got \"%s\", expected \"%s\"", name, v, value);
}

static void expect_no_param(const struct codec_run *run, const char *name)
{
    const char *v = params_get(&run->params, name);
    if (v)
        fail_msg("%s: present (\"%s\"), expected absent", name, v);
}

/* ---- params ---- */

static void http_get_gives_cgi_params(void **state)
{
    (void)state;
    struct codec_run run;
    feed("GET /app/caf%C3%A9%20x?a=1&b=%2F HTTP/1.1\r\n"
         "Host: example.org:8080\r\n"
         "User-Agent: t/1\r\n"
         "X-Multi-Word-Name:   spaced value \t \r\n"
         "Accept:\r\n"
         "\r\n",
         0, 0, &run, NULL);
    assert_true(run.params_done);
    assert_true(run.body_end);
    assert_false(run.error);
    expect_param(&run, "REQUEST_METHOD", "GET");
    expect_param(&run, "REQUEST_URI", "/app/caf%C3%A9%20x?a=1&b=%2F");
    expect_param(&run, "PATH_INFO", "/app/caf\xc3\xa9 x");
    expect_param(&run, "QUERY_STRING", "a=1&b=%2F");
    expect_param(&run, "SERVER_PROTOCOL", "HTTP/1.1");
    expect_param(&run, "SERVER_NAME", "example.org");
    expect_param(&run, "SERVER_PORT", "8080");
    expect_param(&run, "HTTP_HOST", "example.org:8080");
    expect_param(&run, "HTTP_USER_AGENT", "t/1");
    expect_param(&run, "HTTP_X_MULTI_WORD_NAME", "spaced value");
    expect_param(&run, "HTTP_ACCEPT", "");
    assert_int_equal(run.content_length, 0);
    assert_true(run.keep_conn);
    assert_int_equal(run.consumed, strlen("GET /app/caf%C3%A9%20x?a=1&b=%2F HTTP/1.1\r\n"
                                          "Host: example.org:8080\r\n"
                                          "User-Agent: t/1\r\n"
                                          "X-Multi-Word-Name:   spaced value \t \r\n"
                                          "Accept:\r\n"
                                          "\r\n"));
    codec_run_free(&run);
}

static void http_content_fields_are_cgi_names(void **state)
{
    (void)state;
    struct codec_run run;
    feed("POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/x-a\r\nContent-Length: 5\r\n\r\n"
         "hello",
         0, 0, &run, NULL);
    assert_true(run.body_end);
    expect_param(&run, "CONTENT_TYPE", "text/x-a");
    expect_param(&run, "CONTENT_LENGTH", "5");
    expect_no_param(&run, "HTTP_CONTENT_TYPE");
    expect_no_param(&run, "HTTP_CONTENT_LENGTH");
    assert_int_equal(run.content_length, 5);
    assert_int_equal(run.body_len, 5);
    assert_memory_equal(run.body, "hello", 5);
    codec_run_free(&run);
}

static void http_drops_fields_with_underscores(void **state)
{
    (void)state;
    struct codec_run run;
    feed("GET / HTTP/1.1\r\nHost: h\r\nX-Real-IP: 1.2.3.4\r\nX_Real_IP: 6.6.6.6\r\n\r\n", 0, 0,
         &run, NULL);
    assert_true(run.body_end);
    expect_param(&run, "HTTP_X_REAL_IP", "1.2.3.4");
    for (size_t i = 0; i < run.params.count; i++)
        assert_null(strstr(params_value(&run.params, &run.params.entries[i]), "6.6.6.6"));
    codec_run_free(&run);
}

static void http_target_forms(void **state)
{
    (void)state;
    struct codec_run run;
    feed("GET http://example.org/a%2fb?x HTTP/1.1\r\nHost: example.org\r\n\r\n", 0, 0, &run, NULL);
    assert_true(run.body_end);
    expect_param(&run, "PATH_INFO", "/a/b");
    expect_param(&run, "QUERY_STRING", "x");
    expect_no_param(&run, "SERVER_PORT"); /* the connection adds it (peer.c) */
    codec_run_free(&run);

    feed("GET http://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n", 0, 0, &run, NULL);
    expect_param(&run, "PATH_INFO", "/");
    expect_param(&run, "QUERY_STRING", "");
    codec_run_free(&run);

    feed("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &run, NULL);
    assert_true(run.body_end);
    expect_param(&run, "PATH_INFO", "");
    codec_run_free(&run);

    feed("GET /?q=\xc3\xa9 HTTP/1.1\r\nHost: [::1]:81\r\n\r\n", 0, 0, &run, NULL);
    assert_true(run.body_end); /* raw UTF-8, as nginx passes it on */
    expect_param(&run, "QUERY_STRING", "q=\xc3\xa9");
    expect_param(&run, "SERVER_NAME", "[::1]");
    expect_param(&run, "SERVER_PORT", "81");
    codec_run_free(&run);

    feed("\r\n\r\nGET / HTTP/1.0\r\n\r\n", 0, 0, &run, NULL);
    assert_true(run.body_end); /* empty lines before the request line */
    expect_no_param(&run, "SERVER_NAME");
    assert_false(run.keep_conn);
    codec_run_free(&run);
}

/* ---- split points ---- */

/* Valid requests, each fed whole and at every split point, and one byte
 * at a time: the outcome must not change. */
static const char *const valid_requests[] = {
    "GET /a/b?c=d HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\nX-Empty:\r\nX-Pad: \t v  \t\r\n\r\n",
    "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: a/b\r\n\r\nhello world",
    ("PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;ext=1;q=\"x\"\r\nhello\r\n1 ; e\r\n \r\n0005\r\nworld\r\n0\r\nTrailer-A: 1\r\nT: 2\r\n\r\n"),
    "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
};

static void run_summary(const struct codec_run *run, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(
        out, cap, "done=%d end=%d err=%d cl=%lld keep=%d body=%zu:", run->params_done,
        run->body_end, run->error, (long long)run->content_length, run->keep_conn, run->body_len);
    for (size_t i = 0; i < run->body_len && n + 1 < cap; i++)
        out[n++] = (char)run->body[i];
    for (size_t i = 0; i < run->params.count && n + 2 < cap; i++) {
        const struct params_entry *e = &run->params.entries[i];
        n += (size_t)snprintf(out + n, cap - n, "|%s=%s", params_name(&run->params, e),
                              params_value(&run->params, e));
    }
    if (n >= cap)
        n = cap - 1;
    out[n] = '\0';
}

static void http_every_split_point(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(valid_requests) / sizeof(valid_requests[0]); k++) {
        const char *req = valid_requests[k];
        size_t len = strlen(req);
        struct codec_run run;
        char whole[4096], split[4096];
        feed(req, 0, 0, &run, NULL);
        if (!run.body_end || run.error)
            fail_msg("request %zu: no BODY_END (%s)", k, run.reason);
        assert_int_equal(run.consumed, len);
        run_summary(&run, whole, sizeof(whole));
        codec_run_free(&run);
        for (size_t at = 0; at <= len; at++) {
            feed(req, at, 0, &run, NULL);
            run_summary(&run, split, sizeof(split));
            if (strcmp(whole, split) != 0 || run.consumed != len)
                fail_msg("request %zu split at %zu:\n%s\nvs whole:\n%s", k, at, split, whole);
            codec_run_free(&run);
        }
        feed(req, 0, 1, &run, NULL);
        run_summary(&run, split, sizeof(split));
        if (strcmp(whole, split) != 0)
            fail_msg("request %zu byte by byte:\n%s\nvs whole:\n%s", k, split, whole);
        codec_run_free(&run);
    }
}

static void http_pipelined_requests_stay_in_the_buffer(void **state)
{
    (void)state;
    const char *two = "POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                      "GET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    struct codec_run run;
    feed(two, 0, 0, &run, NULL);
    assert_true(run.body_end);
    assert_true(run.keep_conn);
    size_t first = run.consumed;
    assert_int_equal(first, strlen("POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"));
    /* After BODY_END nothing more is consumed until next_request. */
    struct proto_event ev;
    assert_int_equal(proto_http.decode(run.state, (const uint8_t *)two + first, strlen(two) - first,
                                       &run.params, &ev),
                     PROTO_BODY_END);
    assert_int_equal(ev.consumed, 0);
    proto_http.next_request(run.state);
    params_reset(&run.params);
    codec_feed_more(&proto_http, (const uint8_t *)two + first, strlen(two) - first, 0, &run);
    assert_true(run.body_end);
    expect_param(&run, "PATH_INFO", "/2");
    assert_false(run.keep_conn);
    codec_run_free(&run);
}

/* ---- keep-alive ---- */

static void http_keep_alive_rules(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct codec_run run;
        feed(cases[i].req, 0, 0, &run, NULL);
        assert_true(run.params_done);
        if (run.keep_conn != cases[i].keep)
            fail_msg("case %zu: keep_conn %d", i, run.keep_conn);
        codec_run_free(&run);
    }
}

/* ---- smuggling and malformed requests ---- */

static const struct {
    const char *req;
    int status;
    const char *reason; /* a part of the reason */
} bad_requests[] = {
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     "both Content-Length and Transfer-Encoding"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400,
     "both"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400,
     "two Content-Length"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", 400, "not a valid length"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400, "not a valid length"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400, "not a valid length"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, "not a valid length"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
     "not a valid length"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
     "after chunked"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
     400, "after chunked"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
     "after chunked"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
     "does not end with chunked"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
     "other than chunked"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400, "malformed"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n", 400, "empty element"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", 400, "empty element"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400, "empty element"},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "obs-fold"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tfolded\r\n\r\n", 400, "obs-fold"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400, "CR without LF"},
    {"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", 400, "LF without CR"},
    {"GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "version"},
    {"GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bad byte"},
    {"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400, "CR without LF"},
    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "whitespace before the colon"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n", 400, "whitespace before the colon"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", 400, "field name has a bad byte"},
    {"GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 400, "field name has a bad byte"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400, "field value has a bad byte"},
    {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", 400, "field value has a bad byte"},
    {"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target has a bad byte"},
    {"GET /a#f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target has a bad byte"},
    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target has a bad byte"},
    {"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400, "%-escape"},
    {"GET /%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "%-escape"},
    {"GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "%-escape"},
    {"GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "not a path"},
    {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "method has a bad byte"},
    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "version"},
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "not supported"},
    {"GET / HTTP/1.2x\r\nHost: h\r\n\r\n", 400, "version"},
    {"GET / http/1.1\r\nHost: h\r\n\r\n", 400, "version"},
    {"GET / HTTP/1.1\r\n\r\n", 400, "no Host"},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Host"},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "Host"},
    {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417, "Expect"},
    {"\x16\x03\x01\x02\x00", 400, "starts with a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1000000000000000\r\n",
     400, "chunk size is over"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\t4\r\nabcd\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400,
     "chunk size has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 400,
     "not followed by CRLF"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n", 400,
     "not followed by CRLF"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01\r\nabc\r\n", 400,
     "extension has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n T: 1\r\n\r\n", 400,
     "trailer has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT 1\r\n\r\n", 400,
     "trailer has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n:1\r\n\r\n", 400,
     "trailer has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\n\r\n", 400,
     "trailer has a bad byte"},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\r", 400,
     "CR without LF"},
};

static void http_refuses_smuggling_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        const char *req = bad_requests[i].req;
        for (size_t step = 0; step <= 1; step++) {
            struct codec_run run;
            feed(req, 0, step, &run, NULL);
            if (!run.error)
                fail_msg("case %zu (step %zu) was accepted: %s", i, step, req);
            if (!strstr(run.reason, bad_requests[i].reason))
                fail_msg("case %zu: reason \"%s\", expected \"%s\"", i, run.reason,
                         bad_requests[i].reason);
            uint8_t out[PROTO_END_MAX + 1];
            size_t n = proto_http.error_reply(run.state, out);
            out[n] = '\0';
            char want[64];
            snprintf(want, sizeof(want), "HTTP/1.1 %d ", bad_requests[i].status);
            if (strncmp((char *)out, want, strlen(want)) != 0)
                fail_msg("case %zu: error reply \"%s\", expected %s", i, out, want);
            assert_non_null(strstr((char *)out, "\r\nConnection: close\r\n"));
            assert_non_null(strstr((char *)out, "\r\nContent-Length: 0\r\n"));
            assert_string_equal((char *)out + n - 4, "\r\n\r\n");
            /* The error repeats, and nothing more is consumed. */
            struct proto_event ev;
            assert_int_equal(
                proto_http.decode(run.state, (const uint8_t *)"x", 1, &run.params, &ev),
                PROTO_ERROR);
            assert_int_equal(ev.consumed, 0);
            codec_run_free(&run);
        }
    }
}

/* ---- limits ---- */

static void http_limits(void **state)
{
    (void)state;
    struct codec_run run;
    struct proto_limits lim = lim_default;
    char big[2048];

    lim.max_head = 100;
    feed("GET / HTTP/1.1\r\nHost: h\r\nX-A: "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
         0, 0, &run, &lim);
    assert_true(run.error);
    uint8_t out[PROTO_END_MAX + 1];
    size_t n = proto_http.error_reply(run.state, out);
    out[n] = '\0';
    assert_non_null(strstr((char *)out, "HTTP/1.1 431 "));
    codec_run_free(&run);
    /* Empty lines count against the head too. */
    memset(big, 0, sizeof(big));
    for (size_t i = 0; i < 200; i += 2)
        memcpy(big + i, "\r\n", 2);
    feed(big, 0, 0, &run, &lim);
    assert_true(run.error);
    codec_run_free(&run);

    lim = lim_default;
    lim.max_field = 16; /* the longest param name here: SERVER_PROTOCOL */
    feed("GET /0123456789abcdefgh HTTP/1.1\r\nHost: h\r\n\r\n", 0, 0, &run, &lim);
    assert_true(run.error);
    n = proto_http.error_reply(run.state, out);
    out[n] = '\0';
    assert_non_null(strstr((char *)out, "HTTP/1.1 414 "));
    codec_run_free(&run);
    feed("GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789abcdefgh\r\n\r\n", 0, 0, &run, &lim);
    assert_true(run.error);
    n = proto_http.error_reply(run.state, out);
    out[n] = '\0';
    assert_non_null(strstr((char *)out, "HTTP/1.1 431 "));
    codec_run_free(&run);

    lim = lim_default;
    lim.max_params = 8;
    feed("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n", 0, 0, &run,
         &lim);
    assert_true(run.error);
    codec_run_free(&run);

    /* A name longer than the codec keeps. */
    memset(big, 'n', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nHost: h\r\n", 25);
    memcpy(big + 25 + 300, ": 1\r\n\r\n", 8);
    feed(big, 0, 0, &run, NULL);
    assert_true(run.error);
    assert_non_null(strstr(run.reason, "field name is over"));
    codec_run_free(&run);

    lim = lim_default;
    lim.max_body = 10;
    feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 0, 0, &run, &lim);
    assert_true(run.error);
    n = proto_http.error_reply(run.state, out);
    out[n] = '\0';
    assert_non_null(strstr((char *)out, "HTTP/1.1 413 "));
    codec_run_free(&run);
    feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
         "6\r\nabcdef\r\n5\r\nabcde\r\n0\r\n\r\n",
         0, 0, &run, &lim);
    assert_true(run.error);
    assert_int_equal(run.body_len, 6); /* the first chunk went through */
    codec_run_free(&run);
    feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
         "6\r\nabcdef\r\n4\r\nabcd\r\n0\r\n\r\n",
         0, 0, &run, &lim);
    assert_true(run.body_end);
    assert_int_equal(run.body_len, 10);
    assert_int_equal(run.content_length, -1);
    codec_run_free(&run);
}

/* ---- 100-continue ---- */

static void http_continue_on_first_body_read(void **state)
{
    (void)state;
    const char *head =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    struct codec_run run;
    feed(head, 0, 0, &run, NULL);
    assert_true(run.params_done);
    /* The helper decodes once more with no input after PARAMS_DONE: the
     * body's first read, with nothing of it here yet. */
    assert_int_equal(run.replies_len, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    assert_memory_equal(run.replies, "HTTP/1.1 100 Continue\r\n\r\n", run.replies_len);
    codec_feed_more(&proto_http, (const uint8_t *)"abc", 3, 0, &run);
    assert_true(run.body_end);
    assert_int_equal(run.replies_len, strlen("HTTP/1.1 100 Continue\r\n\r\n")); /* once */
    codec_run_free(&run);

    /* The body is here already: no 100. */
    char full[256];
    snprintf(full, sizeof(full), "%sabc", head);
    feed(full, 0, 0, &run, NULL);
    assert_true(run.body_end);
    assert_int_equal(run.replies_len, 0);
    codec_run_free(&run);

    /* HTTP/1.0: ignored. */
    feed("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", 0, 0, &run, NULL);
    assert_int_equal(run.replies_len, 0);
    codec_run_free(&run);
}

static void http_answer_before_continue_closes(void **state)
{
    (void)state;
    _Alignas(max_align_t) uint8_t st[1024];
    struct params p;
    struct proto_event ev;
    const char *head =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    params_init(&p, 65536, 100, 65536);
    proto_http.init(st, &lim_default);
    assert_int_equal(proto_http.decode(st, (const uint8_t *)head, strlen(head), &p, &ev),
                     PROTO_PARAMS_DONE);
    char out[PROTO_HEAD_MAX + 1];
    bool framed = true;
    size_t n = proto_http.head(st, 401, 0, false, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Connection: close\r\n");
    assert_false(framed);
    assert_false(proto_http.keep_conn(st));
    /* The body counts as empty, and no 100 goes out. */
    assert_int_equal(proto_http.decode(st, NULL, 0, &p, &ev), PROTO_BODY_END);
    params_free(&p);
}

/* ---- the response ---- */

static void start(uint8_t *st, struct params *p, const char *req)
{
    struct proto_event ev;
    params_init(p, 65536, 100, 65536);
    proto_http.init(st, &lim_default);
    assert_int_equal(proto_http.decode(st, (const uint8_t *)req, strlen(req), p, &ev),
                     PROTO_PARAMS_DONE);
}

static void http_response_framing(void **state)
{
    (void)state;
    _Alignas(max_align_t) uint8_t st[1024];
    struct params p;
    char out[PROTO_HEAD_MAX + 1];
    uint8_t fr[PROTO_FRAME_MAX + 1], end[PROTO_END_MAX + 1];
    bool framed;
    size_t n;

    /* No length from the app: chunked, kept. */
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    n = proto_http.head(st, 200, -1, false, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Transfer-Encoding: chunked\r\n");
    assert_true(framed);
    assert_true(proto_http.keep_conn(st));
    n = proto_http.frame(st, fr, 0x1a);
    fr[n] = 0;
    assert_string_equal((char *)fr, "1a\r\n");
    n = proto_http.frame(st, fr, 5);
    fr[n] = 0;
    assert_string_equal((char *)fr, "\r\n5\r\n");
    n = proto_http.end(st, end, 0);
    end[n] = 0;
    assert_string_equal((char *)end, "\r\n0\r\n\r\n");
    params_free(&p);

    /* Chunked with no body piece at all. */
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    proto_http.head(st, 200, -1, false, out, &framed);
    n = proto_http.end(st, end, 0);
    end[n] = 0;
    assert_string_equal((char *)end, "0\r\n\r\n");
    params_free(&p);

    /* A Content-Length: passed through, no framing. */
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    n = proto_http.head(st, 200, 13, false, out, &framed);
    assert_int_equal(n, 0);
    assert_false(framed);
    assert_int_equal(proto_http.frame(st, fr, 13), 0);
    assert_int_equal(proto_http.end(st, end, 0), 0);
    assert_true(proto_http.keep_conn(st));
    params_free(&p);

    /* HTTP/1.0 without a length: the close ends the body. */
    start(st, &p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    n = proto_http.head(st, 200, -1, false, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Connection: close\r\n");
    assert_false(proto_http.keep_conn(st));
    params_free(&p);

    /* HTTP/1.0 keep-alive with a length says so. */
    start(st, &p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    n = proto_http.head(st, 200, 2, false, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Connection: keep-alive\r\n");
    assert_true(proto_http.keep_conn(st));
    params_free(&p);

    /* A Content-Length that is not a number: closed. */
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    n = proto_http.head(st, 200, -2, false, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Connection: close\r\n");
    params_free(&p);

    /* HEAD and 204/304: no body, no chunked. */
    start(st, &p, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    n = proto_http.head(st, 200, -1, false, out, &framed);
    assert_int_equal(n, 0);
    assert_int_equal(proto_http.end(st, end, 0), 0);
    assert_true(proto_http.keep_conn(st));
    params_free(&p);
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(proto_http.head(st, 304, -1, false, out, &framed), 0);
    params_free(&p);

    /* The client asked to close, or the worker stops. */
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    n = proto_http.head(st, 200, 1, false, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Connection: close\r\n");
    params_free(&p);
    start(st, &p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    n = proto_http.head(st, 200, 1, true, out, &framed);
    out[n] = '\0';
    assert_string_equal(out, "Connection: close\r\n");
    assert_false(proto_http.keep_conn(st));
    /* Once the head is out, an error has nothing to say. */
    assert_int_equal(proto_http.error_reply(st, end), 0);
    params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_get_gives_cgi_params),
        cmocka_unit_test(http_content_fields_are_cgi_names),
        cmocka_unit_test(http_drops_fields_with_underscores),
        cmocka_unit_test(http_target_forms),
        cmocka_unit_test(http_every_split_point),
        cmocka_unit_test(http_pipelined_requests_stay_in_the_buffer),
        cmocka_unit_test(http_keep_alive_rules),
        cmocka_unit_test(http_refuses_smuggling_shapes),
        cmocka_unit_test(http_limits),
        cmocka_unit_test(http_continue_on_first_body_read),
        cmocka_unit_test(http_answer_before_continue_closes),
        cmocka_unit_test(http_response_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
