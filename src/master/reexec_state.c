/*
 * reexec_state.c — the $CORRAL_REEXEC text (see reexec_state.h).
 */
#include "reexec_state.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* ---- writing ---- */

struct reexec_out {
    char *buf;
    size_t len, used;
    bool full;
};

static void reexec_put(struct reexec_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reexec_put(struct reexec_out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->used) {
        o->full = true;
        return;
    }
    o->used += (size_t)n;
}

static bool reexec_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("._~/:@+-", c) != NULL);
}

/* S percent-encoded; "" is written as "-" (none). */
static void reexec_put_str(struct reexec_out *o, const char *s)
{
    if (!*s) {
        reexec_put(o, "-");
        return;
    }
    /* "-" alone would read back as none: encode it. */
    if (strcmp(s, "-") == 0) {
        reexec_put(o, "%%2D");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (reexec_plain(*p))
            reexec_put(o, "%c", *p);
        else
            reexec_put(o, "%%%02X", *p);
    }
}

int reexec_format(const struct reexec_state *s, char *out, size_t len)
{
    struct reexec_out o = {.buf = out, .len = len};
    if (len == 0)
        return -1;
    out[0] = '\0';
    reexec_put(&o, "v1 sb=%d target=%u threads=%u maxproc=%u pool=", s->sb_fd, s->target,
               s->threads, s->max_processes);
    reexec_put_str(&o, s->pool);
    reexec_put(&o, " chain=%d hup=%d", s->chain, s->pending_hup);
    for (size_t i = 0; i < s->listener_count; i++) {
        const struct reexec_listener *l = &s->listeners[i];
        reexec_put(&o, " listen=%d,%u,%d,", l->fd, l->backlog, l->owns_path);
        reexec_put_str(&o, l->spec);
    }
    if (s->control_fd >= 0) {
        reexec_put(&o, " ctl=%d,", s->control_fd);
        reexec_put_str(&o, s->control_path);
    }
    for (size_t i = 0; i < s->client_count; i++)
        reexec_put(&o, " client=%d", s->clients[i]);
    reexec_put(&o, " elog=%d,", s->error_log_fd);
    reexec_put_str(&o, s->error_log);
    reexec_put(&o, " alog=%d,", s->access_log_fd);
    reexec_put_str(&o, s->access_log);
    reexec_put(&o, " pidfile=");
    reexec_put_str(&o, s->pidfile);
    if (s->pidfile_fd >= 0)
        reexec_put(&o, " pidlock=%d", s->pidfile_fd);
    reexec_put(&o, " why=");
    reexec_put_str(&o, s->why);
    return o.full ? -1 : 0;
}

/* ---- reading ---- */

struct reexec_in {
    char *err;
    size_t errlen;
};

static enum reexec_parse_result reexec_bad(struct reexec_in *in, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum reexec_parse_result reexec_bad(struct reexec_in *in, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->err, in->errlen, fmt, ap);
    va_end(ap);
    return REEXEC_PARSE_BAD;
}

