/*
 * cgi_env.c — the environment of a CGI script (see cgi_env.h).
 */
#include "cgi_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/request.h"

/* The params that pass from the front end as they are. */
static const char *const cgi_env_allowed[] = {
    "AUTH_TYPE",       "CONTENT_LENGTH", "CONTENT_TYPE", "PATH_INFO",    "PATH_TRANSLATED",
    "QUERY_STRING",    "REMOTE_ADDR",    "REMOTE_HOST",  "REMOTE_IDENT", "REMOTE_USER",
    "REQUEST_METHOD",  "SCRIPT_NAME",    "SERVER_NAME",  "SERVER_PORT",  "SERVER_PROTOCOL",
    "SERVER_SOFTWARE", "DOCUMENT_ROOT",  "DOCUMENT_URI", "REQUEST_URI",  "REQUEST_SCHEME",
    "HTTPS",           "REMOTE_PORT",    "SERVER_ADDR",
};

/* Names corral sets itself (a front end's value is replaced). */
static const char *const cgi_env_own[] = {
    "GATEWAY_INTERFACE", "SCRIPT_FILENAME", "REDIRECT_STATUS", "PATH", "SCRIPT_NAME", "PATH_INFO",
};

/* Names a redirect's re-run replaces or drops (no body). */
static const char *const cgi_env_redirected[] = {
    "REQUEST_METHOD", "QUERY_STRING", "REQUEST_URI",     "DOCUMENT_URI",
    "CONTENT_LENGTH", "CONTENT_TYPE", "PATH_TRANSLATED",
};

#define CGI_ENV_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool cgi_env_in(const char *const *list, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(list[i]) == len && memcmp(list[i], name, len) == 0)
            return true;
    }
    return false;
}

bool cgi_env_passes(const struct cgi_env_base *base, const char *name, size_t len)
{
    if (len == 0 || memchr(name, '=', len))
        return false;
    if (len > 5 && memcmp(name, "HTTP_", 5) == 0)
        return !(len == 10 && memcmp(name, "HTTP_PROXY", 10) == 0);
    if (cgi_env_in(cgi_env_allowed, CGI_ENV_COUNT(cgi_env_allowed), name, len))
        return true;
    for (size_t i = 0; i < base->params_count; i++) {
        if (strlen(base->params[i]) == len && memcmp(base->params[i], name, len) == 0)
            return true;
    }
    return false;
}

/* Append NAME=VALUE (NAME of NLEN bytes, VALUE of VLEN). */
static int cgi_env_add(struct cgi_env *e, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        char **bigger = realloc(e->envp, cap * sizeof(*bigger));
        if (!bigger)
            return -1;
        e->envp = bigger;
        e->cap = cap;
    }
    char *s = malloc(nlen + vlen + 2);
    if (!s)
        return -1;
    memcpy(s, name, nlen);
    s[nlen] = '=';
    memcpy(s + nlen + 1, value, vlen);
    s[nlen + 1 + vlen] = '\0';
    e->envp[e->n++] = s;
    e->envp[e->n] = NULL;
    return 0;
}

static int cgi_env_set(struct cgi_env *e, const char *name, const char *value)
{
    return cgi_env_add(e, name, strlen(name), value, strlen(value));
}

int cgi_env_build(struct cgi_env *e, corral_request *req, const struct cgi_env_base *base,
                  const char *script, const char *script_name, const char *path_info,
                  const struct cgi_env_redirect *redir)
{
    e->envp = NULL;
    e->n = e->cap = 0;
    size_t n = corral_param_count(req);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        request_param_at(req, i, &name, &nlen, &value, &vlen);
        if (!cgi_env_passes(base, name, nlen) ||
            cgi_env_in(cgi_env_own, CGI_ENV_COUNT(cgi_env_own), name, nlen) ||
            (redir &&
             cgi_env_in(cgi_env_redirected, CGI_ENV_COUNT(cgi_env_redirected), name, nlen)))
            continue;
        if (cgi_env_add(e, name, nlen, value, vlen) < 0)
            goto fail;
    }
    if (!script_name)
        script_name = corral_param(req, "SCRIPT_NAME");
    if (!path_info)
        path_info = corral_param(req, "PATH_INFO");
    const char *docroot = corral_param(req, "DOCUMENT_ROOT");
    if (cgi_env_set(e, "GATEWAY_INTERFACE", "CGI/1.1") < 0 ||
        cgi_env_set(e, "SCRIPT_FILENAME", script) < 0 ||
        cgi_env_set(e, "REDIRECT_STATUS", "200") < 0 ||
        cgi_env_set(e, "SCRIPT_NAME", script_name ? script_name : "") < 0 ||
        (path_info && path_info[0] && cgi_env_set(e, "PATH_INFO", path_info) < 0))
        goto fail;
    if (!corral_param(req, "SERVER_SOFTWARE") && cgi_env_set(e, "SERVER_SOFTWARE", "corral") < 0)
        goto fail;
    if (path_info && path_info[0] && docroot && (redir || !corral_param(req, "PATH_TRANSLATED"))) {
        size_t dl = strlen(docroot);
        while (dl > 1 && docroot[dl - 1] == '/')
            dl--;
        char *pt = malloc(dl + strlen(path_info) + 1);
        if (!pt)
            goto fail;
        memcpy(pt, docroot, dl);
        strcpy(pt + dl, path_info);
        int rc = cgi_env_set(e, "PATH_TRANSLATED", pt);
        free(pt);
        if (rc < 0)
            goto fail;
    }
    if (redir && (cgi_env_set(e, "REQUEST_METHOD", "GET") < 0 ||
                  cgi_env_set(e, "REQUEST_URI", redir->uri) < 0 ||
                  cgi_env_set(e, "QUERY_STRING", redir->query) < 0))
        goto fail;
    for (size_t i = 0; i < base->count; i++) {
        const char *eq = strchr(base->env[i], '=');
        if (eq &&
            cgi_env_add(e, base->env[i], (size_t)(eq - base->env[i]), eq + 1, strlen(eq + 1)) < 0)
            goto fail;
    }
    return 0;
fail:
    cgi_env_free(e);
    return -1;
}

void cgi_env_free(struct cgi_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->envp[i]);
    free(e->envp);
    e->envp = NULL;
    e->n = e->cap = 0;
}
