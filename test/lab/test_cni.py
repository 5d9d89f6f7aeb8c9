#!/usr/bin/env python3
"""Lab scenarios the CNI plugin carries alone (no agent needed; agents run when built):
VM create, restart keeps the IP, eviction to another node. Each checks the IP, the routes
on every node (`ip -j route`), the IPAM owners read through the API, and echo traffic to
the VM (from a client pod on the VM's node; with agents, also from node-c and the API
host across the fabric)."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import observe as O  # noqa: E402
import labtap as T  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok


def kv_routes_to(node, ip):
    """kvnet's routes to ip (its /32 or /128) on node, as `ip -j route` shows them."""
    return [r for r in node.routes(ip) if str(r.get("protocol")) in ("75", "kvnet")]


def check_placement(lab, vm, what):
    """The VM's addresses are routed to its pod's veth on its node (metric 1024, proto
    75) and no other node has a host route to them via a local veth."""
    for ip in (vm.ip4, vm.ip6):
        here = kv_routes_to(vm.node, ip)
        ok(len(here) == 1 and here[0].get("dev") == vm.pod.host_if
           and here[0].get("metric") == 1024,
           "%s: %s routed to %s on %s (metric 1024, proto 75)" % (what, ip, vm.pod.host_if,
                                                                  vm.node.name), here)
        for n in lab.nodes.values():
            if n is vm.node:
                continue
            local = [r for r in kv_routes_to(n, ip) if "gateway" not in r]
            ok(local == [], "%s: %s has no local host route to %s" % (what, n.name, ip), local)


def check_owner(lab, vm, what):
    own = lab.owners(vm.namespace, vm.name)
    ok(own.get(vm.ip4) == (vm.pod.uid, "") and own.get(vm.ip6) == (vm.pod.uid, ""),
       "%s: IPAM active owner of both addresses is %s, no alternate" % (what, vm.pod.name), own)


def check_forwarding(lab, vm, what):
    """With agents: every node forwards the VM's addresses towards its node (direct
    mode: the block route or a /32 via that node; `ip -j route get`)."""
    okc, bad = O.wait_converged(lab, vm, vm.pod)
    ok(okc, "%s: every node forwards %s and %s to %s" % (what, vm.ip4, vm.ip6, vm.node.name),
       bad)


def echo_check(lab, client, vm, what, answers=300):
    for ip in (vm.ip4, vm.ip6):
        s = lab.stream(client, ip, "chk")
        want = "%s@%s" % (vm.name, vm.node.name)
        try:
            s.wait_answers(want, answers)
        except RuntimeError as e:
            T.note(str(e))  # the check below fails and says what was seen
        r = s.stop()
        ok(r.sent > 0 and not r.lost() and {w for _, _, w in r.who()} == {want},
           "%s: %d echoes to %s from %s, all answered by %s" % (
               what, r.sent, ip, client if client == "api" else client.node.name, want),
           "sent %d lost %d answerers %s" % (r.sent, len(r.lost()), r.who()))


def main():
    agents = L.agent_built()
    T.note("agents: %s" % ("running" if agents else "not built (CNI-only checks)"))
    with L.Lab(agents=agents) as lab:
        kv = KubeVirt(lab)
        a, b, c = (lab.nodes[n] for n in ("node-a", "node-b", "node-c"))
        cl = {n.name: kv.ordinary_pod("client-" + n.name, n) for n in (a, b, c)}

        # VM create
        vm = kv.create_vm("vm-a", "node-a")
        ok(vm.ip4 and vm.ip4.startswith("198.18.0.") and vm.ip6
           and vm.ip6.startswith("2001:db8:4b76:"), "create: VM has a v4 and a v6 from the pools",
           (vm.ip4, vm.ip6))
        vmi = lab.api.get(kv._path("vmi", "vm-a")).json
        ok(vmi["status"]["interfaces"][0]["ipAddresses"] == [vm.ip4, vm.ip6],
           "create: VMI status shows the pod's addresses", vmi["status"]["interfaces"])
        ok(vm.pod.dad_after_add == {}, "create: no address of the pod's veth (either end, "
           "link-local included) tentative when CNI ADD returns", vm.pod.dad_after_add)
        check_placement(lab, vm, "create")
        check_owner(lab, vm, "create")
        echo_check(lab, cl["node-a"], vm, "create")
        if agents:
            check_forwarding(lab, vm, "create")
            echo_check(lab, cl["node-c"], vm, "create")
            echo_check(lab, "api", vm, "create")
        first = (vm.ip4, vm.ip6)
        old_if = vm.pod.host_if

        # restart on the same node: new VMI uid, new pod, same addresses
        old_vmi = vm.vmi["metadata"]["uid"]
        kv.restart_vm(vm)
        ok(vm.vmi["metadata"]["uid"] != old_vmi, "restart: a new VMI (new uid)")
        ok((vm.ip4, vm.ip6) == first, "restart keeps the IPs", ((vm.ip4, vm.ip6), first))
        check_placement(lab, vm, "restart")
        check_owner(lab, vm, "restart")
        links = [l["ifname"] for l in L.ipj(a.ns, "link", "show")]
        ok(old_if not in links or old_if == vm.pod.host_if,
           "restart: the old pod's veth is gone", links)
        echo_check(lab, cl["node-a"], vm, "restart")

        # eviction without live migration: the VM starts again on node-b
        kv.restart_vm(vm, "node-b")
        ok((vm.ip4, vm.ip6) == first and vm.node is b, "eviction to node-b keeps the IPs",
           ((vm.ip4, vm.ip6), vm.node))
        check_placement(lab, vm, "eviction")
        check_owner(lab, vm, "eviction")
        own = lab.owners(vm.namespace, vm.name)
        echo_check(lab, cl["node-b"], vm, "eviction")
        if agents:
            check_forwarding(lab, vm, "eviction")
            echo_check(lab, cl["node-c"], vm, "eviction")
            echo_check(lab, cl["node-a"], vm, "eviction")
            echo_check(lab, "api", vm, "eviction")

        # delete: the VM's addresses are released
        kv.stop_vm(vm, delete_vm=True)
        own = lab.owners(vm.namespace, vm.name)
        ok(own == {}, "delete: the VM's addresses are released (no allocation names its handle)",
           own)
        for n in lab.nodes.values():
            ok(kv_routes_to(n, vm.ip4) == [] and kv_routes_to(n, vm.ip6) == [],
               "delete: no route to the VM on %s" % n.name)
    leftover = [x for x in L.sh("ip", "netns", "list").stdout.split() if x.startswith("kvt-%d-" % L.PID)]
    ok(leftover == [], "lab cleaned up: no namespaces left", leftover)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
