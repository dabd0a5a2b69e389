/*
 * reexec_state.h — what the master hands to its own next image when a
 * --preload reload re-executes it (master_reexec.c), as one environment
 * variable, $CORRAL_REEXEC:
 *
 *   v1 sb=5 target=2 threads=2 maxproc=4 pool=static chain=0 hup=0
 *      listen=6,1024,1,uwsgi:unix:/run/a.sock ctl=7,/run/c.sock client=8
 *      elog=9,/var/log/e.log alog=-1,- pidfile=/run/p pidlock=10 why=corralctl%20reload
 *
 * (pidlock, the locked pidfile's descriptor, is the one optional key besides
 * ctl and client: it is absent when no pidfile lock is held.)
 * Tokens are separated by one space; the first is the version. Numbers are
 * decimal without sign or leading zeros; strings are percent-encoded (every
 * byte outside [A-Za-z0-9._~/:@+-] as %XX, upper case), "-" meaning none
 * (and "%2D" a string that is just "-"). The
 * descriptors are open, without FD_CLOEXEC, in the new image. What the
 * scoreboard already holds (generation, reload counters, the last outcome,
 * the bank in use, the workers' pids) is read from it, not from here.
 *
 * The parser is pure (no I/O, no logging) and strict: an unknown or
 * repeated key, a missing one, a malformed number, a bad escape, a
 * descriptor given twice: all are refused with a reason.
 */
#ifndef CORRAL_REEXEC_STATE_H
#define CORRAL_REEXEC_STATE_H

#include <stdbool.h>
#include <stddef.h>

#define REEXEC_ENV "CORRAL_REEXEC"
/* Set for the child that checks the import before a --preload reload. */
#define REEXEC_CHECK_ENV "CORRAL_CHECK_APP"

#define REEXEC_MAX_LISTENERS 64
#define REEXEC_MAX_CLIENTS 16
#define REEXEC_PATH_MAX 4096

struct reexec_listener {
    int fd;
    unsigned backlog;
    bool owns_path; /* the socket file is ours to remove at the stop */
    char spec[320]; /* "uwsgi:unix:/run/app.sock", as configured */
};

struct reexec_state {
    int sb_fd;        /* the scoreboard (memfd) */
    unsigned target;  /* the pool's target size */
    unsigned threads; /* restart-only settings, kept from the first start */
    unsigned max_processes;
    char pool[16];    /* "static", "dynamic", "ondemand" */
    bool chain;       /* the reload is a chain-reload */
    bool pending_hup; /* a SIGHUP came during it: reload again after */
    struct reexec_listener listeners[REEXEC_MAX_LISTENERS];
    size_t listener_count;
    int control_fd; /* -1: no control socket */
    char control_path[108];
    int clients[REEXEC_MAX_CLIENTS]; /* control connections to keep serving */
    size_t client_count;
    int error_log_fd; /* -1: stderr */
    char error_log[REEXEC_PATH_MAX];
    int access_log_fd; /* -1: off */
    char access_log[REEXEC_PATH_MAX];
    char pidfile[REEXEC_PATH_MAX]; /* "" = none */
    int pidfile_fd;                /* its locked descriptor (os/pidfile.h); -1: none */
    char why[64];                  /* what asked for the reload, for the log */
};

/* Write S as the text above into OUT (LEN bytes). Returns 0, or -1 when it
 * does not fit. */
int reexec_format(const struct reexec_state *s, char *out, size_t len);

enum reexec_parse_result { REEXEC_PARSE_OK, REEXEC_PARSE_BAD };

/* Parse TEXT into *OUT. REEXEC_PARSE_BAD comes with the reason in err. */
enum reexec_parse_result reexec_parse(const char *text, struct reexec_state *out, char *err,
                                      size_t errlen);

struct config;

/*
 * A re-executed master keeps what only changes on a restart (the previous
 * image logged which of them the new config wanted to change): C's
 * listeners become RX's (by their specs), and threads, max_processes (with
 * processes capped to it), the pool mode, control, error_log, access_log
 * and pidfile RX's values; preload stays on. The options RX does not carry
 * (chmod, backlog, control_chmod) keep C's values. Goes through
 * config_keep_fixed (config/config.h). Returns 0, or -1 when out of memory
 * (C is then still safe to config_free).
 */
int reexec_keep_fixed(struct config *c, const struct reexec_state *rx);

#endif
