/*
 * app_wsgi.c — Python WSGI apps (PEP 3333) in embedded CPython.
 *
 * load (master): checks only — the module name's syntax, that the file, the
 * directory and the virtualenv exist — so a mistake is reported at start.
 * worker_init (each worker, after the fork; by default the master never
 * runs Python): chdir, start the interpreter without its signal handlers
 * (signals stay with corral's signalfd), extend sys.path, import the app,
 * build the constant part of environ, then release the GIL. With --preload
 * the same start-up runs once in the master instead (app_wsgi_preload) and
 * the workers inherit the interpreter across fork. thread_init gives each serving thread its
 * own thread state. handle holds the GIL only while Python runs: it is
 * released around every read of the body and every write of the response.
 *
 * --own-gil (Python 3.12+, PEP 684): each serving thread runs the app in an
 * interpreter of its own, so the threads of one process run Python in
 * parallel. Thread 0 serves from the main interpreter, whose GIL no other
 * interpreter shares (it runs nothing else: the process's other threads
 * never enter Python); threads 1..N-1 each from a sub-interpreter with its
 * own GIL. The first sub-interpreter is made and loaded in worker_init, so
 * an app that cannot load in one stops corral at start, and handed to the
 * first thread that asks; the others are made by their threads in
 * thread_init. Everything a request uses (types, environ's constants, the
 * app) belongs to one interpreter: struct app_wsgi_interp, one per thread
 * with own_gil, else one shared.
 *
 * Errors: an exception before the first body byte is logged with its
 * traceback and the request line, and handle returns -1 (corral answers
 * 500); after it, the same, and corral closes the connection so the front
 * end sees a broken response. The result's close() is always called.
 */
#include "app_wsgi.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/app.h"
#include "core/log.h"

/* The environ keys corral sets itself, interned once. */
enum app_wsgi_key {
    APP_WSGI_VERSION,
    APP_WSGI_MULTITHREAD,
    APP_WSGI_MULTIPROCESS,
    APP_WSGI_RUN_ONCE,
    APP_WSGI_ERRORS,
    APP_WSGI_INPUT,
    APP_WSGI_INPUT_TERMINATED,
    APP_WSGI_URL_SCHEME,
    APP_WSGI_FILE_WRAPPER,
    APP_WSGI_KEY_COUNT,
};

static const char *const app_wsgi_key_names[APP_WSGI_KEY_COUNT] = {
    [APP_WSGI_VERSION] = "wsgi.version",
    [APP_WSGI_MULTITHREAD] = "wsgi.multithread",
    [APP_WSGI_MULTIPROCESS] = "wsgi.multiprocess",
    [APP_WSGI_RUN_ONCE] = "wsgi.run_once",
    [APP_WSGI_ERRORS] = "wsgi.errors",
    [APP_WSGI_INPUT] = "wsgi.input",
    [APP_WSGI_INPUT_TERMINATED] = "wsgi.input_terminated",
    [APP_WSGI_URL_SCHEME] = "wsgi.url_scheme",
    [APP_WSGI_FILE_WRAPPER] = "wsgi.file_wrapper",
};

/* Run once in each worker: loads a --wsgi-file as a module, formats
 * tracebacks. */
static const char app_wsgi_helpers[] =
    "import importlib.machinery, importlib.util, sys, traceback\n"
    "def load_file(path, name):\n"
    "    loader = importlib.machinery.SourceFileLoader(name, path)\n"
    "    spec = importlib.util.spec_from_loader(name, loader)\n"
    "    mod = importlib.util.module_from_spec(spec)\n"
    "    sys.modules[name] = mod\n"
    "    try:\n"
    "        loader.exec_module(mod)\n"
    "    except BaseException:\n"
    "        del sys.modules[name]\n"
    "        raise\n"
    "    return mod\n"
    "def format_exc(t, v, tb):\n"
    "    return ''.join(traceback.format_exception(t, v, tb))\n";

/* The module name a --wsgi-file is loaded under. */
#define APP_WSGI_FILE_MODULE "corral_wsgi_file"

