/*
 * status.c — the pool's status from the scoreboard (see status.h): the
 * JSON of the control socket's `status` and of the status page, and the
 * OpenMetrics exposition of the status page.
 */
#include "status.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/clock.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define STATUS_LOAD(p) atomic_load_explicit((p), memory_order_relaxed)

/* What the status adds up over the slots of the scoreboard. */
struct status_totals {
    uint64_t requests, errors, accepted, respawns;
    unsigned live, running, idle, threads_live, threads_busy, in_flight;
    unsigned other_live; /* workers of another generation (reloads) */
};

/* Slots of one generation's bank (the scoreboard has two). */
static unsigned status_bank_size(const struct scoreboard *sb)
{
    return sb->hdr->bank_size ? sb->hdr->bank_size : sb->hdr->max_workers;
}

static void status_sum(const struct scoreboard *sb, struct status_totals *t)
{
    memset(t, 0, sizeof(*t));
    unsigned base = STATUS_LOAD(&sb->hdr->bank_base), size = status_bank_size(sb);
    for (unsigned i = 0; i < sb->hdr->max_workers; i++) {
        const struct sb_worker *w = &sb->workers[i];
        t->requests += STATUS_LOAD(&w->requests);
        t->errors += STATUS_LOAD(&w->errors);
        t->accepted += STATUS_LOAD(&w->accepted);
        t->respawns += STATUS_LOAD(&w->respawns);
        if (!STATUS_LOAD(&w->pid))
            continue;
        if (i < base || i >= base + size) {
            t->other_live++; /* another generation, still stopping */
            continue;
        }
        t->live++;
        uint32_t busy = STATUS_LOAD(&w->busy);
        bool running = STATUS_LOAD(&w->state) == SB_WORKER_RUNNING;
        t->running += running;
        t->idle += running && busy == 0;
        t->threads_live += STATUS_LOAD(&w->threads_live);
        t->threads_busy += busy;
        t->in_flight += scoreboard_in_flight(sb, i);
    }
}

static double status_uptime_s(const struct scoreboard *sb)
{
    uint64_t start = STATUS_LOAD(&sb->hdr->started_mono_ms), now = clock_now_ms();
    return now > start ? (double)(now - start) / 1000.0 : 0.0;
}

static const char *status_master_state(uint32_t s)
{
    switch (s) {
    case SB_MASTER_RUNNING:
        return "running";
    case SB_MASTER_STOPPING:
        return "stopping";
    case SB_MASTER_STOP_DELAY:
        return "stop-delay";
    default:
        return "stopping-now";
    }
}

/* Connections listener LI accepted, over every slot. */
static uint64_t status_accepted(const struct scoreboard *sb, size_t li)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < sb->hdr->max_workers; i++)
        n += STATUS_LOAD(scoreboard_accepted(sb, i, li));
    return n;
}

static void status_json_pool(const struct status_src *src, const struct status_totals *t,
                             struct json *j)
{
    const struct config *cfg = src->cfg;
    const struct sb_header *h = src->sb->hdr;
    enum pool_mode mode = config_pool_mode(cfg);
    json_key(j, "pool");
    json_object_begin(j);
    json_kv_string(j, "name", config_pool_name(cfg));
    json_kv_string(j, "mode", config_pool_mode_name(mode));
    json_kv_uint(j, "processes", mode == POOL_STATIC ? STATUS_LOAD(&h->pool_target) : t->live);
    json_kv_uint(j, "max_processes", status_bank_size(src->sb));
    json_kv_uint(j, "processes_live", t->live);
    json_kv_uint(j, "processes_running", t->running);
    json_kv_uint(j, "processes_idle", t->idle);
    if (mode == POOL_DYNAMIC) {
        json_kv_uint(j, "start_processes", config_start_processes(cfg));
        json_kv_uint(j, "min_spare", cfg->min_spare);
        json_kv_uint(j, "max_spare", cfg->max_spare);
    } else if (mode == POOL_ONDEMAND) {
        json_kv_double(j, "idle_worker_timeout_s", cfg->idle_worker_timeout_ms / 1000.0, 3);
    }
    if (mode != POOL_STATIC)
        json_kv_uint(j, "spawn_rate", STATUS_LOAD(&h->spawn_rate));
    json_kv_uint(j, "max_reached", STATUS_LOAD(&h->max_reached));
    json_kv_uint(j, "threads", cfg->threads);
    json_kv_uint(j, "threads_live", t->threads_live);
    json_kv_uint(j, "threads_busy", t->threads_busy);
    json_kv_uint(j, "requests_in_flight", t->in_flight);
    json_object_end(j);
}

