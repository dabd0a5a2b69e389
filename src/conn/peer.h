/*
 * peer.h — the params a codec cannot know (protocol.h: conn_params): the
 * peer's address and the listener's, added by the connection once a
 * request's params are complete.
 */
#ifndef CORRAL_PEER_H
#define CORRAL_PEER_H

#include <stdbool.h>

#include "protocols/params.h"

struct conn;

/*
 * Add to P (C's params: conn.c passes them) REMOTE_ADDR and REMOTE_PORT (the peer's; "" and none
 * for a unix socket), and SERVER_NAME and SERVER_PORT when the request did
 * not give them (Host): the listener's address, or port 80 (443 with HTTPS)
 * when Host named no port.
 *
 * From a peer in --trusted-proxies (c->trusted) the proxy's headers are
 * believed: Forwarded (RFC 7239) if present, else X-Forwarded-For and
 * X-Forwarded-Proto. REMOTE_ADDR is then the client they name (walking the
 * list from the right past trusted proxies; no REMOTE_PORT), and proto
 * https adds HTTPS=on (wsgi.url_scheme https). A list with an element that
 * is not an address is not used. From other peers the headers are only
 * HTTP_* params.
 *
 * No allocation beyond the params table, no system call. Returns PARAMS_OK
 * or the params error (a limit).
 */
enum params_status peer_params(const struct conn *c, struct params *p);

#endif
