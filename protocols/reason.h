/*
 * reason.h — quoting hostile bytes in the error reasons codecs report (the
 * reasons end up in the error log, so they must stay printable and short).
 */
#ifndef CORRAL_REASON_H
#define CORRAL_REASON_H

#include <stddef.h>
#include <stdint.h>

/* A byte as it may appear in a reason: printable ASCII, others as '?'. */
static inline char reason_printable(uint8_t c)
{
    return c >= 0x20 && c < 0x7f ? (char)c : '?';
}

/* Printable copy of a name or value for a reason: at most 20 bytes. */
static inline const char *reason_quote(char out[24], const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n && i < 20; i++)
        out[i] = reason_printable((uint8_t)s[i]);
    out[i] = '\0';
    return out;
}

#endif
