/*
 * corralctl.h — pieces of the control client shared by its commands
 * (corralctl.c) and its full-screen view (corralctl_top.c): the connection
 * to the control socket and the formatting of numbers for people.
 */
#ifndef CORRAL_CORRALCTL_H
#define CORRAL_CORRALCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json_read.h"

/* Exit statuses. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_REFUSED = 1, /* the server answered ok:false */
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_IO = 3,      /* cannot connect, timeout, connection lost, bad reply */
};

#define CTL_REPLY_MAX (8u << 20)

struct ctl_conn {
    int fd;
    const char *path;
    int timeout_ms;        /* per command: send and the whole reply */
    char *buf;             /* received bytes not yet returned */
    size_t len, cap;
    char *reply;           /* the text of the last reply (for --json) */
    size_t reply_len;
};

/* Connect to the control socket PATH. Returns 0, or -1 with a message that
 * names the path and the error in err. */
int ctl_connect(struct ctl_conn *c, const char *path, int timeout_ms, char *err,
                size_t errlen);
void ctl_close(struct ctl_conn *c);

/*
 * Send LINE (no newline) and wait for its one-line reply, parsed. Returns
 * the reply (json_value_free it), or NULL with a message in err: timeout,
 * connection closed, or a reply that is not JSON.
 */
struct json_value *ctl_call(struct ctl_conn *c, const char *line, char *err, size_t errlen);

/* IN made safe for a terminal into OUT (CAP bytes): control characters
 * (C0, DEL and the C1 range, which could move the cursor or change the
 * terminal's state: a URI is chosen by whoever sent the request) become
 * '?'. Cut at a character boundary when it does not fit. */
void ctl_sanitize(const char *in, char *out, size_t cap);

/* When TH (one entry of a worker's "threads") is serving a request:
 * "METHOD URI (N ms)", made safe for a terminal, into OUT; true. False, and
 * OUT untouched, for an idle thread. */
bool ctl_thread_current(const struct json_value *th, char *out, size_t cap);

/* "3d04h", "2h03m", "4m05s", "12s" for SECONDS. */
void ctl_fmt_duration(double seconds, char *out, size_t cap);

/* The full-screen view: `corralctl top`. Returns an exit status. */
int ctl_top(struct ctl_conn *c);

#endif
