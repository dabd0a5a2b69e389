/*
 * test_request.c — the request model over a real socket pair: params and
 * body through the codec, the response as each protocol frames it (status
 * line or Status:, FastCGI STDOUT records of at most 65535 bytes and
 * END_REQUEST), header checks, 500 on failure, sendfile, HEAD and the
 * handler's Content-Length, FastCGI management replies queued behind a full
 * socket; the body and send deadlines, and the discard of an unread body
 * after the response.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn/conn.h"
#include "conn/request.h"
#include "codec_helpers.h"

struct fixture {
    int peer;                   /* the front end's end of the pair */
    struct listener listener;
    struct conn conn;
    struct corral_request req;  /* the request on conn (the worker's slot holds both) */
    struct proto_limits limits;
};

/* F opened on CODEC with the limits LIM (NULL: the defaults). */
static void fixture_open_limits(struct fixture *f, const struct proto_codec *codec,
                                const struct proto_limits *lim)
{
    memset(f, 0, sizeof(*f));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int big = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    f->peer = sv[1];
    f->listener.addr.codec = codec;
    snprintf(f->listener.name, sizeof(f->listener.name), "%s:test", codec->name);
    f->limits = lim ? *lim : (struct proto_limits)PROTO_LIMITS_DEFAULT;
    assert_int_equal(conn_init(&f->conn, sv[0], &f->listener, &f->limits, 2000), 0);
    snprintf(f->conn.peer, sizeof(f->conn.peer), "test");
}

static void fixture_open(struct fixture *f, const struct proto_codec *codec)
{
    fixture_open_limits(f, codec, NULL);
}

static void fixture_close(struct fixture *f)
{
    close(f->conn.fd);
    conn_fini(&f->conn);
    request_free(&f->req);
    close(f->peer);
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Read whatever the server side wrote, waiting briefly for the end. */
static size_t recv_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap)
            break;
    }
    return len;
}

/* Decode until the params are complete. */
static void read_head(struct fixture *f)
{
    struct proto_event ev;
    for (;;) {
        enum proto_result r = conn_decode(&f->conn, &ev);
        if (r == PROTO_PARAMS_DONE)
            break;
        assert_int_equal(r, PROTO_NEED_MORE);
        assert_true(conn_fill(&f->conn, 2000) > 0);
    }
    request_begin(&f->req, &f->conn);
}

static size_t uwsgi_packet(uint8_t *out, const char *const *kv, const char *body)
{
    size_t n = 4;
    for (size_t i = 0; kv[i]; i++) {
        size_t l = strlen(kv[i]);
        out[n++] = (uint8_t)(l & 0xff);
        out[n++] = (uint8_t)(l >> 8);
        memcpy(out + n, kv[i], l);
        n += l;
    }
    out[0] = 0;
    out[1] = (uint8_t)((n - 4) & 0xff);
    out[2] = (uint8_t)((n - 4) >> 8);
    out[3] = 0;
    if (body) {
        memcpy(out + n, body, strlen(body));
        n += strlen(body);
    }
    return n;
}

/* Reassemble the STDOUT stream of FastCGI output; checks record sizes and
 * that an END_REQUEST closes it. Returns the stream length. */
static size_t fcgi_stdout(const uint8_t *in, size_t len, char *out, int *ended)
{
    size_t off = 0, n = 0;
    *ended = 0;
    while (off + 8 <= len) {
        const uint8_t *h = in + off;
        size_t cl = (size_t)h[4] << 8 | h[5];
        assert_int_equal(h[0], 1);
        assert_true(cl <= 65535);
        if (h[1] == 6) {
            memcpy(out + n, h + 8, cl);
            n += cl;
        } else if (h[1] == 3) {
            *ended = 1;
            assert_int_equal(cl, 8);
            assert_int_equal(h[12], 0); /* REQUEST_COMPLETE */
        }
        off += 8 + cl + h[6];
    }
    assert_int_equal(off, len);
    return n;
}

