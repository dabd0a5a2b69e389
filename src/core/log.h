/*
 * log.h — the error log and the access log.
 *
 * Error log lines: "2026-11-23T10:00:00.123Z error [pid 123] message".
 * Each line goes out in one write(2) on an O_APPEND descriptor, so lines
 * from the master, the workers and their threads never interleave.
 * The logger is one of the two kinds of globals the project allows.
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2 };

/* Open the logs: NULL error_path = stderr, NULL access_path = off.
 * Returns 0 or a negative errno (the error is printed to stderr). */
int log_open(const char *error_path, const char *access_path);
void log_close(void);

/*
 * After a re-exec of the master: write to the descriptors the previous image
 * had open (-1: stderr / off) instead of opening the paths, which a master
 * that dropped its privileges may no longer be allowed to open; the paths
 * stay for log_reopen. The descriptors become close-on-exec. Returns 0 or
 * a negative errno (out of memory, or fcntl failed).
 */
int log_adopt(int error_fd, const char *error_path, int access_fd, const char *access_path);

/* The open log files and their paths (-1 and NULL: stderr / off), for a
 * re-exec to hand over. */
void log_files(int *error_fd, const char **error_path, int *access_fd, const char **access_path);

/*
 * Reopen the log files by path (after logrotate renamed them): the next
 * line goes to a new file at the same path. Safe while other threads log:
 * each descriptor is swapped in one dup3. A file that cannot be opened
 * keeps the old descriptor. log_reopen_err returns 0 or a negative errno
 * with the failing call in err; log_reopen logs that error itself.
 */
int log_reopen_err(char *err, size_t errlen);
int log_reopen(void);

/* One line in the error log: timestamp, level, pid, then the formatted
 * message with every control byte and DEL written as \xHH (a newline in a
 * URI or in app text cannot start a line of its own). Text of several lines
 * is logged one call per line. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

/* Name the pool in every later error-log line of this process and of the
 * children it forks: "... info [pid 123] [pool www] message". NULL (the
 * default) names none. NAME is copied (at most 64 bytes). Call it before
 * any thread starts. */
void log_set_pool(const char *name);

/* Whether an access log is configured (callers skip formatting if not). */
int log_access_enabled(void);

/* One access-log line: remote address, method, URI, status, response bytes,
 * duration in microseconds, worker pid. */
void log_access(const char *remote, const char *method, const char *uri,
                int status, uint64_t bytes, uint64_t duration_us);

#endif
