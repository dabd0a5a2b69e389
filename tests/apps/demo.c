/*
 * demo.c — the demo and test handler: one route per behaviour the tests and
 * the README's demo need. Built as tests/apps/demo.so.
 *
 *   /               an HTML page listing the routes
 *   /hello          "Hello, World!" (also the symbol `hello` alone, for benchmarks)
 *   /params         every CGI parameter, one NAME=VALUE per line
 *   /echo           the request body, streamed back
 *   /stream?n=&ms=  n chunks, one every ms milliseconds, each sent at once
 *   /large?size=    size bytes of a known pattern (byte i is 'a' + i % 26)
 *   /sendfile?size= size bytes of the same pattern through corral_sendfile
 *   /slow?ms=       answers after sleeping ms milliseconds
 *   /status?code=   answers with that status
 *   /fail           fails before sending anything (corral answers 500)
 *   /fail-late      fails after part of the body was sent
 *   /crash          kills its worker with SIGSEGV (tests of the master's respawn)
 */
#include <corral.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

CORRAL_MODULE();

static int demo_pattern_fd = -1;
#define DEMO_FILE_SIZE (8u << 20)

static void demo_pattern(char *buf, size_t len, size_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (offset + i) % 26);
}

/* A file of the pattern for /sendfile, made once per worker. */
CORRAL_EXPORT int corral_worker_init(void)
{
    char path[] = "/tmp/corral-demo-XXXXXX";
    demo_pattern_fd = mkstemp(path);
    if (demo_pattern_fd < 0)
        return -1;
    unlink(path);
    char buf[65536];
    for (size_t off = 0; off < DEMO_FILE_SIZE; off += sizeof(buf)) {
        demo_pattern(buf, sizeof(buf), off);
        if (write(demo_pattern_fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            return -1;
    }
    return 0;
}

CORRAL_EXPORT void corral_worker_fini(void)
{
    if (demo_pattern_fd >= 0)
        close(demo_pattern_fd);
}

/* The integer value of KEY in the query string, or DEF. */
static long demo_query_int(corral_request *req, const char *key, long def)
{
    const char *q = corral_param(req, "QUERY_STRING");
    size_t kl = strlen(key);
    while (q && *q) {
        if (strncmp(q, key, kl) == 0 && q[kl] == '=')
            return strtol(q + kl + 1, NULL, 10);
        q = strchr(q, '&');
        if (q)
            q++;
    }
    return def;
}

/* The path of the request without the query string, into out. */
static void demo_path(corral_request *req, char *out, size_t len)
{
    const char *uri = corral_param(req, "REQUEST_URI");
    if (!uri)
        uri = corral_param(req, "PATH_INFO");
    if (!uri)
        uri = "/";
    size_t n = strcspn(uri, "?");
    if (n >= len)
        n = len - 1;
    memcpy(out, uri, n);
    out[n] = '\0';
}

/* The whole time, even when a signal interrupts the sleep (as a request
 * stuck in an app would be). */
static void demo_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

CORRAL_EXPORT int hello(corral_request *req)
{
    corral_add_header(req, "Content-Type", "text/plain");
    corral_add_header(req, "Content-Length", "13");
    return corral_write_final(req, "Hello, World!", 13);
}

static int demo_index(corral_request *req)
{
    static const char page[] =
        "<!doctype html>\n<html><head><title>corral demo</title></head><body>\n"
        "<h1>Served by corral</h1>\n"
        "<p>This page comes from a native C handler (tests/apps/demo.c) running in a corral "
        "worker, behind nginx.</p>\n<ul>\n"
        "<li><a href=\"/hello\">/hello</a></li>\n"
        "<li><a href=\"/params?a=1&amp;b=2\">/params</a> &mdash; the CGI parameters</li>\n"
        "<li><a href=\"/stream?n=5&amp;ms=300\">/stream</a> &mdash; chunks as they are "
        "written</li>\n"
        "<li><a href=\"/large?size=100000\">/large</a></li>\n"
        "<li><a href=\"/status?code=418\">/status?code=418</a></li>\n"
        "</ul></body></html>\n";
    corral_add_header(req, "Content-Type", "text/html; charset=utf-8");
    return corral_write_final(req, page, sizeof(page) - 1);
}

static int demo_params(corral_request *req)
{
    corral_add_header(req, "Content-Type", "text/plain");
    size_t n = corral_param_count(req);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        char line[8192];
        corral_param_at(req, i, &name, &value);
        int len = snprintf(line, sizeof(line), "%s=%s\n", name, value);
        if (len > (int)sizeof(line) - 1)
            len = (int)sizeof(line) - 1;
        if (corral_write(req, line, (size_t)len) < 0)
            return -1;
    }
    return 0;
}

/* The body comes back only after it was read whole: nginx stops sending a
 * request body once the response starts, so echoing while reading would
 * deadlock behind it (uWSGI's post-buffering exists for the same reason). */
#define DEMO_ECHO_MAX (256u << 20)
static int demo_echo(corral_request *req)
{
    const char *ct = corral_param(req, "CONTENT_TYPE");
    size_t len = 0, cap = 65536;
    char *body = malloc(cap);
    if (!body)
        return -1;
    for (;;) {
        if (len == cap) {
            char *more = cap < DEMO_ECHO_MAX ? realloc(body, cap * 2) : NULL;
            if (!more) {
                free(body);
                corral_set_status(req, 413, NULL);
                return corral_write_final(req, "body too large\n", 15);
            }
            body = more;
            cap *= 2;
        }
        ssize_t n = corral_read(req, body + len, cap - len);
        if (n < 0) {
            free(body);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    char num[32];
    snprintf(num, sizeof(num), "%zu", len);
    corral_add_header(req, "Content-Type", ct && *ct ? ct : "application/octet-stream");
    corral_add_header(req, "Content-Length", num);
    int rc = corral_write_final(req, body, len);
    free(body);
    return rc;
}

static int demo_stream(corral_request *req)
{
    long n = demo_query_int(req, "n", 5), ms = demo_query_int(req, "ms", 100);
    corral_add_header(req, "Content-Type", "text/plain");
    corral_add_header(req, "X-Accel-Buffering", "no");
    for (long i = 0; i < n; i++) {
        char line[64];
        int len = snprintf(line, sizeof(line), "chunk %ld\n", i);
        if (corral_write(req, line, (size_t)len) < 0)
            return -1;
        if (i + 1 < n)
            demo_sleep_ms(ms);
    }
    return 0;
}

static int demo_large(corral_request *req)
{
    long size = demo_query_int(req, "size", 1 << 20);
    if (size < 0)
        size = 0;
    char num[32];
    snprintf(num, sizeof(num), "%ld", size);
    corral_add_header(req, "Content-Type", "application/octet-stream");
    corral_add_header(req, "Content-Length", num);
    static _Thread_local char buf[65536];
    for (long off = 0; off < size; off += (long)sizeof(buf)) {
        size_t len = (size_t)(size - off) < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        demo_pattern(buf, len, (size_t)off);
        if (corral_write(req, buf, len) < 0)
            return -1;
    }
    return 0;
}

static int demo_sendfile(corral_request *req)
{
    long size = demo_query_int(req, "size", 1 << 20);
    if (size < 0 || size > (long)DEMO_FILE_SIZE) {
        corral_set_status(req, 400, NULL);
        return corral_write_final(req, "size out of range\n", 18);
    }
    char num[32];
    snprintf(num, sizeof(num), "%ld", size);
    corral_add_header(req, "Content-Type", "application/octet-stream");
    corral_add_header(req, "Content-Length", num);
    return corral_sendfile(req, demo_pattern_fd, 0, (size_t)size);
}

static int demo_slow(corral_request *req)
{
    long ms = demo_query_int(req, "ms", 1000);
    demo_sleep_ms(ms);
    char body[64];
    int len = snprintf(body, sizeof(body), "slept %ld ms\n", ms);
    corral_add_header(req, "Content-Type", "text/plain");
    return corral_write_final(req, body, (size_t)len);
}

static int demo_status(corral_request *req)
{
    long code = demo_query_int(req, "code", 200);
    if (corral_set_status(req, (int)code, NULL) < 0)
        return -1;
    char body[64];
    int len = snprintf(body, sizeof(body), "status %ld\n", code);
    corral_add_header(req, "Content-Type", "text/plain");
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308)
        corral_add_header(req, "Location", "/hello");
    return corral_write_final(req, body, (size_t)len);
}

static int demo_fail_late(corral_request *req)
{
    corral_add_header(req, "Content-Type", "text/plain");
    corral_add_header(req, "Content-Length", "1000");
    corral_write(req, "partial", 7);
    return -1;
}

/* The worker dies of SIGSEGV, as an app bug would make it. */
static int demo_crash(corral_request *req)
{
    (void)req;
    raise(SIGSEGV);
    return -1;
}

static const struct {
    const char *path;
    corral_handler_fn fn;
} demo_routes[] = {
    {"/", demo_index},           {"/hello", hello},        {"/params", demo_params},
    {"/echo", demo_echo},        {"/stream", demo_stream}, {"/large", demo_large},
    {"/sendfile", demo_sendfile}, {"/slow", demo_slow},    {"/status", demo_status},
    {"/fail-late", demo_fail_late}, {"/crash", demo_crash},
};

CORRAL_EXPORT int handler(corral_request *req)
{
    char path[256];
    demo_path(req, path, sizeof(path));
    if (strcmp(path, "/fail") == 0)
        return -1;
    for (size_t i = 0; i < sizeof(demo_routes) / sizeof(demo_routes[0]); i++)
        if (strcmp(path, demo_routes[i].path) == 0)
            return demo_routes[i].fn(req);
    corral_set_status(req, 404, NULL);
    corral_add_header(req, "Content-Type", "text/plain");
    return corral_write_final(req, "not found\n", 10);
}
