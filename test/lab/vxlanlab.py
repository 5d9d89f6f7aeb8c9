"""vxlanlab — the lab's cross_node = vxlan world (lab.Lab(cross_node="vxlan")).

  kvt-<pid>-rtr   a router on the fabric, 198.19.0.254 / 2001:db8:fab::fe, forwarding, no
                  route to the pools (it knows the fabric only), redirects off
  node-X          its fabric address as a /32 and a /128 (a subnet of its own) with its
                  default routes via the router onlink; its bridge port isolated
                  (`bridge link set ... isolated on`), so no frame goes from node to node:
                  the underlay between the nodes is routed through the router, and pods on
                  different nodes reach each other only through the overlay
  API host        unchanged: its static pool routes via the upstream node (as direct)

Everything is wired before the agents start; the router's namespace is removed with the
lab's other namespaces."""

RTR4 = "198.19.0.254"
RTR6 = "2001:db8:fab::fe"


class Router:
    def __init__(self, lab, L):
        self.lab, self.L = lab, L
        self.ns = "kvt-%d-rtr" % L.PID

    def prefix(self):
        return ["ip", "netns", "exec", self.ns]

    def wire(self):
        L, lab = self.L, self.lab
        lab._netns(self.ns)
        lab._wire(self.ns, "rtr", RTR4, RTR6)
        for k, v in (("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                     ("net.ipv4.conf.all.send_redirects", 0),
                     ("net.ipv4.conf.fab0.send_redirects", 0),
                     ("net.ipv4.conf.all.rp_filter", 0)):
            L.sh("ip", "netns", "exec", self.ns, "sysctl", "-qw", "%s=%s" % (k, v))
        for node in lab.nodes.values():
            for k in ("net.ipv4.conf.all.accept_redirects",
                      "net.ipv4.conf.fab0.accept_redirects",
                      "net.ipv6.conf.all.accept_redirects",
                      "net.ipv6.conf.fab0.accept_redirects"):
                L.sh("ip", "netns", "exec", node.ns, "sysctl", "-qw", "%s=0" % k)
            ns = node.ns
            L.sh("ip", "-n", ns, "addr", "del", node.ip4 + "/24", "dev", "fab0")
            L.sh("ip", "-n", ns, "addr", "add", node.ip4 + "/32", "dev", "fab0")
            L.sh("ip", "-n", ns, "-6", "addr", "del", node.ip6 + "/64", "dev", "fab0")
            L.sh("ip", "-n", ns, "-6", "addr", "add", node.ip6 + "/128", "dev", "fab0",
                 "nodad")
            L.sh("ip", "-n", ns, "route", "add", "default", "via", RTR4, "dev", "fab0",
                 "onlink")
            L.sh("ip", "-n", ns, "-6", "route", "add", "default", "via", RTR6, "dev",
                 "fab0", "onlink")
            L.sh("bridge", "-n", lab.fab, "link", "set", "dev", "f-" + node.name[:12],
                 "isolated", "on")
