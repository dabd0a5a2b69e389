/*
 * params.c — the CGI parameter table (see params.h for the contract).
 */
#include "params.h"

#include <stdlib.h>
#include <string.h>

void params_init(struct params *p, size_t max_bytes, size_t max_count,
                 size_t max_field)
{
    memset(p, 0, sizeof(*p));
    p->max_bytes = max_bytes;
    p->max_count = max_count;
    p->max_field = max_field;
}

void params_reset(struct params *p)
{
    p->store_len = 0;
    p->count = 0;
    p->field_start = 0;
    p->in_value = 0;
}

void params_free(struct params *p)
{
    free(p->store);
    free(p->entries);
    p->store = NULL;
    p->entries = NULL;
    p->store_cap = p->entries_cap = 0;
    params_reset(p);
}

/* Make room for n more bytes; the store never grows past the limit plus one
 * NUL per field, so a hostile peer cannot make it grow without bound. */
static enum params_status params_grow(struct params *p, size_t n)
{
    if (p->store_len + n <= p->store_cap)
        return PARAMS_OK;
    size_t cap = p->store_cap ? p->store_cap : 1024;
    while (cap < p->store_len + n)
        cap *= 2;
    char *s = realloc(p->store, cap);
    if (!s)
        return PARAMS_NO_MEMORY;
    p->store = s;
    p->store_cap = cap;
    return PARAMS_OK;
}

/* Bytes of names and values stored, not counting the NULs. */
static size_t params_payload(const struct params *p)
{
    size_t fields = p->count * 2 + (p->in_value ? 1 : 0);
    return p->store_len - fields;
}

enum params_status params_push(struct params *p, const void *data, size_t n)
{
    if (n == 0)
        return PARAMS_OK;
    if (p->store_len - p->field_start + n > p->max_field)
        return PARAMS_FIELD_TOO_LONG;
    if (params_payload(p) + n > p->max_bytes)
        return PARAMS_TOO_BIG;
    enum params_status st = params_grow(p, n + 1);
    if (st != PARAMS_OK)
        return st;
    memcpy(p->store + p->store_len, data, n);
    p->store_len += n;
    return PARAMS_OK;
}

enum params_status params_end_field(struct params *p)
{
    enum params_status st = params_grow(p, 1);
    if (st != PARAMS_OK)
        return st;
    size_t start = p->field_start;
    size_t len = p->store_len - start;
    p->store[p->store_len++] = '\0';
    p->field_start = p->store_len;
    if (!p->in_value) {
        if (p->count >= p->max_count)
            return PARAMS_TOO_MANY;
        if (p->count == p->entries_cap) {
            size_t cap = p->entries_cap ? p->entries_cap * 2 : 32;
            struct params_entry *e = realloc(p->entries, cap * sizeof(*e));
            if (!e)
                return PARAMS_NO_MEMORY;
            p->entries = e;
            p->entries_cap = cap;
        }
        struct params_entry *e = &p->entries[p->count];
        e->name_off = (uint32_t)start;
        e->name_len = (uint32_t)len;
        p->in_value = 1;
    } else {
        struct params_entry *e = &p->entries[p->count];
        e->value_off = (uint32_t)start;
        e->value_len = (uint32_t)len;
        p->count++;
        p->in_value = 0;
    }
    return PARAMS_OK;
}

void params_unpush(struct params *p, size_t n)
{
    p->store_len -= n;
}

const struct params_entry *params_last(const struct params *p)
{
    return p->count ? &p->entries[p->count - 1] : NULL;
}

const char *params_getn(const struct params *p, const char *name,
                        size_t name_len, size_t *value_len)
{
    for (size_t i = 0; i < p->count; i++) {
        const struct params_entry *e = &p->entries[i];
        if (e->name_len == name_len &&
            memcmp(p->store + e->name_off, name, name_len) == 0) {
            if (value_len)
                *value_len = e->value_len;
            return p->store + e->value_off;
        }
    }
    return NULL;
}

const char *params_get(const struct params *p, const char *name)
{
    return params_getn(p, name, strlen(name), NULL);
}

const char *params_strerror(enum params_status s)
{
    switch (s) {
    case PARAMS_OK:
        return "ok";
    case PARAMS_TOO_BIG:
        return "params block over the size limit";
    case PARAMS_TOO_MANY:
        return "too many params";
    case PARAMS_FIELD_TOO_LONG:
        return "param name or value over the length limit";
    case PARAMS_NO_MEMORY:
        return "out of memory for params";
    }
    return "unknown params error";
}

int params_parse_length(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) /* lengths travel as int64_t */
        return -1;
    *out = v;
    return 0;
}
