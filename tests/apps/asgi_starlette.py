"""A Starlette app for tests/integration/asgi.sh: JSON, a form, an upload, a
StreamingResponse, a background task, headers and status codes, the lifespan
state, a WebSocket echo and a broadcast (every message to every client of
/ws/broadcast), a WebSocket that refuses before the handshake and one that
closes with code 4001 (/ws/bye). ASGI_TEST_LOG gets one line per background
task run and per lifespan event."""
import asyncio
import contextlib
import os

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

LOG = os.environ.get("ASGI_TEST_LOG")


def record(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


async def json_view(request):
    return JSONResponse({"hello": "world", "n": [1, 2, 3],
                         "query": dict(request.query_params)})


async def form_view(request):
    form = await request.form()
    out = {}
    for k, v in form.multi_items():
        if hasattr(v, "read"):
            data = await v.read()
            out[k] = {"filename": v.filename, "size": len(data), "sum": sum(data) % 65536}
        else:
            out[k] = v
    return JSONResponse(out)


async def stream_view(request):
    n = int(request.query_params.get("n", "5"))

    async def gen():
        for i in range(n):
            yield ("line %d\n" % i).encode()
            await asyncio.sleep(0.001)

    return StreamingResponse(gen(), media_type="text/plain")


async def background_view(request):
    tag = request.query_params.get("tag", "x")

    async def later():
        await asyncio.sleep(0.05)
        record("background %s" % tag)

    return PlainTextResponse("queued", background=BackgroundTask(later))


async def status_view(request):
    code = int(request.path_params["code"])
    return PlainTextResponse("status %d" % code, status_code=code,
                             headers={"X-Custom": "yes"})


async def headers_view(request):
    return JSONResponse({k: v for k, v in request.headers.items()})


async def echo_view(request):
    body = await request.body()
    return PlainTextResponse(body)


async def state_view(request):
    return JSONResponse({"started": request.app.state.started})


async def ws_echo(websocket):
    await websocket.accept(subprotocol=(websocket.scope["subprotocols"] or [None])[0])
    try:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                record("ws echo disconnect %s" % msg.get("code"))
                return
            if msg.get("text") is not None:
                await websocket.send_text("echo: " + msg["text"])
            else:
                await websocket.send_bytes(msg["bytes"][::-1])
    except WebSocketDisconnect:
        record("ws echo disconnect")


clients = set()


async def ws_broadcast(websocket):
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            for c in list(clients):
                await c.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)


async def ws_refuse(websocket):
    await websocket.close(code=1008)


async def ws_bye(websocket):
    """Accepts, answers the first text message, then closes with 4001 "bye"."""
    await websocket.accept()
    await websocket.send_text("bye: " + await websocket.receive_text())
    await websocket.close(code=4001, reason="bye")


@contextlib.asynccontextmanager
async def lifespan(app):
    app.state.started = True
    record("starlette startup")
    yield
    record("starlette shutdown")


app = Starlette(routes=[
    Route("/json", json_view),
    Route("/form", form_view, methods=["POST"]),
    Route("/stream", stream_view),
    Route("/background", background_view),
    Route("/status/{code}", status_view),
    Route("/headers", headers_view),
    Route("/echo", echo_view, methods=["POST"]),
    Route("/state", state_view),
    WebSocketRoute("/ws/echo", ws_echo),
    WebSocketRoute("/ws/broadcast", ws_broadcast),
    WebSocketRoute("/ws/refuse", ws_refuse),
    WebSocketRoute("/ws/bye", ws_bye),
], lifespan=lifespan)
