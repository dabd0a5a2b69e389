/*
 * cgi_script.c — resolving and checking the script of a request (see
 * cgi_script.h).
 */
#include "cgi_script.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether the resolved PATH is ROOT or lies under it. */
static bool cgi_script_under(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return true;
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

enum cgi_script_verdict cgi_script_resolve(const char *root, const char *name, struct cgi_script *s)
{
    char try[PATH_MAX];
    size_t n = strlen(name);
    if (n == 0 || name[0] != '/' || n >= sizeof(try))
        return CGI_SCRIPT_NOT_FOUND;
    memcpy(try, name, n + 1);
    s->tail[0] = '\0';
    /* Walk back from the end until a prefix of the name exists. */
    while (!realpath(try, s->path)) {
        if (errno != ENOENT && errno != ENOTDIR)
            return CGI_SCRIPT_NOT_FOUND;
        char *slash = strrchr(try, '/');
        if (!slash || slash == try)
            return CGI_SCRIPT_NOT_FOUND;
        size_t tl = strlen(s->tail), cut = strlen(slash);
        if (tl + cut >= sizeof(s->tail))
            return CGI_SCRIPT_NOT_FOUND;
        memmove(s->tail + cut, s->tail, tl + 1);
        memcpy(s->tail, slash, cut);
        *slash = '\0';
    }
    if (!cgi_script_under(root, s->path))
        return CGI_SCRIPT_OUTSIDE;
    struct stat st;
    if (stat(s->path, &st) < 0)
        return CGI_SCRIPT_NOT_FOUND;
    if (S_ISDIR(st.st_mode))
        return s->tail[0] ? CGI_SCRIPT_NOT_FOUND : CGI_SCRIPT_DIRECTORY;
    if (!S_ISREG(st.st_mode))
        return CGI_SCRIPT_NOT_FILE;
    if (!(st.st_mode & 0111) || access(s->path, X_OK) < 0)
        return CGI_SCRIPT_NOT_EXEC;
    if (st.st_mode & (S_ISUID | S_ISGID))
        return CGI_SCRIPT_SET_ID;
    size_t pl = strlen(s->path);
    memcpy(s->dir, s->path, pl + 1);
    char *slash = strrchr(s->dir, '/');
    if (slash == s->dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    return CGI_SCRIPT_OK;
}

int cgi_script_status(enum cgi_script_verdict v)
{
    switch (v) {
    case CGI_SCRIPT_OK:
        return 200;
    case CGI_SCRIPT_NO_NAME:
    case CGI_SCRIPT_NOT_FOUND:
        return 404;
    default:
        return 403;
    }
}

const char *cgi_script_reason(enum cgi_script_verdict v)
{
    switch (v) {
    case CGI_SCRIPT_OK:
        return "ok";
    case CGI_SCRIPT_NO_NAME:
        return "no SCRIPT_FILENAME (nor DOCUMENT_ROOT and SCRIPT_NAME) from the front end";
    case CGI_SCRIPT_NOT_FOUND:
        return "no such script";
    case CGI_SCRIPT_OUTSIDE:
        return "outside the --cgi root (after resolving symlinks and ..)";
    case CGI_SCRIPT_DIRECTORY:
        return "a directory";
    case CGI_SCRIPT_NOT_FILE:
        return "not a regular file";
    case CGI_SCRIPT_NOT_EXEC:
        return "not executable";
    case CGI_SCRIPT_SET_ID:
        return "set-user-ID or set-group-ID (it would not run as the pool's user)";
    }
    return "?";
}
