/*
 * test_http_diff.c — protocols/http.c checked differentially against
 * Debian's libhttp-parser (2.9.4, libhttp-parser-dev):
 * valid requests and tens of thousands of one-byte mutations of them
 * (replaced, deleted, inserted bytes) go through both. Whatever the codec
 * accepts, http_parser must accept too, with the same method, target,
 * header fields (as params: HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; names
 * with '_' dropped) and body bytes: the codec is never laxer than it, and
 * where both accept they read the same request. Where only http_parser
 * accepts, the codec is the stricter one (bare LF, a missing Host, obs-fold,
 * CL with TE...); those are counted and printed, not failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "codec_helpers.h"
#include "protocols/protocol.h"

#define MAX_FIELDS 64

/* What http_parser read of the first request. */
struct ref {
    char url[1024];
    size_t url_len;
    char names[MAX_FIELDS][128], values[MAX_FIELDS][512];
    size_t name_len[MAX_FIELDS], value_len[MAX_FIELDS];
    size_t fields;
    int in_value; /* the last callback was a value */
    uint8_t body[8192];
    size_t body_len;
    int headers_done; /* trailer fields come after: not compared */
    int complete;
    int overflow;
};

static void ref_add(char *dst, size_t *len, size_t cap, const char *at, size_t n, int *overflow)
{
    if (*len + n > cap) {
        *overflow = 1;
        return;
    }
    memcpy(dst + *len, at, n);
    *len += n;
}

static int ref_url(http_parser *p, const char *at, size_t n)
{
    struct ref *r = p->data;
    ref_add(r->url, &r->url_len, sizeof(r->url), at, n, &r->overflow);
    return 0;
}

static int ref_field(http_parser *p, const char *at, size_t n)
{
    struct ref *r = p->data;
    if (r->headers_done)
        return 0;
    if (r->in_value || r->fields == 0) {
        if (r->fields == MAX_FIELDS) {
            r->overflow = 1;
            return 0;
        }
        r->fields++;
        r->name_len[r->fields - 1] = r->value_len[r->fields - 1] = 0;
        r->in_value = 0;
    }
    ref_add(r->names[r->fields - 1], &r->name_len[r->fields - 1], 128, at, n, &r->overflow);
    return 0;
}

static int ref_value(http_parser *p, const char *at, size_t n)
{
    struct ref *r = p->data;
    if (r->headers_done)
        return 0;
    r->in_value = 1;
    if (r->fields)
        ref_add(r->values[r->fields - 1], &r->value_len[r->fields - 1], 512, at, n, &r->overflow);
    return 0;
}

static int ref_headers_done(http_parser *p)
{
    struct ref *r = p->data;
    r->headers_done = 1;
    return 0;
}

static int ref_body(http_parser *p, const char *at, size_t n)
{
    struct ref *r = p->data;
    ref_add((char *)r->body, &r->body_len, sizeof(r->body), at, n, &r->overflow);
    return 0;
}

static int ref_complete(http_parser *p)
{
    struct ref *r = p->data;
    r->complete = 1;
    http_parser_pause(p, 1); /* the first request only */
    return 0;
}

/* Parse with http_parser; returns 1 when it read one whole request. */
static int ref_parse(const uint8_t *in, size_t len, struct ref *r, http_parser *hp)
{
    static http_parser_settings settings;
    settings.on_url = ref_url;
    settings.on_header_field = ref_field;
    settings.on_header_value = ref_value;
    settings.on_headers_complete = ref_headers_done;
    settings.on_body = ref_body;
    settings.on_message_complete = ref_complete;
    memset(r, 0, sizeof(*r));
    http_parser_init(hp, HTTP_REQUEST);
    hp->data = r;
    http_parser_execute(hp, &settings, (const char *)in, len);
    enum http_errno e = HTTP_PARSER_ERRNO(hp);
    return r->complete && (e == HPE_OK || e == HPE_PAUSED) && !r->overflow;
}

/* A header field as the codec's param name: "" when dropped. */
static void param_name(const char *name, size_t n, char *out, size_t cap)
{
    if (memchr(name, '_', n) || n + 6 > cap) {
        out[0] = '\0';
        return;
    }
    if (n == 12 && strncasecmp(name, "content-type", 12) == 0) {
        snprintf(out, cap, "CONTENT_TYPE");
        return;
    }
    if (n == 14 && strncasecmp(name, "content-length", 14) == 0) {
        snprintf(out, cap, "CONTENT_LENGTH");
        return;
    }
    memcpy(out, "HTTP_", 5);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        out[5 + i] = c == '-' ? '_' : c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    out[5 + n] = '\0';
}