static void request_uwsgi_answers_with_status_line(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    static const char *const kv[] = {"REQUEST_METHOD", "GET", "REQUEST_URI", "/x?y=1",
                                     "QUERY_STRING", "y=1", NULL};
    uint8_t pkt[1024];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, NULL));
    read_head(&f);
    corral_request *r = &f.req;
    assert_string_equal(corral_param(r, "QUERY_STRING"), "y=1");
    assert_null(corral_param(r, "HTTP_HOST"));
    assert_int_equal(corral_param_count(r), 3);
    const char *name, *value;
    assert_int_equal(corral_param_at(r, 1, &name, &value), 0);
    assert_string_equal(name, "REQUEST_URI");
    assert_string_equal(value, "/x?y=1");
    assert_int_equal(corral_param_at(r, 3, &name, &value), -1);
    assert_int_equal(corral_content_length(r), 0);

    assert_int_equal(corral_set_status(r, 404, NULL), 0);
    assert_int_equal(corral_add_header(r, "Content-Type", "text/plain"), 0);
    assert_int_equal(corral_write(r, "no", 2), 0);
    assert_int_equal(corral_add_header(r, "X-Late", "1"), -1);
    assert_int_equal(corral_set_status(r, 200, NULL), -1);
    assert_int_equal(corral_write(r, "pe", 2), 0);
    assert_int_equal(request_finish(r, 0), 0);
    char out[4096];
    size_t n = recv_all(f.peer, out, sizeof(out));
    static const char expect[] =
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope";
    assert_int_equal(n, sizeof(expect) - 1);
    assert_memory_equal(out, expect, n);
    fixture_close(&f);
}

/* RFC 3875 4.1.18: the Content-Type/Length a front end sends again as
 * HTTP_ variables are not params of the request. */
static void request_drops_http_content_params(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    static const char *const kv[] = {"HTTP_CONTENT_TYPE", "text/plain", "REQUEST_METHOD", "POST",
                                     "CONTENT_TYPE", "text/plain", "HTTP_CONTENT_LENGTH", "0",
                                     "CONTENT_LENGTH", "0", "HTTP_CONTENT_TYPEX", "kept", NULL};
    uint8_t pkt[1024];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, NULL));
    read_head(&f);
    corral_request *r = &f.req;
    assert_null(corral_param(r, "HTTP_CONTENT_TYPE"));
    assert_null(corral_param(r, "HTTP_CONTENT_LENGTH"));
    assert_string_equal(corral_param(r, "CONTENT_TYPE"), "text/plain");
    assert_string_equal(corral_param(r, "HTTP_CONTENT_TYPEX"), "kept");
    assert_string_equal(r->method, "POST");
    assert_int_equal(corral_param_count(r), 4);
    static const char *const names[] = {"REQUEST_METHOD", "CONTENT_TYPE", "CONTENT_LENGTH",
                                        "HTTP_CONTENT_TYPEX"};
    for (size_t i = 0; i < 4; i++) {
        const char *name, *value;
        assert_int_equal(corral_param_at(r, i, &name, &value), 0);
        assert_string_equal(name, names[i]);
    }
    const char *name, *value;
    assert_int_equal(corral_param_at(r, 4, &name, &value), -1);
    fixture_close(&f);
}

static void request_refuses_header_injection(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_scgi);
    corral_request *r = &f.req;
    request_begin(r, &f.conn);
    assert_int_equal(corral_add_header(r, "X-A", "ok\r\nSet-Cookie: evil=1"), -1);
    assert_int_equal(corral_add_header(r, "X-A", "ok\nX: y"), -1);
    assert_int_equal(corral_add_header(r, "Bad Name", "v"), -1);
    assert_int_equal(corral_add_header(r, "Bad:Name", "v"), -1);
    assert_int_equal(corral_add_header(r, "", "v"), -1);
    assert_int_equal(corral_set_status(r, 99, NULL), -1);
    assert_int_equal(corral_set_status(r, 200, "OK\r\nX: y"), -1);
    assert_int_equal(corral_set_status(r, 299, "Fine"), 0);
    assert_int_equal(corral_write_final(r, "", 0), 0);
    char out[256];
    size_t n = recv_all(f.peer, out, sizeof(out));
    static const char expect[] = "Status: 299 Fine\r\n\r\n";
    assert_int_equal(n, sizeof(expect) - 1);
    assert_memory_equal(out, expect, n);
    /* Nothing may follow the final write. */
    assert_int_equal(corral_write(r, "x", 1), -1);
    fixture_close(&f);
}

