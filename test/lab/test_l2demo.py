#!/usr/bin/env python3
"""The L2 demo (issue #13): `make demo DEMO_ARGS="--scenario l2"` runs run() of this file,
and test/run --only lab runs it as a test (main()).

The world of test/lab/l2lab.py (nodes node-a and node-b, trunk0 on each to a plain
"upstream switch" bridge, the legacy host 198.18.100.1 on VLAN 100 sending real 802.1Q
frames from a raw socket, L2Networks vlan100 and vlan200 on trunk0). The VM's original
address and MAC come from an inventory imported with `ipamctl import` (network column
vlan100), as a user moving VMs off a hypervisor would; no L2 pod was added before the
VM, so the VM's routed eth0 must not take an address of vlan100's pools. Checked, each
printed as it is made:
  - the VM's net1 on VLAN 100 has its original IPv4, IPv6 and MAC (CNI result and
    `ip -j addr` in the pod), its eth0 none of vlan100's; vlan100's status.nodes counts
    its port on node-a, and after the migration on node-b only (no object touched: the
    agents count again on their pods' events);
  - the legacy host reaches it: its 1 kHz UDP echo stream is answered by the VM, the
    answers tagged vlan 100 on the switch (`tcpdump -e`);
  - spoofing from the VM (another MAC, a VLAN 200 tag, another IP, ARP for another IP, a
    DHCP server reply) is dropped: the switch never sees it, while a good frame sent after
    each attempt arrives;
  - the VM live-migrates node-a -> node-b under the stream: answers move from the source
    to the target once, nothing is lost outside the hand-over; the blackout (the stream's
    longest gap, from the legacy host) is printed;
  - VLAN 200 hosts (a port in each node's vlan200 bridge) get nothing of VLAN 100 during
    the whole run, broadcast included (the peer's VLAN 100 broadcasts, the VM's, the
    relearn GARPs), while a VLAN 200 broadcast from the switch reaches them."""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import l2lab as W  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

SPOOFS = (("othermac", "another source MAC"), ("hop", "a VLAN 200 tag (VLAN hopping)"),
          ("ipspoof", "another source IP"), ("arpspoof", "ARP for another IP"),
          ("dhcp", "a DHCP server reply"))
CTL200_MAC = "02:4c:00:00:02:01"  # the VLAN 200 control frame's source


def guest_addrs(ns, ifname):
    """(mac, [addresses]) of ifname in ns, by `ip -j addr` (not kvnet's reader)."""
    p = L.sh("ip", "-n", ns, "-j", "addr", "show", "dev", ifname, check=False)
    try:
        li = json.loads(p.stdout)[0]
    except (ValueError, IndexError):
        return None, []
    return li.get("address"), sorted(a["local"] for a in li.get("addr_info", [])
                                     if a.get("scope") == "global")


def ports_seen(w, want):
    """Until vlan100's status.nodes says want {node: ports} (bounded); True if it did.
    No object is touched: the agents count again on their pods' events."""
    try:
        W.wait(lambda: all((w.entry("vlan100", n) or {}).get("ports") == k
                           for n, k in want.items()), "vlan100's port counts %s" % want, 20)
        return True
    except RuntimeError:
        return False


