/*
 * peer.c — the connection's own params for codecs that cannot know them
 * (see peer.h).
 */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "os/allow.h"

/* Push the pair NAME = VALUE[0, LEN). */
static enum params_status peer_pair(struct params *p, const char *name, const char *value,
                                    size_t len)
{
    enum params_status s;
    if ((s = params_push(p, name, strlen(name))) != PARAMS_OK ||
        (s = params_end_field(p)) != PARAMS_OK || (s = params_push(p, value, len)) != PARAMS_OK)
        return s;
    return params_end_field(p);
}

/* Split a peer name ("127.0.0.1:5555", "[::1]:5555", "unix") into its
 * address and port; false for a unix peer. */
static bool peer_split(const char *peer, const char **addr, size_t *alen, const char **port)
{
    const char *colon = strrchr(peer, ':');
    if (!colon)
        return false;
    *addr = peer;
    *alen = (size_t)(colon - peer);
    if (peer[0] == '[' && *alen >= 2 && peer[*alen - 1] == ']') {
        (*addr)++;
        *alen -= 2;
    }
    *port = colon + 1;
    return true;
}

/* Whether TEXT (LEN bytes) is an IPv4 or IPv6 address; *TRUSTED says
 * whether it is in LIST. */
static bool peer_parse_addr(const char *text, size_t len, const struct allow_list *list,
                            bool *trusted)
{
    char buf[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, buf, &a4.sin_addr) == 1)
        *trusted = allow_match(list, (struct sockaddr *)&a4, sizeof(a4));
    else if (inet_pton(AF_INET6, buf, &a6.sin6_addr) == 1)
        *trusted = allow_match(list, (struct sockaddr *)&a6, sizeof(a6));
    else
        return false;
    return true;
}

/* Trim blanks (and, with QUOTES, one pair of double quotes) off [*a, *b). */
static void peer_trim(const char *v, size_t *a, size_t *b, bool quotes)
{
    while (*a < *b && (v[*a] == ' ' || v[*a] == '\t'))
        (*a)++;
    while (*b > *a && (v[*b - 1] == ' ' || v[*b - 1] == '\t'))
        (*b)--;
    if (quotes && *b - *a >= 2 && v[*a] == '"' && v[*b - 1] == '"') {
        (*a)++;
        (*b)--;
    }
}

/* The client behind a chain of proxies: the list V (LEN bytes, comma
 * separated) is walked from the right, past the addresses of trusted
 * proxies; the first other address is the client (or the leftmost when
 * all are trusted). For Forwarded (FORWARDED), each element is
 * "for=...;proto=..." pairs, and its proto= comes along in *PROTO.
 * Returns false when an element is not an address (the header is then not
 * used at all). */
static bool peer_walk(const char *v, size_t len, bool forwarded, const struct allow_list *list,
                      const char **client, size_t *clen, const char **proto, size_t *plen)
{
    size_t end = len;
    bool found = false;
    while (end > 0 || !found) {
        const char *comma = NULL;
        for (size_t i = end; i > 0; i--)
            if (v[i - 1] == ',') {
                comma = v + i - 1;
                break;
            }
        size_t a = comma ? (size_t)(comma - v) + 1 : 0, b = end;
        size_t fa = a, fb = b, pa = 0, pb = 0;
        if (forwarded) {
            /* for= and proto= among the pairs of this element */
            bool have_for = false;
            for (size_t i = a; i < b;) {
                const char *semi = memchr(v + i, ';', b - i);
                size_t e = semi ? (size_t)(semi - v) : b, x = i, y = e;
                peer_trim(v, &x, &y, false);
                if (y - x > 4 && strncasecmp(v + x, "for=", 4) == 0) {
                    fa = x + 4, fb = y, have_for = true;
                } else if (y - x > 6 && strncasecmp(v + x, "proto=", 6) == 0) {
                    pa = x + 6, pb = y;
                    peer_trim(v, &pa, &pb, true);
                }
                i = e + 1;
            }
            if (!have_for)
                return false;
            peer_trim(v, &fa, &fb, true);
            /* "[2001:db8::1]:4711" or "192.0.2.1:80": the address only */
            if (fb > fa && v[fa] == '[') {
                const char *close = memchr(v + fa, ']', fb - fa);
                if (!close)
                    return false;
                fb = (size_t)(close - v);
                fa++;
            } else {
                const char *colon = memchr(v + fa, ':', fb - fa);
                if (colon && !memchr(colon + 1, ':', fb - (size_t)(colon + 1 - v)))
                    fb = (size_t)(colon - v);
            }
        } else {
            peer_trim(v, &fa, &fb, false);
        }
        bool trusted;
        if (!peer_parse_addr(v + fa, fb - fa, list, &trusted))
            return false;
        *client = v + fa;
        *clen = fb - fa;
        *proto = pb > pa ? v + pa : NULL;
        *plen = pb - pa;
        found = true;
        if (!trusted || !comma)
            return true;
        end = a - 1;
    }
    return found;
}

