#!/usr/bin/env python3
"""Lab scenario: live migration on an L2 network (issue #13; agent/l2.h "Live migration").

The world of test/lab/l2lab.py: nodes node-a and node-b, each with trunk0 on a plain
bridge in a switch namespace, the legacy peer 198.18.100.1 on VLAN 100 (test/lab/
l2peer.py: raw 802.1Q frames, no 8021q), L2Networks vlan100 and vlan200 on trunk0. The VM
vm-l2 has eth0 on the pod network and net1 on vlan100 with its original address and MAC
(reserved with ipamctl before it exists). Under the peer's 1 kHz UDP echo stream over
VLAN 100 it migrates node-a -> node-b (the guest announces itself, on eth0: the
hand-over's announcement detection) and back (the guest says nothing at all: the
target-ready annotation makes it live); on net1 the guest never announces itself, kvnet
does. Checked per migration:
  - before the cut-over the target's net1 port is closed (kvnet_gate on ingress and
    egress): a frame the target VM sends is not forwarded (the switch never sees it) and
    a VLAN 100 broadcast from the peer does not reach it (tcpdump in the target pod),
    while what flows after the opening does;
  - tcpdump -e on the target node's switch port sees a GARP, an unsolicited NA and a RARP
    from the VM's MAC tagged vlan 100, after the guest resumed and before the first echo
    the target answered; the agent logs "l2 port open" with them (trigger announcement,
    then annotation);
  - the source's port is closed after the hand-over (kvnet_gate, before the source pod
    goes), the peer's stream resumes on the target, answers move source -> target once;
  - VLAN 200 ports (a listener in each node's vlan200 bridge) never see a frame of VLAN
    100: not the VM's, not the peer's, not the announcements.
Blackout (longest gap of the peer's stream) printed per migration."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import l2lab as W  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok, note = T.ok, T.note


def port_lines(lab, node, msg):
    return [x for x in lab.agent_lines(node) if x.get("msg") == msg]


def live_line(lab, node, host_if):
    for x in lab.agent_lines(node):
        if x.get("msg") == "migration live" and x.get("ifname") == host_if:
            return x
    return None


def migrate(lab, kv, w, vm, to, guest_announces, label):
    """One migration of vm to node `to` under the peer's stream, with every check."""
    src = vm.pod
    src_node, tgt_node = src.node, lab.nodes[to]
    name_src, name_tgt = "vm-l2@" + src_node.name, "vm-l2@" + to
    swp = "sw-" + to[-1]
    sw_cap = W.Capture(lab, w.sw, swp, "-Q", "in")
    st = w.stream(label)
    st.wait_answers(name_src, 50)
    seen = {}

    def scheduled(m):
        tgt = m.tgt
        port = tgt.sec["net1"]["host_if"]
        seen["closed_before"] = w.filters(tgt_node, port)
        seen["tcap"] = W.Capture(lab, tgt.ns, "net1", "-Q", "in", "ether", "proto", "0x88b5",
                                 "or", "udp", "port", "7")
        w.vm_send(tgt, "pre-out-" + label)
        w.peer_broadcast("pre-in-" + label)
        seen["pre_ts"] = time.time()

    def cutover(m):
        seen["resumed"] = m.t.get("resumed")

    def settle(m):
        st.wait_answers(name_tgt, 50)
        port = src.sec["net1"]["host_if"]
        seen["src_closed"] = W.wait(lambda: w.closed(src_node, port),
                                    "the source port closed", 20)
        seen["src_filters"] = w.filters(src_node, port)

    m = kv.migrate(vm, to, announce="garp" if guest_announces else "none", settle=settle,
                   hooks={"Scheduled": scheduled, "cutover": cutover})
    w.vm_send(vm.pod, "post-out-" + label)
    w.peer_broadcast("post-in-" + label)
    st.wait_answers(name_tgt, 20)
    W.wait(lambda: "post-out-" + label in sw_ascii(sw_cap), "post-out on the switch", 10)
    W.wait(lambda: "post-in-" + label in seen["tcap"].ascii(), "post-in in the VM", 10)
    res = st.stop()
    sw_cap.stop()
    seen["tcap"].stop()

    # closed before
    cb = seen.get("closed_before", {})
    ok(("1", "kvnet_gate") in [(str(p), n) for p, n in cb.get("ingress", [])] and
       ("1", "kvnet_gate") in [(str(p), n) for p, n in cb.get("egress", [])] and
       "kvnet_guard" in [n for _, n in cb.get("ingress", [])],
       "%s: the target's net1 port is closed before the cut-over (kvnet_gate on ingress "
       "and egress, the guard behind it)" % label, cb)
    sw_text = sw_ascii(sw_cap)
    ok("pre-out-" + label not in sw_text and "post-out-" + label in sw_text,
       "%s: a frame the target VM sent before the announcement was not forwarded (the "
       "switch saw the one sent after)" % label)
    ttext = seen["tcap"].ascii()
    ok("pre-in-" + label not in ttext and "post-in-" + label in ttext,
       "%s: a VLAN 100 broadcast from the peer did not reach the closed target (tcpdump in "
       "the target pod; the one after the opening did)" % label)

    # the relearn frames on the switch
    frames = W.relearn_lines(sw_cap.lines(), W.VM_MAC)
    kinds = sorted({k for _, k in frames})
    cut = res.cutover(name_src, name_tgt)
    first_tgt = min((res.reply[i][0] for i in res.reply if res.reply[i][1] == name_tgt),
                    default=None)
    t_relearn = min((t for t, _ in frames if t >= (seen.get("resumed") or 0)), default=None)
    ok(kinds == ["garp", "na", "rarp"], "%s: tcpdump -e on %s: GARP, NA and RARP from the "
       "VM's MAC %s tagged vlan 100" % (label, swp, W.VM_MAC), sw_cap.lines()[-30:])
    ok(t_relearn is not None and first_tgt is not None and t_relearn <= first_tgt,
       "%s: the tagged announcements came at the cut-over: after the guest resumed, before "
       "the first echo the target answered" % label,
       "relearn %s resumed %s first target answer %s" % (t_relearn, seen.get("resumed"),
                                                          first_tgt))
    opens = [x for x in port_lines(lab, tgt_node, "l2 port open")
             if x.get("port") == m.tgt.sec["net1"]["host_if"]]
    ok(opens and opens[-1].get("vlan") == "100" and opens[-1].get("garp") == "1" and
       opens[-1].get("na") == "1" and opens[-1].get("rarp") == "1" and
       opens[-1].get("mac") == W.VM_MAC,
       "%s: %s's agent logs l2 port open (VLAN 100, garp=1 na=1 rarp=1, the VM's MAC)"
       % (label, to), opens)
    live = live_line(lab, tgt_node, m.tgt.host_if)
    want = "announcement" if guest_announces else "annotation"
    ok(live and live.get("trigger") == want, "%s: the VM's hand-over went live by %s (its "
       "pod-network endpoint's machine; net1's port followed)" % (label, want), live)

    # the source port, the stream
    sf = seen.get("src_filters", {})
    ok(seen.get("src_closed") and ("1", "kvnet_gate") in
       [(str(p), n) for p, n in sf.get("egress", [])],
       "%s: the source's net1 port on %s is closed after the hand-over" % (label, src_node.name),
       sf)
    ok(cut["ok"], "%s: the peer's stream moved %s -> %s once, nothing lost outside the "
       "cut-over" % (label, name_src, name_tgt), cut)
    gap = res.longest_gap_ms()
    lag = (float(opens[-1]["ts"]) - float(opens[-1]["event_ts"])) * 1000 if opens else -1
    t_open = float(opens[-1]["ts"]) if opens else None
    note("%s: blackout %.1f ms (%d echoes lost of %d); source paused -> port open %.1f ms "
         "(live -> open %.2f ms), open -> announcements on the switch %.2f ms, -> first "
         "echo answered by the target %.1f ms" % (
             label, gap, cut["lost_total"], res.sent,
             (t_open - m.t["paused"]) * 1000 if t_open and m.t.get("paused") else -1, lag,
             (t_relearn - t_open) * 1000 if t_open and t_relearn else -1,
             (first_tgt - t_open) * 1000 if t_open and first_tgt else -1))
    return {"blackout_ms": gap, "lost": cut["lost_total"], "frames": frames}