struct app_wsgi {
    /* From the configuration (owned copies), set by load. */
    char *module;   /* --wsgi MODULE, or NULL */
    char *callable; /* the name after ':', or NULL: application, then app */
    char *file;     /* --wsgi-file, absolute, or NULL */
    char *chdir;
    char **pythonpath;
    size_t pythonpath_count;
    char python[PATH_MAX]; /* sys.executable: a venv's python, or the system's */
    bool multithread, multiprocess;
    bool own_gil; /* --own-gil: one interpreter with its own GIL per thread */
    unsigned threads; /* serving threads per worker */
    bool started; /* the interpreter runs in this process (preloaded in the master) */
    /* The main interpreter: every thread's without own_gil, thread 0's
     * with it. */
    struct app_wsgi_interp *main;
    /* own_gil: the sub-interpreter worker_init made for the first of
     * threads 1..N-1 to start (thread_init takes it), NULL once taken. */
    struct app_wsgi_interp *_Atomic spare;
};

/* One interpreter that runs the app: the main one, or with --own-gil one
 * per serving thread. Everything here belongs to that interpreter and is
 * used only by the threads that run in it; it lives as long as the process. */
struct app_wsgi_interp {
    PyInterpreterState *interp;
    PyObject *app;
    PyObject *keys[APP_WSGI_KEY_COUNT];
    struct app_wsgi_environ_consts env; /* base environ, keys, url schemes */
    PyObject *format_exc;               /* helpers.format_exc(t, v, tb) -> str */
    PyObject *close_name;
    struct app_wsgi_types types;
};

/* The thread state of the calling serving thread (thread_init), and the
 * interpreter it runs the app in. */
static _Thread_local struct app_wsgi_thread app_wsgi_thread;
static _Thread_local struct app_wsgi_interp *app_wsgi_thread_interp;

/* ---- errors ---- */

/* Log the pending Python exception, its traceback line by line, each line
 * prefixed with CONTEXT ("GET /raise" or "loading the app"); clears it. */
static void app_wsgi_log_exception(struct app_wsgi_interp *w, const char *context)
{
    PyObject *t, *v, *tb;
#if PY_VERSION_HEX >= 0x030C0000
    /* PyErr_Fetch and PyErr_NormalizeException are deprecated since 3.12. */
    v = PyErr_GetRaisedException();
    if (!v)
        return;
    t = Py_NewRef((PyObject *)Py_TYPE(v));
    tb = PyException_GetTraceback(v);
#else
    PyErr_Fetch(&t, &v, &tb);
    if (!t)
        return;
    PyErr_NormalizeException(&t, &v, &tb);
#endif
    PyObject *text = NULL;
    if (w->format_exc)
        text = PyObject_CallFunctionObjArgs(w->format_exc, t, v ? v : Py_None, tb ? tb : Py_None,
                                            NULL);
    if (!text) {
        PyErr_Clear();
        text = v ? PyObject_Str(v) : NULL; /* no traceback module: the message */
    }
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    if (!s) {
        PyErr_Clear();
        log_msg(LOG_ERROR, "wsgi: %s: the app raised %s (it cannot be formatted)", context,
                ((PyTypeObject *)t)->tp_name);
    } else {
        log_msg(LOG_ERROR, "wsgi: %s: the app raised an exception:", context);
        while (*s) {
            size_t n = strcspn(s, "\n");
            log_msg(LOG_ERROR, "wsgi: %s: %.*s", context, (int)n, s);
            s += n + (s[n] == '\n');
        }
    }
    Py_XDECREF(text);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
}

/* app_wsgi_log_exception with the request line as the context. */
static void app_wsgi_log_request_exception(struct app_wsgi_interp *w, corral_request *req)
{
    const char *method = corral_param(req, "REQUEST_METHOD");
    const char *uri = corral_param(req, "REQUEST_URI");
    if (!uri)
        uri = corral_param(req, "PATH_INFO");
    char context[512];
    snprintf(context, sizeof(context), "%s %s", method ? method : "-", uri ? uri : "-");
    app_wsgi_log_exception(w, context);
}

/* ---- one request ---- */

/* *OUT = OBJ.NAME (new reference), or NULL when it has no such attribute.
 * Returns 0, or -1 with an exception set (another error than
 * AttributeError). */
static int app_wsgi_getattr_optional(PyObject *obj, PyObject *name, PyObject **out)
{
    *out = PyObject_GetAttr(obj, name);
    if (*out)
        return 0;
    if (!PyErr_ExceptionMatches(PyExc_AttributeError))
        return -1;
    PyErr_Clear();
    return 0;
}

