#!/usr/bin/env bash
# contrib/bench/fronts.sh: the tail behind a front end. The hello-world WSGI app
# (contrib/bench/apps/hello.py) served behind nginx and behind Apache, in one interleaved run,
# with the req/s and the 50th, 99th and 99.9th percentiles of the latency wrk sees:
#
#   nginx (1 worker) -> corral      FastCGI, fastcgi_keep_conn on, upstream keepalive 32
#   nginx (1 worker) -> uWSGI       uwsgi_pass (nginx cannot keep uwsgi connections)
#   Apache (event MPM) -> corral    mod_proxy_fcgi, enablereuse=on (kept connections)
#   Apache (event MPM) -> corral    mod_proxy_uwsgi (a connection per request)
#   Apache + mod_wsgi               daemon mode, WSGIDaemonProcess processes=P threads=T
#
#   contrib/install-deps.sh --bench    # nginx-light wrk uwsgi-core apache2 libapache2-mod-wsgi-py3
#   BUILD=build ROUNDS=3 SECONDS_PER_RUN=5 contrib/bench/fronts.sh
#
# Each CONFIG (PROCESSESxTHREADS) gives corral, uWSGI and mod_wsgi's daemon the same processes
# and threads. wrk -t1 -c CONNS; every target runs once per round (even rounds in reverse order);
# the tables show medians over the rounds. Goals (issue 13, part 4): behind Apache, corral's p99
# at most mod_wsgi's at equal or better req/s; behind nginx, corral's p99 at most uWSGI's.
#
# Environment: BUILD, ROUNDS (3), SECONDS_PER_RUN (5), CONNS (32), WARMUP (1), CONFIGS
# ("2x1 2x2"), UWSGI (uwsgi), RESULTS=FILE keeps the raw runs (label, req/s, p50, p99, p99.9
# in ms, errors). Everything lives in a temp dir; every process started here is stopped on exit.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=${ROUNDS:-3}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
CONFIGS=${CONFIGS:-2x1 2x2}
UWSGI=${UWSGI:-uwsgi}
export PYTHONDONTWRITEBYTECODE=1
app=$here/apps/hello.py
hello="Hello, World!"
mods=/usr/lib/apache2/modules

need_built "$corral"
for t in nginx wrk apache2 "$UWSGI"; do
    command -v "$t" >/dev/null || die "$t not found: contrib/install-deps.sh --bench"
done
[ -f "$mods/mod_wsgi.so" ] || die "mod_wsgi not found: contrib/install-deps.sh --bench" \
    "(libapache2-mod-wsgi-py3)"
