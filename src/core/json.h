/*
 * json.h — a small JSON writer into a bounded, growing buffer.
 *
 * The writer places the commas and the colons: a caller only says what
 * comes next (json_object_begin, json_key, json_uint, ...). Strings are
 * escaped per RFC 8259 and are always valid UTF-8 in the output: control
 * characters become \n, \t, ... or \u00XX, and bytes that are not part of a
 * well-formed UTF-8 sequence (a cut multi-byte character, overlong forms,
 * surrogates, above U+10FFFF) become U+FFFD, so any bytes — a hostile URI —
 * make a document every parser accepts.
 *
 * Memory: the buffer grows up to MAX bytes. Past it, or when malloc fails,
 * the writer stops writing and json_failed says so; the text is then
 * incomplete and must not be sent. Nesting deeper than JSON_MAX_DEPTH also
 * fails, and so does misuse: a key outside an object, a value in an object
 * without its key, closing what is not open. Not thread-safe: one writer per thread.
 */
#ifndef CORRAL_JSON_H
#define CORRAL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

struct json {
    char *buf;
    size_t len, cap, max;
    unsigned depth;
    bool failed;
    bool after_key;                    /* a value is due after "key": */
    bool need_comma[JSON_MAX_DEPTH + 1]; /* per level: a member came before */
    char kind[JSON_MAX_DEPTH + 1];       /* per level: '{' or '[' */
};

/* An empty writer that may grow to MAX bytes (nothing is allocated yet). */
void json_init(struct json *j, size_t max);
/* Free the buffer; json_init before reuse. */
void json_free(struct json *j);
/* Empty the text, keep the buffer: start a new document. */
void json_reset(struct json *j);

/* Whether the document overflowed MAX, ran out of memory or nested too
 * deep: its text is then not valid. */
bool json_failed(const struct json *j);
/* The text (NUL-terminated; "" before anything was written) and its
 * length. Owned by the writer, valid until the next call on it. */
const char *json_text(const struct json *j, size_t *len);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);

/* The key of the next member of the current object. */
void json_key(struct json *j, const char *key);

/* Values: in an array, after a key, or as the whole document. */
void json_string(struct json *j, const char *s);   /* NULL → null */
void json_string_n(struct json *j, const char *s, size_t n);
void json_uint(struct json *j, uint64_t v);
void json_int(struct json *j, int64_t v);
void json_double(struct json *j, double v, int decimals); /* NaN, ±inf → null */
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/*
 * The length of the well-formed UTF-8 sequence at S (at most N bytes, N >
 * 0), or 0 when the bytes there are not one (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). Also used by status.c for the
 * OpenMetrics text, which must be UTF-8 too.
 */
size_t json_utf8_len(const unsigned char *s, size_t n);

/* Append N raw bytes (no separator, no escaping): a newline after the
 * document, say. */
void json_raw(struct json *j, const char *s, size_t n);

/* "key": value in one call. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_uint(struct json *j, const char *key, uint64_t v);
void json_kv_int(struct json *j, const char *key, int64_t v);
void json_kv_double(struct json *j, const char *key, double v, int decimals);
void json_kv_bool(struct json *j, const char *key, bool v);

#endif
