/*
 * status_page.h — the status page (--status-path) and the health answer
 * (--health-path): a request for either path is answered by corral in the
 * worker, before the app (and access-logged like any request). The status
 * page: the status of status.c as JSON, or as OpenMetrics text with
 * ?openmetrics. The health answer: 200 "ok" while the master runs (the
 * scoreboard's master_state) and this worker is not stopping; 503
 * "stopping" during the master's stop delay or stop, or this worker's
 * (recycling, scale-down, idle exit). text/plain, no-store.
 *
 * The path compared is the path of REQUEST_URI (up to '?', not decoded:
 * what the client sent and what nginx's `location =` matches); without a
 * REQUEST_URI, DOCUMENT_URI, then SCRIPT_NAME + PATH_INFO.
 */
#ifndef CORRAL_STATUS_PAGE_H
#define CORRAL_STATUS_PAGE_H

#include <stdbool.h>

#include "conn/request.h"
#include "status/status.h"

enum status_page_kind { STATUS_PAGE_NONE = 0, STATUS_PAGE_STATUS, STATUS_PAGE_HEALTH };

/* Which of CFG's paths REQ asks for: NONE (0, the app's), or the status
 * page or the health answer. Both off: one test, nothing read. */
enum status_page_kind status_page_wanted(const struct config *cfg, corral_request *req);

/* Answer REQ with the status of SRC. Returns what a handler returns (0, or
 * negative when the response could not be written). Any thread. */
int status_page_serve(const struct status_src *src, corral_request *req);

/* Answer REQ with the health of the pool (SRC's scoreboard) and of this
 * worker (SELF, its scoreboard slot): relaxed loads only. Returns as
 * status_page_serve. Any thread. */
int status_page_health(const struct status_src *src, const struct sb_worker *self,
                       corral_request *req);

#endif
