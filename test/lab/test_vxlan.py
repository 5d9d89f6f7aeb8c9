#!/usr/bin/env python3
"""Lab scenarios with cross_node = vxlan (vxlanlab.py): the nodes each in a subnet of their
own, routed through a router namespace that knows no pod address, their bridge ports
isolated, so pods on different nodes reach each other only through the overlay. Checked
with iproute2 (`ip -j -d link`, `bridge -j fdb`, `ip -j neigh`, `ip -j route get`),
ping and tcpdump on the router, independent of kvnet:

  - overlay: every node's agent made kvnet.vxlan (VNI 4096, port 4789, MTU 1450), an FDB
    entry per other node (its VTEP MAC -> its InternalIP) and permanent neighbours for the
    other nodes' InternalIPs; the underlay between nodes goes via the router
  - ordinary: pods on node-b and node-c ping each other (v4, v6) and the API host (v4, v6);
    a VM on node-a is forwarded to through the overlay by every other node
  - migration A -> B and back under traffic from a pod on node-c and the API host
    (test_migrate's checks)
  - all along, tcpdump on the router saw no pod-to-pod packet in the clear, and saw UDP 4789
  - underlay ipv6 (a second lab, [network] vxlan_family = ipv6): the devices' local address
    is the node's IPv6 InternalIP, MTU 1430, FDB entries to the other nodes' IPv6
    InternalIPs; pods on node-a and node-b ping each other (v4, v6) and the API host;
    the Node object of node-c deleted: node-a deletes its FDB entry and neighbours
  - neighbours: three reconciles that change nothing write none of node-a's permanent
    neighbours on the device (`ip -s neigh`: their "confirmed" age, reset by any write,
    keeps growing; only new or changed entries are written)
  - cross_node vxlan -> none -> vxlan by SIGHUP on every node: the agents say so, delete
    the device (no route through it left, pods across nodes no longer reach each other),
    then make it again (FDB, neighbours) and the pods ping each other again
  - reload and adoption (a third lab): every node's kvnet.conf changed to vxlan_vni 5000,
    vxlan_port 4790 and SIGHUP: each agent deletes the device, says which keys changed and
    creates it again (ip -d link: VNI 5000, port 4790, FDB and neighbours), pods on node-a
    and node-b ping each other again; node-a's agent stopped, its device replaced by one
    made with iproute2 with VNI 99 and started again: the agent says what differs and
    replaces it; a device as configured is adopted as it is (same ifindex); a bridge of
    that name is refused (left alone, a warning)
Figures are printed, not asserted."""
import signal
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
import test_migrate as TM  # noqa: E402
import vxlanlab as X  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
DEV = "kvnet.vxlan"
PODS4 = "198.18.0.0/24"
PODS6 = "2001:db8:4b76::/112"


def wait(fn, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.05)


def overlay(lab, node):
    """(vni, port, mtu, {fdb dst}, {permanent neighbour}) of node's overlay device."""
    li = L.ipj(node.ns, "-d", "link", "show", "dev", DEV) if dev_exists(node) else []
    if not li:
        return None
    d = li[0].get("linkinfo", {}).get("info_data", {})
    p = subprocess.run(node.prefix() + ["bridge", "-j", "fdb", "show", "dev", DEV],
                       capture_output=True, text=True, timeout=20)
    fdb = {e.get("dst") for e in json.loads(p.stdout or "[]") if "permanent" in
           str(e.get("state", "")) or e.get("state") is None}
    neigh = {n.get("dst") for n in L.ipj(node.ns, "neigh", "show", "dev", DEV)
             if "PERMANENT" in n.get("state", [])}
    return (d.get("id"), d.get("port"), li[0].get("mtu"), fdb, neigh)


def dev_exists(node):
    return any(x.get("ifname") == DEV for x in L.ipj(node.ns, "link", "show"))


def want_overlay(lab, node, v6=False):
    others = [n for n in lab.nodes.values() if n is not node]
    return (4096, 4789, 1430 if v6 else 1450, {n.ip6 if v6 else n.ip4 for n in others},
            {n.ip4 for n in others} | {n.ip6 for n in others})


