#!/usr/bin/env python3
"""test_install — `kvnet install` / `kvnet uninstall` against dist/kvnet, black box, in
throw-away root directories (nothing outside them is touched).

What install writes is checked with independent readers (os.stat, filecmp, readlink), the
kubeconfig it writes from a service account is used for real against test/kubeapi/server.py.
"""
import filecmp
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(TOP, 'test', 'kubeapi'))
KVNET = os.path.join(TOP, 'dist', 'kvnet')
failed = 0
tmps = []


def tap(ok, name, why=''):
    global failed
    if not ok:
        failed += 1
    print(('ok - ' if ok else 'not ok - ') + name)
    if not ok and why:
        for line in str(why).splitlines()[:30]:
            print('# ' + line)


def kv(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(('KVNET_', 'KUBERNETES_'))}
    e.update(env or {})
    return subprocess.run([KVNET] + list(args), capture_output=True, text=True, env=e)


def mkroot():
    d = tempfile.mkdtemp(prefix='kvnet-inst-')
    tmps.append(d)
    return d


def tree(root):
    """{relative path: (kind, mode, size, mtime_ns, link target)} of everything under root."""
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            r = os.path.relpath(p, root)
            out[r] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size,
                      st.st_mtime_ns, os.readlink(p) if stat.S_ISLNK(st.st_mode) else None)
    return out


def mode(root, p):
    return stat.S_IMODE(os.lstat(os.path.join(root, p)).st_mode)


def same(a, b):
    return filecmp.cmp(a, b, shallow=False)


def dist(p):
    return os.path.join(TOP, 'dist', p)


FILES = {'opt/cni/bin/kvnet': 0o755, 'etc/cni/net.d/10-kvnet.conflist': 0o644,
         'etc/kvnet/kvnet.conf': 0o644, 'etc/systemd/system/kvnet-agent.service': 0o644,
         'var/lib/kvnet/install.manifest': 0o644}
LINKS = {'usr/local/bin/kvnet': '/opt/cni/bin/kvnet', 'usr/local/bin/kvnet-agent': 'kvnet',
         'usr/local/bin/kvnet-ipamctl': 'kvnet', 'usr/local/bin/kvnet-garp-watch': 'kvnet'}


