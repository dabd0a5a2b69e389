/*
 * app_asgi_loop.c — the ASGI worker's event loop: asyncio's selector loop
 * with its per-callback paths in C. LoopCore is a base class whose methods
 * take the place of asyncio's call_soon, call_at, call_later, time,
 * create_future and _run_once, and Handle and TimerHandle are what they
 * make. asgi_glue.py's loop class is LoopCore first, then asyncio's
 * SelectorEventLoop: readers, writers, sockets, the exception handler,
 * run_forever and the rest stay asyncio's own and see the same state,
 * because LoopCore keeps asyncio's attribute names (_ready, _scheduled,
 * _stopping, _closed, ...) as its C fields.
 *
 * Why: with many requests in flight, asyncio's Python Handle, TimerHandle
 * and _run_once were about half of the loop's CPU a request (a request
 * that sleeps once makes three handles and a timer), and the loop's CPU
 * a request is what a wave of requests waits for.
 *
 * What differs from asyncio: the ready queue is a list (asyncio's own code
 * only appends to it and clears it; only _run_once takes from it, by
 * index); in debug mode call_soon and call_at make asyncio's checks and
 * keep where each handle was made, but no slow-callback warning is logged
 * (the worker's watchdog names a loop that blocks).
 * Every function needs the GIL; _run_once runs on the loop's thread.
 */
#include "app_asgi_state.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

/* asyncio's: a select() never waits longer (base_events.py's
 * MAXIMUM_SELECT_TIMEOUT); the cancelled timers are swept out of the heap
 * when there are more than 100 and they are more than half of it. */
#define APP_ASGI_MAX_SELECT 86400.0
#define APP_ASGI_SWEEP_MIN 100
#define APP_ASGI_SWEEP_FRACTION 0.5

/* The loop's state, under asyncio's attribute names (members below). */
struct app_asgi_loop {
    PyObject_HEAD
    PyObject *ready;     /* _ready: a list of handles, run in order */
    PyObject *scheduled; /* _scheduled: a heap (list) of TimerHandles by when */
    PyObject *selector;  /* _selector */
    PyObject *debug;     /* _debug */
    double clock_resolution;
    Py_ssize_t timer_cancelled_count;
    char stopping, closed;
};

/* A Handle; a TimerHandle has when and scheduled too. */
struct app_asgi_handle {
    PyObject_HEAD
    PyObject *callback; /* Py_None once cancelled */
    PyObject *args;     /* a tuple; Py_None once cancelled */
    PyObject *context;
    PyObject *loop;
    PyObject *source_traceback; /* debug mode: where it was made; else NULL */
    char cancelled;
    char scheduled; /* TimerHandle: in the loop's heap */
    double when;    /* TimerHandle: due at the loop's time() */
};

static PyTypeObject *app_asgi_loop_type, *app_asgi_handle_type, *app_asgi_timer_type;
static PyObject *app_asgi_future_type;       /* asyncio.Future */
static PyObject *app_asgi_helpers;           /* asyncio.format_helpers */
static PyObject *app_asgi_loop_kw;           /* ("loop",) */
static _Atomic uint64_t *app_asgi_loop_busy; /* the watchdog's mark (app_asgi_queue) */

#define APP_ASGI_NAMES(X)                                                                          \
    X(select)                                                                                      \
    X(_process_events)                                                                             \
    X(call_exception_handler) X(_check_thread) X(_check_callback) X(_timer_handle_cancelled)       \
        X(_format_callback_source) X(extract_stack) X(_cancelled) X(_run) X(message) X(exception)  \
            X(handle)
#define APP_ASGI_NAME_FIELD(n) PyObject *n;
static struct {
    APP_ASGI_NAMES(APP_ASGI_NAME_FIELD)
} app_asgi_str;

/* The monotonic clock in seconds, as time.monotonic() gives it. */
static double app_asgi_loop_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec) / 1e9;
}

/* ---- Handle, TimerHandle ---- */

