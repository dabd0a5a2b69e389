"""A WSGI app file that fails to import: tests/integration/wsgi.sh checks
that the traceback reaches corral's error log."""


def helper():
    return missing_name_on_purpose  # noqa: F821 -- NameError at import


helper()


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
