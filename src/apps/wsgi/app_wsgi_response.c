/*
 * app_wsgi_response.c — the response side of a WSGI request: the
 * start_response callable (one object per request, which is also the
 * write() callable's owner), header and status checks, and sending the
 * app's result: a wsgi.file_wrapper of a regular file with sendfile, a
 * one-item list in one write, anything else chunk by chunk as the app
 * yields it. The GIL is released around every write.
 */
#include "app_wsgi.h"

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "conn/request.h"

struct app_wsgi_response {
    PyObject_HEAD
    vectorcallfunc vectorcall;          /* start_response is called through this */
    corral_request *req;                /* NULL once the request ended */
    bool started;                       /* start_response staged a status and headers */
    bool head_sent;                     /* the head went out with the first body byte */
    bool write_failed;                  /* the front end went away: corral logged it */
    const struct app_wsgi_types *types; /* of this interpreter (wsgi.file_wrapper) */
};

static void app_wsgi_response_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self); /* a heap type: each instance holds a reference */
    PyObject_Free(self);
    Py_DECREF(type);
}

/* "NNN Reason": a 3-digit code from 100, a space, printable Latin-1 that
 * fits corral's reason buffer. */
static int app_wsgi_parse_status(PyObject *status, int *code, char *reason, size_t cap)
{
    Py_ssize_t len;
    const char *s = PyUnicode_Check(status) ? PyUnicode_AsUTF8AndSize(status, &len) : NULL;
    if (!s) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "start_response: the status must be a str, not %.100s",
                     Py_TYPE(status)->tp_name);
        return -1;
    }
    bool ok = len >= 4 && s[0] >= '1' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
              s[2] <= '9' && s[3] == ' ' && (size_t)len - 4 < cap;
    for (Py_ssize_t i = 4; ok && i < len; i++)
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    if (!ok) {
        PyErr_Format(PyExc_ValueError,
                     "start_response: malformed status %R: expected 'NNN Reason' (reason up to "
                     "%zu characters)",
                     status, cap - 1);
        return -1;
    }
    *code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    memcpy(reason, s + 4, (size_t)len - 4);
    reason[len - 4] = '\0';
    return 0;
}

/* The Latin-1 bytes of the str STR (NUL-terminated, borrowed from the str:
 * a str whose characters all fit one byte stores exactly those), checked:
 * no CR, LF or NUL, for a value no other control byte but HTAB, and for a
 * name no ':' and not empty. NULL with
 * TypeError or ValueError naming the header. */
static const char *app_wsgi_header_part(PyObject *str, PyObject *name, bool is_name)
{
    const char *what = is_name ? "the name" : "the value";
    if (!PyUnicode_Check(str)) {
        PyErr_Format(PyExc_TypeError, "start_response: header %R: %s must be a str, not %.100s",
                     name, what, Py_TYPE(str)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    /* Every string is ready from 3.12 on (and the call is deprecated). */
    if (PyUnicode_READY(str) < 0)
        return NULL;
#endif
    if (PyUnicode_KIND(str) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError,
                     "start_response: header %R: %s is not Latin-1 (encode it, RFC 8187)", name,
                     what);
        return NULL;
    }
    const char *s = (const char *)PyUnicode_1BYTE_DATA(str);
    size_t n = (size_t)PyUnicode_GET_LENGTH(str);
    if (strcspn(s, "\r\n") != n || (is_name && (n == 0 || memchr(s, ':', n)))) {
        PyErr_Format(PyExc_ValueError, "start_response: header %R: %s contains CR, LF, NUL%s", name,
                     what, is_name ? " or ':' or is empty" : "");
        return NULL;
    }
    if (!is_name && !request_header_value_ok(s, n)) {
        PyErr_Format(PyExc_ValueError,
                     "start_response: header %R: the value contains a control character "
                     "(only visible characters, SP and HTAB may be sent, RFC 9110 5.5)",
                     name);
        return NULL;
    }
    return s;
}

/* Check HEADERS (a list of (str, str)) whole, then stage STATUS and them
 * in corral, replacing whatever an earlier call staged. 0, or -1 with an
 * exception set and nothing staged. */
static int app_wsgi_stage(struct app_wsgi_response *r, PyObject *status, PyObject *headers)
{
    int code;
    char reason[64];
    if (app_wsgi_parse_status(status, &code, reason, sizeof(reason)) < 0)
        return -1;
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "start_response: the headers must be a list, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "start_response: header %zd is not a (name, value) tuple: %R", i, h);
            return -1;
        }
        PyObject *name = PyTuple_GET_ITEM(h, 0);
        if (!app_wsgi_header_part(name, name, true) ||
            !app_wsgi_header_part(PyTuple_GET_ITEM(h, 1), name, false))
            return -1;
    }
    corral_request *req = r->req;
    request_reset_head(req);
    corral_set_status(req, code, reason[0] ? reason : NULL);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(headers, i);
        const char *name = (const char *)PyUnicode_1BYTE_DATA(PyTuple_GET_ITEM(h, 0));
        if (corral_add_header(req, name,
                              (const char *)PyUnicode_1BYTE_DATA(PyTuple_GET_ITEM(h, 1))) < 0) {
            request_reset_head(req);
            PyErr_Format(PyExc_ValueError,
                         "start_response: header '%s' refused (not an RFC 9110 token, or out of "
                         "memory)",
                         name);
            return -1;
        }
    }
    return 0;
}