static PyObject *app_asgi_handle_new(PyTypeObject *type, PyObject *callback, PyObject *const *args,
                                     Py_ssize_t nargs, PyObject *context, PyObject *loop)
{
    PyObject *tuple = PyTuple_New(nargs);
    if (!tuple)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    if (context == Py_None || !context)
        context = PyContext_CopyCurrent();
    else
        Py_INCREF(context);
    struct app_asgi_handle *h = context ? PyObject_GC_New(struct app_asgi_handle, type) : NULL;
    if (!h) {
        Py_DECREF(tuple);
        Py_XDECREF(context);
        return NULL;
    }
    h->callback = Py_NewRef(callback);
    h->args = tuple;
    h->context = context;
    h->loop = Py_NewRef(loop);
    h->source_traceback = NULL;
    h->cancelled = 0;
    h->scheduled = 0;
    h->when = 0;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

static int app_asgi_handle_traverse(PyObject *self, visitproc visit, void *arg)
{
    struct app_asgi_handle *h = (struct app_asgi_handle *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(h->callback);
    Py_VISIT(h->args);
    Py_VISIT(h->context);
    Py_VISIT(h->loop);
    Py_VISIT(h->source_traceback);
    return 0;
}

static int app_asgi_handle_clear(PyObject *self)
{
    struct app_asgi_handle *h = (struct app_asgi_handle *)self;
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
    Py_CLEAR(h->context);
    Py_CLEAR(h->loop);
    Py_CLEAR(h->source_traceback);
    return 0;
}

static void app_asgi_handle_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    app_asgi_handle_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* "Exception in callback ..." as asyncio words it (its format_helpers),
 * or with the callback's repr when that fails. New reference or NULL. */
static PyObject *app_asgi_callback_message(struct app_asgi_handle *h)
{
    PyObject *source = PyObject_CallMethodObjArgs(
        app_asgi_helpers, app_asgi_str._format_callback_source, h->callback, h->args, NULL);
    if (!source) {
        PyErr_Clear();
        return PyUnicode_FromFormat("Exception in callback %R", h->callback);
    }
    PyObject *msg = PyUnicode_FromFormat("Exception in callback %U", source);
    Py_DECREF(source);
    return msg;
}

/* The callback of H raised: SystemExit and KeyboardInterrupt go on up
 * (-1), anything else goes to the loop's exception handler, as asyncio's
 * Handle._run does (0). */
static int app_asgi_handle_failed(struct app_asgi_handle *h)
{
    if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
        return -1;
    PyObject *exc = app_wsgi_take_exception();
    PyObject *msg = app_asgi_callback_message(h);
    PyObject *context = msg ? PyDict_New() : NULL;
    int rc = -1;
    if (context && PyDict_SetItem(context, app_asgi_str.message, msg) == 0 &&
        PyDict_SetItem(context, app_asgi_str.exception, exc ? exc : Py_None) == 0 &&
        PyDict_SetItem(context, app_asgi_str.handle, (PyObject *)h) == 0 &&
        (!h->source_traceback ||
         PyDict_SetItemString(context, "source_traceback", h->source_traceback) == 0)) {
        PyObject *r =
            PyObject_CallMethodOneArg(h->loop, app_asgi_str.call_exception_handler, context);
        Py_XDECREF(r);
        rc = r ? 0 : -1;
    }
    Py_XDECREF(context);
    Py_XDECREF(msg);
    Py_XDECREF(exc);
    return rc;
}

/* Run H's callback in its context: 0, or -1 with the exception that must
 * stop the loop. */
static int app_asgi_handle_run(struct app_asgi_handle *h)
{
    /* The handle may be cancelled by its own callback: hold what it runs. */
    PyObject *callback = Py_NewRef(h->callback), *args = Py_NewRef(h->args);
    PyObject *context = Py_NewRef(h->context);
    PyObject *r = NULL;
    if (PyContext_Enter(context) == 0) {
        r = PyObject_Vectorcall(callback, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args), NULL);
        if (PyContext_Exit(context) < 0)
            Py_CLEAR(r);
    }
    Py_DECREF(callback);
    Py_DECREF(args);
    Py_DECREF(context);
    if (r) {
        Py_DECREF(r);
        return 0;
    }
    return app_asgi_handle_failed(h);
}

static PyObject *app_asgi_handle_py_run(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_handle *h = (struct app_asgi_handle *)self;
    if (h->cancelled)
        Py_RETURN_NONE;
    if (app_asgi_handle_run(h) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* cancel(): as asyncio's; a TimerHandle still in the heap is counted for
 * the loop's sweep. */
static PyObject *app_asgi_handle_cancel(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_handle *h = (struct app_asgi_handle *)self;
    if (h->cancelled)
        Py_RETURN_NONE;
    if (h->scheduled) {
        if (Py_IS_TYPE(h->loop, app_asgi_loop_type) ||
            PyObject_TypeCheck(h->loop, app_asgi_loop_type)) {
            ((struct app_asgi_loop *)h->loop)->timer_cancelled_count++;
        } else {
            PyObject *r =
                PyObject_CallMethodOneArg(h->loop, app_asgi_str._timer_handle_cancelled, self);
            if (!r)
                return NULL;
            Py_DECREF(r);
        }
    }
    h->cancelled = 1;
    Py_SETREF(h->callback, Py_NewRef(Py_None));
    Py_SETREF(h->args, Py_NewRef(Py_None));
    Py_RETURN_NONE;
}

static PyObject *app_asgi_handle_cancelled(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(((struct app_asgi_handle *)self)->cancelled);
}

static PyObject *app_asgi_handle_get_context(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(((struct app_asgi_handle *)self)->context);
}

static PyObject *app_asgi_handle_when(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyFloat_FromDouble(((struct app_asgi_handle *)self)->when);
}

static PyObject *app_asgi_handle_repr(PyObject *self)
{
    struct app_asgi_handle *h = (struct app_asgi_handle *)self;
    const char *state = h->cancelled ? " cancelled" : "";
    if (Py_IS_TYPE(self, app_asgi_timer_type)) {
        PyObject *when = PyFloat_FromDouble(h->when);
        PyObject *r =
            when ? PyUnicode_FromFormat("<TimerHandle%s when=%R %R>", state, when, h->callback)
                 : NULL;
        Py_XDECREF(when);
        return r;
    }
    return PyUnicode_FromFormat("<Handle%s %R>", state, h->callback);
}

/* Ordered by when, as asyncio's TimerHandle (the heap uses when directly). */
static PyObject *app_asgi_handle_richcompare(PyObject *a, PyObject *b, int op)
{
    if (!PyObject_TypeCheck(a, app_asgi_timer_type) ||
        !PyObject_TypeCheck(b, app_asgi_timer_type) || op == Py_EQ || op == Py_NE)
        Py_RETURN_NOTIMPLEMENTED;
    Py_RETURN_RICHCOMPARE(((struct app_asgi_handle *)a)->when, ((struct app_asgi_handle *)b)->when,
                          op);
}

static PyObject *app_asgi_handle_get_none(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    Py_RETURN_NONE;
}

/* Where the handle was made, in debug mode (asyncio's list of frames), else None. */
static PyObject *app_asgi_handle_get_source(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *tb = ((struct app_asgi_handle *)self)->source_traceback;
    return Py_NewRef(tb ? tb : Py_None);
}

static PyMethodDef app_asgi_handle_methods[] = {
    {"cancel", app_asgi_handle_cancel, METH_NOARGS, NULL},
    {"cancelled", app_asgi_handle_cancelled, METH_NOARGS, NULL},
    {"get_context", app_asgi_handle_get_context, METH_NOARGS, NULL},
    {"_run", app_asgi_handle_py_run, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

#define APP_ASGI_HANDLE_FIELD(name, field, type)                                                   \
    {                                                                                              \
        name, type, offsetof(struct app_asgi_handle, field), APP_WSGI_READONLY, NULL               \
    }
static PyMemberDef app_asgi_handle_members[] = {
    APP_ASGI_HANDLE_FIELD("_callback", callback, APP_WSGI_T_OBJECT),
    APP_ASGI_HANDLE_FIELD("_args", args, APP_WSGI_T_OBJECT),
    APP_ASGI_HANDLE_FIELD("_context", context, APP_WSGI_T_OBJECT),
    APP_ASGI_HANDLE_FIELD("_loop", loop, APP_WSGI_T_OBJECT),
    APP_ASGI_HANDLE_FIELD("_cancelled", cancelled, APP_WSGI_T_BOOL),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef app_asgi_handle_getset[] = {
    {"_source_traceback", app_asgi_handle_get_source, NULL, NULL, NULL},
    {"_repr", app_asgi_handle_get_none, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot app_asgi_handle_slots[] = {
    {Py_tp_dealloc, app_asgi_handle_dealloc}, {Py_tp_traverse, app_asgi_handle_traverse},
    {Py_tp_clear, app_asgi_handle_clear},     {Py_tp_repr, app_asgi_handle_repr},
    {Py_tp_methods, app_asgi_handle_methods}, {Py_tp_members, app_asgi_handle_members},
    {Py_tp_getset, app_asgi_handle_getset},   {0, NULL},
};

static PyType_Spec app_asgi_handle_spec = {
    .name = "_corral_asgi.Handle",
    .basicsize = sizeof(struct app_asgi_handle),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = app_asgi_handle_slots,
};

static PyMethodDef app_asgi_timer_methods[] = {
    {"when", app_asgi_handle_when, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef app_asgi_timer_members[] = {
    {"_when", APP_WSGI_T_DOUBLE, offsetof(struct app_asgi_handle, when), APP_WSGI_READONLY, NULL},
    {"_scheduled", APP_WSGI_T_BOOL, offsetof(struct app_asgi_handle, scheduled), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot app_asgi_timer_slots[] = {
    {Py_tp_dealloc, app_asgi_handle_dealloc},
    {Py_tp_traverse, app_asgi_handle_traverse},
    {Py_tp_clear, app_asgi_handle_clear},
    {Py_tp_richcompare, app_asgi_handle_richcompare},
    {Py_tp_methods, app_asgi_timer_methods},
    {Py_tp_members, app_asgi_timer_members},
    {0, NULL},
};

static PyType_Spec app_asgi_timer_spec = {
    .name = "_corral_asgi.TimerHandle",
    .basicsize = sizeof(struct app_asgi_handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = app_asgi_timer_slots,
};

/* ---- the timer heap: heapq's algorithm (the same order for equal
 * times), on when ---- */

static double app_asgi_when(PyObject *list, Py_ssize_t i)
{
    return ((struct app_asgi_handle *)PyList_GET_ITEM(list, i))->when;
}

/* heapq's _siftdown: the item at POS moves up towards START. */
static void app_asgi_heap_up(PyObject *heap, Py_ssize_t start, Py_ssize_t pos)
{
    PyObject *item = PyList_GET_ITEM(heap, pos);
    double when = ((struct app_asgi_handle *)item)->when;
    while (pos > start) {
        Py_ssize_t parent = (pos - 1) >> 1;
        if (!(when < app_asgi_when(heap, parent)))
            break;
        PyList_SET_ITEM(heap, pos, PyList_GET_ITEM(heap, parent));
        pos = parent;
    }
    PyList_SET_ITEM(heap, pos, item);
}

/* heapq's _siftup: the item at POS goes down to a leaf, then up. */
static void app_asgi_heap_down(PyObject *heap, Py_ssize_t pos)
{
    Py_ssize_t end = PyList_GET_SIZE(heap), start = pos;
    PyObject *item = PyList_GET_ITEM(heap, pos);
    Py_ssize_t child = 2 * pos + 1;
    while (child < end) {
        Py_ssize_t right = child + 1;
        if (right < end && !(app_asgi_when(heap, child) < app_asgi_when(heap, right)))
            child = right;
        PyList_SET_ITEM(heap, pos, PyList_GET_ITEM(heap, child));
        pos = child;
        child = 2 * pos + 1;
    }
    PyList_SET_ITEM(heap, pos, item);
    app_asgi_heap_up(heap, start, pos);
}

static int app_asgi_heap_push(PyObject *heap, PyObject *timer)
{
    if (PyList_Append(heap, timer) < 0)
        return -1;
    app_asgi_heap_up(heap, 0, PyList_GET_SIZE(heap) - 1);
    return 0;
}

/* The heap's first timer, out of it (new reference); the heap is not empty. */
static PyObject *app_asgi_heap_pop(PyObject *heap)
{
    Py_ssize_t n = PyList_GET_SIZE(heap);
    PyObject *last = Py_NewRef(PyList_GET_ITEM(heap, n - 1));
    PyList_SetSlice(heap, n - 1, n, NULL); /* shrinking cannot fail */
    if (n == 1)
        return last;
    PyObject *first = PyList_GET_ITEM(heap, 0); /* the list's reference, now ours */
    PyList_SET_ITEM(heap, 0, last);
    app_asgi_heap_down(heap, 0);
    return first;
}

/* ---- LoopCore ---- */

/* Only this module's TimerHandles may be in the heap: the C above reads their
 * when without asking. */
static int app_asgi_loop_fields_ok(struct app_asgi_loop *l)
{
    if (!l->ready || !PyList_Check(l->ready) || !l->scheduled || !PyList_CheckExact(l->scheduled)) {
        PyErr_SetString(PyExc_RuntimeError, "the loop's _ready and _scheduled must be lists");
        return -1;
    }
    return 0;
}

/* call_soon's and call_at's arguments: at least MIN positional, and
 * context= alone as a keyword (*CONTEXT: NULL when not given). */
static int app_asgi_loop_args(const char *method, Py_ssize_t nargs, Py_ssize_t min,
                              PyObject *kwnames, PyObject *const *args, PyObject **context)
{
    *context = NULL;
    if (nargs < min) {
        PyErr_Format(PyExc_TypeError, "%s() takes at least %zd positional arguments", method, min);
        return -1;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (!PyUnicode_Check(k) || PyUnicode_CompareWithASCIIString(k, "context") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", method, k);
            return -1;
        }
        *context = args[nargs + i];
    }
    return 0;
}

/* asyncio's checks before a callback is scheduled: the loop is open; in
 * debug mode, the calling thread and the callback. 0, 1 in debug mode, or -1. */
static int app_asgi_loop_check(struct app_asgi_loop *l, PyObject *callback, const char *method)
{
    if (l->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    int debug = !l->debug || l->debug == Py_False ? 0 : PyObject_IsTrue(l->debug);
    if (debug <= 0)
        return debug;
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)l, app_asgi_str._check_thread);
    if (!r)
        return -1;
    Py_DECREF(r);
    PyObject *name = PyUnicode_FromString(method);
    r = name ? PyObject_CallMethodObjArgs((PyObject *)l, app_asgi_str._check_callback, callback,
                                          name, NULL)
             : NULL;
    Py_XDECREF(name);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 1;
}

/* A handle of TYPE for args[0](*args[1:NARGS]), with where it is made
 * when DEBUG (the frames up to the caller of call_soon or call_at). */
static PyObject *app_asgi_loop_handle(struct app_asgi_loop *l, PyTypeObject *type,
                                      PyObject *const *args, Py_ssize_t nargs, PyObject *context,
                                      int debug)
{
    PyObject *h = app_asgi_handle_new(type, args[0], args + 1, nargs - 1, context, (PyObject *)l);
    if (h && debug) {
        PyObject *frame = (PyObject *)PyEval_GetFrame();
        PyObject *tb =
            frame ? PyObject_CallMethodOneArg(app_asgi_helpers, app_asgi_str.extract_stack, frame)
                  : NULL;
        if (frame && !tb)
            Py_CLEAR(h);
        else
            ((struct app_asgi_handle *)h)->source_traceback = tb;
    }
    return h;
}

static PyObject *app_asgi_loop_call_soon(PyObject *self, PyObject *const *args, size_t nargsf,
                                         PyObject *kwnames)
{
    struct app_asgi_loop *l = (struct app_asgi_loop *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (app_asgi_loop_args("call_soon", nargs, 1, kwnames, args, &context) < 0)
        return NULL;
    int debug = app_asgi_loop_check(l, args[0], "call_soon");
    if (debug < 0 || app_asgi_loop_fields_ok(l) < 0)
        return NULL;
    PyObject *h = app_asgi_loop_handle(l, app_asgi_handle_type, args, nargs, context, debug);
    if (h && PyList_Append(l->ready, h) < 0)
        Py_CLEAR(h);
    return h;
}

/* A TimerHandle due at WHEN, in the heap. */
static PyObject *app_asgi_loop_timer(struct app_asgi_loop *l, double when, PyObject *const *args,
                                     Py_ssize_t nargs, PyObject *context, const char *method)
{
    if (isnan(when)) {
        PyErr_Format(PyExc_ValueError, "%s(): the time is not a number", method);
        return NULL;
    }
    int debug = app_asgi_loop_check(l, args[0], "call_at");
    if (debug < 0 || app_asgi_loop_fields_ok(l) < 0)
        return NULL;
    PyObject *t = app_asgi_loop_handle(l, app_asgi_timer_type, args, nargs, context, debug);
    if (!t)
        return NULL;
    ((struct app_asgi_handle *)t)->when = when;
    if (app_asgi_heap_push(l->scheduled, t) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    ((struct app_asgi_handle *)t)->scheduled = 1;
    return t;
}

static PyObject *app_asgi_loop_call_at(PyObject *self, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (app_asgi_loop_args("call_at", nargs, 2, kwnames, args, &context) < 0)
        return NULL;
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "when cannot be None");
        return NULL;
    }
    double when = PyFloat_AsDouble(args[0]);
    if (when == -1.0 && PyErr_Occurred())
        return NULL;
    return app_asgi_loop_timer((struct app_asgi_loop *)self, when, args + 1, nargs - 1, context,
                               "call_at");
}

static PyObject *app_asgi_loop_call_later(PyObject *self, PyObject *const *args, size_t nargsf,
                                          PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (app_asgi_loop_args("call_later", nargs, 2, kwnames, args, &context) < 0)
        return NULL;
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "delay must not be None");
        return NULL;
    }
    double delay = PyFloat_AsDouble(args[0]);
    if (delay == -1.0 && PyErr_Occurred())
        return NULL;
    return app_asgi_loop_timer((struct app_asgi_loop *)self, app_asgi_loop_now() + delay, args + 1,
                               nargs - 1, context, "call_later");
}

static PyObject *app_asgi_loop_time(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyFloat_FromDouble(app_asgi_loop_now());
}

static PyObject *app_asgi_loop_create_future(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *args[2] = {NULL, self};
    return PyObject_Vectorcall(app_asgi_future_type, args + 1, 0 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                               app_asgi_loop_kw);
}

/* asyncio's sweep: the cancelled timers out of the heap when they are
 * many, else off its top. */
static int app_asgi_loop_sweep(struct app_asgi_loop *l)
{
    PyObject *heap = l->scheduled;
    Py_ssize_t n = PyList_GET_SIZE(heap);
    if (n > APP_ASGI_SWEEP_MIN && (double)l->timer_cancelled_count / n > APP_ASGI_SWEEP_FRACTION) {
        /* A new heap of the live timers, as asyncio does: dropping the old
         * one may run any code (the callbacks' finalizers). */
        PyObject *live = PyList_New(0);
        if (!live)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            struct app_asgi_handle *t = (struct app_asgi_handle *)PyList_GET_ITEM(heap, i);
            if (t->cancelled)
                t->scheduled = 0;
            else if (PyList_Append(live, (PyObject *)t) < 0) {
                Py_DECREF(live);
                return -1;
            }
        }
        for (Py_ssize_t i = PyList_GET_SIZE(live) / 2 - 1; i >= 0; i--)
            app_asgi_heap_down(live, i);
        l->timer_cancelled_count = 0;
        Py_SETREF(l->scheduled, live);
        return 0;
    }
    while (PyList_GET_SIZE(heap) > 0 &&
           ((struct app_asgi_handle *)PyList_GET_ITEM(heap, 0))->cancelled) {
        l->timer_cancelled_count--;
        struct app_asgi_handle *t = (struct app_asgi_handle *)app_asgi_heap_pop(heap);
        t->scheduled = 0;
        Py_DECREF(t);
    }
    return 0;
}

/* select() with the watchdog told the loop waits meanwhile; new reference. */
static PyObject *app_asgi_loop_select(struct app_asgi_loop *l, PyObject *timeout)
{
    if (app_asgi_loop_busy)
        atomic_store_explicit(app_asgi_loop_busy, 0, memory_order_relaxed);
    PyObject *events = PyObject_CallMethodOneArg(l->selector, app_asgi_str.select, timeout);
    if (app_asgi_loop_busy)
        atomic_store_explicit(app_asgi_loop_busy, clock_now_us(), memory_order_relaxed);
    return events;
}

/* Run the first NTODO handles of READY, then take them off it. */
static int app_asgi_loop_run_ready(PyObject *ready, Py_ssize_t ntodo)
{
    Py_ssize_t i = 0;
    int rc = 0;
    for (; i < ntodo && i < PyList_GET_SIZE(ready) && rc == 0; i++) {
        /* Out of the list as it runs: asyncio's popleft drops the handle (and what
         * only it holds, a finished task) right after its run, before the next one. */
        PyObject *h = PyList_GET_ITEM(ready, i);
        PyList_SET_ITEM(ready, i, Py_NewRef(Py_None));
        if (PyObject_TypeCheck(h, app_asgi_handle_type)) {
            if (!((struct app_asgi_handle *)h)->cancelled)
                rc = app_asgi_handle_run((struct app_asgi_handle *)h);
        } else {
            /* asyncio's own Handle (a reader's, a writer's, a thread's). */
            PyObject *cancelled = PyObject_GetAttr(h, app_asgi_str._cancelled);
            int skip = cancelled ? PyObject_IsTrue(cancelled) : -1;
            Py_XDECREF(cancelled);
            PyObject *r = skip == 0 ? PyObject_CallMethodNoArgs(h, app_asgi_str._run) : NULL;
            Py_XDECREF(r);
            rc = skip < 0 || (skip == 0 && !r) ? -1 : 0;
        }
        Py_DECREF(h);
    }
    Py_ssize_t n = i < PyList_GET_SIZE(ready) ? i : PyList_GET_SIZE(ready);
    if (n > 0 && PyList_SetSlice(ready, 0, n, NULL) < 0)
        rc = -1;
    return rc;
}

/* _run_once(): one turn of the loop, as asyncio's: wait for I/O or the
 * next timer, take the due timers, run what was ready at that moment. */
static PyObject *app_asgi_loop_run_once(PyObject *self, PyObject *unused)
{
    (void)unused;
    struct app_asgi_loop *l = (struct app_asgi_loop *)self;
    if (app_asgi_loop_fields_ok(l) < 0 || app_asgi_loop_sweep(l) < 0)
        return NULL;
    PyObject *timeout;
    if (PyList_GET_SIZE(l->ready) > 0 || l->stopping) {
        timeout = PyLong_FromLong(0);
    } else if (PyList_GET_SIZE(l->scheduled) > 0) {
        double t = app_asgi_when(l->scheduled, 0) - app_asgi_loop_now();
        timeout = PyFloat_FromDouble(t < 0 ? 0 : t > APP_ASGI_MAX_SELECT ? APP_ASGI_MAX_SELECT : t);
    } else {
        timeout = Py_NewRef(Py_None);
    }
    if (!timeout)
        return NULL;
    PyObject *events = app_asgi_loop_select(l, timeout);
    Py_DECREF(timeout);
    if (!events)
        return NULL;
    PyObject *r = PyObject_CallMethodOneArg(self, app_asgi_str._process_events, events);
    Py_DECREF(events);
    if (!r)
        return NULL;
    Py_DECREF(r);
    if (app_asgi_loop_fields_ok(l) < 0)
        return NULL;

    PyObject *ready = Py_NewRef(l->ready), *heap = l->scheduled;
    double end = app_asgi_loop_now() + l->clock_resolution;
    int rc = 0;
    while (rc == 0 && PyList_GET_SIZE(heap) > 0 && app_asgi_when(heap, 0) < end) {
        struct app_asgi_handle *t = (struct app_asgi_handle *)app_asgi_heap_pop(heap);
        t->scheduled = 0;
        rc = PyList_Append(ready, (PyObject *)t);
        Py_DECREF(t);
    }
    if (rc == 0)
        rc = app_asgi_loop_run_ready(ready, PyList_GET_SIZE(ready));
    Py_DECREF(ready);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int app_asgi_loop_traverse(PyObject *self, visitproc visit, void *arg)
{
    struct app_asgi_loop *l = (struct app_asgi_loop *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(l->ready);
    Py_VISIT(l->scheduled);
    Py_VISIT(l->selector);
    Py_VISIT(l->debug);
    return 0;
}

static int app_asgi_loop_clear(PyObject *self)
{
    struct app_asgi_loop *l = (struct app_asgi_loop *)self;
    Py_CLEAR(l->ready);
    Py_CLEAR(l->scheduled);
    Py_CLEAR(l->selector);
    Py_CLEAR(l->debug);
    return 0;
}

static void app_asgi_loop_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    app_asgi_loop_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef app_asgi_loop_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))app_asgi_loop_call_soon,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"call_at", (PyCFunction)(void (*)(void))app_asgi_loop_call_at, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"call_later", (PyCFunction)(void (*)(void))app_asgi_loop_call_later,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"time", app_asgi_loop_time, METH_NOARGS, NULL},
    {"create_future", app_asgi_loop_create_future, METH_NOARGS, NULL},
    {"_run_once", app_asgi_loop_run_once, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

#define APP_ASGI_LOOP_FIELD(name, field, type)                                                     \
    {                                                                                              \
        name, type, offsetof(struct app_asgi_loop, field), 0, NULL                                 \
    }
static PyMemberDef app_asgi_loop_members[] = {
    APP_ASGI_LOOP_FIELD("_ready", ready, APP_WSGI_T_OBJECT),
    APP_ASGI_LOOP_FIELD("_scheduled", scheduled, APP_WSGI_T_OBJECT),
    APP_ASGI_LOOP_FIELD("_selector", selector, APP_WSGI_T_OBJECT),
    APP_ASGI_LOOP_FIELD("_debug", debug, APP_WSGI_T_OBJECT),
    APP_ASGI_LOOP_FIELD("_clock_resolution", clock_resolution, APP_WSGI_T_DOUBLE),
    APP_ASGI_LOOP_FIELD("_timer_cancelled_count", timer_cancelled_count, APP_WSGI_T_PYSSIZET),
    APP_ASGI_LOOP_FIELD("_stopping", stopping, APP_WSGI_T_BOOL),
    APP_ASGI_LOOP_FIELD("_closed", closed, APP_WSGI_T_BOOL),
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot app_asgi_loop_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, app_asgi_loop_dealloc},
    {Py_tp_traverse, app_asgi_loop_traverse},
    {Py_tp_clear, app_asgi_loop_clear},
    {Py_tp_methods, app_asgi_loop_methods},
    {Py_tp_members, app_asgi_loop_members},
    {0, NULL},
};

static PyType_Spec app_asgi_loop_spec = {
    .name = "_corral_asgi.LoopCore",
    .basicsize = sizeof(struct app_asgi_loop),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = app_asgi_loop_slots,
};

static int app_asgi_loop_add_type(PyObject *m, PyTypeObject **out, PyType_Spec *spec,
                                  PyObject *base)
{
    *out = (PyTypeObject *)PyType_FromSpecWithBases(spec, base);
    return *out ? PyModule_AddObjectRef(m, strrchr(spec->name, '.') + 1, (PyObject *)*out) : -1;
}

int app_asgi_loop_add(PyObject *m, struct app_asgi_queue *q)
{
    app_asgi_loop_busy = &q->busy_since_us;
#define APP_ASGI_NAME_INTERN(n)                                                                    \
    if (!(app_asgi_str.n = PyUnicode_InternFromString(#n)))                                        \
        return -1;
    APP_ASGI_NAMES(APP_ASGI_NAME_INTERN)
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    app_asgi_future_type = asyncio ? PyObject_GetAttrString(asyncio, "Future") : NULL;
    Py_XDECREF(asyncio);
    app_asgi_helpers = PyImport_ImportModule("asyncio.format_helpers");
    app_asgi_loop_kw = Py_BuildValue("(s)", "loop");
    if (!app_asgi_future_type || !app_asgi_helpers || !app_asgi_loop_kw ||
        app_asgi_loop_add_type(m, &app_asgi_loop_type, &app_asgi_loop_spec, NULL) < 0 ||
        app_asgi_loop_add_type(m, &app_asgi_handle_type, &app_asgi_handle_spec, NULL) < 0)
        return -1;
    return app_asgi_loop_add_type(m, &app_asgi_timer_type, &app_asgi_timer_spec,
                                  (PyObject *)app_asgi_handle_type);
}
