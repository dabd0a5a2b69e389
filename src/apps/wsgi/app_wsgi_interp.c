/*
 * app_wsgi_interp.c — starting the embedded interpreter: which Python it
 * believes it is (sys.executable, a virtual environment), without Python's
 * own signal handlers, and keeping the signals corral owns out of the
 * app's reach; with --own-gil, the sub-interpreters with their own GIL.
 *
 * A virtual environment is taken the way `DIR/bin/python3` itself takes it:
 * the interpreter is told that this is its executable, and its path
 * calculation finds DIR/pyvenv.cfg, so sys.prefix, site-packages and
 * include-system-site-packages behave exactly as under the venv's python.
 * (Setting PYTHONHOME, as uWSGI's `home` does, loses the system stdlib when
 * the venv has none of its own and ignores pyvenv.cfg.)
 */
#include "app_wsgi.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* The signals the master and the workers take through signalfd: an app
 * that ignored one (SIG_IGN discards even a blocked signal) could not be
 * stopped or told to reopen its logs. */
static const int app_wsgi_owned_signals[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP,
                                             SIGUSR1, SIGTTIN, SIGTTOU, SIGCHLD};

#define APP_WSGI_OWNED (sizeof(app_wsgi_owned_signals) / sizeof(app_wsgi_owned_signals[0]))

/* Replaces signal.signal: the owned signals are refused with a warning
 * (the call returns the current handler, as if it had worked: apps and
 * libraries set handlers at import and must not fail there). */
static const char app_wsgi_guard_code[] =
    "def guard(owned, warn):\n"
    "    import signal\n"
    "    real = signal.signal\n"
    "    def signal_guarded(signalnum, handler):\n"
    "        if int(signalnum) in owned:\n"
    "            warn('the app tried to set a handler for %s: ignored; corral handles '\n"
    "                 'that signal' % signal.Signals(signalnum).name)\n"
    "            return signal.getsignal(signalnum)\n"
    "        return real(signalnum, handler)\n"
    "    signal_guarded.__doc__ = real.__doc__\n"
    "    signal.signal = signal_guarded\n";

/* The venv's "version = X.Y.Z" must be this interpreter's X.Y: its
 * site-packages hold extension modules built for it. */
static int app_wsgi_venv_version(const char *cfg_path, char *err, size_t errlen)
{
    FILE *f = fopen(cfg_path, "r");
    if (!f) {
        snprintf(err, errlen, "pyvenv.cfg: %s", strerror(errno));
        return -1;
    }
    char line[512];
    int major = -1, minor = -1;
    while (fgets(line, sizeof(line), f)) {
        const char *p = line + strspn(line, " \t");
        if (strncmp(p, "version", 7) != 0 && strncmp(p, "version_info", 12) != 0)
            continue;
        p = strchr(p, '=');
        if (p && sscanf(p + 1, " %d.%d", &major, &minor) == 2)
            break;
    }
    fclose(f);
    if (major < 0)
        return 0; /* no version line: let the interpreter judge */
    if (major != PY_MAJOR_VERSION || minor != PY_MINOR_VERSION) {
        snprintf(err, errlen,
                 "it was made by Python %d.%d, but corral embeds Python %d.%d: make it with "
                 "python%d.%d -m venv",
                 major, minor, PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_MAJOR_VERSION,
                 PY_MINOR_VERSION);
        return -1;
    }
    return 0;
}

int app_wsgi_venv_check(const char *dir, char *python, size_t python_len, char *err,
                        size_t errlen)
{
    char full[PATH_MAX], path[PATH_MAX + 32], why[256];
    struct stat st;
    if (!realpath(dir, full) || stat(full, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "virtualenv '%s': not a directory", dir);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/pyvenv.cfg", full);
    if (access(path, R_OK) < 0) {
        snprintf(err, errlen,
                 "virtualenv '%s': not a virtual environment (no readable pyvenv.cfg); make one "
                 "with python3 -m venv",
                 dir);
        return -1;
    }
    if (app_wsgi_venv_version(path, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "virtualenv '%s': %s", dir, why);
        return -1;
    }
    const char *names[] = {"python3", "python"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/bin/%s", full, names[i]);
        if (access(path, X_OK) == 0 && (size_t)snprintf(python, python_len, "%s", path) <
                                           python_len)
            return 0;
    }
    snprintf(err, errlen, "virtualenv '%s': no bin/python3 in it", dir);
    return -1;
}

int app_wsgi_interp_start(const char *executable)
{
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    /* Signals stay with corral's signalfd; corral's argv is not Python's. */
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    PyStatus st = PyStatus_Ok();
    if (executable && access(executable, X_OK) == 0)
        st = PyConfig_SetBytesString(&config, &config.executable, executable);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        log_msg(LOG_ERROR, "wsgi: starting Python failed: %s%s%s",
                st.func ? st.func : "", st.func ? ": " : "", st.err_msg ? st.err_msg : "?");
        return -1;
    }
    return 0;
}

