/*
 * program_forward.h — one request forwarded to one FastCGI program over a
 * connection of its own (protocols/fastcgi_client.h's records): the params
 * and the streamed body go out, the program's STDOUT comes back through the
 * request API (its CGI header block becomes the status and headers), its
 * STDERR goes to the error log, END_REQUEST ends it.
 */
#ifndef CORRAL_PROGRAM_FORWARD_H
#define CORRAL_PROGRAM_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "corral.h"

enum program_outcome {
    PROGRAM_OK,        /* END_REQUEST read, the response is complete */
    PROGRAM_FAILED,    /* the program failed before any byte was sent: 502 */
    PROGRAM_TIMED_OUT, /* no answer by the deadline, nothing sent: 504 */
    PROGRAM_BROKEN,    /* the front end went away, or the answer broke mid-way */
};

/*
 * Forward REQ to the program listening on PATH (index INDEX, for the log).
 * Waits for the program's answer until DEADLINE_MS (clock.h; UINT64_MAX =
 * for ever), for it to take the request's bytes at most IO_MS each time.
 * Never sends a status of its own: the caller answers PROGRAM_FAILED and
 * PROGRAM_TIMED_OUT.
 *
 * *FD: a connection kept from an earlier request to this program, or -1
 * (a new one is made). Should the kept one turn out closed by the program
 * before it answered, the request goes once more over a new connection
 * when that cannot run it twice (program_forward.c: program_may_retry).
 * With KEEP the program is asked to keep the connection (FCGI_KEEP_CONN);
 * on return *FD is then still open when the exchange ended cleanly (the
 * caller keeps or closes it), and -1 otherwise.
 */
enum program_outcome program_forward(const char *path, unsigned index, corral_request *req,
                                     uint64_t deadline_ms, unsigned io_ms, int *fd, bool keep);

#endif
