#!/bin/sh
# build.sh -- build corral's Debian packages (corral, corral-dev) from this
# source tree, on Debian 12.
#
#   contrib/deb/build.sh OUTDIR [TARBALL]
#
# TARBALL is a `make dist` tarball (corral-VERSION.tar.gz); without it the
# script runs autogen.sh, configures the tree in a temporary directory and
# runs make dist there. The tarball is unpacked in a temporary directory,
# contrib/debian/ is copied to debian/ there (debian/changelog written from
# changelog.in with the version of configure.ac's AC_INIT) and
# `dpkg-buildpackage -us -uc -b` builds the packages. OUTDIR receives the
# .deb files, the .changes and .buildinfo, and make-install.files: the files
# `make install DESTDIR=debian/tmp` wrote (dh_auto_install), one path a line,
# which tests/integration/package.sh compares with the packages.
# Build-Depends: contrib/debian/control (contrib/install-deps.sh installs them).
set -eu
# A make above (make check running tests/integration/package.sh) passes its
# command-line variables down in MAKEFLAGS (TEST_LOGS: its whole test list);
# the package's own make must not inherit them.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: build.sh OUTDIR [TARBALL]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tarball=${2:-}
[ -z "$tarball" ] || tarball=$(cd "$(dirname "$tarball")" && pwd)/${tarball##*/}

work=$(mktemp -d "${TMPDIR:-/tmp}/corral-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -z "$tarball" ]; then
    (cd "$src" && ./autogen.sh >"$work/autogen.log" 2>&1) || { cat "$work/autogen.log" >&2; exit 1; }
    mkdir "$work/dist"
    (cd "$work/dist" && "$src/configure" -q && make dist >/dev/null) || exit 1
    tarball=$(ls "$work"/dist/corral-*.tar.gz)
fi

version=$(sed -n 's/^AC_INIT(\[corral\], \[\([^]]*\)\].*/\1/p' "$src/configure.ac")
[ -n "$version" ] || { echo "build.sh: no version in configure.ac's AC_INIT" >&2; exit 1; }
case "$tarball" in
*/corral-"$version".tar.gz) ;;
*) echo "build.sh: $tarball is not corral-$version.tar.gz" >&2; exit 1 ;;
esac

tar -xzf "$tarball" -C "$work"
tree=$work/corral-$version
cp -R "$tree/contrib/debian" "$tree/debian"
date=$(date -R ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH})
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" "$tree/debian/changelog.in" \
    > "$tree/debian/changelog"
rm "$tree/debian/changelog.in"

(cd "$tree" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" \
    dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
    { tail -n 60 "$work/build.log" >&2; echo "build.sh: dpkg-buildpackage failed" >&2; exit 1; }

(cd "$tree/debian/tmp" && find . ! -type d | sed 's|^\.||' | sort) > "$out/make-install.files"
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"
cp "$work/build.log" "$out/build.log"
ls "$out"/*.deb
