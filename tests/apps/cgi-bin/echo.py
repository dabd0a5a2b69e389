#!/usr/bin/python3
"""A Python CGI script (tests/integration/cgi.sh): echoes a POST body with
its sha256, or redirects (?to=client: a client redirect; ?to=local: a
local redirect to echo.sh; ?to=loop: a local redirect to itself)."""
import hashlib
import os
import sys

q = os.environ.get("QUERY_STRING", "")
if q == "to=client":
    sys.stdout.write("Location: http://example.com/elsewhere\r\n\r\n")
    sys.exit(0)
if q == "to=local":
    sys.stdout.write("Location: /echo.sh?from=local\r\n\r\n")
    sys.exit(0)
if q == "to=loop":
    sys.stdout.write("Location: /echo.py?to=loop\r\n\r\n")
    sys.exit(0)
body = sys.stdin.buffer.read()
out = sys.stdout
out.write("Content-Type: text/plain\r\n\r\n")
out.write("python method=%s len=%d sha256=%s\n" % (
    os.environ.get("REQUEST_METHOD"), len(body), hashlib.sha256(body).hexdigest()))
out.flush()
