#!/bin/bash
# man.sh -- the man pages: corral(8) and corral.conf(5) are written from the
# option table at build time, corralctl(8) and corral_handler(3) by hand.
# Each must be clean for mandoc's linter and groff, name every option, key,
# command or function it documents, and be installed by `make install`.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-120}
. "$(dirname "$0")/lib.sh"

CORRALCTL=$top_builddir/corralctl
need_build "$CORRAL" "$CORRALCTL"
GEN_MAN=$top_builddir/contrib/man
SRC_MAN=$top_srcdir/contrib/man
PAGES=("$GEN_MAN/corral.8" "$GEN_MAN/corral.conf.5" "$SRC_MAN/corralctl.8" "$SRC_MAN/corral_handler.3")

# render PAGE: the page as text, 80 columns, no hyphenation in the way.
render() { LC_ALL=C.UTF-8 MANWIDTH=200 man -E UTF-8 --nh --nj -l "$1" 2>/dev/null; }

for page in "${PAGES[@]}"; do
    name=$(basename "$page")
    if [ ! -f "$page" ]; then
        fail "$name is built" "no $page"
        continue
    fi
    check "$name: mandoc -T lint finds nothing" \
        sh -c 'out=$(mandoc -T lint -W warning "$1" 2>&1); [ -z "$out" ] || { echo "$out"; exit 1; }' _ "$page"
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    expect_eq "$name: groff (man --warnings) has no warning" "" "$out"
done

# corral(8): every flag of --help; corral.conf(5): every key (the flag with
# '_' for '-'), except the four flags that are not keys.
help=$("$CORRAL" --help)
flags=$(printf '%s\n' "$help" | grep -oE '^ +(-[a-z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+' | sort -u)
n=$(printf '%s\n' "$flags" | wc -l)
page8=$(render "$GEN_MAN/corral.8")
page5=$(render "$GEN_MAN/corral.conf.5")
missing8="" missing5=""
for f in $flags; do
    printf '%s\n' "$page8" | grep -qE -- "(^|[ ,])$f( |$)" || missing8="$missing8 $f"
    case $f in --config|--test-config|--help|--version) continue ;; esac
    key=${f#--}
    key=${key//-/_}
    printf '%s\n' "$page5" | grep -qE "^ +$key( = |$)" || missing5="$missing5 $key"
done
expect_eq "corral(8) documents all $n flags of corral --help" "" "$missing8"
expect_eq "corral.conf(5) documents the key of every flag but -c, -t, --help, --version" "" "$missing5"
expect_match "corral(8) gives each option's default (--max-conns: 1024)" \
    'Open connections per worker process[^.]*\. Default: 1024\.' "$(printf '%s\n' "$page8" | tr -s ' \n' ' ')"
expect_match "corral.conf(5) says which keys a reload cannot change (listen)" \
    'listen = PROTO:ADDR .{0,300}Read at start only' "$(printf '%s\n' "$page5" | tr -s ' \n' ' ')"
for section in SIGNALS "EXIT STATUS" FILES ENVIRONMENT; do
    expect_match "corral(8) has $section" "^$section" "$page8"
done

# corralctl(8): every command and option of corralctl --help.
ctl_help=$("$CORRALCTL" --help)
pagectl=$(render "$SRC_MAN/corralctl.8")
commands=$(printf '%s\n' "$ctl_help" | sed -n '/^Commands:/,/^$/p' | grep -oE '^  [a-z][a-z-]*' | tr -d ' ')
missing=""
for c in $commands; do
    printf '%s\n' "$pagectl" | grep -qE "^ +$c( |$)" || missing="$missing $c"
done
for o in $(printf '%s\n' "$ctl_help" | grep -oE -- '--[a-z]+' | sort -u); do
    printf '%s\n' "$pagectl" | grep -q -- "$o" || missing="$missing $o"
done
expect_eq "corralctl(8) documents every command and option of corralctl --help ($(echo $commands | wc -w) commands)" "" "$missing"
expect_match "corralctl(8) gives the exit statuses" '^EXIT STATUS' "$pagectl"

# corral_handler(3): every function include/corral.h exports.
page3=$(render "$SRC_MAN/corral_handler.3")
funcs=$(grep -oE 'CORRAL_EXPORT [^;]*\b(corral_[a-z_]+)\(' "$top_srcdir/include/corral.h" | grep -oE 'corral_[a-z_]+\($' | tr -d '(')
missing=""
for fn in $funcs CORRAL_MODULE corral_worker_init corral_worker_fini; do
    printf '%s\n' "$page3" | grep -q "$fn(" || missing="$missing $fn"
done
expect_eq "corral_handler(3) documents every function of corral.h ($(echo $funcs | wc -w)) and the hooks" "" "$missing"

# make install puts the four pages in man3, man5 and man8.
if make -C "$top_builddir" install DESTDIR="$T/inst" >"$T/install.out" 2>&1; then
    for p in man8/corral.8 man5/corral.conf.5 man8/corralctl.8 man3/corral_handler.3; do
        installed=$(find "$T/inst" -path "*/share/man/$p" | head -n 1)
        check "make install puts $p in place" test -s "$installed"
    done
else
    fail "make install DESTDIR=... works" "$(tail -n 20 "$T/install.out")"
fi
finish
