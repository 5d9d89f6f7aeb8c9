"""l2lab — the lab's L2 world (issue #13): an upstream switch, trunks, a legacy peer.

    with L.Lab(nodes=("node-a", "node-b")) as lab:
        w = L2World(lab)          # switch, trunks, L2Networks vlan100/vlan200, reservation
        kv = KubeVirt(lab, secondary=w.secondary())
        vm = kv.create_vm("vm-l2", "node-a")   # eth0 on the pod network, net1 on VLAN 100
        st = w.stream(tag)        # the peer's UDP echo stream to the VM over VLAN 100

The switch is a namespace kvt-PID-l2sw with a plain bridge br0 (no VLAN filtering: tagged
frames pass as they are, MACs learnt per port): one port sw-NODE per node, a veth whose
other end is the node's trunk0, and one port sw-peer to the peer namespace kvt-PID-l2peer,
where test/lab/l2peer.py plays the legacy host 198.18.100.1 on VLAN 100 (real 802.1Q
frames from a raw socket; it answers ARP/ping and streams UDP echoes to the VM). The
L2Networks vlan100 (VLAN 100, 198.18.100.0/24 and 2001:db8:100::/64, gateways ::1/.1) and
vlan200 (VLAN 200, 198.18.200.0/24) both use trunk0; the VM's original address and MAC
are reserved with `ipamctl reserve --network vlan100` (or imported, register="import") before
it is created; the pools of vlan100's subnets, added after the L2Network, serve vlan100
alone from the start (ipamctl claims them), so the VM's routed eth0 never takes one. port200() puts
a listener on VLAN 200 into a node's vlan200 bridge (build/tools/l2-apply: kvnet's own
port guard) in a namespace of its own, for isolation checks with tcpdump.
All namespaces are the lab's (kvt-PID-*), removed with it.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import lab as L

G = "/apis/kvnet.io/v1/l2networks"
HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "l2peer.py")
TOOL = os.path.join(L.ROOT, "build", "tools", "l2-apply")
SPOOF = os.path.join(L.ROOT, "test", "lib", "spoof.py")
KVNET = os.path.join(L.ROOT, "dist", "kvnet")
VM_MAC, VM_IP4, VM_IP6 = "02:4b:56:10:00:0a", "198.18.100.10", "2001:db8:100::a"
PEER_MAC, PEER_IP4 = "02:4c:00:00:01:00", "198.18.100.1"
P200_MAC, P200_IP4 = "02:4c:00:00:02:0a", "198.18.200.10"


def lid(name):
    """The link id agent/l2 gives an L2Network (l2/netdef: sha256 of the name, 8 hex)."""
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def l2net(name, vlan, v4, v6=None):
    spec = {"vlan": vlan, "trunk": {"interface": "trunk0"},
            "ipv4": {"subnet": v4 + ".0/24", "gateway": v4 + ".1"}}
    if v6:
        spec["ipv6"] = {"subnet": v6 + "::/64", "gateway": v6 + "::1"}
    return {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": name},
            "spec": spec}


def wait(pred, what, timeout=30.0):
    """Until pred() is truthy (bounded; the bound turns a hang into a failure)."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError("l2lab: timed out waiting for " + what)
        time.sleep(0.05)


