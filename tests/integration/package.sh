#!/bin/bash
# package.sh -- the Debian packages (contrib/debian, contrib/deb/build.sh):
# they build from `make dist`'s tarball, lintian reports no error and no
# warning, `make install` writes exactly the files the packages hold, and in a
# fresh Debian 12 root (mmdebstrap, from this machine's Debian apt sources)
# the packages install without starting or enabling anything or creating a
# user, the installed corral serves a WSGI app behind the root's nginx (both
# run chrooted, over unix sockets), and `apt-get purge` leaves the root as it
# was before the install.
#
# Environment: PACKAGE_DEBS=DIR takes the packages of an earlier
# `contrib/deb/build.sh DIR` instead of building them here. The root (Debian
# 12, variant apt, with nginx-light and the dependencies of the packages) is
# kept as a tarball in $top_builddir/tests/cache/ between runs; remove it to
# measure a cold run.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-1200}
. "$(dirname "$0")/lib.sh"

need mmdebstrap mmdebstrap
need dpkg-buildpackage dpkg-dev
need dh debhelper
need lintian lintian
need curl curl
need fakeroot fakeroot
[ "$(id -u)" = 0 ] || { fail "requirement: root" "chroot and mount need root"; finish; }

version=$(sed -n 's/^AC_INIT(\[corral\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")

# ---------------------------------------------------------------- build

if [ -n "${PACKAGE_DEBS:-}" ]; then
    DEBS=$PACKAGE_DEBS
    say "packages from $DEBS"
else
    DEBS=$T/debs
    say "building the packages (make dist, contrib/deb/build.sh)"
    # make dist in a configure of its own in $T: the build directory keeps no
    # distdir or tarball, and the source tree is not written to.
    mkdir -p "$T/dist"
    # Not the variables of the make running this test (TEST_LOGS...).
    unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
    check "make dist writes corral-$version.tar.gz" timeout 300 sh -c \
        'cd "$1/dist" && "$2/configure" -q >configure.out && make dist-gzip >make.out' _ "$T" "$top_srcdir"
    check "contrib/deb/build.sh builds the packages from the tarball" \
        timeout 900 "$top_srcdir/contrib/deb/build.sh" "$DEBS" "$T/dist/corral-$version.tar.gz"
fi
DEB=$(ls "$DEBS"/corral_"$version"_*.deb 2>/dev/null | head -n 1)
DEB_DEV=$DEBS/corral-dev_${version}_all.deb
CHANGES=$(ls "$DEBS"/corral_"$version"_*.changes 2>/dev/null | head -n 1)
if [ ! -f "$DEB" ] || [ ! -f "$DEB_DEV" ] || [ ! -f "$CHANGES" ]; then
    fail "the packages exist" "in $DEBS: $(ls "$DEBS" 2>&1)"
    finish
fi
ok "corral, corral-dev and the .changes of version $version"

# ---------------------------------------------------------------- lintian

lint=$(lintian --fail-on error,warning "$CHANGES" 2>&1)
lint_rc=$?
expect_no_match "lintian: no error and no warning" '^[EW]: ' "$lint"
expect_eq "lintian exits 0" 0 "$lint_rc"

# ---------------------------------------------------------------- file lists

# What the packages hold (files and links), man pages without dpkg's .gz.
pkg_files() {
    local d
    for d in "$@"; do dpkg -c "$d"; done | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print p }' |
        sed -E 's|^(/usr/share/man/.*)\.gz$|\1|' | sort
}
pkg_files "$DEB" "$DEB_DEV" >"$T/pkg.files"
# Files of the packages that make install does not write: debhelper's
# changelog and copyright, and the lintian overrides.
grep -Ev '^/usr/share/doc/corral(-dev)?/(changelog\.gz|copyright)$|^/usr/share/lintian/overrides/corral$' \
    "$T/pkg.files" >"$T/pkg.cmp"
# make-install.files: dh_auto_install's `make install DESTDIR=debian/tmp`.
expect_eq "make install DESTDIR= writes the files of corral + corral-dev, but for the documented exceptions" \
    "" "$(diff "$DEBS/make-install.files" "$T/pkg.cmp")"
doc=$(sed -n 's|^Documentation=file:||p' <<<"$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./lib/systemd/system/corral.service)")
expect_match "corral.service's Documentation= ($doc) is in the package" "^$doc\$" "$(pkg_files "$DEB")"
for f in /usr/bin/corral /usr/bin/corralctl /etc/corral/corral.conf /etc/logrotate.d/corral \
    /lib/systemd/system/corral.service /lib/systemd/system/corral.socket \
    /lib/systemd/system/corral-activated.service /usr/share/man/man8/corral.8 \
    /usr/share/man/man5/corral.conf.5 /usr/share/man/man8/corralctl.8; do
    expect_match "corral holds $f" "^$f\$" "$(pkg_files "$DEB")"
done
for f in /usr/include/corral.h /usr/share/pkgconfig/corral.pc /usr/share/man/man3/corral_handler.3; do
    expect_match "corral-dev holds $f" "^$f\$" "$(pkg_files "$DEB_DEV")"
