#!/bin/sh
# Install the Debian packages corral needs to build, test and run its demo.
# Idempotent: installs only what is missing. Needs root (or sudo).
#   contrib/install-deps.sh          build, test and demo packages
#   contrib/install-deps.sh --bench  only what contrib/bench/*.sh add to a build:
#                                    uWSGI (the comparison), gnuplot, wrk, nginx,
#                                    Apache with mod_wsgi (contrib/bench/fronts.sh)
set -eu

PKGS="build-essential autoconf automake pkg-config libconfig-dev libcmocka-dev \
libfcgi-dev libfcgi-bin nginx-light apache2 curl python3 libpython3-dev python3-flask \
python3-django python3-prometheus-client python3-venv clang libclang-rt-14-dev tmux util-linux \
systemd man-db groff-base mandoc"
# The many-hosts test (tests/integration/hosts.sh): network namespaces, HAProxy.
PKGS="$PKGS iproute2"
# The http listener's front ends (tests/integration/http_proxies.sh); hosts.sh uses HAProxy too.
PKGS="$PKGS haproxy caddy"
# The HTTP codec's differential unit test (tests/unit/test_http_diff.c).
PKGS="$PKGS libhttp-parser-dev"
# FastCGI programs (tests/integration/program.sh): PHP as php-cgi, with OPcache.
PKGS="$PKGS php8.2-cgi php8.2-opcache"
# CGI scripts (tests/integration/cgi.sh): git's git-http-backend, cgit.
PKGS="$PKGS git cgit"
# ASGI apps (tests/integration/asgi.sh): Starlette, FastAPI, forms and uploads, a
# WebSocket client.
PKGS="$PKGS python3-starlette python3-fastapi python3-multipart python3-websockets"
# CPython's own asyncio tests, run on the ASGI worker's loop (tests/integration/asgi_loop.sh).
PKGS="$PKGS libpython3.11-testsuite"
# The Debian packages and their test (contrib/deb/build.sh, tests/integration/package.sh).
PKGS="$PKGS debhelper dpkg-dev fakeroot lintian mmdebstrap"

case "${1:-}" in
"") ;;
--bench) PKGS="uwsgi-core uwsgi-plugin-python3 gnuplot-nox wrk nginx-light \
apache2 libapache2-mod-wsgi-py3 php8.2-fpm fcgiwrap" ;;
*) echo "usage: install-deps.sh [--bench]" >&2; exit 2 ;;
esac
# contrib/bench/http.sh compares the http listener with gunicorn.
if [ "${1:-}" = --bench ]; then PKGS="$PKGS gunicorn"; fi
# contrib/bench/asgi.sh compares --asgi with uvicorn.
if [ "${1:-}" = --bench ]; then PKGS="$PKGS uvicorn python3-starlette"; fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root to install:$missing" >&2; exit 1; }
    SUDO=sudo
fi
echo "install-deps: installing$missing"
# nginx and apache2 start system services on port 80 when installed; corral's
# demo and tests run their own instances, so keep the services from starting
# (haproxy's and caddy's too).
policy=/usr/sbin/policy-rc.d
own_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    own_policy=yes
fi
cleanup() { [ "$own_policy" = yes ] && $SUDO rm -f "$policy"; true; }
trap cleanup EXIT
$SUDO apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