/* Call RESULT.close() if it has one; -1 with an exception set if it raised. */
static int app_wsgi_close(struct app_wsgi_interp *w, PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        return 0; /* the common case has no close(): no failed lookup to clear */
    PyObject *close = NULL;
    if (app_wsgi_getattr_optional(result, w->close_name, &close) < 0)
        return -1;
    if (!close)
        return 0;
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Run the app for REQ with the GIL held. Returns 0, or -1 after logging. */
static int app_wsgi_run(struct app_wsgi_interp *w, corral_request *req)
{
    int rc = -1;
    PyObject *input = NULL, *environ = NULL, *result = NULL, *resp = NULL;

    input = app_wsgi_input_new(&w->types, req);
    if (!input)
        goto error;
    environ = app_wsgi_environ_new(&w->env, req, input);
    if (!environ)
        goto error;
    resp = app_wsgi_response_new(&w->types, req);
    if (!resp)
        goto error;
    result = PyObject_CallFunctionObjArgs(w->app, environ, resp, NULL);
    if (!result || app_wsgi_response_body(resp, result) < 0)
        goto error;
    rc = 0;
error:
    if (rc < 0) {
        if (resp && app_wsgi_response_write_failed(resp))
            PyErr_Clear(); /* corral logged why the front end is gone */
        else
            app_wsgi_log_request_exception(w, req);
    }
    if (result && app_wsgi_close(w, result) < 0) {
        app_wsgi_log_request_exception(w, req);
        rc = -1;
    }
    if (input)
        app_wsgi_input_detach(input);
    if (resp)
        app_wsgi_response_detach(resp);
    Py_XDECREF(result);
    Py_XDECREF(resp);
    Py_XDECREF(environ);
    Py_XDECREF(input);
    return rc;
}

/* --own-gil: when the pending exception is the ImportError of an extension
 * module that supports only one interpreter per process (single-phase
 * init, refused by check_multi_interp_extensions), say which and the way
 * out. The exception stays set. */
static void app_wsgi_explain_refusal(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    static const char refused[] = " does not support loading in subinterpreters";
    if (!PyErr_ExceptionMatches(PyExc_ImportError))
        return;
    PyObject *v = PyErr_GetRaisedException();
    PyObject *msg = v ? PyObject_Str(v) : NULL;
    const char *s = msg ? PyUnicode_AsUTF8(msg) : NULL;
    const char *at = s ? strstr(s, refused) : NULL;
    if (at && strncmp(s, "module ", 7) == 0)
        log_msg(LOG_ERROR,
                "wsgi: the extension module '%.*s' cannot load in an interpreter with its own "
                "GIL (it keeps per-process state: single-phase init); run without --own-gil "
                "(own_gil), or use a version of the module that supports sub-interpreters",
                (int)(at - s - 7), s + 7);
    Py_XDECREF(msg);
    PyErr_Clear();
    PyErr_SetRaisedException(v);
#endif
}

/* ---- the adapter ---- */

static void app_wsgi_free(struct app_wsgi *w)
{
    free(w->module);
    free(w->callable);
    free(w->file);
    free(w->chdir);
    for (size_t i = 0; i < w->pythonpath_count; i++)
        free(w->pythonpath[i]);
    free(w->pythonpath);
    free(w);
}

/* A dotted Python name: identifiers separated by single dots. */
static bool app_wsgi_dotted_name(const char *s, size_t len, bool allow_dots)
{
    bool start = true;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.' && allow_dots && !start && i + 1 < len) {
            start = true;
            continue;
        }
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                     (unsigned char)ch >= 0x80;
        if (!alpha && !(!start && ch >= '0' && ch <= '9'))
            return false;
        start = false;
    }
    return len > 0;
}