class L2World:
    def __init__(self, lab, vm="default/vm-l2", register="reserve"):
        """register: how the VM's original address and MAC are registered, "reserve"
        (`ipamctl reserve --network vlan100`, one per address) or "import" (`ipamctl
        import` of an inventory with the network column, as a user moving VMs would)."""
        self.lab = lab
        self.sw = "kvt-%d-l2sw" % L.PID
        self.peer_ns = "kvt-%d-l2peer" % L.PID
        self.p200 = {}
        lab._netns(self.sw)
        lab._netns(self.peer_ns)
        L.sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        L.sh("ip", "-n", self.sw, "link", "set", "br0", "up")
        for node in lab.nodes.values():
            port = "sw-" + node.name[-1]
            L.sh("ip", "-n", node.ns, "link", "add", "trunk0", "type", "veth", "peer", "name",
                 port, "netns", self.sw)
            self._port(port)
        L.sh("ip", "-n", self.peer_ns, "link", "add", "eth0", "type", "veth", "peer", "name",
             "sw-peer", "netns", self.sw)
        self._port("sw-peer")
        L.sh("ip", "netns", "exec", self.peer_ns, "sysctl", "-qw",
             "net.ipv6.conf.eth0.disable_ipv6=1")
        L.sh("ip", "-n", self.peer_ns, "link", "set", "eth0", "up")
        for name, vlan, v4, v6 in (("vlan100", 100, "198.18.100", "2001:db8:100"),
                                   ("vlan200", 200, "198.18.200", None)):
            r = lab.api.post(G, l2net(name, vlan, v4, v6))
            if r.status != 201:
                raise RuntimeError("l2lab: L2Network %s: %s %s" % (name, r.status, r.raw[:200]))
        for node in lab.nodes.values():
            for name in ("vlan100", "vlan200"):
                wait(lambda n=node, nm=name: (self.entry(nm, n.name) or {}).get("bridgeReady"),
                     "%s's bridge on %s" % (name, node.name))
        steps = [("pool", "add", "198.18.100.0/24"), ("pool", "add", "2001:db8:100::/64")]
        if register == "import":
            self.inventory = os.path.join(lab.dir, "inventory.csv")
            ns, name = vm.split("/")
            with open(self.inventory, "w", encoding="utf-8") as f:
                f.write("namespace,vm,ip,mac,network\n%s,%s,%s,%s,vlan100\n%s,%s,%s,,vlan100\n"
                        % (ns, name, VM_IP4, VM_MAC, ns, name, VM_IP6))
            steps.append(("import", self.inventory))
        else:
            steps += [("reserve", "--vm", vm, "--ip", VM_IP4, "--mac", VM_MAC, "--network",
                       "vlan100"),
                      ("reserve", "--vm", vm, "--ip", VM_IP6, "--network", "vlan100")]
        self.registered = []
        for args in steps:
            p = self.ipamctl(*args)
            if p.returncode != 0:
                raise RuntimeError("l2lab: ipamctl %s: %s" % (" ".join(args), p.stdout + p.stderr))
            self.registered.append(("ipamctl " + " ".join(args), p.stdout.strip()))

    def _port(self, port):
        # the switch's own stack says nothing into the VLANs (no link-local, no MLD)
        L.sh("ip", "netns", "exec", self.sw, "sysctl", "-qw",
             "net.ipv6.conf.%s.disable_ipv6=1" % port)
        L.sh("ip", "-n", self.sw, "link", "set", port, "master", "br0")
        L.sh("ip", "-n", self.sw, "link", "set", port, "up")

    def ipamctl(self, *args):
        cmd = [KVNET, "ipamctl", "-c", "/dev/null", "--datastore", "kubernetes", "--kubeconfig",
               next(iter(self.lab.nodes.values())).kubeconfig] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                   "HOME": "/"})

    def entry(self, name, node):
        r = self.lab.api.get(G + "/" + name)
        if r.status != 200:
            return None
        for e in (r.json.get("status") or {}).get("nodes") or []:
            if e.get("node") == node:
                return e
        return None

    def secondary(self):
        """KubeVirt(secondary=...): net1 on vlan100 (the NAD's config)."""
        return [("net1", "vlan100", lambda node: {
            "cniVersion": "1.1.0", "name": "vlan100-nad", "type": "kvnet",
            "network": "vlan100", "kvnet_conf": node.agent_conf})]

    def stream(self, tag, rate=1000, mac=VM_MAC, ip=VM_IP4):
        """The peer's UDP echo stream to the VM (mac, ip) over VLAN 100 (a lab.Stream)."""
        out = os.path.join(self.lab.dir, "l2stream-%d.json" % next(self.lab.seq))
        ready = out + ".ready"
        p = L.Proc(["ip", "netns", "exec", self.peer_ns, sys.executable, PEER, "eth0", "100",
                    PEER_MAC, PEER_IP4, "--to-mac", mac, "--to-ip", ip, "--out", out,
                    "--ready", ready, "--id", tag, "--rate", str(rate)], out + ".log")
        wait(lambda: os.path.exists(ready) or not p.alive(), "the peer's stream", 10)
        if not p.alive():
            raise RuntimeError("l2lab: peer stream did not start: %s" % p.log())
        return L.Stream(p, out, tag, ready, ip)

    def port200(self, node):
        """A listener on VLAN 200 of node: a veth port in its vlan200 bridge behind the
        port guard (l2-apply), its far end in namespace kvt-PID-l2v200X. Returns the ns."""
        ns = "kvt-%d-l2v200%s" % (L.PID, node.name[-1])
        self.lab._netns(ns)
        port = "p200" + node.name[-1]
        L.sh("ip", "-n", node.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
             "netns", ns)
        L.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
        L.sh("ip", "-n", ns, "link", "set", "eth0", "address", P200_MAC)
        L.sh("ip", "-n", ns, "addr", "add", P200_IP4 + "/24", "dev", "eth0")
        L.sh("ip", "-n", ns, "link", "set", "eth0", "up")
        L.sh("ip", "netns", "exec", node.ns, "sysctl", "-qw",
             "net.ipv6.conf.%s.disable_ipv6=1" % port)
        p = subprocess.run([TOOL, "/run/netns/" + node.ns, "port", lid("vlan200"), port,
                            P200_MAC, P200_IP4], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("l2lab: l2-apply port %s: %s" % (port, p.stderr))
        self.p200[node.name] = ns
        return ns

    def peer_broadcast(self, mark, vid=100, mac=PEER_MAC):
        """One broadcast frame tagged vid (EtherType 0x88b5, "KVT-MARK:" + mark) from
        the peer, source MAC mac: it floods to every node's trunk."""
        code = ("import socket,struct,sys;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);"
                "s.bind(('eth0',0));m=bytes.fromhex(sys.argv[1].replace(':',''));"
                "s.send(b'\\xff'*6+m+struct.pack('!HHH',0x8100,int(sys.argv[3]),0x88b5)+b'KVT-MARK:'+"
                "sys.argv[2].encode()+b'\\0'*30)")
        L.sh("ip", "netns", "exec", self.peer_ns, sys.executable, "-c", code, mac, mark,
             str(vid))

    @staticmethod
    def vm_send(pod, mark, ifname="net1", kind="good"):
        """A UDP broadcast from the VM's own MAC and address out of pod's ifname with mark
        (test/lib/spoof.py good: what a port must not forward while closed), or one of
        spoof.py's other kinds (othermac, hop, ipspoof, arpspoof, dhcp, ...)."""
        L.sh("ip", "netns", "exec", pod.ns, sys.executable, SPOOF, ifname, VM_MAC, VM_IP4,
             kind, mark)

    def filters(self, node, port):
        """{hook: [(prio, name)]} of a port's tc filters (l2-apply filters)."""
        out = {}
        for hook in ("ingress", "egress"):
            p = subprocess.run([TOOL, "/run/netns/" + node.ns, "filters", port, hook],
                               capture_output=True, text=True, timeout=30)
            out[hook] = [(int(x.split()[0]), x.split()[3]) for x in p.stdout.splitlines()
                         if x.strip()]
        return out

    def closed(self, node, port):
        f = self.filters(node, port)
        return any(n == "kvnet_gate" for h in f.values() for _, n in h)


class Capture:
    """tcpdump -U -w on an interface of a namespace (args: extra tcpdump options and the
    filter), running until stop(); lines() reads what it wrote."""

    def __init__(self, lab, ns, ifname, *args):
        self.pcap = os.path.join(lab.dir, "cap-%d-%s-%s.pcap" % (next(lab.seq), ns, ifname))
        self.p = L.Proc(["ip", "netns", "exec", ns, "tcpdump", "-i", ifname, "-nn", "-U",
                         "-s", "256", "-w", self.pcap] + list(args), self.pcap + ".log")
        wait(lambda: "listening on" in self.p.log() or not self.p.alive(),
             "tcpdump on %s in %s" % (ifname, ns), 10)
        if not self.p.alive():
            raise RuntimeError("l2lab: tcpdump: %s" % self.p.log())

    def lines(self, *filt):
        return pcap_frames(self.pcap, *filt)

    def ascii(self):
        r = subprocess.run(["tcpdump", "-r", self.pcap, "-nn", "-A"], capture_output=True,
                           text=True)
        return r.stdout

    def stop(self):
        self.p.stop(signal.SIGINT)


def pcap_frames(pcap, *filt):
    """tcpdump -e -nn -r pcap [filter]: the lines."""
    r = subprocess.run(["tcpdump", "-r", pcap, "-e", "-nn", "-tt"] + list(filt),
                       capture_output=True, text=True)
    return [ln for ln in r.stdout.splitlines() if ln.strip()]


def relearn_lines(lines, mac, ip4=VM_IP4, ip6=VM_IP6):
    """The GARP / RARP / NA lines of tcpdump -e output from mac (for ip4, ip6), tagged
    vlan 100: [(t, kind)]."""
    out = []
    for ln in lines:
        if not ln.split(" ", 2)[1].startswith(mac) or "vlan 100," not in ln:
            continue
        t = float(ln.split()[0])
        if "Reverse Request" in ln or "rarp" in ln.lower() or "(0x8035)" in ln:
            out.append((t, "rarp"))
        elif "ARP" in ln and "Request who-has %s tell %s" % (ip4, ip4) in ln:
            out.append((t, "garp"))
        elif "ARP" in ln and ("Reply %s is-at" % ip4) in ln:
            out.append((t, "garp"))
        elif "neighbor advertisement" in ln and "tgt is %s" % ip6 in ln:
            out.append((t, "na"))
    return out


def json_dump(x):
    return json.dumps(x, sort_keys=True)