/* RFC 9110 5.5: a value holds VCHAR, obs-text, SP and HTAB only. */
static void request_refuses_control_bytes_in_values(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_scgi);
    corral_request *r = &f.req;
    request_begin(r, &f.conn);
    assert_int_equal(corral_add_header(r, "X-A", "a\x0b" "b"), -1);
    assert_int_equal(corral_add_header(r, "X-A", "a\x0c" "b"), -1);
    assert_int_equal(corral_add_header(r, "X-A", "a\x1b[31mb"), -1);
    assert_int_equal(corral_add_header(r, "X-A", "a\x7f" "b"), -1);
    assert_int_equal(corral_add_header(r, "X-A", "\x01"), -1);
    assert_int_equal(corral_add_header(r, "X-Tab", "a\tb"), 0);
    assert_int_equal(corral_add_header(r, "X-Latin", "caf\xe9 \x80\xff"), 0);
    assert_int_equal(corral_write_final(r, "", 0), 0);
    char out[256];
    size_t n = recv_all(f.peer, out, sizeof(out));
    static const char expect[] =
        "Status: 200 OK\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9 \x80\xff\r\n\r\n";
    assert_int_equal(n, sizeof(expect) - 1);
    assert_memory_equal(out, expect, n);
    fixture_close(&f);
}

/* Two Content-Length headers that disagree: 500 in place of the head, the
 * handler's body dropped; the same value twice goes out as given. */
static void request_conflicting_content_length_is_500(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    corral_request *r = &f.req;
    request_begin(r, &f.conn);
    assert_int_equal(corral_add_header(r, "Content-Length", "5"), 0);
    corral_add_header(r, "Content-Length", "100");
    corral_write(r, "hello", 5);
    assert_int_equal(request_finish(r, 0), 0);
    assert_int_equal(r->status, 500);
    char out[512];
    size_t n = recv_all(f.peer, out, sizeof(out) - 1);
    out[n] = '\0';
    static const char expect[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                 "Content-Type: text/plain\r\n\r\nInternal Server Error\n";
    assert_string_equal(out, expect);
    fixture_close(&f);

    fixture_open(&f, &proto_uwsgi);
    r = &f.req;
    request_begin(r, &f.conn);
    assert_int_equal(corral_add_header(r, "Content-Length", "5"), 0);
    assert_int_equal(corral_add_header(r, "content-length", " 5"), 0);
    assert_int_equal(corral_write(r, "hello", 5), 0);
    assert_int_equal(request_finish(r, 0), 0);
    n = recv_all(f.peer, out, sizeof(out) - 1);
    out[n] = '\0';
    static const char same[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                               "content-length:  5\r\n\r\nhello";
    assert_string_equal(out, same);
    fixture_close(&f);
}

static void request_failure_before_head_is_500(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_scgi);
    corral_request *r = &f.req;
    request_begin(r, &f.conn);
    corral_add_header(r, "X-Would-Be", "dropped");
    assert_int_equal(request_finish(r, -1), 0);
    char out[512];
    size_t n = recv_all(f.peer, out, sizeof(out) - 1);
    out[n] = '\0';
    assert_non_null(strstr(out, "Status: 500 Internal Server Error\r\n"));
    assert_null(strstr(out, "X-Would-Be"));
    fixture_close(&f);
}

static void request_failure_after_head_breaks_connection(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    corral_request *r = &f.req;
    request_begin(r, &f.conn);
    assert_int_equal(corral_write(r, "part", 4), 0);
    assert_int_equal(request_finish(r, -1), -1);
    assert_true(f.conn.broken);
    fixture_close(&f);
}

static void request_fastcgi_frames_large_writes_and_ends(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_fastcgi);
    static const char *const kv[] = {"REQUEST_METHOD", "POST", "CONTENT_LENGTH", "11",
                                     "REQUEST_URI", "/echo", NULL};
    uint8_t req[4096];
    send_all(f.peer, req, codec_fcgi_request(req, kv, "hello world", 1));
    read_head(&f);
    corral_request *r = &f.req;
    assert_int_equal(corral_content_length(r), 11);
    /* The body, read in pieces smaller than it arrived in. */
    char body[32];
    size_t got = 0;
    for (;;) {
        ssize_t n = corral_read(r, body + got, 4);
        assert_true(n >= 0 && n <= 4);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    assert_int_equal(got, 11);
    assert_memory_equal(body, "hello world", 11);
    assert_true(f.conn.body_done);

    size_t big = 200000;
    char *payload = malloc(big);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char)('a' + i % 26);
    assert_int_equal(corral_add_header(r, "Content-Type", "text/plain"), 0);
    assert_int_equal(corral_write(r, payload, big), 0);
    assert_int_equal(request_finish(r, 0), 0);

    size_t cap = 1 << 20;
    uint8_t *raw = malloc(cap);
    char *stream = malloc(cap);
    size_t n = recv_all(f.peer, (char *)raw, cap);
    int ended;
    size_t sl = fcgi_stdout(raw, n, stream, &ended);
    assert_true(ended);
    static const char head[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    assert_int_equal(sl, sizeof(head) - 1 + big);
    assert_memory_equal(stream, head, sizeof(head) - 1);
    assert_memory_equal(stream + sizeof(head) - 1, payload, big);
    free(payload);
    free(raw);
    free(stream);
    fixture_close(&f);
}

static void request_sendfile_on_each_protocol(void **state)
{
    (void)state;
    char path[] = "/tmp/corral-test-sendfile-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    size_t size = 150000;
    char *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)(i * 7);
    assert_int_equal(write(fd, data, size), (ssize_t)size);

    const struct proto_codec *codecs[] = {&proto_uwsgi, &proto_fastcgi};
    for (int k = 0; k < 2; k++) {
        struct fixture f;
        fixture_open(&f, codecs[k]);
        corral_request *r = &f.req;
        request_begin(r, &f.conn);
        assert_int_equal(corral_sendfile(r, fd, 100, size - 100), 0);
        assert_int_equal(request_finish(r, 0), 0);
        size_t cap = 1 << 20;
        char *raw = malloc(cap), *stream = malloc(cap);
        size_t n = recv_all(f.peer, raw, cap);
        size_t sl = n;
        if (codecs[k] == &proto_fastcgi) {
            int ended;
            sl = fcgi_stdout((uint8_t *)raw, n, stream, &ended);
            assert_true(ended);
        } else {
            memcpy(stream, raw, n);
        }
        char *body = strstr(stream, "\r\n\r\n");
        assert_non_null(body);
        body += 4;
        assert_int_equal(sl - (size_t)(body - stream), size - 100);
        assert_memory_equal(body, data + 100, size - 100);
        free(raw);
        free(stream);
        fixture_close(&f);
    }
    free(data);
    close(fd);
}

