/*
 * pidfile.h — the --pidfile, opened without following a symbolic link and
 * held under an flock(2) for the master's whole life, so that a second
 * server refuses to start on it and only the server holding it removes it.
 *
 * One pidfile per process. Its descriptor is close-on-exec and closed in
 * every child forked after pidfile_lock (a pthread_atfork handler): orphan
 * workers never hold the lock. A --preload re-exec passes it to the new
 * image (master_reexec.c), which takes it back with pidfile_adopt.
 */
#ifndef CORRAL_PIDFILE_H
#define CORRAL_PIDFILE_H

#include <stddef.h>

/* Open PATH (O_NOFOLLOW: a symbolic link there is refused; so is a file
 * that is not a regular file with one link), lock it without waiting, then
 * write our pid into it. Returns 0; -1 with the reason in ERR, naming the
 * path and, when a live server holds the lock, the pid written in the file. */
int pidfile_lock(const char *path, char *err, size_t errlen);

/* A re-executed master: FD is the pidfile PATH the previous image locked.
 * Returns 0, or -1 with the reason in ERR (the lock is then not ours). */
int pidfile_adopt(int fd, const char *path, char *err, size_t errlen);

/* The locked pidfile's descriptor, or -1. */
int pidfile_fd(void);

/* At the stop: unlink PATH if we hold its lock and it is still the file we
 * locked; close it. Nothing when we do not hold it. Logs a failed unlink. */
void pidfile_remove(const char *path);

#endif
