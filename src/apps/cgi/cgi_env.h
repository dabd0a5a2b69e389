/*
 * cgi_env.h — the environment of a CGI script (RFC 3875 4.1): built per
 * run from the request's params, filtered.
 *
 * What passes from the front end: the RFC 3875 meta-variables (AUTH_TYPE,
 * CONTENT_LENGTH, CONTENT_TYPE, PATH_INFO, PATH_TRANSLATED, QUERY_STRING,
 * REMOTE_ADDR, REMOTE_HOST, REMOTE_IDENT, REMOTE_USER, REQUEST_METHOD,
 * SCRIPT_NAME, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, SERVER_SOFTWARE),
 * the client's headers as HTTP_* except HTTP_PROXY (httpoxy: a client must
 * not choose the script's proxy), the usual extensions (DOCUMENT_ROOT,
 * DOCUMENT_URI, REQUEST_URI, REQUEST_SCHEME, HTTPS, REMOTE_PORT,
 * SERVER_ADDR) and the names listed with --cgi-param. Any other param is
 * dropped (a front end's LD_PRELOAD or PATH never reaches a script).
 * corral sets: GATEWAY_INTERFACE=CGI/1.1, SCRIPT_FILENAME (the resolved
 * script), PATH_INFO and SCRIPT_NAME when the script was found by walking
 * back (cgi_script.h), PATH_TRANSLATED (DOCUMENT_ROOT + PATH_INFO) when the
 * front end gave none, REDIRECT_STATUS=200 (php-cgi asks for it), and from
 * its own environment PATH (or a default) and the --env variables.
 */
#ifndef CORRAL_CGI_ENV_H
#define CORRAL_CGI_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "corral.h"

/* A local redirect's re-run (RFC 3875 6.2.2): these replace the request's. */
struct cgi_env_redirect {
    const char *uri;   /* REQUEST_URI: the Location: value */
    const char *query; /* QUERY_STRING */
};

/* What corral itself adds, the same for every run of one adapter. */
struct cgi_env_base {
    char **env; /* "NAME=VALUE": PATH, then --env's */
    size_t count;
    char **params; /* --cgi-param names */
    size_t params_count;
};

/* One run's environment: envp is NULL-terminated; free with cgi_env_free. */
struct cgi_env {
    char **envp;
    size_t n, cap;
};

/*
 * Build the environment of one run of SCRIPT (resolved) for REQ.
 * SCRIPT_NAME and PATH_INFO are given (NULL: the request's); REDIR is NULL
 * for the request itself. Returns 0, or -1 when out of memory.
 */
int cgi_env_build(struct cgi_env *e, corral_request *req, const struct cgi_env_base *base,
                  const char *script, const char *script_name, const char *path_info,
                  const struct cgi_env_redirect *redir);

void cgi_env_free(struct cgi_env *e);

/* Whether NAME (of LEN bytes) is a param that passes to scripts (see above). */
bool cgi_env_passes(const struct cgi_env_base *base, const char *name, size_t len);

#endif