/* Trim SP and HTAB from both ends of [*v, *v + *n). */
static void trim(const char **v, size_t *n)
{
    while (*n && (**v == ' ' || **v == '\t'))
        (*v)++, (*n)--;
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
        (*n)--;
}

/* Whether the codec's run and http_parser's read agree; else says why. */
static int agree(const struct codec_run *run, const struct ref *r, const http_parser *hp, char *why,
                 size_t cap)
{
    const struct params *p = &run->params;
    const char *m = params_get(p, "REQUEST_METHOD");
    if (!m || strcmp(m, http_method_str((enum http_method)hp->method)) != 0) {
        snprintf(why, cap, "method %s vs %s", m ? m : "-",
                 http_method_str((enum http_method)hp->method));
        return 0;
    }
    size_t ul;
    const char *u = params_getn(p, "REQUEST_URI", 11, &ul);
    if (!u || ul != r->url_len || memcmp(u, r->url, ul) != 0) {
        snprintf(why, cap, "target \"%s\" vs \"%.*s\"", u ? u : "-", (int)r->url_len, r->url);
        return 0;
    }
    /* The wire's fields, in order, against the codec's HTTP_* and CONTENT_*. */
    size_t k = 0;
    for (size_t i = 0; i < p->count; i++) {
        const struct params_entry *e = &p->entries[i];
        const char *name = params_name(p, e);
        if (strncmp(name, "HTTP_", 5) != 0 && strcmp(name, "CONTENT_TYPE") != 0 &&
            strcmp(name, "CONTENT_LENGTH") != 0)
            continue;
        char want[160];
        want[0] = '\0';
        while (k < r->fields && !want[0])
            param_name(r->names[k], r->name_len[k], want, sizeof(want)), k++;
        if (strcmp(want, name) != 0) {
            snprintf(why, cap, "field %zu: %s vs %s", i, name, want);
            return 0;
        }
        const char *v = r->values[k - 1];
        size_t vn = r->value_len[k - 1];
        trim(&v, &vn);
        if (vn != e->value_len || memcmp(v, params_value(p, e), vn) != 0) {
            snprintf(why, cap, "%s: \"%s\" vs \"%.*s\"", name, params_value(p, e), (int)vn, v);
            return 0;
        }
    }
    for (; k < r->fields; k++) {
        char want[160];
        param_name(r->names[k], r->name_len[k], want, sizeof(want));
        if (want[0]) {
            snprintf(why, cap, "http_parser has one more field %s", want);
            return 0;
        }
    }
    if (run->body_len != r->body_len ||
        (r->body_len > 0 && memcmp(run->body, r->body, r->body_len) != 0)) {
        snprintf(why, cap, "body %zu vs %zu bytes", run->body_len, r->body_len);
        return 0;
    }
    return 1;
}

static const char *const seeds[] = {
    "GET /a/b?c=d&e=%41 HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\nX-Pad: \t v  \r\n\r\n",
    "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: a/b\r\n\r\nhello world",
    ("PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"),
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    "DELETE http://example.org/x HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n",
    "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
};

static const uint8_t mutation_bytes[] = {'\r', '\n', ' ', '\t', ':', ',', ';', '"', '\0', 0x7f,
                                         0x80, 0xff, 'a', 'Z',  '0', '9', '_', '-', '/',  '%'};

struct tally {
    size_t inputs, codec_ok, both_ok, only_ref, ext_method, cl_tab, te_prefix, ext_bws;
};

/* Whether M is one of http_parser's methods (it refuses the others, which
 * RFC 9110 9.1 allows: any token). */
static int ref_knows_method(const char *m)
{
    for (int i = 0; i < 64; i++) {
        const char *k = http_method_str((enum http_method)i);
        if (strcmp(k, "<unknown>") == 0)
            break;
        if (strcmp(k, m) == 0)
            return 1;
    }
    return 0;
}

/* Run one input through both; fail when the codec accepts what http_parser
 * does not, or they disagree. */
