"""lab — a kvnet cluster in network namespaces on one machine (python3 stdlib only).

One harness for the lab scenarios (test/lab/test_*.py), the migration benchmark
(test/bench/bench-migrate) and `make demo`:

    with Lab(nodes=("node-a", "node-b", "node-c")) as lab:   # everything up, agents too
        kv = KubeVirt(lab)                                    # simulated KubeVirt
        vm = kv.create_vm("vm-a", "node-a")                   # VM, VMI, launcher pod, CNI ADD
        lab.routes("node-c"), lab.owners(vm)                  # ip -j route; IPAM owners via API
        m = kv.migrate(vm, "node-b")                          # VMIM phases, cut-over, DEL
    # every namespace, link, mount, process and file is gone here, also after Ctrl-C,
    # SIGTERM or an exception

The world (design.md "Test world"):
  kvt-<pid>-fab         the fabric: bridge fab0 (one L2 segment, "direct" mode)
  kvt-<pid>-api         the API-server host 198.19.0.1 / 2001:db8:fab::1: the test API
                        server (HTTPS + bearer token) runs here, and so does this harness
                        (it setns()es itself in), the way kubectl / KubeVirt's controllers
                        would reach the API; it routes the pools via one node, as an
                        upstream router would
  kvt-<pid>-node-X      a node: fab0 198.19.0.1N / 2001:db8:fab::1N, forwarding on, its own
                        UTS namespace with hostname node-X (the CNI plugin names its node
                        by the hostname, as on a real machine), an agent (`dist/kvnet
                        agent`, config file with node_name) when agents=True
  kvt-<pid>-p<N>        a pod: CNI ADD/DEL run by `dist/kvnet` exactly as a runtime does
                        (CNI_* environment, config on stdin, inside the node's namespaces)

Readiness is waited for, never slept for: start() returns once every lab link is up with
no address in duplicate address detection (DAD is off on the lab's links, link-locals
included: a node whose link-local is tentative sends no neighbour solicitation for what it
forwards), each node's `ip monitor route` listens, the IPAMBlock watch is established and
every agent's /readyz says ready; a pod is handed back after CNI ADD once both ends of its
veth are ready (wait_links_ready); Stream.wait_answers() waits until echoes are answered
by a given guest. Every wait has a bound that fails naming what it waited for.

Addresses only from 198.18.0.0/15 and 2001:db8::/32: fabric 198.19.0.0/24 and
2001:db8:fab::/64, pools 198.18.0.0/24 (blocks /26) and 2001:db8:4b76::/112 (blocks /122).
"""

import atexit
import ctypes
import datetime
import glob
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
KVNET = os.environ.get("KVT_KVNET") or os.path.join(ROOT, "dist", "kvnet")  # KVT_KVNET: another build
ECHO = os.path.join(HERE, "echo.py")
sys.path.insert(0, os.path.join(ROOT, "test", "kubeapi"))
import client  # noqa: E402  (test/kubeapi/client.py)

PID = os.getpid()
POOL4 = "198.18.0.0/24"
POOL6 = "2001:db8:4b76::/112"
FAB4 = "198.19.0.%d"
FAB6 = "2001:db8:fab::%d"
API4 = FAB4 % 1
API6 = FAB6 % 1
NETWORK = "kvnet"  # the CNI network name; VM handles are kvnet.vmi.<ns>.<vm>
G = "/apis/kvnet.io/v1/"
KV = "/apis/kubevirt.io/v1/namespaces/%s/"
PODS = "/api/v1/namespaces/%s/pods"
ROUTE_PROTO = 75

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def _child_setup():
    """In every child: die with the harness even if it is SIGKILLed (PR_SET_PDEATHSIG)."""
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def now():
    return time.time()


class Reaper:
    """Undo actions run once, last first, at exit, on SIGINT/SIGTERM/SIGHUP, on errors."""

    def __init__(self):
        self.undo = []
        self.done = False
        atexit.register(self.run)
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self._signal)
        signal.signal(signal.SIGINT, self._signal)

    def _signal(self, signum, _frame):
        # leave through the normal paths (finally blocks, atexit): cleanup runs once
        signal.signal(signum, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    def add(self, fn, *args):
        self.undo.append((fn, args))
        return (fn, args)

    def drop(self, entry):
        if entry in self.undo:
            self.undo.remove(entry)

    def run(self):
        while self.undo:
            fn, args = self.undo.pop()
            try:
                fn(*args)
            except Exception as e:  # cleanup must go on
                print("# lab cleanup: %s%s: %s" % (getattr(fn, "__name__", fn), args, e),
                      file=sys.stderr)


REAPER = None


def reaper():
    global REAPER
    if REAPER is None:
        REAPER = Reaper()
    return REAPER


def sh(*cmd, check=True, input=None, timeout=60):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, input=input,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(map(str, cmd)), p.returncode,
                                                p.stderr.strip()))
    return p


