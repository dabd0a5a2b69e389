/*
 * rlimit.h — the open files limit (RLIMIT_NOFILE) at start: raised to what
 * the hard limit allows, checked against what one worker may hold.
 */
#ifndef CORRAL_RLIMIT_H
#define CORRAL_RLIMIT_H

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit (no privilege needed; as
 * nginx does), logging the raise; then warn when a worker process that holds
 * MAX_CONNS connections and LISTENERS listeners (plus RLIMIT_NOFILE_MARGIN
 * for the epoll set, the logs, the scoreboard and the app's own files)
 * cannot fit in it. The limit is per process and inherited: call it in the
 * master before any worker is forked. Returns the soft limit now in effect.
 */
#define RLIMIT_NOFILE_MARGIN 64
unsigned long rlimit_raise_nofile(unsigned long max_conns, unsigned long listeners);

#endif
