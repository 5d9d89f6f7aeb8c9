#!/usr/bin/env python3
"""apicalls — the Kubernetes API rights each kvnet role needs, read from the C code.

    python3 test/dist/apicalls.py          # print them, one "role group resource verb" a line

A role is its cmd/ROLE.c (and cmd/ROLE_*.c) plus every .c whose header it reaches through
#include (agent/, cni/, ipam/ ...; kube/ is the client library and is where the calls end,
not where they start).
In those files every call of

    kube_get / kube_list / kube_create / kube_update / kube_patch / kube_delete
    kube_watch_open / kube_informer_new (= list + watch)

has its resource argument resolved to the kube_res_* objects it can be: written there
(&kube_res_pods), a table (kind_res[kind] -> every kube_res_* in the table), a variable
(followed to its initialiser), or a parameter (followed to every caller's argument).
Anything the resolver cannot follow is an error: a new call shape must be taught here, so
the manifests can never silently fall behind the code.

The kubernetes datastore (ipam/ds_kube.c) writes whatever record an IPAM update changed,
through one table of all four kinds; which kinds a role can change follows from the state
mutators (ipam/ipam.h) that its own code calls (MUTATORS below). The model is guarded: a
function of ipam/ taking a writable state that is not in the table, or a record dropped
from a state by a function whose table entry lacks the delete, fails the check until the
table is updated.
"""
import glob
import os
import re
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

ROLES = {'agent': 'cmd/agent.c', 'cni': 'cmd/cni.c', 'ipamctl': 'cmd/ipamctl.c'}
# call -> (index of the resource argument, verbs, index of the subresource argument or None)
CALLS = {
    'kube_get': (1, ('get',), None),
    'kube_list': (1, ('list',), None),
    'kube_create': (1, ('create',), None),
    'kube_update': (1, ('update',), 4),
    'kube_patch': (1, ('patch',), 4),
    'kube_delete': (1, ('delete',), None),
    'kube_watch_open': (1, ('watch',), None),
    'kube_informer_new': (2, ('list', 'watch'), None),
}
WRITE_VERBS = {'create', 'update', 'patch', 'delete'}
DATASTORE = 'ipam/ds_kube.c'
# What each state mutator of ipam/ipam.h can make an update's commit write
# (ipam_state_diff: a new record = create, a changed one = update, a dropped one = delete).
# Which functions drop records is checked below (model_guard).
_BH = {'ipamblocks': {'create', 'update'}, 'ipamhandles': {'create', 'update', 'delete'}}
MUTATORS = {
    'ipam_pool_add': {'ippools': {'create'}},
    'ipam_alloc': {'ipamblocks': {'create', 'update'}, 'ipamhandles': {'create', 'update'}},
    'ipam_alloc_net': {'ipamblocks': {'create', 'update'},
                       'ipamhandles': {'create', 'update'}},
    'ipam_reserve_ip': {'ipamblocks': {'create', 'update'},
                        'ipamhandles': {'create', 'update'}},
    'ipam_owner_set': {'ipamblocks': {'update'}},
    'ipam_owner_clear': {'ipamblocks': {'update'}},
    'ipam_owner_put': {'ipamblocks': {'update'}},
    'ipam_release_handle': {'ipamblocks': {'update'}, 'ipamhandles': {'update', 'delete'}},
    'ipam_release_ip': {'ipamblocks': {'update'}, 'ipamhandles': {'update', 'delete'}},
    'ipam_handle_mend': _BH,
    'ipam_pool_ensure': {'ippools': {'create'}},
    'ipam_pool_set_network': {'ippools': {'update'}},
    'ipam_pool_claim': {'ippools': {'update'}},
    'ipam_pool_reserve': {'ippools': {'update'}},
    'ipam_pool_delete': {'ippools': {'delete'}, 'ipamblocks': {'delete'}},
    'ipam_inv_apply': {'ipamblocks': {'create', 'update'}, 'ipamhandles': {'create', 'update'}},
    # takes back raced import rows: ipam_release_ip per row
    'ipam_inv_undo': {'ipamblocks': {'update'}, 'ipamhandles': {'update', 'delete'}},
    # repairs: release (block update, handle update/delete), unlink (handle update/delete),
    # relink (handle create/update), recount (block update)
    'ipam_report_repair': {'ipamblocks': {'update'},
                           'ipamhandles': {'create', 'update', 'delete'}},
    'ipam_handle_link': {'ipamhandles': {'create', 'update'}},
    'ipam_handle_unlink': {'ipamhandles': {'update', 'delete'}},
    'ipam_config_set': {'ipamconfigs': {'create', 'update'}},
    'ipam_config_clear': {'ipamconfigs': {'delete'}},
}
# Functions of ipam/ taking a writable state that change no record (they load or free).
NOT_MUTATORS = {'ipam_state_init', 'ipam_state_free', 'ipam_state_load', 'ipam_ds_read',
                'ipam_ds_kube_load_page', 'ipam_ds_kube_load_obj'}


class Unresolved(Exception):
    pass