/* A trusted proxy's word on the client: Forwarded, else X-Forwarded-For
 * and X-Forwarded-Proto. Sets *ADDR and *ALEN (the client's address, or left
 * alone) and *HTTPS. */
static void peer_forwarded(const struct conn *c, const char **addr, size_t *alen, bool *https)
{
    const struct params *p = &c->params;
    const struct allow_list *list = c->listener->trusted;
    const char *client, *proto = NULL;
    size_t clen, plen = 0, n;
    const char *v = params_getn(p, "HTTP_FORWARDED", 14, &n);
    if (v) {
        if (peer_walk(v, n, true, list, &client, &clen, &proto, &plen)) {
            *addr = client;
            *alen = clen;
            *https = proto && plen == 5 && strncasecmp(proto, "https", 5) == 0;
        }
        return;
    }
    v = params_getn(p, "HTTP_X_FORWARDED_FOR", 20, &n);
    if (v && peer_walk(v, n, false, list, &client, &clen, &proto, &plen)) {
        *addr = client;
        *alen = clen;
    }
    v = params_getn(p, "HTTP_X_FORWARDED_PROTO", 22, &n);
    if (v) {
        /* the last proxy's word: the rightmost element */
        const char *comma = memrchr(v, ',', n);
        size_t a = comma ? (size_t)(comma - v) + 1 : 0, b = n;
        peer_trim(v, &a, &b, false);
        *https = b - a == 5 && strncasecmp(v + a, "https", 5) == 0;
    }
}

enum params_status peer_params(const struct conn *c, struct params *p)
{
    const struct listen_addr *la = &c->listener->addr;
    const char *addr, *port;
    size_t alen;
    enum params_status s;
    bool https = false;
    if (c->trusted) {
        const char *fwd = NULL;
        size_t flen = 0;
        peer_forwarded(c, &fwd, &flen, &https);
        if (https && (s = peer_pair(p, "HTTPS", "on", 2)) != PARAMS_OK)
            return s;
        if (fwd) {
            /* The client's address; its port is not known. Copied first: the
             * push may move the store it points into. */
            char buf[INET6_ADDRSTRLEN];
            memcpy(buf, fwd, flen);
            if ((s = peer_pair(p, "REMOTE_ADDR", buf, flen)) != PARAMS_OK)
                return s;
            goto server;
        }
    }
    if (peer_split(c->peer, &addr, &alen, &port)) {
        if ((s = peer_pair(p, "REMOTE_ADDR", addr, alen)) != PARAMS_OK ||
            (s = peer_pair(p, "REMOTE_PORT", port, strlen(port))) != PARAMS_OK)
            return s;
    } else if ((s = peer_pair(p, "REMOTE_ADDR", "", 0)) != PARAMS_OK) {
        return s;
    }
server:
    if (!params_getn(p, "SERVER_NAME", 11, NULL)) {
        bool tcp = la->family == LISTEN_TCP;
        const char *name = tcp ? la->host : "localhost";
        const char *lport = tcp ? la->port : https ? "443" : "80";
        if ((s = peer_pair(p, "SERVER_NAME", name, strlen(name))) != PARAMS_OK ||
            (s = peer_pair(p, "SERVER_PORT", lport, strlen(lport))) != PARAMS_OK)
            return s;
    } else if (!params_getn(p, "SERVER_PORT", 11, NULL)) {
        if ((s = peer_pair(p, "SERVER_PORT", https ? "443" : "80", https ? 3 : 2)) != PARAMS_OK)
            return s;
    }
    return PARAMS_OK;
}