def underlay_v6():
    with L.Lab(cross_node="vxlan", agent_conf_extra="[network]\nvxlan_family = ipv6\n") as lab:
        for n in lab.nodes.values():
            want = want_overlay(lab, n, v6=True)
            have = wait(lambda n=n, want=want: overlay(lab, n) == want and overlay(lab, n),
                        20) or overlay(lab, n)
            local = (L.ipj(n.ns, "-d", "link", "show", "dev", DEV) or [{}])[0].get(
                "linkinfo", {}).get("info_data", {}).get("local6")
            ok(have == want and local == n.ip6, "underlay ipv6: %s: %s local %s, mtu 1430, "
               "FDB entries to the other nodes' IPv6 InternalIPs" % (n.name, DEV, n.ip6),
               {"have": have, "want": want, "local6": local})
        kv = KubeVirt(lab)
        pa = kv.ordinary_pod("a", lab.nodes["node-a"])
        pb = kv.ordinary_pod("b", lab.nodes["node-b"])
        ok(ping(pa, pb.ip4) and ping(pa, pb.ip6) and ping(pb, pa.ip4) and ping(pb, pa.ip6),
           "underlay ipv6: pods on node-a and node-b ping each other (v4, v6)")
        ok(ping(pa, L.API4) and ping(pa, L.API6),
           "underlay ipv6: the pod on node-a pings the API host (v4, v6)")
        # a node leaves: the others delete its FDB entry and its neighbours
        a, b, c = (lab.nodes[n] for n in ("node-a", "node-b", "node-c"))
        r = lab.api.delete("/api/v1/nodes/node-c")
        want = (4096, 4789, 1430, {b.ip6}, {b.ip4, b.ip6})
        have = wait(lambda: overlay(lab, a) == want and overlay(lab, a), 20) or overlay(lab, a)
        ok(have == want, "node removed: node-a deleted node-c's FDB entry and neighbours",
           {"delete": getattr(r, "status", r), "have": have, "want": want})
        ok(ping(pa, pb.ip4) and ping(pa, pb.ip6),
           "node removed: the pods on node-a and node-b still ping each other")


def log_text(node):
    try:
        with open(node.agent_log, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def ifindex(node):
    li = L.ipj(node.ns, "link", "show", "dev", DEV) if dev_exists(node) else []
    return li[0].get("ifindex") if li else None


def reconciles(lab, node):
    """The agent's kvnet_agent_reconciles_total, every result summed (None: no answer)."""
    text = lab.agent_metrics(node)
    v = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
         if l.startswith("kvnet_agent_reconciles_total")]
    return sum(v) if v else None


def hup_all(lab, conf_of):
    """Write every node's kvnet.conf as conf_of(node) says and SIGHUP its agent; the log
    offsets before, per node."""
    marks = {n.name: len(log_text(n)) for n in lab.nodes.values()}
    for n in lab.nodes.values():
        with open(n.agent_conf, "w", encoding="utf-8") as f:
            f.write(conf_of(n))
        n.agent.send(signal.SIGHUP)
    return marks


def cross_node_switch(lab, pa, pb):
    """[network] cross_node vxlan -> none -> vxlan by SIGHUP on every node."""
    as_vxlan = lab.agent_config
    marks = hup_all(lab, lambda n: as_vxlan(n).replace("cross_node = vxlan",
                                                         "cross_node = none"))
    for n in lab.nodes.values():
        gone = wait(lambda n=n: not dev_exists(n), 20)
        said = wait(lambda n=n: "vxlan: cross_node is none: deleting %s" % DEV
                    in log_text(n)[marks[n.name]:], 10)
        told = "agent: reload: cross_node vxlan -> none" in log_text(n)[marks[n.name]:]
        via = [r for r in L.ipj(n.ns, "route", "show") if r.get("dev") == DEV]
        ok(gone and said and told and not via, "cross_node vxlan -> none (SIGHUP): %s: the "
           "agent says so and deletes %s, no route through it is left" % (n.name, DEV),
           {"device": dev_exists(n), "routes": via,
            "log": log_text(n)[marks[n.name]:][-1500:]})
    ok(not ping(pa, pb.ip4), "cross_node none: pods on node-a and node-b no longer reach "
       "each other (no overlay, routed underlay)")
    marks = hup_all(lab, as_vxlan)
    for n in lab.nodes.values():
        want = (5000, 4790) + want_overlay(lab, n)[2:]
        have = wait(lambda n=n, want=want: overlay(lab, n) == want and overlay(lab, n),
                    20) or overlay(lab, n)
        ok(have == want, "cross_node none -> vxlan (SIGHUP): %s: %s made again with its "
           "FDB entries and neighbours" % (n.name, DEV), {"have": have, "want": want})
    ok(wait(lambda: ping(pa, pb.ip4) and ping(pb, pa.ip6), 20),
       "cross_node none -> vxlan: pods on node-a and node-b ping each other again")


def confirmed(node):
    """{neighbour: seconds since it was last written} of node's permanent neighbours on
    the device (`ip -s neigh`: a write, even of the same MAC, resets "confirmed"; it
    sends no notification, so `ip monitor` cannot see it)."""
    return {n.get("dst"): n.get("confirmed") for n in L.ipj(node.ns, "-s", "neigh", "show",
                                                               "dev", DEV)
            if "PERMANENT" in n.get("state", [])}