read -r -a configs <<<"$CONFIGS"
for c in "${configs[@]}"; do
    [[ "$c" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "CONFIGS: '$c' is not PROCESSESxTHREADS"
done

bench_init
results=$tmp/results # label<TAB>rps<TAB>p50<TAB>p99<TAB>p99.9<TAB>errors
: >"$results"
# Apache's children run as www-data (as root) and reach the backends' sockets in $tmp.
chmod 755 "$tmp"

# wrk prints the 50th to 99th percentiles; this adds the 99.9th (microseconds).
cat >"$tmp/pct.lua" <<'EOF'
done = function(summary, latency, requests)
    io.write(string.format("pct %d %d %d\n", latency:percentile(50), latency:percentile(99),
        latency:percentile(99.9)))
end
EOF

# fwrk ROUND LABEL PORT: one wrk run; appends a line to $results.
fwrk() {
    local round=$1 label=$2 p=$3 w_warm=${WARMUP%.*} out rps errs pct
    [ "${w_warm:-0}" -gt 0 ] && runfg "$tmp/wrk.out" wrk -t1 -c"$CONNS" -d"${w_warm}s" \
        "http://127.0.0.1:$p/"
    runfg "$tmp/wrk.out" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN%.*}s" -s "$tmp/pct.lua" \
        "http://127.0.0.1:$p/"
    out=$(cat "$tmp/wrk.out" "$tmp/wrk.out.err")
    rps=$(awk '/^Requests\/sec:/{ print $2 }' <<<"$out")
    pct=$(awk '$1 == "pct" { printf "%.3f\t%.3f\t%.3f", $2 / 1000, $3 / 1000, $4 / 1000 }' <<<"$out")
    errs=$(awk '/Non-2xx/{ e += $NF } /Socket errors/{ gsub(/,/, ""); \
        e += $4 + $6 + $8 + $10 } END { print e + 0 }' <<<"$out")
    if [ -z "$rps" ] || [ -z "$pct" ]; then
        say "  round $round: $label: wrk failed: $out"
        return 1
    fi
    printf '%s\t%s\t%s\t%s\n' "$label" "$rps" "$pct" "$errs" >>"$results"
    say "  round $round: $(tail -1 "$results" | tr '\t' ' ')"
}

# ---- backends ----
declare -A sock pid
for c in "${configs[@]}"; do
    np=${c%x*} nt=${c#*x}
    for p in fastcgi uwsgi; do
        i=corral-$c-$p
        start "$i" "$tmp/$i.sock" "$tmp/$i.pid" INT "$corral" "${corral_root[@]}" \
            --wsgi-file "$app" --listen "$p:unix:$tmp/$i.sock" --processes "$np" \
            --threads "$nt" --chmod 0666 --pidfile "$tmp/$i.pid" || die "corral did not start"
        sock[$i]=$tmp/$i.sock pid[$i]=$srv_pid
    done
    i=uWSGI-$c-uwsgi
    uw=("$UWSGI" --plugin python3 --master --processes "$np" --wsgi-file "$app" --lazy-apps
        --disable-logging --die-on-term --chmod-socket=666 --uwsgi-socket "$tmp/$i.sock"
        --pidfile "$tmp/$i.pid")
    [ "$nt" -gt 1 ] && uw+=(--threads "$nt" --enable-threads)
    start "$i" "$tmp/$i.sock" "$tmp/$i.pid" INT "${uw[@]}" || die "uWSGI did not start"
    sock[$i]=$tmp/$i.sock pid[$i]=$srv_pid
done

# ---- nginx ----
targets=() # LABEL|PORT
for c in "${configs[@]}"; do
    nginx_add "corral-$c-fastcgi" "${sock[corral-$c-fastcgi]}" fastcgi
    nginx_add "uWSGI-$c-uwsgi" "${sock[uWSGI-$c-uwsgi]}" uwsgi
done
nginx_up "$hello" || exit 1
for t in "${ntargets[@]}"; do
    case $t in
        corral-*) targets+=("nginx->corral ${t#corral-} keepalive|${port[$t]}") ;;
        *) targets+=("nginx->uWSGI ${t#uWSGI-}|${port[$t]}") ;;
    esac
done

# ---- Apache: event MPM, a virtual host per target ----
a=$tmp/apache
mkdir -p "$a"
chmod 755 "$a"
declare -A aport
{
    echo "ServerRoot $a"
    echo "DefaultRuntimeDir $a"
    echo "PidFile $a/apache.pid"
    echo "ErrorLog $a/error.log"
    echo "LogLevel warn"
    echo "Mutex file:$a default"
    echo "ServerName localhost"
    for m in mpm_event authz_core unixd proxy proxy_fcgi proxy_uwsgi wsgi; do
        [ -f "$mods/mod_$m.so" ] && echo "LoadModule ${m}_module $mods/mod_$m.so" # else built in
    done
    if [ "$(id -u)" = 0 ]; then
        echo "User www-data"
        echo "Group www-data"
    fi
    cat <<EOF
StartServers 2
ServerLimit 4
ThreadsPerChild 64
ThreadLimit 64
MaxRequestWorkers 256
KeepAlive On
WSGISocketPrefix $a/wsgi
WSGIRestrictEmbedded On
<Directory />
    Require all granted
</Directory>
EOF
    for c in "${configs[@]}"; do
        np=${c%x*} nt=${c#*x}
        for k in fcgi uwsgi wsgi; do
            free_port || die "no free port"
            aport[$c-$k]=$free
            echo "Listen 127.0.0.1:$free"
            echo "<VirtualHost 127.0.0.1:$free>"
            case $k in
                fcgi) echo "    ProxyPass \"/\" \"unix:${sock[corral-$c-fastcgi]}|fcgi://corral-$c/\"" \
                    "enablereuse=on" ;;
                uwsgi) echo "    ProxyPass \"/\" \"unix:${sock[corral-$c-uwsgi]}|uwsgi://corral-$c-u/\"" ;;
                wsgi)
                    echo "    WSGIDaemonProcess hello-$c processes=$np threads=$nt"
                    echo "    WSGIScriptAlias / $app process-group=hello-$c application-group=%{GLOBAL}"
                    ;;
            esac
            echo "</VirtualHost>"
        done
    done
} >"$a/apache.conf"
apache2 -t -f "$a/apache.conf" >"$a/t.log" 2>&1 || die "Apache refused its config: $(cat "$a/t.log")"
first=${configs[0]}
start apache "tcp:${aport[$first-fcgi]}" /nonexistent TERM apache2 -f "$a/apache.conf" \
    -D FOREGROUND || die "Apache did not start"