done
conffiles=$(dpkg-deb -I "$DEB" conffiles 2>&1)
expect_match "/etc/corral/corral.conf is a conffile" '^/etc/corral/corral\.conf$' "$conffiles"
expect_match "/etc/logrotate.d/corral is a conffile" '^/etc/logrotate\.d/corral$' "$conffiles"
expect_match "corral depends on Debian's libpython3 (the WSGI adapter)" 'libpython3\.[0-9]+' \
    "$(dpkg-deb -f "$DEB" Depends)"
postinst=$(dpkg-deb -I "$DEB" postinst 2>&1)
expect_no_match "the postinst starts no unit" 'deb-systemd-invoke|invoke-rc\.d|systemctl.*start' \
    "$postinst"
expect_no_match "the postinst creates no user" 'adduser|useradd|systemd-sysusers' "$postinst"
unit=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./lib/systemd/system/corral.service)
expect_match "the installed corral.service runs /usr/bin/corral with /etc/corral/corral.conf" \
    '^ExecStart=/usr/bin/corral -c /etc/corral/corral\.conf ' "$unit"

# ---------------------------------------------------------------- the root

CACHE=$top_builddir/tests/cache
ROOT_TAR=$CACHE/bookworm-root.tar
# Debian's apt sources of this machine (deb822 or one-line), not third parties'.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && grep -Eq '^[^#]*(deb\.debian\.org|debian\.org/debian|snapshot\.debian\.org)' "$f" &&
        sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || sources=(http://deb.debian.org/debian)
if [ ! -s "$ROOT_TAR" ]; then
    say "making the Debian 12 root with mmdebstrap from ${sources[*]} (cached in $ROOT_TAR)"
    mkdir -p "$CACHE"
    t0=$(date +%s)
    # With nginx and the dependencies of corral and corral-dev of Debian 12
    # (installed again below from the packages' fields: a no-op while they
    # match), and the package lists: the install below needs no network.
    # policy-rc.d keeps nginx's postinst from starting it (the root shares
    # this machine's network). init-system-helpers (deb-systemd-helper) is
    # what a postinst enables units with.
    check "mmdebstrap makes a Debian 12 root" timeout 900 mmdebstrap --variant=apt \
        --include=nginx-light,init-system-helpers,libconfig9,libpython3.11,python3,pkgconf \
        --skip=cleanup/apt/lists \
        --essential-hook='printf "#!/bin/sh\nexit 101\n" > "$1/usr/sbin/policy-rc.d"; chmod 755 "$1/usr/sbin/policy-rc.d"' \
        --customize-hook='rm -f "$1/usr/sbin/policy-rc.d"' \
        bookworm "$CACHE/partial.tar" "${sources[@]}"
    mv "$CACHE/partial.tar" "$ROOT_TAR" 2>/dev/null
    say "mmdebstrap took $(($(date +%s) - t0)) s"
fi
[ -s "$ROOT_TAR" ] || { fail "the root tarball exists" "$ROOT_TAR"; finish; }

# The root lives beside $T, not in it: lib.sh removes $T before this script's
# EXIT trap has unmounted /proc in the root. The root's /dev is the one
# mmdebstrap wrote (device nodes), not a bind mount of this machine's.
R=$(mktemp -d /tmp/corral-pkgroot.XXXXXX) || { fail "mktemp for the root"; finish; }
chmod 755 "$R"
mounted=no
# Stop what runs in the root (lib.sh's _cleanup), unmount /proc, remove the
# root without crossing into another file system.
undo_root() {
    _cleanup
    if [ "$mounted" = yes ]; then
        umount "$R/proc" 2>/dev/null || umount -l "$R/proc"
        mounted=no
    fi
    if grep -q " $R/" /proc/mounts; then
        echo "package.sh: still mounted under $R: not removed" >&2
    else
        rm -rf --one-file-system "$R"
    fi
}
trap 'undo_root; _on_exit' EXIT
check "the root unpacks" tar -xf "$ROOT_TAR" -C "$R"
mount -t proc proc "$R/proc" && mounted=yes || { fail "mount /proc in the root"; finish; }
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null

inroot() { timeout "${INROOT_TIMEOUT:-300}" chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
# Everything but what apt, dpkg and the logs keep about their own work.
snapshot() {
    (cd "$R" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./tmp -o -path ./srv \
        -o -path ./var/cache -o -path ./var/log -o -path ./var/lib/dpkg -o -path ./var/lib/apt \
        -o -path ./var/lib/nginx \) \
        -prune -o -print | sort)
}

check "nginx is installed in the root" inroot dpkg -s nginx-light
check_not "the root has no policy-rc.d (nothing keeps a service from starting)" \
    test -e "$R/usr/sbin/policy-rc.d"
# corral's dependencies first, so that the root before the install of corral
# and after its purge can be compared file by file.
deps=$( (dpkg-deb -f "$DEB" Depends Recommends; dpkg-deb -f "$DEB_DEV" Depends Recommends) |
    sed 's/^[A-Za-z-]*: //' | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' |
    grep -Ev '^(corral)?$' | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
check "apt-get installs corral's dependencies ($deps)" inroot apt-get install -y $deps
snapshot >"$T/before.list"
cp "$R/etc/passwd" "$T/passwd.before"
cp "$R/etc/group" "$T/group.before"
mkdir -p "$R/srv/debs"
cp "$DEB" "$DEB_DEV" "$R/srv/debs/"
check "apt-get installs corral and corral-dev (dependencies from Debian)" \
    inroot apt-get install -y "/srv/debs/${DEB##*/}" "/srv/debs/${DEB_DEV##*/}"
check "dpkg: corral is installed" inroot dpkg -s corral
expect_eq "no user or group was created" "" \
    "$(diff "$T/passwd.before" "$R/etc/passwd"; diff "$T/group.before" "$R/etc/group")"
in_root_procs() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline")"
    done
}
expect_eq "the install started no process in the root" "" "$(in_root_procs)"
expect_eq "the install enabled no unit" "" \
    "$(find "$R/etc/systemd/system" -name 'corral*' 2>/dev/null)"
check "the installed corral runs: --version" inroot /usr/bin/corral --version
expect_eq "pkg-config reads the installed corral.pc" "$version /usr/include" \
    "$(PKG_CONFIG_PATH=$R/usr/share/pkgconfig pkg-config --modversion --variable=includedir corral 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# ---------------------------------------------------------------- serve

cat >"$R/srv/app.py" <<'PY'
import sys


def application(environ, start_response):
    body = ("corral package %s python %d.%d" % (
        environ.get("PATH_INFO"), sys.version_info[0], sys.version_info[1])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
PY
cat >"$R/srv/nginx.conf" <<'EOF'
user www-data;
worker_processes 1;
pid /srv/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen unix:/srv/nginx.sock;
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:/run/corral/app.sock;
        }
    }
}
EOF
# The example config with the app: its handler line (a .so to write) becomes
# the WSGI file; its listener (uwsgi:unix:/run/corral/app.sock) stays.
sed 's|^handler = .*|wsgi_file = "/srv/app.py";|' "$R/etc/corral/corral.conf" >"$R/srv/corral.conf"
check "the installed corral accepts the example config with a WSGI app: -t" \
    inroot /usr/bin/corral -c /srv/corral.conf -t --uid www-data
