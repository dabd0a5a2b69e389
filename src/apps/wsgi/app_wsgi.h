/*
 * app_wsgi.h — what the WSGI adapter's files share: app_wsgi.c loads and
 * runs the app, app_wsgi_response.c has start_response and sends the result,
 * app_wsgi_input.c has the wsgi.input and wsgi.errors types,
 * app_wsgi_file.c the wsgi.file_wrapper type, app_wsgi_interp.c starts the
 * interpreter (virtual environment, signals) and, with --own-gil, one
 * interpreter with its own GIL per thread, app_wsgi_environ.c builds
 * environ, app_wsgi_stack.c writes a thread's Python stack for the watchdog.
 *
 * Python.h comes first, before any system header, as CPython requires.
 * Every function here needs the GIL, and returns NULL or -1 with a Python
 * exception set on failure.
 */
#ifndef CORRAL_APP_WSGI_H
#define CORRAL_APP_WSGI_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdbool.h>

#include "corral.h"

/* The adapter's Python types. They are heap types made in each interpreter
 * (PyType_FromSpec), never static ones: an interpreter with its own GIL
 * (--own-gil) may share no Python object with another, and a type is one.
 * With one interpreter (the default) there is one set, made the same way.
 * A set lives as long as its interpreter (the process). */
struct app_wsgi_types {
    PyTypeObject *input, *errors; /* app_wsgi_input.c */
    PyTypeObject *file;           /* app_wsgi_file.c: wsgi.file_wrapper */
    PyTypeObject *response;       /* app_wsgi_response.c: start_response */
};

/* Every type is immutable, like a static type, and none is subclassable. */
#define APP_WSGI_TYPE_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE)
#if PY_VERSION_HEX >= 0x030C0000
#define APP_WSGI_T_PYSSIZET Py_T_PYSSIZET
#define APP_WSGI_T_OBJECT Py_T_OBJECT_EX
#define APP_WSGI_T_BOOL Py_T_BOOL
#define APP_WSGI_T_DOUBLE Py_T_DOUBLE
#define APP_WSGI_READONLY Py_READONLY
#else
#include <structmember.h>
#define APP_WSGI_T_PYSSIZET T_PYSSIZET
#define APP_WSGI_T_OBJECT T_OBJECT_EX
#define APP_WSGI_T_BOOL T_BOOL
#define APP_WSGI_T_DOUBLE T_DOUBLE
#define APP_WSGI_READONLY READONLY
#endif

/* The pending exception as one object, its traceback attached (cleared);
 * NULL when none. PyErr_Fetch is deprecated since 3.12. */
static inline PyObject *app_wsgi_take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (!t)
        return NULL;
    PyErr_NormalizeException(&t, &v, &tb);
    if (v && tb)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

/* Each file makes its types into TYPES, in the calling interpreter: 0, or
 * -1 with an exception. */
int app_wsgi_input_types_new(struct app_wsgi_types *types);
int app_wsgi_file_type_new(struct app_wsgi_types *types);
int app_wsgi_response_type_new(struct app_wsgi_types *types);

/* A new wsgi.input reading the body of REQ (new reference). It reads only
 * through corral_read, with the GIL released, and never past the body. */
PyObject *app_wsgi_input_new(const struct app_wsgi_types *types, corral_request *req);

/* The request has ended: the input object (which the app may still hold)
 * stops touching it; later reads raise ValueError. */
void app_wsgi_input_detach(PyObject *input);

/* A new wsgi.errors object: write(str), writelines(seq), flush(); each line
 * written becomes one error-log line "wsgi.errors: ...". */
PyObject *app_wsgi_errors_new(const struct app_wsgi_types *types);

/* wsgi.file_wrapper (app_wsgi_file.c): the wrapped file-like (borrowed) when
 * RESULT is exactly a FileWrapper of TYPES, else NULL (no exception). */
PyObject *app_wsgi_file_wrapper_filelike(const struct app_wsgi_types *types, PyObject *result);

/* environ (app_wsgi_environ.c): a copy of BASE (the constant part) with
 * every param of REQ, wsgi.url_scheme and wsgi.input. New reference. Every
 * object here, and the cache of param strings, belongs to one interpreter.
 * app_wsgi_environ_cache_new: an empty cache (calloc: NULL when out of
 * memory). */
struct app_wsgi_env_cache;
struct app_wsgi_env_cache *app_wsgi_environ_cache_new(void);
struct app_wsgi_environ_consts {
    struct app_wsgi_env_cache *cache;
    PyObject *base;
    PyObject *url_scheme_key, *input_key; /* interned "wsgi.url_scheme", "wsgi.input" */
    PyObject *http, *https;               /* the two values of wsgi.url_scheme */
};
PyObject *app_wsgi_environ_new(const struct app_wsgi_environ_consts *k, corral_request *req,
                               PyObject *input);

/* The interpreter (app_wsgi_interp.c). app_wsgi_venv_check: DIR is a
 * virtual environment made by this Python's version; its interpreter's path
 * goes into PYTHON. 0, or -1 with a message in ERR (no GIL needed).
 * app_wsgi_interp_start: initialize CPython believing it is EXECUTABLE
 * (a venv's python: that venv is used), without Python's signal handlers;
 * 0, or -1 after logging. */
int app_wsgi_venv_check(const char *dir, char *python, size_t python_len, char *err, size_t errlen);
int app_wsgi_interp_start(const char *executable);

/* --own-gil (Python 3.12+): a new sub-interpreter with its own GIL for the
 * calling thread (PEP 684), which must have no thread state attached. It
 * refuses single-phase-init extension modules (ImportError). Returns its
 * thread state, attached with its GIL held, or NULL after logging. */
PyThreadState *app_wsgi_interp_new_own_gil(void);

/* Make signal.signal refuse the signals corral owns (a warning is logged);
 * before the app is imported, after app_wsgi_save_signals. With the GIL. */
int app_wsgi_guard_signals(void);

/* Before the import, note how the owned signals are handled; after it,
 * undo any change a C extension made behind signal.signal (BLAME_APP: log
 * a warning for each). */
void app_wsgi_save_signals(void);
void app_wsgi_restore_signals(bool blame_app);

/* start_response (app_wsgi_response.c). A new start_response object for
 * REQ (new reference), of TYPES (which must outlive it): calling it records
 * the status and headers; its write attribute is PEP 3333's write(). */
PyObject *app_wsgi_response_new(const struct app_wsgi_types *types, corral_request *req);

/* Send the app's RESULT (the iterable it returned) and end the response.
 * Returns 0, or -1 with an exception set. */
int app_wsgi_response_body(PyObject *response, PyObject *result);

/* A write to the front end failed (corral logged why). */
bool app_wsgi_response_write_failed(PyObject *response);

/* The request has ended: later calls raise RuntimeError. */
void app_wsgi_response_detach(PyObject *response);

/* A request thread, as the watchdog names it (app->ops->thread_handle):
 * its thread state and its thread. */
struct app_wsgi_thread {
    PyThreadState *tstate;
    pthread_t thread;
};

/* The stack dumps (app_wsgi_stack.c). app_wsgi_stack_setup: once per worker
 * process, with the GIL, before the request threads start (a failure is
 * logged: no stacks then). app_wsgi_stack_dump: the Python stack of TH as
 * text into OUT, from another thread, without the GIL; at most about a
 * second. FINAL: the process ends right after, and TH may be stopped. */
void app_wsgi_stack_setup(void);
void app_wsgi_stack_dump(const struct app_wsgi_thread *th, int out, bool final);

#endif