/* Calls FN for each live worker of the generation serving. */
static void status_each_worker(const struct scoreboard *sb,
                               void (*fn)(const struct scoreboard *sb, unsigned i, void *arg),
                               void *arg)
{
    unsigned base = STATUS_LOAD(&sb->hdr->bank_base), size = status_bank_size(sb);
    for (unsigned i = base; i < base + size && i < sb->hdr->max_workers; i++)
        if (STATUS_LOAD(&sb->workers[i].pid))
            fn(sb, i, arg);
}

static void status_json_in_flight_one(const struct scoreboard *sb, unsigned i, void *arg)
{
    struct json *j = arg;
    json_object_begin(j);
    json_kv_uint(j, "index", i);
    json_kv_int(j, "pid", STATUS_LOAD(&sb->workers[i].pid));
    json_kv_uint(j, "requests_in_flight", scoreboard_in_flight(sb, i));
    json_object_end(j);
}

/* "in_flight": the requests each live worker of the generation serving is in
 * (its busy threads, and for ASGI the requests its event loop holds). */
static void status_json_in_flight(const struct scoreboard *sb, struct json *j)
{
    json_key(j, "in_flight");
    json_array_begin(j);
    status_each_worker(sb, status_json_in_flight_one, j);
    json_array_end(j);
}

static void status_json_listeners(const struct status_src *src, struct json *j)
{
    json_key(j, "listeners");
    json_array_begin(j);
    for (size_t li = 0; li < src->listener_count; li++) {
        const struct listener *l = &src->listeners[li];
        json_object_begin(j);
        json_kv_string(j, "address", l->name);
        json_kv_string(j, "protocol", l->addr.codec->name);
        json_kv_uint(j, "accepted", status_accepted(src->sb, li));
        unsigned depth;
        json_key(j, "queue");
        if (l->fd >= 0 && listen_queue_depth(l, &depth) == 0)
            json_uint(j, depth);
        else
            json_null(j); /* closed (stopping) or not readable */
        json_kv_uint(j, "backlog", l->backlog);
        json_object_end(j);
    }
    json_array_end(j);
}

static const char *status_reload_phase(uint32_t p)
{
    /* enum master_reload_phase, and 4: idle, but the workers serving
     * cannot be replaced (master_state.h) */
    static const char *const names[] = {"idle", "starting", "draining", "checking", "stranded"};
    return p < sizeof(names) / sizeof(names[0]) ? names[p] : "idle";
}

