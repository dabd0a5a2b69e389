/*
 * log.c — error and access logs (see log.h).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "corral.h"

static int log_error_fd = STDERR_FILENO;
static int log_access_fd = -1;

static const char *const log_level_names[] = {"error", "warn", "info"};

static int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "corral: open(\"%s\") failed: %s\n", path, strerror(e));
        return -e;
    }
    return fd;
}

int log_open(const char *error_path, const char *access_path)
{
    if (error_path) {
        int fd = log_open_file(error_path);
        if (fd < 0)
            return fd;
        log_error_fd = fd;
    }
    if (access_path) {
        int fd = log_open_file(access_path);
        if (fd < 0)
            return fd;
        log_access_fd = fd;
    }
    return 0;
}

void log_close(void)
{
    if (log_error_fd != STDERR_FILENO)
        close(log_error_fd);
    if (log_access_fd >= 0)
        close(log_access_fd);
    log_error_fd = STDERR_FILENO;
    log_access_fd = -1;
}

/* "2026-11-23T10:00:00.123Z" into buf (at least 32 bytes). */
static size_t log_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n;
}

/* Write a whole line; a short write to a log is retried, an error dropped
 * (there is nowhere left to report it). */
static void log_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    char line[2048];
    size_t n = log_timestamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s [pid %d] ",
                          log_level_names[level], (int)getpid());
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2; /* truncated message: keep the newline */
    line[n++] = '\n';
    log_write(log_error_fd, line, n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

int log_access_enabled(void)
{
    return log_access_fd >= 0;
}

/* Copy S into the line, escaping bytes that could forge a line or a field:
 * control characters, quotes, backslashes and non-ASCII become \xHH. */
static size_t log_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    return n;
}

void log_access(const char *remote, const char *method, const char *uri,
                int status, uint64_t bytes, uint64_t duration_us)
{
    if (log_access_fd < 0)
        return;
    char line[4096];
    size_t n = log_timestamp(line, sizeof(line));
    line[n++] = ' ';
    n += log_escape(line + n, 128, remote ? remote : "-");
    n += (size_t)snprintf(line + n, sizeof(line) - n, " \"");
    n += log_escape(line + n, 32, method ? method : "-");
    line[n++] = ' ';
    n += log_escape(line + n, sizeof(line) - n - 128, uri ? uri : "-");
    n += (size_t)snprintf(line + n, sizeof(line) - n,
                          "\" %d %llu %lluus pid=%d\n", status,
                          (unsigned long long)bytes,
                          (unsigned long long)duration_us, (int)getpid());
    log_write(log_access_fd, line, n);
}

/* The public logging entry point for handlers (corral.h). */
CORRAL_EXPORT void corral_log(int level, const char *fmt, ...)
{
    enum log_level l = level <= CORRAL_LOG_ERROR ? LOG_ERROR
                       : level == CORRAL_LOG_WARN ? LOG_WARN
                                                  : LOG_INFO;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(l, fmt, ap);
    va_end(ap);
}
