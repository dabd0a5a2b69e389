/*
 * control.h — the control socket, master side: a unix socket served inside
 * the master's event loop. One command per line, one JSON object per
 * command in reply, on one line: {"ok":true,...} or
 * {"ok":false,"error":"..."}.
 *
 * Commands are rows of a const table (struct control_command) that the
 * owner (the master) provides; this module only parses lines, calls the
 * row's run function and moves bytes. It never blocks: sockets are
 * non-blocking, each client has a line buffer of CONTROL_LINE_MAX bytes and
 * one pending reply of at most CONTROL_REPLY_MAX bytes (no further line is
 * read until it is sent), at most CONTROL_MAX_CLIENTS clients are served at
 * once, and a client that sends no complete line or reads no reply for the
 * timeout is disconnected.
 */
#ifndef CORRAL_CONTROL_H
#define CORRAL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"

#define CONTROL_LINE_MAX 512            /* bytes of one command line, newline included */
#define CONTROL_REPLY_MAX (4u << 20)    /* bytes of one reply */
#define CONTROL_MAX_CLIENTS 16

/* ---- commands and their parser (pure: no I/O) ---- */

enum control_arg {
    CONTROL_ARG_NONE,  /* the command takes no argument */
    CONTROL_ARG_SCALE, /* N, +N or -N */
};

enum control_scale_op { CONTROL_SCALE_SET, CONTROL_SCALE_ADD, CONTROL_SCALE_SUB };

struct control_request;

struct control_command {
    const char *name;
    enum control_arg arg;
    const char *usage; /* "scale N|+N|-N", for errors and help */
    /* Write the whole reply object into REPLY. OWNER is what was given to
     * control_open. */
    void (*run)(void *owner, const struct control_request *req, struct json *reply);
};

/* A parsed command line. */
struct control_request {
    const struct control_command *cmd;
    enum control_scale_op scale_op; /* CONTROL_ARG_SCALE */
    unsigned scale_n;
};

enum control_parse_result {
    CONTROL_PARSE_OK,
    CONTROL_PARSE_EMPTY, /* a blank line: no reply */
    CONTROL_PARSE_BAD,   /* err says why */
};

/*
 * Parse one command line of LEN bytes (without its newline; a trailing \r
 * is ignored) against TABLE: a command name, then its argument, separated
 * by blanks. Returns CONTROL_PARSE_OK with *out filled, CONTROL_PARSE_EMPTY,
 * or CONTROL_PARSE_BAD with a message for the client in err ("unknown
 * command 'x'", "scale: expected N, +N or -N ..."). Bytes outside printable
 * ASCII are refused. Arguments of scale: 0 to 65535.
 */
enum control_parse_result control_parse(const struct control_command *table, size_t count,
                                        const char *line, size_t len,
                                        struct control_request *out, char *err, size_t errlen);

/* {"ok":false,"error":MESSAGE} into REPLY (reset first). */
void control_reply_error(struct json *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the socket ---- */

struct control;

/*
 * Listen on the unix socket PATH with MODE (a stale socket file left by a
 * dead server is replaced; a live one is refused) and register it in EPFD
 * with epoll data TAG_BASE; client connections get TAG_BASE + 1 + slot.
 * TIMEOUT_MS bounds how long a client may stay without sending a complete
 * line or reading its reply. Returns the control socket, or NULL with the
 * failing call, the path and errno in err.
 */
struct control *control_open(const char *path, unsigned mode, unsigned timeout_ms, int epfd,
                             uint64_t tag_base, const struct control_command *table,
                             size_t count, void *owner, char *err, size_t errlen);

/*
 * After a re-exec of the master: serve the listening socket FD (bound at
 * PATH by the previous image) and its open client connections CLIENTS, as
 * control_open would. The descriptors become close-on-exec. Returns the
 * control socket, or NULL with the failing call in err.
 */
struct control *control_adopt(int fd, const char *path, const int *clients, size_t client_count,
                              unsigned timeout_ms, int epfd, uint64_t tag_base,
                              const struct control_command *table, size_t count, void *owner,
                              char *err, size_t errlen);

/*
 * Before the master re-executes itself: write the pending replies as far as
 * the sockets take them, disconnect the clients caught in the middle of a
 * command (logged), and return the listening socket in *listen_fd (-1
 * without CTL) and up to MAX idle clients in CLIENTS; their count.
 */
size_t control_exec_fds(struct control *ctl, int *listen_fd, int *clients, size_t max);

/* Whether the epoll data TAG is one of this control socket's. */
bool control_owns(const struct control *ctl, uint64_t tag);

/* Handle an epoll event whose data is TAG (control_owns said yes). */
void control_event(struct control *ctl, uint64_t tag, uint32_t events);

/* Disconnect the clients past their timeout; call about every 200 ms. */
void control_tick(struct control *ctl);

/* In a forked child: close the descriptors, leave the socket file. */
void control_close_in_child(struct control *ctl);

/* Close everything, remove the socket file, free. NULL is fine. */
void control_close(struct control *ctl);

#endif
