"""A small Flask app for tests/integration/frameworks.sh: corral runs it with
--wsgi flask_app:app --pythonpath tests/apps behind real nginx and Apache.

Routes: / (HTML), /form (POST form fields), /json (POST JSON echo),
/upload (sha256 and size of a multipart file or of the raw body),
/cookie/set and /cookie/get, /counter (a session counter), /go (302 to /),
/boom (raises), /stream (5 chunks 200 ms apart), /where/<path>
(the script root, path and query as the router saw them)."""

import hashlib
import time

from flask import (Flask, Response, jsonify, make_response, redirect, request,
                   session)

app = Flask(__name__)
app.secret_key = "corral-test-secret-key-not-for-production"


@app.route("/")
def index():
    return "<!doctype html><html><body><h1>Hello from Flask</h1></body></html>"


@app.route("/form", methods=["POST"])
def form():
    f = request.form
    return "name=%s;colour=%s;n=%d" % (f.get("name", ""), f.get("colour", ""), len(f))


@app.route("/json", methods=["POST"])
def json_echo():
    data = request.get_json()
    return jsonify({"echo": data, "type": type(data).__name__})


def _digest(stream):
    h = hashlib.sha256()
    size = 0
    while True:
        b = stream.read(1 << 16)
        if not b:
            break
        h.update(b)
        size += len(b)
    return h.hexdigest(), size


@app.route("/upload", methods=["POST"])
def upload():
    if "file" in request.files:
        f = request.files["file"]
        sha, size = _digest(f.stream)
        return jsonify({"kind": "multipart", "filename": f.filename, "sha256": sha,
                        "size": size})
    sha, size = _digest(request.stream)
    return jsonify({"kind": "raw", "sha256": sha, "size": size})


@app.route("/cookie/set")
def cookie_set():
    resp = make_response("cookie set")
    resp.set_cookie("flavour", request.args.get("v", "oatmeal"))
    return resp


@app.route("/cookie/get")
def cookie_get():
    return "flavour=%s" % request.cookies.get("flavour", "none")


@app.route("/counter")
def counter():
    session["n"] = session.get("n", 0) + 1
    return "count=%d" % session["n"]


@app.route("/go")
def go():
    return redirect("/", code=302)


class FlaskTestError(Exception):
    pass


@app.route("/boom")
def boom():
    raise FlaskTestError("raised on purpose by the Flask /boom view")


@app.route("/stream")
def stream():
    def gen():
        for i in range(5):
            if i:
                time.sleep(0.2)
            yield "chunk %d\n" % i
    return Response(gen(), mimetype="text/plain")


@app.route("/where/<path:rest>")
def where(rest):
    return "script_root=%r path=%r rest=%r args=%r" % (
        request.script_root, request.path, rest, sorted(request.args.items()))
