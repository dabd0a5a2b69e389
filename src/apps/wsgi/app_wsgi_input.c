/*
 * app_wsgi_input.c — wsgi.input and wsgi.errors (PEP 3333) as C types (heap
 * types, made in each interpreter: app_wsgi.h).
 *
 * wsgi.input streams the request body from corral_read: read(n), read(),
 * readline(limit), readlines(hint) and iteration by lines. It holds at most
 * one line (or one 64 KiB chunk) in its own buffer, releases the GIL around
 * every read from the front end, and stops at the end of the body (it never
 * reads past CONTENT_LENGTH: corral_read reports the end, and a known
 * length is also counted down here so no read is even attempted after it).
 */
#include "app_wsgi.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum { APP_WSGI_INPUT_CHUNK = 64 * 1024 };

struct app_wsgi_input {
    PyObject_HEAD
    corral_request *req; /* NULL once the request ended */
    int64_t unread;      /* body bytes not pulled from corral yet; -1 unknown */
    bool eof;            /* corral_read reported the end */
    char *buf;           /* bytes pulled but not returned: buf[start, end) */
    size_t start, end, cap;
};

PyObject *app_wsgi_input_new(const struct app_wsgi_types *types, corral_request *req)
{
    struct app_wsgi_input *in = PyObject_New(struct app_wsgi_input, types->input);
    if (!in)
        return NULL;
    in->req = req;
    in->unread = corral_content_length(req);
    in->eof = in->unread == 0;
    in->buf = NULL;
    in->start = in->end = in->cap = 0;
    return (PyObject *)in;
}

void app_wsgi_input_detach(PyObject *input)
{
    ((struct app_wsgi_input *)input)->req = NULL;
}

static void app_wsgi_input_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self); /* a heap type: each instance holds a reference */
    free(((struct app_wsgi_input *)self)->buf);
    PyObject_Free(self);
    Py_DECREF(type);
}

/* Pull up to LEN body bytes into DST with the GIL released. Returns the
 * count, 0 at the end of the body, or -1 with OSError set. */
static Py_ssize_t app_wsgi_input_pull(struct app_wsgi_input *in, char *dst, size_t len)
{
    if (!in->req) {
        PyErr_SetString(PyExc_ValueError, "wsgi.input read after the request ended");
        return -1;
    }
    if (in->eof || len == 0)
        return 0;
    if (in->unread >= 0 && (uint64_t)in->unread < len)
        len = (size_t)in->unread;
    ssize_t n;
    corral_request *req = in->req;
    Py_BEGIN_ALLOW_THREADS
    n = corral_read(req, dst, len);
    Py_END_ALLOW_THREADS
    if (n < 0) {
        in->eof = true;
        PyErr_SetString(PyExc_OSError,
                        "wsgi.input: reading the request body failed (see the error log)");
        return -1;
    }
    if (n == 0)
        in->eof = true;
    if (in->unread > 0) {
        in->unread -= n;
        if (in->unread == 0)
            in->eof = true;
    }
    return n;
}

/* A size argument: absent or None = -1 (no limit), else an int. */
static int app_wsgi_input_size_arg(PyObject *const *args, Py_ssize_t nargs, const char *fn,
                                   Py_ssize_t *out)
{
    *out = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fn, nargs);
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    Py_ssize_t v = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v < 0 ? -1 : v;
    return 0;
}

/* Up to N bytes (N < 0: everything left): the buffer first, then straight
 * from the front end into the result. Short only at the end of the body. */
