"""A raw ASGI 3.0 app for tests/integration/asgi.sh (no framework).

Routes: /hello, /scope (the scope as JSON), /echo (the body back),
/count-body (how many http.request messages the body came in), /status?code=N,
/headers (a response with several headers), /stream?n=N (N chunks),
/big?n=BYTES (one big body, for back-pressure), /sleep?ms=N (await
asyncio.sleep), /block?ms=N (time.sleep: blocks the loop), /wait-disconnect
(answers nothing until the front end goes away; records it in ASGI_TEST_LOG),
/raise, /noresponse, /lifespan (what the lifespan saw), /gc (the collector's
thresholds and how many objects it leaves alone: gc.freeze), /loop (the event
loop's classes and what its callbacks and timers did, in order), /pid (the
worker's pid as os.getpid gives it and as /proc says, and the same for a child
it forks).

ASGI_TEST_LIFESPAN=fail makes the startup fail; =raise makes the app raise on
the lifespan scope before asking for anything (no lifespan support);
=factory sets a task factory on the loop at startup that counts the tasks
it makes (/factory answers the count).
"""
import asyncio
import contextvars
import gc
import json
import os
import time

LOG = os.environ.get("ASGI_TEST_LOG")
MODE = os.environ.get("ASGI_TEST_LIFESPAN", "")
seen = {"startup": 0, "factory": 0}
_var = contextvars.ContextVar("var", default="unset")


async def loop_probe():
    """Callbacks and timers in the order the loop runs them: soon ones in order, a cancelled
    one never, timers by their time (not by when they were set), the caller's context in a
    callback, a raising callback reported to the exception handler."""
    loop = asyncio.get_running_loop()
    out, errors = [], []
    _var.set("request")
    done = loop.create_future()
    loop.call_soon(out.append, "soon1")
    h = loop.call_soon(out.append, "cancelled")
    h.cancel()
    loop.call_soon(lambda: out.append("context=" + _var.get()))
    t = loop.time()
    loop.call_at(t + 0.004, out.append, "at2")
    loop.call_at(t + 0.002, out.append, "at1")
    th = loop.call_later(0.003, out.append, "cancelled-timer")
    th.cancel()
    loop.call_later(0.006, done.set_result, None)
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: errors.append(type(ctx["exception"]).__name__))
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(out.append, "soon2")
    try:
        await done
    finally:
        loop.set_exception_handler(old)
    return {"classes": [c.__name__ for c in type(loop).__mro__], "order": out,
            "errors": errors, "cancelled": [h.cancelled(), th.cancelled()],
            "when": th.when() > t, "monotonic": abs(loop.time() - time.monotonic()) < 0.1}


def record(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


async def lifespan(scope, receive, send):
    if MODE == "raise":
        raise RuntimeError("this app has no lifespan")
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            if MODE == "fail":
                await send({"type": "lifespan.startup.failed",
                            "message": "the database is not there (on purpose)"})
                return
            seen["startup"] += 1
            scope["state"]["greeting"] = "hello from startup"
            if MODE == "factory":
                def factory(loop, coro, **kw):
                    seen["factory"] += 1
                    return asyncio.Task(coro, loop=loop, **kw)
                asyncio.get_running_loop().set_task_factory(factory)
            record("startup %d" % os.getpid())
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            record("shutdown %d" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def reply(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


def query(scope):
    out = {}
    for part in scope["query_string"].decode().split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    assert scope["type"] == "http"
    path = scope["path"]
    q = query(scope)
    if path == "/hello":
        return await reply(send, 200, b"Hello, World!")
    if path == "/scope":
        s = dict(scope)
        s["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in s["headers"]]
        s["raw_path"] = s["raw_path"].decode("latin-1") if s["raw_path"] is not None else None
        s["query_string"] = s["query_string"].decode("latin-1")
        s["types"] = {"headers": type(scope["headers"]).__name__,
                      "header": type(scope["headers"][0]).__name__ if scope["headers"] else None,
                      "name": type(scope["headers"][0][0]).__name__ if scope["headers"] else None}
        s["state"] = dict(scope.get("state") or {})
        return await reply(send, 200, json.dumps(s, default=str).encode())
    if path == "/echo":
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        return await reply(send, 200, body)
    if path == "/count-body":
        msgs = size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            msgs += 1
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        return await reply(send, 200, b"%d messages, %d bytes" % (msgs, size))
    if path == "/status":
        code = int(q.get("code", "200"))
        return await reply(send, code, b"status %d" % code)
    if path == "/headers":
        return await reply(send, 201, b"headers", [(b"x-one", b"1"), (b"x-two", b"2"),
                                                    (b"set-cookie", b"a=1"),
                                                    (b"set-cookie", b"b=2")])
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        n = int(q.get("n", "3"))
        for i in range(n):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i,
                        "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/big":
        n = int(q.get("n", "1000000"))
        return await reply(send, 200, b"x" * n)
    if path == "/sleep":
        await asyncio.sleep(int(q.get("ms", "10")) / 1000)
        return await reply(send, 200, b"slept")
    if path == "/block":
        time.sleep(int(q.get("ms", "10")) / 1000)
        return await reply(send, 200, b"blocked")
    if path == "/wait-disconnect":
        await receive()  # the body
        msg = await receive()
        record("disconnect %s" % msg["type"])
        return
    if path == "/raise":
        raise ValueError("raised on purpose")
    if path == "/noresponse":
        return
    if path == "/factory":
        return await reply(send, 200, str(seen["factory"]).encode())
    if path == "/gc":
        return await reply(send, 200, json.dumps(
            [gc.get_threshold(), gc.get_freeze_count()]).encode())
    if path == "/pid":
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.write(w, ("%d %s" % (os.getpid(), os.readlink("/proc/self"))).encode())
            os._exit(0)
        os.close(w)
        said = os.read(r, 100).decode().split()
        os.close(r)
        os.waitpid(child, 0)
        return await reply(send, 200, json.dumps(
            {"pid": os.getpid(), "proc": int(os.readlink("/proc/self")), "child": child,
             "child_getpid": int(said[0]), "child_proc": int(said[1])}).encode())
    if path == "/loop":
        return await reply(send, 200, json.dumps(await loop_probe()).encode())
    if path == "/lifespan":
        return await reply(send, 200, json.dumps(
            {"startup": seen["startup"], "state": dict(scope.get("state") or {})}).encode())
    return await reply(send, 404, b"not found")
