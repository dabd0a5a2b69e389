/*
 * app_native.c — native C handlers: a shared object loaded with dlopen, its
 * ABI version checked before any of its code runs (see include/corral.h).
 *
 * Where the object is loaded follows the WSGI adapter: by default each
 * worker dlopens it after the fork, so a reload's new workers run the file
 * as it is now; with --preload the master loads it once and the workers
 * inherit it. (The master used to dlopen it in both modes; a reload then
 * served the old code, because dlopen of a path that is already loaded
 * returns the loaded object.) The object is still checked at start and at
 * each reload (the check op of app.h), in a short-lived child process, so
 * that a bad file is an error at once and never a respawn loop, and no
 * handler code runs in the master without --preload. This file is the
 * native adapter only; app.c picks the adapter.
 */
#include "app.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "os/child.h"

#define NATIVE_CHECK_MS 10000 /* a constructor that hangs fails the check */

struct app_native {
    char path[4200];            /* as dlopen gets it */
    char symbol[256];
    void *dl;                   /* NULL until loaded (worker, or master with --preload) */
    corral_handler_fn handler;
    int (*init)(void);
    void (*fini)(void);
};

/* dlopen the object, check its ABI, find the handler and the hooks. */
static int app_native_open(struct app_native *n, char *err, size_t errlen)
{
    void *dl = dlopen(n->path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "handler: dlopen(\"%.512s\") failed: %s", n->path, dlerror());
        return -1;
    }
    const unsigned *abi = dlsym(dl, "corral_module_abi");
    if (!abi) {
        snprintf(err, errlen,
                 "handler '%.512s' has no corral_module_abi: build it with CORRAL_MODULE() from "
                 "corral.h",
                 n->path);
        goto fail;
    }
    if (*abi != CORRAL_ABI_VERSION) {
        snprintf(err, errlen, "handler '%.512s' was built for corral ABI %u, this corral has ABI %u",
                 n->path, *abi, CORRAL_ABI_VERSION);
        goto fail;
    }
    *(void **)&n->handler = dlsym(dl, n->symbol);
    if (!n->handler) {
        snprintf(err, errlen, "handler '%.512s' has no symbol '%s'", n->path, n->symbol);
        goto fail;
    }
    *(void **)&n->init = dlsym(dl, "corral_worker_init");
    *(void **)&n->fini = dlsym(dl, "corral_worker_fini");
    n->dl = dl;
    return 0;
fail:
    dlclose(dl);
    return -1;
}

static int app_native_open_child(void *arg, char *msg, size_t msglen)
{
    return app_native_open(arg, msg, msglen);
}

/* Run app_native_open in a child process; its error comes back through a
 * pipe. The caller waits, bounded by NATIVE_CHECK_MS: at start that is
 * main.c before the master's loop exists; on a reload, a child the master
 * forked for it (master_reexec.c), so the master's loop runs meanwhile. */
static int app_native_check(struct app_native *n, char *err, size_t errlen)
{
    pid_t pid;
    int fd;
    if (child_run(app_native_open_child, n, "handler check", &pid, &fd, err, errlen) < 0)
        return -1;
    /* The child's message, or the end of the pipe when it exits. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, NATIVE_CHECK_MS)) < 0 && errno == EINTR) {
    }
    bool timed_out = r == 0;
    char msg[1024];
    size_t len = child_read_message(fd, msg, sizeof(msg));
    close(fd);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        snprintf(err, errlen, "handler '%s': loading it took longer than %d s (a constructor "
                 "that hangs?)", n->path, NATIVE_CHECK_MS / 1000);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (len)
        snprintf(err, errlen, "%s", msg);
    else if (WIFSIGNALED(status))
        snprintf(err, errlen, "handler '%s': loading it killed the process (signal %d, %s)",
                 n->path, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(err, errlen, "handler '%s': loading it failed (exit status %d)", n->path,
                 WEXITSTATUS(status));
    return -1;
}

static int app_native_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    struct app_native *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char path[4096];
    const char *symbol = "handler";
    snprintf(path, sizeof(path), "%s", c->handler);
    /* "path.so:symbol" — the last ':' after the last '/' separates them. */
    char *colon = strrchr(path, ':');
    if (colon && !strchr(colon, '/')) {
        *colon = '\0';
        symbol = c->handler + (colon - path) + 1;
        if (!*symbol) {
            snprintf(err, errlen, "handler '%s': empty symbol name after ':'", c->handler);
            free(n);
            return -1;
        }
    }
    /* A name without a slash would be searched in the library path: make
     * relative paths mean the file the user pointed at. */
    snprintf(n->path, sizeof(n->path), "%s%s", strchr(path, '/') ? "" : "./", path);
    if (strlen(symbol) >= sizeof(n->symbol)) {
        snprintf(err, errlen, "handler '%s': symbol name longer than %zu bytes", c->handler,
                 sizeof(n->symbol) - 1);
        free(n);
        return -1;
    }
    snprintf(n->symbol, sizeof(n->symbol), "%s", symbol);
    app->data = n;
    return 0;
}

/* The check of app.h: app_native_open in a child process. */
static int app_native_check_op(struct app *app, char *err, size_t errlen)
{
    return app_native_check(app->data, err, errlen);
}

/* --preload: the master loads the object once; the workers inherit it. */
static int app_native_preload(struct app *app)
{
    struct app_native *n = app->data;
    char err[1024];
    if (app_native_open(n, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        return -1;
    }
    return 0;
}

static int app_native_worker_init(struct app *app)
{
    struct app_native *n = app->data;
    char err[1024];
    if (!n->dl && app_native_open(n, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        return -1;
    }
    if (n->init && n->init() != 0) {
        log_msg(LOG_ERROR, "handler: corral_worker_init() failed");
        return -1;
    }
    return 0;
}

static int app_native_thread_init(struct app *app)
{
    (void)app;
    return 0;
}

static int app_native_handle(struct app *app, corral_request *req)
{
    struct app_native *n = app->data;
    return n->handler(req);
}

static void app_native_worker_fini(struct app *app)
{
    struct app_native *n = app->data;
    if (n->fini)
        n->fini();
}

static void app_native_unload(struct app *app)
{
    struct app_native *n = app->data;
    if (n && n->dl)
        dlclose(n->dl);
    free(n);
    app->data = NULL;
}

const struct app_ops app_native_ops = {
    .name = "native",
    .load = app_native_load,
    .check = app_native_check_op,
    .worker_init = app_native_worker_init,
    .thread_init = app_native_thread_init,
    .handle = app_native_handle,
    .worker_fini = app_native_worker_fini,
    .preload = app_native_preload,
    .unload = app_native_unload,
};
