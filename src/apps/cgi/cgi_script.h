/*
 * cgi_script.h — which file a CGI request runs: the name the front end
 * gives (SCRIPT_FILENAME, or DOCUMENT_ROOT + SCRIPT_NAME) resolved with
 * realpath(3), so symlinks and ".." are followed before the check that the
 * script lies under --cgi ROOT. A name whose tail does not exist is walked
 * back to the script, the tail becoming PATH_INFO (as Apache's mod_cgi and
 * fcgiwrap do: /cgi-bin/git-http-backend/repo.git/info/refs).
 *
 * Pure of logging: the caller logs the verdict with the request.
 */
#ifndef CORRAL_CGI_SCRIPT_H
#define CORRAL_CGI_SCRIPT_H

#include <limits.h>
#include <stddef.h>

enum cgi_script_verdict {
    CGI_SCRIPT_OK,
    CGI_SCRIPT_NO_NAME,   /* no SCRIPT_FILENAME, nor DOCUMENT_ROOT + SCRIPT_NAME: 404 */
    CGI_SCRIPT_NOT_FOUND, /* nothing there (or a directory with a tail): 404 */
    CGI_SCRIPT_OUTSIDE,   /* resolved outside ROOT: 403 */
    CGI_SCRIPT_DIRECTORY, /* a directory: 403 */
    CGI_SCRIPT_NOT_FILE,  /* a device, a socket, a FIFO: 403 */
    CGI_SCRIPT_NOT_EXEC,  /* not executable by the worker's user: 403 */
    CGI_SCRIPT_SET_ID,    /* set-user-ID or set-group-ID: it would not run as the pool's user */
};

struct cgi_script {
    char path[PATH_MAX]; /* the script, resolved */
    char dir[PATH_MAX];  /* its directory: the script's working directory */
    char tail[PATH_MAX]; /* the part of the name past the script ("" or "/a/b") */
};

/*
 * Resolve NAME (an absolute path) against ROOT (resolved, without a
 * trailing slash unless it is "/"). Returns the verdict; on CGI_SCRIPT_OK
 * *S is filled. Reads the file system (realpath, stat, access).
 */
enum cgi_script_verdict cgi_script_resolve(const char *root, const char *name,
                                           struct cgi_script *s);

/* The HTTP status of a verdict (200 for CGI_SCRIPT_OK) and a few words. */
int cgi_script_status(enum cgi_script_verdict v);
const char *cgi_script_reason(enum cgi_script_verdict v);

#endif
