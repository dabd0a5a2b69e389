#!/bin/bash
# status_page.sh -- --status-path: the pool answers that path itself, before
# the app, through nginx and directly (uwsgi, FastCGI): JSON that parses and
# matches the control socket's status, and with ?openmetrics the OpenMetrics
# text format, parsed with prometheus_client's strict OpenMetrics parser.
# Off by default: the app answers the path.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-90}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL" "$CTL" "$DEMO_SO"
need curl curl
"$PY" -c 'import prometheus_client.openmetrics.parser' 2>/dev/null ||
    need prometheus-client-for-python3 python3-prometheus-client

U=$T/u.sock F=$T/f.sock SOCK=$T/ctl.sock
start_corral --listen "uwsgi:unix:$U" --listen "fastcgi:unix:$F" --handler "$DEMO_SO" \
    --processes 2 --threads 2 --chmod 0666 --control "$SOCK" --status-path /corral-status ||
    finish

P=$(free_port)
start_nginx "
    server {
        listen 127.0.0.1:$P;
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$U;
        }
        # The status page, for the local host only.
        location = /corral-status {
            allow 127.0.0.1;
            deny all;
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:$U;
        }
    }
" || finish

# 20 requests through nginx first, so the counters have something to count.
for i in $(seq 20); do curl_req "http://127.0.0.1:$P/hello"; done
expect_eq "20 requests through nginx answered" "200" "$HTTP_CODE"

curl_req "http://127.0.0.1:$P/corral-status"
expect_eq "nginx: the status page answers 200" 200 "$HTTP_CODE"
expect_eq "nginx: Content-Type application/json" "application/json" "$(head_value Content-Type)"
cp "$T/body" "$T/page.json"
timeout 20 "$CTL" -s "$SOCK" --json status >"$T/ctl.json"
py_checks "$T/page.json" "$T/ctl.json" "$CORRAL_PID" "$U" "$F" <<'PY'
import json, sys
from lib_protocols import report
page = json.load(open(sys.argv[1]))
ctl = json.load(open(sys.argv[2]))
pid, u, f = int(sys.argv[3]), sys.argv[4], sys.argv[5]
report("page: JSON with the master's pid and state running", (page["pid"], page["state"]) == (pid, "running"), repr((page["pid"], page["state"])))
p = page["pool"]
report("page: pool static, 2 processes x 2 threads, all live",
       (p["mode"], p["processes"], p["processes_live"], p["threads"], p["threads_live"]) == ("static", 2, 2, 2, 4), repr(p))
r = page.get("reload", {})
report("page: the reload object (generation 1, idle, no reload yet)",
       (r.get("generation"), r.get("state"), r.get("reloads"), r.get("other_live"), r.get("last"))
       == (1, "idle", 0, 0, None), repr(r))
report("page: exactly one thread busy (the one serving the page)", p["threads_busy"] == 1, repr(p))
report("page: one request in flight (the page), per worker too",
       p["requests_in_flight"] == 1 and
       sorted(w["requests_in_flight"] for w in page["in_flight"]) == [0, 1], repr(page["in_flight"]))
report("page: totals count the 20 requests (and the readiness pings)", 20 <= page["totals"]["requests"] <= 24, repr(page["totals"]))
report("page: the control socket's status counts the page as one more request",
       ctl["totals"]["requests"] == page["totals"]["requests"] + 1, "%r vs %r" % (ctl["totals"], page["totals"]))
report("page: the same members as the control socket's status (plus its ok)",
       sorted(page) == sorted(k for k in ctl if k != "ok"), "%r vs %r" % (sorted(page), sorted(ctl)))
report("page: both listeners with protocol, accepted, queue and backlog",
       [(l["address"], l["protocol"], l["queue"], l["backlog"]) for l in page["listeners"]] ==
       [("uwsgi:unix:" + u, "uwsgi", 0, 1024), ("fastcgi:unix:" + f, "fastcgi", 0, 1024)], repr(page["listeners"]))
report("page: the uwsgi listener accepted the nginx connections",
       page["listeners"][0]["accepted"] >= 21, repr(page["listeners"][0]))
PY

curl_req "http://127.0.0.1:$P/corral-status?openmetrics"
expect_eq "nginx: ?openmetrics answers 200" 200 "$HTTP_CODE"
expect_eq "nginx: the OpenMetrics Content-Type" \
    "application/openmetrics-text; version=1.0.0; charset=utf-8" "$(head_value Content-Type)"
cp "$T/body" "$T/page.om"
timeout 20 "$CTL" -s "$SOCK" --json status >"$T/ctl.json"

