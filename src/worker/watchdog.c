/*
 * watchdog.c — slowlog and harakiri inside a worker (see watchdog.h).
 */
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "conn/request.h"
#include "worker.h"
#include "core/clock.h"

enum { WATCHDOG_TICK_MS = 100, WATCHDOG_MAX_THREADS = 1024 };

static struct watchdog_params watchdog;
/* Per request thread: its app handle, and the start of the last request
 * the slowlog reported (each request is reported once). */
static _Atomic(void *) watchdog_handles[WATCHDOG_MAX_THREADS];
static uint64_t watchdog_slow_reported[WATCHDOG_MAX_THREADS];

void watchdog_set_handle(unsigned index, void *handle)
{
    if (index < WATCHDOG_MAX_THREADS)
        atomic_store(&watchdog_handles[index], handle);
}

/* Log the stack of the thread with HANDLE (a request thread's, or the app's
 * own loop thread's), each line prefixed with PREFIX,
 * through a memory file the app writes it into; FINAL: harakiri follows. */
static void watchdog_log_stack(void *handle, const char *prefix, bool final)
{
    const struct app *app = watchdog.app;
    if (!app->ops->dump_stack || !handle)
        return;
    int fd = memfd_create("corral-stack", MFD_CLOEXEC);
    if (fd < 0) {
        log_msg(LOG_ERROR, "%s: memfd_create failed: %s", prefix, strerror(errno));
        return;
    }
    app->ops->dump_stack(watchdog.app, handle, fd, final);
    off_t len = lseek(fd, 0, SEEK_END);
    char *text = len > 0 ? malloc((size_t)len + 1) : NULL;
    if (text && pread(fd, text, (size_t)len, 0) == len) {
        text[len] = '\0';
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            log_msg(LOG_WARN, "%s: %s", prefix, line);
    }
    free(text);
    close(fd);
}

/* One look at every request thread. */
static void watchdog_check(void)
{
    uint64_t now = clock_now_us();
    for (unsigned i = 0; i < watchdog.thread_count && i < WATCHDOG_MAX_THREADS; i++) {
        struct sb_thread *t = &watchdog.threads[i];
        if (atomic_load_explicit(&t->state, memory_order_relaxed) != SB_THREAD_BUSY)
            continue;
        uint64_t start = atomic_load_explicit(&t->request_start_us, memory_order_relaxed);
        if (!start || now < start)
            continue;
        uint64_t ms = (now - start) / 1000;
        bool harakiri = watchdog.harakiri_ms && ms >= watchdog.harakiri_ms;
        bool slow =
            watchdog.slowlog_ms && ms >= watchdog.slowlog_ms && watchdog_slow_reported[i] != start;
        if (!harakiri && !slow)
            continue;
        char method[sizeof(t->method)], uri[sizeof(t->uri)], prefix[64];
        memcpy(method, t->method, sizeof(method));
        memcpy(uri, t->uri, sizeof(uri));
        method[sizeof(method) - 1] = uri[sizeof(uri) - 1] = '\0';
        if (harakiri && ms >= watchdog.harakiri_ms) {
            snprintf(prefix, sizeof(prefix), "harakiri: worker %u thread %u", watchdog.worker_index,
                     i);
            log_msg(LOG_ERROR,
                    "%s: %s %s has run for %.1f s (harakiri %.1f s): the worker exits, the "
                    "master replaces it; the stack of the thread:",
                    prefix, method, uri, (double)ms / 1000, (double)watchdog.harakiri_ms / 1000);
            watchdog_log_stack(atomic_load(&watchdog_handles[i]), prefix, true);
            _exit(WORKER_EXIT_HARAKIRI);
        }
        if (slow) {
            watchdog_slow_reported[i] = start;
            snprintf(prefix, sizeof(prefix), "slowlog: worker %u thread %u", watchdog.worker_index,
                     i);
            log_msg(LOG_WARN,
                    "%s: %s %s has run for %.1f s (slowlog %.1f s); the stack of the "
                    "thread:",
                    prefix, method, uri, (double)ms / 1000, (double)watchdog.slowlog_ms / 1000);
            watchdog_log_stack(atomic_load(&watchdog_handles[i]), prefix, false);
        }
    }
}

/* An app with a thread of its own (app.h's busy_since: an event loop that
 * runs many requests): the same limits apply to the time it has run without
 * a pause, which is the time it kept every one of them waiting. */
static void watchdog_check_loop(void)
{
    static uint64_t reported;
    void *handle = NULL;
    uint64_t start = watchdog.app->ops->busy_since(watchdog.app, &handle);
    uint64_t now = clock_now_us();
    if (!start || now < start)
        return;
    uint64_t ms = (now - start) / 1000;
    char prefix[64];
    if (watchdog.harakiri_ms && ms >= watchdog.harakiri_ms) {
        snprintf(prefix, sizeof(prefix), "harakiri: worker %u %s loop", watchdog.worker_index,
                 watchdog.app->ops->name);
        log_msg(LOG_ERROR,
                "%s: the event loop has been blocked for %.1f s (harakiri %.1f s): the worker "
                "exits, the master replaces it; the stack of the loop's thread:",
                prefix, (double)ms / 1000, (double)watchdog.harakiri_ms / 1000);
        watchdog_log_stack(handle, prefix, true);
        _exit(WORKER_EXIT_HARAKIRI);
    }
    if (watchdog.slowlog_ms && ms >= watchdog.slowlog_ms && reported != start) {
        reported = start;
        snprintf(prefix, sizeof(prefix), "slowlog: worker %u %s loop", watchdog.worker_index,
                 watchdog.app->ops->name);
        log_msg(LOG_WARN,
                "%s: loop blocked for %llu ms (slowlog %.1f s): every request of this worker "
                "waits; the stack of the loop's thread:",
                prefix, (unsigned long long)ms, (double)watchdog.slowlog_ms / 1000);
        watchdog_log_stack(handle, prefix, false);
    }
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    struct timespec tick = {.tv_sec = 0, .tv_nsec = WATCHDOG_TICK_MS * 1000000L};
    for (;;) {
        nanosleep(&tick, NULL);
        watchdog_check();
        if (watchdog.app->ops->busy_since)
            watchdog_check_loop();
    }
    return NULL;
}

int watchdog_start(const struct watchdog_params *p)
{
    if (!p->slowlog_ms && !p->harakiri_ms)
        return 0;
    watchdog = *p;
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&tid, &attr, watchdog_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_msg(LOG_ERROR, "worker %u: cannot start the watchdog thread: %s", p->worker_index,
                strerror(rc));
        return -1;
    }
    return 0;
}
