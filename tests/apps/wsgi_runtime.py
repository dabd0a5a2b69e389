"""The WSGI app of tests/integration/wsgi_runtime.sh: how the app lives in
its process rather than PEP 3333's request rules (wsgi_app.py has those).

At import it records its pid (with --preload that is the master's), and
when $WSGI_TEST_GRAB_SIGNALS is set it tries to take SIGTERM the two ways an
app can: signal.signal (refused by corral with a warning) and libc's
signal() through ctypes on SIGUSR1, as a C extension would (undone by corral after the
import, with a warning).

Routes (SCRIPT_NAME + PATH_INFO):
  /pid?ms=N     "IMPORT_PID WORKER_PID", after sleeping N ms
  /prefix?module=NAME  sys.prefix, then "venvmark" when the module of that
                name (put in a test virtualenv) imports, then NAME (default
                flask: a module of the system's site-packages) when it does
  /ticker       starts (once per process) a Python thread that counts every
                10 ms; answers "PID COUNT"
  /upload       reads wsgi.input in 64 KiB pieces; "BYTES CRC32 HWM_KB
                HWM_BEFORE_KB" (VmHWM of the worker before and after)
  /hwm          "HWM_KB": the worker's peak RSS so far
  /drip         yields "tick N\\n" every 20 ms, 500 times (10 s); its
                close() appends "closed after N" to $WSGI_TEST_CLOSE_LOG
  /hello        b"Hello, World!" with its Content-Length (for HEAD)
  /spin?s=N     busy_loop(): pure Python for N seconds, then "spun"
  /hold?s=N     hold_the_gil(): libc's sleep(N) called with the GIL held
                (ctypes.PyDLL), as a stuck C extension would
  /hog?mb=N     keeps N MiB more in a module-level list; "hogging TOTAL"
"""
import ctypes
import os
import signal
import sys
import threading
import time
import zlib

IMPORT_PID = os.getpid()

if os.environ.get("WSGI_TEST_GRAB_SIGNALS"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.signal(int(signal.SIGUSR1), 1)  # 1 is SIG_IGN

_ticks = 0
_ticker = None
_ticker_lock = threading.Lock()


def _tick():
    global _ticks
    while True:
        time.sleep(0.01)
        _ticks += 1


def _hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


class Drip:
    def __init__(self):
        self.sent = 0

    def __iter__(self):
        for i in range(500):
            self.sent = i + 1
            yield b"tick %d\n" % i
            time.sleep(0.02)

    def close(self):
        with open(os.environ["WSGI_TEST_CLOSE_LOG"], "a") as f:
            f.write("closed after %d\n" % self.sent)


_hog = []


def busy_loop(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def hold_the_gil(seconds):
    ctypes.PyDLL(None).sleep(int(seconds))


def text(start_response, body):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    global _ticker
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if path == "/pid":
        ms = environ.get("QUERY_STRING", "").partition("ms=")[2]
        time.sleep(int(ms or 0) / 1000)
        return text(start_response, b"%d %d" % (IMPORT_PID, os.getpid()))
    if path == "/prefix":
        out = [sys.prefix]
        system_module = environ.get("QUERY_STRING", "").partition("module=")[2] or "flask"
        for name in ("venvmark", system_module):
            try:
                __import__(name)
                out.append(name)
            except ImportError:
                pass
        return text(start_response, " ".join(out).encode())
    if path == "/ticker":
        with _ticker_lock:
            if _ticker is None:
                _ticker = threading.Thread(target=_tick, daemon=True)
                _ticker.start()
        return text(start_response, b"%d %d" % (os.getpid(), _ticks))
    if path == "/upload":
        before = _hwm_kb()
        stream = environ["wsgi.input"]
        total, crc = 0, 0
        while True:
            piece = stream.read(65536)
            if not piece:
                break
            total += len(piece)
            crc = zlib.crc32(piece, crc)
        return text(start_response, b"%d %d %d %d" % (total, crc, _hwm_kb(), before))
    if path == "/hwm":
        return text(start_response, b"%d" % _hwm_kb())
    if path == "/drip":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Drip()
    if path == "/hello":
        return text(start_response, b"Hello, World!")
    arg = environ.get("QUERY_STRING", "").partition("=")[2]
    if path == "/spin":
        busy_loop(float(arg or 1))
        return text(start_response, b"spun")
    if path == "/hold":
        hold_the_gil(float(arg or 1))
        return text(start_response, b"held")
    if path == "/hog":
        _hog.append(b"\x01" * (int(arg or 1) << 20))  # touched: counted in RSS
        return text(start_response, b"hogging %d" % sum(len(b) for b in _hog))
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
