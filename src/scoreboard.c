/*
 * scoreboard.c — the shared-memory scoreboard (see scoreboard.h).
 */
#include "scoreboard.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int scoreboard_create(struct scoreboard *sb, unsigned max_workers, unsigned threads,
                      unsigned listeners)
{
    size_t len = sizeof(struct sb_header) + (size_t)max_workers * sizeof(struct sb_worker) +
                 (size_t)max_workers * threads * sizeof(struct sb_thread) +
                 (size_t)max_workers * listeners * sizeof(uint64_t);
    /* Anonymous memory comes zeroed, and the pages of slots the pool never
     * uses are never touched: a generous maximum costs address space only. */
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return -errno;
    sb->map = map;
    sb->map_len = len;
    sb->hdr = map;
    sb->hdr->max_workers = max_workers;
    sb->hdr->threads = threads;
    sb->hdr->listeners = listeners;
    atomic_store(&sb->hdr->started_at, (uint64_t)time(NULL));
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    atomic_store(&sb->hdr->started_mono_ms,
                 (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
    sb->workers = (struct sb_worker *)(sb->hdr + 1);
    sb->threads = (struct sb_thread *)(sb->workers + max_workers);
    sb->accepted = (_Atomic uint64_t *)(sb->threads + (size_t)max_workers * threads);
    return 0;
}

void scoreboard_destroy(struct scoreboard *sb)
{
    if (sb->map)
        munmap(sb->map, sb->map_len);
    memset(sb, 0, sizeof(*sb));
}
