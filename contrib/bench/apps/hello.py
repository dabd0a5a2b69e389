# contrib/bench/apps/hello.py: the hello-world WSGI app that contrib/bench/wsgi.sh serves with
# corral and with uWSGI (the same file for both).


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]
