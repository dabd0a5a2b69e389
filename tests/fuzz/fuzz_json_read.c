/*
 * fuzz_json_read.c — libFuzzer target for the JSON reader (src/json_read.c),
 * which corralctl runs on the control socket's replies.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     src/json_read.c src/json.c tests/fuzz/fuzz_json_read.c -o fuzz_json_read
 *   ./fuzz_json_read tests/fuzz/corpus/json_read
 *
 * The reader gets exactly the input bytes (libFuzzer's buffer, no NUL after
 * it), so ASan sees any read past the end. Besides "no crash":
 *  - a refusal comes with "at byte N: ..." and N within the input;
 *  - a tree is well formed: counts match the lists, members of objects and
 *    only they have keys, strings are NUL-terminated at their length, and
 *    containers nest at most JSON_READ_MAX_DEPTH deep;
 *  - a lone number reads as strtod reads the whole token;
 *  - the tree written back with the JSON writer (src/json.c) fails exactly
 *    when it nests deeper than the writer allows, and otherwise parses
 *    again to the same values, up to what the writer does on purpose:
 *    bytes that are not UTF-8 become U+FFFD, numbers go out as integers or
 *    with 9 decimals, numbers beyond +-1e15 as null, keys stop at a NUL.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ctl/json_read.h"

#include "fuzz_check.h"

/* Containers nested in V (0 for a scalar), checking the tree's shape. */
static unsigned check_tree(const struct json_value *v)
{
    CHECK(v->type >= JSON_NULL && v->type <= JSON_OBJECT);
    if (v->type == JSON_STRING) {
        CHECK(v->string && v->string[v->length] == '\0');
    } else {
        CHECK(!v->string);
    }
    if (v->type != JSON_ARRAY && v->type != JSON_OBJECT) {
        CHECK(!v->child && v->count == 0);
        return 0;
    }
    unsigned deepest = 0;
    size_t count = 0;
    for (const struct json_value *e = v->child; e; e = e->next) {
        CHECK((e->key != NULL) == (v->type == JSON_OBJECT));
        unsigned d = check_tree(e);
        if (d > deepest)
            deepest = d;
        count++;
    }
    CHECK(count == v->count);
    return deepest + 1;
}

/* ---- what the writer makes of a value, computed independently ---- */

/* The length of the UTF-8 sequence at S (N bytes left) by RFC 3629, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp, min;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, cp = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, cp = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* S (N bytes) with every byte outside a UTF-8 sequence replaced by U+FFFD,
 * into a new buffer; its length in *outlen. */
static char *utf8_clean(const char *s, size_t n, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc(3 * n + 1);
    CHECK(out);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(p + i, n - i);
        if (len) {
            memcpy(out + o, p + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static int is_exact_int(double d)
{
    return d == trunc(d) && fabs(d) < 9007199254740992.0; /* 2^53 */
}

static void write_value(struct json *j, const struct json_value *v)
{
    switch (v->type) {
    case JSON_NULL:
        json_null(j);
        break;
    case JSON_FALSE:
    case JSON_TRUE:
        json_bool(j, v->type == JSON_TRUE);
        break;
    case JSON_NUMBER:
        if (is_exact_int(v->number))
            json_int(j, (int64_t)v->number);
        else
            json_double(j, v->number, 9);
        break;
    case JSON_STRING:
        json_string_n(j, v->string, v->length);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (v->type == JSON_ARRAY)
            json_array_begin(j);
        else
            json_object_begin(j);
        for (const struct json_value *e = v->child; e; e = e->next) {
            if (v->type == JSON_OBJECT)
                json_key(j, e->key);
            write_value(j, e);
        }
        if (v->type == JSON_ARRAY)
            json_array_end(j);
        else
            json_object_end(j);
        break;
    }
}

static void check_string(const char *was, size_t was_len, const char *now, size_t now_len)
{
    size_t want_len;
    char *want = utf8_clean(was, was_len, &want_len);
    CHECK(now_len == want_len && memcmp(now, want, want_len) == 0);
    free(want);
}

/* B, the tree read back from what A was written as, holds A's values. */
static void check_same(const struct json_value *a, const struct json_value *b)
{
    if (a->key)
        check_string(a->key, strlen(a->key), b->key, strlen(b->key));
    if (a->type == JSON_NUMBER && !is_exact_int(a->number)) {
        if (!(a->number > -1e15 && a->number < 1e15)) {
            CHECK(b->type == JSON_NULL);
            return;
        }
        char text[64];
        snprintf(text, sizeof(text), "%.9f", a->number);
        CHECK(b->type == JSON_NUMBER && b->number == strtod(text, NULL));
        return;
    }
    CHECK(a->type == b->type);
    switch (a->type) {
    case JSON_NUMBER:
        CHECK(a->number == b->number);
        break;
    case JSON_STRING:
        check_string(a->string, a->length, b->string, b->length);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT: {
        CHECK(a->count == b->count);
        const struct json_value *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            check_same(x, y);
        CHECK(!x && !y);
        break;
    }
    default:
        break;
    }
}

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    memset(err, 0, sizeof(err));
    struct json_value *v = json_parse((const char *)data, size, err, sizeof(err));
    if (!v) {
        size_t at;
        CHECK(sscanf(err, "at byte %zu: ", &at) == 1 && at <= size);
        CHECK(strlen(err) > strlen("at byte 0: "));
        return 0;
    }
    unsigned nesting = check_tree(v);
    CHECK(nesting <= JSON_READ_MAX_DEPTH);
    CHECK(!v->key);

    if (v->type == JSON_NUMBER) {
        size_t s = 0, e = size;
        while (is_space(data[s]))
            s++;
        while (is_space(data[e - 1]))
            e--;
        char *token = malloc(e - s + 1);
        CHECK(token);
        memcpy(token, data + s, e - s);
        token[e - s] = '\0';
        double want = strtod(token, NULL);
        CHECK(v->number == want);
        free(token);
    }

    struct json j;
    /* Ample room: the writer's expansion is bounded (\ufffd for one byte,
     * "0.500000000" for "0.5"), so only the depth may make it fail. */
    json_init(&j, 16 * size + 1024);
    write_value(&j, v);
    CHECK(json_failed(&j) == (nesting > JSON_MAX_DEPTH));
    if (!json_failed(&j)) {
        size_t len;
        const char *text = json_text(&j, &len);
        char *copy = malloc(len ? len : 1); /* exactly the text, no NUL after it */
        CHECK(copy);
        memcpy(copy, text, len);
        struct json_value *back = json_parse(copy, len, err, sizeof(err));
        if (!back)
            fprintf(stderr, "written back as %.*s: %s\n", (int)len, text, err);
        CHECK(back);
        check_tree(back);
        check_same(v, back);
        json_value_free(back);
        free(copy);
    }
    json_free(&j);
    json_value_free(v);
    return 0;
}
