#!/usr/bin/env python3
"""Edges of live migration on an L2 network (issue #13): the target agent restarts while
the gate holds the target's port closed; a VM with only L2 interfaces migrates.

The world of test/lab/l2lab.py. vm-l2 (eth0 on the pod network, net1 on vlan100) migrates
node-a -> node-b under the legacy host's 1 kHz UDP echo stream over VLAN 100. Once the
target pod is set up (its net1 port closed by the CNI ADD: kvnet_gate), node-b's agent is
killed (SIGKILL) and started again, and the L2Network is touched so the restarted agent
re-applies the trunk. Checked: the port is still closed after the restart and the
re-apply (kvnet_gate on ingress and egress), a frame the target VM sends meanwhile does
not reach the switch and a VLAN 100 broadcast from the legacy host does not reach the
target pod; then the migration completes: the restarted agent opens the port when the
VM goes live (its log: "l2 port open"), the stream moves source -> target once and
nothing is lost outside the hand-over.

Then vm-l2b, a VM with only net1 (no interface on kvnet's pod network, so no endpoint and
no hand-over machine on any agent), migrates node-a -> node-b and its guest announces
nothing: the target port is closed until the target-ready annotation, then node-b's agent
opens it and sends GARP and RARP for the VM tagged vlan 100 (tcpdump -e on the switch),
node-a's closes the source port when the VMI moves, and the legacy host's stream follows."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import l2lab as W  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok, note = T.ok, T.note
IP_B, MAC_B = "198.18.100.11", "02:4b:56:10:00:0b"


def gated(f):
    return all(("kvnet_gate" in [n for _, n in f.get(h, [])]) for h in ("ingress", "egress"))


def main():
    if not L.agent_built():
        T.skip("test_l2edges", "dist/kvnet has no agent")
        return 0
    with L.Lab(nodes=("node-a", "node-b")) as lab:
        nb = lab.nodes["node-b"]
        w = W.L2World(lab)
        kv = KubeVirt(lab, secondary=w.secondary())
        vm = kv.create_vm("vm-l2", "node-a")
        st = w.stream("restart")
        st.wait_answers("vm-l2@node-a", 200)
        sw = W.Capture(lab, w.sw, "sw-b", "-Q", "in")
        seen = {}

        def scheduled(m):
            port = m.tgt.sec["net1"]["host_if"]
            seen["port"] = port
            seen["before"] = w.filters(nb, port)
            lab.stop_agent(nb, signal.SIGKILL)
            lab.start_agent(nb)
            lab.wait_agent_ready(nb)
            n0 = len([x for x in lab.agent_lines(nb) if "carries" in x.get("msg", "")])
            lab.api.patch(W.G + "/vlan100", {"metadata": {"labels": {
                "touched": str(time.time_ns())}}})
            try:
                W.wait(lambda: len([x for x in lab.agent_lines(nb)
                                    if "carries" in x.get("msg", "")]) > n0,
                       "node-b's agent re-applying trunk0", 20)
                seen["reapplied"] = True
            except RuntimeError:
                seen["reapplied"] = False
            seen["after"] = w.filters(nb, port)
            seen["tcap"] = W.Capture(lab, m.tgt.ns, "net1", "-Q", "in")
            w.vm_send(m.tgt, "restart-out")
            w.peer_broadcast("restart-in")
            w.vm_send(m.tgt, "restart-out")

        m = kv.migrate(vm, "node-b", hooks={"Scheduled": scheduled},
                       settle=lambda m: st.wait_answers("vm-l2@node-b", 200))
        res = st.stop()
        w.peer_broadcast("late-in")
        tcap = seen.get("tcap")
        try:
            W.wait(lambda: "late-in" in tcap.ascii(), "the late broadcast in the target", 10)
        except RuntimeError:
            pass
        sw.stop()
        tcap.stop()
        ok(gated(seen.get("before", {})), "the target's net1 port is closed after its CNI "
           "ADD (kvnet_gate on ingress and egress)", seen.get("before"))
        ok(gated(seen.get("after", {})) and seen.get("reapplied"),
           "node-b's agent killed and restarted, trunk0 re-applied by it: the port is still "
           "closed", seen)
        ok("restart-out" not in sw.ascii(), "a frame the target VM sent while closed did not "
           "reach the switch")
        text = tcap.ascii()
        ok("restart-in" not in text and "late-in" in text,
           "a VLAN 100 broadcast did not reach the closed target (one after the opening did)")
        opens = [x for x in lab.agent_lines(nb) if x.get("msg") == "l2 port open" and
                 x.get("port") == seen.get("port")]
        ok(m.outcome == "Succeeded" and opens, "the migration completed; the restarted agent "
           "opened the port when the VM went live", opens)
        cut = res.cutover("vm-l2@node-a", "vm-l2@node-b")
        ok(cut["ok"], "the legacy host's stream moved node-a -> node-b once, nothing lost "
           "outside the hand-over (blackout %.1f ms)" % res.longest_gap_ms(), cut)
        l2_only(lab, w)
    return T.status()


def l2_only(lab, w):
    """A VM with only L2 interfaces (no kvnet pod network: no endpoint, no hand-over
    machine) migrates node-a -> node-b and the guest announces nothing: the target-ready
    annotation opens the target's port (and kvnet announces the VM tagged on the trunk),
    the VMI's move closes the source's."""
    na, nb = lab.nodes["node-a"], lab.nodes["node-b"]
    for args in (("reserve", "--vm", "default/vm-l2b", "--ip", IP_B, "--mac", MAC_B,
                  "--network", "vlan100"),):
        p = w.ipamctl(*args)
        ok(p.returncode == 0, "ipamctl %s" % " ".join(args), p.stdout + p.stderr)
    kv = KubeVirt(lab, secondary=w.secondary(), routed=False)
    vm = kv.create_vm("vm-l2b", "node-a", announce="none")
    s1 = vm.pod.sec.get("net1", {})
    ok(vm.pod.host_if is None and s1.get("ip4") == IP_B and s1.get("mac") == MAC_B,
       "vm-l2b has only net1 on vlan100 (%s, %s), no interface on kvnet's pod network"
       % (IP_B, MAC_B), s1)
    st = w.stream("l2only", mac=MAC_B, ip=IP_B)
    st.wait_answers("vm-l2b@node-a", 200)
    sw = W.Capture(lab, w.sw, "sw-b", "-Q", "in")
    seen = {}

    def scheduled(m):
        seen["closed"] = gated(w.filters(nb, m.tgt.sec["net1"]["host_if"]))

    def settle(m):
        st.wait_answers("vm-l2b@node-b", 200)
        port = vm.pod.sec["net1"]["host_if"]
        try:
            seen["src_closed"] = W.wait(lambda: w.closed(na, port), "the source port closed",
                                        20)
        except RuntimeError:
            seen["src_closed"] = False

    try:
        m = kv.migrate(vm, "node-b", announce="none", hooks={"Scheduled": scheduled},
                       settle=settle)
    except RuntimeError as e:
        ok(False, "vm-l2b migrates node-a -> node-b", e)
        st.stop()
        sw.stop()
        return
    res = st.stop()
    W.wait(lambda: W.relearn_lines(sw.lines(), MAC_B, IP_B), "the relearn frames", 10)
    sw.stop()
    ok(seen.get("closed"), "its target port was closed before the cut-over")
    opens = [x for x in lab.agent_lines(nb) if x.get("msg") == "l2 port open" and
             x.get("mac") == MAC_B]
    ok(m.outcome == "Succeeded" and opens and opens[-1].get("garp") == "1" and
       opens[-1].get("rarp") == "1", "node-b's agent opened the port on the target-ready "
       "annotation and announced the VM (garp=1 rarp=1)", opens)
    kinds = sorted({k for _, k in W.relearn_lines(sw.lines(), MAC_B, IP_B)})
    ok("garp" in kinds and "rarp" in kinds, "tcpdump -e on sw-b: GARP and RARP from %s "
       "tagged vlan 100 (the guest said nothing)" % MAC_B, sw.lines()[-20:])
    ok(seen.get("src_closed"), "node-a's agent closed the source port when the VMI moved")
    cut = res.cutover("vm-l2b@node-a", "vm-l2b@node-b")
    ok(cut["ok"], "the legacy host's stream moved to vm-l2b@node-b once, nothing lost "
       "outside the hand-over (blackout %.1f ms)" % res.longest_gap_ms(), cut)


if __name__ == "__main__":
    sys.exit(main())
