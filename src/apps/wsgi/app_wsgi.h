/*
 * app_wsgi.h — what the WSGI adapter's files share: app_wsgi.c loads and
 * runs the app, app_wsgi_response.c has start_response and sends the result,
 * app_wsgi_input.c has the wsgi.input and wsgi.errors types,
 * app_wsgi_file.c the wsgi.file_wrapper type, app_wsgi_interp.c starts the
 * interpreter (virtual environment, signals), app_wsgi_environ.c builds
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

/* Make the types ready; once per process, after Py_Initialize. */
int app_wsgi_types_ready(void);

/* A new wsgi.input reading the body of REQ (new reference). It reads only
 * through corral_read, with the GIL released, and never past the body. */
PyObject *app_wsgi_input_new(corral_request *req);

/* The request has ended: the input object (which the app may still hold)
 * stops touching it; later reads raise ValueError. */
void app_wsgi_input_detach(PyObject *input);

/* A new wsgi.errors object: write(str), writelines(seq), flush(); each line
 * written becomes one error-log line "wsgi.errors: ...". */
PyObject *app_wsgi_errors_new(void);

/* wsgi.file_wrapper (app_wsgi_file.c). Make the type ready once; the type
 * object (borrowed) goes into environ. app_wsgi_file_wrapper_filelike: the
 * wrapped file-like (borrowed) when RESULT is exactly a FileWrapper, else
 * NULL (no exception). */
int app_wsgi_file_ready(void);
PyObject *app_wsgi_file_wrapper_type(void);
PyObject *app_wsgi_file_wrapper_filelike(PyObject *result);

/* environ (app_wsgi_environ.c): a copy of BASE (the constant part) with
 * every param of REQ, wsgi.url_scheme and wsgi.input. New reference. */
struct app_wsgi_environ_consts {
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

/* Make signal.signal refuse the signals corral owns (a warning is logged);
 * before the app is imported, after app_wsgi_save_signals. With the GIL. */
int app_wsgi_guard_signals(void);

/* Before the import, note how the owned signals are handled; after it,
 * undo any change a C extension made behind signal.signal (BLAME_APP: log
 * a warning for each). */
void app_wsgi_save_signals(void);
void app_wsgi_restore_signals(bool blame_app);

/* start_response (app_wsgi_response.c). Make the type ready once. A new
 * start_response object for REQ (new reference): calling it records the
 * status and headers; its write attribute is PEP 3333's write(). */
int app_wsgi_response_ready(void);
PyObject *app_wsgi_response_new(corral_request *req);

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
