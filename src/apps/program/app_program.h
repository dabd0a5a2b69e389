/*
 * app_program.h — the adapter of existing FastCGI programs
 * (--fastcgi-program "CMD ARGS", --program-processes N): corral's workers
 * accept the front end's connections and forward each request to an idle
 * program (program_table.h, program_forward.h); the master starts and
 * supervises the programs (src/master/master_programs.c) from what
 * app_program_pool returns. The programs run as the master does: it dropped
 * to --uid/--gid (src/main.c) before the app was loaded.
 */
#ifndef CORRAL_APP_PROGRAM_H
#define CORRAL_APP_PROGRAM_H

#include <stdbool.h>
#include <sys/types.h>

#include "apps/app.h"
#include "program_table.h"

/* What the master needs to run the programs of an app. */
struct program_pool {
    struct program_table *table;
    char **argv;    /* the command split at blanks, NULL-terminated */
    char *chdir;    /* --chdir: the programs start there (NULL = stay) */
    uid_t sock_uid; /* the sockets' owner (-1 = as created) */
    gid_t sock_gid;
    unsigned backlog;      /* of each program's socket */
    unsigned max_requests; /* recycle a program after this many (0 = never) */
    unsigned max_rss_mib;  /* ... or above this RSS (0 = never) */
    unsigned harakiri_ms;  /* a request claim older than this + grace: killed */
    unsigned graceful_ms;  /* SIGTERM, then SIGKILL after this */
    bool supervised;       /* the master took it (master_programs.c) */
    bool retired;          /* its app was unloaded: stop the programs, then free */
};

/* The programs of APP, or NULL when APP is not a FastCGI program app. */
struct program_pool *app_program_pool(struct app *app);

/* Free a retired pool (its table, sockets and directory). In the master,
 * once none of its programs runs. */
void app_program_pool_free(struct program_pool *pool);

extern const struct app_ops app_program_ops;

#endif