PyThreadState *app_wsgi_interp_new_own_gil(void)
{
#ifdef HAVE_PYTHON_OWN_GIL
    /* An own GIL needs its own allocator and the extension check. Threads
     * (and daemon threads: the process ends without finalizing) and
     * subprocess (exec) are allowed; os.fork is not: a worker forks nothing
     * that runs Python. */
    PyInterpreterConfig config = {
        .use_main_obmalloc = 0,
        .allow_fork = 0,
        .allow_exec = 1,
        .allow_threads = 1,
        .allow_daemon_threads = 1,
        .check_multi_interp_extensions = 1,
        .gil = PyInterpreterConfig_OWN_GIL,
    };
    PyThreadState *tstate = NULL;
    PyStatus st = Py_NewInterpreterFromConfig(&tstate, &config);
    if (PyStatus_Exception(st) || !tstate) {
        log_msg(LOG_ERROR, "wsgi: creating an interpreter with its own GIL failed: %s%s%s",
                st.func ? st.func : "", st.func ? ": " : "", st.err_msg ? st.err_msg : "?");
        return NULL;
    }
    return tstate;
#else
    log_msg(LOG_ERROR, "wsgi: this Python has no interpreters with their own GIL (3.12+)");
    return NULL;
#endif
}

static PyObject *app_wsgi_warn(PyObject *self, PyObject *msg)
{
    (void)self;
    const char *s = PyUnicode_Check(msg) ? PyUnicode_AsUTF8(msg) : NULL;
    if (!s)
        return NULL;
    log_msg(LOG_WARN, "wsgi: %s", s);
    Py_RETURN_NONE;
}

static PyMethodDef app_wsgi_warn_def = {"warn", app_wsgi_warn, METH_O, "log a warning"};

int app_wsgi_guard_signals(void)
{
    int rc = -1;
    PyObject *ns = PyDict_New(), *owned = PySet_New(NULL), *warn = NULL, *res = NULL;
    if (!ns || !owned || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0)
        goto out;
    for (size_t i = 0; i < APP_WSGI_OWNED; i++) {
        PyObject *n = PyLong_FromLong(app_wsgi_owned_signals[i]);
        int bad = !n || PySet_Add(owned, n) < 0;
        Py_XDECREF(n);
        if (bad)
            goto out;
    }
    if (!(res = PyRun_String(app_wsgi_guard_code, Py_file_input, ns, ns)))
        goto out;
    Py_DECREF(res);
    PyObject *guard = PyDict_GetItemString(ns, "guard"); /* borrowed */
    if (!guard || !(warn = PyCFunction_New(&app_wsgi_warn_def, NULL)))
        goto out;
    res = PyObject_CallFunctionObjArgs(guard, owned, warn, NULL);
    rc = res ? 0 : -1;
    /* The signal module, imported just now for the first time, installs
     * its KeyboardInterrupt handler on SIGINT: Python's doing, not the
     * app's, and undone without a word. */
    app_wsgi_restore_signals(false);
out:
    Py_XDECREF(res);
    Py_XDECREF(warn);
    Py_XDECREF(owned);
    Py_XDECREF(ns);
    return rc;
}

/* The dispositions before the import: only what the app changed is undone
 * (a shell may start corral with SIGINT ignored; that is not the app's). */
static struct sigaction app_wsgi_saved_signals[APP_WSGI_OWNED];

void app_wsgi_save_signals(void)
{
    for (size_t i = 0; i < APP_WSGI_OWNED; i++)
        sigaction(app_wsgi_owned_signals[i], NULL, &app_wsgi_saved_signals[i]);
}

void app_wsgi_restore_signals(bool blame_app)
{
    for (size_t i = 0; i < APP_WSGI_OWNED; i++) {
        int sig = app_wsgi_owned_signals[i];
        struct sigaction now;
        if (sigaction(sig, NULL, &now) < 0 ||
            now.sa_handler == app_wsgi_saved_signals[i].sa_handler)
            continue;
        if (blame_app)
            log_msg(LOG_WARN, "wsgi: the app (or a C extension) changed the handling of SIG%s: "
                    "restored; corral handles that signal", sigabbrev_np(sig));
        sigaction(sig, &app_wsgi_saved_signals[i], NULL);
    }
}