static PyMethodDef app_wsgi_write_def;

/* start_response(status, headers, exc_info=None) -> write, called through
 * vectorcall: no argument tuple is built. */
static PyObject *app_wsgi_start_response(PyObject *self, PyObject *const *args, size_t nargsf,
                                         PyObject *kwnames)
{
    struct app_wsgi_response *r = (struct app_wsgi_response *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *argv[3] = {NULL, NULL, Py_None};
    static const char *const names[] = {"status", "headers", "exc_info"};
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        argv[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        const char *kw = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        int at = -1;
        for (int j = 0; kw && j < 3; j++)
            if (strcmp(kw, names[j]) == 0)
                at = j;
        if (at < 0 || at < nargs) {
            PyErr_Format(PyExc_TypeError,
                         "start_response() got an unexpected or repeated "
                         "keyword argument %R",
                         PyTuple_GET_ITEM(kwnames, k));
            return NULL;
        }
        argv[at] = args[nargs + k];
    }
    if (!argv[0] || !argv[1]) {
        PyErr_SetString(PyExc_TypeError, "start_response() needs status and headers");
        return NULL;
    }
    if (!r->req) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called after the request ended");
        return NULL;
    }
    PyObject *exc_info = argv[2];
    if (exc_info != Py_None) {
        if (r->head_sent) {
            /* PEP 3333: too late to change the response, re-raise. */
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                PyErr_SetString(PyExc_TypeError, "start_response: exc_info must be a 3-tuple");
                return NULL;
            }
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
#if PY_VERSION_HEX >= 0x030C0000
            /* PyErr_Restore is deprecated since 3.12: raise the value with
             * its traceback (or the type with the value as argument). */
            if (PyExceptionInstance_Check(v)) {
                if (PyTraceBack_Check(tb))
                    PyException_SetTraceback(v, tb);
                PyErr_SetRaisedException(Py_NewRef(v));
            } else {
                PyErr_SetObject(PyExceptionClass_Check(t) ? t : PyExc_TypeError, v);
            }
#else
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb);
#endif
            return NULL;
        }
    } else if (r->started) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called a second time without exc_info");
        return NULL;
    }
    if (app_wsgi_stage(r, argv[0], argv[1]) < 0)
        return NULL;
    r->started = true;
    return PyCFunction_New(&app_wsgi_write_def, self);
}

/* The head goes out with the first body byte: before it, check that
 * start_response was called (BODY: whether body bytes are what comes next,
 * for the message). Returns 0, or -1 with an exception set. */
static int app_wsgi_head(struct app_wsgi_response *r, bool body)
{
    if (!r->started) {
        PyErr_SetString(PyExc_RuntimeError,
                        body ? "the app sent body bytes before calling start_response"
                             : "the app returned without calling start_response");
        return -1;
    }
    r->head_sent = true;
    return 0;
}

/* Send the body piece DATA (bytes, or NULL for none) through corral, the
 * head first if it has not gone yet; FINAL ends the response. The GIL is
 * released during the write. Returns 0, or -1 with an exception set. */
static int app_wsgi_send(struct app_wsgi_response *r, PyObject *data, bool final)
{
    if (app_wsgi_head(r, data != NULL) < 0)
        return -1;
    corral_request *req = r->req;
    const char *p = data ? PyBytes_AS_STRING(data) : "";
    size_t len = data ? (size_t)PyBytes_GET_SIZE(data) : 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = final ? corral_write_final(req, p, len) : corral_write(req, p, len);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        r->write_failed = true;
        PyErr_SetString(PyExc_OSError, "writing the response failed: the front end went away "
                                       "or timed out");
        return -1;
    }
    return 0;
}