def ipj(ns, *args):
    p = sh("ip", "-n", ns, "-j", *args, check=False)
    return json.loads(p.stdout) if p.stdout.strip() else []


def links_not_ready(ns, links=None):
    """{link: why} for the links of ns (or only those named in links) that are not ready
    to carry traffic, read with `ip -j addr`: an administratively up link whose operstate
    is not UP (or UNKNOWN, as lo's), a link that should exist and does not, or an
    address still in duplicate address detection (tentative) or failed by it
    (dadfailed). {} when everything is ready."""
    out = {}
    seen = set()
    for l in ipj(ns, "addr", "show"):
        name = l.get("ifname", "?")
        if links is not None and name not in links:
            continue
        seen.add(name)
        why = []
        if "UP" in l.get("flags", []) and l.get("operstate") not in ("UP", "UNKNOWN"):
            why.append("operstate %s" % l.get("operstate"))
        for a in l.get("addr_info", []):
            for flag in ("tentative", "dadfailed"):
                if a.get(flag):
                    why.append("%s/%s %s" % (a.get("local"), a.get("prefixlen"), flag))
        if why:
            out[name] = ", ".join(why)
    for name in links or ():
        if name not in seen:
            out[name] = "no such link"
    return out


def wait_links_ready(ns, links=None, timeout=10.0):
    """Until links_not_ready(ns, links) is empty. Fails at once on a dadfailed address
    (it never recovers) and after timeout seconds naming each link and why (the bound
    only turns a hang into a failure)."""
    end = time.monotonic() + timeout
    while True:
        bad = links_not_ready(ns, links)
        if not bad:
            return
        if any("dadfailed" in v for v in bad.values()) or time.monotonic() > end:
            raise RuntimeError("lab: links of %s not ready%s: %s" % (
                ns, "" if time.monotonic() <= end else " after %.0f s" % timeout,
                "; ".join("%s: %s" % kv for kv in sorted(bad.items()))))
        time.sleep(0.02)


def _proc_tree(pid):
    """pid and every descendant of it (read from /proc/*/stat)."""
    kids = {}
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st, encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(st.split("/")[2]))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def netlink_listening(pid, proto=0):
    """Whether pid (or a descendant) holds a netlink socket of proto (0 NETLINK_ROUTE,
    12 NETLINK_NETFILTER) bound to multicast groups: an `ip monitor` or `conntrack -E`
    that will see every change from now on."""
    for p in _proc_tree(pid):
        try:
            inodes = {os.readlink("/proc/%d/fd/%s" % (p, fd))[8:-1]
                      for fd in os.listdir("/proc/%d/fd" % p)
                      if os.readlink("/proc/%d/fd/%s" % (p, fd)).startswith("socket:[")}
            with open("/proc/%d/net/netlink" % p, encoding="ascii") as f:
                rows = [r.split() for r in f.read().splitlines()[1:]]
        except OSError:
            continue
        if any(len(r) >= 10 and r[1] == str(proto) and int(r[3], 16) != 0 and r[9] in inodes
               for r in rows):
            return True
    return False


def wait_netlink_listener(proc, what, timeout=10.0, proto=0):
    """Until proc listens to netlink multicast (netlink_listening); fails naming what."""
    end = time.monotonic() + timeout
    while not netlink_listening(proc.pid, proto):
        if not proc.alive() or time.monotonic() > end:
            raise RuntimeError("lab: %s not listening after %.0f s%s: %s" % (
                what, timeout, "" if proc.alive() else " (exited)", proc.log(10)))
        time.sleep(0.02)


class Proc:
    """A child process with its output in a log file; stop() is idempotent."""

    def __init__(self, cmd, log, env=None, stdin=None):
        self.cmd = [str(c) for c in cmd]
        self.log_path = log
        f = open(log, "ab")
        self.p = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT,
                                  stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  env=env, preexec_fn=_child_setup, start_new_session=True)
        f.close()
        self.entry = reaper().add(self.stop)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def send(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, sig=signal.SIGTERM, wait=5.0):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(wait)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
        reaper().drop(self.entry)
        return self.p.returncode

    def log(self, tail=None):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:] if tail else lines)