def no_rewrites(lab, node):
    """Reconciles that change nothing write no neighbour: every permanent neighbour's
    "confirmed" age (ip -s neigh) grows through three reconciles."""
    settled = wait(lambda: confirmed(node) and all(
        (v or 0) >= 3 for v in confirmed(node).values()) and confirmed(node), 30)
    c0, r0, t0 = confirmed(node), reconciles(lab, node), time.monotonic()
    for _ in range(3):
        r = reconciles(lab, node)
        node.agent.send(signal.SIGHUP)
        wait(lambda r=r: (reconciles(lab, node) or 0) > (r or 0), 10)
    r1, c1 = reconciles(lab, node), confirmed(node)
    floor = int(time.monotonic() - t0) - 1
    young = {k: (c0.get(k), v) for k, v in c1.items() if (v or 0) < (c0.get(k) or 0) + floor}
    ok(settled and r0 is not None and r1 is not None and r1 >= r0 + 3 and c1 and not young,
       "neighbours: %d reconciles on %s that change nothing wrote none of its %d neighbours "
       "on %s (ip -s neigh: their confirmed age grew)" % ((r1 or 0) - (r0 or 0), node.name,
                                                          len(c1), DEV),
       {"reconciles": (r0, r1), "rewritten (before, after)": young, "settled": settled})


def restart_agent(lab, node):
    lab.stop_agent(node)
    lab.start_agent(node)
    lab.wait_agent_ready(node)


def reload_adopt():
    with L.Lab(cross_node="vxlan") as lab:
        a, b = lab.nodes["node-a"], lab.nodes["node-b"]
        kv = KubeVirt(lab)
        pa = kv.ordinary_pod("a", a)
        pb = kv.ordinary_pod("b", b)
        ok(ping(pa, pb.ip4) and ping(pb, pa.ip6), "reload: before, pods on node-a and node-b "
           "ping each other over VNI 4096")
        # ---- SIGHUP with another VNI and port on every node ---------------------------
        lab.agent_conf_extra = "[network]\nvxlan_vni = 5000\nvxlan_port = 4790\n"
        marks = {n.name: len(log_text(n)) for n in lab.nodes.values()}
        for n in lab.nodes.values():
            with open(n.agent_conf, "w", encoding="utf-8") as f:
                f.write(lab.agent_config(n))
            n.agent.send(signal.SIGHUP)
        for n in lab.nodes.values():
            want = (5000, 4790) + want_overlay(lab, n)[2:]
            have = wait(lambda n=n, want=want: overlay(lab, n) == want and overlay(lab, n),
                        20) or overlay(lab, n)
            said = wait(lambda n=n: "vxlan: configuration changed (vxlan_vni vxlan_port): "
                        "deleting %s" % DEV in log_text(n)[marks[n.name]:], 10)
            ok(have == want and said, "reload: %s: %s deleted (the log names vxlan_vni and "
               "vxlan_port) and created again with VNI 5000 port 4790, its FDB entries and "
               "neighbours" % (n.name, DEV), {"have": have, "want": want,
                                              "log": log_text(n)[marks[n.name]:][-1500:]})
        ok(wait(lambda: ping(pa, pb.ip4) and ping(pa, pb.ip6) and ping(pb, pa.ip4), 20),
           "reload: pods on node-a and node-b ping each other over VNI 5000 (v4, v6)")
        no_rewrites(lab, a)
        cross_node_switch(lab, pa, pb)
        # ---- a device of another VNI under our name: replaced -----------------------
        lab.stop_agent(a)
        L.sh("ip", "-n", a.ns, "link", "del", DEV)
        L.sh("ip", "-n", a.ns, "link", "add", DEV, "type", "vxlan", "id", "99", "dstport",
             "4790", "local", a.ip4, "nolearning")
        mark = len(log_text(a))
        lab.start_agent(a)
        lab.wait_agent_ready(a)
        want = (5000, 4790) + want_overlay(lab, a)[2:]
        have = wait(lambda: overlay(lab, a) == want and overlay(lab, a), 20) or overlay(lab, a)
        said = wait(lambda: "vxlan: %s exists with vni underlay not as configured (vni 99 "
                    "port 4790 local %s underlay 0;" % (DEV, a.ip4) in log_text(a)[mark:], 10)
        ok(have == want and said, "adopt: a %s with VNI 99 and no underlay left on node-a: "
           "the agent names what differs and replaces it (VNI 5000 port 4790)" % DEV,
           {"have": have, "want": want, "log": log_text(a)[mark:][-1500:]})
        ok(wait(lambda: ping(pa, pb.ip4) and ping(pb, pa.ip6), 20),
           "adopt: pods on node-a and node-b ping each other again")
        # ---- a device as configured: adopted as it is ---------------------------------
        before = ifindex(a)
        mark = len(log_text(a))
        restart_agent(lab, a)
        said = wait(lambda: "vxlan: adopted %s (ifindex %s)" % (DEV, before)
                    in log_text(a)[mark:], 15)
        ok(said and ifindex(a) == before and overlay(lab, a) == want,
           "adopt: a %s as configured is kept (same ifindex %s)" % (DEV, before),
           {"ifindex": ifindex(a), "log": log_text(a)[mark:][-1500:]})
        # ---- another kind of link under the name: refused ---------------------------
        lab.stop_agent(a)
        L.sh("ip", "-n", a.ns, "link", "del", DEV)
        L.sh("ip", "-n", a.ns, "link", "add", DEV, "type", "bridge")
        mark = len(log_text(a))
        lab.start_agent(a)
        lab.wait_agent_ready(a)
        said = wait(lambda: "vxlan: refusing to use or replace %s" % DEV in log_text(a)[mark:],
                    15)
        kind = (L.ipj(a.ns, "-d", "link", "show", "dev", DEV) or [{}])[0].get(
            "linkinfo", {}).get("info_kind")
        ok(said and kind == "bridge", "adopt: a bridge named %s is refused and left alone"
           % DEV, {"kind": kind, "log": log_text(a)[mark:][-1500:]})


