#!/usr/bin/env python3
"""Lab scenarios of a VM behind KubeVirt's bridge binding (kubevirt.py binding="bridge":
k6t-eth0 in the launcher pod enslaves the pod's eth0 and a tap, the guest in its own
namespace holds the pod IP and MAC and ARPs / solicits its gateways itself), on nodes
with no default route (issue #11: proxy ARP alone answered 169.254.1.1 only on a node
with a route to it).

  gateway     the guest reaches a pod on node-c and the API host, v4 and v6, and its
              neighbour table shows both gateways resolved to ee:ee:ee:ee:ee:ee
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
GW_MAC = "ee:ee:ee:ee:ee:ee"
GW4, GW6 = "169.254.1.1", "fe80::ecee:eeff:feee:eeee"


def no_default_routes(lab):
    have = {}
    for n in lab.nodes.values():
        for fam in ("-4", "-6"):
            r = L.ipj(n.ns, fam, "route", "show", "default")
            if r:
                have["%s %s" % (n.name, fam)] = r
    ok(have == {}, "no node has a default route (v4 or v6)", have)


def guest_ping(pod, dst):
    """One echo answered within 5 s (ping's own deadline): (ok, output)."""
    p = subprocess.run(["ip", "netns", "exec", pod.guest_ns, "ping", "-n", "-c", "1", "-w",
                        "5", dst], capture_output=True, text=True, timeout=20)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def check_gateway(vm, client, what):
    pod = vm.pod
    for dst, who in ((client.ip4, "pod on node-c"), (client.ip6, "pod on node-c"),
                     (L.API4, "API host"), (L.API6, "API host")):
        good, out = guest_ping(pod, dst)
        ok(good, "%s: the bridge-bound guest on %s pings %s (%s) through its gateway" % (
            what, vm.node.name, dst, who), out)
    neigh = {n.get("dst"): (n.get("lladdr"), n.get("state"))
             for n in L.ipj(pod.guest_ns, "neigh", "show", "dev", "eth0")}
    ok(neigh.get(GW4, (None,))[0] == GW_MAC and neigh.get(GW6, (None,))[0] == GW_MAC,
       "%s: the guest resolved %s and %s to %s itself (ip -j neigh in the guest)" % (
           what, GW4, GW6, GW_MAC), neigh)


def main():
    if not L.agent_built():
        for name in ("gateway",):
            T.skip(name, "dist/kvnet has no agent yet")
        return 0
    with L.Lab() as lab:
        kv = KubeVirt(lab)
        c = lab.nodes["node-c"]
        no_default_routes(lab)
        client = kv.ordinary_pod("client-c", c)
        vm = kv.create_vm("vm-br", "node-a", binding="bridge")
        ok(vm.pod.guest_ns and vm.mac, "gateway: VM %s %s %s behind k6t-eth0 on node-a" % (
            vm.ip4, vm.ip6, vm.mac), vm.pod.guest_ns)
        check_gateway(vm, client, "gateway")
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
