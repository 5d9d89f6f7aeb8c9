#!/usr/bin/env python3
"""Lab scenarios of a VM behind KubeVirt's bridge binding (kubevirt.py binding="bridge":
k6t-eth0 in the launcher pod enslaves the pod's eth0 and a tap, the guest in its own
namespace holds the pod IP and MAC and ARPs / solicits its gateways itself), on nodes
with no default route (issue #11: proxy ARP alone answered 169.254.1.1 only on a node
with a route to it).

  gateway     the guest reaches a pod on node-c and the API host, v4 and v6, and its
              neighbour table shows both gateways resolved to ee:ee:ee:ee:ee:ee
  upgrade     an endpoint made by the previous release (its host veth without
              169.254.1.1: taken off while the node's agent is stopped, the one difference
              of such an endpoint) gets the address back from the restarted agent, and the
              guest, its neighbour entry for 169.254.1.1 flushed, resolves it and reaches
              its gateways again
  migration   the bridge-bound VM migrates node-a -> node-b under 1 kHz echo streams;
              right after the announcement the target node has the guest's MAC as a
              neighbour entry for both addresses on the target veth (`ip -j neigh`), the
              first echo forwarded to the guest goes out with that MAC and no ARP request
              or neighbour solicitation for the VM's addresses precedes it (a tcpdump
              capture on the target veth); the guest then reaches its gateways there too
"""
import os
import struct
import subprocess
import sys
import time

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


def wait_neigh(node, dev, ips, mac, timeout=3.0):
    """Until node has ip -> mac on dev for every ip (bounded): (ok, what was seen)."""
    end = time.monotonic() + timeout
    while True:
        seen = {n.get("dst"): (n.get("lladdr"), n.get("state"))
                for fam in ("-4", "-6") for n in L.ipj(node.ns, fam, "neigh", "show",
                                                         "dev", dev)}
        good = all(seen.get(ip, (None,))[0] == mac for ip in ips)
        if good or time.monotonic() > end:
            return good, seen
        time.sleep(0.005)


def read_pcap(path):
    """Frames of a pcap file (tcpdump -w, Ethernet): [(t, bytes)]."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        out.append((sec + frac / (1e9 if nano else 1e6), data[off:off + incl]))
        off += incl
    return out


def classify(frame, ip4, ip6):
    """What a frame on the target veth is, as far as this test cares."""
    if len(frame) < 14:
        return None
    et = struct.unpack("!H", frame[12:14])[0]
    dst_mac = ":".join("%02x" % b for b in frame[0:6])
    src_mac = ":".join("%02x" % b for b in frame[6:12])
    if et == 0x0806 and len(frame) >= 42:
        op = struct.unpack("!H", frame[20:22])[0]
        if op == 1 and frame[38:42] == bytes(map(int, ip4.split("."))) and src_mac == GW_MAC:
            return ("arp-request", dst_mac)
    if et == 0x0800 and len(frame) >= 38 and frame[23] == 17:
        if frame[30:34] == bytes(map(int, ip4.split("."))) and \
                struct.unpack("!H", frame[36:38])[0] == 7:
            return ("echo4", dst_mac)
    if et == 0x86DD and len(frame) >= 58:
        import socket
        want = socket.inet_pton(socket.AF_INET6, ip6)
        if frame[20] == 58 and frame[54] == 135 and len(frame) >= 78 and frame[62:78] == want:
            return ("ns", dst_mac)
        if frame[20] == 17 and frame[38:54] == want and struct.unpack("!H", frame[56:58])[0] == 7:
            return ("echo6", dst_mac)
    return None


class Capture:
    """tcpdump -w on dev in node's namespace, from start() until stop()."""

    def __init__(self, lab, node, dev):
        self.path = os.path.join(lab.dir, "cap-%s-%s.pcap" % (node.name, dev))
        self.proc = L.Proc(node.prefix() + ["tcpdump", "-n", "-U", "-i", dev, "-w",
                                            self.path], self.path + ".log")
        end = time.monotonic() + 10
        while "listening on" not in self.proc.log():
            if not self.proc.alive() or time.monotonic() > end:
                raise RuntimeError("tcpdump on %s %s did not start: %s" % (
                    node.name, dev, self.proc.log()))
            time.sleep(0.01)

    def stop(self):
        self.proc.stop(sig=2)
        return read_pcap(self.path)


def gw_addrs(node, dev):
    return [a.get("local") for x in L.ipj(node.ns, "-4", "addr", "show", "dev", dev)
            for a in x.get("addr_info", []) if a.get("local") == GW4]


