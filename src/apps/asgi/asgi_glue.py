# asgi_glue.py — the event loop of an ASGI worker (src/apps/asgi/app_asgi.c
# runs it on a thread of its own; app_asgi_request.c is the module _c).
# One asyncio loop per worker: the serving threads hand requests over
# through an eventfd (_c.take), each request runs as a task, its response
# goes out through the request model without ever waiting in C (a full
# socket is awaited here with add_writer: back-pressure, no unbounded
# buffer), and the request goes back to the worker (resume) once every byte
# is out (a response's last message in one call, write_last, then end).
# Lifespan: startup
# before the worker accepts, shutdown when the worker stops (_c.stopping).
import asyncio
import base64
import gc
import hashlib
import importlib
import selectors
import socket
import struct
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
    """The stock loop's selector, telling the watchdog when the loop runs."""

    def select(self, timeout=None):
        _c.mark(False)
        try:
            return super().select(timeout)
        finally:
            _c.mark(True)


def _new_loop(stock):
    """The worker's loop: asyncio's selector loop with its per-callback paths in C
    (LoopCore, app_asgi_loop.c: call_soon, call_at, call_later, time, create_future and
    _run_once, which tells the watchdog when the loop runs), or asyncio's own (STOCK)."""
    if stock:
        return asyncio.SelectorEventLoop(_Selector())

    class Loop(_c.LoopCore, asyncio.SelectorEventLoop):
        def __init__(self, selector):
            super().__init__(selector)
            self._ready = []  # LoopCore's ready queue is a list

    return Loop(selectors.EpollSelector())


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


_PIECE = 1 << 16  # body bytes in one http.request message at most


async def _readable(fd, timeout):
    fut = _loop.create_future()
    _loop.add_reader(fd, _done, fut)
    try:
        await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        raise OSError("no request body byte came for %.1f s" % timeout) from None
    finally:
        _loop.remove_reader(fd)


async def _disconnected(req):
    """Returns when the front end closes the connection or gives the
    request up (FastCGI ABORT_REQUEST); bytes of a next request are kept
    for it (req.gone reads them into the connection's buffer)."""
    fut = _loop.create_future()
    fd = req.fd

    def readable():
        r = req.gone()
        if r != 0:
            _loop.remove_reader(fd)
            if r == 1:
                _done(fut)

    _loop.add_reader(fd, readable)
    try:
        await fut
    finally:
        _loop.remove_reader(fd)


class _Http:
    """One HTTP request's receive and send (the app's callables) and where
    its response stands."""

    __slots__ = ("req", "body", "start", "end", "gone", "watch")

    def __init__(self, req):
        self.req = req
        self.body = self.start = self.end = self.gone = self.watch = False

    async def receive(self):
        req = self.req
        waited = 0.0
        while not self.body and not self.gone:
            try:
                data, more = req.read(_PIECE)
                if not data and more:
                    if req.queued():
                        await _writable(req.fd)
                        continue
                    # Within the body deadline (body-timeout, min-rate).
                    left = req.body_wait(waited)
                    t0 = _loop.time()
                    try:
                        await _readable(req.fd, _timeout if left is None else min(left, _timeout))
                    except OSError:
                        if left is None or left >= _timeout:
                            raise
                        # The deadline: the next body_wait says so.
                    waited = _loop.time() - t0
                    continue
            except OSError:
                self.gone = True
                break
            self.body = not more
            return {"type": "http.request", "body": data, "more_body": more}
        if not self.end and not self.gone:
            self.watch = True
            await _disconnected(req)
            self.gone = True
        return {"type": "http.disconnect"}

    def send(self, msg):
        """The app's send. The usual messages are done here and give an awaitable that is done
        already (no coroutine each); the rest, and a body that must wait for the socket, are
        coroutines (_send, _write). An error is raised where the app awaits."""
        if not self.gone:
            t = msg["type"]
            try:
                if t == "http.response.start":
                    if not self.start:
                        self.start = True
                        self.req.start(msg["status"], msg.get("headers", ()))
                        return _done_already
                elif (t == "http.response.body" and self.start and not self.end and
                      not msg.get("more_body", False)):
                    self.end = True
                    data = msg.get("body", b"")
                    # Written now: send() returns without a coroutine.
                    if self.req.write_last(data):
                        return _done_already
                    return self._write(data, False)
            except Exception as e:
                return _raising(e)
        return self._send(msg)

    async def _send(self, msg):
        t = msg["type"]
        if self.gone:
            raise OSError("the front end is gone")
        if t == "http.response.body":
            if not self.start:
                raise RuntimeError("http.response.body before http.response.start")
            if self.end:
                raise RuntimeError("http.response.body after the end of the response")
            data = msg.get("body", b"")
            more = bool(msg.get("more_body", False))
            if not more:
                self.end = True
            await self._write(data, more)
        elif t == "http.response.start":
            if self.start:
                raise RuntimeError("http.response.start sent twice")
            self.start = True
            self.req.start(msg["status"], msg.get("headers", ()))
        else:
            raise RuntimeError("unexpected ASGI message type %r" % (t,))

    async def _write(self, data, more):
        req = self.req
        try:
            n = req.write(data, more)
            while n < len(data):
                await _writable(req.fd)
                n += req.write(memoryview(data)[n:], more)
        except OSError:
            self.gone = True
            raise