static void diff_one(const uint8_t *in, size_t len, struct tally *t)
{
    struct codec_run run;
    struct ref r;
    http_parser hp;
    const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
    codec_feed(&proto_http, &lim, in, len, 0, 0, &run);
    int ours = run.body_end && !run.error;
    int theirs = ref_parse(in, len, &r, &hp);
    t->inputs++;
    if (ours) {
        t->codec_ok++;
        char why[512];
        const char *m = params_get(&run.params, "REQUEST_METHOD");
        if (!theirs && HTTP_PARSER_ERRNO(&hp) == HPE_INVALID_METHOD && m && !ref_knows_method(m)) {
            t->ext_method++; /* an extension method: not comparable */
            codec_run_free(&run);
            return;
        }
        enum http_errno e = HTTP_PARSER_ERRNO(&hp);
        if (!theirs && (e == HPE_INVALID_CONTENT_LENGTH || e == HPE_INVALID_TRANSFER_ENCODING) &&
            memmem(in, len, "\t\r\n", 3)) {
            /* "Content-Length: 1<HTAB>", "Transfer-Encoding: chunked<HTAB>":
             * OWS (RFC 9110 5.6.3) that http_parser takes for part of the
             * value. */
            t->cl_tab++;
            codec_run_free(&run);
            return;
        }
        if (!theirs && HTTP_PARSER_ERRNO(&hp) == HPE_INVALID_TRANSFER_ENCODING &&
            !params_get(&run.params, "HTTP_TRANSFER_ENCODING")) {
            /* A field whose name only starts with "Transfer-Encoding"
             * ("Transfer-Encodinga: chunked"): http_parser takes it for
             * Transfer-Encoding and refuses the request. */
            t->te_prefix++;
            codec_run_free(&run);
            return;
        }
        if (!theirs && e == HPE_INVALID_CHUNK_SIZE &&
            (memmem(in, len, "\t;", 2) || memmem(in, len, " ;", 2))) {
            /* "5 ;ext": BWS before a chunk extension, which RFC 9110 5.6.3
             * says a recipient must accept. */
            t->ext_bws++;
            codec_run_free(&run);
            return;
        }
        if (!theirs)
            fail_msg("the codec accepts what http_parser refuses (%s): %.*s",
                     http_errno_name(HTTP_PARSER_ERRNO(&hp)), (int)len, (const char *)in);
        if (!agree(&run, &r, &hp, why, sizeof(why)))
            fail_msg("they read it differently: %s\ninput: %.*s", why, (int)len, (const char *)in);
        t->both_ok++;
    } else if (theirs) {
        t->only_ref++;
    }
    codec_run_free(&run);
}

static void http_agrees_with_http_parser_on_seeds(void **state)
{
    (void)state;
    struct tally t = {0};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        diff_one((const uint8_t *)seeds[i], strlen(seeds[i]), &t);
    assert_int_equal(t.both_ok, sizeof(seeds) / sizeof(seeds[0]));
}

static void http_never_laxer_than_http_parser(void **state)
{
    (void)state;
    struct tally t = {0};
    uint8_t buf[512];
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        const uint8_t *seed = (const uint8_t *)seeds[s];
        size_t len = strlen(seeds[s]);
        assert_true(len + 1 < sizeof(buf));
        for (size_t at = 0; at <= len; at++) {
            if (at < len) { /* deleted */
                memcpy(buf, seed, at);
                memcpy(buf + at, seed + at + 1, len - at - 1);
                diff_one(buf, len - 1, &t);
            }
            for (size_t b = 0; b < sizeof(mutation_bytes); b++) {
                if (at < len && seed[at] != mutation_bytes[b]) { /* replaced */
                    memcpy(buf, seed, len);
                    buf[at] = mutation_bytes[b];
                    diff_one(buf, len, &t);
                }
                memcpy(buf, seed, at); /* inserted */
                buf[at] = mutation_bytes[b];
                memcpy(buf + at + 1, seed + at, len - at);
                diff_one(buf, len + 1, &t);
            }
        }
    }
    printf("# %zu mutated requests: the codec accepts %zu (%zu with a method http_parser does "
           "not know, %zu with a HTAB after the value of Content-Length or Transfer-Encoding and "
           "%zu with a field named "
           "Transfer-Encoding<more> and %zu with whitespace before a chunk extension's ';', which "
           "it refuses; it reads every other one the same way); "
           "http_parser alone accepts %zu\n",
           t.inputs, t.codec_ok, t.ext_method, t.cl_tab, t.te_prefix, t.ext_bws, t.only_ref);
    assert_true(t.both_ok > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_agrees_with_http_parser_on_seeds),
        cmocka_unit_test(http_never_laxer_than_http_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
