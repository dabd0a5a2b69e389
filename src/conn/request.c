/*
 * request.c — the request model behind corral.h: params, body reading and the
 * streamed response, the same for every protocol (the codec frames bytes).
 * It sits above conn.c: the body stream and every write go through conn.h.
 */
#include "request.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/sendfile.h>

#include "conn.h"
#include "core/log.h"
#include "core/clock.h"

/* RFC 3875 4.1.18: a server drops the HTTP_CONTENT_TYPE and
 * HTTP_CONTENT_LENGTH a front end may send (nginx, lighttpd and Caddy pass
 * Content-Type/Length twice); CONTENT_TYPE and CONTENT_LENGTH hold them.
 * Removed from the table in place, so corral_param, corral_param_count/at
 * and the WSGI environ agree. */
static void request_drop_http_content(struct params *p)
{
    size_t out = 0;
    for (size_t i = 0; i < p->count; i++) {
        const struct params_entry *e = &p->entries[i];
        if ((e->name_len == 17 && params_is(p, e, "HTTP_CONTENT_TYPE")) ||
            (e->name_len == 19 && params_is(p, e, "HTTP_CONTENT_LENGTH")))
            continue;
        if (out != i)
            p->entries[out] = *e;
        out++;
    }
    p->count = out;
}

void request_begin(struct corral_request *r, struct conn *c)
{
    r->conn = c;
    request_drop_http_content(&c->params);
    request_reset_head(r);
    r->head_sent = r->finished = r->failed = r->clipped = r->complete_early = false;
    r->framed = c->codec->max_frame != SIZE_MAX;
    r->app_close = false;
    r->method = params_get(&c->params, "REQUEST_METHOD");
    r->uri = params_get(&c->params, "REQUEST_URI");
    r->head_only = r->method && strcmp(r->method, "HEAD") == 0;
    r->bytes_out = 0;
    r->start_us = clock_now_us();
}

void request_free(struct corral_request *r)
{
    free(r->headers);
    r->headers = NULL;
    r->headers_cap = r->headers_len = 0;
}

