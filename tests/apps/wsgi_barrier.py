"""A WSGI app for tests/integration/threads_burst.sh: every request waits at a
barrier of BARRIER_PARTIES (4) requests served at once in this process, and
answers "met" when they all came, "broken" when they did not within 10 s (a
connection left in a listen queue while threads were free)."""
import os
import threading

PARTIES = int(os.environ.get("BARRIER_PARTIES", "4"))
_barrier = threading.Barrier(PARTIES, timeout=10)
_lock = threading.Lock()


def application(environ, start_response):
    global _barrier
    try:
        _barrier.wait()
        body = b"met"
    except threading.BrokenBarrierError:
        with _lock:
            if _barrier.broken:
                _barrier = threading.Barrier(PARTIES, timeout=10)
        body = b"broken"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
