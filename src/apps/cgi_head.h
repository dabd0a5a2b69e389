/*
 * cgi_head.h — the header block of a CGI response (RFC 3875 6.2, 6.3): the
 * lines a CGI script (src/apps/cgi/) or a FastCGI program
 * (src/apps/program/program_forward.c) writes before a blank line, with the
 * CGI fields Status: and Location: among the HTTP headers.
 *
 * Two steps: cgi_head_feed gathers the output until the blank line (pure:
 * no I/O, no logging; resumable at any byte) and cgi_head_parse splits the
 * block into fields; cgi_head_apply then stages them on the request (the
 * status, the headers, 302 for a Location: without a Status:). A caller
 * that handles local redirects looks at the parsed fields before it
 * applies them.
 */
#ifndef CORRAL_CGI_HEAD_H
#define CORRAL_CGI_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corral.h"

#define CGI_HEAD_MAX 8192   /* bytes of the header block; more is malformed */
#define CGI_HEAD_FIELDS 128 /* header lines kept; more are dropped (logged) */

struct cgi_head_field {
    const char *name, *value; /* NUL-terminated, in the block's buffer */
};

struct cgi_head {
    char buf[CGI_HEAD_MAX + 1];
    size_t len;
    bool done; /* the blank line was seen (or cgi_head_end) */
    /* Filled by cgi_head_parse: */
    struct cgi_head_field fields[CGI_HEAD_FIELDS]; /* HTTP headers, Location: included */
    size_t nfields;
    unsigned dropped;     /* lines without ':' or past CGI_HEAD_FIELDS */
    int status;           /* Status: 100..999, or 0 when none (or unreadable) */
    const char *reason;   /* its reason phrase, or NULL */
    const char *location; /* the Location: value, or NULL */
};

enum cgi_head_state {
    CGI_HEAD_MORE,    /* no blank line yet: feed more */
    CGI_HEAD_DONE,    /* the block is complete: the body starts (see rest) */
    CGI_HEAD_TOO_BIG, /* CGI_HEAD_MAX bytes without a blank line: malformed */
};

/* Body bytes that came with the end of the head: up to two pieces, in order. */
struct cgi_head_rest {
    const uint8_t *p[2];
    size_t len[2];
};

void cgi_head_init(struct cgi_head *h);

/*
 * Take LEN bytes of output (before the head is done). On CGI_HEAD_DONE the
 * block is in h->buf, NUL-terminated at the blank line, and REST names the
 * body bytes that came with it (pointing into h->buf and into P).
 */
enum cgi_head_state cgi_head_feed(struct cgi_head *h, const uint8_t *p, size_t len,
                                  struct cgi_head_rest *rest);

/* The output ended without a blank line: what came is the head alone. */
void cgi_head_end(struct cgi_head *h);

/* Split the completed block into its fields (in place; once). */
void cgi_head_parse(struct cgi_head *h);

/*
 * Stage the parsed fields on REQ: Status: sets the status, the other fields
 * become headers (a refused one is logged), a Location: without a Status:
 * gives 302. WHO names the output's source in log lines ("FastCGI program
 * 2", "cgi script /srv/cgi/x.sh").
 */
void cgi_head_apply(corral_request *req, const struct cgi_head *h, const char *who);

#endif