def _agent_help():
    try:
        p = subprocess.run([KVNET, "agent", "--help"], capture_output=True, text=True,
                           timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout + p.stderr


def agent_built():
    """Whether dist/kvnet has an agent (the stub said "kvnet agent: not implemented")."""
    h = _agent_help()
    return h is not None and "agent: not implemented" not in h


def agent_handover():
    """Whether the agent may drive the live-migration hand-over (static check: the help
    does not deny it). Lab.agents_migrate() is the runtime check."""
    h = _agent_help()
    return agent_built() and h is not None and "hand-over: not implemented" not in h


class Node:
    def __init__(self, lab, name, idx):
        self.lab = lab
        self.name = name
        self.idx = idx
        self.ns = "kvt-%d-%s" % (PID, name)
        self.ip4 = FAB4 % (10 + idx)
        self.ip6 = FAB6 % (10 + idx)
        self.dir = os.path.join(lab.dir, name)
        os.makedirs(self.dir)
        self.uts = os.path.join(self.dir, "uts")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        # kvnet is installed into the node's own file tree with `kvnet install --root`,
        # as on a node image: the binary, the conflist and the node's one kvnet.conf
        self.root = os.path.join(self.dir, "root")
        self.kvnet = os.path.join(self.root, "opt", "cni", "bin", "kvnet")
        self.agent_conf = os.path.join(self.root, "etc", "kvnet", "kvnet.conf")
        self.conflist = os.path.join(self.root, "etc", "cni", "net.d", "10-kvnet.conflist")
        self.agent_sock = os.path.join(self.dir, "agent.sock")
        self.agent_log = os.path.join(self.dir, "agent.log")
        self.cni_log = os.path.join(self.dir, "cni.log")
        self.agent = None
        self.monitor = None

    def prefix(self):
        """Run a command on this node: its UTS (hostname) and network namespaces."""
        return ["nsenter", "--uts=" + self.uts, "--", "ip", "netns", "exec", self.ns]

    def run(self, *cmd, check=True, timeout=60):
        return sh(*(self.prefix() + list(cmd)), check=check, timeout=timeout)

    def routes(self, dst=None):
        """Every v4 and v6 route of the main table (ip -j), or only those to dst (an
        address: its /32 or /128 and nothing else)."""
        out = ipj(self.ns, "route", "show") + ipj(self.ns, "-6", "route", "show")
        if dst is not None:
            out = [r for r in out if r.get("dst") in (dst, dst + "/32", dst + "/128")]
        return out


class Lab:
    def __init__(self, nodes=("node-a", "node-b", "node-c"), agents=True, upstream=None,
                 convergence=30, log=None, keep=False, agent_conf_extra="",
                 cross_node="direct"):
        self.node_names = list(nodes)
        self.want_agents = agents
        self.upstream = upstream or self.node_names[-1]
        self.convergence = convergence
        self.say = log or (lambda msg: None)
        self.keep = keep or os.environ.get("KVT_KEEP") == "1"
        self.agent_conf_extra = agent_conf_extra
        self.cross_node = cross_node  # "direct", "bgp": a ToR and BIRD (bgplab.py), or
        self.tor = None               # "vxlan": nodes routed by a router (vxlanlab.py)
        self.router = None
        self.nodes = {}
        self.api = None
        self.pods = []
        self.seq = itertools.count(1)  # names of pod namespaces and streams (thread-safe)
        self.orig_ns = None
        self.fab = "kvt-%d-fab" % PID
        self.apins = "kvt-%d-api" % PID
        self.dir = None

    # ---- life cycle --------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *a):
        self.stop()

    def start(self):
        r = reaper()
        self.dir = tempfile.mkdtemp(prefix="kvt-%d-lab-" % PID)
        r.add(self._rmdir)
        self.say("fabric, %d nodes, API host" % len(self.node_names))
        self._netns(self.fab)
        sh("ip", "-n", self.fab, "link", "add", "fab0", "type", "bridge", "mcast_snooping", "0")
        self._nodad(self.fab, "fab0")
        sh("ip", "-n", self.fab, "link", "set", "fab0", "up")
        self._netns(self.apins)
        self._wire(self.apins, "api", API4, API6)
        for i, n in enumerate(self.node_names, 1):
            node = Node(self, n, i)
            self.nodes[n] = node
            self._netns(node.ns)
            open(node.uts, "w").close()
            sh("unshare", "--uts=" + node.uts, "hostname", n)
            r.add(self._umount, node.uts)
            self._wire(node.ns, n, node.ip4, node.ip6)
            for k, v in (("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                         ("net.ipv4.conf.all.rp_filter", 0),
                         ("net.ipv4.conf.default.rp_filter", 0)):
                sh("ip", "netns", "exec", node.ns, "sysctl", "-qw", "%s=%s" % (k, v))
        if self.cross_node == "bgp":
            import bgplab
            self.tor = bgplab.Tor(self, sys.modules[__name__])
            self.tor.wire()
        else:
            up = self.nodes[self.upstream]
            sh("ip", "-n", self.apins, "route", "add", POOL4, "via", up.ip4)
            sh("ip", "-n", self.apins, "-6", "route", "add", POOL6, "via", up.ip6)
            if self.cross_node == "vxlan":
                import vxlanlab
                self.router = vxlanlab.Router(self, sys.modules[__name__])
                self.router.wire()
        # nothing is sent before every lab link is up with every address usable
        for ns in ([self.fab, self.apins] + [x.ns for x in self.nodes.values()] +
                   ([self.tor.ns] if self.tor else []) +
                   ([self.router.ns] if self.router else [])):
            wait_links_ready(ns)
        # the harness lives on the API host from here on (its sockets are made there)
        self.orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        r.add(self._back_home)
        setns("/run/netns/" + self.apins)
        self.say("test API server on https://%s:6443" % API4)
        self.api = client.KubeAPI(listen=API4 + ":6443", hosts=[API4],
                                  workdir=os.path.join(self.dir, "api"),
                                  args=["--state", os.path.join(self.dir, "api-state.json")],
                                  start=False)
        r.add(self.api.stop)  # before start(): an interrupted start is cleaned up too
        self.api.start()
        self._crds()
        for node in self.nodes.values():
            self.api.write_kubeconfig(node.kubeconfig)
            self.install(node)
            st, _ = self.api.post("/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
                "status": {"addresses": [{"type": "InternalIP", "address": node.ip4},
                                         {"type": "InternalIP", "address": node.ip6}]}})
            if st != 201:
                raise RuntimeError("lab: node %s: create failed: %s" % (node.name, st))
            node.monitor = Proc(node.prefix() + ["ip", "-ts", "monitor", "route"],
                                os.path.join(node.dir, "routes.log"))
        self.blocks_log = os.path.join(self.dir, "ipamblocks.jsonl")
        self.blockwatch = Proc([sys.executable, os.path.join(HERE, "kwatch.py"), "--kubeconfig",
                                self.nodes[self.node_names[0]].kubeconfig, "--path",
                                G + "ipamblocks", "--out", self.blocks_log],
                               self.blocks_log + ".log")
        self._wait_blockwatch()
        for node in self.nodes.values():
            wait_netlink_listener(node.monitor, "ip monitor route on %s" % node.name)
        if self.tor:
            import bgplab
            self.tor.start()
            for node in self.nodes.values():
                bgplab.start_node(sys.modules[__name__], node)
        if self.want_agents:
            for node in self.nodes.values():
                self.start_agent(node)
            for node in self.nodes.values():
                self.wait_agent_ready(node)

    def _wait_blockwatch(self, timeout=20.0):
        """Until the block watch is established (kwatch.py writes WATCHING): no owner
        change before it can be missed."""
        end = time.monotonic() + timeout
        while True:
            try:
                with open(self.blocks_log, encoding="utf-8") as f:
                    if any('"type": "WATCHING"' in line for line in f):
                        return
            except OSError:
                pass
            if not self.blockwatch.alive() or time.monotonic() > end:
                raise RuntimeError("lab: the IPAMBlock watch (kwatch.py) is not watching "
                                   "after %.0f s%s: %s" % (
                                       timeout, "" if self.blockwatch.alive() else " (exited)",
                                       self.blockwatch.log(10)))
            time.sleep(0.02)

    def stop(self):
        if REAPER is not None:
            REAPER.run()

    def _netns(self, name):
        sh("ip", "netns", "add", name)
        reaper().add(self._netns_del, name)

    @staticmethod
    def _nodad(ns, link):
        """No duplicate address detection on link (still down): none of its addresses, its
        link-local included, starts tentative when it comes up (all.accept_dad is 0 in a
        new namespace, so the link's own 0 is enough). Only on the lab's own links: the
        namespaces keep the kernel's defaults, so the CNI plugin's veths get no help."""
        sh("ip", "netns", "exec", ns, "sysctl", "-qw",
           "net.ipv6.conf.%s.accept_dad=0" % link)

    @staticmethod
    def _netns_del(name):
        sh("ip", "netns", "del", name, check=False)

    @staticmethod
    def _umount(path):
        sh("umount", path, check=False)

    def _rmdir(self):
        if self.dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.dir:
            print("# lab files kept in %s" % self.dir, file=sys.stderr)

    def _back_home(self):
        if self.orig_ns is not None:
            fd = self.orig_ns
            self.orig_ns = None
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                print("# lab: setns back failed", file=sys.stderr)
            os.close(fd)

    def _wire(self, ns, short, ip4, ip6):
        """A veth from the fabric bridge into ns, named fab0 inside, with addresses."""
        port = "f-" + short[:12]
        sh("ip", "-n", self.fab, "link", "add", port, "type", "veth", "peer", "name", "fab0",
           "netns", ns)
        self._nodad(self.fab, port)
        self._nodad(ns, "fab0")
        sh("ip", "-n", self.fab, "link", "set", port, "master", "fab0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", ip4 + "/24", "dev", "fab0")
        sh("ip", "-n", ns, "addr", "add", ip6 + "/64", "dev", "fab0", "nodad")
        sh("ip", "-n", ns, "link", "set", "fab0", "up")

    def _crds(self):
        """Apply kvnet's CRDs from dist/crds (YAML manifests, read with python3-yaml: the
        one non-stdlib module the lab uses, a Debian package build.sh installs)."""
        import yaml  # python3-yaml, installed by build.sh (test group)
        for f in sorted(glob.glob(os.path.join(ROOT, "dist", "crds", "*.yaml"))):
            with open(f, encoding="utf-8") as fp:
                r = self.api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                  yaml.safe_load(fp))
            if r.status != 201:
                raise RuntimeError("lab: CRD %s: %s %s" % (f, r.status, r.raw[:200]))

    def api_stop(self):
        """Stop the API server (its state file keeps the objects, as etcd would)."""
        self.api.stop()

    def api_start(self):
        """Start it again on the same address with the same credentials."""
        self.api.start()

    # ---- agents ------------------------------------------------------------------------

    def agent_config(self, node):
        return """# kvnet agent on %(node)s (written by test/lab/lab.py)
[log]
level = debug
file = %(log)s

[datastore]
type = kubernetes

[kubernetes]
kubeconfig = %(kc)s
node_name = %(node)s

[ipam]
ipv4_pools = %(p4)s
ipv6_pools = %(p6)s

[migration]
convergence_seconds = %(conv)d

[cni]
log_level = debug
log_file = %(cnilog)s

[network]
cross_node = %(cross)s

[agent]
listen = 127.0.0.1:9746
socket = %(sock)s
endpoints_dir = %(eps)s
%(extra)s""" % {"node": node.name, "log": node.agent_log, "kc": node.kubeconfig,
                "p4": POOL4, "p6": POOL6, "conv": self.convergence, "sock": node.agent_sock,
                "eps": os.path.join(node.dir, "endpoints"), "cnilog": node.cni_log,
                "cross": self.cross_node,
                "extra": self.agent_conf_extra + (
                    __import__("bgplab").agent_conf(node) if self.cross_node == "bgp" else "")}

    def install(self, node):
        """`kvnet install --root` of KVNET, this node's kvnet.conf and the network's
        conflist into the node's tree (what a node image gets); fails loudly."""
        src_conf = os.path.join(node.dir, "kvnet.conf.src")
        src_list = os.path.join(node.dir, "10-kvnet.conflist.src")
        with open(src_conf, "w", encoding="utf-8") as f:
            f.write(self.agent_config(node))
        with open(src_list, "w", encoding="utf-8") as f:
            json.dump({"cniVersion": "1.1.0", "name": NETWORK, "plugins": [
                {"type": "kvnet", "ipv4_pools": [POOL4], "ipv6_pools": [POOL6],
                 "kvnet_conf": node.agent_conf}]}, f, indent=1)
        os.makedirs(node.root, exist_ok=True)
        p = subprocess.run([KVNET, "install", "--root", node.root, "--binary", KVNET,
                            "--conf", src_conf, "--conflist", src_list],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or not os.access(node.kvnet, os.X_OK):
            raise RuntimeError("lab: %s: kvnet install --root %s failed (status %d): %s"
                               % (node.name, node.root, p.returncode, p.stdout + p.stderr))

    def start_agent(self, node, binary=None):
        """Start node's agent from its installed kvnet.conf (rewritten from the lab's
        settings, as an operator edits it); binary: another kvnet than the installed one
        (an upgrade or a downgrade runs the same node from a different release)."""
        with open(node.agent_conf, "w", encoding="utf-8") as f:
            f.write(self.agent_config(node))
        node.agent = Proc(node.prefix() + [binary or node.kvnet, "agent", "-c", node.agent_conf],
                          os.path.join(node.dir, "agent.out"))
        return node.agent

    def stop_agent(self, node, sig=signal.SIGTERM):
        if node.agent is not None:
            node.agent.stop(sig)
            node.agent = None

    def wait_agent_ready(self, node, timeout=20.0):
        """Until the agent's /readyz answers 200 (asked with curl-free python inside the
        node's namespace)."""
        code = ("import urllib.request,urllib.error,sys\n"
                "try:\n r=urllib.request.urlopen('http://127.0.0.1:9746/readyz',timeout=1)\n"
                " sys.exit(0 if r.status==200 else 1)\n"
                "except urllib.error.HTTPError as e: print(e.code, e.read().decode()); "
                "sys.exit(1)\n"
                "except Exception as e: print(e); sys.exit(1)\n")
        end = time.monotonic() + timeout
        last = ""
        while time.monotonic() < end:
            if node.agent is None or not node.agent.alive():
                raise RuntimeError("lab: agent on %s exited: %s" % (
                    node.name, node.agent.log(20) if node.agent else "not started"))
            p = node.run("python3", "-c", code, check=False)
            if p.returncode == 0:
                return True
            last = (p.stdout + p.stderr).strip()
            time.sleep(0.2)
        raise RuntimeError("lab: agent on %s not ready after %.0f s (/readyz: %s): %s" % (
            node.name, timeout, last, node.agent.log(20)))

    def agent_metrics(self, node):
        """The agent's /metrics text ("" when it does not answer)."""
        code = ("import urllib.request\n"
                "print(urllib.request.urlopen('http://127.0.0.1:9746/metrics',timeout=2)"
                ".read().decode())\n")
        p = node.run("python3", "-c", code, check=False)
        return p.stdout if p.returncode == 0 else ""

    def agents_migrate(self):
        """Whether the running agents carry the live-migration hand-over: they export
        kvnet_migrations_total (agent/mignode.c) only then."""
        return bool(self.nodes) and all("kvnet_migrations_total" in self.agent_metrics(n)
                                        for n in self.nodes.values())

    def agent_lines(self, node):
        """The agent's logfmt lines as dicts (the log file)."""
        out = []
        try:
            with open(node.agent_log, encoding="utf-8", errors="replace") as f:
                for line in f:
                    out.append(parse_logfmt(line))
        except OSError:
            pass
        return out

    # ---- CNI ---------------------------------------------------------------------------

    def cni_conf(self, node):
        """The network configuration a runtime hands the plugin, from the conflist
        installed on the node (its plugin entry with the list's cniVersion and name).
        Network keys only: the node's settings (datastore, kubeconfig, node name, agent
        socket, the plugin's log) are in its kvnet.conf, shared with its agent."""
        with open(node.conflist, encoding="utf-8") as f:
            cl = json.load(f)
        return dict(cl["plugins"][0], cniVersion=cl["cniVersion"], name=cl["name"])

    def cni(self, command, node, pod, prev=None, ifname="eth0", conf=None):
        """dist/kvnet as the runtime calls it: CNI_* environment, config on stdin, in the
        node's namespaces. ifname/conf: another attachment of the pod (Multus: net1 with a
        NetworkAttachmentDefinition's config) instead of the node's conflist on eth0.
        Returns (exit status, parsed stdout or None, stderr)."""
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command, "CNI_CONTAINERID": pod.cid,
               "CNI_NETNS": "/run/netns/" + pod.ns, "CNI_IFNAME": ifname,
               "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
                           "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s"
                           % (pod.namespace, pod.name, pod.cid, pod.uid),
               "CNI_PATH": os.path.dirname(node.kvnet)}
        conf = dict(conf) if conf is not None else self.cni_conf(node)
        if prev is not None:
            conf["prevResult"] = prev
        p = subprocess.run(node.prefix() + [node.kvnet], input=json.dumps(conf), env=env,
                           capture_output=True, text=True, timeout=120)
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            out = None
        return p.returncode, out, p.stderr

    def new_pod_ns(self):
        ns = "kvt-%d-p%d" % (PID, next(self.seq))
        self._netns(ns)
        return ns

    # ---- API reads -----------------------------------------------------------------------

    def handle_name(self, namespace, vm):
        return "%s.vmi.%s.%s" % (NETWORK, namespace, vm)

    def owners(self, namespace, vm):
        """{ip: (active pod uid, alternate pod uid)} for the VM's handle, read from the
        IPAMBlocks through the API."""
        h = self.handle_name(namespace, vm)
        st, obj = self.api.get(G + "ipamblocks")
        out = {}
        if st != 200:
            raise RuntimeError("lab: list ipamblocks: %s" % st)
        for b in obj.get("items", []):
            for a in _allocs(b.get("spec")):
                if a.get("handle") == h:
                    ip = a.get("ip") or a.get("address") or a.get("addr") or ""
                    out[ip] = ((a.get("activeOwner") or {}).get("uid", ""),
                               (a.get("alternateOwner") or {}).get("uid", ""))
        return out

    def owner_history(self, namespace, vm, since=0.0):
        """[(t, {ip: active owner uid})]: every change of the VM's active owners as the
        block watch (kwatch.py, outside kvnet) saw it arrive."""
        h = self.handle_name(namespace, vm)
        blocks = {}
        out = []
        last = None
        try:
            with open(self.blocks_log, encoding="utf-8") as f:
                lines = f.readlines()
        except OSError:
            return out
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if not isinstance(ev.get("object"), dict):
                continue  # WATCHING: a marker, no object
            name = ev["object"]["metadata"]["name"]
            if ev["type"] == "DELETED":
                blocks.pop(name, None)
            else:
                blocks[name] = ev["object"]
            cur = {}
            for b in blocks.values():
                for a in _allocs(b.get("spec")):
                    if a.get("handle") == h:
                        cur[a.get("ip")] = (a.get("activeOwner") or {}).get("uid", "")
            if cur != last:
                if ev["t"] >= since:
                    out.append((ev["t"], cur))
                last = cur
        return out

    def route_events(self, node, since=0.0):
        """[(t, line)] from the node's `ip -ts monitor route` (an independent observer)."""
        out = []
        try:
            with open(os.path.join(node.dir, "routes.log"), encoding="utf-8") as f:
                for line in f:
                    if not line.startswith("["):
                        continue
                    ts, _, rest = line.partition("] ")
                    try:
                        t = datetime.datetime.strptime(ts[1:], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
                    except ValueError:
                        continue
                    if t >= since:
                        out.append((t, rest.strip()))
        except OSError:
            pass
        return out

    # ---- traffic ---------------------------------------------------------------------------

    def stream(self, src, to, tag):
        """A 1 kHz UDP echo stream to `to` from src: a Pod (its netns) or "api" (the API
        host). Returns a Stream; stop() gives the result."""
        out = os.path.join(self.dir, "stream-%d.json" % next(self.seq))
        ready = out + ".ready"
        cmd = [sys.executable, ECHO, "stream", "--to", to, "--out", out, "--id", tag,
               "--ready", ready]
        if src != "api":
            cmd = ["ip", "netns", "exec", src.ns] + cmd
        p = Proc(cmd, out + ".log")
        end = time.monotonic() + 10
        while not os.path.exists(ready):
            if not p.alive() or time.monotonic() > end:
                raise RuntimeError("lab: stream %s did not start: %s" % (tag, p.log()))
            time.sleep(0.01)
        return Stream(p, out, tag, ready, to)


class Stream:
    """A running echo stream. answers()/wait_answers() read its progress while it runs
    (echo.py's progress lines); stop() ends it and gives the StreamResult."""

    def __init__(self, proc, out, tag, progress_path=None, to=None):
        self.proc = proc
        self.out = out
        self.tag = tag
        self.to = to
        self.result = None
        self.progress_path = progress_path
        self._pos = 0
        self._last = {"sent": 0, "who": {}}

    def progress(self):
        """The latest progress line: {"sent": N, "who": {answerer: answers}}."""
        if self.progress_path:
            try:
                with open(self.progress_path, encoding="utf-8") as f:
                    f.seek(self._pos)
                    while True:
                        line = f.readline()
                        if not line.endswith("\n"):
                            break  # a line still being written: read it next time
                        self._pos = f.tell()
                        ev = json.loads(line)
                        if ev.get("ev") == "progress":
                            self._last = ev
            except OSError:
                pass
        return self._last

    def answers(self, who=None):
        """Echoes answered so far, by who (a guest name) or by anyone."""
        w = self.progress()["who"]
        return w.get(who, 0) if who is not None else sum(w.values())

    def wait_answers(self, who, more=1, timeout=20.0):
        """Until `more` further echoes (counted from now) were answered by who: the
        traffic flows, to the guest it should reach. Fails after timeout naming the
        stream and what it saw (the bound only turns a hang into a failure)."""
        want = self.answers(who) + more
        end = time.monotonic() + timeout
        while self.answers(who) < want:
            if not self.proc.alive() or time.monotonic() > end:
                p = self.progress()
                raise RuntimeError("lab: stream %s to %s: %d answers by %s, waited for %d, "
                                   "after %.0f s%s (sent %d, answered by %s)" % (
                                       self.tag, self.to, self.answers(who), who, want,
                                       timeout, "" if self.proc.alive() else
                                       " (the stream exited: %s)" % self.proc.log(5),
                                       p["sent"], p["who"]))
            time.sleep(0.01)

    def stop(self):
        if self.result is None:
            self.proc.stop(signal.SIGTERM, wait=10)
            with open(self.out, encoding="utf-8") as f:
                self.result = StreamResult(json.load(f), self.tag)
        return self.result


class StreamResult:
    """What one echo stream saw: per sequence number the send time and, if answered, the
    answer's time and who answered."""

    def __init__(self, d, tag):
        self.tag = tag
        self.to = d["to"]
        self.send = d["send"]
        self.reply = {int(k): tuple(v) for k, v in d["reply"].items()}

    @property
    def sent(self):
        return len(self.send)

    def window(self, t0, t1):
        """The part of the stream sent in [t0, t1), renumbered from 0."""
        idx = [i for i, t in enumerate(self.send) if t0 <= t < t1]
        d = {"to": self.to, "send": [self.send[i] for i in idx],
             "reply": {str(k): list(self.reply[i]) for k, i in enumerate(idx)
                       if i in self.reply}}
        return StreamResult(d, self.tag)

    def cutover_summary(self):
        """(sent, answered)."""
        return len(self.send), len(self.reply)

    def lost(self):
        return [i for i in range(len(self.send)) if i not in self.reply]

    def runs(self):
        """Runs of consecutive lost echoes: [(first seq, last seq)]."""
        out = []
        for i in self.lost():
            if out and out[-1][1] == i - 1:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
        return out

    def longest_gap_ms(self):
        """Longest time without an answered echo: from the send of the first lost echo of
        a run to the send of the next answered one."""
        best = 0.0
        for a, b in self.runs():
            end = self.send[b + 1] if b + 1 < len(self.send) else self.send[b]
            best = max(best, (end - self.send[a]) * 1000)
        return best

    def who(self):
        """Answerers in order of sequence: [(first seq, last seq, name)]."""
        out = []
        for i in sorted(self.reply):
            w = self.reply[i][1]
            if out and out[-1][2] == w:
                out[-1] = (out[-1][0], i, w)
            else:
                out.append((i, i, w))
        return out

    def cutover(self, src_name, tgt_name, t_announce=None):
        """Analyse a hand-over from src_name to tgt_name. Returns a dict:
        ok (answers go src... then tgt..., never back; every lost echo lies between the last
        source answer and the first target answer), lost_total, lost_window, lost_outside,
        last_src / first_tgt (send times), blackout_ms (from t_announce to the send of the
        first echo the target answered; 0 when it answered one sent earlier, i.e. the
        route was there before the announcement reached it), blackout_lo_ms (from
        t_announce to the send of the last echo lost after it: the blackout's lower bound;
        the two differ by the stream's send gap there), lost_after_announce."""
        who = self.who()
        names = [w for _, _, w in who]
        order_ok = (names in ([src_name, tgt_name], [tgt_name], [src_name])
                    and tgt_name in names)
        srcs = [i for i, (_, w) in self.reply.items() if w == src_name]
        tgts = [i for i, (_, w) in self.reply.items() if w == tgt_name]
        last_src = max(srcs) if srcs else -1
        first_tgt = min(tgts) if tgts else len(self.send)
        lost = self.lost()
        inside = [i for i in lost if last_src < i < first_tgt]
        outside = [i for i in lost if not (last_src < i < first_tgt)]
        res = {"ok": order_ok and not outside, "lost_total": len(lost),
               "lost_window": len(inside), "lost_outside": len(outside),
               "outside_seqs": outside[:20], "answerers": who,
               "last_src_t": self.send[last_src] if last_src >= 0 else None,
               "first_tgt_t": self.send[first_tgt] if tgts else None}
        if t_announce is not None and tgts:
            res["blackout_ms"] = max(0.0, (self.send[first_tgt] - t_announce) * 1000)
            res["lost_after_announce"] = len([i for i in inside if self.send[i] >= t_announce])
            res["lost_before_announce"] = len(inside) - res["lost_after_announce"]
            # the blackout lies between the last echo lost after the announcement and the
            # first the target answered: the lower bound shows how fine the stream was
            after = [i for i in inside if self.send[i] >= t_announce]
            res["blackout_lo_ms"] = ((self.send[max(after)] - t_announce) * 1000
                                     if after else 0.0)
        return res


def _allocs(x):
    if isinstance(x, dict):
        if "handle" in x:
            yield x
        for v in x.values():
            yield from _allocs(v)
    elif isinstance(x, list):
        for v in x:
            yield from _allocs(v)


def parse_logfmt(line):
    """key=value / key="quoted value" pairs of one logfmt line."""
    out = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        j = i
        while j < n and line[j] not in "= \n":
            j += 1
        key = line[i:j]
        if j < n and line[j] == "=":
            j += 1
            if j < n and line[j] == '"':
                j += 1
                val = []
                while j < n and line[j] != '"':
                    if line[j] == "\\" and j + 1 < n:
                        j += 1
                    val.append(line[j])
                    j += 1
                j += 1
                out[key] = "".join(val)
            else:
                k = j
                while j < n and line[j] not in " \n":
                    j += 1
                out[key] = line[k:j]
        elif key:
            out[key] = True
        i = j + 1
    return out


def rand_cid():
    return secrets.token_hex(32)
