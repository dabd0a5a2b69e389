#!/usr/bin/env python3
"""tests/integration/hosts_load.py: the load client and the figures of tests/integration/hosts.sh.

  hosts_load.py run --port P --conns N --rate R --seconds S --out FILE
      N threads, each with one HTTP/1.1 keep-alive connection to 127.0.0.1:P, send GET /
      paced to R requests a second in all, until SIGTERM or S seconds. Each request is one line
      of FILE (written at the end): "START_MS END_MS RESULT HOST", times in wall-clock ms,
      RESULT the HTTP status or an error word (connect, reset, closed, timeout), HOST the name
      the app answered (hosts_app.py) or "-". At most N requests are in flight at a time.
      Like any HTTP client, a request that finds its kept connection closed before a byte of
      the answer is sent again once on a new connection (RFC 9112 section 9.3.1); those are
      counted as "resent" in FILE's last line.
  hosts_load.py figures --log FILE --event MS --host NAME [--access LOG --addr IP]
      one JSON object: requests, failed (any result but 200), failed_after (ended after the
      event), served_by (requests per host), last_ms (the end of the last request NAME served,
      in ms after the event; null when none after it), and with an nginx access log
      ("$msec $request_time "$upstream_addr" ..."): tries_after (requests nginx tried on
      IP:--port that began after the event), last_try_ms (the start of the last of them),
      first_fail_ms (the end of the first of them nginx then sent to another host: about when
      nginx counted IP as failed). The tail: served_tail (hosts that served the last --tail
      requests of the load) and tries_tail (of the last --tail requests nginx logged, how
      many it tried on IP).
  hosts_load.py haproxy --sock PATH CMD...
      sends one runtime API command to HAProxy's stats socket, prints the answer.
  hosts_load.py haproxy-wait --sock PATH --server BACKEND/NAME --state WORD --event MS
      polls "show stat" every 20 ms (at most --timeout s) until the server's status starts with
      WORD (UP, DOWN, MAINT); prints the ms since the event, exits 1 on timeout.
Python 3 only.
"""
import argparse
import json
import signal
import socket
import sys
import threading
import time

stop = threading.Event()
counts_lock = threading.Lock()


def now_ms():
    return time.time() * 1000.0


def read_response(s, buf):
    """One HTTP/1.1 response from socket s (buf: bytes already read). Returns
    (status, body, rest, keep). Raises ConnectionError("closed") when the peer closed (or
    reset) the connection before a byte of the answer, ConnectionError("reset") when in the
    middle of it."""
    got = [len(buf)]

    def more():
        try:
            d = s.recv(65536)
        except ConnectionError:
            d = b""
        if not d:
            raise ConnectionError("reset" if got[0] else "closed")
        got[0] += len(d)
        return d

    while b"\r\n\r\n" not in buf:
        buf += more()
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    hdr = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdr[k.strip().lower()] = v.strip().lower()
    keep = hdr.get(b"connection") != b"close"
    if hdr.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += more()
            size_line, _, buf = buf.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            while len(buf) < n + 2:
                buf += more()
            body += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                return status, body, buf, keep
    n = int(hdr.get(b"content-length", b"0"))
    while len(buf) < n:
        buf += more()
    return status, buf[:n], buf[n:], keep


def client(port, interval, first_at, timeout, records, counts):
    s, buf, used = None, b"", False
    due = first_at
    while not stop.is_set():
        wait = due - time.monotonic()
        if wait > 0 and stop.wait(wait):
            break
        due += interval
        start = now_ms()
        result, host = None, "-"
        for attempt in (0, 1):
            resend = False
            try:
                if s is None:
                    try:
                        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                    except OSError:
                        result = "connect"
                        break
                    buf, used = b"", False
                s.settimeout(timeout)
                try:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: hosts\r\n\r\n")
                except ConnectionError:
                    raise ConnectionError("closed")  # found the kept connection closed
                status, body, buf, keep = read_response(s, buf)
                used = True
                result = str(status)
                parts = body.split()
                if status == 200 and len(parts) >= 2 and parts[0] == b"host":
                    host = parts[1].decode()
                if not keep:
                    s.close()
                    s = None
                break
            except socket.timeout:
                result = "timeout"
            except OSError as e:
                word = e.args[0] if e.args and isinstance(e.args[0], str) else "reset"
                result = word
                # A kept connection the front end closed while idle: send once more.
                resend = used and attempt == 0 and word == "closed"
            if s is not None:
                s.close()
                s = None
            if not resend:
                break
            with counts_lock:
                counts["resent"] += 1
        records.append("%.1f %.1f %s %s" % (start, now_ms(), result, host))
    if s is not None:
        s.close()


def cmd_run(a):
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    records, counts, threads = [], {"resent": 0}, []
    interval = a.conns / float(a.rate)
    t0 = time.monotonic()
    for i in range(a.conns):
        t = threading.Thread(target=client, daemon=True,
                             args=(a.port, interval, t0 + i * interval / a.conns, a.timeout,
                                   records, counts))
        t.start()
        threads.append(t)
    stop.wait(a.seconds)
    stop.set()
    for t in threads:
        t.join(a.timeout + 1)
    with open(a.out, "w") as f:
        for r in records:
            f.write(r + "\n")
        f.write("# resent %d\n" % counts["resent"])
    return 0


