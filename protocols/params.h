/*
 * params.h — the CGI parameter table of one request.
 *
 * Decoders fill it field by field, in whatever pieces the bytes arrive:
 * params_push() appends bytes to the field being built, params_end_field()
 * closes it. Fields alternate name, value, name, value... Every field is
 * stored NUL-terminated, so names and values can be handed to C code and
 * Python as they are. The table owns its storage and is reused across the
 * requests of one connection (params_reset keeps the memory).
 *
 * Limits are enforced here, once, for all three protocols: the total bytes
 * (names + values), the number of pairs and the length of a single field.
 * Exceeding one is an error, never a truncation.
 *
 * Thread rules: a table belongs to one connection; no locking.
 */
#ifndef CORRAL_PARAMS_H
#define CORRAL_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct params_entry {
    uint32_t name_off, name_len;   /* offsets into params.store */
    uint32_t value_off, value_len;
};

struct params {
    char *store;                   /* names and values, each NUL-terminated */
    size_t store_len, store_cap;
    struct params_entry *entries;
    size_t count, entries_cap;
    size_t field_start;            /* offset of the field being built */
    int in_value;                  /* the open field is a value */
    /* limits (copied from proto_limits by params_init) */
    size_t max_bytes, max_count, max_field;
};

enum params_status {
    PARAMS_OK = 0,
    PARAMS_TOO_BIG = -1,      /* total bytes over max_bytes */
    PARAMS_TOO_MANY = -2,     /* more than max_count pairs */
    PARAMS_FIELD_TOO_LONG = -3, /* one name or value over max_field */
    PARAMS_NO_MEMORY = -4,
};

void params_init(struct params *p, size_t max_bytes, size_t max_count,
                 size_t max_field);
/* Forget every entry but keep the memory for the next request. */
void params_reset(struct params *p);
void params_free(struct params *p);

/* Append n bytes to the open field (a name if none is open). */
enum params_status params_push(struct params *p, const void *data, size_t n);
/* Close the open field (possibly empty). Closing a value adds the pair. */
enum params_status params_end_field(struct params *p);

/* Drop the last N bytes pushed into the open field (N <= its length): the
 * HTTP codec trims a header value's trailing whitespace once the line ends. */
void params_unpush(struct params *p, size_t n);

/* The last complete pair, or NULL: decoders use it to catch CONTENT_LENGTH
 * as it is read. */
const struct params_entry *params_last(const struct params *p);

static inline const char *params_name(const struct params *p,
                                      const struct params_entry *e)
{
    return p->store + e->name_off;
}
static inline const char *params_value(const struct params *p,
                                       const struct params_entry *e)
{
    return p->store + e->value_off;
}

/* Whether entry E is named NAME (exact, case-sensitive): decoders use it on
 * params_last to catch the pairs they check. */
static inline bool params_is(const struct params *p, const struct params_entry *e, const char *name)
{
    size_t n = strlen(name);
    return e->name_len == n && memcmp(params_name(p, e), name, n) == 0;
}

/* First value of NAME (exact, case-sensitive), NULL when absent. */
const char *params_get(const struct params *p, const char *name);
const char *params_getn(const struct params *p, const char *name,
                        size_t name_len, size_t *value_len);

/* Human readable text for a params_status. */
const char *params_strerror(enum params_status s);

/*
 * Parse a CONTENT_LENGTH value: decimal digits only, no sign, no spaces,
 * no overflow, at most INT64_MAX. Returns 0 and sets *out, or -1 when malformed. An empty
 * string is malformed here; callers decide what "empty" means.
 */
int params_parse_length(const char *s, size_t len, uint64_t *out);

#endif
