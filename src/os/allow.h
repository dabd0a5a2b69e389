/*
 * allow.h — which peers a TCP listener accepts (--allow-from): a list of
 * IPv4/IPv6 addresses and CIDR prefixes, loopback only by default (like
 * PHP-FPM's listen.allowed_clients), and the rate limit of the log line a
 * refused peer gets.
 *
 * Parsing and matching are pure (no I/O, no logging): the worker checks
 * every accepted TCP connection with allow_match and closes a refused one.
 */
#ifndef CORRAL_ALLOW_H
#define CORRAL_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One network. IPv4 is kept as the v4-mapped IPv6 address (::ffff:a.b.c.d)
 * with the prefix plus 96, so one comparison serves both families and a
 * v4-mapped peer on an IPv6 socket matches an IPv4 entry. */
struct allow_net {
    uint8_t addr[16];   /* host bits past the prefix are zero */
    unsigned prefix;    /* 0..128 */
};

struct allow_list {
    struct allow_net *nets;
    size_t count;
};

/*
 * Parse TEXT: an IPv4 or IPv6 address, optionally "/PREFIX" (0..32 or
 * 0..128). Host bits set past the prefix are refused ("10.0.0.1/8": did
 * you mean 10.0.0.0/8?). Returns 0, or -1 with "expected an address or
 * CIDR, got ..." (or the precise reason) in err.
 */
int allow_parse(const char *text, struct allow_net *out, char *err, size_t errlen);

/* The option check: TEXT must parse (same messages). */
int allow_check(const char *text, char *err, size_t errlen);

/*
 * Build the list from SPECS (COUNT strings); COUNT 0 gives the default,
 * loopback only: 127.0.0.0/8 and ::1. Returns 0, or -1 with a message
 * naming the bad entry (the list is then empty). allow_list_free releases.
 */
int allow_list_init(struct allow_list *l, char *const *specs, size_t count, char *err,
                    size_t errlen);
void allow_list_free(struct allow_list *l);

/* Whether the peer SA (AF_INET or AF_INET6) is in L. Other families (unix)
 * are always allowed: --allow-from is for TCP. Thread-safe (reads only). */
bool allow_match(const struct allow_list *l, const struct sockaddr *sa, socklen_t len);

/* The list as text ("127.0.0.0/8, ::1/128"), for the start-up log. */
void allow_format(const struct allow_list *l, char *out, size_t outlen);

/*
 * The log line for refused peers, at most one per interval per listener:
 * allow_ratelimit_due returns true when a line may be written now (NOW_S,
 * in seconds) and stores in *suppressed how many refusals went unlogged
 * since the last line; false counts this refusal as suppressed. Safe from
 * several threads (atomics).
 */
struct allow_ratelimit {
    _Atomic uint64_t last_s;       /* second of the last line + 1; 0 = never */
    _Atomic unsigned long suppressed;
};

bool allow_ratelimit_due(struct allow_ratelimit *r, uint64_t now_s, unsigned long *suppressed);

#endif
