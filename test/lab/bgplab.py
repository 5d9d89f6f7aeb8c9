"""bgplab — the lab's cross_node = bgp world (lab.Lab(cross_node="bgp")).

  kvt-<pid>-tor   a "ToR" router on the fabric, 198.19.0.254 / 2001:db8:fab::fe, forwarding,
                  BIRD 2 as the route reflector of AS 64512 (one iBGP session per node and
                  family) installing what it learns into its kernel at one metric
  API host        no route to the pools at all: its default route points at the ToR, which
                  knows the pools only from BGP (redirects off on both, so the API host
                  never learns a shortcut to a node)
  node-X          BIRD 2 with bird.conf = `include` of the fragment its agent writes
                  ([bgp] config / socket in the node's directory); started before the agent
                  on an empty fragment, reloaded by the agent

Readiness: start_tor() and start_node() return once `birdc show status` answers;
wait_sessions() until every ToR session is Established."""
import os
import re
import subprocess
import time

ASN = 64512
TOR4 = "198.19.0.254"
TOR6 = "2001:db8:fab::fe"
TOR_METRIC = 4096


def tor_conf(lab):
    s = ["log stderr all;", "router id %s;" % TOR4, "protocol device {}"]
    for v in ("4", "6"):
        s.append("protocol kernel tor_kernel%s { ipv%s { import none; export where source = "
                 "RTS_BGP; }; metric %d; }" % (v, v, TOR_METRIC))
    for node in lab.nodes.values():
        for v, addr in (("4", node.ip4), ("6", node.ip6)):
            s.append("protocol bgp %s_%s { local as %d; neighbor %s as %d; direct; "
                     "rr client; graceful restart; ipv%s { import all; export all; }; }"
                     % (node.name.replace("-", "_"), v, ASN, addr, ASN, v))
    return "\n".join(s) + "\n"


def agent_conf(node):
    """The [bgp] part of node's kvnet.conf."""
    return ("[bgp]\nasn = %d\npeers = %s %d, %s %d\nconfig = %s\nsocket = %s\n"
            % (ASN, TOR4, ASN, TOR6, ASN, frag_path(node), sock_path(node)))


def frag_path(node):
    return os.path.join(node.dir, "bird-kvnet.conf")


def sock_path(node):
    return os.path.join(node.dir, "bird.ctl")


def birdc(prefix, sock, *cmd, check=False):
    p = subprocess.run(prefix + ["birdc", "-s", sock] + list(cmd), capture_output=True,
                       text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError("birdc %s: %s" % (" ".join(cmd), p.stdout + p.stderr))
    return p.stdout


def _wait_bird(prefix, sock, proc, what, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        if os.path.exists(sock) and "Daemon is up" in birdc(prefix, sock, "show", "status"):
            return
        if not proc.alive() or time.monotonic() > end:
            raise RuntimeError("bgplab: BIRD on %s not up after %.0f s: %s"
                               % (what, timeout, proc.log(20)))
        time.sleep(0.05)


class Tor:
    def __init__(self, lab, L):
        self.lab, self.L = lab, L
        self.ns = "kvt-%d-tor" % L.PID
        self.dir = os.path.join(lab.dir, "tor")
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "bird.ctl")
        self.conf = os.path.join(self.dir, "bird.conf")
        self.bird = None

    def prefix(self):
        return ["ip", "netns", "exec", self.ns]

    def wire(self):
        """The ToR namespace on the fabric; the API host's default route via it."""
        L, lab = self.L, self.lab
        lab._netns(self.ns)
        lab._wire(self.ns, "tor", TOR4, TOR6)
        for k, v in (("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                     ("net.ipv4.conf.all.send_redirects", 0),
                     ("net.ipv4.conf.fab0.send_redirects", 0),
                     ("net.ipv4.conf.all.rp_filter", 0)):
            L.sh("ip", "netns", "exec", self.ns, "sysctl", "-qw", "%s=%s" % (k, v))
        for k in ("net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.fab0.accept_redirects",
                  "net.ipv6.conf.all.accept_redirects", "net.ipv6.conf.fab0.accept_redirects"):
            L.sh("ip", "netns", "exec", lab.apins, "sysctl", "-qw", "%s=0" % k)
        L.sh("ip", "-n", lab.apins, "route", "add", "default", "via", TOR4)
        L.sh("ip", "-n", lab.apins, "-6", "route", "add", "default", "via", TOR6)

    def start(self):
        with open(self.conf, "w") as f:
            f.write(tor_conf(self.lab))
        self.bird = self.L.Proc(self.prefix() + ["bird", "-f", "-c", self.conf, "-s", self.sock],
                                os.path.join(self.dir, "bird.log"))
        _wait_bird(self.prefix(), self.sock, self.bird, "the ToR")
        self.monitor = self.L.Proc(self.prefix() + ["ip", "-ts", "monitor", "route"],
                                   os.path.join(self.dir, "routes.log"))
        self.L.wait_netlink_listener(self.monitor, "ip monitor route on the ToR")

    def birdc(self, *cmd):
        return birdc(self.prefix(), self.sock, *cmd)

    def sessions(self):
        """{protocol name: state} of the ToR's BGP sessions."""
        out = {}
        for line in self.birdc("show", "protocols").splitlines():
            f = line.split()
            if len(f) >= 6 and f[1] == "BGP":
                out[f[0]] = f[5]
        return out

    def wait_sessions(self, timeout=60.0):
        end = time.monotonic() + timeout
        while True:
            s = self.sessions()
            if s and all(v == "Established" for v in s.values()):
                return s
            if time.monotonic() > end:
                raise RuntimeError("bgplab: ToR sessions not Established after %.0f s: %s"
                                   % (timeout, s))
            time.sleep(0.05)

    def kernel_routes(self, dst=None):
        """The ToR's kernel routes (ip -j, both families), or those to dst exactly."""
        out = (self.L.ipj(self.ns, "route", "show") +
               self.L.ipj(self.ns, "-6", "route", "show"))
        if dst is not None:
            out = [r for r in out if r.get("dst") in (dst, dst + "/32", dst + "/128")]
        return out


def start_node(L, node):
    """BIRD on node, on an empty fragment its agent fills in."""
    frag = frag_path(node)
    if not os.path.exists(frag):  # BIRD wants one protocol; the agent's text replaces it
        with open(frag, "w") as f:
            f.write("protocol device kvnet_device {\n}\n")
    conf = os.path.join(node.dir, "bird.conf")
    with open(conf, "w") as f:
        f.write('log stderr all;\ninclude "%s";\n' % frag)
    node.bird = L.Proc(node.prefix() + ["bird", "-f", "-c", conf, "-s", sock_path(node)],
                       os.path.join(node.dir, "bird.log"))
    _wait_bird(node.prefix(), sock_path(node), node.bird, node.name)
    return node.bird


def node_birdc(node, *cmd):
    return birdc(node.prefix(), sock_path(node), *cmd)


def via_of(route):
    """The gateway of an ip -j route (or None)."""
    return route.get("gateway")


def protocols_of(text):
    return re.findall(r"^(\S+)\s+BGP\s", text, re.M)
