/*
 * app.c — choosing the application adapter (see app.h): WSGI for --wsgi or
 * --wsgi-file (src/apps/wsgi/app_wsgi.c), ASGI for --asgi
 * (src/apps/asgi/app_asgi.c), native for --handler
 * (app_native.c), FastCGI programs for --fastcgi-program
 * (src/apps/program/app_program.c), CGI scripts for --cgi
 * (src/apps/cgi/app_cgi.c).
 */
#include "app.h"

#include "cgi/app_cgi.h"
#include "program/app_program.h"

#include <stdio.h>

int app_prepare(struct app *app, const struct config *c, char *err, size_t errlen)
{
    if (c->asgi) {
#ifdef HAVE_PYTHON
        app->ops = &app_asgi_ops;
        return app->ops->load(app, c, err, errlen);
#else
        snprintf(err, errlen, "corral was built without Python (./configure --with-python)");
        return -1;
#endif
    }
    if (c->wsgi || c->wsgi_file) {
#ifdef HAVE_PYTHON
        app->ops = &app_wsgi_ops;
        return app->ops->load(app, c, err, errlen);
#else
        snprintf(err, errlen, "corral was built without Python (./configure --with-python)");
        return -1;
#endif
    }
    if (c->fastcgi_program) {
        app->ops = &app_program_ops;
        return app->ops->load(app, c, err, errlen);
    }
    if (c->cgi) {
        app->ops = &app_cgi_ops;
        return app->ops->load(app, c, err, errlen);
    }
    if (!c->handler) {
        snprintf(err, errlen, "%s", CONFIG_NO_APP);
        return -1;
    }
    app->ops = &app_native_ops;
    return app->ops->load(app, c, err, errlen);
}

int app_check(struct app *app, char *err, size_t errlen)
{
    return app_has_check(app) ? app->ops->check(app, err, errlen) : 0;
}

int app_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    if (app_prepare(app, c, err, errlen) < 0)
        return -1;
    if (app_check(app, err, errlen) < 0) {
        if (app->ops->unload)
            app->ops->unload(app);
        return -1;
    }
    return 0;
}
