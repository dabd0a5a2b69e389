/*
 * peer.c — the connection's own params for codecs that cannot know them
 * (see peer.h).
 */
#include "peer.h"

#include <string.h>

#include "conn.h"

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

enum params_status peer_params(struct conn *c)
{
    struct params *p = &c->params;
    const struct listen_addr *la = &c->listener->addr;
    const char *addr, *port;
    size_t alen;
    enum params_status s;
    if (peer_split(c->peer, &addr, &alen, &port)) {
        if ((s = peer_pair(p, "REMOTE_ADDR", addr, alen)) != PARAMS_OK ||
            (s = peer_pair(p, "REMOTE_PORT", port, strlen(port))) != PARAMS_OK)
            return s;
    } else if ((s = peer_pair(p, "REMOTE_ADDR", "", 0)) != PARAMS_OK) {
        return s;
    }
    bool https = false;
    const char *v = params_getn(p, "HTTPS", 5, NULL);
    if (v && strcmp(v, "on") == 0)
        https = true;
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