/* The write(data) callable start_response returns. */
static PyObject *app_wsgi_write(PyObject *self, PyObject *data)
{
    struct app_wsgi_response *r = (struct app_wsgi_response *)self;
    if (!r->req) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after the request ended");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "the body must be bytes: write() got %.100s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (PyBytes_GET_SIZE(data) > 0 && app_wsgi_send(r, data, false) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef app_wsgi_write_def = {"write", app_wsgi_write, METH_O,
                                         "write(data): send body bytes now (PEP 3333)"};

/* start_response is called through the vectorcall pointer in each object:
 * a heap type names its offset with this member. */
static PyMemberDef app_wsgi_response_members[] = {
    {"__vectorcalloffset__", APP_WSGI_T_PYSSIZET, offsetof(struct app_wsgi_response, vectorcall),
     APP_WSGI_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot app_wsgi_response_slots[] = {
    {Py_tp_dealloc, app_wsgi_response_dealloc},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, app_wsgi_response_members},
    {Py_tp_doc, "start_response(status, headers, exc_info=None) -> write"},
    {0, NULL},
};

static PyType_Spec app_wsgi_response_spec = {
    .name = "corral.StartResponse",
    .basicsize = sizeof(struct app_wsgi_response),
    .flags = APP_WSGI_TYPE_FLAGS | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = app_wsgi_response_slots,
};

/* Send the rest of FILELIKE (a wsgi.file_wrapper's) from its position with
 * corral_sendfile, no more than the app's Content-Length. Returns 1 when
 * sent, 0 when it is not a regular file with fileno() and tell() (the
 * caller iterates it instead), -1 with an exception set. */
static int app_wsgi_sendfile(struct app_wsgi_response *r, PyObject *filelike)
{
    PyObject *o = PyObject_CallMethod(filelike, "fileno", NULL);
    long fd = o ? PyLong_AsLong(o) : -1;
    Py_XDECREF(o);
    struct stat st;
    if (fd < 0 || fd > INT_MAX || fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        PyErr_Clear(); /* not a file: iterate it */
        return 0;
    }
    o = PyObject_CallMethod(filelike, "tell", NULL);
    long long off = o ? PyLong_AsLongLong(o) : -1;
    Py_XDECREF(o);
    if (off < 0) {
        PyErr_Clear();
        return 0;
    }
    if (app_wsgi_head(r, true) < 0)
        return -1;
    /* A wrapped file longer than the Content-Length is sent up to it, as
     * PEP 3333 describes (not an error of the app). */
    long long len = off < (long long)st.st_size ? (long long)st.st_size - off : 0;
    if ((uint64_t)len > request_body_left(r->req))
        len = (long long)request_body_left(r->req);
    corral_request *req = r->req;
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    if (len > 0)
        rc = corral_sendfile(req, (int)fd, (off_t)off, (size_t)len);
    if (rc == 0)
        rc = corral_write_final(req, "", 0);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        r->write_failed = true;
        PyErr_SetString(PyExc_OSError, "sending the file failed: the front end went away or "
                                       "timed out");
        return -1;
    }
    return 1;
}

/* Send the app's RESULT: a wsgi.file_wrapper of a regular file with
 * corral_sendfile, one bytes in a list or tuple in one final write, else
 * each chunk as it comes. Returns 0, or -1 with an exception set. */
int app_wsgi_response_body(PyObject *response, PyObject *result)
{
    struct app_wsgi_response *r = (struct app_wsgi_response *)response;
    PyObject *filelike = app_wsgi_file_wrapper_filelike(r->types, result);
    if (filelike) {
        int sent = app_wsgi_sendfile(r, filelike);
        if (sent != 0)
            return sent < 0 ? -1 : 0;
    }
    if ((PyList_CheckExact(result) || PyTuple_CheckExact(result)) &&
        PySequence_Fast_GET_SIZE(result) == 1) {
        PyObject *only = PySequence_Fast_GET_ITEM(result, 0);
        if (PyBytes_CheckExact(only))
            return app_wsgi_send(r, only, true);
    }
    PyObject *it = PyObject_GetIter(result);
    if (!it)
        return -1;
    PyObject *chunk;
    while ((chunk = PyIter_Next(it))) {
        int rc = 0;
        if (!PyBytes_Check(chunk)) {
            PyErr_Format(PyExc_TypeError, "the body must be bytes: the app yielded %.100s",
                         Py_TYPE(chunk)->tp_name);
            rc = -1;
        } else if (PyBytes_GET_SIZE(chunk) > 0) {
            rc = app_wsgi_send(r, chunk, false);
        }
        Py_DECREF(chunk);
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return -1;
    return app_wsgi_send(r, NULL, true);
}

int app_wsgi_response_type_new(struct app_wsgi_types *types)
{
    types->response = (PyTypeObject *)PyType_FromSpec(&app_wsgi_response_spec);
    return types->response ? 0 : -1;
}

PyObject *app_wsgi_response_new(const struct app_wsgi_types *types, corral_request *req)
{
    struct app_wsgi_response *r = PyObject_New(struct app_wsgi_response, types->response);
    if (!r)
        return NULL;
    r->types = types;
    r->vectorcall = app_wsgi_start_response;
    r->req = req;
    r->started = r->head_sent = r->write_failed = false;
    return (PyObject *)r;
}

bool app_wsgi_response_write_failed(PyObject *response)
{
    return ((struct app_wsgi_response *)response)->write_failed;
}

void app_wsgi_response_detach(PyObject *response)
{
    ((struct app_wsgi_response *)response)->req = NULL;
}
