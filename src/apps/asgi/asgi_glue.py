# asgi_glue.py — the event loop of an ASGI worker (src/apps/asgi/app_asgi.c
# runs it on a thread of its own; app_asgi_request.c is the module _c).
# One asyncio loop per worker: the serving threads hand requests over
# through an eventfd (_c.take), each request runs as a task, its response
# goes out through the request model without ever waiting in C (a full
# socket is awaited here with add_writer: back-pressure, no unbounded
# buffer), and the request goes back to the worker (resume) once every byte
# is out. Lifespan: startup before the worker accepts, shutdown when the
# worker stops (_c.stopping).
import asyncio
import importlib
import selectors
import sys
import traceback

_c = None
_loop = None
_app = None
_state = None
_timeout = 30.0


def log_exc(context, level=0):
    """Log the exception being handled, each line of its traceback after
    CONTEXT (the request line)."""
    text = "".join(traceback.format_exc()).rstrip()
    _c.log(level, "\n".join("%s: %s" % (context, line) for line in text.split("\n")))


def load(c, module, attr, paths):
    """Import the app: MODULE's ATTR, or application, then app."""
    global _c, _app
    _c = c
    for i, p in enumerate(paths):
        sys.path.insert(i, p)
    mod = importlib.import_module(module)
    names = [attr] if attr else ["application", "app"]
    for n in names:
        app = getattr(mod, n, None)
        if app is not None:
            break
    if app is None or not callable(app):
        raise AttributeError("module '%s' has no callable %s" %
                             (module, attr or "'application' or 'app'"))
    _app = app
    return app


class _Selector(selectors.EpollSelector):
    """The loop's selector, telling the watchdog when the loop runs."""

    def select(self, timeout=None):
        _c.mark(False)
        try:
            return super().select(timeout)
        finally:
            _c.mark(True)


def _done(fut, *args):
    if not fut.done():
        fut.set_result(None)


async def _writable(fd):
    fut = _loop.create_future()
    _loop.add_writer(fd, _done, fut)
    try:
        await asyncio.wait_for(fut, _timeout)
    except asyncio.TimeoutError:
        raise OSError("the front end took no bytes for %.1f s" % _timeout) from None
    finally:
        _loop.remove_writer(fd)


async def _disconnected(req):
    """Returns when the front end closes the connection; never when it
    sends bytes (the next request of a kept connection: not ours to read)."""
    fut = _loop.create_future()
    fd = req.fd

    def readable():
        r = req.peek()
        if r >= 0:
            _loop.remove_reader(fd)
            if r == 0:
                _done(fut)

    _loop.add_reader(fd, readable)
    try:
        await fut
    finally:
        _loop.remove_reader(fd)


async def _run(req):
    scope = req.scope()
    if _state is not None:
        scope["state"] = dict(_state)
    body = req.body()
    st = {"body": False, "start": False, "end": False, "gone": False, "watch": False}

    async def receive():
        if not st["body"]:
            st["body"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        if not st["end"] and not st["gone"]:
            st["watch"] = True
            await _disconnected(req)
            st["gone"] = True
        return {"type": "http.disconnect"}

    async def send(msg):
        t = msg["type"]
        if st["gone"]:
            raise OSError("the front end is gone")
        if t == "http.response.start":
            if st["start"]:
                raise RuntimeError("http.response.start sent twice")
            st["start"] = True
            req.start(msg["status"], msg.get("headers", ()))
        elif t == "http.response.body":
            if not st["start"]:
                raise RuntimeError("http.response.body before http.response.start")
            if st["end"]:
                raise RuntimeError("http.response.body after the end of the response")
            data = msg.get("body", b"")
            more = bool(msg.get("more_body", False))
            if not more:
                st["end"] = True
            try:
                n = req.write(data, more)
                while n < len(data):
                    await _writable(req.fd)
                    n += req.write(memoryview(data)[n:], more)
            except OSError:
                st["gone"] = True
                raise
        else:
            raise RuntimeError("unexpected ASGI message type %r" % (t,))

    ok = False
    try:
        await _app(scope, receive, send)
        ok = st["end"]
        if not ok and not st["gone"]:
            _c.log(0, "%s: the app returned %s" % (
                req.line, "an incomplete response" if st["start"] else "without a response"))
    except BaseException:
        if not st["gone"]:
            log_exc(req.line)
    if st["watch"]:
        # A receive() the app left waiting: the descriptor is not ours after
        # the resume.
        _loop.remove_reader(req.fd)
    close = True
    try:
        req.finish(ok)
        while req.queued():
            await _writable(req.fd)
        close = False
    except BaseException:
        pass
    finally:
        req.resume(close)


_stopping = False


def _wake():
    global _stopping
    if not _stopping and _c.stopping():
        _stopping = True
        _loop.create_task(_shutdown())
    for req in _c.take():
        _loop.create_task(_run(req))


class _Lifespan:
    def __init__(self):
        self.startup = _loop.create_future()
        self.shutdown = _loop.create_future()
        self.stop = asyncio.Event()
        self.asked = False

    async def receive(self):
        if not self.asked:
            self.asked = True
            return {"type": "lifespan.startup"}
        await self.stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(self, msg):
        t = msg["type"]
        fut = self.startup if t.startswith("lifespan.startup.") else self.shutdown
        if t.endswith(".failed"):
            _c.log(0, "lifespan: %s: %s" % (t, msg.get("message", "")))
        _set(fut, t.endswith(".complete"))

    async def main(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": _state}
        try:
            await _app(scope, self.receive, self.send)
        except BaseException:
            if not self.asked:
                # Raised before asking for startup: no lifespan support
                # (the spec allows it).
                _c.log(2, "lifespan: not supported by the app (%s: %s); going on without it"
                       % (type(sys.exc_info()[1]).__name__, sys.exc_info()[1]))
            else:
                log_exc("lifespan: the app raised")
        # Returned (or raised) without an answer: a failed startup once it
        # was asked for, else no lifespan at all.
        _set(self.startup, not self.asked)
        _set(self.shutdown, False)


def _set(fut, value):
    if not fut.done():
        fut.set_result(value)


_lifespan = None


async def _startup():
    global _lifespan
    _lifespan = _Lifespan()
    _lifespan.task = _loop.create_task(_lifespan.main())
    ok = await _lifespan.startup
    if ok and _lifespan.asked:
        _c.log(2, "lifespan: startup complete")
    return ok


async def _shutdown():
    try:
        if _lifespan and _lifespan.asked and not _lifespan.shutdown.done():
            _lifespan.stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(_lifespan.shutdown), _timeout)
            except asyncio.TimeoutError:
                _c.log(0, "lifespan: shutdown did not complete within %.1f s" % _timeout)
            else:
                if _lifespan.shutdown.result():
                    _c.log(2, "lifespan: shutdown complete")
    finally:
        _c.stopped()
        _loop.stop()


def serve(timeout):
    """The loop thread's body: startup, then serve until the shutdown."""
    global _loop, _state, _timeout
    _timeout = timeout
    _loop = asyncio.SelectorEventLoop(_Selector())
    asyncio.set_event_loop(_loop)
    _state = {}
    try:
        ok = _loop.run_until_complete(_startup())
    except BaseException:
        log_exc("lifespan: startup")
        ok = False
    _c.started(ok)
    if not ok:
        return
    _loop.add_reader(_c.efd, _wake)
    _loop.run_forever()