/* F opened on FastCGI with a GET request decoded and its request begun. */
static void fastcgi_get(struct fixture *f)
{
    fixture_open(f, &proto_fastcgi);
    static const char *const kv[] = {"REQUEST_METHOD", "GET", NULL};
    uint8_t pkt[1024];
    send_all(f->peer, pkt, codec_fcgi_request(pkt, kv, NULL, 1));
    read_head(f);
}

/* The STDOUT stream the front end of F has received so far, into BODY;
 * *ENDED tells whether END_REQUEST came. Returns its length. */
static size_t fastcgi_response(struct fixture *f, char *body, size_t cap, int *ended)
{
    uint8_t raw[1024];
    assert_true(cap >= sizeof(raw));
    return fcgi_stdout(raw, recv_all(f->peer, (char *)raw, sizeof(raw)), body, ended);
}

/* A stopping worker (bye_on_end set) ends a kept FastCGI response with the
 * goodbye, an empty STDERR record, in the same write as END_REQUEST: the
 * front end reads them together. Not while it runs. */
static void request_fastcgi_goodbye_follows_end_when_stopping(void **state)
{
    (void)state;
    for (int stopping = 0; stopping <= 1; stopping++) {
        struct fixture f;
        fastcgi_get(&f);
        _Atomic int flag = stopping;
        f.conn.bye_on_end = &flag;
        corral_request *r = &f.req;
        assert_int_equal(corral_write_final(r, "hi", 2), 0);
        assert_int_equal(request_finish(r, 0), 0);
        uint8_t raw[1024];
        size_t n = recv_all(f.peer, (char *)raw, sizeof(raw));
        static const uint8_t bye[8] = {1, 7, 0, 1, 0, 0, 0, 0};
        static const uint8_t end_hdr[4] = {1, 3, 0, 1};
        if (stopping) {
            assert_true(n > 24 + 8);
            assert_memory_equal(raw + n - 24, end_hdr, 4);
            assert_memory_equal(raw + n - 8, bye, 8);
            n -= 8;
        }
        assert_memory_equal(raw + n - 16, end_hdr, 4);
        assert_int_equal(f.conn.bye_in_response, stopping);
        char body[1024];
        int ended;
        fcgi_stdout(raw, n, body, &ended);
        assert_true(ended);
        fixture_close(&f);
    }
}

static void request_head_drops_body_keeps_length(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    static const char *const kv[] = {"REQUEST_METHOD", "HEAD", "REQUEST_URI", "/h", NULL};
    uint8_t pkt[1024];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, NULL));
    read_head(&f);
    corral_request *r = &f.req;
    assert_int_equal(corral_add_header(r, "Content-Length", "5"), 0);
    assert_int_equal(corral_write(r, "hel", 3), 0);
    assert_int_equal(corral_write_final(r, "lo", 2), 0);
    assert_int_equal(request_finish(r, 0), 0);
    char out[512];
    size_t n = recv_all(f.peer, out, sizeof(out));
    static const char expect[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    assert_int_equal(n, sizeof(expect) - 1);
    assert_memory_equal(out, expect, n);
    assert_false(f.conn.broken);
    fixture_close(&f);
}

