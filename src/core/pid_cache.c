/*
 * pid_cache.c — getpid() answered from memory, in the processes that enable
 * it (an ASGI worker: src/apps/asgi/app_asgi.c).
 *
 * Why: CPython 3.11's asyncio.get_running_loop() (its C accelerator) checks
 * the process id on every call, and glibc's getpid() is a system call each
 * time (its cache went away in 2.25). asyncio.sleep and most asyncio code
 * call get_running_loop once or more per use; on a virtual machine where a
 * system call is dear, that was about a fifth of the event loop's CPU at
 * 1,000 sleeping requests in flight (contrib/bench/asgi.sh).
 *
 * How it stays right: the program defines getpid itself, so the libraries
 * loaded with it (libpython, its extension modules) call this one. Until
 * pid_cache_enable() it is the system call. After, the pid is kept in a
 * page of its own marked MADV_WIPEONFORK: the kernel hands any child made by
 * a fork (fork(), _Fork(), a raw clone without CLONE_VM) a zeroed page, so
 * the child asks the kernel once for its own pid, whatever made it. A child
 * sharing the memory (vfork, posix_spawn) runs only the C library's code
 * until its exec, and the C library calls its own getpid.
 */
#include "core/pid_cache.h"

#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static _Atomic(_Atomic pid_t *) pid_cache_slot; /* the wiped page; NULL: off */

/* Seen by the loaded libraries (the build hides symbols by default: Makefile.am). */
__attribute__((visibility("default"))) pid_t getpid(void)
{
    _Atomic pid_t *slot = atomic_load_explicit(&pid_cache_slot, memory_order_acquire);
    if (!slot)
        return (pid_t)syscall(SYS_getpid);
    pid_t pid = atomic_load_explicit(slot, memory_order_relaxed);
    if (pid == 0) {
        pid = (pid_t)syscall(SYS_getpid);
        atomic_store_explicit(slot, pid, memory_order_relaxed);
    }
    return pid;
}

int pid_cache_enable(void)
{
    if (atomic_load(&pid_cache_slot))
        return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if (madvise(p, page, MADV_WIPEONFORK) < 0) {
        munmap(p, page);
        return -1;
    }
    atomic_store_explicit(&pid_cache_slot, (_Atomic pid_t *)p, memory_order_release);
    return 0;
}