def test_full():
    root = mkroot()
    r = kv('install', '--root', root, '--dry-run')
    tap(r.returncode == 0 and tree(root) == {}, 'install --dry-run changes nothing',
        r.stdout + r.stderr)
    lines = r.stdout.splitlines()
    want = [f'would create file {p} {m:04o}' for p, m in FILES.items()
            if p != 'var/lib/kvnet/install.manifest'] + \
        [f'would create link {p} -> {t}' for p, t in LINKS.items()]
    tap(all(w in lines for w in want), 'install --dry-run lists every file and link',
        '\n'.join(w for w in want if w not in lines) + '\n--\n' + r.stdout)
    r = kv('install', '--root', root)
    tap(r.returncode == 0, 'install into an empty root', r.stdout + r.stderr)
    dry_lines = [ln[len('would '):] for ln in lines if ln.startswith('would ')]
    tap([ln for ln in r.stdout.splitlines() if not ln.startswith('kvnet install:')] == dry_lines,
        'install does what --dry-run listed, in that order', r.stdout)
    bad = [f'{p}: mode {mode(root, p):04o}, want {m:04o}' for p, m in FILES.items()
           if not os.path.isfile(os.path.join(root, p)) or mode(root, p) != m]
    tap(not bad, 'files are in place with explicit modes', '\n'.join(bad))
    bad = [p for p, t in LINKS.items() if not os.path.islink(os.path.join(root, p)) or
           os.readlink(os.path.join(root, p)) != t]
    tap(not bad, 'role links: usr/local/bin/kvnet -> /opt/cni/bin/kvnet, kvnet-ROLE -> kvnet',
        bad)
    tap(same(os.path.join(root, 'opt/cni/bin/kvnet'), KVNET), 'the binary is dist/kvnet')
    tap(same(os.path.join(root, 'etc/cni/net.d/10-kvnet.conflist'),
             dist('cni/file/10-kvnet.conflist')),
        'the conflist is dist/cni/file/10-kvnet.conflist')
    tap(same(os.path.join(root, 'etc/kvnet/kvnet.conf'), dist('kvnet.conf')),
        'kvnet.conf is dist/kvnet.conf (the documented defaults)')
    tap(same(os.path.join(root, 'etc/systemd/system/kvnet-agent.service'),
             dist('kvnet-agent.service')), 'the unit is dist/kvnet-agent.service')
    r = subprocess.run([os.path.join(root, 'opt/cni/bin/kvnet'), 'version'], capture_output=True,
                       text=True)
    tap(r.returncode == 0 and r.stdout.startswith('kvnet '), 'the installed binary runs',
        r.stdout + r.stderr)
    # role dispatch through the installed link names (targets resolved inside the root)
    os.symlink(os.path.join(root, 'opt/cni/bin/kvnet'), os.path.join(root, 'kvnet-agent'))
    r = subprocess.run([os.path.join(root, 'kvnet-agent'), '-h'], capture_output=True, text=True)
    tap('agent' in (r.stdout + r.stderr), 'the kvnet-agent name runs the agent role',
        r.stdout + r.stderr)
    os.unlink(os.path.join(root, 'kvnet-agent'))

    before = tree(root)
    r = kv('install', '--root', root)
    tap(r.returncode == 0 and r.stdout.strip().endswith('nothing to do'),
        'second install: nothing to do', r.stdout + r.stderr)
    tap(tree(root) == before, 'second install touches no file (same mtimes)')
    r = kv('install', '--root', root, '--dry-run')
    tap(r.returncode == 0 and r.stdout.strip().endswith('nothing to do'),
        'dry run over an installed root: nothing to do', r.stdout)
    leftovers = [p for p in tree(root) if '.kvnet-tmp.' in p]
    tap(not leftovers, 'no temporary files left', leftovers)

    # the site's kvnet.conf and conflist are kept when they differ
    conf = os.path.join(root, 'etc/kvnet/kvnet.conf')
    with open(conf, 'a') as f:
        f.write('# site edit\n')
    site = open(conf).read()
    cl = os.path.join(root, 'etc/cni/net.d/10-kvnet.conflist')
    with open(cl, 'w') as f:
        f.write('{"cniVersion": "1.0.0", "name": "kvnet", "plugins": [{"type": "kvnet"}]}\n')
    r = kv('install', '--root', root)
    tap(r.returncode == 0 and open(conf).read() == site and 'kvnet' in open(cl).read() and
        'site edit' in open(conf).read(), 'install keeps a kvnet.conf and conflist that differ',
        r.stdout + r.stderr)
    tap('keep (differs) file etc/kvnet/kvnet.conf' in r.stdout and
        'keep (differs) file etc/cni/net.d/10-kvnet.conflist' in r.stdout and
        'yours is kept' in r.stdout, 'install says it kept them', r.stdout)
    r = kv('install', '--root', root, '--force')
    tap(r.returncode == 0 and same(conf, dist('kvnet.conf')) and
        same(cl, dist('cni/file/10-kvnet.conflist')), 'install --force replaces them',
        r.stdout + r.stderr)

    # an upgrade replaces the binary; a changed mode is repaired
    other = os.path.join(mkroot(), 'kvnet-next')
    shutil.copy(KVNET, other)
    with open(other, 'ab') as f:
        f.write(b'\0next')
    r = kv('install', '--root', root, '--binary', other)
    tap(r.returncode == 0 and 'replace file opt/cni/bin/kvnet 0755' in r.stdout and
        same(os.path.join(root, 'opt/cni/bin/kvnet'), other), 'a new binary replaces the old',
        r.stdout + r.stderr)
    os.chmod(os.path.join(root, 'etc/systemd/system/kvnet-agent.service'), 0o666)
    r = kv('install', '--root', root, '--binary', other)
    tap(r.returncode == 0 and 'replace file etc/systemd/system/kvnet-agent.service 0644' in
        r.stdout and mode(root, 'etc/systemd/system/kvnet-agent.service') == 0o644,
        'a wrong mode is repaired', r.stdout + r.stderr)

    # uninstall: exactly what install put there
    r = kv('uninstall', '--root', root, '--dry-run')
    tap(r.returncode == 0 and tree(root) != {} and 'would remove file opt/cni/bin/kvnet' in
        r.stdout, 'uninstall --dry-run lists and changes nothing', r.stdout + r.stderr)
    r = kv('uninstall', '--root', root)
    tap(r.returncode == 0 and tree(root) == {}, 'uninstall leaves the root as it was (empty)',
        r.stdout + r.stderr + str(sorted(tree(root))))
    r = kv('uninstall', '--root', root)
    tap(r.returncode == 1 and 'no manifest' in r.stderr, 'uninstall of nothing: exit 1, says why',
        r.stdout + r.stderr)


