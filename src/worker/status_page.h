/*
 * status_page.h — the status page (--status-path): a request for that path
 * is answered by corral in the worker, before the app, with the status of
 * status.c as JSON, or as OpenMetrics text with ?openmetrics.
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

/* Whether REQ asks for the status page of CFG (false when it is off). */
bool status_page_wanted(const struct config *cfg, corral_request *req);

/* Answer REQ with the status of SRC. Returns what a handler returns (0, or
 * negative when the response could not be written). Any thread. */
int status_page_serve(const struct status_src *src, corral_request *req);

#endif
