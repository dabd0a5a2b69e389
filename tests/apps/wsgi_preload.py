"""The WSGI app of tests/integration/reload_preload.sh, imported in the master
(--preload). It answers the version read from $VERSION_FILE at import time
and the pid of the process that imported it (the master) next to the pid of
the worker serving.

$FAIL_IMPORTS_AFTER names a counter file for the case of an import that
passes the reload's check but fails in the re-executed master (the code
changed in between, or an import that fails at random): each import takes
one from the count, and the import that finds it at 0 fails. The test writes
1: the check's import passes, the next one (the re-executed master's) fails.
"""
import os
import time

# $IMPORT_SLEEP: an app whose import takes that many seconds (a big Django
# project): the re-executed master answers nobody meanwhile.
time.sleep(float(os.environ.get("IMPORT_SLEEP") or 0))

with open(os.environ["VERSION_FILE"]) as f:
    VERSION = f.read().strip()
IMPORTED_BY = os.getpid()

_counter = os.environ.get("FAIL_IMPORTS_AFTER")
if _counter and os.path.exists(_counter):
    with open(_counter) as f:
        _left = int(f.read().strip() or 0)
    if _left <= 0:
        raise RuntimeError("reload_preload.sh: this import fails on purpose (counter at 0)")
    with open(_counter, "w") as f:
        f.write("%d\n" % (_left - 1))


def application(environ, start_response):
    # .../slow: a request still running when its worker is told to stop.
    if environ.get("PATH_INFO", "").endswith("/slow"):
        time.sleep(0.3)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    got = len(environ["wsgi.input"].read(length)) if length else 0
    body = ("version=%s pid=%d read=%d master=%d\n"
            % (VERSION, os.getpid(), got, IMPORTED_BY)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
