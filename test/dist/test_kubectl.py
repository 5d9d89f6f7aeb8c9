#!/usr/bin/env python3
"""test_kubectl — every manifest in dist/ through a real kubectl, against the test API
server (test/kubeapi/server.py), plus schema checks.

  - `kubectl apply -f` of the CRDs, then of every other manifest: each object created;
    a second apply: each one unchanged (kubectl's three-way patch finds nothing to do);
  - `kubectl get KIND NAME -o json` of each: the server kept every field the manifest set;
  - `kubectl explain` of the kvnet.io resources (the CRDs' schemas, served as OpenAPI v3);
  - kvnet writes IPAM records (`kvnet ipamctl` through the kubernetes datastore) and
    `kubectl get ippools,ipamblocks,ipamhandles,ipamconfigs -o json` lists them;
  - the CRDs' openAPIV3Schema accepts the examples and what kvnet wrote, and rejects
    invalid objects (python jsonschema over the schema in dist/crds/);
  - the built-in objects (ServiceAccount, ClusterRoles, bindings, ConfigMap, DaemonSet,
    CRDs) validate against the upstream Kubernetes schemas (npm kubernetes-models, pinned
    by test/dist/package-lock.json, installed once with `npm ci` into build/npm-dist/).

kubectl apply runs with --validate=false: kubectl's own validation wants /openapi/v2 (or
v3 documents of the built-in types too), which the test server does not serve; the schema
checks above stand in for it. Multus's
NetworkAttachmentDefinition CRD is created first, as on a cluster with Multus.
"""
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(TOP, 'test', 'kubeapi'))
import yaml  # noqa: E402

KVNET = os.path.join(TOP, 'dist', 'kvnet')
NPM_DIR = os.path.join(TOP, 'build', 'npm-dist')
failed = 0

NAD_CRD = {
    'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
    'metadata': {'name': 'network-attachment-definitions.k8s.cni.cncf.io'},
    'spec': {'group': 'k8s.cni.cncf.io', 'scope': 'Namespaced',
             'names': {'plural': 'network-attachment-definitions',
                       'singular': 'network-attachment-definition',
                       'kind': 'NetworkAttachmentDefinition', 'shortNames': ['net-attach-def']},
             'versions': [{'name': 'v1', 'served': True, 'storage': True,
                           'schema': {'openAPIV3Schema': {
                               'type': 'object', 'properties': {'spec': {
                                   'type': 'object',
                                   'properties': {'config': {'type': 'string'}}}}}}}]}}


def tap(ok, name, why=''):
    global failed
    if not ok:
        failed += 1
    print(('ok - ' if ok else 'not ok - ') + name)
    if not ok and why:
        for line in str(why).splitlines()[:25]:
            print('# ' + line)
    return ok


def skip(name, why):
    print(f'ok - {name} # SKIP {why}')


def docs(pattern):
    out = []
    for f in sorted(glob.glob(os.path.join(TOP, pattern), recursive=True)):
        with open(f) as fh:
            out += [(os.path.relpath(f, TOP), d) for d in yaml.safe_load_all(fh) if d]
    return out