def upgrade(lab, vm, client):
    node, dev = vm.node, vm.pod.host_if
    ok(gw_addrs(node, dev) == [GW4], "upgrade: %s is on %s (made by this release)" % (
        GW4, dev), L.ipj(node.ns, "-4", "addr", "show", "dev", dev))
    lab.stop_agent(node)
    before = L.ipj(node.ns, "-4", "route", "show", "dev", dev, "proto", "75")
    node.run("ip", "addr", "del", GW4 + "/32", "dev", dev)
    # the kernel flushes a link's IPv4 routes with its last IPv4 address: put the host
    # routes back as the previous release had them, so only the address differs
    for r in before:
        node.run("ip", "route", "replace", r["dst"], "dev", dev, "proto", "75", "metric",
                 str(r.get("metric", 1024)), "scope", r.get("scope", "link"))
    after = L.ipj(node.ns, "-4", "route", "show", "dev", dev, "proto", "75")
    ok(after == before and before, "upgrade: previous release's endpoint: host routes as "
       "before, no %s on %s" % (GW4, dev), (before, after))
    L.sh("ip", "-n", vm.pod.guest_ns, "neigh", "flush", "dev", "eth0")
    good, out = guest_ping(vm.pod, client.ip4)
    gwn = [(n.get("dst"), n.get("lladdr"), n.get("state")) for n in L.ipj(
        vm.pod.guest_ns, "-4", "neigh", "show", "dev", "eth0") if n.get("dst") == GW4]
    ok(not good and all(x[1] is None for x in gwn), "upgrade: then the guest cannot reach %s: "
       "nobody answers its ARP for %s" % (client.ip4, GW4), (out, gwn))
    lab.start_agent(node)
    lab.wait_agent_ready(node)
    end = time.monotonic() + 10
    while gw_addrs(node, dev) != [GW4] and time.monotonic() < end:
        time.sleep(0.05)
    ok(gw_addrs(node, dev) == [GW4], "upgrade: the restarted agent put %s back on %s" % (
        GW4, dev), L.ipj(node.ns, "-4", "addr", "show", "dev", dev))
    L.sh("ip", "-n", vm.pod.guest_ns, "neigh", "flush", "dev", "eth0")
    check_gateway(vm, client, "upgrade: after the agent's restart")


def migration(lab, kv, vm, client, target, announce):
    """Migrate vm to target under echo streams from client; check the target's neighbour
    entries and the first forwarded echo on the target veth."""
    tn = lab.nodes[target]
    what = "migration %s -> %s (%s)" % (vm.node.name, target, announce)
    streams = [lab.stream(client, ip, "c->" + ("v6" if ":" in ip else "v4"))
               for ip in (vm.ip4, vm.ip6)]
    for s in streams:
        s.wait_answers(O.guest_name(vm, vm.pod), 100)
    st = {}

    def running(m):  # the target pod exists, the VM still runs on the source
        st["cap"] = Capture(lab, tn, m.tgt.host_if)

    def cutover(m):  # the target guest has announced itself (frames on the wire)
        st["neigh"] = wait_neigh(tn, m.tgt.host_if, (vm.ip4, vm.ip6), vm.mac)

    def settle(m):
        O.wait_converged(lab, vm, m.tgt)

    try:
        m = kv.migrate(vm, target, announce=announce, settle=settle,
                       hooks={"Running": running, "cutover": cutover})
        for s in streams:
            s.wait_answers(O.guest_name(vm, m.tgt), 100)
    finally:
        for s in streams:
            s.stop()
        frames = st["cap"].stop() if "cap" in st else []
    ok(m.outcome == "Succeeded", "%s: VMIM %s" % (what, m.outcome))
    good, seen = st["neigh"]
    ok(good, "%s: right after the announcement %s has %s and %s -> %s on %s (ip -j neigh)"
       % (what, target, vm.ip4, vm.ip6, vm.mac, m.tgt.host_if), seen)
    for fam, echo, ask in (("v4", "echo4", "arp-request"), ("v6", "echo6", "ns")):
        ev = [(t, classify(f, vm.ip4, vm.ip6)) for t, f in frames]
        ev = [(t, x) for t, x in ev if x and x[0] in (echo, ask)]
        first = next((i for i, (_, x) in enumerate(ev) if x[0] == echo), None)
        asks = [round(t - (m.t_announce or 0), 4) for t, x in ev[:first] if x[0] == ask] \
            if first is not None else None
        ok(first is not None and asks == [] and ev[first][1][1] == vm.mac,
           "%s: %s: the first echo forwarded on the target veth goes to %s with no %s "
           "before it (tcpdump)" % (what, fam, vm.mac, "ARP request" if ask != "ns" else
                                    "neighbour solicitation"),
           {"frames": len(frames), "first echo": ev[first] if first is not None else None,
            "solicitations before it (s after the announcement)": asks})
    check_gateway(vm, client, "%s: after it" % what)


def main():
    only = sys.argv[1:]
    if not L.agent_built():
        for name in ("gateway", "upgrade", "migration"):
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
        if not only or "upgrade" in only:
            upgrade(lab, vm, client)
        if not only or "migration" in only:
            # QEMU's RARP alone (guest_announce=off), then the guest's own GARP and NA
            migration(lab, kv, vm, client, "node-b", "rarp")
            migration(lab, kv, vm, client, "node-a", "garp,na")
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
