/*
 * master_cmd.c — the control socket's commands (see master.h): the table
 * the control socket parses lines against, and the replies, read from the
 * scoreboard and the master's own state. The actions go through the same
 * functions as the signals (master_actions.c: master_scale, master_stop,
 * master_reopen_logs).
 *
 * Everything here runs in the master's loop and must not block: the only
 * file it reads is /proc/PID/statm of each worker (memory, never disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "master.h"
#include "master_state.h"
#include "conn/request.h"
#include "status/status.h"
#include "core/clock.h"

static const char *master_state_name(const struct master *m)
{
    switch (m->state) {
    case MASTER_RUNNING:
        return m->stop_delay_until_ms ? "stop-delay" : "running";
    case MASTER_STOPPING:
        return "stopping";
    default:
        return "stopping-now";
    }
}

static void master_reply_ok(struct json *j)
{
    json_object_begin(j);
    json_kv_bool(j, "ok", true);
}

/* Resident set size of PID in KiB from /proc/PID/statm; -1 if unknown. */
static long master_rss_kb(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    unsigned long size, resident;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return -1;
    return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- status ---- */

/* The same builder as the status page (status.c), from the scoreboard. */
static void master_cmd_status(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    struct master *m = owner;
    struct status_src src = {.cfg = m->cfg,
                             .sb = &m->sb,
                             .listeners = m->listeners,
                             .listener_count = m->listener_count};
    master_pool_publish(m);
    master_reply_ok(j);
    status_json_members(&src, j);
    json_object_end(j);
}

/* ---- workers ---- */

static const char *master_worker_state(const struct master *m, unsigned i)
{
    const struct master_worker *mw = &m->workers[i];
    if (!mw->pid)
        return mw->respawn_at_ms ? "respawning" : "empty";
    if (mw->retiring)
        return "stopping";
    switch (atomic_load_explicit(&m->sb.workers[i].state, memory_order_relaxed)) {
    case SB_WORKER_STARTING:
        return "starting";
    case SB_WORKER_RUNNING:
        return "running";
    case SB_WORKER_STOPPING:
        return "stopping";
    default:
        return "forked";
    }
}

/* A copy of a scoreboard string that a worker may be rewriting: bounded,
 * always terminated. */
static void master_copy_field(char *dst, const char *src, size_t cap)
{
    memcpy(dst, src, cap);
    dst[cap - 1] = '\0';
}

/* The threads of worker I; adds their requests and time to *reqs, *us. */
static void master_worker_threads(const struct master *m, unsigned i, uint64_t now_us,
                                  struct json *j, uint64_t *reqs, uint64_t *us)
{
    json_key(j, "threads");
    json_array_begin(j);
    for (unsigned t = 0; t < m->cfg->threads; t++) {
        const struct sb_thread *th = scoreboard_thread(&m->sb, i, t);
        uint64_t n = atomic_load_explicit(&th->requests, memory_order_relaxed);
        *reqs += n;
        *us += atomic_load_explicit(&th->busy_us, memory_order_relaxed);
        bool busy = m->workers[i].pid &&
                    atomic_load_explicit(&th->state, memory_order_relaxed) == SB_THREAD_BUSY;
        json_object_begin(j);
        json_kv_uint(j, "index", t);
        json_kv_string(j, "state", busy ? "busy" : "idle");
        json_kv_uint(j, "requests", n);
        if (busy) {
            char method[sizeof(th->method)], uri[sizeof(th->uri)];
            master_copy_field(method, th->method, sizeof(method));
            master_copy_field(uri, th->uri, sizeof(uri));
            uint64_t start = atomic_load_explicit(&th->request_start_us, memory_order_relaxed);
            json_kv_string(j, "method", method);
            json_kv_string(j, "uri", uri);
            json_kv_uint(j, "elapsed_ms", now_us > start ? (now_us - start) / 1000 : 0);
        }
        json_object_end(j);
    }
    json_array_end(j);
}

static void master_cmd_workers(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    struct master *m = owner;
    uint64_t now_us = clock_now_us(), now_ms = clock_now_ms();
    /* The current bank up to its target (or further while scaled-down
     * workers stop), and the workers of another generation still alive. */
    unsigned shown = atomic_load(&m->sb.hdr->slots);
    if (shown < master_slot(m, m->target) && m->pool.mode == POOL_STATIC)
        shown = master_slot(m, m->target);
    if (shown < m->slots_used)
        shown = m->slots_used;
    master_reply_ok(j);
    json_kv_string(j, "pool", config_pool_mode_name(m->pool.mode));
    json_kv_uint(j, "processes", master_pool_processes(m));
    json_kv_uint(j, "threads", m->cfg->threads);
    json_key(j, "workers");
    json_array_begin(j);
    for (unsigned i = 0; i < shown; i++) {
        const struct master_worker *mw = &m->workers[i];
        const struct sb_worker *w = &m->sb.workers[i];
        bool current = master_is_current(m, i);
        bool in_target = m->pool.mode == POOL_STATIC && i < master_slot(m, m->target);
        bool in_pool = current && (in_target || i < atomic_load(&m->sb.hdr->slots));
        if (!mw->pid && !in_pool)
            continue;
        unsigned gen = m->reload.generation + (m->reload.phase == RELOAD_STARTING);
        json_object_begin(j);
        json_kv_uint(j, "index", i);
        json_kv_uint(j, "generation", current ? gen : gen - 1);
        json_kv_int(j, "pid", mw->pid);
        json_kv_string(j, "state", master_worker_state(m, i));
        json_kv_uint(j, "requests", atomic_load_explicit(&w->requests, memory_order_relaxed));
        json_kv_uint(j, "errors", atomic_load_explicit(&w->errors, memory_order_relaxed));
        json_kv_uint(j, "accepted", atomic_load_explicit(&w->accepted, memory_order_relaxed));
        json_kv_int(j, "conns",
                    mw->pid ? atomic_load_explicit(&w->conns, memory_order_relaxed) : 0);
        json_kv_uint(j, "busy", mw->pid ? atomic_load_explicit(&w->busy, memory_order_relaxed) : 0);
        json_kv_uint(j, "requests_in_flight", mw->pid ? scoreboard_in_flight(&m->sb, i) : 0);
        json_kv_uint(j, "respawns", atomic_load_explicit(&w->respawns, memory_order_relaxed));
        json_key(j, "started_at");
        if (mw->pid)
            json_int(j, atomic_load_explicit(&w->started_at, memory_order_relaxed));
        else
            json_null(j);
        json_key(j, "rss_kb");
        long rss = mw->pid ? master_rss_kb(mw->pid) : -1;
        if (rss >= 0)
            json_int(j, rss);
        else
            json_null(j);
        if (!mw->pid && mw->respawn_at_ms)
            json_kv_uint(j, "respawn_in_ms",
                         mw->respawn_at_ms > now_ms ? mw->respawn_at_ms - now_ms : 0);
        uint64_t reqs = 0, us = 0;
        master_worker_threads(m, i, now_us, j, &reqs, &us);
        json_key(j, "avg_ms");
        if (reqs)
            json_double(j, (double)us / (double)reqs / 1000.0, 3);
        else
            json_null(j);
        json_object_end(j);
    }
    json_array_end(j);
    json_object_end(j);
}

/* ---- actions ---- */

static void master_cmd_scale(void *owner, const struct control_request *req, struct json *j)
{
    struct master *m = owner;
    unsigned old = m->target;
    long target = req->scale_n;
    if (req->scale_op == CONTROL_SCALE_ADD)
        target = (long)old + (long)req->scale_n;
    else if (req->scale_op == CONTROL_SCALE_SUB)
        target = (long)old - (long)req->scale_n;
    char err[256];
    if (target < 1) {
        control_reply_error(j, "scale: the pool needs at least 1 process (it has %u)", old);
        return;
    }
    if (master_scale(m, (unsigned)target, "corralctl scale", err, sizeof(err)) < 0) {
        control_reply_error(j, "scale: %s", err);
        return;
    }
    master_reply_ok(j);
    json_kv_uint(j, "processes", m->target);
    json_kv_uint(j, "previous", old);
    json_kv_uint(j, "max_processes", m->max_workers);
    json_object_end(j);
}

/* stop (graceful) and quit (NOW): the reply says what is left to stop. */
static void master_cmd_stopping(struct master *m, bool now, struct json *j)
{
    log_msg(LOG_INFO, "corralctl %s: %s", now ? "quit" : "stop",
            now ? "stopping now" : "graceful stop");
    master_stop(m, now);
    master_reply_ok(j);
    json_kv_string(j, "state", master_state_name(m));
    json_kv_uint(j, "workers", m->live);
    json_object_end(j);
}

static void master_cmd_stop(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    master_cmd_stopping(owner, false, j);
}

static void master_cmd_quit(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    master_cmd_stopping(owner, true, j);
}

static void master_cmd_reopen_logs(void *owner, const struct control_request *req, struct json *j)
{
    (void)req;
    char err[512];
    int n = master_reopen_logs(owner, err, sizeof(err));
    if (n < 0) {
        control_reply_error(j, "reopen-logs: %s", err);
        return;
    }
    master_reply_ok(j);
    json_kv_int(j, "workers_signalled", n);
    json_object_end(j);
}

/* reload and chain-reload: the reply says the new generation started (or
 * why not); whether its workers came up is in status "reload" later. */
static void master_cmd_reload(void *owner, const struct control_request *req, struct json *j)
{
    struct master *m = owner;
    bool chain = strcmp(req->cmd->name, "chain-reload") == 0;
    char err[1280], note[256], why[32];
    snprintf(why, sizeof(why), "corralctl %s", req->cmd->name);
    if (master_reload(m, chain, why, err, sizeof(err), note, sizeof(note)) < 0) {
        control_reply_error(j, "%s: %s", req->cmd->name, err);
        return;
    }
    master_reply_ok(j);
    json_kv_uint(j, "generation", m->reload.generation + 1);
    json_kv_uint(j, "previous", m->reload.generation);
    json_kv_uint(j, "processes", m->reload.start_count); /* the new generation starts with */
    json_kv_string(j, "mode", chain ? "chain" : "all");
    json_key(j, "kept");
    if (note[0])
        json_string(j, note);
    else
        json_null(j);
    json_object_end(j);
}

static void master_cmd_help(void *owner, const struct control_request *req, struct json *j)
{
    (void)owner;
    (void)req;
    master_reply_ok(j);
    json_key(j, "commands");
    json_array_begin(j);
    for (size_t i = 0; i < master_command_count; i++)
        json_string(j, master_commands[i].usage);
    json_array_end(j);
    json_object_end(j);
}

const struct control_command master_commands[] = {
    {.name = "status", .arg = CONTROL_ARG_NONE, .usage = "status", .run = master_cmd_status},
    {.name = "workers", .arg = CONTROL_ARG_NONE, .usage = "workers", .run = master_cmd_workers},
    {.name = "scale", .arg = CONTROL_ARG_SCALE, .usage = "scale N|+N|-N", .run = master_cmd_scale},
    {.name = "stop", .arg = CONTROL_ARG_NONE, .usage = "stop", .run = master_cmd_stop},
    {.name = "quit", .arg = CONTROL_ARG_NONE, .usage = "quit", .run = master_cmd_quit},
    {.name = "reopen-logs",
     .arg = CONTROL_ARG_NONE,
     .usage = "reopen-logs",
     .run = master_cmd_reopen_logs},
    {.name = "reload", .arg = CONTROL_ARG_NONE, .usage = "reload", .run = master_cmd_reload},
    {.name = "chain-reload",
     .arg = CONTROL_ARG_NONE,
     .usage = "chain-reload",
     .run = master_cmd_reload},
    {.name = "help", .arg = CONTROL_ARG_NONE, .usage = "help", .run = master_cmd_help},
};

const size_t master_command_count = sizeof(master_commands) / sizeof(master_commands[0]);
