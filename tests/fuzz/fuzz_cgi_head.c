/*
 * fuzz_cgi_head.c — libFuzzer target for the header block of a CGI
 * response (src/apps/cgi_head.c), what a CGI script or a FastCGI program
 * writes before its body.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *     src/apps/cgi_head.c src/core/log.c tests/fuzz/fuzz_cgi_head.c -o fuzz_cgi_head
 *   ./fuzz_cgi_head tests/fuzz/corpus/cgi_head
 *
 * The first input byte chooses a split point; the rest is fed in two
 * pieces and, again, one byte at a time. Properties: both ways agree on
 * the outcome and on the body bytes; the body bytes are exactly the input
 * after the head's blank line; over CGI_HEAD_MAX bytes without one is
 * TOO_BIG, never truncation; the parsed fields have names without ':' or
 * a line break, a status is 0 or 100..999, at most CGI_HEAD_FIELDS fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apps/cgi_head.h"

#include "fuzz_check.h"

/* cgi_head_apply is not fuzzed here: the request API is not linked. */
int corral_set_status(corral_request *req, int status, const char *reason)
{
    (void)req, (void)status, (void)reason;
    abort();
}

int corral_add_header(corral_request *req, const char *name, const char *value)
{
    (void)req, (void)name, (void)value;
    abort();
}

static struct cgi_head a, b;
static uint8_t body_a[CGI_HEAD_MAX * 2 + 64], body_b[CGI_HEAD_MAX * 2 + 64];

/* Feed DATA in the pieces [0, split) and [split, len) (STEP 0), or one byte
 * at a time (STEP 1). The body bytes after the head go into BODY. */
static enum cgi_head_state run(struct cgi_head *h, const uint8_t *data, size_t len, size_t split,
                               int step, uint8_t *body, size_t *blen)
{
    cgi_head_init(h);
    *blen = 0;
    enum cgi_head_state st = CGI_HEAD_MORE;
    size_t off = 0;
    while (off < len && st == CGI_HEAD_MORE) {
        size_t n = step ? 1 : (off < split ? split - off : len - off);
        struct cgi_head_rest rest;
        st = cgi_head_feed(h, data + off, n, &rest);
        off += n;
        if (st == CGI_HEAD_DONE) {
            for (int i = 0; i < 2; i++) {
                memcpy(body + *blen, rest.p[i], rest.len[i]);
                *blen += rest.len[i];
            }
            memcpy(body + *blen, data + off, len - off);
            *blen += len - off;
        }
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > CGI_HEAD_MAX * 2)
        return 0;
    size_t split = size > 1 ? data[0] % size : 0;
    data++;
    size--;
    size_t la, lb;
    enum cgi_head_state sa = run(&a, data, size, split, 0, body_a, &la);
    enum cgi_head_state sb = run(&b, data, size, split, 1, body_b, &lb);
    CHECK(sa == sb);
    if (sa == CGI_HEAD_TOO_BIG)
        CHECK(a.len == CGI_HEAD_MAX);
    if (sa != CGI_HEAD_DONE)
        return 0;
    CHECK(la == lb && memcmp(body_a, body_b, la) == 0);
    /* The body is the input after the first blank line (LF LF or LF CR LF). */
    CHECK(la <= size);
    size_t head_end = size - la;
    CHECK(head_end >= 2 && data[head_end - 1] == '\n');
    CHECK(memcmp(data + head_end, body_a, la) == 0);
    cgi_head_parse(&a);
    CHECK(a.nfields <= CGI_HEAD_FIELDS);
    CHECK(a.status == 0 || (a.status >= 100 && a.status <= 999));
    for (size_t i = 0; i < a.nfields; i++) {
        CHECK(!strchr(a.fields[i].name, ':') && !strchr(a.fields[i].name, '\n'));
        CHECK(!strchr(a.fields[i].value, '\n'));
    }
    return 0;
}