static int app_wsgi_load(struct app *app, const struct config *c, char *err, size_t errlen)
{
    struct app_wsgi *w = calloc(1, sizeof(*w));
    if (!w)
        goto nomem;
    /* With own_gil each app object runs in one thread only; the other
     * threads' interpreters are like other processes (PEP 3333). */
    w->own_gil = c->own_gil;
    w->threads = c->threads;
    w->multithread = c->threads > 1 && !c->own_gil;
    w->multiprocess = c->processes > 1 || (c->own_gil && c->threads > 1);
    if (c->chdir) {
        struct stat st;
        if (stat(c->chdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "chdir '%s': not a directory", c->chdir);
            goto fail;
        }
        if (!(w->chdir = strdup(c->chdir)))
            goto nomem;
    }
    if (c->wsgi) {
        const char *colon = strchr(c->wsgi, ':');
        size_t mlen = colon ? (size_t)(colon - c->wsgi) : strlen(c->wsgi);
        if (!app_wsgi_dotted_name(c->wsgi, mlen, true) ||
            (colon && !app_wsgi_dotted_name(colon + 1, strlen(colon + 1), false))) {
            snprintf(err, errlen,
                     "wsgi '%s': expected MODULE[:CALLABLE], such as myproject.wsgi:application",
                     c->wsgi);
            goto fail;
        }
        if (!(w->module = strndup(c->wsgi, mlen)) || (colon && !(w->callable = strdup(colon + 1))))
            goto nomem;
    } else {
        /* A relative file is taken from --chdir when given, as the workers
         * will see it. */
        char path[PATH_MAX + 1], full[PATH_MAX];
        if (c->chdir && c->wsgi_file[0] != '/')
            snprintf(path, sizeof(path), "%s/%s", c->chdir, c->wsgi_file);
        else
            snprintf(path, sizeof(path), "%s", c->wsgi_file);
        struct stat st;
        if (!realpath(path, full) || stat(full, &st) < 0 || !S_ISREG(st.st_mode) ||
            access(full, R_OK) < 0) {
            snprintf(err, errlen, "wsgi_file '%s': not a readable file", path);
            goto fail;
        }
        if (!(w->file = strdup(full)))
            goto nomem;
    }
    snprintf(w->python, sizeof(w->python), "%s", CORRAL_PYTHON_EXECUTABLE);
    if (c->virtualenv &&
        app_wsgi_venv_check(c->virtualenv, w->python, sizeof(w->python), err, errlen) < 0)
        goto fail;
    if (c->pythonpath_count) {
        if (!(w->pythonpath = calloc(c->pythonpath_count, sizeof(*w->pythonpath))))
            goto nomem;
        for (; w->pythonpath_count < c->pythonpath_count; w->pythonpath_count++)
            if (!(w->pythonpath[w->pythonpath_count] = strdup(c->pythonpath[w->pythonpath_count])))
                goto nomem;
    }
    app->data = w;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    if (w)
        app_wsgi_free(w);
    return -1;
}

/* Put DIR at position *AT of sys.path and advance *AT. */
static int app_wsgi_path_insert(PyObject *sys_path, Py_ssize_t *at, const char *dir)
{
    PyObject *s = PyUnicode_DecodeFSDefault(dir);
    if (!s)
        return -1;
    int rc = PyList_Insert(sys_path, (*at)++, s);
    Py_DECREF(s);
    return rc;
}

/* Load the app into the current interpreter, IN (its types, helpers, the
 * import, the constant part of environ), with its GIL: 0, or -1 with an
 * exception. */
