"""The ASGI benchmark app (contrib/bench/asgi.sh): / answers "Hello, World!", /sleep awaits
asyncio.sleep(0.01) first (an I/O-bound view). Raw ASGI 3.0, no framework, no lifespan."""
import asyncio

HEAD = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
BODY = {"type": "http.response.body", "body": b"Hello, World!"}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: nothing to do
    if scope["path"] == "/sleep":
        await asyncio.sleep(0.01)
    await send(HEAD)
    await send(BODY)