/* A decimal number of LEN bytes up to MAX, no sign, no leading zero. */
static int reexec_number(const char *s, size_t len, long max, long *out)
{
    if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* A descriptor: a number, or -1 when ALLOW_NONE. */
static int reexec_fd(const char *s, size_t len, bool allow_none, int *out)
{
    long v;
    if (allow_none && len == 2 && memcmp(s, "-1", 2) == 0) {
        *out = -1;
        return 0;
    }
    if (reexec_number(s, len, INT_MAX, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int reexec_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not what reexec_format writes */
}

/* Decode the percent-encoded string of LEN bytes into OUT (CAP bytes). */
static int reexec_str(const char *s, size_t len, char *out, size_t cap)
{
    if (len == 1 && s[0] == '-') {
        out[0] = '\0';
        return 0;
    }
    if (len == 3 && memcmp(s, "%2D", 3) == 0 && cap > 1) {
        memcpy(out, "-", 2); /* a string that is just "-" (not "none") */
        return 0;
    }
    if (len == 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = reexec_hex(s[i + 1]);
            int lo = hi < 0 ? -1 : reexec_hex(s[i + 2]);
            if (lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            if (c == '\0' || reexec_plain(c))
                return -1; /* NUL, or a byte that is never encoded */
            i += 2;
        } else if (!reexec_plain(c)) {
            return -1;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

enum reexec_key {
    REEXEC_K_SB,
    REEXEC_K_TARGET,
    REEXEC_K_THREADS,
    REEXEC_K_MAXPROC,
    REEXEC_K_POOL,
    REEXEC_K_CHAIN,
    REEXEC_K_HUP,
    REEXEC_K_LISTEN,
    REEXEC_K_CTL,
    REEXEC_K_CLIENT,
    REEXEC_K_ELOG,
    REEXEC_K_ALOG,
    REEXEC_K_PIDFILE,
    REEXEC_K_PIDLOCK,
    REEXEC_K_WHY,
    REEXEC_K_COUNT
};

static const struct {
    const char *name;
    bool required, repeats;
} reexec_keys[REEXEC_K_COUNT] = {
    [REEXEC_K_SB] = {"sb", true, false},           [REEXEC_K_TARGET] = {"target", true, false},
    [REEXEC_K_THREADS] = {"threads", true, false}, [REEXEC_K_MAXPROC] = {"maxproc", true, false},
    [REEXEC_K_POOL] = {"pool", true, false},       [REEXEC_K_CHAIN] = {"chain", true, false},
    [REEXEC_K_HUP] = {"hup", true, false},         [REEXEC_K_LISTEN] = {"listen", true, true},
    [REEXEC_K_CTL] = {"ctl", false, false},        [REEXEC_K_CLIENT] = {"client", false, true},
    [REEXEC_K_ELOG] = {"elog", true, false},       [REEXEC_K_ALOG] = {"alog", true, false},
    [REEXEC_K_PIDFILE] = {"pidfile", true, false}, [REEXEC_K_WHY] = {"why", true, false},
    [REEXEC_K_PIDLOCK] = {"pidlock", false, false},
};

/* "FD,REST": the descriptor into *fd, REST's start and length. */
static int reexec_fd_and(const char *v, size_t len, bool allow_none, int *fd, const char **rest,
                         size_t *rest_len)
{
    const char *comma = memchr(v, ',', len);
    if (!comma || reexec_fd(v, (size_t)(comma - v), allow_none, fd) < 0)
        return -1;
    *rest = comma + 1;
    *rest_len = len - (size_t)(comma + 1 - v);
    return 0;
}

static enum reexec_parse_result reexec_value(struct reexec_in *in, enum reexec_key k, const char *v,
                                             size_t len, struct reexec_state *out)
{
    long n;
    const char *rest;
    size_t rest_len;
    const char *name = reexec_keys[k].name;
    switch (k) {
    case REEXEC_K_SB:
        if (reexec_fd(v, len, false, &out->sb_fd) < 0)
            return reexec_bad(in, "%s: expected a descriptor", name);
        return REEXEC_PARSE_OK;
    case REEXEC_K_TARGET:
    case REEXEC_K_THREADS:
    case REEXEC_K_MAXPROC:
        if (reexec_number(v, len, 65535, &n) < 0 || (n == 0 && k != REEXEC_K_TARGET))
            return reexec_bad(in, "%s: expected a number from %d to 65535", name,
                              k == REEXEC_K_TARGET ? 0 : 1);
        *(k == REEXEC_K_TARGET    ? &out->target
          : k == REEXEC_K_THREADS ? &out->threads
                                  : &out->max_processes) = (unsigned)n;
        return REEXEC_PARSE_OK;
    case REEXEC_K_POOL:
        if (reexec_str(v, len, out->pool, sizeof(out->pool)) < 0 || !out->pool[0])
            return reexec_bad(in, "pool: expected a pool mode");
        return REEXEC_PARSE_OK;
    case REEXEC_K_CHAIN:
    case REEXEC_K_HUP:
        if (len != 1 || (v[0] != '0' && v[0] != '1'))
            return reexec_bad(in, "%s: expected 0 or 1", name);
        *(k == REEXEC_K_CHAIN ? &out->chain : &out->pending_hup) = v[0] == '1';
        return REEXEC_PARSE_OK;
    case REEXEC_K_LISTEN: {
        if (out->listener_count == REEXEC_MAX_LISTENERS)
            return reexec_bad(in, "listen: more than %d listeners", REEXEC_MAX_LISTENERS);
        struct reexec_listener *l = &out->listeners[out->listener_count];
        const char *spec;
        size_t spec_len;
        if (reexec_fd_and(v, len, false, &l->fd, &rest, &rest_len) < 0)
            return reexec_bad(in, "listen: expected FD,BACKLOG,OWNS,SPEC");
        const char *c = memchr(rest, ',', rest_len);
        if (!c || reexec_number(rest, (size_t)(c - rest), 65535, &n) < 0 || n == 0)
            return reexec_bad(in, "listen: expected a backlog from 1 to 65535");
        l->backlog = (unsigned)n;
        spec = c + 1;
        spec_len = rest_len - (size_t)(spec - rest);
        if (spec_len < 2 || (spec[0] != '0' && spec[0] != '1') || spec[1] != ',')
            return reexec_bad(in, "listen: expected 0 or 1 for the socket file's owner");
        l->owns_path = spec[0] == '1';
        if (reexec_str(spec + 2, spec_len - 2, l->spec, sizeof(l->spec)) < 0 || !l->spec[0])
            return reexec_bad(in, "listen: the address is not a percent-encoded string");
        out->listener_count++;
        return REEXEC_PARSE_OK;
    }
    case REEXEC_K_CTL:
        if (reexec_fd_and(v, len, false, &out->control_fd, &rest, &rest_len) < 0 ||
            reexec_str(rest, rest_len, out->control_path, sizeof(out->control_path)) < 0 ||
            !out->control_path[0])
            return reexec_bad(in, "ctl: expected FD,PATH");
        return REEXEC_PARSE_OK;
    case REEXEC_K_CLIENT:
        if (out->client_count == REEXEC_MAX_CLIENTS)
            return reexec_bad(in, "client: more than %d control clients", REEXEC_MAX_CLIENTS);
        if (reexec_fd(v, len, false, &out->clients[out->client_count]) < 0)
            return reexec_bad(in, "client: expected a descriptor");
        out->client_count++;
        return REEXEC_PARSE_OK;
    case REEXEC_K_ELOG:
    case REEXEC_K_ALOG: {
        int *fd = k == REEXEC_K_ELOG ? &out->error_log_fd : &out->access_log_fd;
        char *path = k == REEXEC_K_ELOG ? out->error_log : out->access_log;
        if (reexec_fd_and(v, len, true, fd, &rest, &rest_len) < 0 ||
            reexec_str(rest, rest_len, path, REEXEC_PATH_MAX) < 0 || (*fd < 0) != !path[0])
            return reexec_bad(in, "%s: expected FD,PATH or -1,-", name);
        return REEXEC_PARSE_OK;
    }
    case REEXEC_K_PIDFILE:
        if (reexec_str(v, len, out->pidfile, sizeof(out->pidfile)) < 0)
            return reexec_bad(in, "pidfile: expected a percent-encoded path or -");
        return REEXEC_PARSE_OK;
    case REEXEC_K_PIDLOCK:
        if (reexec_fd(v, len, false, &out->pidfile_fd) < 0)
            return reexec_bad(in, "pidlock: expected a descriptor");
        return REEXEC_PARSE_OK;
    case REEXEC_K_WHY:
        if (reexec_str(v, len, out->why, sizeof(out->why)) < 0)
            return reexec_bad(in, "why: expected a percent-encoded string");
        return REEXEC_PARSE_OK;
    default:
        return reexec_bad(in, "internal: key %d", (int)k);
    }
}

/* Every descriptor named once, and none of them 0, 1 or 2. */
static enum reexec_parse_result reexec_check_fds(struct reexec_in *in, const struct reexec_state *s)
{
    int fds[3 + REEXEC_MAX_LISTENERS + REEXEC_MAX_CLIENTS + 3];
    size_t n = 0;
    fds[n++] = s->sb_fd;
    for (size_t i = 0; i < s->listener_count; i++)
        fds[n++] = s->listeners[i].fd;
    if (s->control_fd >= 0)
        fds[n++] = s->control_fd;
    for (size_t i = 0; i < s->client_count; i++)
        fds[n++] = s->clients[i];
    if (s->error_log_fd >= 0)
        fds[n++] = s->error_log_fd;
    if (s->access_log_fd >= 0)
        fds[n++] = s->access_log_fd;
    if (s->pidfile_fd >= 0)
        fds[n++] = s->pidfile_fd;
    for (size_t i = 0; i < n; i++) {
        if (fds[i] < 3)
            return reexec_bad(in, "descriptor %d is one of stdin, stdout, stderr", fds[i]);
        for (size_t j = 0; j < i; j++)
            if (fds[i] == fds[j])
                return reexec_bad(in, "descriptor %d is given twice", fds[i]);
    }
    return REEXEC_PARSE_OK;
}

enum reexec_parse_result reexec_parse(const char *text, struct reexec_state *out, char *err,
                                      size_t errlen)
{
    struct reexec_in in = {.err = err, .errlen = errlen};
    bool seen[REEXEC_K_COUNT] = {false};
    memset(out, 0, sizeof(*out));
    out->control_fd = out->error_log_fd = out->access_log_fd = out->pidfile_fd = -1;
    if (strncmp(text, "v1", 2) != 0 || (text[2] != ' ' && text[2] != '\0'))
        return reexec_bad(&in, "expected the version \"v1\" first");
    const char *p = text + 2;
    while (*p) {
        /* p is at the separator: exactly one space, then a token. */
        p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return reexec_bad(&in, "an empty token at offset %zu", (size_t)(p - text));
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return reexec_bad(&in, "token %.*s: expected KEY=VALUE", (int)(len > 40 ? 40 : len), p);
        size_t klen = (size_t)(eq - p);
        enum reexec_key k;
        for (k = 0; k < REEXEC_K_COUNT; k++)
            if (strlen(reexec_keys[k].name) == klen && memcmp(reexec_keys[k].name, p, klen) == 0)
                break;
        if (k == REEXEC_K_COUNT)
            return reexec_bad(&in, "unknown key \"%.*s\"", (int)(klen > 40 ? 40 : klen), p);
        if (seen[k] && !reexec_keys[k].repeats)
            return reexec_bad(&in, "key \"%s\" given twice", reexec_keys[k].name);
        seen[k] = true;
        if (reexec_value(&in, k, eq + 1, len - klen - 1, out) != REEXEC_PARSE_OK)
            return REEXEC_PARSE_BAD;
        p += len;
    }
    for (enum reexec_key k = 0; k < REEXEC_K_COUNT; k++)
        if (reexec_keys[k].required && !seen[k])
            return reexec_bad(&in, "key \"%s\" is missing", reexec_keys[k].name);
    return reexec_check_fds(&in, out);
}

/* ---- the settings a re-exec keeps ---- */

static int reexec_set_string(char **field, const char *value)
{
    char *copy = value[0] ? strdup(value) : NULL;
    if (value[0] && !copy)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

/* What RX carries, written over PREV: the listeners by their specs, threads,
 * max_processes, the pool mode, control, the log files, pidfile, preload. */
static int reexec_carried(struct config *prev, const struct reexec_state *rx)
{
    for (size_t i = 0; i < prev->listen_count; i++)
        free(prev->listen[i]);
    free(prev->listen);
    prev->listen_count = 0;
    if (!(prev->listen = calloc(rx->listener_count ? rx->listener_count : 1,
                                sizeof(*prev->listen))))
        return -1;
    for (size_t i = 0; i < rx->listener_count; i++) {
        if (!(prev->listen[i] = strdup(rx->listeners[i].spec)))
            return -1;
        prev->listen_count++;
    }
    prev->threads = rx->threads;
    prev->max_processes = rx->max_processes;
    prev->preload = true;
    /* The same mode under another spelling (unset or "static") is kept. */
    const char *pool = config_pool_mode_name(config_pool_mode(prev));
    if ((strcmp(pool, rx->pool) != 0 && reexec_set_string(&prev->pool, rx->pool) < 0) ||
        reexec_set_string(&prev->control, rx->control_path) < 0 ||
        reexec_set_string(&prev->error_log, rx->error_log) < 0 ||
        reexec_set_string(&prev->access_log, rx->access_log) < 0 ||
        reexec_set_string(&prev->pidfile, rx->pidfile) < 0)
        return -1;
    return 0;
}

/* The previous image's settings are C's fixed ones with what RX carries
 * written over them (what RX does not carry, e.g. backlog, stays C's); C
 * then keeps them all through config_keep_fixed, which walks the option
 * table. */
int reexec_keep_fixed(struct config *c, const struct reexec_state *rx)
{
    struct config prev;
    int rc = -1;
    config_defaults(&prev);
    if (config_keep_fixed(&prev, c, NULL, 0) < 0 || reexec_carried(&prev, rx) < 0 ||
        config_keep_fixed(c, &prev, NULL, 0) < 0)
        goto out;
    if (c->processes > c->max_processes)
        c->processes = c->max_processes;
    config_finish(c);
    rc = 0;
out:
    config_free(&prev);
    return rc;
}
