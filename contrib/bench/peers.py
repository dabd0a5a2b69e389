#!/usr/bin/env python3
"""contrib/bench/peers.py: the misbehaving and the patient clients of the fault figures.

Speaks FastCGI (as nginx does: BEGIN_REQUEST, one PARAMS record, an empty PARAMS, STDIN) or
uwsgi to a unix:/PATH or tcp:HOST:PORT backend. One mode a run; each prints one JSON line when
its connections are set up ("phase":"ready") and one when it ends ("phase":"end"), on SIGTERM
or SIGINT or after --seconds. Every loop is bounded by --seconds (and by --timeout for setup).

  peers.py hold  --connect ADDR --count N [--uri /hello] [--no-request]
      opens N connections, one after another; on each sends one FastCGI keep-conn request
      (none with --no-request) and keeps it open. ready: connect rate, answered, failed.
      end: how many the server closed while held, how many are still open.
  peers.py slow  --connect ADDR [--trickle N] [--noread N] [--slowbody N] [--interval S]
      trickle: sends its request head 1 byte per interval; noread: asks for a large
      response (/large?size=) and never reads it; slowbody: a POST /echo whose body comes
      1 byte per interval. end: per kind, how many the server closed and after how long.
  peers.py crash --connect ADDR --rate R [--uri /crash] [--proto uwsgi]
      R requests a second, each on a new connection, for --seconds. end: how many were sent,
      answered, and cut (closed with no response).

Needs python3 (3.8+) only. Raises its soft open-files limit to the hard one.
"""
import argparse
import errno
import json
import resource
import select
import signal
import socket
import struct
import sys
import time

stop = False


def on_signal(_sig, _frame):
    global stop
    stop = True


def now():
    return time.monotonic()


def addr_of(spec):
    if spec.startswith("unix:"):
        return socket.AF_UNIX, spec[5:]
    if spec.startswith("tcp:"):
        host, _, port = spec[4:].rpartition(":")
        return socket.AF_INET, (host.strip("[]"), int(port))
    sys.exit("peers.py: --connect wants unix:/path or tcp:HOST:PORT")


def params_of(uri, method, clen):
    path, _, query = uri.partition("?")
    return [("QUERY_STRING", query), ("REQUEST_METHOD", method),
            ("CONTENT_TYPE", "application/octet-stream" if clen else ""),
            ("CONTENT_LENGTH", str(clen) if clen else ""), ("REQUEST_URI", uri),
            ("PATH_INFO", path), ("DOCUMENT_URI", path), ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"), ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "40000"),
            ("SERVER_ADDR", "127.0.0.1"), ("SERVER_PORT", "80"), ("SERVER_NAME", "localhost"),
            ("HTTP_HOST", "localhost"), ("HTTP_USER_AGENT", "corral-peers")]


def fcgi_record(rtype, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, 1, len(content), pad, 0) + content + b"\0" * pad