async def _raising(e):
    raise e


async def _run(req):
    try:
        scope = req.scope()
        if _state is not None:
            scope["state"] = dict(_state)
        if scope["type"] == "websocket":
            return await _run_websocket(req, scope)
        h = _Http(req)
        ok = False
        try:
            await _app(scope, h.receive, h.send)
            ok = h.end
            if not ok and not h.gone:
                _c.log(0, "%s: the app returned %s" % (
                    req.line, "an incomplete response" if h.start else "without a response"))
        except BaseException:
            if not h.gone:
                log_exc(req.line)
        if h.watch:
            # A receive() the app left waiting: the descriptor is not ours
            # after the resume.
            _loop.remove_reader(req.fd)
        # end: the response finished and the request given back, or bytes
        # still wait for the socket.
        close = True
        try:
            if req.end(ok):
                return
            while req.queued():
                await _writable(req.fd)
            close = False
        except BaseException:
            pass
        req.resume(close)
    finally:
        _running.pop(req, None)


# ---- WebSocket (RFC 6455) on the http listener ----

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_WS_MAX = 16 << 20  # the largest message taken from a client


def _unmask(data, mask):
    n = len(data)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


def _ws_frame(op, payload):
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | op, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | op, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | op, 127, n) + payload


class _WsGone(Exception):
    def __init__(self, code):
        self.code = code


class _WebSocket:
    """One accepted WebSocket: frames read on demand (receive), written with
    the loop's sock_sendall (which awaits the socket: back-pressure)."""

    def __init__(self, req, sock, buffered):
        self.req = req
        self.sock = sock
        self.buf = bytearray(buffered)
        self.closed = None  # the close code once closed

    async def _exact(self, n):
        while len(self.buf) < n:
            d = await _loop.sock_recv(self.sock, 65536)
            if not d:
                raise _WsGone(1006)
            self.buf += d
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def _frame(self):
        h = await self._exact(2)
        fin, op, masked, n = h[0] & 0x80, h[0] & 0x0F, h[1] & 0x80, h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self._exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self._exact(8))[0]
        if not masked or n > _WS_MAX:
            await self.close(1002 if not masked else 1009)
            raise _WsGone(1002 if not masked else 1009)
        mask = await self._exact(4)
        return fin, op, _unmask(await self._exact(n), mask)

    async def send(self, op, payload):
        await _loop.sock_sendall(self.sock, _ws_frame(op, payload))

    async def close(self, code, reason=""):
        if self.closed is None:
            self.closed = code
            try:
                await self.send(0x8, struct.pack("!H", code) + reason.encode()[:120])
            except OSError:
                pass

    async def message(self):
        """The next data message as the ASGI event."""
        parts, kind = [], None
        while True:
            fin, op, data = await self._frame()
            if op == 0x9:  # ping
                await self.send(0xA, data)
                continue
            if op == 0xA:  # pong
                continue
            if op == 0x8:  # close: answer it, the connection ends
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                await self.close(code if code != 1005 else 1000)
                raise _WsGone(code)
            if op in (0x1, 0x2):
                kind, parts = op, [data]
            elif op == 0x0 and kind is not None:
                parts.append(data)
            else:
                await self.close(1002)
                raise _WsGone(1002)
            if sum(len(p) for p in parts) > _WS_MAX:
                await self.close(1009)
                raise _WsGone(1009)
            if fin:
                body = b"".join(parts)
                if kind == 0x1:
                    return {"type": "websocket.receive", "text": body.decode("utf-8")}
                return {"type": "websocket.receive", "bytes": body}