def read(path):
    with open(os.path.join(TOP, path), encoding='utf-8', errors='replace') as f:
        return f.read()


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    # string literals are blanked (their commas and parentheses would confuse the call
    # parser), but a plain word is kept: a subresource argument ("status") is one
    return re.sub(r'"(?:\\.|[^"\\])*"',
                  lambda m: m.group(0) if re.fullmatch(r'"[A-Za-z0-9_.-]*"', m.group(0)) else '""',
                  text)


def closure(start):
    """Every .c reached from start through project headers (X.h -> X.c), without kube/.
    A role split over several files in cmd/ (cmd/ipamctl.c, cmd/ipamctl_*.c) is one role."""
    base = start[:-2]
    todo = [start] + sorted(os.path.relpath(f, TOP) for f in
                            glob.glob(os.path.join(TOP, base + '_*.c')))
    seen, out = set(), []
    while todo:
        f = todo.pop()
        if f in seen or not os.path.exists(os.path.join(TOP, f)):
            continue
        seen.add(f)
        if f.endswith('.c'):
            out.append(f)
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', read(f), re.M):
            if inc.startswith('kube/') or not os.path.exists(os.path.join(TOP, inc)):
                continue
            todo.append(inc)
            c = inc[:-2] + '.c'
            if inc.endswith('.h') and os.path.exists(os.path.join(TOP, c)):
                todo.append(c)
    return sorted(out)


class Func:
    def __init__(self, name, sig, body):
        self.name, self.sig, self.body = name, sig, body


def functions(text):
    """Top-level functions of a kernel-style file: '{' and '}' alone at column 0."""
    lines = text.split('\n')
    funcs, outside, i = [], [], 0
    while i < len(lines):
        if lines[i] == '{':
            j = i - 1
            while j >= 0 and lines[j].strip() and not lines[j].rstrip().endswith((';', '}')) \
                    and not lines[j].startswith('#'):
                j -= 1
            sig = ' '.join(lines[j + 1:i])
            k = i + 1
            while k < len(lines) and lines[k] != '}':
                k += 1
            m = re.search(r'(\w+)\s*\(', sig)
            if m:
                funcs.append(Func(m.group(1), sig, '\n'.join(lines[i:k + 1])))
            i = k + 1
            continue
        outside.append(lines[i])
        i += 1
    return funcs, '\n'.join(outside)


