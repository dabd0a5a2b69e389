/*
 * status_page.c — the status page (see status_page.h).
 */
#include "status_page.h"

#include <stdio.h>
#include <string.h>

#define STATUS_PAGE_MAX_JSON (1u << 20)

/* Whether the path of URI (up to '?') is PATH. */
static bool status_page_same_path(const char *uri, const char *path)
{
    size_t n = strcspn(uri, "?");
    return n == strlen(path) && memcmp(uri, path, n) == 0;
}

bool status_page_wanted(const struct config *cfg, corral_request *req)
{
    const char *path = cfg->status_path;
    if (!path)
        return false;
    const char *uri = req->uri;
    if (!uri)
        uri = corral_param(req, "DOCUMENT_URI");
    if (uri)
        return status_page_same_path(uri, path);
    const char *script = corral_param(req, "SCRIPT_NAME"), *info = corral_param(req, "PATH_INFO");
    if (!script)
        script = "";
    if (!info)
        info = "";
    size_t sn = strlen(script);
    return strncmp(path, script, sn) == 0 && strcmp(path + sn, info) == 0;
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
