/*
 * json_read.h — a small JSON reader (RFC 8259) into a tree, for corralctl,
 * which turns the control socket's replies into tables.
 *
 * Pure: no I/O, no logging; errors go into a buffer with the byte offset.
 * Nesting is limited to JSON_READ_MAX_DEPTH. Numbers are doubles (exact for
 * integers up to 2^53, which every counter here stays below).
 */
#ifndef CORRAL_JSON_READ_H
#define CORRAL_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_READ_MAX_DEPTH 64

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

struct json_value {
    enum json_type type;
    double number;           /* JSON_NUMBER */
    char *string;            /* JSON_STRING: decoded UTF-8, NUL-terminated */
    size_t length;           /* JSON_STRING: bytes (it may hold a NUL) */
    char *key;               /* a member of an object: its key */
    struct json_value *child; /* JSON_ARRAY, JSON_OBJECT: the first element */
    struct json_value *next;  /* the next element of the parent */
    size_t count;            /* JSON_ARRAY, JSON_OBJECT: elements */
};

/*
 * Parse the N bytes at TEXT (one value, white space around it allowed).
 * Returns the tree (free it with json_value_free), or NULL with a message
 * naming the offset in err ("at byte 12: expected ':'").
 */
struct json_value *json_parse(const char *text, size_t n, char *err, size_t errlen);
void json_value_free(struct json_value *v);

/* The member KEY of object V, or NULL (also when V is NULL or no object). */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* The number in V, or DFLT when V is NULL or not a number. */
double json_number(const struct json_value *v, double dflt);
/* The string in V, or DFLT when V is NULL or not a string. */
const char *json_str(const struct json_value *v, const char *dflt);
/* Whether V is true. */
bool json_is_true(const struct json_value *v);

#endif
