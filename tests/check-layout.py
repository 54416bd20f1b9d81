#!/usr/bin/python3
"""Fails on any include or call loop in the C tree (make check-layout).

Nodes are files and folders: a module folder (common/, image/, oci/, ...) and each sub-folder of
server/ (server/pod/, server/rpc/, ...; server/*.h at the top is the node "server").

  - include loops: file A includes B and B, directly or not, includes A.  A .c file and the .h
    of the same name are one unit, so image/store.c including layers.h while layers.c
    includes store.h is a loop; so is a folder including a header of a folder that includes
    one of its own.
  - call loops (with --objects DIR, the object files of a build): a file's object calls a
    function defined in another file's object and that one, directly or not, calls back; and
    the same between folders.  Calls through function pointers (hooks, callbacks) are how a
    lower part reaches a higher one, and are not seen here on purpose.

Each loop is printed with the edges that make it (the includes, or the functions called).
Exit status 1 when there is any."""
import argparse
import collections
import os
import re
import subprocess
import sys

ROOTS = ["common", "image", "cni", "stream", "oci", "conmon", "pause", "server"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """The part a file belongs to: a module folder, a sub-folder of server/, or for a file at
    server/'s top (server.h, the object every part shares) that file alone."""
    parts = path.split("/")
    if parts[0] == "server":
        return "server/" + (parts[1] if len(parts) > 2 else os.path.splitext(parts[1])[0])
    return parts[0]


def unit_of(path):
    """x.c and x.h are one unit; a folder's interface header (named after the folder:
    server/pod/pod.h, image/image.h) is the folder's own node, not x.c's."""
    stem, ext = os.path.splitext(path)
    d, base = os.path.split(stem)
    if ext == ".h" and base == os.path.basename(d):
        return stem + ".h"
    return stem


def sources(top):
    out = []
    for root in ROOTS:
        for d, _, files in os.walk(os.path.join(top, root)):
            for f in files:
                if f.endswith((".c", ".h", ".def")):
                    out.append(os.path.relpath(os.path.join(d, f), top))
    return sorted(out)


def include_edges(top, files):
    known = set(files)
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for f in files:
        with open(os.path.join(top, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            if inc in known:
                edges[f][inc].add("#include \"%s\"" % inc)
    return edges


def call_edges(objdir, top):
    """file (source path without extension) -> file -> functions, from nm of each object whose
    source is in the tree (a stale object of a moved file is left out)."""
    defs, undef = {}, collections.defaultdict(set)
    for d, _, files in os.walk(objdir):
        for f in files:
            if not f.endswith(".o"):
                continue
            path = os.path.join(d, f)
            src = os.path.relpath(path, objdir)[:-2]
            if src.split("/")[0] not in ROOTS or not os.path.exists(os.path.join(top, src + ".c")):
                continue
            out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                p = line.split()
                if len(p) == 3 and p[1] in "TDBRVW":
                    defs[p[2]] = src
                elif len(p) == 2 and p[0] == "U":
                    undef[src].add(p[1])
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for src, syms in undef.items():
        for s in syms:
            dst = defs.get(s)
            if dst and dst != src:
                edges[src][dst].add(s + "()")
    return edges


def lift(edges, key):
    out = collections.defaultdict(lambda: collections.defaultdict(set))
    for a, targets in edges.items():
        for b, why in targets.items():
            ka, kb = key(a), key(b)
            if ka != kb:
                out[ka][kb] |= {"%s -> %s: %s" % (a, b, w) for w in why}
    return out


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    nodes = set(edges) | {b for t in edges.values() for b in t}
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, {})))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    return comps


def report(kind, edges):
    bad = cycles(edges)
    for comp in bad:
        print("%s loop between %s:" % (kind, ", ".join(comp)))
        members = set(comp)
        for a in comp:
            for b in sorted(edges.get(a, {})):
                if b in members:
                    why = sorted(edges[a][b])
                    shown = "; ".join(why[:4]) + (" ..." if len(why) > 4 else "")
                    print("    %s -> %s  (%s)" % (a, b, shown))
    return len(bad)


def self_test():
    """The check finds a unit loop and a folder loop in a scratch tree, and nothing in a tree
    without loops (so that a check that cannot fail does not pass for one that works)."""
    import tempfile

    def tree(files):
        top = tempfile.mkdtemp(prefix="check-layout-")
        for path, text in files.items():
            os.makedirs(os.path.join(top, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(top, path), "w") as fh:
                fh.write(text)
        return top

    def count(top):
        inc = include_edges(top, sources(top))
        return len(cycles(lift(inc, unit_of))), len(cycles(lift(inc, folder_of)))

    clean = {"image/image.h": "", "image/store.c": '#include "image/layers.h"\n',
             "image/layers.h": "", "image/layers.c": '#include "image/image.h"\n',
             "server/pod/pod.h": '#include "server/server.h"\n', "server/server.h": "",
             "server/rpc/rpc.c": '#include "server/pod/pod.h"\n'}
    units = dict(clean, **{"image/store.h": "", "image/layers.c": '#include "image/store.h"\n'})
    folders = dict(clean, **{"server/pod/pod.c": '#include "server/rpc/rpc.h"\n',
                             "server/rpc/rpc.h": ""})
    got = (count(tree(clean)), count(tree(units)), count(tree(folders)))
    want = ((0, 0), (1, 0), (0, 1))
    if got != want:
        print("check-layout self-test: got %s, want %s" % (got, want))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", default=".", help="the tree (default: .)")
    ap.add_argument("--objects", help="object directory of a build (build/obj): check calls too")
    ap.add_argument("--self-test", action="store_true", help="check the checker on scratch trees")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    files = sources(args.top)
    inc = include_edges(args.top, files)
    n = 0
    n += report("include", lift(inc, unit_of))
    n += report("include (folders)", lift(inc, folder_of))
    if args.objects:
        calls = call_edges(args.objects, args.top)
        n += report("call", calls)
        n += report("call (folders)", lift(calls, folder_of))
    if n:
        print("check-layout: %d loop(s); see docs/architecture.md for the layering" % n)
        return 1
    print("check-layout: no include%s loops among %d files" %
          (" or call" if args.objects else "", len(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
