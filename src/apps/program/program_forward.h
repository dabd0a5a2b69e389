/*
 * program_forward.h — one request forwarded to one FastCGI program over a
 * connection of its own (protocols/fastcgi_client.h's records): the params
 * and the streamed body go out, the program's STDOUT comes back through the
 * request API (its CGI header block becomes the status and headers), its
 * STDERR goes to the error log, END_REQUEST ends it.
 */
#ifndef CORRAL_PROGRAM_FORWARD_H
#define CORRAL_PROGRAM_FORWARD_H

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
 */
enum program_outcome program_forward(const char *path, unsigned index, corral_request *req,
                                     uint64_t deadline_ms, unsigned io_ms);

#endif
