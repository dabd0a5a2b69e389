/*
 * app_asgi.c — ASGI 3.0 apps (--asgi MODULE[:APP]) on one asyncio event
 * loop per worker.
 *
 * load (master): checks the name, the directory and the virtualenv only.
 * worker_init (each worker): chdir, start CPython as for WSGI (its signal
 * handlers stay corral's), import the app and the loop's code
 * (asgi_glue.py), then start the loop thread, which runs the lifespan
 * startup before anything else: the worker accepts only once it completed,
 * and a failed startup (logged with its traceback) fails worker_init, which
 * the master takes as a start-up error (exit 1, no respawn loop).
 *
 * A request: the serving thread that decoded its head returns APP_DETACHED
 * and, once the worker let go of the request and its connection
 * (run_detached), hands both to the loop (app_asgi_request.c's queue and eventfd) and goes back to
 * epoll_wait: requests in flight are not bounded by the worker's threads.
 * The loop runs the app as a task, reads the body as the app asks for it
 * and writes the response, never waiting in C (back-pressure both ways: it
 * awaits readability and writability) and gives the connection back to
 * the worker (app_resume), all on the loop's thread: no serving thread
 * ever takes the GIL or waits for the loop.
 *
 * stopping (a graceful stop begins): the loop closes its WebSockets ("going
 * away"). worker_fini (a graceful stop or a reload, after the requests in
 * flight are done): the lifespan shutdown, bounded by --graceful-timeout.
 * The watchdog sees the loop through busy_since: a loop that runs one
 * stretch past --slowlog is logged with its stack, past --harakiri the
 * worker is replaced.
 */
#include "app_asgi_state.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn/conn.h"
#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/pid_cache.h"

static const char app_asgi_glue[] =
#include "app_asgi_glue.inc"
    ;

struct app_asgi {
    char *module, *attr; /* --asgi MODULE[:APP] */
    char *chdir;
    char **paths; /* --pythonpath, then the working directory */
    size_t path_count;
    char python[PATH_MAX];
    unsigned wait_timeout_ms, graceful_timeout_ms; /* the loop's waits, the shutdown's */
    bool stock_loop;                               /* --asgi-loop asyncio */
    struct app_asgi_queue q;
    struct app_wsgi_thread loop_thread; /* for the watchdog's stacks */
    PyObject *serve;                    /* asgi_glue.serve */
};

/* The job run_detached hands over, made by handle in the same thread. */
static _Thread_local struct app_asgi_job *app_asgi_pending;

static void app_asgi_free(struct app_asgi *a)
{
    free(a->module);
    free(a->attr);
    free(a->chdir);
    for (size_t i = 0; i < a->path_count; i++)
        free(a->paths[i]);
    free(a->paths);
    free(a);
}

static bool app_asgi_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = ch == '_' || ch == '.' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9');
        if (!ok || (ch == '.' && (i == 0 || i + 1 == n || s[i - 1] == '.')))
            return false;
    }
    return !(s[0] >= '0' && s[0] <= '9');
}

static int app_asgi_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    struct app_asgi *a = calloc(1, sizeof(*a));
    if (!a)
        goto nomem;
    const char *colon = strchr(c->asgi, ':');
    size_t mlen = colon ? (size_t)(colon - c->asgi) : strlen(c->asgi);
    if (!app_asgi_name_ok(c->asgi, mlen) ||
        (colon && (!app_asgi_name_ok(colon + 1, strlen(colon + 1)) || strchr(colon + 1, '.')))) {
        snprintf(err, errlen, "asgi '%s': expected MODULE[:APP], such as myproject.asgi:app",
                 c->asgi);
        goto fail;
    }
    if (!(a->module = strndup(c->asgi, mlen)) || (colon && !(a->attr = strdup(colon + 1))))
        goto nomem;
    if (c->chdir) {
        struct stat st;
        if (stat(c->chdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "chdir '%s': not a directory", c->chdir);
            goto fail;
        }
        if (!(a->chdir = strdup(c->chdir)))
            goto nomem;
    }
    snprintf(a->python, sizeof(a->python), "%s", CORRAL_PYTHON_EXECUTABLE);
    if (c->virtualenv &&
        app_wsgi_venv_check(c->virtualenv, a->python, sizeof(a->python), err, errlen) < 0)
        goto fail;
    if (!(a->paths = calloc(c->pythonpath_count + 1, sizeof(*a->paths))))
        goto nomem;
    for (; a->path_count < c->pythonpath_count; a->path_count++)
        if (!(a->paths[a->path_count] = strdup(c->pythonpath[a->path_count])))
            goto nomem;
    a->wait_timeout_ms = c->send_timeout_ms ? c->send_timeout_ms : c->io_timeout_ms;
    a->graceful_timeout_ms = c->graceful_timeout_ms;
    a->stock_loop = c->asgi_loop && strcmp(c->asgi_loop, "asyncio") == 0;
    app->data = a;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    if (a)
        app_asgi_free(a);
    return -1;
}

