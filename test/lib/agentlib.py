"""agentlib — run the real kvnet agent in a test: a private network namespace for the
whole test (the script re-executes itself inside it, so the API server, the agent, the
veths and the routes are all in one namespace and nothing touches the machine), the test
API server (test/kubeapi) with kvnet's CRDs, an agent configuration, TAP output.

    import agentlib as al
    al.enter_netns()                       # re-exec inside kvt-<pid>-agent; removed after
    api = al.start_api(state=True)         # 127.0.0.1, CRDs loaded
    ag = al.Agent(api=api, node="node-a"); ag.start(); ag.wait_ready()
    al.routes()                            # `ip -j route show proto 75`, both families
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVNET = os.path.join(ROOT, "dist", "kvnet")
sys.path.insert(0, os.path.join(ROOT, "test", "kubeapi"))
sys.dont_write_bytecode = True
import client  # noqa: E402

failures = 0
_dirs = []
_procs = []


def ok(cond, name, diag=None):
    global failures
    if cond:
        print("ok - " + name)
    else:
        failures += 1
        print("not ok - " + name)
        if diag is not None:
            for line in str(diag).splitlines()[-40:]:
                print("#   " + line)
    sys.stdout.flush()
    return cond


def note(s):
    print("# " + s)
    sys.stdout.flush()


def enter_netns():
    """Re-run this script inside a fresh namespace kvt-<pid>-agent and exit with its
    status; the namespace is deleted on every exit path. Inside, lo is up."""
    if os.environ.get("KVT_AGENT_NETNS"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return os.environ["KVT_AGENT_NETNS"]
    ns = "kvt-%d-agent" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    env = dict(os.environ, KVT_AGENT_NETNS=ns)
    child = None

    def stop(*_):
        if child and child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, stop)
    try:
        child = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable] + sys.argv,
                                 env=env)
        rc = child.wait()
    finally:
        # processes left in the namespace (a crashed test) die with it
        subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
        p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in p.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    sys.exit(rc)


def tmpdir():
    d = tempfile.mkdtemp(prefix="kvt-%d-" % os.getpid())
    _dirs.append(d)
    return d


def cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


def finish():
    cleanup()
    sys.exit(1 if failures else 0)


def sh(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


def ipj(*args):
    p = subprocess.run(["ip", "-j"] + list(args), capture_output=True, text=True)
    return json.loads(p.stdout) if p.stdout.strip() else []


def routes(proto="75"):
    """kvnet's routes, both families, as a sorted list of comparable tuples
    (dst, gateway, dev, metric, scope)."""
    out = []
    for fam in ("-4", "-6"):
        for r in ipj(fam, "route", "show", "table", "main", "proto", proto):
            out.append((r["dst"], r.get("gateway", ""), r.get("dev", ""),
                        r.get("metric", 0), r.get("scope", "")))
    return sorted(out)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_api(state=False, port=0, workdir=None):
    """The test API server on 127.0.0.1 with kvnet's CRDs (workdir kept for restarts)."""
    wd = workdir or tmpdir()
    args = ["--state", os.path.join(wd, "state.json")] if state else []
    api = client.KubeAPI(listen="127.0.0.1:%d" % port, workdir=wd, args=args)
    import yaml
    for f in sorted(glob.glob(os.path.join(ROOT, "dist", "crds", "*.yaml"))):
        with open(f) as fp:
            r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         yaml.safe_load(fp))
        if r.status not in (201, 409):
            raise RuntimeError("CRD %s: %s %s" % (f, r.status, r.raw))
    return api


def node_obj(name, v4=None, v6=None):
    addrs = [{"type": "Hostname", "address": name}]
    if v4:
        addrs.append({"type": "InternalIP", "address": v4})
    if v6:
        addrs.append({"type": "InternalIP", "address": v6})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": addrs}}


def block_name(cidr):
    import ipaddress
    n = ipaddress.ip_network(cidr)
    if n.version == 4:
        return "v4-%s-%d" % ("-".join(str(b) for b in n.network_address.packed), n.prefixlen)
    return "v6-%s-%d" % (n.network_address.packed.hex(), n.prefixlen)


