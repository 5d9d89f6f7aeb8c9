"""Shared helpers for the black-box CNI tests: run dist/kvnet as a runtime would, TAP
output, namespaces named kvt-<pid>-... removed on every exit path."""
import atexit
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVNET = os.path.join(ROOT, "dist", "kvnet")
PID = os.getpid()
VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

_netns = []
_dirs = []
failures = 0


def cleanup():
    for n in reversed(_netns):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
    _netns.clear()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    _dirs.clear()


atexit.register(cleanup)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, lambda *_: sys.exit(1))


def netns(suffix):
    name = "kvt-%d-%s" % (PID, suffix)
    subprocess.run(["ip", "netns", "add", name], check=True)
    _netns.append(name)
    return name


def netns_del(name):
    subprocess.run(["ip", "netns", "del", name], check=True)
    _netns.remove(name)


def tmpdir():
    d = tempfile.mkdtemp(prefix="kvt-%d-" % PID)
    _dirs.append(d)
    return d


def ok(cond, name, diag=None):
    global failures
    if cond:
        print("ok - " + name)
    else:
        failures += 1
        print("not ok - " + name)
        if diag is not None:
            for line in str(diag).splitlines():
                print("#   " + line)
    sys.stdout.flush()
    return cond


def handles(state_dir):
    """Handle records in a file datastore, read with the independent log reader."""
    p = subprocess.run([os.path.join(ROOT, "test", "lib", "ipam-log.py"), state_dir, "dump"],
                       capture_output=True, text=True, check=True)
    return sorted(json.loads(p.stdout)["handle"])


_empty_conf = []


def empty_kvnet_conf():
    """An empty kvnet.conf of this test run: the plugin's node settings are then the
    conflist's (or the built-in defaults), whatever /etc/kvnet/kvnet.conf holds."""
    if not _empty_conf:
        d = tmpdir()
        path = os.path.join(d, "kvnet.conf")
        open(path, "w").close()
        _empty_conf.append(path)
    return _empty_conf[0]


def conf(state_dir, version="1.1.0", name="kvt", **extra):
    c = {"cniVersion": version, "name": name, "type": "kvnet", "datastore": "file",
         "state_dir": state_dir, "ipv4_pools": ["198.18.0.0/24"],
         "ipv6_pools": ["2001:db8:77::/112"], "kvnet_conf": empty_kvnet_conf()}
    c.update(extra)
    return c


class Res:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr
        try:
            self.json = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "rc=%d stdout=%s stderr=%s" % (self.rc, self.out.strip(), self.err.strip())


def cni(command, config, host_ns, cid="c1", netns_path=None, ifname="eth0", args=None,
        raw=None, env_over=None, role=False, node=None):
    """Run kvnet inside host_ns like a runtime; env values None are passed as empty.
    node: run it in its own UTS namespace with that host name (the plugin's node name),
    to simulate several nodes on one machine."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": cid or "", "CNI_NETNS": netns_path or "",
           "CNI_IFNAME": ifname or "", "CNI_ARGS": args or "", "CNI_PATH": "/opt/cni/bin"}
    if env_over:
        env.update(env_over)
    data = raw if raw is not None else json.dumps(config)
    cmd = ["ip", "netns", "exec", host_ns, KVNET] if host_ns else [KVNET]
    if role:
        cmd.append("cni")
    if node:
        cmd = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', node] + cmd
    p = subprocess.run(cmd, input=data, capture_output=True, text=True, env=env, timeout=60)
    return Res(p)


def ipj(ns, *args):
    p = subprocess.run(["ip", "-n", ns, "-j"] + list(args), capture_output=True, text=True)
    return json.loads(p.stdout) if p.stdout.strip() else []


def file_records(state_dir):
    """The file datastore's records, read independently of kvnet (ipam/ds_file.h):
    frames "KVL1 <seq 16 hex> <len 8 hex> <sum 16 hex>\n<payload>\n" in DIR/ipam.log,
    sum = first 16 hex digits of SHA-256(header bytes 0..30 + payload), seq counting up
    by one; the log ends at the first frame that is not complete and valid. Returns
    ({kind: {name: record dict}}, problems) where problems lists payloads or records
    that do not parse as JSON (a half-written record)."""
    recs = {"pool": {}, "block": {}, "handle": {}, "config": {}}
    probs = []
    try:
        with open(os.path.join(state_dir, "ipam.log"), "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        return recs, probs
    off, prev = 0, None
    while True:
        h = buf[off:off + 48]
        if (len(h) < 48 or h[:5] != b"KVL1 " or h[21:22] != b" " or h[30:31] != b" "
                or h[47:48] != b"\n"):
            break
        try:
            seq, ln = int(h[5:21], 16), int(h[22:30], 16)
        except ValueError:
            break
        payload = buf[off + 48:off + 48 + ln]
        if (len(payload) != ln or buf[off + 48 + ln:off + 49 + ln] != b"\n"
                or hashlib.sha256(h[:31] + payload).hexdigest()[:16].encode() != h[31:47]
                or (prev is not None and seq != prev + 1)):
            break
        prev = seq
        try:
            changes = json.loads(payload)["changes"]
        except (ValueError, KeyError) as ex:
            probs.append("frame %d: %s" % (seq, ex))
            break
        for c in changes:
            if c["data"] is None:
                recs.setdefault(c["kind"], {}).pop(c["name"], None)
                continue
            try:
                recs.setdefault(c["kind"], {})[c["name"]] = json.loads(c["data"])
            except ValueError as ex:
                probs.append("%s %s: %s" % (c["kind"], c["name"], ex))
        off += 48 + ln + 1
    return recs, probs


def finish():
    cleanup()
    sys.exit(1 if failures else 0)
