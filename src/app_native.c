/*
 * app_native.c — native C handlers: a shared object loaded with dlopen, its
 * ABI version checked before any of its code runs (see include/corral.h).
 */
#include "app.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct app_native {
    void *dl;
    corral_handler_fn handler;
    int (*init)(void);
    void (*fini)(void);
};

static int app_native_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
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
            return -1;
        }
    }
    /* A name without a slash would be searched in the library path: make
     * relative paths mean the file the user pointed at. */
    char full[4200];
    snprintf(full, sizeof(full), "%s%s", strchr(path, '/') ? "" : "./", path);
    void *dl = dlopen(full, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "handler: dlopen(\"%s\") failed: %s", path, dlerror());
        return -1;
    }
    const unsigned *abi = dlsym(dl, "corral_module_abi");
    if (!abi) {
        snprintf(err, errlen,
                 "handler '%s' has no corral_module_abi: build it with CORRAL_MODULE() from "
                 "corral.h",
                 path);
        goto fail;
    }
    if (*abi != CORRAL_ABI_VERSION) {
        snprintf(err, errlen, "handler '%s' was built for corral ABI %u, this corral has ABI %u",
                 path, *abi, CORRAL_ABI_VERSION);
        goto fail;
    }
    struct app_native *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *(void **)&n->handler = dlsym(dl, symbol);
    if (!n->handler) {
        snprintf(err, errlen, "handler '%s' has no symbol '%s'", path, symbol);
        free(n);
        goto fail;
    }
    *(void **)&n->init = dlsym(dl, "corral_worker_init");
    *(void **)&n->fini = dlsym(dl, "corral_worker_fini");
    n->dl = dl;
    app->data = n;
    return 0;
fail:
    dlclose(dl);
    return -1;
}

static int app_native_worker_init(struct app *app)
{
    struct app_native *n = app->data;
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

const struct app_ops app_native_ops = {
    .name = "native",
    .load = app_native_load,
    .worker_init = app_native_worker_init,
    .thread_init = app_native_thread_init,
    .handle = app_native_handle,
    .worker_fini = app_native_worker_fini,
};

int app_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    if (c->wsgi || c->wsgi_file) {
#ifdef HAVE_PYTHON
        app->ops = &app_wsgi_ops;
        return app->ops->load(app, c, err, errlen);
#else
        snprintf(err, errlen, "corral was built without Python (./configure --with-python)");
        return -1;
#endif
    }
    if (!c->handler) {
        snprintf(err, errlen,
                 "no application: give --wsgi MODULE[:CALLABLE], --wsgi-file PATH or "
                 "--handler FILE.so");
        return -1;
    }
    app->ops = &app_native_ops;
    return app->ops->load(app, c, err, errlen);
}
