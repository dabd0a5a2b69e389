"""The WSGI app of tests/integration/reload.sh: answers the version it was
imported with (APP_VERSION, set by the `env` key of the config that the
reload reads again) and its pid. APP_VERSION=broken makes the import fail,
like a broken deploy."""
import os

VERSION = os.environ.get("APP_VERSION", "unset")
if VERSION == "broken":
    raise RuntimeError("reload.sh: a broken deploy on purpose")


def application(environ, start_response):
    body = ("version=%s pid=%d\n" % (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