/* Log the pending exception with its traceback (the glue's helper, or the
 * message alone when the glue did not load). */
static void app_asgi_log_exception(PyObject *glue, const char *context)
{
    PyObject *t, *v, *tb;
#if PY_VERSION_HEX >= 0x030C0000
    /* PyErr_Fetch and PyErr_NormalizeException are deprecated since 3.12. */
    v = PyErr_GetRaisedException();
    t = v ? Py_NewRef((PyObject *)Py_TYPE(v)) : NULL;
    tb = v ? PyException_GetTraceback(v) : NULL;
#else
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
#endif
    if (!t)
        t = Py_NewRef(Py_None);
    PyObject *fmt = glue ? PyDict_GetItemString(glue, "traceback") : NULL;
    PyObject *lines = fmt ? PyObject_CallMethod(fmt, "format_exception", "OOO", t,
                                                v ? v : Py_None, tb ? tb : Py_None)
                          : NULL;
    PyObject *empty = PyUnicode_FromString("");
    PyObject *text = lines && empty ? PyUnicode_Join(empty, lines) : NULL;
    if (!text) {
        PyErr_Clear();
        text = v ? PyObject_Str(v) : NULL;
    }
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    log_msg(LOG_ERROR, "asgi: %s failed:", context);
    while (s && *s) {
        size_t n = strcspn(s, "\n");
        log_msg(LOG_ERROR, "asgi: %s: %.*s", context, (int)n, s);
        s += n + (s[n] == '\n');
    }
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(empty);
    Py_XDECREF(lines);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
}

/* Start the interpreter, load the glue and the app (the GIL held). */
static int app_asgi_start_python(struct app_asgi *a)
{
    if (a->chdir && chdir(a->chdir) < 0) {
        log_msg(LOG_ERROR, "asgi: chdir(\"%s\") failed: %s", a->chdir, strerror(errno));
        return -1;
    }
    app_wsgi_save_signals();
    if (app_wsgi_interp_start(a->python) < 0)
        return -1;
    PyObject *glue = PyDict_New(), *mod = NULL, *paths = NULL, *app = NULL;
    int rc = -1;
    if (!glue || PyDict_SetItemString(glue, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(glue, "__name__", Py_None) < 0)
        goto out;
    PyObject *code = Py_CompileString(app_asgi_glue, "corral/asgi_glue.py", Py_file_input);
    PyObject *ran = code ? PyEval_EvalCode(code, glue, glue) : NULL;
    Py_XDECREF(code);
    if (!ran)
        goto out;
    Py_DECREF(ran);
    if (app_wsgi_guard_signals() < 0 || !(mod = app_asgi_module_new(&a->q)) ||
        !(paths = PyList_New(0)))
        goto out;
    char cwd[PATH_MAX];
    for (size_t i = 0; i <= a->path_count; i++) {
        const char *p = i < a->path_count ? a->paths[i] : getcwd(cwd, sizeof(cwd));
        PyObject *s = p ? PyUnicode_DecodeFSDefault(p) : NULL;
        if (!s || PyList_Append(paths, s) < 0) {
            Py_XDECREF(s);
            goto out;
        }
        Py_DECREF(s);
    }
    PyObject *load = PyDict_GetItemString(glue, "load");
    a->serve = PyDict_GetItemString(glue, "serve");
    if (!load || !a->serve)
        goto out;
    Py_INCREF(a->serve);
    app = PyObject_CallFunction(load, "OssO", mod, a->module, a->attr, paths);
    if (!app)
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        char context[PATH_MAX];
        snprintf(context, sizeof(context), "loading %s", a->module);
        app_asgi_log_exception(glue, context);
    } else {
        app_wsgi_restore_signals(true);
        log_msg(LOG_INFO, "asgi: loaded %s (Python %.*s)", a->module,
                (int)strcspn(Py_GetVersion(), " "), Py_GetVersion());
    }
    Py_XDECREF(app);
    Py_XDECREF(paths);
    Py_XDECREF(mod);
    Py_XDECREF(glue);
    return rc;
}

static void *app_asgi_loop_main(void *arg)
{
    struct app_asgi *a = arg;
    pthread_setname_np(pthread_self(), "asgi-loop"); /* for top -H, perf, bench/asgi.sh */
    PyGILState_STATE g = PyGILState_Ensure();
    a->loop_thread.thread = pthread_self();
    a->loop_thread.tstate = PyThreadState_Get();
    PyObject *r = PyObject_CallFunction(a->serve, "dO", (double)a->wait_timeout_ms / 1000.0,
                                        a->stock_loop ? Py_True : Py_False);
    if (!r)
        app_asgi_log_exception(NULL, "the event loop");
    Py_XDECREF(r);
    PyGILState_Release(g);
    /* The loop ended: a failed startup (worker_init waits for that answer),
     * or the shutdown worker_fini asked for. */
    pthread_mutex_lock(&a->q.state_lock);
    if (!a->q.started)
        a->q.started = -1;
    a->q.stopped = true;
    pthread_cond_broadcast(&a->q.state_cond);
    pthread_mutex_unlock(&a->q.state_lock);
    return NULL;
}