static void request_body_clipped_at_content_length(void **state)
{
    (void)state;
    struct fixture f;
    fastcgi_get(&f);
    corral_request *r = &f.req;
    assert_int_equal(corral_add_header(r, "content-length", " 4 "), 0);
    assert_int_equal(corral_write(r, "abc", 3), 0);
    assert_int_equal(corral_write(r, "def", 3), 0);
    /* The body is complete: END_REQUEST went with its last byte, before
     * the handler said it was done. */
    char body[1024];
    int ended;
    size_t n = fastcgi_response(&f, body, sizeof(body), &ended);
    static const char expect[] = "Status: 200 OK\r\ncontent-length:  4 \r\n\r\nabcd";
    assert_int_equal(n, sizeof(expect) - 1);
    assert_memory_equal(body, expect, n);
    assert_true(ended);
    /* More body is dropped, the end is not repeated. */
    assert_int_equal(corral_write(r, "", 0), 0);
    assert_int_equal(corral_write_final(r, "ghi", 3), 0);
    assert_int_equal(request_finish(r, 0), 0);
    assert_int_equal(fastcgi_response(&f, body, sizeof(body), &ended), 0);
    assert_false(f.conn.broken);
    fixture_close(&f);
}

static void request_short_body_closes_without_end(void **state)
{
    (void)state;
    struct fixture f;
    fastcgi_get(&f);
    corral_request *r = &f.req;
    assert_int_equal(corral_add_header(r, "Content-Length", "10"), 0);
    assert_int_equal(corral_write(r, "abc", 3), 0);
    assert_int_equal(corral_write_final(r, "", 0), -1);
    assert_int_equal(request_finish(r, 0), -1);
    assert_true(f.conn.broken);
    char body[1024];
    int ended;
    size_t n = fastcgi_response(&f, body, sizeof(body), &ended);
    assert_false(ended); /* no END_REQUEST: nginx must not take it as whole */
    assert_true(n > 3);
    assert_memory_equal(body + n - 3, "abc", 3);
    fixture_close(&f);
}

static void request_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(request_reason_phrase(200), "OK");
    assert_string_equal(request_reason_phrase(404), "Not Found");
    assert_string_equal(request_reason_phrase(503), "Service Unavailable");
    assert_string_equal(request_reason_phrase(599), "Unknown");
}

/* A streamed FastCGI body over --max-body is a protocol error: the codec's
 * error reply (END_REQUEST) ends the request on the wire, and nothing
 * follows it for that request id: no 500, no second END_REQUEST. */
static void request_fastcgi_body_error_ends_request_once(void **state)
{
    (void)state;
    struct fixture f;
    struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    lim.max_body = 1000;
    fixture_open_limits(&f, &proto_fastcgi, &lim);
    static const char *const kv[] = {"REQUEST_METHOD", "POST", NULL};
    char body[2001];
    memset(body, 'b', 2000);
    body[2000] = '\0';
    uint8_t pkt[4096];
    send_all(f.peer, pkt, codec_fcgi_request(pkt, kv, body, 1));
    read_head(&f);
    corral_request *r = &f.req;
    char buf[512];
    ssize_t n;
    while ((n = corral_read(r, buf, sizeof(buf))) > 0) {
    }
    assert_int_equal(n, -1);
    /* A handler that fails on the read, and one that answers anyway. */
    assert_int_equal(corral_write_final(r, "late", 4), -1);
    assert_int_equal(request_finish(r, -1), -1);
    uint8_t raw[1024];
    size_t len = recv_all(f.peer, (char *)raw, sizeof(raw));
    int ends = 0;
    size_t stdout_bytes = 0;
    for (size_t off = 0; off + 8 <= len;) {
        size_t cl = (size_t)raw[off + 4] << 8 | raw[off + 5];
        ends += raw[off + 1] == 3;
        if (raw[off + 1] == 6)
            stdout_bytes += cl;
        off += 8 + cl + raw[off + 6];
    }
    assert_int_equal(ends, 1);
    assert_int_equal(stdout_bytes, 0);
    fixture_close(&f);
}

/* Management records (request id 0, unknown TYPE) in F's socket until the
 * connection stops decoding them: the replies fill the socket and one waits
 * in the queue. Returns how many were sent; their types are seq % 240 + 10. */
