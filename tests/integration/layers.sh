#!/bin/bash
# layers.sh -- the house map of src/README.md holds in the built code: calls
# run one way. From the objects' own symbols (nm: what each defines, what it
# uses), no two source files call each other, directly or around a longer
# loop, and no file calls up into a folder above its own (the folders'
# order as src/README.md draws it). A name a file uses but another defines is
# a call or a data reference; both count.
TEST_TIME_LIMIT=${TEST_TIME_LIMIT:-60}
. "$(dirname "$0")/lib.sh"

need_build "$CORRAL"
if ! command -v nm >/dev/null; then
    fail "nm (binutils) is installed" "contrib/install-deps.sh installs build-essential"
    finish
fi

# The objects of corral, corralctl and libcorral (not the tests', the fuzzers'
# or contrib's), relative to the build tree.
mapfile -t objs < <(cd "$top_builddir" && find src protocols -name '*.o' | sort)
if [ "${#objs[@]}" -ge 40 ]; then
    ok "the objects are there (${#objs[@]})"
else
    fail "the objects are there" "found ${#objs[@]} under $top_builddir/src and protocols"
fi

for o in "${objs[@]}"; do
    printf '== %s\n' "$o"
    nm -P "$top_builddir/$o"
done >"$T/symbols"

python3 - "$T/symbols" >"$T/report" <<'PY'
import collections
import sys

# The floors of src/README.md's map, top first; a folder calls only folders
# below it (or its own files).
FLOORS = [["src/main"], ["src/pools"], ["src/master"], ["src/worker"],
          ["src/status", "src/apps"], ["src/config", "src/conn"], ["src/ctl", "src/os"],
          ["src/core"], ["protocols"]]
floor_of = {f: len(FLOORS) - i for i, fs in enumerate(FLOORS) for f in fs}


def folder(obj):
    for f in sorted(floor_of, key=len, reverse=True):
        if obj.startswith(f + "/") or obj.startswith(f + "."):
            return f
    return None


defined, used, obj = {}, collections.defaultdict(set), None
for line in open(sys.argv[1]):
    if line.startswith("== "):
        obj = line[3:].strip()
        continue
    parts = line.split()
    if len(parts) >= 2 and parts[1] in "TDBR":
        defined.setdefault(parts[0], set()).add(obj)
    elif len(parts) >= 2 and parts[1] == "U":
        used[obj].add(parts[0])

edges = collections.defaultdict(dict)  # file -> {file: a name it uses there}
for o, names in used.items():
    for n in sorted(names):
        for d in defined.get(n, ()):
            if d != o:
                edges[o].setdefault(d, n)
objs = sorted(set(used) | {o for ds in defined.values() for o in ds})
print("files %d arrows %d" % (len(objs), sum(len(e) for e in edges.values())))

# Loops: the strongly connected components of more than one file (Tarjan).
index, low, stack, on, loops = {}, {}, [], set(), []
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            loops.append(comp)


for v in objs:
    if v not in index:
        visit(v)
for comp in loops:
    ties = ["%s -> %s (%s)" % (a, b, n) for a in comp for b, n in edges[a].items() if b in comp]
    print("loop: " + "; ".join(ties))

for o in objs:
    fo = folder(o)
    for d, n in edges[o].items():
        fd = folder(d)
        if fo is None or fd is None:
            print("unplaced: %s -> %s (%s): a folder src/README.md does not draw" % (o, d, n))
        elif fo != fd and floor_of[fd] >= floor_of[fo]:
            print("up: %s (%s) -> %s (%s) uses %s" % (o, fo, d, fd, n))
PY
summary=$(head -1 "$T/report")
say "$summary"
expect_eq "no two source files call each other, directly or around a loop" "" \
    "$(grep '^loop:' "$T/report")"
expect_eq "no call runs up into a folder above (or beside) the caller's" "" \
    "$(grep -E '^(up|unplaced):' "$T/report")"
finish
