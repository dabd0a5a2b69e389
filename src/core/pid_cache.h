/*
 * pid_cache.h — getpid() without a system call in a process that asks for
 * it (pid_cache.c defines getpid itself, for the whole program and the
 * libraries it loads).
 */
#ifndef CORRAL_PID_CACHE_H
#define CORRAL_PID_CACHE_H

/* From now on this process's getpid() answers from memory; a child made
 * by any kind of fork finds it empty and asks the kernel once. 0, or -1
 * with errno (an older kernel without MADV_WIPEONFORK: getpid stays a
 * system call). Before the process starts threads that call getpid. */
int pid_cache_enable(void);

#endif
