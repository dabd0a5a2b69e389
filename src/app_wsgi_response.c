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
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct app_wsgi_response {
    PyObject_HEAD
    corral_request *req; /* NULL once the request ended */
    PyObject *headers;   /* [name bytes, value bytes, ...], NULL before start_response */
    int status;
    char reason[128];
    bool head_sent;    /* the head went to corral with the first body byte */
    bool write_failed; /* the front end went away: corral logged it */
};

static PyTypeObject app_wsgi_response_type;

static void app_wsgi_response_dealloc(PyObject *self)
{
    Py_XDECREF(((struct app_wsgi_response *)self)->headers);
    PyObject_Free(self);
}

/* "NNN Reason": a 3-digit code from 100, a space, printable Latin-1. */
static int app_wsgi_parse_status(struct app_wsgi_response *r, PyObject *status)
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
              s[2] <= '9' && s[3] == ' ' && (size_t)len - 4 < sizeof(r->reason);
    for (Py_ssize_t i = 4; ok && i < len; i++)
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "start_response: malformed status %R: expected 'NNN Reason'",
                     status);
        return -1;
    }
    r->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    memcpy(r->reason, s + 4, (size_t)len - 4);
    r->reason[len - 4] = '\0';
    return 0;
}

/* STR as Latin-1 bytes without CR, LF or NUL (and for a name, no ':' and
 * not empty); else ValueError naming the header. New reference or NULL. */
static PyObject *app_wsgi_header_part(PyObject *str, PyObject *name, bool is_name)
{
    if (!PyUnicode_Check(str)) {
        PyErr_Format(PyExc_TypeError, "start_response: header %R: %s must be a str, not %.100s",
                     name, is_name ? "the name" : "the value", Py_TYPE(str)->tp_name);
        return NULL;
    }
    PyObject *b = PyUnicode_AsLatin1String(str);
    if (!b) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError,
                     "start_response: header %R: %s is not Latin-1 (encode it, RFC 8187)", name,
                     is_name ? "the name" : "the value");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(b);
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    if (strcspn(s, "\r\n") != (size_t)n || (is_name && (n == 0 || memchr(s, ':', (size_t)n)))) {
        PyErr_Format(PyExc_ValueError, "start_response: header %R: %s contains CR, LF, NUL%s", name,
                     is_name ? "the name" : "the value", is_name ? " or ':' or is empty" : "");
        Py_DECREF(b);
        return NULL;
    }
    return b;
}

/* start_response(status, headers, exc_info=None) -> write */
static PyObject *app_wsgi_start_response(PyObject *self, PyObject *args, PyObject *kwargs)
{
    struct app_wsgi_response *r = (struct app_wsgi_response *)self;
    static char *kwlist[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", kwlist, &status, &headers,
                                     &exc_info))
        return NULL;
    if (!r->req) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called after the request ended");
        return NULL;
    }
    if (exc_info != Py_None) {
        if (r->head_sent) {
            /* PEP 3333: too late to change the response, re-raise. */
            PyObject *t, *v, *tb;
            if (!PyArg_ParseTuple(exc_info, "OOO:exc_info", &t, &v, &tb))
                return NULL;
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb);
            return NULL;
        }
    } else if (r->headers) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called a second time without exc_info");
        return NULL;
    }
    struct app_wsgi_response parsed;
    if (app_wsgi_parse_status(&parsed, status) < 0)
        return NULL;
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "start_response: the headers must be a list, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(headers);
    PyObject *list = PyList_New(2 * n);
    if (!list)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "start_response: header %zd is not a (name, value) tuple: %R", i, h);
            goto fail;
        }
        PyObject *name = PyTuple_GET_ITEM(h, 0);
        PyObject *nb = app_wsgi_header_part(name, name, true);
        if (!nb)
            goto fail;
        PyList_SET_ITEM(list, 2 * i, nb);
        PyObject *vb = app_wsgi_header_part(PyTuple_GET_ITEM(h, 1), name, false);
        if (!vb)
            goto fail;
        PyList_SET_ITEM(list, 2 * i + 1, vb);
    }
    Py_XSETREF(r->headers, list);
    r->status = parsed.status;
    memcpy(r->reason, parsed.reason, sizeof(r->reason));
    return PyObject_GetAttrString(self, "write");
fail:
    Py_DECREF(list);
    return NULL;
}

/* Give corral the status and headers from start_response, once, before
 * the first body byte (BODY: whether body bytes are what comes next, for
 * the message). Returns 0, or -1 with an exception set. */
static int app_wsgi_head(struct app_wsgi_response *r, bool body)
{
    if (!r->headers) {
        PyErr_SetString(PyExc_RuntimeError,
                        body ? "the app sent body bytes before calling start_response"
                             : "the app returned without calling start_response");
        return -1;
    }
    corral_request *req = r->req;
    if (!r->head_sent) {
        if (corral_set_status(req, r->status, r->reason[0] ? r->reason : NULL) < 0) {
            PyErr_Format(PyExc_ValueError, "start_response: status %d refused", r->status);
            return -1;
        }
        for (Py_ssize_t i = 0; i + 1 < PyList_GET_SIZE(r->headers); i += 2) {
            const char *name = PyBytes_AS_STRING(PyList_GET_ITEM(r->headers, i));
            if (corral_add_header(req, name,
                                  PyBytes_AS_STRING(PyList_GET_ITEM(r->headers, i + 1))) < 0) {
                PyErr_Format(PyExc_ValueError, "start_response: header '%s' refused", name);
                return -1;
            }
        }
        r->head_sent = true;
    }
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

static PyMethodDef app_wsgi_response_methods[] = {
    {"write", app_wsgi_write, METH_O, "write(data): send body bytes now (PEP 3333)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject app_wsgi_response_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "corral.StartResponse",
    .tp_basicsize = sizeof(struct app_wsgi_response),
    .tp_dealloc = app_wsgi_response_dealloc,
    .tp_call = app_wsgi_start_response,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "start_response(status, headers, exc_info=None) -> write",
    .tp_methods = app_wsgi_response_methods,
};

/* The Content-Length the app gave, or -1. */
static long long app_wsgi_content_length(struct app_wsgi_response *r)
{
    for (Py_ssize_t i = 0; i + 1 < PyList_GET_SIZE(r->headers); i += 2) {
        if (strcasecmp(PyBytes_AS_STRING(PyList_GET_ITEM(r->headers, i)), "Content-Length") == 0) {
            char *end;
            const char *v = PyBytes_AS_STRING(PyList_GET_ITEM(r->headers, i + 1));
            long long n = strtoll(v, &end, 10);
            return end != v && *end == '\0' && n >= 0 ? n : -1;
        }
    }
    return -1;
}

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
    long long len = off < (long long)st.st_size ? (long long)st.st_size - off : 0;
    long long cl = app_wsgi_content_length(r);
    if (cl >= 0 && cl < len)
        len = cl;
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
    PyObject *filelike = app_wsgi_file_wrapper_filelike(result);
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

int app_wsgi_response_ready(void)
{
    return PyType_Ready(&app_wsgi_response_type);
}

PyObject *app_wsgi_response_new(corral_request *req)
{
    struct app_wsgi_response *r = PyObject_New(struct app_wsgi_response, &app_wsgi_response_type);
    if (!r)
        return NULL;
    r->req = req;
    r->headers = NULL;
    r->status = 0;
    r->reason[0] = '\0';
    r->head_sent = r->write_failed = false;
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
