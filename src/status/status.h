/*
 * status.h — the pool's status, built from the scoreboard alone, so that
 * both the master (control socket `status`) and a worker (the status page,
 * --status-path) can build it: JSON members, or the OpenMetrics text
 * format for Prometheus.
 *
 * Thread rules: read-only on the scoreboard (relaxed loads); the listen
 * queue depth is read from the kernel (listen_queue_depth, no blocking).
 * Any thread may call these with its own output buffer.
 */
#ifndef CORRAL_STATUS_H
#define CORRAL_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/json.h"
#include "os/listen.h"
#include "core/scoreboard.h"

struct status_src {
    const struct config *cfg;
    const struct scoreboard *sb;
    const struct listener *listeners;
    size_t listener_count;
};

/* Write the status members (version, pid, started_at, uptime_s, state,
 * pool, totals, reload, listeners, in_flight) into the JSON object J has open; the
 * caller closes it. */
void status_json_members(const struct status_src *src, struct json *j);

/* A growing text buffer for the OpenMetrics exposition. */
struct status_text {
    char *buf;
    size_t len, cap;
    bool failed; /* out of memory: the text is incomplete */
};

/* Append the whole OpenMetrics exposition (ending with "# EOF\n") to T.
 * Returns 0, or -1 when memory ran out (T->failed). Free with
 * status_text_free. */
int status_openmetrics(const struct status_src *src, struct status_text *t);
void status_text_free(struct status_text *t);

/* The Content-Type of the OpenMetrics text format. */
#define STATUS_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

#endif
