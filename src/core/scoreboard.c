/*
 * scoreboard.c — the shared-memory scoreboard (see scoreboard.h).
 */
#include "scoreboard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"

static size_t scoreboard_size(unsigned max_workers, unsigned threads, unsigned listeners)
{
    return sizeof(struct sb_header) + (size_t)max_workers * sizeof(struct sb_worker) +
           (size_t)max_workers * threads * sizeof(struct sb_thread) +
           (size_t)max_workers * listeners * sizeof(uint64_t);
}

/* The pointers into the mapping, from its header. */
static void scoreboard_layout(struct scoreboard *sb, void *map, size_t len, int fd)
{
    sb->map = map;
    sb->map_len = len;
    sb->fd = fd;
    sb->hdr = map;
    sb->workers = (struct sb_worker *)(sb->hdr + 1);
    sb->threads = (struct sb_thread *)(sb->workers + sb->hdr->max_workers);
    sb->accepted =
        (_Atomic uint64_t *)(sb->threads + (size_t)sb->hdr->max_workers * sb->hdr->threads);
}

int scoreboard_create(struct scoreboard *sb, unsigned max_workers, unsigned threads,
                      unsigned listeners)
{
    size_t len = scoreboard_size(max_workers, threads, listeners);
    /* A memfd rather than anonymous memory: a --preload reload re-executes
     * the master, and the new image maps the same pages the old workers
     * still write to. It comes zeroed, and the pages of slots the pool
     * never uses are never touched: a generous maximum costs address space
     * only. Close-on-exec except across that one exec. */
    int fd = memfd_create("corral-scoreboard", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct sb_header *hdr = map;
    hdr->magic = SB_MAGIC;
    hdr->layout = SB_LAYOUT;
    hdr->max_workers = max_workers;
    hdr->threads = threads;
    hdr->listeners = listeners;
    scoreboard_layout(sb, map, len, fd);
    atomic_store(&sb->hdr->started_at, (uint64_t)time(NULL));
    atomic_store(&sb->hdr->started_mono_ms, clock_now_ms());
    return 0;
}

int scoreboard_attach(struct scoreboard *sb, int fd, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "fstat(scoreboard fd %d) failed: %s", fd, strerror(errno));
        return -1;
    }
    if ((size_t)st.st_size < 2 * sizeof(uint32_t)) { /* not even the mark */
        snprintf(err, errlen, "the scoreboard (fd %d) is %lld bytes: too small", fd,
                 (long long)st.st_size);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "mmap(scoreboard fd %d) failed: %s", fd, strerror(errno));
        return -1;
    }
    const struct sb_header *h = map;
    if (h->magic != SB_MAGIC || h->layout != SB_LAYOUT) {
        if (h->magic == SB_MAGIC)
            snprintf(err, errlen, "the scoreboard (fd %d) has layout %u, this build layout %u",
                     fd, h->layout, SB_LAYOUT);
        else
            snprintf(err, errlen, "the scoreboard (fd %d) has no layout mark (a build older "
                     "than layout %u)", fd, SB_LAYOUT);
        munmap(map, len);
        return SB_ATTACH_LAYOUT;
    }
    if (len < sizeof(struct sb_header) || h->max_workers == 0 || h->threads == 0 ||
        h->bank_size * 2 != h->max_workers ||
        scoreboard_size(h->max_workers, h->threads, h->listeners) != len) {
        snprintf(err, errlen, "the scoreboard (fd %d) does not match its header (%u slots, %u "
                 "threads, %u listeners, %zu bytes)", fd, h->max_workers, h->threads,
                 h->listeners, len);
        munmap(map, len);
        return -1;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        snprintf(err, errlen, "fcntl(scoreboard fd %d, FD_CLOEXEC) failed: %s", fd,
                 strerror(errno));
        munmap(map, len);
        return -1;
    }
    scoreboard_layout(sb, map, len, fd);
    return 0;
}

uint32_t scoreboard_generation_of(int fd)
{
    uint32_t prefix[3];
    if (pread(fd, prefix, sizeof(prefix), 0) != (ssize_t)sizeof(prefix) || prefix[0] != SB_MAGIC)
        return 0;
    return prefix[2];
}

void scoreboard_close_in_child(struct scoreboard *sb)
{
    if (sb->fd >= 0)
        close(sb->fd);
    sb->fd = -1;
}

void scoreboard_destroy(struct scoreboard *sb)
{
    if (sb->map)
        munmap(sb->map, sb->map_len);
    if (sb->fd >= 0)
        close(sb->fd);
    memset(sb, 0, sizeof(*sb));
    sb->fd = -1;
}