static unsigned mgmt_fill_socket(struct fixture *f)
{
    unsigned sent = 0;
    while (!conn_wants_write(&f->conn)) {
        uint8_t rec[256 * 16];
        for (unsigned i = 0; i < 256; i++, sent++) {
            uint8_t *r = rec + i * 16;
            memset(r, 0, 16);
            r[0] = 1;
            r[1] = (uint8_t)(sent % 240 + 10);
            r[5] = 8; /* content length 8, request id 0 */
        }
        send_all(f->peer, rec, sizeof(rec));
        struct proto_event ev;
        int end = 1;
        enum proto_result r = conn_next(&f->conn, &ev, 0, &end);
        assert_int_equal(r, PROTO_NEED_MORE);
        assert_int_equal(end, -EAGAIN);
        assert_true(sent < 1u << 20); /* the socket fills long before */
    }
    return sent;
}

/* Replies that the socket does not take wait in the connection: nothing
 * blocks, nothing more is decoded while they wait (the records stay
 * unread), and as the peer reads, every reply comes out in order, then the
 * request behind them and its response. */
static void request_fastcgi_mgmt_replies_queue_in_order(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_fastcgi);
    unsigned sent = mgmt_fill_socket(&f);
    static const char *const kv[] = {"REQUEST_METHOD", "GET", NULL};
    uint8_t pkt[1024];
    send_all(f.peer, pkt, codec_fcgi_request(pkt, kv, NULL, 0));
    /* Back-pressure: still waiting, the rest unread. */
    struct proto_event ev;
    int end = 1;
    assert_int_equal(conn_next(&f.conn, &ev, 0, &end), PROTO_NEED_MORE);
    assert_int_equal(end, -EAGAIN);
    assert_true(conn_wants_write(&f.conn));
    assert_true(conn_has_input(&f.conn) || conn_input_waiting(&f.conn));

    size_t cap = (size_t)sent * 16 + 4096, len = 0;
    uint8_t *raw = malloc(cap);
    assert_non_null(raw);
    fcntl(f.peer, F_SETFL, O_NONBLOCK);
    enum proto_result r;
    for (;;) {
        ssize_t n = read(f.peer, raw + len, cap - len);
        if (n > 0)
            len += (size_t)n;
        r = conn_next(&f.conn, &ev, 0, &end);
        if (r != PROTO_NEED_MORE)
            break;
        assert_int_equal(end, -EAGAIN);
        assert_true(n > 0 || conn_wants_write(&f.conn) || len >= (size_t)sent * 16);
    }
    assert_int_equal(r, PROTO_PARAMS_DONE);
    assert_false(conn_wants_write(&f.conn));
    request_begin(&f.req, &f.conn);
    assert_int_equal(corral_write_final(&f.req, "ok", 2), 0);
    assert_int_equal(request_finish(&f.req, 0), 0);
    fcntl(f.peer, F_SETFL, 0);
    len += recv_all(f.peer, (char *)raw + len, cap - len);

    assert_true(len >= (size_t)sent * 16);
    for (unsigned i = 0; i < sent; i++) {
        const uint8_t *rec = raw + (size_t)i * 16;
        assert_int_equal(rec[1], 11); /* UNKNOWN_TYPE */
        assert_int_equal(rec[2] << 8 | rec[3], 0);
        assert_int_equal(rec[8], i % 240 + 10);
    }
    char body[1024];
    int ended = 0;
    size_t bl = fcgi_stdout(raw + (size_t)sent * 16, len - (size_t)sent * 16, body, &ended);
    assert_true(ended);
    assert_true(bl >= 2 && memcmp(body + bl - 2, "ok", 2) == 0);
    free(raw);
    fixture_close(&f);
}

/* A peer that closes while its replies wait: the connection ends with a
 * protocol error that logs its own line (no reason), sends nothing more and
 * is broken. */
static void request_fastcgi_mgmt_peer_gone(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_fastcgi);
    mgmt_fill_socket(&f);
    close(f.peer);
    f.peer = -1;
    struct proto_event ev;
    int end = 1;
    assert_int_equal(conn_next(&f.conn, &ev, 0, &end), PROTO_ERROR);
    assert_null(ev.reason);
    assert_true(f.conn.broken);
    assert_true(f.conn.replied);
    assert_false(conn_wants_write(&f.conn));
    conn_protocol_error(&f.conn, ev.reason);
    fixture_close(&f);
}

/* ---- the deadlines of a request (conn.h) ---- */

struct trickler {
    int fd;
    size_t bytes;   /* one byte every 30 ms */
};