/* The generation serving, the reloads so far and how the last one went. */
static void status_json_reload(const struct scoreboard *sb, const struct status_totals *t,
                               struct json *j)
{
    const struct sb_header *h = sb->hdr;
    json_key(j, "reload");
    json_object_begin(j);
    json_kv_uint(j, "generation", STATUS_LOAD(&h->generation));
    json_kv_string(j, "state", status_reload_phase(STATUS_LOAD(&h->reload_phase)));
    json_kv_uint(j, "reloads", STATUS_LOAD(&h->reloads));
    json_kv_uint(j, "failed", STATUS_LOAD(&h->reload_failed));
    json_kv_uint(j, "other_live", t->other_live);
    json_key(j, "last");
    uint32_t ok = STATUS_LOAD(&h->reload_last_ok);
    if (ok > 1) {
        json_null(j);
    } else {
        char last[sizeof(h->reload_last)];
        for (int tries = 0; tries < 100; tries++) {
            uint32_t seq = atomic_load_explicit(&h->reload_seq, memory_order_acquire);
            memcpy(last, (const char *)h->reload_last, sizeof(last));
            atomic_thread_fence(memory_order_acquire);
            if (!(seq & 1) && seq == STATUS_LOAD(&h->reload_seq))
                break;
        }
        last[sizeof(last) - 1] = '\0';
        json_object_begin(j);
        json_kv_bool(j, "ok", ok == 1);
        json_kv_string(j, "message", last);
        json_object_end(j);
    }
    json_object_end(j);
}

void status_json_members(const struct status_src *src, struct json *j)
{
    const struct sb_header *h = src->sb->hdr;
    struct status_totals t;
    status_sum(src->sb, &t);
    json_kv_string(j, "version", PACKAGE_VERSION);
    json_kv_int(j, "pid", STATUS_LOAD(&h->master_pid));
    json_kv_uint(j, "started_at", STATUS_LOAD(&h->started_at));
    json_kv_double(j, "uptime_s", status_uptime_s(src->sb), 3);
    json_kv_string(j, "state", status_master_state(STATUS_LOAD(&h->master_state)));
    status_json_pool(src, &t, j);

    json_key(j, "totals");
    json_object_begin(j);
    json_kv_uint(j, "requests", t.requests);
    json_kv_uint(j, "errors", t.errors);
    json_kv_uint(j, "accepted", t.accepted);
    json_kv_uint(j, "respawns", t.respawns);
    json_object_end(j);

    status_json_reload(src->sb, &t, j);
    status_json_listeners(src, j);
    status_json_in_flight(src->sb, j);
}

/* ---- OpenMetrics ---- */

