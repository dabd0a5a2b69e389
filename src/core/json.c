/*
 * json.c — the JSON writer (see json.h).
 */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { JSON_MIN_CAP = 256 };

void json_init(struct json *j, size_t max)
{
    memset(j, 0, sizeof(*j));
    j->max = max;
}

void json_free(struct json *j)
{
    free(j->buf);
    json_init(j, j->max);
}

void json_reset(struct json *j)
{
    char *buf = j->buf;
    size_t cap = j->cap, max = j->max;
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->cap = cap;
    j->max = max;
    if (buf)
        buf[0] = '\0';
}

bool json_failed(const struct json *j)
{
    return j->failed;
}

const char *json_text(const struct json *j, size_t *len)
{
    if (len)
        *len = j->len;
    return j->buf ? j->buf : "";
}

/* Room for N more bytes and the NUL; false (and failed) past max. */
static bool json_reserve(struct json *j, size_t n)
{
    if (j->failed)
        return false;
    if (n > j->max || j->len > j->max - n) {
        j->failed = true;
        return false;
    }
    size_t need = j->len + n + 1;
    if (need <= j->cap)
        return true;
    size_t cap = j->cap ? j->cap : JSON_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > j->max + 1)
        cap = j->max + 1;
    char *grown = realloc(j->buf, cap);
    if (!grown) {
        j->failed = true;
        return false;
    }
    j->buf = grown;
    j->cap = cap;
    return true;
}

static void json_put(struct json *j, const char *s, size_t n)
{
    if (!json_reserve(j, n))
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

void json_raw(struct json *j, const char *s, size_t n)
{
    json_put(j, s, n);
}

static void json_putc(struct json *j, char c)
{
    json_put(j, &c, 1);
}

/* Before a value or a key: the comma that separates it from the previous
 * member, unless it follows its key. */
static void json_separate(struct json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->kind[j->depth] == '{')
        j->failed = true; /* a value in an object needs its key */
    if (j->need_comma[j->depth])
        json_putc(j, ',');
    j->need_comma[j->depth] = true;
}

static void json_open(struct json *j, char c)
{
    json_separate(j);
    if (j->depth >= JSON_MAX_DEPTH) {
        j->failed = true;
        return;
    }
    json_putc(j, c);
    j->need_comma[++j->depth] = false;
    j->kind[j->depth] = c;
}

static void json_close(struct json *j, char c)
{
    if (j->depth == 0 || j->after_key || j->kind[j->depth] != (c == '}' ? '{' : '[')) {
        j->failed = true;
        return;
    }
    j->depth--;
    json_putc(j, c);
}

void json_object_begin(struct json *j)
{
    json_open(j, '{');
}

void json_object_end(struct json *j)
{
    json_close(j, '}');
}

void json_array_begin(struct json *j)
{
    json_open(j, '[');
}

void json_array_end(struct json *j)
{
    json_close(j, ']');
}

/* See json.h. */
size_t json_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

void json_string_n(struct json *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    json_separate(j);
    json_putc(j, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && !j->failed) {
        /* The longest run that needs no escape goes out in one copy. */
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            json_put(j, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = json_utf8_len(p + i, n - i);
            if (len) {
                json_put(j, s + i, len);
                i += len;
            } else {
                json_put(j, "\\ufffd", 6);
                i++;
            }
            continue;
        }
        char esc[7] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        json_put(j, esc, elen);
        i++;
    }
    json_putc(j, '"');
}

void json_string(struct json *j, const char *s)
{
    if (!s)
        json_null(j);
    else
        json_string_n(j, s, strlen(s));
}

void json_key(struct json *j, const char *key)
{
    if (j->kind[j->depth] != '{' || j->after_key) {
        j->failed = true;
        return;
    }
    /* The key is written like a value, with its comma. */
    j->kind[j->depth] = 'k';
    json_string(j, key);
    j->kind[j->depth] = '{';
    json_putc(j, ':');
    j->after_key = true;
}

static void json_raw_value(struct json *j, const char *text)
{
    json_separate(j);
    json_put(j, text, strlen(text));
}

void json_uint(struct json *j, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    json_raw_value(j, buf);
}

void json_int(struct json *j, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    json_raw_value(j, buf);
}

void json_double(struct json *j, double v, int decimals)
{
    char buf[64];
    /* NaN fails both comparisons; infinities and huge values are out. */
    if (!(v > -1e15 && v < 1e15)) {
        json_null(j);
        return;
    }
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    json_raw_value(j, buf);
}

void json_bool(struct json *j, bool v)
{
    json_raw_value(j, v ? "true" : "false");
}

void json_null(struct json *j)
{
    json_raw_value(j, "null");
}

void json_kv_string(struct json *j, const char *key, const char *s)
{
    json_key(j, key);
    json_string(j, s);
}

void json_kv_uint(struct json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_uint(j, v);
}

void json_kv_int(struct json *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_int(j, v);
}

void json_kv_double(struct json *j, const char *key, double v, int decimals)
{
    json_key(j, key);
    json_double(j, v, decimals);
}

void json_kv_bool(struct json *j, const char *key, bool v)
{
    json_key(j, key);
    json_bool(j, v);
}