static void *trickle_thread(void *arg)
{
    struct trickler *t = arg;
    for (size_t i = 0; i < t->bytes; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 30 * 1000000L};
        nanosleep(&ts, NULL);
        if (write(t->fd, "t", 1) != 1)
            break;
    }
    return NULL;
}

/* A uwsgi POST of a 20-byte body trickled one byte every 30 ms, read with
 * body deadline BODY_MS and MIN_RATE; returns the body bytes the reader got
 * before the end (0) or an error (-1, in *RC). */
static size_t trickled_body(unsigned body_ms, unsigned min_rate, ssize_t *rc)
{
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    conn_set_deadlines(&f.conn, body_ms, 0, min_rate);
    static const char *const kv[] = {"REQUEST_METHOD", "POST", "CONTENT_LENGTH", "20", NULL};
    uint8_t pkt[1024];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, NULL));
    read_head(&f);
    struct trickler t = {.fd = f.peer, .bytes = 20};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, trickle_thread, &t), 0);
    size_t got = 0;
    char buf[64];
    ssize_t n;
    while ((n = corral_read(&f.req, buf, sizeof(buf))) > 0)
        got += (size_t)n;
    *rc = n;
    pthread_join(th, NULL);
    fixture_close(&f);
    return got;
}

static void request_body_deadline_cuts_a_trickle(void **state)
{
    (void)state;
    ssize_t rc;
    /* Each wait (30 ms) is far inside the I/O timeout (2 s): only the sum
     * of the waits meets the 100 ms deadline. */
    size_t got = trickled_body(100, 0, &rc);
    assert_int_equal(rc, -1);
    assert_true(got < 20);
}

static void request_body_deadline_min_rate_extends_it(void **state)
{
    (void)state;
    ssize_t rc;
    /* One second more per byte received: the same trickle passes. */
    size_t got = trickled_body(100, 1, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(got, 20);
}

static void request_body_budget_counts_min_rate(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    assert_true(conn_body_budget_ms(&f.conn) == UINT64_MAX); /* none set */
    conn_set_deadlines(&f.conn, 2000, 3000, 500);
    assert_true(conn_body_budget_ms(&f.conn) == 2000);
    assert_true(conn_send_budget_ms(&f.conn) == 3000);
    static const char *const kv[] = {"REQUEST_METHOD", "POST", "CONTENT_LENGTH", "1250", NULL};
    char body[1251];
    memset(body, 'b', 1250);
    body[1250] = '\0';
    uint8_t pkt[4096];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, body));
    read_head(&f);
    char buf[2048];
    size_t got = 0;
    ssize_t n;
    while ((n = corral_read(&f.req, buf, sizeof(buf))) > 0)
        got += (size_t)n;
    assert_int_equal(n, 0);
    assert_int_equal(got, 1250);
    assert_true(conn_body_budget_ms(&f.conn) == 2000 + 2500); /* 1250 bytes at 500/s */
    fixture_close(&f);
}

static void request_send_deadline_is_not_the_io_timeout(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    conn_set_deadlines(&f.conn, 0, 100, 0);
    /* The peer never reads: the write waits past the send deadline and
     * says so (-ETIME), not the I/O timeout's -ETIMEDOUT. */
    size_t len = 32u << 20;
    char *big = calloc(1, len);
    assert_non_null(big);
    struct iovec iov = {.iov_base = big, .iov_len = len};
    assert_int_equal(conn_writev(&f.conn, &iov, 1), -ETIME);
    free(big);
    fixture_close(&f);
}

static void request_discard_never_waits(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    static const char *const kv[] = {"REQUEST_METHOD", "POST", "CONTENT_LENGTH", "100", NULL};
    char part[11] = "0123456789";
    uint8_t pkt[1024];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, part));
    read_head(&f);
    assert_int_equal(corral_write_final(&f.req, "ok", 2), 0);
    assert_int_equal(request_finish(&f.req, 0), 0);
    /* 10 of 100 bytes are there: they go, and the rest is due. */
    assert_int_equal(conn_body_discard(&f.conn, UINT64_MAX), 1);
    assert_true(f.conn.discarding);
    assert_int_equal(f.conn.discarded, 10);
    char rest[91];
    memset(rest, 'r', 90);
    send_all(f.peer, rest, 90);
    int rc;
    for (int i = 0; (rc = conn_body_discard(&f.conn, UINT64_MAX)) == 1 && i < 100; i++)
        usleep(10000);
    assert_int_equal(rc, 0);
    assert_false(f.conn.discarding);
    assert_true(f.conn.body_done);
    fixture_close(&f);

    /* Past MAX_BYTES: the connection is to be closed. */
    fixture_open(&f, &proto_uwsgi);
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, part));
    read_head(&f);
    assert_int_equal(request_finish(&f.req, 0), 0);
    assert_int_equal(conn_body_discard(&f.conn, 5), -1);
    assert_true(f.conn.broken);
    fixture_close(&f);
}

