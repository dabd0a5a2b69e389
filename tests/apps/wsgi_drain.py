"""The WSGI app of tests/integration/keepconn_drain.sh: reads the request
body, sleeps ?ms= milliseconds (a request still running when its worker is
told to stop), and answers the bytes it read and its pid."""
import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    ms = int(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["0"])[0])
    if ms:
        time.sleep(ms / 1000.0)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    got = len(environ["wsgi.input"].read(length)) if length else 0
    body = ("pid=%d read=%d\n" % (os.getpid(), got)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
