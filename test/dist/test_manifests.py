#!/usr/bin/env python3
"""test_manifests — dist/ cannot drift from the code.

  - every YAML in dist/ parses (python3-yaml) and names apiVersion, kind, metadata.name;
  - each ClusterRole holds exactly the rights its role's C code needs (test/dist/apicalls.py),
    bindings point at roles and accounts that exist;
  - the DaemonSet: its ConfigMap is dist/cni/kubernetes/ as is; every path the agent uses
    (kvnet.conf as `dist/kvnet config -n` resolves it, defaults included) is a hostPath
    mounted at the same place (BIRD's fragment and socket directories of [bgp] included);
    the unit may write BIRD's two directories; the install step sees /opt/cni/bin, /etc/cni/net.d,
    /etc/kvnet and /var/lib/kvnet under /host; capabilities are NET_ADMIN and NET_RAW only; image tag = VERSION;
  - every conflist is in the network-level shape, answers CNI VERSION, and passes CNI
    STATUS with a throw-away file datastore (the full configuration parse of dist/kvnet);
  - every kvnet.conf in dist/ parses with `dist/kvnet config -n -c FILE`;
  - the systemd unit passes `systemd-analyze verify` and its exposure level is "OK" or better.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apicalls  # noqa: E402
import yaml  # noqa: E402

TOP = apicalls.TOP
KVNET = os.path.join(TOP, 'dist', 'kvnet')
VERSION = open(os.path.join(TOP, 'VERSION')).read().strip()
CONFLIST_TOP = {'cniVersion', 'name', 'plugins'}
PLUGIN_KEYS = {'type', 'kvnet_conf', 'ipv4_pools', 'ipv6_pools', 'mtu', 'capabilities'}
AGENT_CAPS = {'NET_ADMIN', 'NET_RAW', 'BPF'}
failed = 0


def tap(ok, name, why=''):
    global failed
    if not ok:
        failed += 1
    print(('ok - ' if ok else 'not ok - ') + name)
    if not ok and why:
        for line in str(why).splitlines()[:20]:
            print('# ' + line)


def skip(name, why):
    print(f'ok - {name} # SKIP {why}')


def rel(p):
    return os.path.relpath(p, TOP)


def load_yamls():
    docs = {}
    for f in sorted(glob.glob(os.path.join(TOP, 'dist', '**', '*.yaml'), recursive=True)):
        try:
            with open(f) as fh:
                ds = [d for d in yaml.safe_load_all(fh) if d is not None]
            bad = [d for d in ds if not (isinstance(d, dict) and d.get('apiVersion') and
                                         d.get('kind') and
                                         (d.get('metadata') or {}).get('name'))]
            tap(ds and not bad, f'{rel(f)}: parses, every object names apiVersion, kind, name',
                bad)
            docs[rel(f)] = ds
        except yaml.YAMLError as ex:
            tap(False, f'{rel(f)}: parses', ex)
    return docs


def kinds(docs, kind):
    return [(f, d) for f, ds in docs.items() for d in ds if d['kind'] == kind]


def check_rbac(docs):
    problems = apicalls.model_guard()
    tap(not problems, 'the IPAM write model of apicalls.py matches ipam/ipam.h and ipam.c',
        '\n'.join(problems))
    roles = {d['metadata']['name']: d for _, d in kinds(docs, 'ClusterRole')}
    seen = set()
    for name, d in sorted(roles.items()):
        role = (d['metadata'].get('annotations') or {}).get('kvnet.io/role')
        if role not in apicalls.ROLES:
            tap(False, f'ClusterRole {name} names its kvnet role (kvnet.io/role annotation)',
                f'kvnet.io/role = {role!r}, want one of {sorted(apicalls.ROLES)}')
            continue
        seen.add(role)
        have = set()
        for r in d.get('rules', []):
            for g in r.get('apiGroups', []):
                for res in r.get('resources', []):
                    for v in r.get('verbs', []):
                        have.add((g, res, v))
        try:
            want = apicalls.rights(role)
        except apicalls.Unresolved as ex:
            tap(False, f'ClusterRole {name}: the {role} role\'s API calls can be read', ex)
            continue
        extra = sorted(have - want)
        missing = sorted(want - have)
        why = ''.join(f'granted but never used: {g or "core"} {r} {v}\n' for g, r, v in extra)
        why += ''.join(f'used but not granted: {g or "core"} {r} {v}\n' for g, r, v in missing)
        tap(not extra and not missing,
            f'ClusterRole {name}: exactly the {len(want)} rights cmd/{role}.c reaches', why)
    tap(seen == set(apicalls.ROLES), 'a ClusterRole for every role that calls the API',
        f'missing: {sorted(set(apicalls.ROLES) - seen)}')
    accounts = {(d['metadata'].get('namespace'), d['metadata']['name'])
                for _, d in kinds(docs, 'ServiceAccount')}
    for _, b in kinds(docs, 'ClusterRoleBinding'):
        n = b['metadata']['name']
        ok_role = b['roleRef']['kind'] == 'ClusterRole' and b['roleRef']['name'] in roles
        subs = [(s.get('namespace'), s['name']) for s in b.get('subjects', [])
                if s['kind'] == 'ServiceAccount']
        tap(ok_role and subs and all(s in accounts for s in subs),
            f'ClusterRoleBinding {n}: its ClusterRole and ServiceAccounts are in dist/',
            f'roleRef {b["roleRef"]}, subjects {subs}, accounts {sorted(accounts)}')
    return accounts


def effective_conf(text):
    """kvnet.conf text -> {section: {key: value}} as dist/kvnet resolves it."""
    with tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False) as f:
        f.write(text)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith('KVNET_')}
        r = subprocess.run([KVNET, 'config', '-n', '-c', f.name], capture_output=True,
                           text=True, env=env)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise ValueError(r.stderr.strip())
    out, sec = {}, None
    for line in r.stdout.splitlines():
        m = re.match(r'\[(\w+)\]$', line)
        if m:
            sec = out.setdefault(m.group(1), {})
            continue
        m = re.match(r'(\w+)\s*=\s*(.*)$', line)
        if m and sec is not None:
            sec[m.group(1)] = m.group(2).strip()
    return out


def agent_paths(conf):
    """Host paths the agent and plugin share, from an effective configuration."""
    p = {'[datastore] state_dir': conf['datastore']['state_dir'],
         '[agent] socket': os.path.dirname(conf['agent']['socket']),
         '[agent] endpoints_dir': conf['agent']['endpoints_dir'],
         'kvnet.conf': '/etc/kvnet',
         # written only with [flows] enabled = true, but a user turning it on in the
         # ConfigMap must not find the log inside the container's throwaway filesystem
         '[flows] log_dir': conf['flows']['log_dir'],
         # cross_node = bgp: the fragment the agent writes and BIRD's control socket;
         # mounted whatever cross_node says, so a ConfigMap switched to bgp just works
         '[bgp] config': os.path.dirname(conf['bgp']['config']),
         '[bgp] socket': os.path.dirname(conf['bgp']['socket'])}
    if conf['log'].get('file'):
        p['[log] file'] = os.path.dirname(conf['log']['file'])
    if conf['kubernetes'].get('kubeconfig'):
        p['[kubernetes] kubeconfig'] = os.path.dirname(conf['kubernetes']['kubeconfig'])
    return p


def mounted_at(path, container, volumes, prefix=''):
    """The hostPath volume mount of container covering path (host path = mount path minus
    prefix), or None."""
    best = None
    for m in container.get('volumeMounts', []):
        v = volumes.get(m['name'], {})
        hp = (v.get('hostPath') or {}).get('path')
        mp = m['mountPath']
        if hp is None or mp != prefix + hp:
            continue
        if path == hp or path.startswith(hp.rstrip('/') + '/'):
            if best is None or len(hp) > len(best[0]):
                best = (hp, m)
    return best


def check_daemonset(docs, accounts):
    dss = kinds(docs, 'DaemonSet')
    tap(len(dss) == 1, 'dist/ has one DaemonSet (the agent)', [d['metadata']['name'] for _, d in dss])
    if not dss:
        return
    f, ds = dss[0]
    spec = ds['spec']['template']['spec']
    tap(spec.get('hostNetwork') is True, 'DaemonSet: host network')
    tap((ds['metadata'].get('namespace'), spec.get('serviceAccountName')) in accounts,
        'DaemonSet: its service account is in dist/rbac.yaml', spec.get('serviceAccountName'))
    cms = {d['metadata']['name']: d for _, d in kinds(docs, 'ConfigMap')}
    volumes = {v['name']: v for v in spec.get('volumes', [])}
    cmv = [v for v in volumes.values() if 'configMap' in v]
    cm = cms.get(cmv[0]['configMap']['name']) if cmv else None
    tap(cm is not None, 'DaemonSet: its ConfigMap is in dist/', [v['name'] for v in cmv])
    if cm is None:
        return
    kdir = os.path.join(TOP, 'dist', 'cni', 'kubernetes')
    files = {os.path.basename(p): open(p).read() for p in glob.glob(os.path.join(kdir, '*'))}
    tap(cm.get('data') == files, 'ConfigMap kvnet-config holds dist/cni/kubernetes/ as is',
        f'ConfigMap keys {sorted(cm.get("data", {}))}, files {sorted(files)}; '
        'a value differs' if set(cm.get('data', {})) == set(files) else '')
    images = [c['image'] for c in spec.get('initContainers', []) + spec['containers']]
    tap(all(i.endswith(':' + VERSION) for i in images), f'DaemonSet images are tagged {VERSION}',
        images)
    agent = [c for c in spec['containers'] if c['name'] == 'agent']
    tap(len(agent) == 1 and len(spec['containers']) == 2,
        'DaemonSet: a container named agent (and the install-refresh sidecar)',
        [c['name'] for c in spec['containers']])
    if not agent:
        return
    agent = agent[0]
    tap(agent['command'][:2] == ['/kvnet', 'agent'], 'agent container runs /kvnet agent',
        agent['command'])
    for name, text in (('dist/kvnet.conf', open(os.path.join(TOP, 'dist', 'kvnet.conf')).read()),
                       ('ConfigMap kvnet.conf', cm['data'].get('kvnet.conf', ''))):
        try:
            conf = effective_conf(text)
        except ValueError as ex:
            tap(False, f'{name} parses with dist/kvnet config -n', ex)
            continue
        bad = [f'{k} = {p}' for k, p in agent_paths(conf).items()
               if k != '[kubernetes] kubeconfig' and not mounted_at(p, agent, volumes)]
        tap(not bad, f'agent container mounts every host path of {name} at the same place',
            '\n'.join(bad))
    sc = agent.get('securityContext', {})
    caps = sc.get('capabilities', {})
    tap(caps.get('drop') == ['ALL'] and set(caps.get('add', [])) <= AGENT_CAPS and
        not sc.get('privileged'), 'agent: capabilities dropped but NET_ADMIN, NET_RAW',
        caps)
    inits = [c for c in spec.get('initContainers', []) if c['command'][1:2] == ['install']]
    tap(len(inits) == 1, 'DaemonSet: an init container running kvnet install')
    if not inits:
        return
    ic = inits[0]
    cmd = ic['command']
    root = cmd[cmd.index('--root') + 1] if '--root' in cmd else None
    conf = effective_conf(cm['data'].get('kvnet.conf', ''))
    need = {'/opt/cni/bin': 'binary', '/etc/cni/net.d': 'conflist', '/etc/kvnet': 'kvnet.conf',
            '/var/lib/kvnet': 'install manifest',
            os.path.dirname(conf['kubernetes']['kubeconfig'] or '/etc/kvnet/x'): 'kubeconfig'}
    bad = [f'{p} ({what})' for p, what in need.items()
           if not root or not mounted_at(p, ic, volumes, prefix=root)]
    tap(not bad, f'install init container sees every host directory it writes under {root}',
        '\n'.join(bad))
    hps = sorted((v.get('hostPath') or {}).get('path') for v in volumes.values()
                 if 'hostPath' in v)
    tap(hps == sorted({'/opt/cni/bin', '/etc/cni/net.d', '/var/lib/kvnet', '/run/kvnet',
                       '/etc/kvnet', '/var/log/kvnet', '/etc/bird', '/run/bird'}),
        'DaemonSet: host paths are exactly the five of the design, the flow log\'s and '
        'BIRD\'s two (cross_node = bgp)', hps)
    mountdir = [m['mountPath'] for m in ic['volumeMounts'] if m['name'] in
                [v['name'] for v in cmv]]
    for opt in ('--conflist', '--conf'):
        if opt not in cmd:
            tap(False, f'install init container passes {opt}')
            continue
        p = cmd[cmd.index(opt) + 1]
        tap(mountdir and os.path.dirname(p) == mountdir[0] and
            os.path.basename(p) in cm['data'], f'install {opt} {p} is a ConfigMap key',
            mountdir)
    refresh = [c for c in spec['containers'] if c['command'][1:2] == ['install']]
    tap(len(refresh) == 1 and '--every' in refresh[0]['command'] and
        [a for i, a in enumerate(refresh[0]['command'])
         if a != '--every' and refresh[0]['command'][i - 1] != '--every'] == cmd and
        refresh[0]['volumeMounts'] == ic['volumeMounts'] and
        refresh[0].get('securityContext') == ic.get('securityContext'),
        'the install-refresh container runs the init container\'s install with --every '
        '(same mounts, same rights)', refresh)
    isc = ic.get('securityContext', {})
    tap(isc.get('capabilities', {}).get('drop') == ['ALL'] and
        not isc.get('capabilities', {}).get('add') and not isc.get('privileged'),
        'install init container: no capability at all', isc)


def cni(command, conf_text, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('KVNET_', 'CNI_'))}
    env.update({'CNI_COMMAND': command, 'CNI_PATH': '/nonexistent'})
    env.update(env_extra)
    return subprocess.run([KVNET], input=conf_text, capture_output=True, text=True, env=env)


def check_conflists(docs):
    lists = {rel(p): open(p).read()
             for p in sorted(glob.glob(os.path.join(TOP, 'dist', '**', '*.conflist'),
                                       recursive=True))}
    for f, ds in docs.items():
        for d in ds:
            if d['kind'] == 'NetworkAttachmentDefinition':
                lists[f'{f} ({d["metadata"]["name"]})'] = d['spec']['config']
    tap(any('cni/file' in k for k in lists) and any('cni/kubernetes' in k for k in lists),
        'a conflist for each datastore (dist/cni/file, dist/cni/kubernetes)', sorted(lists))
    for name, text in lists.items():
        try:
            cl = json.loads(text)
        except ValueError as ex:
            tap(False, f'{name}: JSON', ex)
            continue
        plugins = [p for p in cl.get('plugins', []) if p.get('type') == 'kvnet']
        bad = sorted(set(cl) - CONFLIST_TOP) + [k for p in plugins for k in sorted(set(p) -
                                                                                  PLUGIN_KEYS)]
        tap(len(plugins) == 1 and not bad,
            f'{name}: one kvnet plugin, network-level keys only', f'not network-level: {bad}')
        if len(plugins) != 1:
            continue
        plugin = dict(plugins[0], cniVersion=cl['cniVersion'], name=cl['name'])
        r = cni('VERSION', json.dumps(plugin), {})
        try:
            ok = r.returncode == 0 and cl['cniVersion'] in json.loads(r.stdout)['supportedVersions']
        except ValueError:
            ok = False
        tap(ok, f'{name}: dist/kvnet VERSION supports cniVersion {cl["cniVersion"]}',
            r.stdout + r.stderr)
        tmp = tempfile.mkdtemp(prefix='kvnet-dist-')
        try:
            conf = os.path.join(tmp, 'kvnet.conf')
            with open(conf, 'w') as fh:
                fh.write(f'[datastore]\ntype = file\nstate_dir = {tmp}/ipam\n'
                         f'[agent]\nsocket = {tmp}/agent.sock\n')
            plugin['kvnet_conf'] = conf
            # STATUS exists from CNI 1.1.0 on; the conflists say 1.0.0 so that runtimes
            # that know no 1.1.0 load them too: ask STATUS with 1.1.0, same keys otherwise
            plugin['cniVersion'] = '1.1.0'
            r = cni('STATUS', json.dumps(plugin), {})
            tap(r.returncode == 0, f'{name}: dist/kvnet STATUS (cniVersion 1.1.0) parses it',
                r.stdout + r.stderr)
            if name.startswith('dist/cni/file/'):
                with open(conf, 'w') as fh:
                    fh.write('[datastore]\ntype = nosuch\n')
                r = cni('STATUS', json.dumps(plugin), {})
                tap(r.returncode != 0 and 'nosuch' in r.stdout + r.stderr,
                    f'{name}: STATUS reads the kvnet.conf that kvnet_conf names',
                    r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def check_confs():
    for p in sorted(glob.glob(os.path.join(TOP, 'dist', '**', 'kvnet.conf'), recursive=True)):
        try:
            effective_conf(open(p).read())
            tap(True, f'{rel(p)}: dist/kvnet config -n parses it')
        except ValueError as ex:
            tap(False, f'{rel(p)}: dist/kvnet config -n parses it', ex)


def agent_sysctl_writes():
    """Files of the agent's code (agent/, l2/, net/ but the helper itself) that write a
    sysctl: a call of netns_sysctl_write or a /proc/sys/ path opened for writing."""
    found = []
    for d in ('agent', 'l2', 'net'):
        for p in sorted(glob.glob(os.path.join(TOP, d, '*.c'))):
            if rel(p) == 'net/netns.c':
                continue
            src = open(p, encoding='utf-8').read()
            if 'netns_sysctl_write(' in src or re.search(
                    r'"/proc/sys/[^"]*"[\s\S]{0,200}O_WRONLY', src):
                found.append(rel(p))
    return found


def check_unit():
    unit = os.path.join(TOP, 'dist', 'kvnet-agent.service')
    if not shutil.which('systemd-analyze'):
        skip('kvnet-agent.service: systemd-analyze verify', 'systemd-analyze is not installed')
        return
    r = subprocess.run(['systemd-analyze', 'verify', unit], capture_output=True, text=True)
    # the unit names the installed paths, which this machine does not have
    rest = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and not re.search(
        r'Command /usr/local/bin/kvnet-agent is not executable', ln)]
    tap(not rest, 'kvnet-agent.service: systemd-analyze verify', '\n'.join(rest))
    r = subprocess.run(['systemd-analyze', 'security', '--offline=yes', unit],
                       capture_output=True, text=True)
    m = re.search(r'Overall exposure level for \S+: ([0-9.]+) (\w+)', r.stdout)
    tap(m and m.group(2) in ('OK', 'SAFE'), 'kvnet-agent.service: exposure level OK or SAFE',
        m.group(0) if m else r.stdout[-500:] + r.stderr[-500:])
    text = open(unit).read()
    caps = re.search(r'^CapabilityBoundingSet=(.*)$', text, re.M)
    tap(caps and set(caps.group(1).split()) == {'CAP_' + c for c in AGENT_CAPS},
        'kvnet-agent.service: bounding set is CAP_NET_ADMIN CAP_NET_RAW CAP_BPF',
        caps.group(0) if caps else 'no CapabilityBoundingSet')
    rw = {p.lstrip('-') for ln in re.findall(r'^ReadWritePaths=(.*)$', text, re.M)
          for p in ln.split()}
    writes = agent_sysctl_writes()
    tunables = re.findall(r'^ProtectKernelTunables=(.*)$', text, re.M)
    ro = bool(tunables) and tunables[-1].strip().lower() in ('yes', 'true', 'on', '1')
    tap(not writes or not ro or '/proc/sys/net' in rw,
        'kvnet-agent.service: the agent may write the sysctls its code writes '
        '(no read-only /proc/sys)', f'ProtectKernelTunables={tunables[-1] if tunables else ""}'
        f' but the agent writes sysctls in {writes}')
    conf = effective_conf(open(os.path.join(TOP, 'dist', 'kvnet.conf')).read())
    need = {os.path.dirname(conf['bgp']['config']), os.path.dirname(conf['bgp']['socket'])}
    tap(need <= rw, 'kvnet-agent.service: may write [bgp] config and socket directories '
        '(ProtectSystem=strict)', f'ReadWritePaths {sorted(rw)}, need {sorted(need)}')


def main():
    if not os.access(KVNET, os.X_OK):
        print('not ok - dist/kvnet is built (make)')
        return 1
    docs = load_yamls()
    accounts = check_rbac(docs)
    check_daemonset(docs, accounts)
    check_conflists(docs)
    check_confs()
    check_unit()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