def test_preexisting():
    """What was there before the install stays, whatever uninstall does."""
    root = mkroot()
    os.makedirs(os.path.join(root, 'opt/cni/bin'))
    with open(os.path.join(root, 'opt/cni/bin/bridge'), 'w') as f:
        f.write('another plugin\n')
    os.makedirs(os.path.join(root, 'etc/kvnet'))
    shutil.copy(dist('kvnet.conf'), os.path.join(root, 'etc/kvnet/kvnet.conf'))
    os.chmod(os.path.join(root, 'etc/kvnet/kvnet.conf'), 0o644)
    before = tree(root)
    r = kv('install', '--root', root)
    tap(r.returncode == 0 and 'create file etc/kvnet/kvnet.conf' not in r.stdout and
        'create dir opt/cni/bin' not in r.stdout,
        'install over existing directories and an identical kvnet.conf', r.stdout + r.stderr)
    man = open(os.path.join(root, 'var/lib/kvnet/install.manifest')).read()
    tap('etc/kvnet/kvnet.conf' not in man and ' opt/cni/bin\n' not in man,
        'the manifest lists only what install wrote', man)
    with open(os.path.join(root, 'etc/systemd/system/kvnet-agent.service'), 'a') as f:
        f.write('# local change\n')
    r = kv('uninstall', '--root', root)
    after = tree(root)
    kept = {'etc/systemd/system/kvnet-agent.service', 'etc/systemd/system', 'etc/systemd'}
    tap(r.returncode == 0 and set(after) == set(before) | kept,
        'uninstall keeps what was there before and a file changed since',
        r.stdout + r.stderr + '\n' + str(sorted(set(after) ^ (set(before) | kept))))
    tap('keep (changed since install) file etc/systemd/system/kvnet-agent.service' in r.stdout,
        'uninstall says which file it kept and why', r.stdout)


def test_inputs():
    root = mkroot()
    src = mkroot()
    bad = os.path.join(src, 'bad.conflist')
    with open(bad, 'w') as f:
        f.write('{"cniVersion": "1.0.0", "name": ')
    r = kv('install', '--root', root, '--conflist', bad)
    tap(r.returncode == 1 and 'not JSON' in r.stderr and tree(root) == {},
        'a conflist that is not JSON is refused before anything is written', r.stderr)
    badc = os.path.join(src, 'bad.conf')
    with open(badc, 'w') as f:
        f.write('[datastore]\ntype = etcd\n')
    r = kv('install', '--root', root, '--conf', badc)
    tap(r.returncode == 1 and 'not a valid kvnet.conf' in r.stderr and tree(root) == {},
        'an invalid kvnet.conf is refused before anything is written', r.stderr)
    r = kv('install', '--root', os.path.join(root, 'nope'))
    tap(r.returncode == 1 and 'nope' in r.stderr, 'a missing root is an error', r.stderr)
    for args, name in ((['install'], 'install without --root'),
                       (['install', '--root', root, '--frob'], 'install --frob'),
                       (['uninstall'], 'uninstall without --root'),
                       (['install', '--root', root, 'extra'], 'install with an extra argument')):
        r = kv(*args)
        tap(r.returncode == 2 and 'usage' in r.stderr, f'{name}: usage, exit 2', r.stderr)
    r = kv('install', '--root', root, '--cni-only', '--conflist',
           dist('cni/kubernetes/10-kvnet.conflist'), '--conf', dist('cni/kubernetes/kvnet.conf'))
    t = tree(root)
    tap(r.returncode == 0 and 'usr/local/bin' not in t and 'etc/systemd' not in t and
        same(os.path.join(root, 'etc/kvnet/kvnet.conf'), dist('cni/kubernetes/kvnet.conf')) and
        same(os.path.join(root, 'etc/cni/net.d/10-kvnet.conflist'),
             dist('cni/kubernetes/10-kvnet.conflist')),
        '--cni-only with --conflist/--conf: binary, conflist, kvnet.conf only',
        r.stdout + r.stderr)
    r = kv('install', '--root', root)
    tap(r.returncode == 0 and 'create file etc/systemd/system/kvnet-agent.service' in r.stdout
        and 'keep (differs) file etc/kvnet/kvnet.conf' in r.stdout,
        'a full install after --cni-only adds links and unit, keeps the site files', r.stdout)
    r = kv('uninstall', '--root', root)
    tap(r.returncode == 0 and tree(root) == {}, 'uninstall after both removes all of it',
        r.stdout + str(sorted(tree(root))))


