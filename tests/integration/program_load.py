"""program_load.py -- keep-alive HTTP clients for tests/integration/program.sh.

    python3 program_load.py PORT PATH CLIENTS REQUESTS [SECONDS]

CLIENTS threads each keep one HTTP/1.1 connection to 127.0.0.1:PORT and send
REQUESTS GETs of PATH (or, with SECONDS, as many as fit in that time).
Prints "ok N", "failed N", "statuses {...}", "pids K" (distinct pid= values
in the bodies) on stdout. A request that gets no answer, or another status
than 200, is a failure; a kept connection the server closed before it sent
any byte of an answer is opened again and the request sent again.
"""
import http.client
import re
import sys
import threading
import time


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    clients, requests = int(sys.argv[3]), int(sys.argv[4])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 0
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    statuses = {}
    pids = set()
    end = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while (n < requests) if not seconds else (time.monotonic() < end):
            n += 1
            status, body = None, b""
            for attempt in range(2):
                try:
                    conn.request("GET", path)
                    r = conn.getresponse()
                    status, body = r.status, r.read()
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError,
                        BrokenPipeError) as e:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    status = repr(e)
                except Exception as e:  # noqa: BLE001 -- reported as a failure
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    status = repr(e)
                    break
            m = re.search(rb"pid=(\d+)", body)
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                counts["ok" if status == 200 else "failed"] += 1
                if m:
                    pids.add(m.group(1))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok", counts["ok"])
    print("failed", counts["failed"])
    print("statuses", statuses)
    print("pids", len(pids))


main()