def ping(pod, ip):
    p = pod_run(pod, "ping", "-q", "-c", "2", "-W", "5", ip)
    return p.returncode == 0


def pod_run(pod, *cmd):
    return subprocess.run(["ip", "netns", "exec", pod.ns] + list(cmd), capture_output=True,
                          text=True, timeout=30)


def main():
    names = ("overlay", "underlay routed", "ordinary", "A -> B", "B -> A", "router",
             "underlay ipv6", "reload", "neighbours", "cross_node", "adopt")
    if not L.agent_built() or not L.agent_handover():
        for n in names:
            T.skip(n, "dist/kvnet has no agent with the hand-over")
        return 0
    with L.Lab(convergence=TM.CONV, cross_node="vxlan") as lab:
        cap = os.path.join(lab.dir, "router.pcap.txt")
        dump = L.Proc(lab.router.prefix() + [
            "tcpdump", "-i", "fab0", "-n", "-l", "-U",
            "(src net %s and dst net %s) or (ip6 and src net %s and dst net %s) or "
            "udp port 4789" % (PODS4, PODS4, PODS6, PODS6)], cap)
        wait(lambda: "listening on" in open(cap).read(), 10)
        for n in lab.nodes.values():
            want = want_overlay(lab, n)
            have = wait(lambda n=n, want=want: overlay(lab, n) == want and overlay(lab, n),
                        20) or overlay(lab, n)
            ok(have == want, "overlay: %s: %s vni 4096 port 4789 mtu 1450, an FDB entry "
               "per other node, permanent neighbours for their InternalIPs" % (n.name, DEV),
               {"have": have, "want": want})
        a, b = lab.nodes["node-a"], lab.nodes["node-b"]
        r = L.ipj(a.ns, "route", "get", b.ip4)
        ok(r and r[0].get("gateway") == X.RTR4, "underlay routed: node-a reaches node-b via "
           "the router", r)
        kv = KubeVirt(lab)
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        other = kv.ordinary_pod("other", b)
        for dst, what in ((client.ip4, "pod@node-c v4"), (client.ip6, "pod@node-c v6"),
                          (L.API4, "API host v4"), (L.API6, "API host v6")):
            ok(ping(other, dst), "ordinary: a pod on node-b pings %s (%s)" % (what, dst))
        ok(ping(client, other.ip4) and ping(client, other.ip6),
           "ordinary: the pod on node-c pings the pod on node-b (v4, v6)")
        vm = kv.create_vm("vm-a", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "ordinary: every other node forwards vm-a's addresses to node-a over %s"
           % DEV, bad)
        run = TM.Run(lab, kv, vm, [("pod@node-c", client), ("api", "api")])
        for tgt, what in (("node-b", "A -> B"), ("node-a", "B -> A")):
            run.go(tgt, what)
            run.check(what)
        dump.stop()
        # one line per packet seen, starting with its time stamp; tcpdump prints a VXLAN
        # packet's inner frame on the line after it (no time stamp): not a packet
        lines = [l for l in open(cap).read().splitlines() if l[:1].isdigit() and " > " in l]
        udp = [l for l in lines if "VXLAN" in l or ".4789:" in l]
        clear = [l for l in lines if l not in udp]
        ok(udp and not clear, "router: tcpdump saw %d overlay packets (UDP 4789) and no "
           "pod-to-pod packet in the clear" % len(udp), clear[:5])
        T.note("router: %d UDP 4789 packets, %d pod-to-pod in the clear" % (len(udp), len(clear)))
    underlay_v6()
    reload_adopt()
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