# What corral.service's RuntimeDirectory= and LogsDirectory= make.
mkdir -p "$R/run/corral" "$R/var/log/corral"
chown www-data:www-data "$R/run/corral"
# The example config's listener (uwsgi:unix:/run/corral/app.sock) and the app.
chroot "$R" env -i PATH=/usr/bin:/bin /usr/bin/corral -c /srv/corral.conf \
    --uid www-data --gid www-data --chown www-data:www-data \
    --error-log /var/log/corral/error.log --processes 1 --threads 2 >"$T/corral.out" 2>&1 &
corral_pid=$!
_track "$corral_pid"
chroot "$R" /usr/sbin/nginx -c /srv/nginx.conf -g 'daemon off;' >"$T/nginx.out" 2>&1 &
nginx_pid=$!
_track "$nginx_pid"
check "corral in the root listens on /run/corral/app.sock" wait_until 20 test -S "$R/run/corral/app.sock"
check "nginx in the root listens on /srv/nginx.sock" wait_until 20 test -S "$R/srv/nginx.sock"
resp=$(curl -s -m 10 --unix-socket "$R/srv/nginx.sock" -w '\n%{http_code}' http://localhost/pkg/hello)
expect_eq "GET through the root's nginx: 200 and the app's body" \
    "corral package /pkg/hello python 3.11
200" "$resp"
expect_file_match "corral wrote its error log in /var/log/corral" 'corral' "$R/var/log/corral/error.log"
stop_pid "$corral_pid" TERM
expect_eq "corral stops on SIGTERM with status 0" 0 "$?"
[ "$FAILED" -eq 0 ] || { say "corral's output:"; cat "$T/corral.out" "$R/var/log/corral/error.log"; say "nginx's:"; cat "$T/nginx.out"; } 2>/dev/null
_forget_pid "$corral_pid"
stop_pid "$nginx_pid" QUIT
_forget_pid "$nginx_pid"
expect_eq "no process left in the root" "" "$(in_root_procs)"

# ---------------------------------------------------------------- purge

check "apt-get purge corral corral-dev" inroot apt-get purge -y corral corral-dev
check_not "dpkg: corral is gone" inroot dpkg -s corral
check_not "purge removed /var/log/corral" test -e "$R/var/log/corral"
check_not "purge removed /etc/corral" test -e "$R/etc/corral"
rm -rf "$R/run/corral"
snapshot >"$T/after.list"
expect_eq "after the purge the root holds the files it held before the install" "" \
    "$(diff "$T/before.list" "$T/after.list")"

finish