static int app_wsgi_setup(const struct app_wsgi *w, struct app_wsgi_interp *in)
{
    int rc = -1;
    PyObject *helpers = NULL, *mod = NULL;
    in->interp = PyInterpreterState_Get();
    if (app_wsgi_input_types_new(&in->types) < 0 || app_wsgi_file_type_new(&in->types) < 0 ||
        app_wsgi_response_type_new(&in->types) < 0)
        return -1;
    /* The helper functions live in their own module namespace. */
    helpers = PyDict_New();
    if (!helpers || PyDict_SetItemString(helpers, "__builtins__", PyEval_GetBuiltins()) < 0)
        goto out;
    PyObject *ran = PyRun_String(app_wsgi_helpers, Py_file_input, helpers, helpers);
    if (!ran)
        goto out;
    Py_DECREF(ran);
    in->format_exc = PyDict_GetItemString(helpers, "format_exc");
    Py_XINCREF(in->format_exc);
    PyObject *load_file = PyDict_GetItemString(helpers, "load_file");
    if (!in->format_exc || !load_file) {
        PyErr_SetString(PyExc_RuntimeError, "corral's WSGI helpers did not load");
        goto out;
    }

    if (app_wsgi_guard_signals() < 0)
        goto out;
    PyObject *argv = Py_BuildValue("[s]", "corral");
    if (!argv)
        goto out;
    int set = PySys_SetObject("argv", argv);
    Py_DECREF(argv);
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    if (set < 0 || !sys_path || !PyList_Check(sys_path)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        goto out;
    }
    Py_ssize_t at = 0;
    char cwd[PATH_MAX];
    if (w->chdir && (!getcwd(cwd, sizeof(cwd)) || app_wsgi_path_insert(sys_path, &at, cwd) < 0)) {
        if (!PyErr_Occurred())
            PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    for (size_t i = 0; i < w->pythonpath_count; i++)
        if (app_wsgi_path_insert(sys_path, &at, w->pythonpath[i]) < 0)
            goto out;

    if (w->file) {
        /* Its directory is importable, as for `python3 FILE`. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", w->file);
        *strrchr(dir, '/') = '\0';
        if (app_wsgi_path_insert(sys_path, &at, dir[0] ? dir : "/") < 0)
            goto out;
        mod = PyObject_CallFunction(load_file, "ss", w->file, APP_WSGI_FILE_MODULE);
    } else {
        mod = PyImport_ImportModule(w->module);
    }
    if (!mod)
        goto out;
    const char *names[] = {w->callable, "application", "app"};
    for (size_t i = w->callable ? 0 : 1; !in->app && i < (w->callable ? 1u : 3u); i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        int got = name ? app_wsgi_getattr_optional(mod, name, &in->app) : -1;
        Py_XDECREF(name);
        if (got < 0)
            goto out;
    }
    if (!in->app || !PyCallable_Check(in->app)) {
        PyErr_Format(PyExc_AttributeError, "%s '%s' has no callable %s",
                     w->file ? "file" : "module", w->file ? w->file : w->module,
                     w->callable ? w->callable : "'application' or 'app'");
        goto out;
    }

    /* The constant part of environ, copied per request. */
    for (int k = 0; k < APP_WSGI_KEY_COUNT; k++)
        if (!(in->keys[k] = PyUnicode_InternFromString(app_wsgi_key_names[k])))
            goto out;
    if (!(in->env.http = PyUnicode_InternFromString("http")) ||
        !(in->env.https = PyUnicode_InternFromString("https")) ||
        !(in->close_name = PyUnicode_InternFromString("close")) || !(in->env.base = PyDict_New()))
        goto out;
    if (!(in->env.cache = app_wsgi_environ_cache_new())) {
        PyErr_NoMemory();
        goto out;
    }
    PyObject *version = Py_BuildValue("(ii)", 1, 0);
    PyObject *errors = app_wsgi_errors_new(&in->types);
    PyObject *empty_str = PyUnicode_FromStringAndSize("", 0);
    struct {
        enum app_wsgi_key key;
        PyObject *value;
    } base[] = {
        {APP_WSGI_VERSION, version},
        {APP_WSGI_MULTITHREAD, w->multithread ? Py_True : Py_False},
        {APP_WSGI_MULTIPROCESS, w->multiprocess ? Py_True : Py_False},
        {APP_WSGI_RUN_ONCE, Py_False},
        {APP_WSGI_ERRORS, errors},
        {APP_WSGI_INPUT_TERMINATED, Py_True},
        {APP_WSGI_URL_SCHEME, in->env.http},
        {APP_WSGI_FILE_WRAPPER, (PyObject *)in->types.file},
    };
    int bad = !version || !errors || !empty_str;
    for (size_t i = 0; !bad && i < sizeof(base) / sizeof(base[0]); i++)
        bad = PyDict_SetItem(in->env.base, in->keys[base[i].key], base[i].value) < 0;
    /* PEP 3333 apps may rely on these: present (empty) unless the front
     * end sends them. */
    const char *empty[] = {"SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"};
    for (size_t i = 0; !bad && i < sizeof(empty) / sizeof(empty[0]); i++)
        bad = PyDict_SetItemString(in->env.base, empty[i], empty_str) < 0;
    Py_XDECREF(version);
    Py_XDECREF(errors);
    Py_XDECREF(empty_str);
    if (bad)
        goto out;
    in->env.url_scheme_key = in->keys[APP_WSGI_URL_SCHEME];
    in->env.input_key = in->keys[APP_WSGI_INPUT];
    rc = 0;
out:
    Py_XDECREF(mod);
    Py_XDECREF(helpers);
    return rc;
}

/* Load the app into the current interpreter (the GIL held) as IN; log the
 * traceback on failure, with the way out when an extension module refused
 * an own-GIL interpreter. Returns 0 or -1. */
static int app_wsgi_load_into(struct app_wsgi *w, struct app_wsgi_interp *in)
{
    const char *what = w->file ? w->file : w->module;
    bool sub = in != w->main;
    if (app_wsgi_setup(w, in) < 0) {
        if (sub)
            app_wsgi_explain_refusal();
        char context[PATH_MAX + 64];
        snprintf(context, sizeof(context), "loading %s", what);
        app_wsgi_log_exception(in, context);
        return -1;
    }
    app_wsgi_restore_signals(true);
    log_msg(LOG_INFO, "wsgi: loaded %s (Python %.*s%s)", what, (int)strcspn(Py_GetVersion(), " "),
            Py_GetVersion(),
            sub ? ", an interpreter with its own GIL"
                : w->own_gil ? ", the main interpreter, for thread 0" : "");
    return 0;
}

/* Start the interpreter in this process (a worker, or the master with
 * --preload) and load the app into it. The GIL stays with the calling
 * thread. Returns 0, or -1 after logging. */
static int app_wsgi_start(struct app_wsgi *w)
{
    if (w->chdir && chdir(w->chdir) < 0) {
        log_msg(LOG_ERROR, "wsgi: chdir(\"%s\") failed: %s", w->chdir, strerror(errno));
        return -1;
    }
    app_wsgi_save_signals();
    if (app_wsgi_interp_start(w->python) < 0)
        return -1;
    w->started = true;
    if (!(w->main = calloc(1, sizeof(*w->main)))) {
        log_msg(LOG_ERROR, "wsgi: out of memory");
        return -1;
    }
    return app_wsgi_load_into(w, w->main);
}

/* --own-gil: a new sub-interpreter with its own GIL, made by the calling
 * thread (which has no thread state attached), the app loaded into it, its
 * GIL released; its thread state (bound to the calling thread) into
 * *TSTATE. The interpreter, or NULL after logging. */
static struct app_wsgi_interp *app_wsgi_new_own(struct app_wsgi *w, PyThreadState **tstate)
{
    struct app_wsgi_interp *in = calloc(1, sizeof(*in));
    if (!in) {
        log_msg(LOG_ERROR, "wsgi: out of memory");
        return NULL;
    }
    if (!app_wsgi_interp_new_own_gil())
        return NULL; /* IN is dropped: the process exits */
    if (app_wsgi_load_into(w, in) < 0)
        return NULL;
    *tstate = PyEval_SaveThread();
    return in;
}

/* --own-gil, threads 1..N-1: the sub-interpreter worker_init made, with a
 * thread state of this thread's, or else a new one made here; the
 * thread's state and interpreter are set, no GIL held. 0, or -1 after
 * logging. */
static int app_wsgi_thread_own(struct app_wsgi *w)
{
    struct app_wsgi_interp *in = atomic_exchange(&w->spare, NULL);
    PyThreadState *tstate = NULL;
    if (in) {
        /* Its first thread state stays with thread 0, which made it and
         * never attaches it again. */
        if (!(tstate = PyThreadState_New(in->interp))) {
            log_msg(LOG_ERROR, "wsgi: PyThreadState_New failed");
            return -1;
        }
    } else if (!(in = app_wsgi_new_own(w, &tstate))) {
        return -1;
    }
    app_wsgi_thread.thread = pthread_self();
    app_wsgi_thread_interp = in;
    app_wsgi_thread.tstate = tstate;
    return 0;
}

static int app_wsgi_worker_init(struct app *app)
{
    struct app_wsgi *w = app->data;
    if (!w->started && app_wsgi_start(w) < 0)
        return -1;
    /* Per process, not in the master: a preloaded master's memory file
     * would be shared by every worker. */
    app_wsgi_stack_setup();
    /* This thread (thread 0) serves from the main interpreter. */
    app_wsgi_thread.thread = pthread_self();
    app_wsgi_thread_interp = w->main;
    app_wsgi_thread.tstate = PyEval_SaveThread(); /* the GIL is free between requests */
    if (w->own_gil && w->threads > 1) {
        /* Thread 1's interpreter now, so that an app that cannot load in a
         * sub-interpreter is a start-up error (worker.c exits before the
         * worker runs). */
        PyThreadState *unused;
        struct app_wsgi_interp *in = app_wsgi_new_own(w, &unused);
        if (!in)
            return -1;
        atomic_store(&w->spare, in);
    }
    return 0;
}

/* --preload: the master imports the app once; the workers inherit it
 * copy-on-write. gc.freeze() moves everything the import made into the
 * permanent generation, so the workers' collections do not write to (and
 * so copy) those pages. The master keeps the GIL: it runs no other Python,
 * and fork() must happen with the GIL held by the forking thread. (Not
 * with own_gil: config.c refuses the pair.) */
static int app_wsgi_preload(struct app *app)
{
    struct app_wsgi *w = app->data;
    if (app_wsgi_start(w) < 0)
        return -1;
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *r = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    if (!r)
        app_wsgi_log_exception(w->main, "gc.freeze() after the preload");
    Py_XDECREF(r);
    Py_XDECREF(gc);
    log_msg(LOG_INFO, "wsgi: preloaded in the master; workers share it copy-on-write");
    return 0;
}

/* Around fork(2), with the interpreter running in the master: CPython's
 * import lock and its thread bookkeeping must be consistent in the child
 * (os.fork does the same; os.register_at_fork hooks run too). */
static void app_wsgi_fork_prepare(struct app *app)
{
    if (((struct app_wsgi *)app->data)->started)
        PyOS_BeforeFork();
}

static void app_wsgi_fork_parent(struct app *app)
{
    if (((struct app_wsgi *)app->data)->started)
        PyOS_AfterFork_Parent();
}

static void app_wsgi_fork_child(struct app *app)
{
    if (((struct app_wsgi *)app->data)->started)
        PyOS_AfterFork_Child();
}

static int app_wsgi_thread_init(struct app *app)
{
    struct app_wsgi *w = app->data;
    if (app_wsgi_thread.tstate)
        return 0; /* the thread that ran worker_init has its state */
    if (w->own_gil)
        return app_wsgi_thread_own(w);
    app_wsgi_thread.thread = pthread_self();
    app_wsgi_thread_interp = w->main;
    app_wsgi_thread.tstate = PyThreadState_New(w->main->interp);
    if (!app_wsgi_thread.tstate) {
        log_msg(LOG_ERROR, "wsgi: PyThreadState_New failed");
        return -1;
    }
    return 0;
}

static int app_wsgi_handle(struct app *app, corral_request *req)
{
    (void)app;
    PyEval_RestoreThread(app_wsgi_thread.tstate);
    int rc = app_wsgi_run(app_wsgi_thread_interp, req);
    PyEval_SaveThread();
    return rc;
}

static void *app_wsgi_thread_handle(struct app *app)
{
    (void)app;
    return &app_wsgi_thread;
}

static void app_wsgi_dump_stack(struct app *app, void *handle, int fd, bool final)
{
    (void)app;
    app_wsgi_stack_dump(handle, fd, final);
}

/* The process ends with _exit right after this, possibly while other
 * threads are inside Python: the interpreter is not finalized. */
static void app_wsgi_worker_fini(struct app *app)
{
    (void)app;
}

/* A lazy app's master-side state is the settings load copied; a started
 * interpreter (--preload) is never unloaded. */
static void app_wsgi_unload(struct app *app)
{
    struct app_wsgi *w = app->data;
    if (!w || w->started)
        return;
    app_wsgi_free(w);
    app->data = NULL;
}

const struct app_ops app_wsgi_ops = {
    .name = "wsgi",
    .load = app_wsgi_load,
    .worker_init = app_wsgi_worker_init,
    .thread_init = app_wsgi_thread_init,
    .handle = app_wsgi_handle,
    .worker_fini = app_wsgi_worker_fini,
    .preload = app_wsgi_preload,
    .fork_prepare = app_wsgi_fork_prepare,
    .fork_parent = app_wsgi_fork_parent,
    .fork_child = app_wsgi_fork_child,
    .thread_handle = app_wsgi_thread_handle,
    .dump_stack = app_wsgi_dump_stack,
    .unload = app_wsgi_unload,
};
