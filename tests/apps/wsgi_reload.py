"""The WSGI app of tests/integration/reload.sh: answers the version it was
imported with, the bytes of the request body it read (APP_VERSION, set by the `env` key of the config that the
reload reads again) and its pid. APP_VERSION=broken makes the import fail,
like a broken deploy."""
import os
import time

VERSION = os.environ.get("APP_VERSION", "unset")
if VERSION == "broken":
    raise RuntimeError("reload.sh: a broken deploy on purpose")


def application(environ, start_response):
    # .../slow: a request still running when its worker is told to stop.
    if environ.get("PATH_INFO", "").endswith("/slow"):
        time.sleep(0.3)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    got = len(environ["wsgi.input"].read(length)) if length else 0
    body = ("version=%s pid=%d read=%d\n" % (VERSION, os.getpid(), got)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