static void status_printf(struct status_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void status_printf(struct status_text *t, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = true;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

/* A label value: backslash, double quote and newline escaped. The text
 * format is UTF-8: a byte that is not part of a well-formed sequence (a unix
 * socket path may hold any byte) becomes U+FFFD, as in the JSON. */
static void status_label(struct status_text *t, const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t n = strlen(v);
    for (size_t i = 0; i < n;) {
        size_t len = json_utf8_len(p + i, n - i);
        if (len == 0) {
            status_printf(t, "\xEF\xBF\xBD");
            i++;
        } else if (len > 1) {
            status_printf(t, "%.*s", (int)len, v + i);
            i += len;
        } else {
            if (v[i] == '\\' || v[i] == '"')
                status_printf(t, "\\%c", v[i]);
            else if (v[i] == '\n')
                status_printf(t, "\\n");
            else
                status_printf(t, "%c", v[i]);
            i++;
        }
    }
}

static void status_family(struct status_text *t, const char *name, const char *type,
                          const char *help)
{
    status_printf(t, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

/* A family with one sample and no label. */
static void status_counter(struct status_text *t, const char *name, const char *help, uint64_t v)
{
    status_family(t, name, "counter", help);
    status_printf(t, "%s_total %llu\n", name, (unsigned long long)v);
}

static void status_gauge(struct status_text *t, const char *name, const char *help, double v)
{
    status_family(t, name, "gauge", help);
    if (v == (double)(uint64_t)v)
        status_printf(t, "%s %llu\n", name, (unsigned long long)v);
    else
        status_printf(t, "%s %.3f\n", name, v);
}

static void status_om_listeners(const struct status_src *src, struct status_text *t)
{
    status_family(t, "corral_listener_accepted", "counter",
                  "Connections accepted on the listener.");
    for (size_t li = 0; li < src->listener_count; li++) {
        status_printf(t, "corral_listener_accepted_total{listener=\"");
        status_label(t, src->listeners[li].name);
        status_printf(t, "\"} %llu\n", (unsigned long long)status_accepted(src->sb, li));
    }
    status_family(t, "corral_listen_queue", "gauge",
                  "Connections waiting in the listener's accept queue (kernel).");
    for (size_t li = 0; li < src->listener_count; li++) {
        const struct listener *l = &src->listeners[li];
        unsigned depth;
        if (l->fd < 0 || listen_queue_depth(l, &depth) < 0)
            continue; /* unknown: no sample */
        status_printf(t, "corral_listen_queue{listener=\"");
        status_label(t, l->name);
        status_printf(t, "\"} %u\n", depth);
    }
    status_family(t, "corral_listen_backlog", "gauge", "The listener's accept queue length.");
    for (size_t li = 0; li < src->listener_count; li++) {
        status_printf(t, "corral_listen_backlog{listener=\"");
        status_label(t, src->listeners[li].name);
        status_printf(t, "\"} %u\n", src->listeners[li].backlog);
    }
}

static void status_om_in_flight_one(const struct scoreboard *sb, unsigned i, void *arg)
{
    status_printf(arg, "corral_requests_in_flight{worker=\"%u\"} %u\n", i,
                  scoreboard_in_flight(sb, i));
}

int status_openmetrics(const struct status_src *src, struct status_text *t)
{
    const struct sb_header *h = src->sb->hdr;
    struct status_totals tot;
    status_sum(src->sb, &tot);
    status_family(t, "corral", "info", "The corral version and pool mode.");
    status_printf(t, "corral_info{version=\"%s\",pool=\"%s\",pool_name=\"", PACKAGE_VERSION,
                  config_pool_mode_name(config_pool_mode(src->cfg)));
    status_label(t, config_pool_name(src->cfg));
    status_printf(t, "\"} 1\n");
    status_counter(t, "corral_requests", "Requests served.", tot.requests);
    status_counter(t, "corral_errors", "Malformed requests and failed responses.", tot.errors);
    status_counter(t, "corral_accepted", "Connections accepted.", tot.accepted);
    status_counter(t, "corral_respawns", "Workers started again in their slot.", tot.respawns);
    status_counter(t, "corral_max_processes_reached",
                   "Episodes of connections waiting with the pool at max processes.",
                   STATUS_LOAD(&h->max_reached));
    status_gauge(t, "corral_uptime_seconds", "Seconds since the master started.",
                 status_uptime_s(src->sb));
    status_gauge(t, "corral_workers", "Worker processes running.", tot.live);
    status_gauge(t, "corral_idle_workers", "Running workers with no busy thread.", tot.idle);
    status_gauge(t, "corral_max_workers", "The most worker processes (--max-processes).",
                 status_bank_size(src->sb));
    status_gauge(t, "corral_generation", "The generation of workers serving (1 at start).",
                 STATUS_LOAD(&h->generation));
    status_counter(t, "corral_reloads", "Reloads started.", STATUS_LOAD(&h->reloads));
    status_counter(t, "corral_reloads_failed", "Reloads refused or rolled back.",
                   STATUS_LOAD(&h->reload_failed));
    status_gauge(t, "corral_previous_generation_workers",
                 "Workers of a previous generation still finishing.", tot.other_live);
    status_gauge(t, "corral_threads", "Request threads started.", tot.threads_live);
    status_gauge(t, "corral_busy_threads", "Request threads serving a request.", tot.threads_busy);
    status_family(t, "corral_requests_in_flight", "gauge",
                  "Requests a worker is in: its busy threads, and the requests an ASGI "
                  "event loop holds.");
    status_each_worker(src->sb, status_om_in_flight_one, t);
    status_om_listeners(src, t);
    status_printf(t, "# EOF\n");
    return t->failed ? -1 : 0;
}

void status_text_free(struct status_text *t)
{
    free(t->buf);
    memset(t, 0, sizeof(*t));
}
