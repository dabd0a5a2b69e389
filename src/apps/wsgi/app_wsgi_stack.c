/*
 * app_wsgi_stack.c — the Python stack of a request thread as text, written
 * from the watchdog thread (slowlog, harakiri) without the GIL: the thread
 * may be stuck holding it.
 *
 * Python 3.11 and 3.12 export CPython's own signal-safe dumper,
 * _Py_DumpTraceback (what faulthandler uses): it is called directly on the
 * thread's state. 3.13 no longer exports it (3.15 does again, as
 * PyUnstable_DumpTraceback). There the route is faulthandler's public
 * interface: each worker registers, once, a signal whose C handler, run by
 * the thread that receives it, writes that thread's own stack into a memory
 * file, then calls the handler that was there before (chain=True): ours,
 * which says the dump is complete and, when the process is about to end
 * (harakiri), holds the thread there so that its request cannot answer
 * meanwhile. A dump sends the signal to the thread, waits for that, and
 * copies what was written. A system call the thread was in may return
 * EINTR; Python's own calls retry (PEP 475).
 */
#include "app_wsgi.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#if PY_VERSION_HEX >= 0x030D0000
#define APP_WSGI_STACK_BY_SIGNAL 1
/* Free for the app: corral's own signals are the standard ones and
 * SIGRTMAX - 2 (src/worker/worker.h). */
#define APP_WSGI_STACK_SIGNAL (SIGRTMAX - 3)
/* How long a dump may take: the thread must be scheduled to run the
 * handler. */
enum { APP_WSGI_STACK_WAIT_MS = 1000 };

/* The memory file faulthandler writes into; -1 = no dumps. */
static int app_wsgi_stack_fd = -1;
/* Set by the chained handler when faulthandler has written the stack;
 * FINAL: hold the thread in the handler (the process ends). */
static _Atomic int app_wsgi_stack_done, app_wsgi_stack_final;

/* Run by the dumped thread, right after faulthandler's dump. */
static void app_wsgi_stack_written(int sig)
{
    (void)sig;
    atomic_store(&app_wsgi_stack_done, 1);
    while (atomic_load(&app_wsgi_stack_final))
        pause();
}
#else
/* Exported by libpython 3.11 and 3.12, declared in an internal header. */
extern void _Py_DumpTraceback(int fd, PyThreadState *tstate);
#endif

void app_wsgi_stack_setup(void)
{
#ifdef APP_WSGI_STACK_BY_SIGNAL
    int fd = memfd_create("corral-pystack", MFD_CLOEXEC);
    if (fd < 0) {
        log_msg(LOG_WARN,
                "wsgi: memfd_create failed: %s; no Python stacks in the slowlog "
                "and harakiri lines",
                strerror(errno));
        return;
    }
    /* Ours first: faulthandler keeps it as the handler it chains to. */
    struct sigaction sa = {.sa_handler = app_wsgi_stack_written, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    if (sigaction(APP_WSGI_STACK_SIGNAL, &sa, NULL) < 0) {
        log_msg(LOG_WARN,
                "wsgi: sigaction failed: %s; no Python stacks in the slowlog and "
                "harakiri lines",
                strerror(errno));
        close(fd);
        return;
    }
    PyObject *fh = PyImport_ImportModule("faulthandler");
    PyObject *reg = fh ? PyObject_GetAttrString(fh, "register") : NULL;
    PyObject *args = Py_BuildValue("(i)", APP_WSGI_STACK_SIGNAL);
    PyObject *kw =
        Py_BuildValue("{s:i,s:O,s:O}", "file", fd, "all_threads", Py_False, "chain", Py_True);
    PyObject *r = reg && args && kw ? PyObject_Call(reg, args, kw) : NULL;
    if (!r) {
        PyErr_Clear();
        log_msg(LOG_WARN, "wsgi: faulthandler.register failed; no Python stacks in the "
                          "slowlog and harakiri lines");
        close(fd);
    } else {
        app_wsgi_stack_fd = fd;
    }
    Py_XDECREF(r);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(reg);
    Py_XDECREF(fh);
#endif
}

#ifdef APP_WSGI_STACK_BY_SIGNAL
/* Copy what the dump wrote to OUT. */
static void app_wsgi_stack_copy(int out)
{
    char buf[4096];
    for (off_t at = 0;;) {
        ssize_t n = pread(app_wsgi_stack_fd, buf, sizeof(buf), at);
        if (n <= 0 || write(out, buf, (size_t)n) != n)
            return;
        at += n;
    }
}
#endif

void app_wsgi_stack_dump(const struct app_wsgi_thread *th, int out, bool final)
{
#ifdef APP_WSGI_STACK_BY_SIGNAL
    if (app_wsgi_stack_fd < 0)
        return;
    if (ftruncate(app_wsgi_stack_fd, 0) < 0 || lseek(app_wsgi_stack_fd, 0, SEEK_SET) < 0)
        return;
    atomic_store(&app_wsgi_stack_done, 0);
    atomic_store(&app_wsgi_stack_final, final);
    if (pthread_kill(th->thread, APP_WSGI_STACK_SIGNAL) != 0)
        return;
    for (int waited = 0; waited < APP_WSGI_STACK_WAIT_MS && !atomic_load(&app_wsgi_stack_done);
         waited++)
        poll(NULL, 0, 1);
    app_wsgi_stack_copy(out);
#else
    (void) final;
    _Py_DumpTraceback(out, th->tstate);
#endif
}