const char *request_reason_phrase(int status)
{
    static const struct {
        int code;
        const char *text;
    } phrases[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {418, "I'm a teapot"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (phrases[i].code == status)
            return phrases[i].text;
    return "Unknown";
}

/* ---- params ---- */

CORRAL_EXPORT const char *corral_param(corral_request *r, const char *name)
{
    return params_get(&r->conn->params, name);
}

CORRAL_EXPORT size_t corral_param_count(corral_request *r)
{
    return r->conn->params.count;
}

CORRAL_EXPORT int corral_param_at(corral_request *r, size_t index, const char **name,
                                  const char **value)
{
    const struct params *p = &r->conn->params;
    if (index >= p->count)
        return -1;
    *name = params_name(p, &p->entries[index]);
    *value = params_value(p, &p->entries[index]);
    return 0;
}

void request_param_at(corral_request *r, size_t index, const char **name, size_t *name_len,
                      const char **value, size_t *value_len)
{
    const struct params *p = &r->conn->params;
    const struct params_entry *e = &p->entries[index];
    *name = params_name(p, e);
    *name_len = e->name_len;
    *value = params_value(p, e);
    *value_len = e->value_len;
}

/* ---- body ---- */

CORRAL_EXPORT int64_t corral_content_length(corral_request *r)
{
    struct conn *c = r->conn;
    return c->codec->content_length(c->codec_state);
}

CORRAL_EXPORT ssize_t corral_read(corral_request *r, void *buf, size_t cap)
{
    struct conn *c = r->conn;
    if (cap == 0)
        return 0;
    const uint8_t *data;
    size_t len;
    int rc = conn_body_next(c, &data, &len);
    if (rc <= 0)
        return rc;
    size_t n = len < cap ? len : cap;
    memcpy(buf, data, n);
    conn_body_consume(c, n);
    return (ssize_t)n;
}

/* ---- response ---- */

void request_reset_head(corral_request *r)
{
    r->status = 200;
    r->reason[0] = '\0';
    r->headers_len = 0;
    r->body_limit = -1;
    r->length_seen = r->length_conflict = false;
}

CORRAL_EXPORT int corral_set_status(corral_request *r, int status, const char *reason)
{
    if (r->head_sent || status < 100 || status > 999)
        return -1;
    if (reason && (strpbrk(reason, "\r\n") || strlen(reason) >= sizeof(r->reason)))
        return -1;
    r->status = status;
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
    return 0;
}

static bool request_token_char(unsigned char ch)
{
    /* RFC 9110 tchar */
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The value of a Content-Length header: decimal digits between optional
 * blanks, or -1 when it is not such a number (it is then passed on as it is
 * and bounds nothing). */
static int64_t request_parse_length(const char *value)
{
    int64_t n = 0;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' ? n : -1;
}

/* A Content-Length header bounds the body: bytes past it are dropped, and a
 * body that ends short of it closes the connection (the front end must not
 * take a truncated response for a whole one). A second one with another
 * value makes the head an app error: request_write answers 500 instead. */
static void request_note_length(struct corral_request *r, const char *value)
{
    int64_t n = request_parse_length(value);
    if (r->length_seen) {
        if (n != r->length_first)
            r->length_conflict = true;
        return;
    }
    r->length_seen = true;
    r->length_first = n;
    r->body_limit = n;
}

bool request_header_value_ok(const char *value, size_t len)
{
    /* RFC 9110 5.5: field-vchar (VCHAR, obs-text), SP and HTAB. */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* HTTP (the codec has a head hook): the framing is the codec's. An app's
 * Transfer-Encoding is dropped (the codec chunks the body itself when it
 * has no Content-Length), and so is its Connection, whose "close" makes the
 * codec close the connection after the response (and say so). Returns
 * whether NAME was such a header. */
static bool request_hop_by_hop(corral_request *r, const char *name, const char *value)
{
    if (strcasecmp(name, "Transfer-Encoding") == 0)
        return true;
    if (strcasecmp(name, "Connection") != 0)
        return false;
    for (const char *p = value; (p = strcasestr(p, "close")) != NULL; p += 5) {
        bool start = p == value || p[-1] == ',' || p[-1] == ' ' || p[-1] == '\t';
        char end = p[5];
        if (start && (end == '\0' || end == ',' || end == ' ' || end == '\t'))
            r->app_close = true;
    }
    return true;
}

CORRAL_EXPORT int corral_add_header(corral_request *r, const char *name, const char *value)
{
    if (r->head_sent || !name || !value || !*name)
        return -1;
    for (const char *p = name; *p; p++)
        if (!request_token_char((unsigned char)*p))
            return -1;
    size_t nl = strlen(name), vl = strlen(value), need = nl + vl + 4;
    if (!request_header_value_ok(value, vl))
        return -1;
    if ((nl == 17 || nl == 10) && r->conn->codec->head && request_hop_by_hop(r, name, value))
        return 0;
    if (r->headers_len + need > r->headers_cap) {
        size_t cap = r->headers_cap ? r->headers_cap : 512;
        while (cap < r->headers_len + need)
            cap *= 2;
        char *h = realloc(r->headers, cap);
        if (!h)
            return -1;
        r->headers = h;
        r->headers_cap = cap;
    }
    char *o = r->headers + r->headers_len;
    memcpy(o, name, nl);
    o[nl] = ':';
    o[nl + 1] = ' ';
    memcpy(o + nl + 2, value, vl);
    o[nl + 2 + vl] = '\r';
    o[nl + 3 + vl] = '\n';
    r->headers_len += need;
    if (nl == 14 && strcasecmp(name, "Content-Length") == 0)
        request_note_length(r, value);
    return 0;
}

/* Status line (or Status: header) into out; returns its length. */
static size_t request_status_line(struct corral_request *r, char *out, size_t cap)
{
    /* Built by hand: this runs for every response. cap >= 128 holds the
     * longest prefix, three digits and a 63-byte reason. */
    const char *prefix = r->conn->codec->status_prefix;
    const char *reason = r->reason[0] ? r->reason : request_reason_phrase(r->status);
    size_t pl = strlen(prefix), rl = strlen(reason);
    if (pl + rl + 6 > cap)
        return 0;
    memcpy(out, prefix, pl);
    out[pl] = (char)('0' + r->status / 100);
    out[pl + 1] = (char)('0' + r->status / 10 % 10);
    out[pl + 2] = (char)('0' + r->status % 10);
    out[pl + 3] = ' ';
    memcpy(out + pl + 4, reason, rl);
    out[pl + 4 + rl] = '\r';
    out[pl + 5 + rl] = '\n';
    return pl + rl + 6;
}

#define REQUEST_BATCH 64
#define REQUEST_COALESCE 4096

/* Write IOV; a small response made of many small pieces (status line,
 * headers, frame header, body, end record) is copied into one buffer first:
 * one contiguous write costs the kernel less than gathering the pieces. */
static int request_writev(struct conn *c, struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n && total <= REQUEST_COALESCE; i++)
        total += iov[i].iov_len;
    if (n < 2 || total > REQUEST_COALESCE)
        return conn_writev(c, iov, n);
    char buf[REQUEST_COALESCE];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len) /* an empty piece may have a NULL base */
            memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    struct iovec one = {.iov_base = buf, .iov_len = off};
    return conn_writev(c, &one, 1);
}

/* A write to the front end failed with ERR: the connection is done for.
 * One line says so, with the request: a front end that hung up (its client
 * left: an abandoned download, a closed event stream) is a warning, anything
 * else (a timeout) an error. request_finish adds nothing after it. */
static void request_send_failed(struct corral_request *r, int err)
{
    struct conn *c = r->conn;
    const char *m = r->method;
    const char *u = r->uri;
    bool hung_up = err == EPIPE || err == ECONNRESET;
    if (err == ETIME) /* conn.h: the send deadline */
        log_msg(LOG_ERROR,
                "%s: peer %s: %s %s: the front end was too slow to take the "
                "response: %llu bytes went out in %.1f s of waiting, past the send deadline "
                "(send-timeout %.1f s + 1 s per min-rate %u bytes) after %llu body bytes: "
                "connection closed",
                c->listener->name, c->peer, m ? m : "-", u ? u : "-", (unsigned long long)c->sent,
                (double)c->send_waited_us / 1e6, (double)c->send_timeout_ms / 1000.0, c->min_rate,
                (unsigned long long)r->bytes_out);
    else
        log_msg(hung_up ? LOG_WARN : LOG_ERROR,
                "%s: peer %s: %s %s: %s (%s) after %llu body bytes: connection closed",
                c->listener->name, c->peer, m ? m : "-", u ? u : "-",
                hung_up ? "the front end closed the connection before the response was complete"
                        : "sending the response failed",
                strerror(err), (unsigned long long)r->bytes_out);
    r->failed = true;
    conn_mark_broken(c);
}

/*
 * Send the logical byte stream PARTS (head and/or body) to the front end,
 * cut into frames the codec accepts, then the end of the response if FINAL.
 * The first RAW parts (at most 4: an HTTP head, which is not framed) go
 * out as they are, ahead of the first frame. Batches of at most
 * REQUEST_BATCH iovecs go out per writev.
 */
static int request_send(struct corral_request *r, const struct iovec *parts, int nparts, int raw,
                        bool final)
{
    struct conn *c = r->conn;
    const struct proto_codec *codec = c->codec;
    struct iovec iov[REQUEST_BATCH + 2];
    uint8_t frames[REQUEST_BATCH / 2][PROTO_FRAME_MAX];
    uint8_t end[PROTO_END_MAX];
    int part = 0;
    size_t part_off = 0;

    if (r->failed || c->replied)
        return -1;
    int n0 = 0;
    for (; part < raw; part++)
        iov[n0++] = parts[part];
    for (;;) {
        int n = n0, nframes = 0;
        n0 = 0;
        /* Fill one batch: a frame header, then the slices of parts it covers. */
        while (part < nparts && n < REQUEST_BATCH - 2 && nframes < REQUEST_BATCH / 2) {
            size_t frame_len = 0, room = codec->max_frame;
            int hdr_at = n++;
            while (part < nparts && frame_len < room && n < REQUEST_BATCH) {
                size_t avail = parts[part].iov_len - part_off;
                size_t take = avail < room - frame_len ? avail : room - frame_len;
                if (take) {
                    iov[n].iov_base = (char *)parts[part].iov_base + part_off;
                    iov[n].iov_len = take;
                    n++;
                    frame_len += take;
                }
                part_off += take;
                if (part_off == parts[part].iov_len) {
                    part++;
                    part_off = 0;
                }
            }
            size_t hl = frame_len ? codec->frame(c->codec_state, frames[nframes], frame_len) : 0;
            iov[hdr_at].iov_base = frames[nframes++];
            iov[hdr_at].iov_len = hl;
        }
        bool last_batch = part >= nparts;
        if (last_batch && final) {
            /* With a stopping worker's goodbye (conn_response_end). */
            size_t el = conn_response_end(c, end);
            iov[n].iov_base = end;
            iov[n].iov_len = el;
            n++;
        }
        int rc = n > 0 ? request_writev(c, iov, n) : 0;
        if (rc < 0) {
            request_send_failed(r, -rc);
            return -1;
        }
        if (last_batch)
            break;
    }
    if (final)
        r->finished = true;
    return 0;
}

/* How many of LEN body bytes may go out: none for HEAD, none past the
 * handler's Content-Length (the excess is logged once). */
static size_t request_body_room(struct corral_request *r, size_t len)
{
    if (r->head_only)
        return 0;
    uint64_t left = request_body_left(r);
    if (len <= left)
        return len;
    size_t room = (size_t)left;
    if (!r->clipped) {
        struct conn *c = r->conn;
        const char *m = r->method;
        const char *u = r->uri;
        log_msg(LOG_WARN,
                "%s: peer %s: %s %s: the handler sent more than its Content-Length "
                "(%lld): the excess is dropped",
                c->listener->name, c->peer, m ? m : "-", u ? u : "-", (long long)r->body_limit);
        r->clipped = true;
    }
    return room;
}

/* The response ends short of its Content-Length: say so and close the
 * connection instead of ending the response. Returns -1. */
static int request_short_body(struct corral_request *r)
{
    struct conn *c = r->conn;
    const char *m = r->method;
    const char *u = r->uri;
    log_msg(LOG_ERROR,
            "%s: peer %s: %s %s: the response ended after %llu of the %lld bytes "
            "its Content-Length announced: connection closed",
            c->listener->name, c->peer, m ? m : "-", u ? u : "-", (unsigned long long)r->bytes_out,
            (long long)r->body_limit);
    r->failed = true;
    conn_mark_broken(c);
    return -1;
}

/* The handler staged a head that must not go out (two Content-Length
 * headers with different values): one line names the request, and a 500
 * takes its place. Stages that 500 and returns its body. */
static const char *request_refuse_head(struct corral_request *r, size_t *len)
{
    struct conn *c = r->conn;
    const char *m = r->method;
    const char *u = r->uri;
    log_msg(LOG_ERROR,
            "%s: peer %s: %s %s: the handler sent Content-Length headers with "
            "different values: answered 500",
            c->listener->name, c->peer, m ? m : "-", u ? u : "-");
    request_reset_head(r);
    r->status = 500;
    corral_add_header(r, "Content-Type", "text/plain");
    static const char body[] = "Internal Server Error\n";
    *len = sizeof(body) - 1;
    return body;
}

/* Send LEN body bytes (and the head first if not sent yet). */
static int request_write(struct corral_request *r, const void *buf, size_t len, bool final)
{
    if (r->finished) {
        /* Ended early because the body is complete: what follows is
         * nothing (fine) or excess (dropped and logged). */
        if (!r->complete_early)
            return -1;
        request_body_room(r, len);
        return 0;
    }
    bool refused = !r->head_sent && r->length_conflict;
    if (refused) {
        /* The 500 ends the response; the handler's bytes, these and any
         * that follow, are dropped as after a complete body. */
        buf = request_refuse_head(r, &len);
        final = true;
    }
    len = request_body_room(r, len);
    /* A body that reaches its Content-Length (or any HEAD response) is
     * complete: its end goes out with it. A front end that has all the
     * bytes may hang up at once; a separate end-of-response write would
     * then fail, and the request look broken when it was not. */
    if (!final &&
        (r->head_only || (r->body_limit >= 0 && r->bytes_out + len == (uint64_t)r->body_limit))) {
        final = true;
        r->complete_early = true;
    }
    char status[128], framing[PROTO_HEAD_MAX];
    struct iovec parts[5];
    int n = 0, raw = 0;
    if (!r->head_sent) {
        struct conn *c = r->conn;
        parts[n].iov_base = status;
        parts[n++].iov_len = request_status_line(r, status, sizeof(status));
        parts[n].iov_base = r->headers;
        parts[n++].iov_len = r->headers_len;
        if (c->codec->head) {
            /* HTTP: the framing headers the codec adds (protocol.h). */
            bool closing = r->app_close || (c->bye_on_end && atomic_load(c->bye_on_end));
            int64_t length = !r->length_seen ? -1 : r->body_limit >= 0 ? r->body_limit : -2;
            parts[n].iov_base = framing;
            parts[n++].iov_len =
                c->codec->head(c->codec_state, r->status, length, closing, framing, &r->framed);
        }
        parts[n].iov_base = "\r\n";
        parts[n++].iov_len = 2;
        r->head_sent = true;
        if (r->conn->codec->head)
            raw = n; /* HTTP: the body alone is framed */
    }
    parts[n].iov_base = (void *)buf;
    parts[n++].iov_len = len;
    bool short_body = final && !r->head_only && r->body_limit >= 0 &&
                      r->bytes_out + len < (uint64_t)r->body_limit;
    int rc = request_send(r, parts, n, raw, final && !short_body);
    if (rc == 0)
        r->bytes_out += len;
    if (refused)
        r->complete_early = true;
    if (rc == 0 && short_body)
        return request_short_body(r);
    return rc;
}

CORRAL_EXPORT int corral_write(corral_request *r, const void *buf, size_t len)
{
    if (len == 0 && r->head_sent)
        return r->failed || (r->finished && !r->complete_early) ? -1 : 0;
    return request_write(r, buf, len, false);
}

CORRAL_EXPORT int corral_write_final(corral_request *r, const void *buf, size_t len)
{
    return request_write(r, buf, len, true);
}

CORRAL_EXPORT int corral_sendfile(corral_request *r, int fd, off_t offset, size_t len)
{
    struct conn *c = r->conn;
    if (r->failed || (r->finished && !r->complete_early))
        return -1;
    len = request_body_room(r, len);
    if (r->finished)
        return 0;
    /* HTTP decides the framing with the head: send the head first. */
    if (c->codec->head && !r->head_sent && request_write(r, "", 0, false) < 0)
        return -1;
    if (r->finished)
        return 0;
    if (r->framed) {
        /* Framed protocol: read and frame. */
        char buf[65536];
        while (len > 0) {
            ssize_t n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf), offset);
            if (n <= 0) {
                log_msg(LOG_ERROR, "corral_sendfile: pread(fd %d) failed: %s", fd,
                        n == 0 ? "unexpected end of file" : strerror(errno));
                return -1;
            }
            if (request_write(r, buf, (size_t)n, false) < 0)
                return -1;
            offset += n;
            len -= (size_t)n;
        }
        return 0;
    }
    if (!r->head_sent && request_write(r, "", 0, false) < 0)
        return -1;
    if (r->finished) /* the head was refused: a 500 went out instead */
        return 0;
    while (len > 0) {
        ssize_t n = sendfile(c->fd, fd, &offset, len);
        if (n > 0) {
            len -= (size_t)n;
            r->bytes_out += (uint64_t)n;
            conn_count_sent(c, (size_t)n);
            continue;
        }
        if (n == 0) {
            log_msg(LOG_ERROR, "corral_sendfile: fd %d ended before the given length", fd);
            conn_mark_broken(c);
            r->failed = true;
            return -1;
        }
        if (errno == EINTR)
            continue;
        int err = errno;
        if (err == EAGAIN) {
            int rc = conn_wait_writable(c);
            if (rc == 0)
                continue;
            err = -rc;
        }
        request_send_failed(r, err);
        return -1;
    }
    return 0;
}

