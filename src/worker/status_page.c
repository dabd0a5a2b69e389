/*
 * status_page.c — the status page and the health answer (see status_page.h).
 */
#include "status_page.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define STATUS_PAGE_MAX_JSON (1u << 20)

/* Whether the path of URI (up to '?', N bytes) is PATH (NULL: off). */
static bool status_page_same_path(const char *uri, size_t n, const char *path)
{
    return path && n == strlen(path) && memcmp(uri, path, n) == 0;
}

/* Whether SCRIPT_NAME + PATH_INFO (no REQUEST_URI sent) is PATH. */
static bool status_page_same_script(const char *script, const char *info, const char *path)
{
    size_t sn = strlen(script);
    return path && strncmp(path, script, sn) == 0 && strcmp(path + sn, info) == 0;
}

enum status_page_kind status_page_wanted(const struct config *cfg, corral_request *req)
{
    const char *status = cfg->status_path, *health = cfg->health_path;
    if (!status && !health)
        return STATUS_PAGE_NONE;
    const char *uri = req->uri;
    if (!uri)
        uri = corral_param(req, "DOCUMENT_URI");
    if (uri) {
        size_t n = strcspn(uri, "?");
        return status_page_same_path(uri, n, health)   ? STATUS_PAGE_HEALTH
               : status_page_same_path(uri, n, status) ? STATUS_PAGE_STATUS
                                                       : STATUS_PAGE_NONE;
    }
    const char *script = corral_param(req, "SCRIPT_NAME"), *info = corral_param(req, "PATH_INFO");
    if (!script)
        script = "";
    if (!info)
        info = "";
    return status_page_same_script(script, info, health)   ? STATUS_PAGE_HEALTH
           : status_page_same_script(script, info, status) ? STATUS_PAGE_STATUS
                                                           : STATUS_PAGE_NONE;
}

/* Whether the query string has an "openmetrics" parameter (with or without
 * a value). */
static bool status_page_openmetrics(corral_request *req)
{
    const char *q = corral_param(req, "QUERY_STRING");
    while (q && *q) {
        size_t n = strcspn(q, "&");
        size_t name = strcspn(q, "=&");
        if (name == sizeof("openmetrics") - 1 && memcmp(q, "openmetrics", name) == 0)
            return true;
        q += n;
        if (*q == '&')
            q++;
    }
    return false;
}

static int status_page_send(corral_request *req, const char *type, const char *body, size_t len)
{
    char clen[24];
    snprintf(clen, sizeof(clen), "%zu", len);
    corral_add_header(req, "Content-Type", type);
    corral_add_header(req, "Content-Length", clen);
    corral_add_header(req, "Cache-Control", "no-store");
    return corral_write_final(req, body, len);
}

/* The health answer: relaxed loads of the master's published state and
 * this worker's own slot, nothing else (no lock, no allocation). */
int status_page_health(const struct status_src *src, const struct sb_worker *self,
                       corral_request *req)
{
    uint32_t master = atomic_load_explicit(&src->sb->hdr->master_state, memory_order_relaxed);
    uint32_t worker = atomic_load_explicit(&self->state, memory_order_relaxed);
    if (master == SB_MASTER_RUNNING && worker != SB_WORKER_STOPPING)
        return status_page_send(req, "text/plain", "ok\n", 3);
    corral_set_status(req, 503, "Service Unavailable");
    return status_page_send(req, "text/plain", "stopping\n", 9);
}

int status_page_serve(const struct status_src *src, corral_request *req)
{
    int rc;
    if (status_page_openmetrics(req)) {
        struct status_text t = {0};
        if (status_openmetrics(src, &t) < 0) {
            status_text_free(&t);
            return -1;
        }
        rc = status_page_send(req, STATUS_OPENMETRICS_TYPE, t.buf, t.len);
        status_text_free(&t);
        return rc;
    }
    struct json j;
    json_init(&j, STATUS_PAGE_MAX_JSON);
    json_object_begin(&j);
    status_json_members(src, &j);
    json_object_end(&j);
    size_t len;
    const char *text = json_text(&j, &len);
    if (json_failed(&j) || !text) {
        json_free(&j);
        return -1;
    }
    rc = status_page_send(req, "application/json", text, len);
    json_free(&j);
    return rc;
}
