/*
 * log.c — error and access logs (see log.h).
 */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "corral.h"

static int log_error_fd = STDERR_FILENO;
static int log_access_fd = -1;
/* The paths, for log_reopen; NULL = stderr / off. */
static char *log_error_path;
static char *log_access_path;

static const char *const log_level_names[] = {"error", "warn", "info"};

/* A log file is opened as root at the start, in a directory another user
 * may write: a symbolic link planted at its name is never followed (ELOOP).
 * Under /dev/, which only root writes, links are followed (/dev/stdout).
 * The logrotate reopen opens the same way. */
static int log_open_file(const char *path)
{
    int nofollow = strncmp(path, "/dev/", 5) == 0 ? 0 : O_NOFOLLOW;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | nofollow, 0640);
    return fd < 0 ? -errno : fd;
}

/* PATH made absolute against the current directory (a worker may chdir
 * before it reopens), malloc'ed; NULL when out of memory. */
static char *log_absolute(const char *path)
{
    char cwd[4096];
    char *out = NULL;
    if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
        return strdup(path);
    size_t n = strlen(cwd) + strlen(path) + 2;
    if ((out = malloc(n)))
        snprintf(out, n, "%s/%s", cwd, path);
    return out;
}

int log_open(const char *error_path, const char *access_path)
{
    if (error_path) {
        int fd = log_open_file(error_path);
        if (fd < 0) {
            fprintf(stderr, "corral: open(\"%s\") failed: %s\n", error_path, strerror(-fd));
            return fd;
        }
        log_error_fd = fd;
        log_error_path = log_absolute(error_path);
    }
    if (access_path) {
        int fd = log_open_file(access_path);
        if (fd < 0) {
            fprintf(stderr, "corral: open(\"%s\") failed: %s\n", access_path, strerror(-fd));
            return fd;
        }
        log_access_fd = fd;
        log_access_path = log_absolute(access_path);
    }
    if ((error_path && !log_error_path) || (access_path && !log_access_path)) {
        fprintf(stderr, "corral: out of memory\n");
        return -ENOMEM;
    }
    return 0;
}

int log_adopt(int error_fd, const char *error_path, int access_fd, const char *access_path)
{
    if (error_fd >= 0) {
        if (fcntl(error_fd, F_SETFD, FD_CLOEXEC) < 0)
            return -errno;
        log_error_fd = error_fd;
        if (error_path && !(log_error_path = log_absolute(error_path)))
            return -ENOMEM;
    }
    if (access_fd >= 0) {
        if (fcntl(access_fd, F_SETFD, FD_CLOEXEC) < 0)
            return -errno;
        log_access_fd = access_fd;
        if (access_path && !(log_access_path = log_absolute(access_path)))
            return -ENOMEM;
    }
    return 0;
}

void log_files(int *error_fd, const char **error_path, int *access_fd, const char **access_path)
{
    *error_fd = log_error_fd == STDERR_FILENO ? -1 : log_error_fd;
    *error_path = log_error_fd == STDERR_FILENO ? NULL : log_error_path;
    *access_fd = log_access_fd;
    *access_path = log_access_fd < 0 ? NULL : log_access_path;
}

/* Open PATH again onto the descriptor number FD, so that every thread's
 * next write goes to the new file (dup2 swaps it atomically). */
static int log_reopen_one(const char *path, int fd, char *err, size_t errlen)
{
    int nfd = log_open_file(path);
    if (nfd < 0) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", path, strerror(-nfd));
        return nfd;
    }
    int rc = 0;
    if (dup3(nfd, fd, O_CLOEXEC) < 0) {
        rc = -errno;
        snprintf(err, errlen, "dup3(\"%s\") failed: %s", path, strerror(errno));
    }
    close(nfd);
    return rc;
}

int log_reopen_err(char *err, size_t errlen)
{
    int rc = 0;
    if (log_error_path)
        rc = log_reopen_one(log_error_path, log_error_fd, err, errlen);
    if (log_access_path && log_access_fd >= 0) {
        char aerr[512];
        int arc = log_reopen_one(log_access_path, log_access_fd, aerr, sizeof(aerr));
        if (arc < 0 && rc == 0) {
            rc = arc;
            snprintf(err, errlen, "%s", aerr);
        }
    }
    return rc;
}

int log_reopen(void)
{
    char err[512];
    int rc = log_reopen_err(err, sizeof(err));
    if (rc < 0)
        log_msg(LOG_ERROR, "reopening the logs: %s (still writing to the old file)", err);
    return rc;
}

void log_close(void)
{
    if (log_error_fd != STDERR_FILENO)
        close(log_error_fd);
    if (log_access_fd >= 0)
        close(log_access_fd);
    log_error_fd = STDERR_FILENO;
    log_access_fd = -1;
    free(log_error_path);
    free(log_access_path);
    log_error_path = log_access_path = NULL;
}

/* log_set_pool's name, "" = none. */
static char log_pool[72];

void log_set_pool(const char *name)
{
    snprintf(log_pool, sizeof(log_pool), "%.64s", name ? name : "");
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

/* Copy S into OUT (CAP bytes, no NUL added), escaping as \xHH the bytes
 * that could forge a line: control characters and DEL. FIELDS also escapes
 * what could forge a field of the access log: quotes, backslashes and
 * non-ASCII. Returns the bytes written; a copy that does not fit is cut. */
static size_t log_escape(char *out, size_t cap, const char *s, bool fields)
{
    size_t n = 0;
    for (; s && *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (fields && (c > 0x7f || c == '"' || c == '\\')))
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    return n;
}

/* Every byte of the message goes through log_escape: messages quote URIs,
 * peers' addresses and app text, and a newline or an escape sequence there
 * must not start a forged line or rewrite the terminal. A multi-line text
 * (a Python traceback) is logged one log_msg per line (app_wsgi.c). */
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    char msg[2048];
    char line[4096];
    size_t n = log_timestamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s [pid %d] ",
                          log_level_names[level], (int)getpid());
    if (log_pool[0])
        n += (size_t)snprintf(line + n, sizeof(line) - n, "[pool %s] ", log_pool);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    n += log_escape(line + n, sizeof(line) - n - 1, msg, false);
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

void log_access(const char *remote, const char *method, const char *uri,
                int status, uint64_t bytes, uint64_t duration_us)
{
    if (log_access_fd < 0)
        return;
    char line[4096];
    size_t n = log_timestamp(line, sizeof(line));
    line[n++] = ' ';
    n += log_escape(line + n, 128, remote ? remote : "-", true);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " \"");
    n += log_escape(line + n, 32, method ? method : "-", true);
    line[n++] = ' ';
    n += log_escape(line + n, sizeof(line) - n - 128, uri ? uri : "-", true);
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
