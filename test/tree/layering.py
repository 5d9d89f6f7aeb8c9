#!/usr/bin/env python3
"""layering — the shape of the tree, checked: the include graph has no cycle and no arrow
upward, every header compiles on its own, and no role file in cmd/ grows past its budget.

Layers (an include may point to its own module or to a lower layer; never up):

    5  main.c                 role table
    4  cmd/                   one file per role: options, process state, exit status
    3  cni/ agent/            the CNI operations and data-plane modes; the node agent
                              (cni/ may call agent/client.h and agent/proto.h: the socket
                              protocol the plugin speaks to the agent)
    2  ipam/ inst/            allocator and datastores; the node install plan
    1  net/ kube/ conf/       netlink, Kubernetes client, configuration
    0  lib/                   err, log, cursor, evloop, json, ip, file

Prints TAP lines; exits 1 on any failure.
"""
import os
import re
import subprocess
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
LAYER = {'lib': 0, 'net': 1, 'kube': 1, 'conf': 1, 'ipam': 2, 'inst': 2, 'flows': 2, 'policy': 2, 'l2': 2, 'cni': 3, 'agent': 3,
         'cmd': 4, '.': 5}
# Sideways arrows between modules of one layer that are part of the design.
SIDEWAYS = {('cni', 'agent/client.h'), ('cni', 'agent/proto.h')}
CMD_BUDGET = 650  # lines per file in cmd/ ("no file over ~600 lines")
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

failed = 0


def tap(ok, name, why=''):
    global failed
    if not ok:
        failed += 1
    print(('ok - ' if ok else 'not ok - ') + name + (': ' + why if why and not ok else ''))


def sources():
    out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard',
                          '*.c', '*.h'], cwd=TOP, capture_output=True, text=True,
                         check=True).stdout.split()
    return sorted(f for f in out if not f.startswith(('test/', 'build/'))
                  and os.path.exists(os.path.join(TOP, f)))


def module(path):
    d = path.split('/')[0] if '/' in path else '.'
    return d


def main():
    files = sources()
    graph = {}
    upward = []
    unknown = []
    for f in files:
        with open(os.path.join(TOP, f), encoding='utf-8', errors='replace') as fh:
            incs = INC.findall(fh.read())
        graph[f] = [i for i in incs if os.path.exists(os.path.join(TOP, i))]
        m = module(f)
        if m not in LAYER and not f.startswith('lib/compat/'):
            unknown.append(f)
            continue
        for i in graph[f]:
            t = module(i)
            if m not in LAYER or t not in LAYER:
                continue
            if t == m or LAYER[t] < LAYER[m] or (m, i) in SIDEWAYS:
                continue
            upward.append(f'{f} -> {i} ({m} layer {LAYER[m]} -> {t} layer {LAYER[t]})')
    tap(not unknown, f'every source file is in a known module ({len(files)} files)',
        '; '.join(unknown))
    tap(not upward, 'no include points upward or sideways outside the design',
        '; '.join(upward[:10]))

    # file-level cycles (DFS with colours)
    colour = {}
    cycle = []

    def visit(n, stack):
        colour[n] = 1
        stack.append(n)
        for c in graph.get(n, []):
            if colour.get(c) == 1 and not cycle:
                cycle.extend(stack[stack.index(c):] + [c])
            elif c not in colour:
                visit(c, stack)
        stack.pop()
        colour[n] = 2

    for n in sorted(graph):
        if n not in colour:
            visit(n, [])
    tap(not cycle, 'the include graph has no cycle', ' -> '.join(cycle))

    # module-level cycles
    medges = {}
    for f, incs in graph.items():
        for i in incs:
            a, b = module(f), module(i)
            if a != b:
                medges.setdefault(a, set()).add(b)
    mcyc = []
    for a in medges:
        for b in medges[a]:
            if a in medges.get(b, set()):
                mcyc.append(f'{a} <-> {b}')
    tap(not mcyc, 'no two modules include each other', '; '.join(sorted(set(mcyc))))

    # every header compiles on its own
    bad = []
    for h in (f for f in files if f.endswith('.h')):
        r = subprocess.run(['gcc', '-std=c11', '-D_GNU_SOURCE', '-I.', '-Wall', '-Werror',
                            '-fsyntax-only', '-x', 'c', '-'], cwd=TOP,
                           input=f'#include "{h}"\n', capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(f'{h}: {r.stderr.strip().splitlines()[0] if r.stderr else "failed"}')
    tap(not bad, 'every header compiles on its own', '; '.join(bad[:5]))

    over = []
    for f in files:
        if f.startswith('cmd/') and f.endswith('.c'):
            with open(os.path.join(TOP, f), encoding='utf-8', errors='replace') as fh:
                n = sum(1 for _ in fh)
            if n > CMD_BUDGET:
                over.append(f'{f} {n} lines')
    tap(not over, f'no file in cmd/ over {CMD_BUDGET} lines (cmd/ parses options and dispatches)',
        '; '.join(over))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
