"""The WSGI app of tests/integration/hosts.sh: answers "host NAME pid PID", NAME from the
HOSTS_NAME environment variable the test gives each host's corral, so that the load client
(hosts_load.py) knows which host served each request whatever the front end."""
import os

NAME = os.environ.get("HOSTS_NAME", "unset")


def application(environ, start_response):
    body = ("host %s pid %d\n" % (NAME, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
