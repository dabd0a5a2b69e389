/*
 * app_asgi_request.c — the module "_corral_asgi" that the loop's code
 * (asgi_glue.py) runs on: the queue of requests the serving threads hand
 * over (take), one Request object per request (its ASGI scope from
 * app_asgi_scope.c; the response written through the request model,
 * src/conn/request.h, never waiting), and the loop's own reports (mark,
 * started, stopped, log).
 *
 * A Request owns its job (app_asgi_state.h) until resume() gives the request
 * back to the worker (app_resume); every method refuses after that. Only
 * the loop thread runs this code, with the GIL.
 */
#include "app_asgi_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn/conn.h"
#include "conn/request.h"
#include "core/clock.h"
#include "core/log.h"

/* Body bytes written in one piece: with the head and the framing they fit
 * the connection's queue (CONN_OUT_CAP) when the socket takes none. */
#define APP_ASGI_PIECE 8192

static struct app_asgi_queue *app_asgi_q; /* the one queue of this process */
static PyTypeObject *app_asgi_request_type;

void app_asgi_queue_push(struct app_asgi_queue *q, struct app_asgi_job *job)
{
    pthread_mutex_lock(&q->lock);
    job->next = q->head;
    q->head = job;
    bool wake = !q->woken;
    q->woken = true;
    pthread_mutex_unlock(&q->lock);
    if (wake)
        app_asgi_signal(q->efd);
}

/* ---- Request ---- */

struct app_asgi_request {
    PyObject_HEAD
    struct app_asgi_job *job; /* NULL once resumed */
    bool close;               /* the connection must be closed */
};

static struct app_asgi_job *app_asgi_job_of(PyObject *self)
{
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    if (!r->job) {
        PyErr_SetString(PyExc_RuntimeError, "the request has ended");
        return NULL;
    }
    return r->job;
}