def run(lab, say, check):
    """The scenario in lab (nodes node-a, node-b). say(text) narrates, check(cond, what,
    diag) records and prints one check. Returns {"blackout_ms", "lost"} of the migration."""
    w = W.L2World(lab, register="import")
    for cmd, out in w.registered:
        say("$ %s\n      %s" % (cmd, out.replace("\n", "\n      ")))
    na, nb = lab.nodes["node-a"], lab.nodes["node-b"]
    say("L2Networks vlan100 (VLAN 100) and vlan200 (VLAN 200) ready on trunk0 of node-a "
        "and node-b; the legacy host %s (%s) is on VLAN 100 behind the upstream switch"
        % (W.PEER_IP4, W.PEER_MAC))
    # the VLAN 200 hosts listen for the whole run
    caps200 = {n.name: W.Capture(lab, w.port200(n), "eth0", "-Q", "in") for n in (na, nb)}
    kv = KubeVirt(lab, secondary=w.secondary())
    vm = kv.create_vm("vm-l2", "node-a")
    s1 = vm.pod.sec.get("net1", {})
    mac, addrs = guest_addrs(vm.pod.ns, "net1")
    check(s1.get("ip4") == W.VM_IP4 and s1.get("ip6") == W.VM_IP6 and s1.get("mac") == W.VM_MAC
          and mac == W.VM_MAC and addrs == sorted([W.VM_IP4, W.VM_IP6]),
          "VM default/vm-l2 on node-a: net1 on VLAN 100 has its original address %s, %s and "
          "MAC %s (CNI result; ip -j addr in the pod)" % (W.VM_IP4, W.VM_IP6, W.VM_MAC),
          {"result": s1, "ip": (mac, addrs)})
    check(ports_seen(w, {"node-a": 1, "node-b": 0}),
          "vlan100's status.nodes counts the VM's port: node-a 1, node-b 0",
          [w.entry("vlan100", n) for n in ("node-a", "node-b")])
    check(vm.ip4 and not vm.ip4.startswith("198.18.100.") and
          not (vm.ip6 or "").startswith("2001:db8:100:"),
          "its eth0 on the pod network got %s, %s: none of vlan100's pools (imported before "
          "any L2 pod existed)" % (vm.ip4, vm.ip6))

    # reached from the legacy host
    up = W.Capture(lab, w.sw, "sw-a", "-Q", "in")
    st = w.stream("legacy")
    st.wait_answers("vm-l2@node-a", 300)

    def answers_on_switch():
        return [ln for ln in up.lines() if ln.split(" ", 2)[1].startswith(W.VM_MAC) and
                "vlan 100," in ln and W.VM_IP4 + ".7 >" in ln]
    try:  # tcpdump writes what it read; it reads the kernel's buffer when that times out
        W.wait(answers_on_switch, "the VM's answers on the switch", 10)
    except RuntimeError:
        pass
    up.stop()
    tagged = answers_on_switch()
    check(st.answers("vm-l2@node-a") >= 300 and tagged,
          "the legacy host %s reaches the VM by its old address: %d echoes answered by "
          "vm-l2@node-a; tcpdump -e on the switch: %d answers from %s tagged vlan 100"
          % (W.PEER_IP4, st.answers("vm-l2@node-a"), len(tagged), W.VM_MAC),
          "\n".join(up.lines()[-5:]) + "\n" + up.p.log())

    # spoofing from the VM
    sp = W.Capture(lab, w.sw, "sw-a", "-Q", "in")
    for kind, _ in SPOOFS:
        w.vm_send(vm.pod, "spoof-" + kind, kind=kind)
        w.vm_send(vm.pod, "after-" + kind)
    try:
        W.wait(lambda: "after-" + SPOOFS[-1][0] in sp.ascii(), "the last control frame", 10)
    except RuntimeError:
        pass
    sp.stop()
    text = sp.ascii()
    for kind, what in SPOOFS:
        check("spoof-" + kind not in text and "after-" + kind in text,
              "spoof attempt from the VM dropped: %s (the switch never saw it; the good frame "
              "sent after it arrived)" % what)

    # live migration under the legacy host's stream
    m = kv.migrate(vm, "node-b", settle=lambda m: st.wait_answers("vm-l2@node-b", 200))
    res = st.stop()
    cut = res.cutover("vm-l2@node-a", "vm-l2@node-b")
    gap = res.longest_gap_ms()
    s2 = vm.pod.sec.get("net1", {})
    check(m.outcome == "Succeeded" and cut["ok"],
          "live migration node-a -> node-b (%s): the legacy host's stream moved from "
          "vm-l2@node-a to vm-l2@node-b once, %d echoes lost, none outside the hand-over"
          % (m.outcome, cut["lost_total"]), cut)
    check(s2.get("ip4") == W.VM_IP4 and s2.get("ip6") == W.VM_IP6 and s2.get("mac") == W.VM_MAC,
          "on node-b net1 keeps %s, %s and %s" % (W.VM_IP4, W.VM_IP6, W.VM_MAC), s2)
    check(ports_seen(w, {"node-a": 0, "node-b": 1}),
          "vlan100's status.nodes follows the VM: node-a 0 ports (the source pod went), "
          "node-b 1", [w.entry("vlan100", n) for n in ("node-a", "node-b")])
    ann = res.cutover("vm-l2@node-a", "vm-l2@node-b", m.t_announce) if m.t_announce else {}
    say("blackout seen from the legacy host: %.1f ms (longest gap of its 1 kHz stream; "
        "%d of %d echoes lost; the guest's pause -> resume %.1f ms); from the guest's GARP "
        "on the wire to the first echo the target answered: %s ms" % (
            gap, cut["lost_total"], res.sent,
            (m.t["resumed"] - m.t["paused"]) * 1000 if m.t.get("resumed") else -1,
            "%.1f" % ann["blackout_ms"] if "blackout_ms" in ann else "n/a"))

    # VLAN 200 isolation, broadcast included
    w.peer_broadcast("bcast100")
    w.vm_send(vm.pod, "vmbcast100")
    w.peer_broadcast("ctl200", vid=200, mac=CTL200_MAC)
    for n, c in caps200.items():
        try:
            W.wait(lambda c=c: "ctl200" in c.ascii(), "the VLAN 200 control on " + n, 10)
        except RuntimeError:
            pass
        c.stop()
        text, lines = c.ascii(), c.lines()
        bad = [ln for ln in lines if W.VM_MAC in ln or W.PEER_MAC in ln or "198.18.100." in ln
               or "2001:db8:100:" in ln or "vlan 100" in ln]
        check(not bad and "bcast100" not in text and "vmbcast100" not in text and
              "ctl200" in text,
              "%s: the VLAN 200 host got no frame of VLAN 100 (%d frames seen, none from the "
              "VM or the legacy host, no broadcast of theirs); a VLAN 200 broadcast reached it"
              % (n, len(lines)), bad[:10])
    return {"blackout_ms": gap, "lost": cut["lost_total"]}


def main():
    if not L.agent_built():
        T.skip("test_l2demo", "dist/kvnet has no agent")
        return 0
    t0 = time.monotonic()
    with L.Lab(nodes=("node-a", "node-b")) as lab:
        r = run(lab, T.note, T.ok)
    T.note("the L2 demo in %.0f s" % (time.monotonic() - t0))
    T.note("blackout %.1f ms" % r["blackout_ms"])
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