def sw_ascii(cap):
    return cap.ascii()


def main():
    if not L.agent_built():
        T.skip("test_l2migrate", "dist/kvnet has no agent")
        return 0
    with L.Lab(nodes=("node-a", "node-b")) as lab:
        na, nb = lab.nodes["node-a"], lab.nodes["node-b"]
        w = W.L2World(lab)
        ok(True, "switch, trunks, L2Networks vlan100 and vlan200 ready on both nodes, the "
           "VM's address and MAC reserved")
        kv = KubeVirt(lab, secondary=w.secondary())
        vm = kv.create_vm("vm-l2", "node-a")
        s1 = vm.pod.sec.get("net1", {})
        ok(s1.get("ip4") == W.VM_IP4 and s1.get("ip6") == W.VM_IP6 and s1.get("mac") == W.VM_MAC,
           "vm-l2's net1 on VLAN 100 has its original address and MAC", s1)
        caps = {n.name: W.Capture(lab, w.port200(n), "eth0", "-Q", "in") for n in (na, nb)}
        r1 = migrate(lab, kv, w, vm, "node-b", True, "a->b")
        r2 = migrate(lab, kv, w, vm, "node-a", False, "b->a")
        for n, c in caps.items():
            c.stop()
            lines = c.lines()
            bad = [ln for ln in lines if W.VM_MAC in ln or W.PEER_MAC in ln or
                   "198.18.100." in ln or "2001:db8:100:" in ln or "vlan 100" in ln]
            ok(not bad, "%s: the VLAN 200 port saw no frame of VLAN 100 (%d frames seen)"
               % (n, len(lines)), bad[:10])
        note("blackout a->b %.1f ms, b->a %.1f ms (peer's 1 kHz stream over VLAN 100)"
             % (r1["blackout_ms"], r2["blackout_ms"]))
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