static void app_asgi_request_dealloc(PyObject *self)
{
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    if (r->job) {
        /* Dropped without resume: the glue always resumes; a worker cannot
         * get its slot back otherwise, so close it. */
        corral_request *req = r->job->req;
        free(r->job);
        r->job = NULL;
        app_resume(app_asgi_q->app, req, true);
    }
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* scope(): the HTTP scope of the request (a new dict each call; its type
 * is "websocket" for an upgrade on the http listener). */
static PyObject *app_asgi_request_scope(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    return app_asgi_scope_new(job->req, strcmp(job->req->conn->codec->name, "http") == 0);
}

/* read(max) -> (bytes, more): up to MAX body bytes that are there now, and
 * whether more is due. (b"", True): none yet, the glue awaits the socket.
 * OSError when the body cannot be read (logged: the front end is gone, a
 * protocol error, an abort). */
static PyObject *app_asgi_request_read(PyObject *self, PyObject *args)
{
    Py_ssize_t max;
    if (!PyArg_ParseTuple(args, "n", &max))
        return NULL;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    struct conn *c = job->req->conn;
    PyObject *out = PyBytes_FromStringAndSize(NULL, max > 0 ? max : 1);
    if (!out)
        return NULL;
    char *p = PyBytes_AS_STRING(out);
    Py_ssize_t got = 0;
    int rc = 1;
    while (got < max) {
        const uint8_t *data;
        size_t len;
        rc = conn_body_next(c, &data, &len);
        if (rc != 1)
            break;
        size_t n = len < (size_t)(max - got) ? len : (size_t)(max - got);
        memcpy(p + got, data, n);
        conn_body_consume(c, n);
        got += (Py_ssize_t)n;
    }
    if (rc < 0) {
        Py_DECREF(out);
        r->close = true;
        return PyErr_Format(PyExc_OSError, "the request body could not be read");
    }
    if (_PyBytes_Resize(&out, got) < 0)
        return NULL;
    return Py_BuildValue("(NO)", out, rc == 0 ? Py_False : Py_True);
}

/* body_wait(waited) -> seconds the loop may wait for body bytes now (None:
 * no deadline), having waited WAITED seconds since the last call; OSError
 * once the body deadline passed (logged; the connection is closed). */
static PyObject *app_asgi_request_body_wait(PyObject *self, PyObject *args)
{
    double waited;
    if (!PyArg_ParseTuple(args, "d", &waited))
        return NULL;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    uint64_t left = conn_body_wait(job->req->conn, waited > 0 ? (uint64_t)(waited * 1e6) : 0);
    if (left == UINT64_MAX)
        Py_RETURN_NONE;
    if (left == 0) {
        r->close = true;
        return PyErr_Format(PyExc_OSError, "the request body was late");
    }
    return PyFloat_FromDouble((double)left / 1000.0);
}

/* start(status, headers): stage the head (sent with the first body bytes). */
static PyObject *app_asgi_request_start(PyObject *self, PyObject *args)
{
    int status;
    PyObject *headers;
    if (!PyArg_ParseTuple(args, "iO", &status, &headers))
        return NULL;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    corral_request *req = job->req;
    if (corral_set_status(req, status, NULL) < 0)
        return PyErr_Format(PyExc_ValueError, "bad status %d", status);
    PyObject *it = PyObject_GetIter(headers);
    if (!it)
        return NULL;
    PyObject *pair;
    while ((pair = PyIter_Next(it))) {
        PyObject *k = NULL, *v = NULL;
        PyObject *seq = PySequence_Fast(pair, "a header is [name, value]");
        Py_DECREF(pair);
        if (!seq)
            break;
        if (PySequence_Fast_GET_SIZE(seq) == 2) {
            k = PySequence_Fast_GET_ITEM(seq, 0);
            v = PySequence_Fast_GET_ITEM(seq, 1);
        }
        char *name, *value;
        Py_ssize_t nl, vl;
        if (!k || !PyBytes_Check(k) || !PyBytes_Check(v)) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_TypeError, "a header is [bytes, bytes]");
            break;
        }
        PyBytes_AsStringAndSize(k, &name, &nl);
        PyBytes_AsStringAndSize(v, &value, &vl);
        int rc = (strlen(name) == (size_t)nl && strlen(value) == (size_t)vl)
                     ? corral_add_header(req, name, value)
                     : -1;
        Py_DECREF(seq);
        if (rc < 0) {
            PyErr_Format(PyExc_ValueError, "invalid header %R", k);
            break;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* A write failed: OSError, the connection is closed after the request. */
static PyObject *app_asgi_write_failed(struct app_asgi_request *r, int err)
{
    r->close = true;
    errno = err > 0 ? err : EPIPE;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* write(data, more_body) -> how many bytes of DATA went out or were queued:
 * all of them, or fewer when the socket is full (the glue awaits
 * writability and writes the rest). The last piece of the last message
 * carries the end of the response; a whole body in one message gets its
 * Content-Length when the app gave none. */
static PyObject *app_asgi_write_data(struct app_asgi_request *r, const char *p, size_t len,
                                     bool more)
{
    corral_request *req = r->job->req;
    struct conn *c = req->conn;
    size_t off = 0;
    PyObject *out = NULL;
    /* Not for the statuses that have no body (RFC 9110 8.6, 15.3.5). */
    if (!more && !req->head_sent && !req->length_seen && req->status >= 200 &&
        req->status != 204 && req->status != 304) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", len);
        corral_add_header(req, "Content-Length", n);
    }
    for (;;) {
        if (conn_wants_write(c)) {
            int rc = conn_push_queued(c);
            if (rc < 0) {
                out = app_asgi_write_failed(r, -rc);
                break;
            }
            if (conn_wants_write(c))
                break; /* full: the glue waits for the socket */
        }
        size_t piece = len - off > APP_ASGI_PIECE ? APP_ASGI_PIECE : len - off;
        bool last = off + piece == len;
        int rc = last && !more ? corral_write_final(req, p + off, piece)
                               : piece ? corral_write(req, p + off, piece) : 0;
        if (rc < 0 || req->failed) {
            out = app_asgi_write_failed(r, EPIPE);
            break;
        }
        off += piece;
        if (last)
            break;
    }
    return out ? out : PyErr_Occurred() ? NULL : PyLong_FromSize_t(off);
}

static PyObject *app_asgi_request_write(PyObject *self, PyObject *args)
{
    Py_buffer data;
    int more;
    if (!PyArg_ParseTuple(args, "y*p", &data, &more))
        return NULL;
    PyObject *out = app_asgi_job_of(self) ? app_asgi_write_data((struct app_asgi_request *)self,
                                                                 data.buf, (size_t)data.len, more)
                                          : NULL;
    PyBuffer_Release(&data);
    return out;
}

/* finish(ok): the end of the response (a 500 when the app failed before
 * its head; a close when it failed after). */
static PyObject *app_asgi_request_finish(PyObject *self, PyObject *args)
{
    int ok;
    if (!PyArg_ParseTuple(args, "p", &ok))
        return NULL;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    if (request_finish(job->req, ok ? 0 : -1) < 0 || job->req->failed)
        r->close = true;
    Py_RETURN_NONE;
}

/* Give the request back to the worker: JOB leaves R. */
static void app_asgi_request_give_back(struct app_asgi_request *r, bool close)
{
    struct app_asgi_job *job = r->job;
    corral_request *req = job->req;
    if (conn_wants_write(req->conn))
        close = true; /* never hand back a connection with bytes queued */
    close = close || r->close;
    free(job);
    r->job = NULL;
    app_resume(app_asgi_q->app, req, close);
}

/* write_last(data) -> True: DATA, the whole last message of the response,
 * went out or was queued (as write(data, False) does), here and now: the
 * send() that calls this returns without a coroutine. False: the caller
 * writes it (write()), as when DATA is more than one piece, or bytes are
 * queued already, or the connection is to be closed. The loop writes its
 * responses itself rather than handing their ends to the serving threads:
 * a hand-over woke the other thread for bursts of responses, and with many
 * requests in flight both threads then idled in turn (see the ASGI
 * figures in README.md). */
static PyObject *app_asgi_request_write_last(PyObject *self, PyObject *arg)
{
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    corral_request *req = job->req;
    if (r->close || req->failed || conn_wants_write(req->conn))
        Py_RETURN_FALSE;
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = data.len > APP_ASGI_PIECE
                        ? Py_NewRef(Py_False)
                        : app_asgi_write_data(r, data.buf, (size_t)data.len, false);
    PyBuffer_Release(&data);
    if (!out || out == Py_False)
        return out;
    Py_DECREF(out);
    Py_RETURN_TRUE;
}

/* end(ok) -> True: the response finished (as finish(ok)) and every byte
 * went out, the request is given back (as resume()); False: bytes wait for
 * the socket (the glue awaits writability, then resume()). */
static PyObject *app_asgi_request_end(PyObject *self, PyObject *args)
{
    int ok;
    if (!PyArg_ParseTuple(args, "p", &ok))
        return NULL;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    struct conn *c = job->req->conn;
    if (request_finish(job->req, ok ? 0 : -1) < 0 || job->req->failed)
        r->close = true;
    if (conn_wants_write(c)) {
        int rc = conn_push_queued(c);
        if (rc < 0)
            r->close = true;
        else if (conn_wants_write(c) && !r->close)
            Py_RETURN_FALSE;
    }
    app_asgi_request_give_back(r, false);
    Py_RETURN_TRUE;
}

/* queued() -> whether bytes wait for the socket; push() sends them. */
static PyObject *app_asgi_request_queued(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    struct conn *c = job->req->conn;
    if (conn_wants_write(c)) {
        int rc = conn_push_queued(c);
        if (rc < 0)
            return app_asgi_write_failed(r, -rc);
    }
    return PyBool_FromLong(conn_wants_write(c));
}

/* gone() -> 1 the front end went away (closed, failed, or a FastCGI
 * ABORT_REQUEST for this request: the connection is then closed at
 * resume), 0 not that we know (bytes that came are kept for the next
 * request), -1 nothing more can be learnt (the read buffer is full). For
 * a request whose body was read to its end; never waits
 * (conn_peer_gone). */
static PyObject *app_asgi_request_gone(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    int v = conn_peer_gone(job->req->conn);
    if (v == 1) {
        /* As a failed write would say (conn/request.h): nothing more goes
         * out, no 500 for an app that then ends without a response, and
         * the access log says 499. */
        job->req->failed = true;
        r->close = true;
    }
    return PyLong_FromLong(v);
}

/* resume(close): give the request back to the worker. */
static PyObject *app_asgi_request_resume(PyObject *self, PyObject *args)
{
    int close = 0;
    if (!PyArg_ParseTuple(args, "|p", &close))
        return NULL;
    struct app_asgi_request *r = (struct app_asgi_request *)self;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    app_asgi_request_give_back(r, close);
    Py_RETURN_NONE;
}

static PyObject *app_asgi_request_get_fd(PyObject *self, void *closure)
{
    (void)closure;
    struct app_asgi_job *job = app_asgi_job_of(self);
    return job ? PyLong_FromLong(job->req->conn->fd) : NULL;
}

/* "GET /path" for log lines. */
static PyObject *app_asgi_request_get_line(PyObject *self, void *closure)
{
    (void)closure;
    struct app_asgi_job *job = ((struct app_asgi_request *)self)->job;
    if (!job)
        return PyUnicode_FromString("- -");
    const char *m = job->req->method, *u = job->req->uri;
    if (!u)
        u = corral_param(job->req, "PATH_INFO");
    return PyUnicode_FromFormat("%s %s", m ? m : "-", u ? u : "-");
}

/* buffered() -> the bytes read from the connection but not decoded (after a
 * WebSocket handshake: the first frames, if the client sent them early). */
static PyObject *app_asgi_request_buffered(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_job *job = app_asgi_job_of(self);
    if (!job)
        return NULL;
    const struct conn *c = job->req->conn;
    return PyBytes_FromStringAndSize((const char *)c->buf + c->buf_start,
                                     (Py_ssize_t)(c->buf_end - c->buf_start));
}

static PyObject *app_asgi_request_get_proto(PyObject *self, void *closure)
{
    (void)closure;
    struct app_asgi_job *job = app_asgi_job_of(self);
    return job ? PyUnicode_FromString(job->req->conn->codec->name) : NULL;
}

static PyMethodDef app_asgi_request_methods[] = {
    {"scope", app_asgi_request_scope, METH_NOARGS, NULL},
    {"read", app_asgi_request_read, METH_VARARGS, NULL},
    {"body_wait", app_asgi_request_body_wait, METH_VARARGS, NULL},
    {"start", app_asgi_request_start, METH_VARARGS, NULL},
    {"write", app_asgi_request_write, METH_VARARGS, NULL},
    {"finish", app_asgi_request_finish, METH_VARARGS, NULL},
    {"end", app_asgi_request_end, METH_VARARGS, NULL},
    {"write_last", app_asgi_request_write_last, METH_O, NULL},
    {"queued", app_asgi_request_queued, METH_NOARGS, NULL},
    {"gone", app_asgi_request_gone, METH_NOARGS, NULL},
    {"resume", app_asgi_request_resume, METH_VARARGS, NULL},
    {"buffered", app_asgi_request_buffered, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef app_asgi_request_getset[] = {
    {"fd", app_asgi_request_get_fd, NULL, NULL, NULL},
    {"line", app_asgi_request_get_line, NULL, NULL, NULL},
    {"proto", app_asgi_request_get_proto, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot app_asgi_request_slots[] = {
    {Py_tp_dealloc, app_asgi_request_dealloc},
    {Py_tp_methods, app_asgi_request_methods},
    {Py_tp_getset, app_asgi_request_getset},
    {0, NULL},
};

static PyType_Spec app_asgi_request_spec = {
    .name = "_corral_asgi.Request",
    .basicsize = sizeof(struct app_asgi_request),
    .flags = APP_WSGI_TYPE_FLAGS,
    .slots = app_asgi_request_slots,
};

/* ---- the module's functions ---- */

/* A list of Requests for the jobs from JOB on (pushed last first): in
 * the order they came. */
static PyObject *app_asgi_requests(struct app_asgi_queue *q, struct app_asgi_job *job)
{
    struct app_asgi_job *first = NULL;
    while (job) { /* oldest first */
        struct app_asgi_job *next = job->next;
        job->next = first;
        first = job;
        job = next;
    }
    job = first;
    PyObject *list = PyList_New(0);
    while (job) {
        struct app_asgi_job *next = job->next;
        struct app_asgi_request *r =
            list ? PyObject_New(struct app_asgi_request, app_asgi_request_type) : NULL;
        if (!r) {
            /* Out of memory: the worker closes the connection. */
            corral_request *req = job->req;
            free(job);
            app_resume(q->app, req, true);
        } else {
            r->job = job;
            r->close = false;
            if (PyList_Append(list, (PyObject *)r) < 0)
                Py_CLEAR(list);
            Py_DECREF(r); /* without the list: its dealloc closes it */
        }
        job = next;
    }
    return list;
}

/* take() -> [Request, ...]: the requests handed over since the last call,
 * in the order they came. */
static PyObject *app_asgi_take(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    struct app_asgi_queue *q = app_asgi_q;
    uint64_t n;
    if (read(q->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_msg(LOG_ERROR, "asgi: read(eventfd) failed: %s", strerror(errno));
    pthread_mutex_lock(&q->lock);
    struct app_asgi_job *job = q->head;
    q->head = NULL;
    q->woken = false;
    pthread_mutex_unlock(&q->lock);
    return app_asgi_requests(q, job);
}

/* mark(busy): the loop starts running (True) or goes to wait (False). */
static PyObject *app_asgi_mark(PyObject *mod, PyObject *busy)
{
    (void)mod;
    atomic_store_explicit(&app_asgi_q->busy_since_us, PyObject_IsTrue(busy) ? clock_now_us() : 0,
                          memory_order_relaxed);
    Py_RETURN_NONE;
}

/* started(ok), stopped(): the lifespan's answers to worker_init and
 * worker_fini. */
static PyObject *app_asgi_started(PyObject *mod, PyObject *ok)
{
    (void)mod;
    struct app_asgi_queue *q = app_asgi_q;
    pthread_mutex_lock(&q->state_lock);
    q->started = PyObject_IsTrue(ok) ? 1 : -1;
    pthread_cond_broadcast(&q->state_cond);
    pthread_mutex_unlock(&q->state_lock);
    Py_RETURN_NONE;
}

static PyObject *app_asgi_stopped(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    struct app_asgi_queue *q = app_asgi_q;
    pthread_mutex_lock(&q->state_lock);
    q->stopped = true;
    pthread_cond_broadcast(&q->state_cond);
    pthread_mutex_unlock(&q->state_lock);
    Py_RETURN_NONE;
}

static PyObject *app_asgi_stopping(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyBool_FromLong(atomic_load(&app_asgi_q->stopping));
}

static PyObject *app_asgi_draining(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyBool_FromLong(atomic_load(&app_asgi_q->draining));
}

/* log(level, text): one line per line of TEXT (0 error, 1 warning, 2 info). */
static PyObject *app_asgi_log(PyObject *mod, PyObject *args)
{
    (void)mod;
    int level;
    const char *text;
    if (!PyArg_ParseTuple(args, "is", &level, &text))
        return NULL;
    enum log_level lv = level == 0 ? LOG_ERROR : level == 1 ? LOG_WARN : LOG_INFO;
    while (*text) {
        size_t n = strcspn(text, "\n");
        log_msg(lv, "asgi: %.*s", (int)n, text);
        text += n + (text[n] == '\n');
    }
    Py_RETURN_NONE;
}

static PyMethodDef app_asgi_functions[] = {
    {"take", app_asgi_take, METH_NOARGS, NULL},
    {"mark", app_asgi_mark, METH_O, NULL},
    {"started", app_asgi_started, METH_O, NULL},
    {"stopped", app_asgi_stopped, METH_NOARGS, NULL},
    {"stopping", app_asgi_stopping, METH_NOARGS, NULL},
    {"draining", app_asgi_draining, METH_NOARGS, NULL},
    {"log", app_asgi_log, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef app_asgi_module = {
    PyModuleDef_HEAD_INIT, .m_name = "_corral_asgi", .m_size = -1, .m_methods = app_asgi_functions,
};

PyObject *app_asgi_module_new(struct app_asgi_queue *q)
{
    app_asgi_q = q;
    PyObject *m = PyModule_Create(&app_asgi_module);
    if (!m)
        return NULL;
    app_asgi_request_type = (PyTypeObject *)PyType_FromSpec(&app_asgi_request_spec);
    if (!app_asgi_request_type || app_asgi_scope_init() < 0 || app_asgi_loop_add(m, q) < 0 ||
        PyModule_AddIntConstant(m, "efd", q->efd) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
