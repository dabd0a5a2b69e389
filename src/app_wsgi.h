/*
 * app_wsgi.h — what the WSGI adapter's files share: app_wsgi.c loads and
 * runs the app, app_wsgi_response.c has start_response and sends the result,
 * app_wsgi_input.c has the wsgi.input and wsgi.errors types,
 * app_wsgi_file.c the wsgi.file_wrapper type.
 *
 * Python.h comes first, before any system header, as CPython requires.
 * Every function here needs the GIL, and returns NULL or -1 with a Python
 * exception set on failure.
 */
#ifndef CORRAL_APP_WSGI_H
#define CORRAL_APP_WSGI_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

#endif
