/*
 * cgi_run.h — one run of a started CGI script (cgi_spawn.h), from the
 * serving thread: the request body goes to its stdin, its stdout comes back
 * through the request API (the header block through apps/cgi_head.h), its
 * stderr goes to the error log line by line with the request named
 * (log_msg escapes; at most CGI_RUN_ERR_LINES lines per run, the rest is
 * counted in one line).
 *
 * The thread waits in poll(2) on the script's pipes, its pidfd and the
 * front end's connection, every wait bounded by the run's deadline; the
 * pipes are non-blocking. A running script holds the thread (as fcgiwrap
 * holds a process). It ends when the script has closed its stdout and
 * exited; whatever it left running in its process group is then killed
 * (SIGKILL). Past the time limit, or when the front end goes away
 * (POLLRDHUP/POLLHUP on the connection once the body is read), the group
 * gets SIGTERM and, CGI_RUN_KILL_GRACE_MS later, SIGKILL. The script is
 * always reaped here (waitpid on its pid alone).
 *
 * A front end such as nginx reads no response before it has sent the
 * whole request: until the request body is read, the script's output is
 * held (up to CGI_RUN_HOLD_MAX; past it stdout is not read, and a script
 * that needs to write more before it reads its body runs into the time
 * limit), and when the script stops reading its stdin the rest of the body
 * is read and dropped before any byte goes out.
 */
#ifndef CORRAL_CGI_RUN_H
#define CORRAL_CGI_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "cgi_spawn.h"
#include "corral.h"

#define CGI_RUN_KILL_GRACE_MS 2000
#define CGI_RUN_ERR_LINES 100
/* Output held while the request body is still being read (see cgi_run.c):
 * past this much, stdout is no longer read until the body is in. */
#define CGI_RUN_HOLD_MAX (1024 * 1024)

enum cgi_run_outcome {
    CGI_RUN_OK,        /* the response is complete */
    CGI_RUN_FAILED,    /* no usable output, nothing sent: the caller answers 502 */
    CGI_RUN_TIMED_OUT, /* over the time limit, nothing sent: the caller answers 504 */
    CGI_RUN_REDIRECT,  /* a local redirect (RFC 3875 6.2.2): nothing sent */
    CGI_RUN_BROKEN,    /* the front end went away, or the response broke mid-way */
};

struct cgi_run {
    corral_request *req;
    const char *label;   /* "GET /cgi-bin/x.sh (/srv/cgi/x.sh)": names the run in the log */
    unsigned timeout_ms; /* the time limit, from the start */
    bool send_body;      /* the request body goes to stdin (not for a redirect's re-run) */
    char *location;      /* CGI_RUN_REDIRECT: the local Location: value ... */
    size_t location_len; /* ... in a buffer of this size */
};

/* Run CH (started) for R; CH's fds are closed and its pid reaped on return. */
enum cgi_run_outcome cgi_run(struct cgi_run *r, struct cgi_child *ch);

#endif
