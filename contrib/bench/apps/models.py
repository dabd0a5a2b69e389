# contrib/bench/apps/models.py: the two apps of contrib/bench/models.sh, one WSGI callable that
# switches on the path.
#   /cpu  about 2 ms of pure-Python work (the GIL is held throughout): MODELS_CPU_LOOPS
#         iterations of integer arithmetic, 64000 by default (2 ms with Debian 12's Python 3.11
#         on the project's standard machine); a fixed amount of work, not a time, so every
#         server does the same
#   /io   time.sleep(0.01), standing in for a database call (the GIL is released while waiting)
# Both answer 200 text/plain "cpu ..." or "io ...", which models.sh checks.
import os
import time

CPU_LOOPS = int(os.environ.get("MODELS_CPU_LOOPS", "64000"))


def cpu_work(loops):
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/cpu":
        body = b"cpu %d\n" % cpu_work(CPU_LOOPS)
    elif path == "/io":
        time.sleep(0.01)
        body = b"io slept 10 ms\n"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"try /cpu or /io\n"]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