/* conn_set_nowait (a detached request, src/apps/app.h): the body reader
 * says "nothing yet" (2) instead of waiting, writes queue what a full socket
 * does not take (up to CONN_OUT_CAP) instead of waiting, and
 * conn_push_queued sends the queue once the peer reads. A wait would show as
 * the I/O timeout's error, as nothing else arrives. */
static void request_nowait_never_waits(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, &proto_uwsgi);
    int small = 4096;
    setsockopt(f.conn.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(f.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    static const char *const kv[] = {"REQUEST_METHOD", "POST", "CONTENT_LENGTH", "20", NULL};
    uint8_t pkt[1024];
    send_all(f.peer, pkt, uwsgi_packet(pkt, kv, "0123456789"));
    read_head(&f);
    conn_set_nowait(&f.conn, true);
    const uint8_t *data;
    size_t len, got = 0;
    int rc;
    while ((rc = conn_body_next(&f.conn, &data, &len)) == 1) {
        got += len;
        conn_body_consume(&f.conn, len);
    }
    assert_int_equal(rc, 2);
    assert_int_equal(got, 10);
    assert_false(f.conn.broken);
    send_all(f.peer, "abcdefghij", 10);
    for (int i = 0; i < 200 && (rc = conn_body_next(&f.conn, &data, &len)) != 0; i++) {
        if (rc == 1) {
            got += len;
            conn_body_consume(&f.conn, len);
        } else {
            assert_int_equal(rc, 2);
            usleep(5000);
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(got, 20);

    /* Pieces of 8 KiB until the socket is full: the first that does not
     * fit is queued, and corral_write returned without waiting. */
    static char piece[8192];
    memset(piece, 'p', sizeof(piece));
    size_t written = 0;
    for (int i = 0; i < 1000 && !conn_wants_write(&f.conn); i++) {
        assert_int_equal(corral_write(&f.req, piece, sizeof(piece)), 0);
        written += sizeof(piece);
    }
    assert_true(conn_wants_write(&f.conn));
    /* More than the queue holds while the socket is full: refused at once. */
    static char big[CONN_OUT_CAP + 1];
    assert_int_equal(corral_write(&f.req, big, sizeof(big)), -1);
    assert_true(f.req.failed);
    /* The peer reads: the queue goes out. */
    static char sink[1 << 16];
    for (int i = 0; i < 200 && conn_wants_write(&f.conn); i++) {
        while (recv(f.peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
        assert_int_equal(conn_push_queued(&f.conn), 0);
    }
    assert_false(conn_wants_write(&f.conn));
    assert_true(written >= sizeof(piece));
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_uwsgi_answers_with_status_line),
        cmocka_unit_test(request_drops_http_content_params),
        cmocka_unit_test(request_refuses_header_injection),
        cmocka_unit_test(request_refuses_control_bytes_in_values),
        cmocka_unit_test(request_conflicting_content_length_is_500),
        cmocka_unit_test(request_failure_before_head_is_500),
        cmocka_unit_test(request_failure_after_head_breaks_connection),
        cmocka_unit_test(request_fastcgi_frames_large_writes_and_ends),
        cmocka_unit_test(request_sendfile_on_each_protocol),
        cmocka_unit_test(request_head_drops_body_keeps_length),
        cmocka_unit_test(request_fastcgi_goodbye_follows_end_when_stopping),
        cmocka_unit_test(request_fastcgi_body_error_ends_request_once),
        cmocka_unit_test(request_body_clipped_at_content_length),
        cmocka_unit_test(request_short_body_closes_without_end),
        cmocka_unit_test(request_reason_phrases),
        cmocka_unit_test(request_fastcgi_mgmt_replies_queue_in_order),
        cmocka_unit_test(request_fastcgi_mgmt_peer_gone),
        cmocka_unit_test(request_body_deadline_cuts_a_trickle),
        cmocka_unit_test(request_body_deadline_min_rate_extends_it),
        cmocka_unit_test(request_body_budget_counts_min_rate),
        cmocka_unit_test(request_send_deadline_is_not_the_io_timeout),
        cmocka_unit_test(request_nowait_never_waits),
        cmocka_unit_test(request_discard_never_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