for c in "${configs[@]}"; do
    for k in fcgi uwsgi wsgi; do
        case $k in
            fcgi) l="Apache->corral $c fcgi enablereuse" ;;
            uwsgi) l="Apache->corral $c uwsgi" ;;
            wsgi) l="Apache mod_wsgi daemon $c" ;;
        esac
        ok=0
        for _ in $(seq 50); do # mod_wsgi's daemons import the app on the first request
            check_hello "${aport[$c-$k]}" "$hello" && ok=1 && break
            sleep 0.2
        done
        if [ "$ok" = 1 ]; then targets+=("$l|${aport[$c-$k]}"); else say "$l does not answer: skipped"; fi
    done
done

# ---- the runs ----
say "fronts: $ROUNDS rounds x ${SECONDS_PER_RUN}s, wrk -t1 -c$CONNS, ${#targets[@]} targets"
for round in $(seq "$ROUNDS"); do
    in_order "$round" "${targets[@]}"
    for t in "${order[@]}"; do
        fwrk "$round" "${t%|*}" "${t##*|}"
    done
done
[ -n "${RESULTS:-}" ] && cp "$results" "$RESULTS"

echo
echo "fronts.sh: hello-world WSGI app behind nginx $(nginx -v 2>&1 | sed 's/.*\///') and" \
    "Apache $(apache2 -v | sed -n 's/.*Apache\/\([^ ]*\).*/\1/p') (event MPM);" \
    "$(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)"
echo "$ROUNDS rounds x ${SECONDS_PER_RUN}s (+${WARMUP}s warmup), wrk -t1 -c$CONNS; medians," \
    "errors summed over the rounds"
printf '%-36s %10s %9s %9s %10s %7s\n' path req/s "p50 ms" "p99 ms" "p99.9 ms" errors
for t in "${targets[@]}"; do
    l=${t%|*}
    printf '%-36s %10s %9s %9s %10s %7s\n' "$l" "$(fmt %.0f "$(med "$l" 2)")" "$(med "$l" 3)" \
        "$(med "$l" 4)" "$(med "$l" 5)" \
        "$(awk -F'\t' -v t="$l" '$1 == t { e += $6 } END { print e + 0 }' "$results")"
done
echo
echo "goals: Apache->corral fcgi / mod_wsgi: p99 <= 1 at req/s >= 1; nginx->corral / uWSGI: p99 <= 1"
for c in "${configs[@]}"; do
    f="Apache->corral $c fcgi enablereuse" m="Apache mod_wsgi daemon $c"
    printf '  %-5s Apache: req/s %5s p99 %5s p99.9 %5s' "$c" "$(ratio "$(med "$f" 2)" "$(med "$m" 2)")" \
        "$(ratio "$(med "$f" 4)" "$(med "$m" 4)")" "$(ratio "$(med "$f" 5)" "$(med "$m" 5)")"
    f="nginx->corral $c-fastcgi keepalive" m="nginx->uWSGI $c-uwsgi"
    printf '   nginx: req/s %5s p99 %5s p99.9 %5s\n' "$(ratio "$(med "$f" 2)" "$(med "$m" 2)")" \
        "$(ratio "$(med "$f" 4)" "$(med "$m" 4)")" "$(ratio "$(med "$f" 5)" "$(med "$m" 5)")"
done
total=$(awk -F'\t' '{ e += $6 } END { print e + 0 }' "$results")
[ "$total" = 0 ] || { say "fronts.sh: $total failed requests: the figures are not trustworthy"; exit 1; }