def cmd_figures(a):
    reqs, resent = [], 0
    with open(a.log) as f:
        for ln in f:
            if ln.startswith("# resent"):
                resent = int(ln.split()[2])
                continue
            st, en, res, host = ln.split()
            reqs.append((float(st), float(en), res, host))
    ev = float(a.event)
    out = {"requests": len(reqs), "resent": resent}
    bad = [r for r in reqs if r[2] != "200"]
    out["failed"] = len(bad)
    out["failed_after"] = len([r for r in bad if r[1] >= ev])
    out["failures"] = ["%+.0f ms %s" % (r[1] - ev, r[2]) for r in bad[:20]]
    served = {}
    for r in reqs:
        if r[2] == "200":
            served[r[3]] = served.get(r[3], 0) + 1
    out["served_by"] = served
    ends = [r[1] for r in reqs if r[2] == "200" and r[3] == a.host and r[1] >= ev]
    out["last_ms"] = round(max(ends) - ev) if ends else None
    out["served_after_event"] = {}
    for r in reqs:
        if r[2] == "200" and r[0] >= ev:
            out["served_after_event"][r[3]] = out["served_after_event"].get(r[3], 0) + 1
    out["served_tail"] = {}
    for r in sorted(reqs)[-a.tail:]:
        if r[2] == "200":
            out["served_tail"][r[3]] = out["served_tail"].get(r[3], 0) + 1
    if a.access:
        tries, fails, lines = [], [], []
        with open(a.access) as f:
            for ln in f:
                p = ln.split('"')
                if len(p) < 2:
                    continue
                msec, rtime = (float(x) for x in p[0].split()[:2])
                start = msec * 1000.0 - rtime * 1000.0
                ups = [u.strip() for u in p[1].split(",")]
                dead = (a.addr + ":%d" % a.port) in ups
                lines.append((start, dead))
                if start >= ev and dead:
                    tries.append(start)
                    if ups[-1] != a.addr + ":%d" % a.port:
                        fails.append(msec * 1000.0)  # nginx went on to the next host
        out["tries_after"] = len(tries)
        out["last_try_ms"] = round(max(tries) - ev) if tries else None
        out["first_fail_ms"] = round(min(fails) - ev) if fails else None
        out["tries_tail"] = len([x for x in sorted(lines)[-a.tail:] if x[1]])
    print(json.dumps(out, sort_keys=True))
    return 0


def haproxy_cmd(sock, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(cmd.encode() + b"\n")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out.decode()


def cmd_haproxy(a):
    sys.stdout.write(haproxy_cmd(a.sock, " ".join(a.cmd)))
    return 0


def server_status(sock, server):
    be, _, name = server.partition("/")
    lines = haproxy_cmd(sock, "show stat").splitlines()
    cols = lines[0].lstrip("# ").split(",")
    for ln in lines[1:]:
        row = dict(zip(cols, ln.split(",")))
        if row.get("pxname") == be and row.get("svname") == name:
            return row.get("status", "")
    return ""


def cmd_haproxy_wait(a):
    end = time.monotonic() + a.timeout
    while True:
        try:
            st = server_status(a.sock, a.server)
        except OSError as e:  # HAProxy not up yet
            st = "(%s)" % e
        if st.startswith(a.state):
            print(round(now_ms() - float(a.event)))
            return 0
        if time.monotonic() >= end:
            print("status %r after %s s" % (st, a.timeout), file=sys.stderr)
            return 1
        time.sleep(0.02)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd_name", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--conns", type=int, default=4)
    r.add_argument("--rate", type=float, default=200)
    r.add_argument("--seconds", type=float, default=30)
    r.add_argument("--timeout", type=float, default=10)
    r.add_argument("--out", required=True)
    f = sub.add_parser("figures")
    f.add_argument("--log", required=True)
    f.add_argument("--event", required=True)
    f.add_argument("--host", required=True)
    f.add_argument("--access")
    f.add_argument("--addr")
    f.add_argument("--port", type=int, default=9000)
    f.add_argument("--tail", type=int, default=100)
    h = sub.add_parser("haproxy")
    h.add_argument("--sock", required=True)
    h.add_argument("cmd", nargs="+")
    w = sub.add_parser("haproxy-wait")
    w.add_argument("--sock", required=True)
    w.add_argument("--server", required=True)
    w.add_argument("--state", required=True)
    w.add_argument("--event", default="0")
    w.add_argument("--timeout", type=float, default=15)
    a = p.parse_args()
    return {"run": cmd_run, "figures": cmd_figures, "haproxy": cmd_haproxy,
            "haproxy-wait": cmd_haproxy_wait}[a.cmd_name](a)


if __name__ == "__main__":
    sys.exit(main())
