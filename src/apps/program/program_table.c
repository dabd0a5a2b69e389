/*
 * program_table.c — the shared table of FastCGI programs (see
 * program_table.h).
 */
#include "program_table.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

static int program_table_bind(struct program_slot *s, unsigned backlog, uid_t uid, gid_t gid,
                              char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        (uid != (uid_t)-1 && chown(s->path, uid, gid) < 0) || chmod(s->path, 0600) < 0 ||
        listen(fd, (int)backlog) < 0) {
        snprintf(err, errlen, "FastCGI program socket %s: %s", s->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->listen_fd = fd;
    return 0;
}

struct program_table *program_table_create(unsigned count, char *err, size_t errlen)
{
    size_t len = sizeof(struct program_table) + count * sizeof(struct program_slot);
    struct program_table *t =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED) {
        snprintf(err, errlen, "mmap(FastCGI programs): %s", strerror(errno));
        return NULL;
    }
    t->map_len = len;
    t->count = count;
    for (unsigned i = 0; i < count; i++) {
        t->slots[i].listen_fd = -1;
        t->slots[i].stderr_fd = -1;
        t->slots[i].exec_fd = -1;
        atomic_store(&t->slots[i].busy, PROGRAM_CLAIM_MASTER); /* until it runs */
    }
    return t;
}

int program_table_open(struct program_table *t, uid_t uid, gid_t gid, unsigned backlog, char *err,
                       size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || tmp[0] != '/' || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(t->dir, sizeof(t->dir), "%s/corral-programs-XXXXXX", tmp);
    /* mkdtemp makes it 0700, and a sticky /tmp keeps others from renaming
     * it; the pool's user owns it so that its workers can connect. */
    if (!mkdtemp(t->dir)) {
        snprintf(err, errlen, "mkdtemp(%s): %s", t->dir, strerror(errno));
        t->dir[0] = '\0';
        return -1;
    }
    if (uid != (uid_t)-1 && chown(t->dir, uid, gid) < 0) {
        snprintf(err, errlen, "chown(%s): %s", t->dir, strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < t->count; i++) {
        int k = snprintf(t->slots[i].path, sizeof(t->slots[i].path), "%.80s/%u.sock", t->dir, i);
        (void)k; /* the directory is at most 40 + 23 bytes: it fits */
        if (program_table_bind(&t->slots[i], backlog, uid, gid, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void program_table_destroy(struct program_table *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->count; i++) {
        struct program_slot *s = &t->slots[i];
        if (s->listen_fd >= 0) {
            close(s->listen_fd);
            unlink(s->path);
        }
        if (s->stderr_fd >= 0)
            close(s->stderr_fd);
    }
    if (t->dir[0])
        rmdir(t->dir);
    munmap(t, t->map_len);
}

static bool program_try(struct program_table *t, unsigned i)
{
    uint32_t idle = PROGRAM_IDLE;
    return atomic_compare_exchange_strong(&t->slots[i].busy, &idle, PROGRAM_CLAIM_REQUEST);
}

int program_claim(struct program_table *t, uint64_t deadline_ms, uint64_t max_requests)
{
    return program_claim_as(t, deadline_ms, max_requests, getpid());
}

int program_claim_as(struct program_table *t, uint64_t deadline_ms, uint64_t max_requests,
                     pid_t self)
{
    /* Start the scan at a different slot per process so that the first
     * programs do not take all the work. */
    unsigned start = (unsigned)self % t->count;
    for (;;) {
        uint32_t seen = atomic_load(&t->released);
        for (unsigned k = 0; k < t->count; k++) {
            unsigned i = (start + k) % t->count;
            if (max_requests && atomic_load(&t->slots[i].requests) >= max_requests)
                continue; /* due for recycling: the master takes it */
            if (program_try(t, i)) {
                atomic_store(&t->slots[i].owner, (int32_t)self);
                atomic_store(&t->slots[i].claimed_ms, clock_now_ms());
                return (int)i;
            }
        }
        uint64_t now = clock_now_ms();
        if (now >= deadline_ms)
            return -1;
        uint64_t wait = deadline_ms - now;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                              .tv_nsec = (long)(wait % 1000) * 1000000L};
        atomic_fetch_add(&t->waiters, 1);
        /* Sleeps only while no release happened since SEEN was read. */
        syscall(SYS_futex, &t->released, FUTEX_WAIT, seen, &ts, NULL, 0);
        atomic_fetch_sub(&t->waiters, 1);
    }
}

bool program_claim_master(struct program_table *t, unsigned i)
{
    uint32_t idle = PROGRAM_IDLE;
    return atomic_compare_exchange_strong(&t->slots[i].busy, &idle, PROGRAM_CLAIM_MASTER);
}

void program_release(struct program_table *t, unsigned i)
{
    atomic_store(&t->slots[i].owner, 0);
    atomic_store(&t->slots[i].busy, PROGRAM_IDLE);
    atomic_fetch_add(&t->released, 1);
    if (atomic_load(&t->waiters))
        syscall(SYS_futex, &t->released, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void program_release_master(struct program_table *t, unsigned i)
{
    uint32_t want = PROGRAM_CLAIM_MASTER;
    if (!atomic_compare_exchange_strong(&t->slots[i].busy, &want, PROGRAM_IDLE))
        return;
    atomic_fetch_add(&t->released, 1);
    if (atomic_load(&t->waiters))
        syscall(SYS_futex, &t->released, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void program_table_set_keep(struct program_table *t, bool on)
{
    uint32_t was = atomic_exchange(&t->keep, on ? 1u : 0u);
    if (was && !on) {
        atomic_fetch_add(&t->keep_epoch, 1);
        syscall(SYS_futex, &t->keep_epoch, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
    }
}

void program_keep_wait(struct program_table *t, uint32_t epoch)
{
    syscall(SYS_futex, &t->keep_epoch, FUTEX_WAIT, epoch, NULL, NULL, 0);
}