static PyObject *app_wsgi_input_take(struct app_wsgi_input *in, Py_ssize_t n)
{
    size_t want = n < 0 ? SIZE_MAX : (size_t)n;
    size_t buffered = in->end - in->start;
    size_t cap = want;
    /* Start no bigger than what can still come. */
    if (in->eof)
        cap = buffered < want ? buffered : want;
    else if (in->unread >= 0 && buffered + (uint64_t)in->unread < cap)
        cap = buffered + (size_t)in->unread;
    else if (cap > buffered + APP_WSGI_INPUT_CHUNK)
        cap = buffered + APP_WSGI_INPUT_CHUNK;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    if (!out)
        return NULL;
    size_t got = buffered < cap ? buffered : cap;
    if (got > 0) { /* buf is NULL until the first readline */
        memcpy(PyBytes_AS_STRING(out), in->buf + in->start, got);
        in->start += got;
    }
    while (got < want && !in->eof) {
        if (got == cap) {
            size_t grown = cap > want / 2 ? want : cap * 2;
            if (grown > (size_t)PY_SSIZE_T_MAX)
                grown = (size_t)PY_SSIZE_T_MAX;
            if (_PyBytes_Resize(&out, (Py_ssize_t)grown) < 0)
                return NULL;
            cap = grown;
        }
        Py_ssize_t r = app_wsgi_input_pull(in, PyBytes_AS_STRING(out) + got, cap - got);
        if (r < 0) {
            Py_DECREF(out);
            return NULL;
        }
        got += (size_t)r;
    }
    if (got != cap && _PyBytes_Resize(&out, (Py_ssize_t)got) < 0)
        return NULL;
    return out;
}

static PyObject *app_wsgi_input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n;
    if (app_wsgi_input_size_arg(args, nargs, "read", &n) < 0)
        return NULL;
    return app_wsgi_input_take((struct app_wsgi_input *)self, n);
}

/* One line up to and with its '\n', at most LIMIT bytes (LIMIT < 0: no
 * limit); b"" at the end of the body. */
static PyObject *app_wsgi_input_line(struct app_wsgi_input *in, Py_ssize_t limit)
{
    size_t scanned = 0;
    for (;;) {
        size_t avail = in->end - in->start;
        size_t span = limit >= 0 && (size_t)limit < avail ? (size_t)limit : avail;
        const char *nl = NULL; /* buf is NULL while nothing was buffered */
        if (span > scanned)
            nl = memchr(in->buf + in->start + scanned, '\n', span - scanned);
        size_t len = 0;
        if (nl)
            len = (size_t)(nl - (in->buf + in->start)) + 1;
        else if ((limit >= 0 && avail >= (size_t)limit) || in->eof)
            len = span;
        if (nl || len > 0 || in->eof || limit == 0) {
            PyObject *out =
                PyBytes_FromStringAndSize(len ? in->buf + in->start : "", (Py_ssize_t)len);
            if (out)
                in->start += len;
            return out;
        }
        scanned = span;
        /* Make room at the end: move the pending bytes down, then grow. */
        if (in->start > 0) {
            if (avail > 0)
                memmove(in->buf, in->buf + in->start, avail);
            in->start = 0;
            in->end = avail;
        }
        if (in->cap - in->end < APP_WSGI_INPUT_CHUNK / 4) {
            size_t cap = in->cap ? in->cap * 2 : APP_WSGI_INPUT_CHUNK;
            char *grown = realloc(in->buf, cap);
            if (!grown)
                return PyErr_NoMemory();
            in->buf = grown;
            in->cap = cap;
        }
        Py_ssize_t r = app_wsgi_input_pull(in, in->buf + in->end, in->cap - in->end);
        if (r < 0)
            return NULL;
        in->end += (size_t)r;
    }
}

static PyObject *app_wsgi_input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t limit;
    if (app_wsgi_input_size_arg(args, nargs, "readline", &limit) < 0)
        return NULL;
    return app_wsgi_input_line((struct app_wsgi_input *)self, limit);
}

static PyObject *app_wsgi_input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t hint;
    if (app_wsgi_input_size_arg(args, nargs, "readlines", &hint) < 0)
        return NULL;
    PyObject *lines = PyList_New(0);
    if (!lines)
        return NULL;
    size_t total = 0;
    for (;;) {
        PyObject *line = app_wsgi_input_line((struct app_wsgi_input *)self, -1);
        if (!line)
            goto fail;
        Py_ssize_t len = PyBytes_GET_SIZE(line);
        if (len == 0) {
            Py_DECREF(line);
            break;
        }
        int rc = PyList_Append(lines, line);
        Py_DECREF(line);
        if (rc < 0)
            goto fail;
        total += (size_t)len;
        if (hint > 0 && total >= (size_t)hint)
            break;
    }
    return lines;
