"""The WSGI app of tests/integration/own_gil.sh: pure Python, run under
--own-gil, where every worker thread imports it into its own interpreter
(thread 0 into the main one, the others into sub-interpreters).

At import it draws a token (so each interpreter answers with its own), tries
to take SIGTERM with signal.signal (corral refuses it with a warning), and
imports corral_single (tests/apps/own_gil_single.c, a single-phase-init
extension module, when it is on sys.path): with $OWN_GIL_TEST_STRICT set
without a fallback, so the import error stops the start; otherwise falling
back to pure Python on ImportError, as many libraries do.

Routes (PATH_INFO, else REQUEST_URI):
  /info      "PID TOKEN MULTITHREAD MULTIPROCESS FALLBACK LOCAL_OK INTERP COUNT"
             after sleeping ?ms=N; LOCAL_OK: a threading.local set by this
             thread still holds this interpreter's token; INTERP: this
             interpreter's id (0: the main one), COUNT: how many interpreters
             the process has ("?" for both where Python cannot say)
  /cpu       fixed pure-Python work (a loop of ?n=N additions); "PID TOKEN"
  /errors    writes one line with the token to wsgi.errors
  /drip      yields "tick N\\n" every 20 ms, 500 times; close() appends
             "closed after N" to $OWN_GIL_TEST_CLOSE_LOG
  /spin?s=N  spin_here(): pure Python for N seconds (harakiri, slowlog)
  /meet?slot=I  the rendezvous (once per fresh file): marks slot I (0 or
             1) of the shared file $OWN_GIL_TEST_MEET as present, then runs
             Python (never releasing its GIL) until the other slot is marked
             too ("met"), or 5 s passed ("alone": the mark is taken back). Two requests meet only when two GILs
             let both run Python at once: with one shared GIL, the switch
             interval of 1000 s set at import ($OWN_GIL_TEST_MEET set) keeps
             the first one holding it until it gives up.
"""
import mmap
import os
import signal
import sys
import threading
import time

TOKEN = os.urandom(6).hex()

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # corral keeps it

if os.environ.get("OWN_GIL_TEST_STRICT"):
    import corral_single  # noqa: F401  (refused in an own-GIL interpreter)
    FALLBACK = "native"
else:
    try:
        import corral_single  # noqa: F401
        FALLBACK = "native"
    except ImportError:
        FALLBACK = "fallback"

_local = threading.local()

try:
    import _interpreters as _interp  # 3.13
except ImportError:
    try:
        import _xxsubinterpreters as _interp  # 3.12
    except ImportError:
        _interp = None


def interp_info():
    if _interp is None:
        return "? ?"
    cur = _interp.get_current()
    cur = cur[0] if isinstance(cur, tuple) else cur  # 3.13: (id, whence)
    return "%d %d" % (int(cur), len(_interp.list_all()))

_meet = None
if os.environ.get("OWN_GIL_TEST_MEET"):
    sys.setswitchinterval(1000)
    with open(os.environ["OWN_GIL_TEST_MEET"], "r+b") as f:
        _meet = mmap.mmap(f.fileno(), 2)


def meet(slot):
    _meet[slot] = 1
    end = time.monotonic() + 5
    while time.monotonic() < end:
        if _meet[1 - slot] == 1:
            return "met"  # the slot stays marked: the other may not have looked yet
    _meet[slot] = 0
    return "alone"


def spin_here(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


class Drip:
    def __init__(self):
        self.sent = 0

    def __iter__(self):
        for i in range(500):
            self.sent = i + 1
            yield b"tick %d\n" % i
            time.sleep(0.02)

    def close(self):
        with open(os.environ["OWN_GIL_TEST_CLOSE_LOG"], "a") as f:
            f.write("closed after %d\n" % self.sent)


def _arg(environ, name, default):
    for kv in environ.get("QUERY_STRING", "").split("&"):
        k, _, v = kv.partition("=")
        if k == name:
            return float(v)
    return default


def application(environ, start_response):
    path = environ.get("PATH_INFO") or environ.get("REQUEST_URI", "/").split("?")[0]
    pid = os.getpid()
    if path == "/info":
        time.sleep(_arg(environ, "ms", 0) / 1000)
        if not hasattr(_local, "token"):
            _local.token = TOKEN
        body = "%d %s %s %s %s %s %s" % (pid, TOKEN, environ["wsgi.multithread"],
                                         environ["wsgi.multiprocess"], FALLBACK,
                                         _local.token == TOKEN, interp_info())
    elif path == "/cpu":
        n = 0
        for i in range(int(_arg(environ, "n", 2_000_000))):
            n += i
        body = "%d %s" % (pid, TOKEN)
    elif path == "/errors":
        environ["wsgi.errors"].write("own-gil errors line from %s\n" % TOKEN)
        body = TOKEN
    elif path == "/drip":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Drip()
    elif path == "/meet":
        body = meet(int(_arg(environ, "slot", 0)))
    elif path == "/spin":
        spin_here(_arg(environ, "s", 1))
        body = "spun"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]