async def _run_websocket(req, scope):
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    scope.pop("method", None)
    key = b""
    protocols = []
    for k, v in scope["headers"]:
        if k == b"sec-websocket-key":
            key = v.strip()
        elif k == b"sec-websocket-protocol":
            protocols += [p.strip().decode("latin-1") for p in v.split(b",") if p.strip()]
    scope["subprotocols"] = protocols
    st = {"connect": False, "ws": None, "refused": False}

    async def receive():
        if not st["connect"]:
            st["connect"] = True
            return {"type": "websocket.connect"}
        ws = st["ws"]
        if ws is None:
            raise RuntimeError("websocket.receive before websocket.accept")
        if ws.closed is not None:
            return {"type": "websocket.disconnect", "code": ws.closed}
        try:
            return await ws.message()
        except (_WsGone, OSError) as e:
            if ws.closed is None:
                ws.closed = getattr(e, "code", 1006)
            return {"type": "websocket.disconnect", "code": ws.closed}

    async def send(msg):
        t = msg["type"]
        ws = st["ws"]
        if t == "websocket.accept" and ws is None and not st["refused"]:
            accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
            head = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket",
                    b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + accept]
            if msg.get("subprotocol"):
                head.append(b"Sec-WebSocket-Protocol: " + msg["subprotocol"].encode())
            for k, v in msg.get("headers") or ():
                head.append(bytes(k) + b": " + bytes(v))
            sock = socket.socket(fileno=req.fd)
            sock.setblocking(False)
            st["ws"] = ws = _WebSocket(req, sock, req.buffered())
            _websockets.add(ws)
            await _loop.sock_sendall(sock, b"\r\n".join(head) + b"\r\n\r\n")
            if _draining:
                await ws.close(1001, "the server is restarting")
        elif t == "websocket.send" and ws is not None:
            if ws.closed is not None:
                raise OSError("the WebSocket is closed")
            if msg.get("bytes") is not None:
                await ws.send(0x2, msg["bytes"])
            else:
                await ws.send(0x1, msg.get("text", "").encode("utf-8"))
        elif t == "websocket.close":
            if ws is None:
                st["refused"] = True  # refused before the handshake: an HTTP 403
            else:
                await ws.close(msg.get("code", 1000), msg.get("reason") or "")
        else:
            raise RuntimeError("unexpected ASGI message %r here" % (t,))

    try:
        await _app(scope, receive, send)
    except BaseException:
        if not (st["ws"] and st["ws"].closed is not None):
            log_exc(req.line)
    ws = st["ws"]
    if ws is None:
        # Refused (or failed) before the handshake: an HTTP answer.
        try:
            req.start(403 if st["refused"] else 500, [])
            req.write(b"", False)
            req.finish(True)
            while req.queued():
                await _writable(req.fd)
        except BaseException:
            pass
        req.resume(True)
        return
    _websockets.discard(ws)
    try:
        await asyncio.wait_for(ws.close(1000), _timeout)
    except BaseException:
        pass
    ws.sock.detach()  # the descriptor is the worker's: it closes it
    req.resume(True)


_stopping = False
_tasks = set()  # other tasks in flight (closing WebSockets)
_running = {}  # Request -> its task (the loop keeps only weak references)


_draining = False
_websockets = set()  # the accepted ones, closed when the worker stops
# What send gives for a message it could do at once: a future that is done (awaiting it takes
# no Python frame; an ASGI send may give any awaitable). Made with the loop (serve).
_done_already = None


def _wake():
    global _stopping, _draining
    if not _draining and _c.draining():
        _draining = True
        for ws in list(_websockets):
            t = _loop.create_task(ws.close(1001, "the server is restarting"))
            _tasks.add(t)
            t.add_done_callback(_tasks.discard)
    if not _stopping and _c.stopping():
        _stopping = True
        _loop.create_task(_shutdown())
    # A request's task made directly (the loop's create_task adds checks and a name, a few
    # Python calls a request), unless the app set a task factory of its own.
    task = asyncio.Task if _loop.get_task_factory() is None else None
    for req in _c.take():
        _running[req] = task(_run(req), loop=_loop) if task else _loop.create_task(_run(req))


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


_GC_GEN0 = 50000  # allocations between two collections of the youngest generation
_GC_PYTHON_GEN0 = 700  # Python's own default


def _gc_tune():
    """With many requests in flight every request allocates dozens of objects that the
    collector's youngest generation scans again and again (at Python's 700, about a sixth
    of the loop's time under 1,000 requests): collect it every _GC_GEN0 allocations instead. An app
    that set its own thresholds (at import or in its lifespan startup) keeps them."""
    t = gc.get_threshold()
    if gc.isenabled() and t[0] == _GC_PYTHON_GEN0:
        gc.set_threshold(_GC_GEN0, *t[1:])
    # What the app and its startup made lives as long as the worker: out of every later
    # collection (the oldest generation's walked it all, a pause of milliseconds).
    gc.freeze()


def serve(timeout, stock_loop):
    """The loop thread's body: startup, then serve until the shutdown (on asyncio's own
    loop when STOCK_LOOP)."""
    global _loop, _state, _timeout, _done_already
    _timeout = timeout
    _loop = _new_loop(stock_loop)
    asyncio.set_event_loop(_loop)
    _done_already = _loop.create_future()
    _done_already.set_result(None)
    _state = {}
    try:
        ok = _loop.run_until_complete(_startup())
    except BaseException:
        log_exc("lifespan: startup")
        ok = False
    _c.started(ok)
    if not ok:
        return
    _gc_tune()
    _loop.add_reader(_c.efd, _wake)
    _loop.run_forever()