fail:
    Py_DECREF(lines);
    return NULL;
}

static PyObject *app_wsgi_input_iter(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

/* Iteration yields lines; NULL without an exception ends it. */
static PyObject *app_wsgi_input_next(PyObject *self)
{
    PyObject *line = app_wsgi_input_line((struct app_wsgi_input *)self, -1);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL;
    }
    return line;
}

static PyMethodDef app_wsgi_input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))app_wsgi_input_read, METH_FASTCALL,
     "read(size=-1): up to size bytes of the body, all of it when size < 0"},
    {"readline", (PyCFunction)(void (*)(void))app_wsgi_input_readline, METH_FASTCALL,
     "readline(limit=-1): one line, at most limit bytes"},
    {"readlines", (PyCFunction)(void (*)(void))app_wsgi_input_readlines, METH_FASTCALL,
     "readlines(hint=-1): the lines left, stopping once hint bytes were read"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot app_wsgi_input_slots[] = {
    {Py_tp_dealloc, app_wsgi_input_dealloc},
    {Py_tp_doc, "wsgi.input: the request body, streamed from the front end"},
    {Py_tp_iter, app_wsgi_input_iter},
    {Py_tp_iternext, app_wsgi_input_next},
    {Py_tp_methods, app_wsgi_input_methods},
    {0, NULL},
};

static PyType_Spec app_wsgi_input_spec = {
    .name = "corral.WsgiInput",
    .basicsize = sizeof(struct app_wsgi_input),
    .flags = APP_WSGI_TYPE_FLAGS | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = app_wsgi_input_slots,
};

/* ---- wsgi.errors ---- */

static PyObject *app_wsgi_errors_write(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t len;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "wsgi.errors.write() takes str, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8AndSize(arg, &len);
    if (!s)
        return NULL;
    /* One log line per line of text; a final newline ends the last one. */
    const char *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        log_msg(LOG_ERROR, "wsgi.errors: %.*s", (int)n, s);
        s += n + (nl != NULL);
    }
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *app_wsgi_errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq);
    if (!it)
        return NULL;
    PyObject *line;
    while ((line = PyIter_Next(it))) {
        PyObject *r = app_wsgi_errors_write(self, line);
        Py_DECREF(line);
        if (!r) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *app_wsgi_errors_flush(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE; /* every line is written when it is complete */
}

static PyMethodDef app_wsgi_errors_methods[] = {
    {"write", app_wsgi_errors_write, METH_O, "write(str): to the error log, line by line"},
    {"writelines", app_wsgi_errors_writelines, METH_O, "writelines(seq): write each"},
    {"flush", app_wsgi_errors_flush, METH_NOARGS, "flush(): nothing is held back"},
    {NULL, NULL, 0, NULL},
};

static void app_wsgi_errors_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyType_Slot app_wsgi_errors_slots[] = {
    {Py_tp_dealloc, app_wsgi_errors_dealloc},
    {Py_tp_doc, "wsgi.errors: writes to corral's error log"},
    {Py_tp_methods, app_wsgi_errors_methods},
    {0, NULL},
};

static PyType_Spec app_wsgi_errors_spec = {
    .name = "corral.WsgiErrors",
    .basicsize = sizeof(PyObject),
    .flags = APP_WSGI_TYPE_FLAGS | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = app_wsgi_errors_slots,
};

PyObject *app_wsgi_errors_new(const struct app_wsgi_types *types)
{
    return (PyObject *)PyObject_New(PyObject, types->errors);
}

int app_wsgi_input_types_new(struct app_wsgi_types *types)
{
    types->input = (PyTypeObject *)PyType_FromSpec(&app_wsgi_input_spec);
    types->errors = (PyTypeObject *)PyType_FromSpec(&app_wsgi_errors_spec);
    return types->input && types->errors ? 0 : -1;
}