# The OpenMetrics text: the strict parser, then the numbers.
OM_CHECK=$(cat <<'PY'
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from lib_protocols import report
def om_check(label, text, ctl, u, f):
    try:
        fams = {m.name: m for m in text_string_to_metric_families(text)}
    except Exception as e:
        report(label + ": parses as OpenMetrics", False, repr(e))
        return
    report(label + ": parses as OpenMetrics and ends with # EOF", text.endswith("# EOF\n"))
    names = set(fams)
    want = {"corral", "corral_requests", "corral_errors", "corral_accepted", "corral_respawns",
            "corral_max_processes_reached", "corral_workers", "corral_busy_threads",
            "corral_threads", "corral_listen_queue", "corral_listen_backlog",
            "corral_listener_accepted", "corral_uptime_seconds", "corral_generation",
            "corral_reloads", "corral_reloads_failed", "corral_previous_generation_workers"}
    report(label + ": the corral_ families", want <= names, "missing %r" % (want - names))
    report(label + ": every family is named corral_...", all(n == "corral" or n.startswith("corral_") for n in names), repr(names))
    def one(name):
        return fams[name].samples[0].value
    report(label + ": corral_requests is a counter with a _total sample",
           fams["corral_requests"].type == "counter" and fams["corral_requests"].samples[0].name == "corral_requests_total")
    report(label + ": corral_requests_total is the control socket's count minus this page",
           one("corral_requests") == ctl["totals"]["requests"] - 1, "%r vs %r" % (one("corral_requests"), ctl["totals"]))
    report(label + ": corral_workers 2, corral_threads 4, corral_busy_threads 1",
           (one("corral_workers"), one("corral_threads"), one("corral_busy_threads")) == (2, 4, 1))
    fl = sorted((s.labels["worker"], s.value) for s in fams["corral_requests_in_flight"].samples)
    report(label + ": corral_requests_in_flight per worker: 1 on the page's worker, 0 on the other",
           fams["corral_requests_in_flight"].type == "gauge" and len(fl) == 2 and
           sorted(v for _, v in fl) == [0, 1], repr(fl))
    q = {s.labels["listener"]: s.value for s in fams["corral_listen_queue"].samples}
    report(label + ": corral_listen_queue per listener, 0 when idle",
           q == {"uwsgi:unix:" + u: 0, "fastcgi:unix:" + f: 0}, repr(q))
    info = fams["corral"].samples[0]
    report(label + ": corral_info names the pool mode", info.labels.get("pool") == "static", repr(info))
PY
)
py_checks "$T/page.om" "$T/ctl.json" "$U" "$F" <<PY
$OM_CHECK
om_check("nginx ?openmetrics", open(sys.argv[1]).read(), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4])
PY

# Directly, without nginx: FastCGI and uwsgi, and the query parameter with a value.
py_checks "$SOCK" "$U" "$F" "$CTL" <<PY
$OM_CHECK
import subprocess
sock, u, f, ctlbin = sys.argv[1:5]
from lib_protocols import request, header
def ctl_status():
    return json.loads(subprocess.run([ctlbin, "-s", sock, "--json", "status"], capture_output=True, timeout=20).stdout)
st, h, body = request("fastcgi", "unix:" + f, uri="/corral-status?openmetrics")
report("fastcgi: the status page answers 200 with OpenMetrics",
       (st, header(h, "Content-Type")) == (200, "application/openmetrics-text; version=1.0.0; charset=utf-8"), repr((st, h)))
om_check("fastcgi ?openmetrics", body.decode(), ctl_status(), u, f)
st, h, body = request("uwsgi", "unix:" + u, uri="/corral-status?x=1&openmetrics=1")
report("uwsgi: openmetrics=1 among other parameters selects OpenMetrics",
       st == 200 and body.endswith(b"# EOF\n"), repr((st, body[-40:])))
st, h, body = request("uwsgi", "unix:" + u, uri="/corral-status?verbose")
report("uwsgi: another query gives the JSON", st == 200 and json.loads(body)["pool"]["mode"] == "static", repr((st, body[:60])))
st, h, body = request("uwsgi", "unix:" + u, uri="/corral-status/x")
report("uwsgi: a longer path goes to the app (404 from the demo)", (st, body) == (404, b"not found\n"), repr((st, body)))
PY
stop_nginx_and_corral() {
    stop_pid "$NGINX_PID"
    _forget_pid "$NGINX_PID"
    stop_corral
}
stop_nginx_and_corral
expect_eq "corral exits 0 on SIGTERM" 0 "$CORRAL_STATUS"

# Off by default: the app answers that path.
start_corral --listen "uwsgi:unix:$U" --handler "$DEMO_SO" || finish
py_checks "unix:$U" <<'PY'
import sys
from lib_protocols import request, report
st, h, body = request("uwsgi", sys.argv[1], uri="/corral-status")
report("off by default: the app answers /corral-status (404 from the demo)", (st, body) == (404, b"not found\n"), repr((st, body)))
st, h, body = request("uwsgi", sys.argv[1], uri="/corral-status?openmetrics")
report("off by default: ... also with ?openmetrics", st == 404, repr((st, body)))
PY
stop_corral
finish
