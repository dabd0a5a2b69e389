"""The demo app of contrib/demo.sh: a small Flask app served by corral
behind nginx (FastCGI, kept connections).

  /          a page: which worker and thread served it, a form, a live stream
  /hello     "Hello, World!" as text/plain
  /echo      POST: the form fields back as JSON
  /stream    server-sent events: one every 0.5 s, ten in all, each sent as
             the app yields it (nginx: fastcgi_buffering off)
"""
import os
import sys
import threading
import time

from flask import Flask, Response, jsonify, request

app = Flask(__name__)

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>corral demo</title>
<style>body {{ font: 16px system-ui, sans-serif; max-width: 44em; margin: 2em auto; }}
code {{ background: #eee; padding: 0 .3em; }} #events {{ color: #064; }}</style>
<h1>corral is serving this Flask app</h1>
<p>Worker pid <code>{pid}</code>, thread <code>{thread}</code>, Python <code>{python}</code>,
Flask <code>{flask}</code>. Reload: the pid and thread change as nginx's kept
connections are served by different workers and threads.</p>
<p>The request reached the app as <code>{method} {path}</code> from <code>{remote}</code>
over <code>{gateway}</code>.</p>
<h2>A form</h2>
<form method="post" action="/echo"><input name="name" value="corral">
<button>POST to /echo</button></form>
<h2>A stream</h2>
<p>Server-sent events from <code>/stream</code>, one every half second:</p>
<pre id="events"></pre>
<script>
const src = new EventSource("/stream");
src.onmessage = (e) => {{ document.getElementById("events").textContent += e.data + "\\n"; }};
src.addEventListener("end", () => src.close());
</script>
"""


@app.route("/")
def index():
    import flask
    return PAGE.format(pid=os.getpid(), thread=threading.current_thread().name,
                       python=sys.version.split()[0], flask=getattr(flask, "__version__", "?"),
                       method=request.method, path=request.path,
                       remote=request.remote_addr,
                       gateway=request.environ.get("GATEWAY_INTERFACE", "?"))


@app.route("/hello")
def hello():
    return Response("Hello, World!", mimetype="text/plain")


@app.route("/echo", methods=["POST"])
def echo():
    return jsonify(fields=request.form.to_dict(), worker=os.getpid())


@app.route("/stream")
def stream():
    def events():
        for i in range(10):
            yield "data: event %d from worker %d at %s\n\n" % (i, os.getpid(),
                                                              time.strftime("%H:%M:%S"))
            time.sleep(0.5)
        yield "event: end\ndata: done\n\n"
    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


application = app
