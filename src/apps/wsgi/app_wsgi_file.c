/*
 * app_wsgi_file.c — wsgi.file_wrapper (PEP 3333, "Optional Platform-Specific
 * File Handling"): FileWrapper(filelike, blksize=8192).
 *
 * Returned as the app's result unwrapped, app_wsgi.c sends the file from its
 * current position with corral_sendfile (sendfile(2) on uwsgi and SCGI, read
 * and framed on FastCGI) when the file-like has a fileno() of a regular
 * file. Otherwise — or when middleware iterates it — it is an iterable of
 * read(blksize) blocks. close() closes the file-like. A heap type, made in
 * each interpreter (app_wsgi.h).
 */
#include "app_wsgi.h"

struct app_wsgi_file {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t blksize;
};

static PyObject *app_wsgi_file_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", kwlist, &filelike, &blksize))
        return NULL;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "file_wrapper: blksize must be positive");
        return NULL;
    }
    struct app_wsgi_file *f = (struct app_wsgi_file *)type->tp_alloc(type, 0);
    if (!f)
        return NULL;
    Py_INCREF(filelike);
    f->filelike = filelike;
    f->blksize = blksize;
    return (PyObject *)f;
}

static void app_wsgi_file_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self); /* a heap type: each instance holds a reference */
    Py_XDECREF(((struct app_wsgi_file *)self)->filelike);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyObject *app_wsgi_file_iter(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

/* The next read(blksize) block; NULL without an exception at the end. */
static PyObject *app_wsgi_file_next(PyObject *self)
{
    struct app_wsgi_file *f = (struct app_wsgi_file *)self;
    PyObject *block = PyObject_CallMethod(f->filelike, "read", "n", f->blksize);
    if (block && PyObject_Length(block) == 0) {
        Py_DECREF(block);
        return NULL;
    }
    return block;
}

static PyObject *app_wsgi_file_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_wsgi_file *f = (struct app_wsgi_file *)self;
    PyObject *close = PyObject_GetAttrString(f->filelike, "close");
    if (!close) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return r;
}

static PyMethodDef app_wsgi_file_methods[] = {
    {"close", app_wsgi_file_close, METH_NOARGS, "close(): close the file-like"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot app_wsgi_file_slots[] = {
    {Py_tp_dealloc, app_wsgi_file_dealloc},
    {Py_tp_doc, "wsgi.file_wrapper(filelike, blksize=8192): a file sent with sendfile(2)"},
    {Py_tp_iter, app_wsgi_file_iter},
    {Py_tp_iternext, app_wsgi_file_next},
    {Py_tp_methods, app_wsgi_file_methods},
    {Py_tp_new, app_wsgi_file_new},
    {0, NULL},
};

static PyType_Spec app_wsgi_file_spec = {
    .name = "corral.FileWrapper",
    .basicsize = sizeof(struct app_wsgi_file),
    .flags = APP_WSGI_TYPE_FLAGS,
    .slots = app_wsgi_file_slots,
};

PyObject *app_wsgi_file_wrapper_filelike(const struct app_wsgi_types *types, PyObject *result)
{
    if (Py_TYPE(result) != types->file)
        return NULL;
    return ((struct app_wsgi_file *)result)->filelike;
}

int app_wsgi_file_type_new(struct app_wsgi_types *types)
{
    types->file = (PyTypeObject *)PyType_FromSpec(&app_wsgi_file_spec);
    return types->file ? 0 : -1;
}
