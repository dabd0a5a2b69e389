"""CPython's own asyncio tests (the test.test_asyncio package of the worker's Python) run in
a worker of corral, on the worker's event loop class, for tests/integration/asgi_loop.sh.

At lifespan startup a thread of the worker runs the modules ASGI_LOOP_TESTS names (minus
the tests whose id matches ASGI_LOOP_SKIP) with every new loop made from the class of the
running loop (asyncio.SelectorEventLoop and the policy's factory point at it), and writes
{"classes", "run", "skipped", "bad", "log"} as JSON to ASGI_LOOP_OUT. With --asgi-loop
asyncio the same tests run on the standard library's loop: the reference.
"""
import asyncio
import io
import json
import os
import re
import selectors
import threading
import unittest


def _tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _tests(t)
        else:
            yield t


def _use(loop_cls):
    """New loops are LOOP_CLS (with a selector of their own when none is given)."""
    class Loop(loop_cls):
        def __init__(self, selector=None):
            super().__init__(selector or selectors.DefaultSelector())
    asyncio.SelectorEventLoop = asyncio.unix_events.SelectorEventLoop = Loop
    asyncio.unix_events._UnixDefaultEventLoopPolicy._loop_factory = Loop
    asyncio.set_event_loop_policy(None)
    # Not the main thread: no SIGCHLD handler (the subprocess tests are left out).
    asyncio.unix_events.SafeChildWatcher.attach_loop = lambda self, loop: None


def _run(loop_cls, out):
    classes = [c.__name__ for c in loop_cls.__mro__]
    try:
        _use(loop_cls)
        skip = os.environ.get("ASGI_LOOP_SKIP")
        suite = unittest.TestSuite()
        for name in os.environ["ASGI_LOOP_TESTS"].split():
            suite.addTests(unittest.defaultTestLoader.loadTestsFromName("test.test_asyncio." + name))
        suite = unittest.TestSuite([t for t in _tests(suite) if not (skip and re.search(skip, t.id()))])
        log = io.StringIO()
        # Each test's name as it starts, in OUT.progress: a test that hangs is the last one.
        with open(out + ".progress", "w", buffering=1) as progress:
            class Result(unittest.TextTestResult):
                def startTest(self, test):
                    progress.write(test.id() + "\n")
                    super().startTest(test)
            r = unittest.TextTestRunner(stream=log, verbosity=2, resultclass=Result).run(suite)
        result = {"classes": classes, "run": r.testsRun, "skipped": len(r.skipped),
                  "bad": sorted(t.id() for t, _ in r.failures + r.errors),
                  "log": log.getvalue()[-300000:]}
    except BaseException as e:
        result = {"classes": classes, "run": 0, "skipped": 0, "bad": ["harness: %r" % e], "log": ""}
    with open(out + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(out + ".tmp", out)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        loop_cls = type(asyncio.get_running_loop())
        threading.Thread(target=_run, args=(loop_cls, os.environ["ASGI_LOOP_OUT"]),
                         daemon=True).start()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})
