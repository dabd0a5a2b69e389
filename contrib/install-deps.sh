#!/bin/sh
# Install the Debian packages corral needs to build, test and run its demo.
# Idempotent: installs only what is missing. Needs root (or sudo).
#   contrib/install-deps.sh          build, test and demo packages
#   contrib/install-deps.sh --bench  only what contrib/bench/*.sh add to a build:
#                                    uWSGI (the comparison), gnuplot, wrk, nginx
set -eu

PKGS="build-essential autoconf automake pkg-config libconfig-dev libcmocka-dev \
libfcgi-dev libfcgi-bin nginx-light apache2 curl python3 libpython3-dev python3-flask \
python3-django python3-prometheus-client python3-venv clang libclang-rt-14-dev tmux util-linux \
systemd man-db groff-base mandoc \
debhelper dpkg-dev fakeroot lintian mmdebstrap"

case "${1:-}" in
"") ;;
--bench) PKGS="uwsgi-core uwsgi-plugin-python3 gnuplot-nox wrk nginx-light" ;;
*) echo "usage: install-deps.sh [--bench]" >&2; exit 2 ;;
esac

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
# demo and tests run their own instances, so keep the services from starting.
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