static int app_asgi_worker_init(struct app *app)
{
    struct app_asgi *a = app->data;
    a->q.app = app;
    /* asyncio asks for the pid at every get_running_loop (CPython 3.11): from memory, not
     * the kernel (src/core/pid_cache.c). Without it (a kernel before 4.14) all still works. */
    pid_cache_enable();
    a->q.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->q.efd < 0) {
        log_msg(LOG_ERROR, "asgi: eventfd failed: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_init(&a->q.lock, NULL);
    pthread_mutex_init(&a->q.state_lock, NULL);
    pthread_cond_init(&a->q.state_cond, NULL);
    if (app_asgi_start_python(a) < 0)
        return -1;
    app_wsgi_stack_setup();
    PyEval_SaveThread(); /* the loop thread takes the GIL for good */
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, app_asgi_loop_main, a);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_msg(LOG_ERROR, "asgi: cannot start the event loop thread: %s", strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&a->q.state_lock);
    while (!a->q.started)
        pthread_cond_wait(&a->q.state_cond, &a->q.state_lock);
    int started = a->q.started;
    pthread_mutex_unlock(&a->q.state_lock);
    if (started < 0) {
        log_msg(LOG_ERROR, "asgi: the lifespan startup of %s failed (its traceback above)",
                a->module);
        return -1;
    }
    return 0;
}

static int app_asgi_thread_init(struct app *app)
{
    (void)app;
    return 0;
}

static int app_asgi_handle(struct app *app, corral_request *req)
{
    (void)app;
    struct app_asgi_job *job = malloc(sizeof(*job));
    if (!job)
        return -1;
    job->req = req;
    job->next = NULL;
    app_asgi_pending = job;
    return APP_DETACHED;
}

static void app_asgi_run_detached(struct app *app, corral_request *req)
{
    struct app_asgi *a = app->data;
    struct app_asgi_job *job = app_asgi_pending;
    app_asgi_pending = NULL;
    conn_set_nowait(req->conn, true);
    app_asgi_queue_push(&a->q, job);
}

/* The worker began to stop: the loop closes its WebSockets (1001). */
static void app_asgi_stopping(struct app *app)
{
    struct app_asgi *a = app->data;
    if (a->q.started <= 0 || atomic_exchange(&a->q.draining, true))
        return;
    if (app_asgi_signal(a->q.efd) < 0)
        log_msg(LOG_ERROR, "asgi: write(eventfd) failed: %s", strerror(errno));
}

/* A graceful stop: the lifespan shutdown, within the graceful timeout. */
static void app_asgi_worker_fini(struct app *app)
{
    struct app_asgi *a = app->data;
    if (a->q.efd < 0 || a->q.started <= 0)
        return;
    atomic_store(&a->q.stopping, true);
    if (app_asgi_signal(a->q.efd) < 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    uint64_t ms = a->graceful_timeout_ms ? a->graceful_timeout_ms : 30000;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->q.state_lock);
    int rc = 0;
    while (!a->q.stopped && rc == 0)
        rc = pthread_cond_timedwait(&a->q.state_cond, &a->q.state_lock, &until);
    pthread_mutex_unlock(&a->q.state_lock);
}

static uint64_t app_asgi_busy_since(struct app *app, void **handle)
{
    struct app_asgi *a = app->data;
    *handle = a->loop_thread.tstate ? &a->loop_thread : NULL;
    return atomic_load_explicit(&a->q.busy_since_us, memory_order_relaxed);
}

static void app_asgi_dump_stack(struct app *app, void *handle, int fd, bool final)
{
    (void)app;
    app_wsgi_stack_dump(handle, fd, final);
}

static void app_asgi_unload(struct app *app)
{
    if (app->data)
        app_asgi_free(app->data);
    app->data = NULL;
}

const struct app_ops app_asgi_ops = {
    .name = "asgi",
    .load = app_asgi_load,
    .worker_init = app_asgi_worker_init,
    .thread_init = app_asgi_thread_init,
    .handle = app_asgi_handle,
    .run_detached = app_asgi_run_detached,
    .worker_fini = app_asgi_worker_fini,
    .stopping = app_asgi_stopping,
    .dump_stack = app_asgi_dump_stack,
    .busy_since = app_asgi_busy_since,
    .unload = app_asgi_unload,
};