def balanced_args(text, start):
    """Arguments of the call whose '(' is at text[start]; returns (args, end)."""
    depth, cur, args, i = 0, [], [], start
    while i < len(text):
        ch = text[i]
        if ch in '([{':
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif ch in ')]}':
            depth -= 1
            if depth == 0:
                args.append(''.join(cur).strip())
                return args, i
        elif ch == ',' and depth == 1:
            args.append(''.join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    raise Unresolved('unbalanced call')


class Role:
    def __init__(self, name):
        self.name = name
        self.files = closure(ROLES[name])
        self.text = {f: strip_comments(read(f)) for f in self.files}
        self.funcs = {}
        self.outside = {}
        for f in self.files:
            self.funcs[f], self.outside[f] = functions(self.text[f])

    def assigned(self, name, scope_text):
        """Initialiser of name in scope_text ('name = ...;' or 'name[..] = {...};')."""
        m = re.search(r'\b' + re.escape(name) + r'\s*(?:\[[^\]]*\])*\s*=\s*(?!=)', scope_text)
        if not m:
            return None
        i, depth = m.end(), 0
        while i < len(scope_text):
            ch = scope_text[i]
            if ch in '({[':
                depth += 1
            elif ch in ')}]':
                depth -= 1
            elif ch == ';' and depth == 0:
                break
            i += 1
        return scope_text[m.end():i]

    def resolve(self, expr, f, fn, depth=0):
        if depth > 8:
            raise Unresolved(f'{f}: {fn.name}: "{expr}" is too deep to follow')
        names = set(re.findall(r'\bkube_res_(\w+)', expr))
        if names:
            return names
        m = re.match(r'[\s&*(]*(\w+)', expr)
        if not m:
            raise Unresolved(f'{f}: {fn.name}: cannot read resource argument "{expr}"')
        base = m.group(1)
        rhs = self.assigned(base, fn.body)
        if rhs is None:
            rhs = self.assigned(base, self.outside[f])
        if rhs is not None:
            return self.resolve(rhs, f, fn, depth + 1)
        params = fn.sig[fn.sig.index('(') + 1:fn.sig.rindex(')')].split(',')
        idx = [i for i, p in enumerate(params) if re.search(r'\b' + re.escape(base) + r'\s*$',
                                                             p.strip())]
        if idx:
            out = set()
            callers = 0
            for g in self.files:
                for caller in self.funcs[g]:
                    for cm in re.finditer(r'\b' + re.escape(fn.name) + r'\s*\(', caller.body):
                        args, _ = balanced_args(caller.body, cm.end() - 1)
                        out |= self.resolve(args[idx[0]], g, caller, depth + 1)
                        callers += 1
            if not callers:
                raise Unresolved(f'{f}: {fn.name}: parameter {base} has no caller in the role')
            return out
        raise Unresolved(f'{f}: {fn.name}: cannot follow "{expr}" to a kube_res_*')

    def calls(self):
        """[(file, function, call, resource names, verbs, subresource)]"""
        out = []
        for f in self.files:
            for fn in self.funcs[f]:
                for m in re.finditer(r'\b(' + '|'.join(CALLS) + r')\s*\(', fn.body):
                    call = m.group(1)
                    ri, verbs, si = CALLS[call]
                    args, _ = balanced_args(fn.body, m.end() - 1)
                    res = self.resolve(args[ri], f, fn)
                    sub = None
                    if si is not None and args[si] not in ('NULL', '0'):
                        sub = re.fullmatch(r'"([A-Za-z0-9_.-]+)"', args[si])
                        if not sub:
                            raise Unresolved(f'{f}: {fn.name}: {call}: subresource '
                                             f'{args[si]} is not a literal word')
                    out.append((f, fn.name, call, res, verbs, sub))
        return out

    def mutators(self):
        """IPAM state mutators called in the role's own code (not in ipam/)."""
        found = set()
        for f in self.files:
            if f.startswith('ipam/'):
                continue
            found |= set(re.findall(r'\b(ipam_\w+)\s*\(', self.text[f])) & set(MUTATORS)
        return found


def kube_resources():
    """kube_res_NAME -> (group, plural) from kube/client.c."""
    text = read('kube/client.c')
    out = {}
    for m in re.finditer(r'const struct kube_res kube_res_(\w+)\s*=\s*\{\s*"([^"]*)"\s*,\s*'
                         r'"[^"]*"\s*,\s*"([^"]*)"', text, re.S):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


KIND_OF_ARRAY = {'n_blocks': 'ipamblocks', 'n_pools': 'ippools', 'n_handles': 'ipamhandles'}


def model_guard():
    """Problems with the MUTATORS model against ipam/*.h and ipam/*.c: every function of
    ipam/ taking a writable state is in the table (or NOT_MUTATORS), and every function
    that drops a block, pool or handle from a state is reached only from mutators that
    list the delete."""
    problems = []
    public = set()
    for h in sorted(glob.glob(os.path.join(TOP, 'ipam', '*.h'))):
        hdr = strip_comments(read(os.path.relpath(h, TOP)))
        for m in re.finditer(r'\b(ipam_\w+)\s*\(([^;]*)\)\s*;', hdr):
            name, params = m.group(1), m.group(2)
            public.add(name)
            if re.search(r'(?<!const )struct ipam_state \*', params) and \
                    name not in MUTATORS and name not in NOT_MUTATORS:
                problems.append(f'{os.path.relpath(h, TOP)}: {name} takes a writable state and '
                                f'is not in test/dist/apicalls.py MUTATORS')
    for name in MUTATORS:
        if name not in public:
            problems.append(f'MUTATORS names {name}, which no ipam/*.h declares any more')
    for c in sorted(glob.glob(os.path.join(TOP, 'ipam', '*.c'))):
        rel = os.path.relpath(c, TOP)
        funcs, _ = functions(strip_comments(read(rel)))
        for fn in funcs:
            for arr, kind in KIND_OF_ARRAY.items():
                if not re.search(r'--\s*st->' + arr + r'\b|st->' + arr + r'\s*(--|-=)', fn.body):
                    continue
                # the public functions of this file that reach fn (fn itself, or callers)
                roots, todo, seen = set(), [fn.name], set()
                while todo:
                    n = todo.pop()
                    if n in seen:
                        continue
                    seen.add(n)
                    if n in public:
                        roots.add(n)
                        continue
                    todo += [g.name for g in funcs
                             if re.search(r'\b' + re.escape(n) + r'\s*\(', g.body)]
                for r in sorted(roots) or [fn.name + ' (no public caller)']:
                    if 'delete' not in MUTATORS.get(r, {}).get(kind, set()):
                        problems.append(f'{rel}: {r} drops {kind} from the state; '
                                        f'MUTATORS[{r!r}] must list delete on {kind}')
    return problems


def rights(role_name):
    """Set of (group, resource, verb) the role needs; raises Unresolved."""
    res = kube_resources()
    role = Role(role_name)
    allowed_writes = {}
    for mu in role.mutators():
        for r, verbs in MUTATORS[mu].items():
            allowed_writes.setdefault(r, set()).update(verbs)
    out = set()
    for f, fn, call, names, verbs, sub in role.calls():
        for n in names:
            if n not in res:
                raise Unresolved(f'{f}: {fn}: kube_res_{n} is not defined in kube/client.c')
            group, plural = res[n]
            for v in verbs:
                if f == DATASTORE and v in WRITE_VERBS and group == 'kvnet.io' and \
                        v not in allowed_writes.get(plural, set()):
                    continue  # the datastore writes only what the role's updates change
                out.add((group, plural + ('/' + sub.group(1) if sub else ''), v))
    return out


def main():
    for p in model_guard():
        print('model: ' + p)
    for r in ROLES:
        for g, res, v in sorted(rights(r)):
            print(f'{r} {g or "core"} {res} {v}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
