"""wsgi_http.py -- a WSGI app that sends hop-by-hop headers, which the http
listener handles itself (tests/integration/http.sh)."""


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/te":
        # The app asks for chunked itself and yields plain bytes.
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Transfer-Encoding", "chunked")])
        return [b"abc", b"def"]
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2"),
                                  ("Connection", "Close")])
        return [b"ok"]
    if path == "/keep":
        start_response("200 OK", [("Content-Length", "2"), ("Connection", "closed-not")])
        return [b"ok"]
    start_response("404 Not Found", [("Content-Length", "0")])
    return []
