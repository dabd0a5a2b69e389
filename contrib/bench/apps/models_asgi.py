# contrib/bench/apps/models_asgi.py: the two apps of contrib/bench/models.sh as one raw ASGI 3.0
# app (corral --asgi), the same work as apps/models.py:
#   /cpu  MODELS_CPU_LOOPS iterations of the same pure-Python arithmetic (the loop is held
#         throughout: nothing else of the worker runs meanwhile)
#   /io   await asyncio.sleep(0.01), the asynchronous database call (the loop serves others)
# Both answer 200 text/plain "cpu ..." or "io ...", which models.sh checks.
import asyncio

from models import CPU_LOOPS, cpu_work  # the same work as the WSGI app (MODELS_CPU_LOOPS)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: nothing to do
    path = scope["path"]
    if path == "/cpu":
        status, body = 200, b"cpu %d\n" % cpu_work(CPU_LOOPS)
    elif path == "/io":
        await asyncio.sleep(0.01)
        status, body = 200, b"io slept 10 ms\n"
    else:
        status, body = 404, b"try /cpu or /io\n"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