def wait_for(cond, timeout=60.0):
    """Poll cond until it is true or timeout seconds passed (the machine is shared: no
    assumption on how fast the other process is)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def check_every(api, root, sa, env):
    """--every: the sidecar that keeps the plugin's token fresh."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(('KVNET_', 'KUBERNETES_'))}
    e.update(env)
    tokfile = os.path.join(root, 'etc/kvnet/cni.kubeconfig.token')
    out = tempfile.TemporaryFile('w+')
    p = subprocess.Popen([KVNET, 'install', '--root', root, '--cni-only', '--conf',
                          dist('cni/kubernetes/kvnet.conf'), '--kubeconfig-from-sa', '--sa-dir',
                          sa, '--every', '1'], stdout=out, stderr=subprocess.STDOUT, env=e)
    try:
        tap(wait_for(lambda: 'nothing to do' in read_all(out)),
            '--every: the first pass runs at once', read_all(out))
        api.rotate_token()
        with open(os.path.join(sa, 'token.tmp'), 'w') as f:
            f.write(api.token + '\n')
        os.rename(os.path.join(sa, 'token.tmp'), os.path.join(sa, 'token'))
        tap(wait_for(lambda: open(tokfile).read() == api.token),
            '--every: a rotated service-account token reaches the plugin\'s token file',
            read_all(out))
        tap(wait_for(lambda: 'replace file etc/kvnet/cni.kubeconfig.token 0600' in read_all(out)),
            '--every: the pass that changed something says what', read_all(out))
        n = read_all(out).count('\n')
        marker = os.path.join(root, 'etc/kvnet/kvnet.conf')
        mtime = os.stat(marker).st_mtime_ns
        # a pass leaves no trace when it has nothing to do, so this can only look at a
        # stretch of time (about two periods) and see that nothing was printed or written
        time.sleep(2.5)
        tap(read_all(out).count('\n') == n and os.stat(marker).st_mtime_ns == mtime,
            '--every: passes with nothing to do print and write nothing', read_all(out))
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        tap(rc == 0, '--every: SIGTERM ends it with status 0', f'rc {rc}')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        out.close()


def read_all(f):
    f.flush()
    f.seek(0)
    return f.read()


def test_kubeconfig():
    from client import KubeAPI
    root = mkroot()
    sa = mkroot()
    with KubeAPI(listen='127.0.0.1:0') as api:
        with open(os.path.join(sa, 'token'), 'w') as f:
            f.write(api.token + '\n')
        shutil.copy(api.pki['ca_cert'], os.path.join(sa, 'ca.crt'))
        env = {'KUBERNETES_SERVICE_HOST': '127.0.0.1', 'KUBERNETES_SERVICE_PORT': str(api.port)}
        r = kv('install', '--root', root, '--cni-only', '--conf', dist('cni/kubernetes/kvnet.conf'),
               '--kubeconfig-from-sa', '--sa-dir', sa, env=env)
        kc = os.path.join(root, 'etc/kvnet/cni.kubeconfig')
        tap(r.returncode == 0 and os.path.isfile(kc), 'install --kubeconfig-from-sa writes '
            '[kubernetes] kubeconfig of the installed kvnet.conf', r.stdout + r.stderr)
        if r.returncode != 0:
            return
        modes = {p: mode(root, p) for p in ('etc/kvnet/cni.kubeconfig',
                                            'etc/kvnet/cni.kubeconfig.token')}
        tap(all(m == 0o600 for m in modes.values()), 'kubeconfig and token: mode 0600', modes)
        r = kv('ipamctl', '--datastore', 'kubernetes', '--kubeconfig', kc, 'pool', 'list')
        tap(r.returncode == 0, 'the written kubeconfig authenticates to the API server '
            '(kvnet ipamctl pool list)', r.stdout + r.stderr)
        r = kv('install', '--root', root, '--cni-only', '--conf', dist('cni/kubernetes/kvnet.conf'),
               '--kubeconfig-from-sa', '--sa-dir', sa, env=env)
        tap(r.returncode == 0 and r.stdout.strip().endswith('nothing to do'),
            'the same service account again: nothing to do', r.stdout + r.stderr)
        api.rotate_token()
        with open(os.path.join(sa, 'token'), 'w') as f:
            f.write(api.token + '\n')
        r = kv('install', '--root', root, '--cni-only', '--conf', dist('cni/kubernetes/kvnet.conf'),
               '--kubeconfig-from-sa', '--sa-dir', sa, env=env)
        tap(r.returncode == 0 and 'replace file etc/kvnet/cni.kubeconfig.token 0600' in r.stdout,
            'a rotated token is written again', r.stdout + r.stderr)
        r = kv('ipamctl', '--datastore', 'kubernetes', '--kubeconfig', kc, 'pool', 'list')
        tap(r.returncode == 0, 'and authenticates', r.stdout + r.stderr)
        check_every(api, root, sa, env)
        r = kv('install', '--root', root, '--cni-only', '--conf', dist('cni/kubernetes/kvnet.conf'),
               '--kubeconfig-from-sa', '--sa-dir', sa, env={})
        tap(r.returncode == 1 and 'KUBERNETES_SERVICE_HOST' in r.stderr,
            'without the API server address: refused, says why', r.stderr)
        r = kv('uninstall', '--root', root)
        tap(r.returncode == 0 and tree(root) == {}, 'uninstall removes kubeconfig and token',
            r.stdout + str(sorted(tree(root))))


def main():
    if not os.access(KVNET, os.X_OK):
        print('not ok - dist/kvnet is built (make)')
        return 1
    try:
        test_full()
        test_preexisting()
        test_inputs()
        test_kubeconfig()
    finally:
        for d in tmps:
            shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
