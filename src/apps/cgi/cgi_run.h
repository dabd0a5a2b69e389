/*
 * cgi_run.h — one run of a started CGI script (cgi_spawn.h), driven by the
 * worker's CGI loop (cgi_loop.h) and never waiting: the request body goes
 * to its stdin as it arrives, its stdout comes back through the request API
 * (the header block through apps/cgi_head.h) with the connection in no-wait
 * mode (conn/conn.h's conn_set_nowait), its stderr goes to the error log
 * line by line with the request named (log_msg escapes; at most
 * CGI_RUN_ERR_LINES lines per run, the rest is counted in one line).
 *
 * The run keeps its descriptors' interests in the loop's epoll
 * (cgi_watch.h): the pipes, the pidfd and the front end's connection. The
 * loop calls cgi_run_event when one is ready and cgi_run_tick at the run's
 * next deadline (cgi_run_next); a run is over when cgi_run_over says so,
 * and cgi_run_end then gives its outcome.
 *
 * Back-pressure: stdout is read only while the connection's queue is empty
 * and nothing is pending (at most one read of CGI_RUN_OUT bytes is held
 * per run once the body is in), so a front end that reads slowly leaves
 * the script blocked on its pipe, and memory stays bounded.
 *
 * It ends when the script has closed its stdout and exited; whatever it
 * left running in its process group is then killed (SIGKILL). Past the
 * time limit, when the worker stops (cgi_run_cut), or when the front end
 * goes away (EPOLLRDHUP/EPOLLHUP on the connection once the body is read),
 * the group gets SIGTERM and, CGI_RUN_KILL_GRACE_MS later, SIGKILL. The
 * script is always reaped here (waitpid on its pid alone, once its pidfd
 * said it ended, or right after a SIGKILL).
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
#include <stdint.h>

#include "cgi_spawn.h"
#include "cgi_watch.h"
#include "corral.h"

#define CGI_RUN_KILL_GRACE_MS 2000
#define CGI_RUN_ERR_LINES 100
/* Output held while the request body is still being read (see cgi_run.c):
 * past this much, stdout is no longer read until the body is in. */
#define CGI_RUN_HOLD_MAX (1024 * 1024)

enum cgi_run_outcome {
    CGI_RUN_OK,        /* the response is complete (its end written) */
    CGI_RUN_FAILED,    /* no usable output, nothing sent: the caller answers 502 */
    CGI_RUN_TIMED_OUT, /* over the time limit, nothing sent: the caller answers 504 */
    CGI_RUN_REDIRECT,  /* a local redirect (RFC 3875 6.2.2): nothing sent */
    CGI_RUN_BROKEN,    /* the front end went away, or the response broke mid-way */
};

struct cgi_run {
    corral_request *req;
    const char *label;      /* "GET /cgi-bin/x.sh (/srv/cgi/x.sh)": names the run in the log */
    unsigned timeout_ms;    /* the time limit, from the start */
    bool send_body;         /* the request body goes to stdin (not for a redirect's re-run) */
    char *location;         /* CGI_RUN_REDIRECT: the local Location: value ... */
    size_t location_len;    /* ... in a buffer of this size */
    int epfd;               /* the loop's epoll */
    struct cgi_job *job;    /* the watches' owner (cgi_watch.h) */
    struct cgi_watch *conn; /* the connection's watch: the run's until cgi_run_end */
};

struct cgi_run_state;

/* Start driving CH (started) for R, whose fields must outlive the run.
 * Returns the run, or NULL (out of memory: CH killed, reaped, closed). */
struct cgi_run_state *cgi_run_start(struct cgi_run *r, struct cgi_child *ch);

/* The descriptor of KIND is ready with EVENTS (epoll's). */
void cgi_run_event(struct cgi_run_state *s, enum cgi_watch_kind kind, uint32_t events);

/* The run's next deadline (clock_now_ms), and what is due at NOW. */
uint64_t cgi_run_next(const struct cgi_run_state *s);
void cgi_run_tick(struct cgi_run_state *s, uint64_t now);

/* End the run now as over its time limit, WHY in the log (the worker is
 * stopping): SIGTERM, then SIGKILL after the grace. */
void cgi_run_cut(struct cgi_run_state *s, const char *why);

/* Whether the run is over: cgi_run_end may be called. */
bool cgi_run_over(const struct cgi_run_state *s);

/* The outcome of a run that is over, or of any run with KILL (the loop
 * ends: the group gets SIGKILL, the outcome is CGI_RUN_BROKEN). Every
 * descriptor of the run is out of the epoll set and closed (the connection
 * stays open, its watch out of the set), the script reaped, S freed. */
enum cgi_run_outcome cgi_run_end(struct cgi_run_state *s, bool kill);

#endif