/* End the response after the app returned APP_RC: the head if nothing
 * went out (500 when it failed, logged), and the end of the response. */
static void request_end_response(struct corral_request *r, int app_rc)
{
    struct conn *c = r->conn;
    /* A failed write was logged when it failed, and so was a body that
     * could not be read (conn.c marks the connection broken): the app's
     * failure that follows adds nothing. */
    if (app_rc != 0 && !r->failed && !c->broken) {
        const char *m = r->method;
        const char *u = r->uri;
        log_msg(LOG_ERROR, "%s: peer %s: the handler failed (returned %d) on %s %s; %s",
                c->listener->name, c->peer, app_rc, m ? m : "-", u ? u : "-",
                r->head_sent ? "part of the response was sent: connection closed" : "answered 500");
    }
    if (app_rc != 0 && !r->head_sent && !r->failed) {
        request_reset_head(r);
        r->status = 500;
        corral_add_header(r, "Content-Type", "text/plain");
        static const char body[] = "Internal Server Error\n";
        request_write(r, body, sizeof(body) - 1, true);
        r->status = 500;
    } else if (app_rc != 0) {
        /* Part of the response is out: do not pass it off as complete. */
        conn_mark_broken(c);
    } else if (!r->finished && !r->failed) {
        request_write(r, "", 0, true);
    }
}

int request_finish(struct corral_request *r, int app_rc)
{
    struct conn *c = r->conn;
    if (c->replied)
        r->status = 400; /* a protocol error in the body ended the request on the
                            wire (conn_protocol_error): no 500, no second end */
    else
        request_end_response(r, app_rc);
    if (log_access_enabled()) {
        const char *remote = params_get(&c->params, "REMOTE_ADDR");
        const char *uri = r->uri;
        if (!uri)
            uri = params_get(&c->params, "PATH_INFO");
        /* An empty REMOTE_ADDR (the http codec's unix peers): the peer. */
        log_access(remote && *remote ? remote : c->peer, r->method, uri,
                   r->failed ? 499 : r->status, r->bytes_out, clock_now_us() - r->start_us);
    }
    return c->broken || r->failed ? -1 : 0;
}