def subset(want, have, path=''):
    """Where want is not contained in have (dicts by key, lists element-wise)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [f'{path}: not an object']
        out = []
        for k, v in want.items():
            if k not in have:
                out.append(f'{path}.{k}: missing')
            else:
                out += subset(v, have[k], f'{path}.{k}')
        return out
    if isinstance(want, list):
        if not isinstance(have, list) or len(have) != len(want):
            return [f'{path}: list differs']
        out = []
        for i, (a, b) in enumerate(zip(want, have)):
            out += subset(a, b, f'{path}[{i}]')
        return out
    return [] if want == have else [f'{path}: {want!r} != {have!r}']


def crd_schemas():
    """(group, kind) -> openAPIV3Schema of the served version, from dist/crds/."""
    out = {}
    for _, d in docs('dist/crds/*.yaml'):
        for v in d['spec']['versions']:
            if v.get('served'):
                out[(d['spec']['group'], d['spec']['names']['kind'])] = \
                    v['schema']['openAPIV3Schema']
    return out


def check_schemas(objs):
    try:
        import jsonschema
    except ImportError:
        skip('CRD schemas', 'python jsonschema is not installed')
        return
    schemas = crd_schemas()

    def prune_nulls(x, s):
        # what kube-apiserver does before validating a custom resource
        # (PruneNonNullableNullsWithoutDefaults): a null where the schema allows none and
        # has no default is dropped, not rejected
        if isinstance(x, dict) and isinstance(s, dict):
            props = s.get('properties') or {}
            for key in list(x):
                sub = props.get(key, s.get('additionalProperties')
                                if isinstance(s.get('additionalProperties'), dict) else None)
                if x[key] is None and sub is not None and not sub.get('nullable') and \
                        'default' not in sub:
                    del x[key]
                elif sub is not None:
                    prune_nulls(x[key], sub)
        elif isinstance(x, list) and isinstance(s, dict) and isinstance(s.get('items'), dict):
            for v in x:
                prune_nulls(v, s['items'])

    def draft7(s):
        # OpenAPI v3.0's `nullable: true` is JSON Schema's type [T, "null"]
        if isinstance(s, list):
            return [draft7(v) for v in s]
        if not isinstance(s, dict):
            return s
        out = {k: draft7(v) for k, v in s.items() if not k.startswith('x-kubernetes-')}
        if out.pop('nullable', False) and isinstance(out.get('type'), str):
            out['type'] = [out['type'], 'null']
        return out

    def errors(o):
        s = schemas.get((o['apiVersion'].split('/')[0], o['kind']))
        if s is None:
            return ['no CRD in dist/crds/ for ' + o['kind']]
        o = copy.deepcopy(o)
        prune_nulls(o, s)
        v = jsonschema.Draft7Validator(draft7(s))
        return [f'{"/".join(map(str, e.path))}: {e.message}' for e in v.iter_errors(o)]

    for where, o in objs:
        errs = errors(o)
        tap(not errs, f'CRD schema accepts {o["kind"]} {o["metadata"]["name"]} ({where})',
            '\n'.join(errs))
    cfg = next((o for _, o in objs if o['kind'] == 'IPAMConfig'), None)
    pool = next((o for _, o in objs if o['kind'] == 'IPPool'), None)
    if cfg:
        bad = copy.deepcopy(cfg)
        bad['spec']['kubeVirtVMAddressPersistence'] = 'Maybe'
        tap(errors(bad), 'CRD schema rejects IPAMConfig kubeVirtVMAddressPersistence: Maybe')
    l2 = next((o for _, o in objs if o['kind'] == 'L2Network'), None)
    if l2:
        bad = copy.deepcopy(l2)
        bad['spec']['vlan'] = 4095
        tap(errors(bad), 'CRD schema rejects an L2Network on VLAN 4095')
        bad = copy.deepcopy(l2)
        del bad['spec']['trunk']
        tap(errors(bad), 'CRD schema rejects an L2Network without spec.trunk')
    if pool:
        bad = copy.deepcopy(pool)
        del bad['spec']['cidr']
        tap(errors(bad), 'CRD schema rejects an IPPool without spec.cidr')
        bad = copy.deepcopy(pool)
        bad['spec']['blockSize'] = 129
        tap(errors(bad), 'CRD schema rejects an IPPool with blockSize 129')


def check_upstream(objs):
    node, npm = shutil.which('node'), shutil.which('npm')
    if not node or not npm:
        skip('upstream Kubernetes schemas', 'node/npm are not installed')
        return
    if not os.path.isdir(os.path.join(NPM_DIR, 'node_modules', 'kubernetes-models')):
        os.makedirs(NPM_DIR, exist_ok=True)
        for f in ('package.json', 'package-lock.json'):
            shutil.copy(os.path.join(TOP, 'test', 'dist', f), NPM_DIR)
        r = subprocess.run([npm, 'ci', '--prefix', NPM_DIR, '--no-audit', '--no-fund',
                            '--loglevel=error'], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            skip('upstream Kubernetes schemas', 'npm ci of test/dist/package-lock.json failed: '
                 + (r.stderr.strip().splitlines() or ['?'])[-1])
            return
    shutil.copy(os.path.join(TOP, 'test', 'dist', 'validate-k8s.mjs'), NPM_DIR)
    r = subprocess.run([node, os.path.join(NPM_DIR, 'validate-k8s.mjs')], input=json.dumps(objs),
                       capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(('ok ', 'not ok '))]
    for ln in lines:
        print(ln)
        if ln.startswith('not ok '):
            global failed
            failed += 1
    tap(lines and (r.returncode == 0) == (not any(ln.startswith('not ok') for ln in lines)),
        'validate-k8s.mjs ran over every object', r.stderr[-1500:])


def main():
    kubectl = shutil.which('kubectl')
    if not kubectl:
        skip('kubectl apply of dist/', 'kubectl is not installed')
        return 0
    if not os.access(KVNET, os.X_OK):
        print('not ok - dist/kvnet is built (make)')
        return 1
    from client import KubeAPI
    tmp = tempfile.mkdtemp(prefix='kvnet-kubectl-')
    try:
        with KubeAPI(listen='127.0.0.1:0') as api:
            kc = api.write_kubeconfig(os.path.join(tmp, 'kubeconfig'))
            env = {k: v for k, v in os.environ.items() if not k.startswith('KVNET_')}
            env.update(KUBECONFIG=kc, HOME=tmp)

            def k(*args, stdin=None):
                if args[0] == 'apply':
                    args = ('apply', '--validate=false') + args[1:]
                return subprocess.run([kubectl] + list(args), input=stdin,
                                      capture_output=True, text=True, env=env, timeout=120)

            r = k('apply', '-f', '-', stdin=json.dumps(NAD_CRD))
            tap(r.returncode == 0, 'kubectl apply: the Multus NAD CRD (as on a Multus cluster)',
                r.stdout + r.stderr)
            crds = docs('dist/crds/*.yaml')
            rest = [d for d in docs('dist/**/*.yaml') if not d[0].startswith('dist/crds/')]
            for group, files in (('CRDs', ['dist/crds/']),
                                 ('manifests and examples', sorted({f for f, _ in rest}))):
                objs = crds if group == 'CRDs' else rest
                args = sum((['-f', os.path.join(TOP, f)] for f in files), [])
                r = k('apply', *args)
                created = [ln for ln in r.stdout.splitlines() if ln.endswith(' created')]
                tap(r.returncode == 0 and len(created) == len(objs),
                    f'kubectl apply -f {" ".join(files)}: {len(objs)} objects created',
                    r.stdout + r.stderr)
            for what, want in (('ippools', ['KIND:       IPPool', 'spec',
                                            'allocates pod and VM']),
                               ('ipamblocks.spec', ['cidr', 'affinity']),
                               ('ipamconfigs.spec.kubeVirtVMAddressPersistence',
                                ['Enabled', 'Disabled'])):
                r = k('explain', what)
                tap(r.returncode == 0 and all(w in r.stdout for w in want),
                    f'kubectl explain {what} (the CRD schema through OpenAPI v3)',
                    r.stdout + r.stderr)
            everything = crds + rest
            args = sum((['-f', os.path.join(TOP, f)] for f in sorted({f for f, _ in everything})),
                       [])
            r = k('apply', *args)
            lines = r.stdout.splitlines()
            tap(r.returncode == 0 and len(lines) == len(everything) and
                all(ln.endswith(' unchanged') for ln in lines),
                'kubectl apply again: every object unchanged', r.stdout + r.stderr)
            for f, d in everything:
                ns = d['metadata'].get('namespace')
                plural = {'CustomResourceDefinition': 'crd',
                          'NetworkAttachmentDefinition': 'network-attachment-definitions'}.get(
                    d['kind'], d['kind'].lower())
                group = d['apiVersion'].split('/')[0] if '/' in d['apiVersion'] else ''
                what = f'{plural}.{group}' if group and plural != 'crd' else plural
                r = k('get', what, d['metadata']['name'], '-o', 'json', *(['-n', ns] if ns else []))
                try:
                    got = json.loads(r.stdout)
                    diff = subset(d, got)
                except ValueError:
                    diff = [r.stdout + r.stderr]
                tap(r.returncode == 0 and not diff,
                    f'kubectl get {what} {d["metadata"]["name"]}: every field of {f} kept',
                    '\n'.join(diff[:10]))

            # kvnet writes IPAM records; kubectl reads them
            kv = [KVNET, 'ipamctl', '--datastore', 'kubernetes', '--kubeconfig', kc]
            r1 = subprocess.run(kv + ['pool', 'add', '198.18.0.0/24'], capture_output=True,
                                text=True, env=env)
            r2 = subprocess.run(kv + ['reserve', '--vm', 'default/vm-a', '--ip', '198.18.0.10'],
                                capture_output=True, text=True, env=env)
            tap(r1.returncode == 0 and r2.returncode == 0,
                'kvnet ipamctl (kubernetes datastore) adds a pool and reserves a VM address',
                r1.stdout + r1.stderr + r2.stdout + r2.stderr)
            r = k('get', 'ippools,ipamblocks,ipamhandles,ipamconfigs', '-o', 'json')
            try:
                items = json.loads(r.stdout)['items']
            except (ValueError, KeyError):
                items = []
            kinds = sorted({i['kind'] for i in items})
            tap(r.returncode == 0 and kinds == ['IPAMBlock', 'IPAMConfig', 'IPAMHandle', 'IPPool'],
                'kubectl get ippools,ipamblocks,ipamhandles,ipamconfigs -o json lists them',
                r.stdout[-1500:] + r.stderr)
            handle = [i for i in items if i['kind'] == 'IPAMHandle']
            tap(handle and handle[0]['metadata']['name'] == 'kvnet.vmi.default.vm-a',
                'the VM\'s handle is kvnet.vmi.default.vm-a', [i['metadata']['name'] for i in handle])
            check_schemas([('as stored', i) for i in items] +
                          [(f, d) for f, d in rest if d['apiVersion'].startswith('kvnet.io/')])
        check_upstream([d for _, d in everything])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
