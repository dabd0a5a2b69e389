/*
 * allow.c — peer address lists for TCP listeners (see allow.h).
 */
#include "allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t allow_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int allow_fail(char *err, size_t errlen, const char *text, const char *why)
{
    snprintf(err, errlen, "expected an address or CIDR (such as 10.0.0.0/8 or fd00::/8), "
             "got '%s'%s", text, why);
    return -1;
}

/* Whether the bits of ADDR past PREFIX are all zero. */
static bool allow_host_bits_clear(const uint8_t addr[16], unsigned prefix)
{
    for (unsigned bit = prefix; bit < 128; bit++)
        if (addr[bit / 8] & (0x80u >> (bit % 8)))
            return false;
    return true;
}

int allow_parse(const char *text, struct allow_net *out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
    if (hlen == 0 || hlen >= sizeof(host))
        return allow_fail(err, errlen, text, "");
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        memcpy(out->addr, allow_v4_mapped, 12);
        memcpy(out->addr + 12, &a4, 4);
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        max = 128;
    } else {
        return allow_fail(err, errlen, text, " (host names are not resolved)");
    }
    unsigned prefix = max;
    if (slash) {
        const char *p = slash + 1;
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (p[0] < '0' || p[0] > '9' || *end || v > max) {
            char why[64];
            snprintf(why, sizeof(why), " (the prefix must be 0 to %u)", max);
            return allow_fail(err, errlen, text, why);
        }
        prefix = (unsigned)v;
    }
    out->prefix = max == 32 ? prefix + 96 : prefix;
    if (!allow_host_bits_clear(out->addr, out->prefix))
        return allow_fail(err, errlen, text, " (address bits are set past the prefix)");
    return 0;
}

int allow_check(const char *text, char *err, size_t errlen)
{
    struct allow_net n;
    return allow_parse(text, &n, err, errlen);
}

int allow_list_init(struct allow_list *l, char *const *specs, size_t count, char *err,
                    size_t errlen)
{
    static char *const loopback[] = {"127.0.0.0/8", "::1"};
    if (count == 0) {
        specs = loopback;
        count = 2;
    }
    l->count = 0;
    l->nets = calloc(count, sizeof(*l->nets));
    if (!l->nets) {
        snprintf(err, errlen, "allow_from: out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (allow_parse(specs[i], &l->nets[i], err, errlen) < 0) {
            allow_list_free(l);
            return -1;
        }
    }
    l->count = count;
    return 0;
}

void allow_list_free(struct allow_list *l)
{
    free(l->nets);
    l->nets = NULL;
    l->count = 0;
}

static bool allow_net_has(const struct allow_net *n, const uint8_t addr[16])
{
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (addr[full] & mask) == n->addr[full];
}

bool allow_match(const struct allow_list *l, const struct sockaddr *sa, socklen_t len)
{
    uint8_t addr[16];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        memcpy(addr, allow_v4_mapped, 12);
        memcpy(addr + 12, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        memcpy(addr, &in6->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        return false; /* truncated: never let it through */
    } else {
        return true;
    }
    for (size_t i = 0; i < l->count; i++)
        if (allow_net_has(&l->nets[i], addr))
            return true;
    return false;
}

void allow_format(const struct allow_list *l, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->count && used < outlen; i++) {
        const struct allow_net *n = &l->nets[i];
        char host[INET6_ADDRSTRLEN];
        bool v4 = n->prefix >= 96 && memcmp(n->addr, allow_v4_mapped, 12) == 0;
        if (v4)
            inet_ntop(AF_INET, n->addr + 12, host, sizeof(host));
        else
            inet_ntop(AF_INET6, n->addr, host, sizeof(host));
        int k = snprintf(out + used, outlen - used, "%s%s/%u", i ? ", " : "", host,
                         v4 ? n->prefix - 96 : n->prefix);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

bool allow_ratelimit_due(struct allow_ratelimit *r, uint64_t now_s, unsigned long *suppressed)
{
    uint64_t last = atomic_load_explicit(&r->last_s, memory_order_relaxed);
    if (last != 0 && last - 1 >= now_s) {
        atomic_fetch_add_explicit(&r->suppressed, 1, memory_order_relaxed);
        return false;
    }
    /* One thread wins the second; the others count as suppressed. */
    if (!atomic_compare_exchange_strong(&r->last_s, &last, now_s + 1)) {
        atomic_fetch_add_explicit(&r->suppressed, 1, memory_order_relaxed);
        return false;
    }
    *suppressed = atomic_exchange_explicit(&r->suppressed, 0, memory_order_relaxed);
    return true;
}