def fcgi_len(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def fcgi_head(uri, method="GET", clen=0, keep=True):
    """BEGIN_REQUEST, the PARAMS and the empty PARAMS: the request up to its body."""
    kv = b""
    for k, v in params_of(uri, method, clen):
        k, v = k.encode(), v.encode()
        kv += fcgi_len(len(k)) + fcgi_len(len(v)) + k + v
    return (fcgi_record(1, struct.pack(">HB5x", 1, 1 if keep else 0)) + fcgi_record(4, kv)
            + fcgi_record(4, b""))


def fcgi_request(uri, keep=True):
    return fcgi_head(uri, keep=keep) + fcgi_record(5, b"")


def uwsgi_request(uri):
    kv = b""
    for k, v in params_of(uri, "GET", 0):
        k, v = k.encode(), v.encode()
        kv += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", 0, len(kv), 0) + kv


def fcgi_ended(buf):
    """True when buf (a FastCGI response stream) holds an END_REQUEST record."""
    off = 0
    while off + 8 <= len(buf):
        _v, rtype, _id, clen, pad, _r = struct.unpack_from(">BBHHBB", buf, off)
        if rtype == 3 and off + 8 + clen + pad <= len(buf):
            return True
        off += 8 + clen + pad
    return False


def connect(family, addr, timeout):
    """A connected non-blocking socket, or None. A full unix listen queue (EAGAIN) is retried
    every 1 ms until timeout, as a blocking connect would wait; a TCP connect in progress is
    waited for up to timeout."""
    s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    end = now() + timeout
    while True:
        rc = s.connect_ex(addr)
        if rc == 0:
            return s
        if rc == errno.EAGAIN and not stop and now() < end:
            time.sleep(0.001)
            continue
        if rc == errno.EINPROGRESS:
            p = select.poll()
            p.register(s, select.POLLOUT)
            if p.poll(max(0.0, end - now()) * 1000) and \
                    not s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return s
        s.close()
        return None


def emit(obj):
    print(json.dumps(obj), flush=True)


def median(xs):
    xs = sorted(xs)
    return round(xs[len(xs) // 2], 2) if xs else None


def mode_hold(a, family, addr):
    req = b"" if a.no_request else fcgi_request(a.uri)
    ep = select.epoll()
    conns, bufs, failed = {}, {}, 0
    pending, closed = set(), set()
    answered = 0

    def drain(timeout):
        """Reads what came on the held connections; counts the first responses."""
        nonlocal answered
        for fd, _ev in ep.poll(timeout):
            try:
                data = conns[fd].recv(65536)
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                closed.add(fd)
                pending.discard(fd)
                continue
            bufs[fd] += data
            if fd in pending and fcgi_ended(bufs[fd]):
                pending.discard(fd)
                answered += 1
                bufs[fd] = b""

    t0 = now()
    for i in range(a.count):
        if stop or now() - t0 > a.timeout:
            break
        if i % 64 == 0:
            drain(0)  # the responses so far, so that they count by the deadline
        s = connect(family, addr, max(0.1, a.timeout - (now() - t0)))
        if s is None:
            failed += 1
            continue
        try:
            s.send(req)
        except OSError:
            s.close()
            failed += 1
            continue
        conns[s.fileno()] = s
        bufs[s.fileno()] = b""
        if req:
            pending.add(s.fileno())
        ep.register(s, select.EPOLLIN | select.EPOLLRDHUP)
    t_conn = now() - t0
    while pending and not stop and now() - t0 < a.timeout:
        drain(0.1)
    drain(0)
    t_ans = now() - t0
    emit({"phase": "ready", "opened": len(conns), "connect_failed": failed,
          "answered": answered, "unanswered": len(pending), "closed": len(closed),
          "connect_s": round(t_conn, 3), "answer_s": round(t_ans, 3),
          "connect_rate": round(len(conns) / t_conn) if t_conn > 0 else None,
          "answer_rate": round(answered / t_ans) if answered and t_ans > 0 else None})
    t1 = now()
    while not stop and now() - t1 < a.seconds:
        for fd, _ev in ep.poll(0.5):
            try:
                data = conns[fd].recv(65536)
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                closed.add(fd)
            elif fd in pending and fcgi_ended(bufs[fd] + data):
                pending.discard(fd)
                answered += 1
    emit({"phase": "end", "opened": len(conns), "answered": answered,
          "closed_by_server": len(closed), "still_open": len(conns) - len(closed)})


def mode_slow(a, family, addr):
    ep = select.epoll()
    conns = {}  # fd -> [kind, socket, bytes still to send, t_open, t_closed]
    head = fcgi_request("/hello")
    big = fcgi_request("/large?size=%d" % a.large)
    body_head = fcgi_head("/echo", "POST", a.body) + struct.pack(">BBHHBB", 1, 5, 1, a.body, 0, 0)
    t0 = now()
    for kind, n in (("trickle", a.trickle), ("noread", a.noread), ("slowbody", a.slowbody)):
        for _ in range(n):
            if stop or now() - t0 > a.timeout:
                break
            s = connect(family, addr, max(0.1, a.timeout - (now() - t0)))
            if s is None:
                continue
            if kind == "noread":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                if kind == "noread":
                    s.send(big)
                elif kind == "slowbody":
                    s.send(body_head)
            except OSError:
                s.close()
                continue
            rest = head if kind == "trickle" else b"x" * a.body if kind == "slowbody" else b""
            conns[s.fileno()] = [kind, s, rest, now(), None]
            # noread: only the peer's close, never its data
            ep.register(s, select.EPOLLRDHUP if kind == "noread"
                        else select.EPOLLIN | select.EPOLLRDHUP)
    kinds = ("trickle", "noread", "slowbody")
    emit({"phase": "ready", "setup_s": round(now() - t0, 3),
          **{k: sum(1 for c in conns.values() if c[0] == k) for k in kinds}})

    def closed(c):
        if c[4] is None:
            c[4] = now()
            ep.unregister(c[1])

    t1, tick = now(), now()
    while not stop and now() - t1 < a.seconds:
        for fd, ev in ep.poll(0.2):
            c = conns[fd]
            if c[0] == "noread":
                closed(c)
                continue
            try:
                data = c[1].recv(65536)
            except OSError:
                data = b""
            if not data or ev & (select.EPOLLRDHUP | select.EPOLLHUP):
                closed(c)
        if now() - tick < a.interval:
            continue
        tick += a.interval
        for c in conns.values():
            if c[4] is not None or not c[2]:
                continue
            try:
                c[1].send(c[2][:1])
                c[2] = c[2][1:]
            except BlockingIOError:
                pass
            except OSError:
                closed(c)
    out = {"phase": "end", "seconds": round(now() - t1, 1)}
    for k in kinds:
        mine = [c for c in conns.values() if c[0] == k]
        gone = [c[4] - c[3] for c in mine if c[4] is not None]
        out[k] = {"opened": len(mine), "closed_by_server": len(gone),
                  "median_s_to_close": median(gone), "still_open": len(mine) - len(gone)}
    emit(out)


def mode_crash(a, family, addr):
    req = uwsgi_request(a.uri) if a.proto == "uwsgi" else fcgi_request(a.uri, keep=False)
    ep = select.epoll()
    conns = {}  # fd -> [socket, bytes received]
    sent = answered = cut = failed = 0
    emit({"phase": "ready"})
    t0 = now()
    nxt = t0
    while not stop and now() - t0 < a.seconds:
        if now() >= nxt:
            nxt += 1.0 / a.rate
            s = connect(family, addr, 1.0)
            if s is None:
                failed += 1
            else:
                try:
                    s.send(req)
                    sent += 1
                    conns[s.fileno()] = [s, 0]
                    ep.register(s, select.EPOLLIN | select.EPOLLRDHUP)
                except OSError:
                    failed += 1
                    s.close()
        for fd, _ev in ep.poll(max(0.0, min(0.05, nxt - now()))):
            c = conns[fd]
            try:
                data = c[0].recv(65536)
            except OSError:
                data = b""
            if data:
                c[1] += len(data)
                continue
            ep.unregister(fd)
            c[0].close()
            del conns[fd]
            if c[1]:
                answered += 1
            else:
                cut += 1
    emit({"phase": "end", "sent": sent, "answered": answered, "cut": cut,
          "connect_failed": failed, "unfinished": len(conns)})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("hold", "slow", "crash"))
    p.add_argument("--connect", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--uri", default=None)
    p.add_argument("--no-request", action="store_true")
    p.add_argument("--trickle", type=int, default=0)
    p.add_argument("--noread", type=int, default=0)
    p.add_argument("--slowbody", type=int, default=0)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--large", type=int, default=8 << 20, help="noread: response bytes")
    p.add_argument("--body", type=int, default=60000,
                   help="slowbody: body bytes (one STDIN record: at most 65535)")
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--proto", choices=("fastcgi", "uwsgi"), default="fastcgi")
    p.add_argument("--seconds", type=float, default=3600.0)
    p.add_argument("--timeout", type=float, default=30.0, help="bound on the setup")
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    family, addr = addr_of(a.connect)
    if a.mode == "hold":
        a.uri = a.uri or "/hello"
        mode_hold(a, family, addr)
    elif a.mode == "slow":
        mode_slow(a, family, addr)
    else:
        a.uri = a.uri or "/crash"
        mode_crash(a, family, addr)


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
