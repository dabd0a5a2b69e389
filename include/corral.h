/*
 * corral.h — the native handler API of corral.
 *
 * A handler is a C function in a shared object that corral loads with
 *
 *     corral --handler /path/app.so[:SYMBOL] --listen fastcgi:unix:/run/app.sock
 *
 * SYMBOL defaults to "handler". The object must also contain
 * CORRAL_MODULE(), which records the ABI version it was built against; the
 * loader refuses an object without it or with another version, before it
 * calls anything.
 *
 *     #include <corral.h>
 *     CORRAL_MODULE();
 *
 *     int handler(corral_request *req)
 *     {
 *         corral_add_header(req, "Content-Type", "text/plain");
 *         return corral_write_final(req, "Hello, World!\n", 14);
 *     }
 *
 * Build it with: cc -shared -fPIC -o app.so app.c
 *
 * Optional per-worker hooks, looked up by name in the same object:
 *     int  corral_worker_init(void);  run once in each worker process after
 *                                     the fork, before any request; non-zero
 *                                     makes the worker exit (logged)
 *     void corral_worker_fini(void);  run when a worker stops gracefully
 *
 * Threads: a worker runs the handler from several threads at once (the
 * --threads option); each request is served by exactly one thread from
 * start to end, so a corral_request is never shared. Handlers must be
 * thread-safe with respect to their own global state.
 *
 * Return value of the handler: 0 when the response is complete. Non-zero
 * means failure: if nothing was sent yet, corral answers 500 Internal Server
 * Error; otherwise the connection to the front end is closed so that it sees
 * the response as broken (it is not passed off as complete).
 *
 * The types are opaque: only these functions reach them, so their layout can
 * change without breaking compiled handlers.
 */
#ifndef CORRAL_H
#define CORRAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CORRAL_ABI_VERSION 1u

#if defined(__GNUC__)
#define CORRAL_EXPORT __attribute__((visibility("default")))
#else
#define CORRAL_EXPORT
#endif

/* Put once in a handler object, at file scope. */
#define CORRAL_MODULE()                                                        \
    CORRAL_EXPORT const unsigned corral_module_abi = CORRAL_ABI_VERSION

typedef struct corral_request corral_request;

typedef int (*corral_handler_fn)(corral_request *req);

/* ---- request parameters (CGI variables from the front end) ---- */

/* The value of the parameter NAME (e.g. "REQUEST_METHOD", "QUERY_STRING",
 * "HTTP_COOKIE"), or NULL when the front end did not send it. The string is
 * NUL-terminated and owned by the request: valid until the handler returns. */
CORRAL_EXPORT const char *corral_param(corral_request *req, const char *name);

/* Number of parameters, and the INDEXth (0-based) name and value.
 * Returns 0, or -1 when index is out of range. */
CORRAL_EXPORT size_t corral_param_count(corral_request *req);
CORRAL_EXPORT int corral_param_at(corral_request *req, size_t index,
                                  const char **name, const char **value);

/* ---- request body ---- */

/* The body length the front end announced, or -1 when the body is streamed
 * without one (read until corral_read returns 0). */
CORRAL_EXPORT int64_t corral_content_length(corral_request *req);

/* Read up to CAP body bytes into BUF. Returns the number of bytes read (> 0),
 * 0 at the end of the body, or -1 on error (timeout, front end gone, abort,
 * malformed stream; the error is logged). Blocks the calling thread up to the
 * I/O timeout while the front end sends. */
CORRAL_EXPORT ssize_t corral_read(corral_request *req, void *buf, size_t cap);

/* ---- response ----
 * For a HEAD request the status and headers go out as the handler sets them
 * and body bytes are dropped, so a handler need not tell HEAD from GET. */

/* Set the status (100..999). REASON may be NULL for the standard phrase.
 * Only before the first byte of the body is written. Returns 0 or -1. */
CORRAL_EXPORT int corral_set_status(corral_request *req, int status,
                                    const char *reason);

/* Add a response header. A name that is not an RFC 9110 token, or a value
 * with a control byte other than HTAB (CR, LF, NUL, ESC, DEL...), is refused
 * (-1), as is anything after the head was sent. Returns 0 or -1.
 * A Content-Length header is passed on as given and bounds the body: bytes
 * past it are dropped (logged), and a body that ends short of it closes the
 * connection (logged) so the front end sees an incomplete response. Two
 * Content-Length headers with different values are an app error: a 500 goes
 * out in place of the head (logged) and the body written after is dropped. */
CORRAL_EXPORT int corral_add_header(corral_request *req, const char *name,
                                    const char *value);

/* Send LEN bytes of body now: the status and headers go with the first
 * write, and each call reaches the front end before it returns (nothing is
 * held back). Returns 0, or -1 when the front end is gone or timed out. */
CORRAL_EXPORT int corral_write(corral_request *req, const void *buf,
                               size_t len);

/* The last piece of the body, sent together with the end of the response
 * in a single system call where the protocol allows. No write may follow.
 * Returns 0 or -1. */
CORRAL_EXPORT int corral_write_final(corral_request *req, const void *buf,
                                     size_t len);

/* Send LEN bytes of the open file FD from OFFSET as body: sendfile(2) on
 * uwsgi and SCGI, read and framed on FastCGI. Returns 0 or -1. The caller
 * keeps ownership of FD. */
CORRAL_EXPORT int corral_sendfile(corral_request *req, int fd, off_t offset,
                                  size_t len);

/* ---- logging ---- */

enum corral_log_level { CORRAL_LOG_ERROR, CORRAL_LOG_WARN, CORRAL_LOG_INFO };

/* Write one line to corral's error log (time, level, pid are added). */
CORRAL_EXPORT void corral_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