def block_obj(cidr, node, allocs=()):
    """An IPAMBlock; allocs: (ip, handle, node, active_owner_node or None, uid)."""
    al = []
    for ip, handle, anode, owner_node, uid in allocs:
        a = {"ip": ip, "handle": handle, "node": anode}
        if owner_node:
            a["activeOwner"] = {"namespace": "default", "name": "pod-" + uid, "uid": uid,
                                "node": owner_node}
        al.append(a)
    return {"apiVersion": "kvnet.io/v1", "kind": "IPAMBlock",
            "metadata": {"name": block_name(cidr)},
            "spec": {"cidr": cidr, "affinity": node, "used": len(al), "allocations": al}}


class Agent:
    """dist/kvnet agent with its own configuration, socket and endpoints directory."""

    def __init__(self, api=None, node="node-a", d=None, resync=1, extra=""):
        self.d = d or tmpdir()
        self.port = free_port()
        self.sock = os.path.join(self.d, "agent.sock")
        self.eps = os.path.join(self.d, "endpoints")
        self.conf = os.path.join(self.d, "kvnet.conf")
        self.log = os.path.join(self.d, "agent.log")
        self.proc = None
        kc = ""
        if api is not None:
            kc = api.write_kubeconfig(os.path.join(self.d, "kubeconfig"))
        with open(self.conf, "w") as f:
            f.write("[log]\nlevel = debug\n")
            # the file datastore's directory: the caller's ([datastore] state_dir in
            # extra) or one of this agent's own, never the host's /var/lib/kvnet
            m = re.search(r"^state_dir\s*=\s*(\S+)", extra, re.M)
            self.state = m.group(1) if m else os.path.join(self.d, "ipam")
            f.write("[datastore]\ntype = %s\n%s" % (
                "kubernetes" if api else "file",
                "" if m else "state_dir = %s\n" % self.state))
            f.write("[kubernetes]\nkubeconfig = %s\nnode_name = %s\n" % (kc, node))
            f.write("[agent]\nlisten = 127.0.0.1:%d\nsocket = %s\nendpoints_dir = %s\n"
                    "resync_seconds = %d\n" % (self.port, self.sock, self.eps, resync))
            f.write(extra)

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([KVNET, "agent", "-c", self.conf], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        _procs.append(self.proc)
        return self

    def get(self, path, timeout=5):
        try:
            r = urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                       timeout=timeout)
            return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return 0, ""

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.get("/readyz", timeout=2)[0] == 200:
                return True
            time.sleep(0.05)
        return False

    def metric(self, name, labels=""):
        st, body = self.get("/metrics")
        key = name + ("{%s}" % labels if labels else "")
        for line in body.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def write_endpoint(self, cid, veth, ips, ifname="eth0", **kw):
        """An endpoint file as a previous agent would have left it."""
        os.makedirs(self.eps, exist_ok=True)
        req = {"op": "add", "container_id": cid, "ifname": ifname, "veth": veth,
               "ips": list(ips)}
        req.update(kw)
        with open(os.path.join(self.eps, "%s_%s.json" % (cid, ifname)), "w") as f:
            f.write(json.dumps(req) + "\n")

    def call_all(self, reqs, timeout=10):
        """Send each request on its own connection, all before reading any answer (so
        the agent handles them in one go), then return each one's first answer line."""
        conns = []
        try:
            for _ in reqs:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(timeout)
                s.connect(self.sock)
                conns.append(s)
            for s, req in zip(conns, reqs):
                s.sendall((json.dumps(req) + "\n").encode())
            return [s.makefile().readline().strip() for s in conns]
        finally:
            for s in conns:
                s.close()

    def call(self, req, answers=1, timeout=10):
        """Send one request line on the socket, return the answer lines (dicts)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.sock)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        out = []
        while len(out) < answers:
            d = s.recv(4096)
            if not d:
                break
            buf += d
            while b"\n" in buf and len(out) < answers:
                line, _, buf = buf.partition(b"\n")
                out.append(json.loads(line))
        s.close()
        return out


def wait_for(fn, timeout=15, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)
