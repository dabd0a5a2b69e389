/*
 * json_read.c — the JSON reader (see json_read.h). Recursive descent over
 * the grammar of RFC 8259, depth-limited.
 */
#include "json_read.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_reader {
    const char *p, *start, *end;
    char *err;
    size_t errlen;
    bool failed;
};

static void json_read_fail(struct json_reader *r, const char *what)
{
    if (r->failed)
        return;
    r->failed = true;
    snprintf(r->err, r->errlen, "at byte %zu: %s", (size_t)(r->p - r->start), what);
}

static void json_read_space(struct json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool json_read_literal(struct json_reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return false;
    r->p += n;
    return true;
}

static int json_read_hex4(struct json_reader *r, unsigned *out)
{
    if (r->end - r->p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    r->p += 4;
    *out = v;
    return 0;
}

static size_t json_read_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at r->p (at its opening quote), decoded into a new buffer. */
static char *json_read_string(struct json_reader *r, size_t *len)
{
    r->p++; /* the quote */
    /* The decoded text is never longer than the source. */
    const char *q = r->p;
    while (q < r->end && *q != '"')
        q += *q == '\\' && q + 1 < r->end ? 2 : 1;
    if (q >= r->end) {
        json_read_fail(r, "unterminated string");
        return NULL;
    }
    char *out = malloc((size_t)(q - r->p) + 1);
    if (!out) {
        json_read_fail(r, "out of memory");
        return NULL;
    }
    size_t n = 0;
    while (*r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) {
            json_read_fail(r, "control character in a string");
            goto fail;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            r->p++;
            continue;
        }
        r->p++;
        char e = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            out[n++] = decoded[simple - "\"\\/bfnrt"];
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || json_read_hex4(r, &cp) < 0) {
            json_read_fail(r, "bad escape in a string");
            goto fail;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* A high surrogate must be followed by \u and a low one. */
            if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') {
                json_read_fail(r, "lone surrogate in a string");
                goto fail;
            }
            r->p += 2;
            if (json_read_hex4(r, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                json_read_fail(r, "bad surrogate pair in a string");
                goto fail;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            json_read_fail(r, "lone surrogate in a string");
            goto fail;
        }
        n += json_read_utf8(cp, out + n);
    }
    r->p++; /* the closing quote */
    out[n] = '\0';
    *len = n;
    return out;
fail:
    free(out);
    return NULL;
}

static bool json_read_digits(struct json_reader *r)
{
    const char *s = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > s;
}

static bool json_read_number(struct json_reader *r, double *out)
{
    const char *s = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p < r->end && *r->p == '0')
        r->p++;
    else if (!json_read_digits(r))
        return false;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!json_read_digits(r))
            return false;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!json_read_digits(r))
            return false;
    }
    /* strtod reads the whole token: cutting it would cut off digits of the
     * integer part or the exponent (a 100-digit integer is not 1e63). */
    char small[64], *buf = small;
    size_t n = (size_t)(r->p - s);
    if (n >= sizeof(small) && !(buf = malloc(n + 1))) {
        json_read_fail(r, "out of memory");
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return true;
}

static struct json_value *json_read_value(struct json_reader *r, unsigned depth);

/* The elements of an array or the members of an object, after its '['/'{'. */
static bool json_read_elements(struct json_reader *r, struct json_value *v, unsigned depth)
{
    bool object = v->type == JSON_OBJECT;
    char close = object ? '}' : ']';
    struct json_value **tail = &v->child;
    json_read_space(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        char *key = NULL;
        size_t keylen;
        json_read_space(r);
        if (object) {
            if (r->p >= r->end || *r->p != '"') {
                json_read_fail(r, "expected a string key");
                return false;
            }
            if (!(key = json_read_string(r, &keylen)))
                return false;
            json_read_space(r);
            if (r->p >= r->end || *r->p != ':') {
                free(key);
                json_read_fail(r, "expected ':'");
                return false;
            }
            r->p++;
        }
        struct json_value *e = json_read_value(r, depth + 1);
        if (!e) {
            free(key);
            return false;
        }
        e->key = key;
        *tail = e;
        tail = &e->next;
        v->count++;
        json_read_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return true;
        }
        json_read_fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return false;
    }
}

/* A value inside DEPTH open arrays and objects. */
static struct json_value *json_read_value(struct json_reader *r, unsigned depth)
{
    json_read_space(r);
    if (r->p >= r->end) {
        json_read_fail(r, "expected a value, got the end");
        return NULL;
    }
    /* The limit counts containers: the check is where one opens (an empty
     * one as well), which also bounds the recursion. */
    if ((*r->p == '{' || *r->p == '[') && depth >= JSON_READ_MAX_DEPTH) {
        json_read_fail(r, "nested too deep");
        return NULL;
    }
    struct json_value *v = calloc(1, sizeof(*v));
    if (!v) {
        json_read_fail(r, "out of memory");
        return NULL;
    }
    char c = *r->p;
    bool ok = true;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
        r->p++;
        ok = json_read_elements(r, v, depth);
    } else if (c == '"') {
        v->type = JSON_STRING;
        ok = (v->string = json_read_string(r, &v->length)) != NULL;
    } else if (json_read_literal(r, "true")) {
        v->type = JSON_TRUE;
    } else if (json_read_literal(r, "false")) {
        v->type = JSON_FALSE;
    } else if (json_read_literal(r, "null")) {
        v->type = JSON_NULL;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v->type = JSON_NUMBER;
        ok = json_read_number(r, &v->number);
        if (!ok)
            json_read_fail(r, "malformed number");
    } else {
        json_read_fail(r, "expected a value");
        ok = false;
    }
    if (!ok) {
        json_value_free(v);
        return NULL;
    }
    return v;
}

struct json_value *json_parse(const char *text, size_t n, char *err, size_t errlen)
{
    struct json_reader r = {.p = text, .start = text, .end = text + n, .err = err,
                            .errlen = errlen};
    struct json_value *v = json_read_value(&r, 0);
    if (!v)
        return NULL;
    json_read_space(&r);
    if (r.p != r.end) {
        json_read_fail(&r, "unexpected bytes after the value");
        json_value_free(v);
        return NULL;
    }
    return v;
}

void json_value_free(struct json_value *v)
{
    while (v) {
        struct json_value *next = v->next;
        json_value_free(v->child);
        free(v->string);
        free(v->key);
        free(v);
        v = next;
    }
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
    if (!v || v->type != JSON_OBJECT)
        return NULL;
    for (const struct json_value *e = v->child; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

double json_number(const struct json_value *v, double dflt)
{
    return v && v->type == JSON_NUMBER ? v->number : dflt;
}

const char *json_str(const struct json_value *v, const char *dflt)
{
    return v && v->type == JSON_STRING ? v->string : dflt;
}

bool json_is_true(const struct json_value *v)
{
    return v && v->type == JSON_TRUE;
}
