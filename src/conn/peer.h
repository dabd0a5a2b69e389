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
 * Add to C's params REMOTE_ADDR and REMOTE_PORT (the peer's; "" and none
 * for a unix socket), and SERVER_NAME and SERVER_PORT when the request did
 * not give them (Host): the listener's address, or port 80 (443 with HTTPS)
 * when Host named no port. No allocation beyond the params table, no
 * system call. Returns PARAMS_OK or the params error (a limit).
 */
enum params_status peer_params(struct conn *c);

#endif
