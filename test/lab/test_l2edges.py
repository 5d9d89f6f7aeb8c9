#!/usr/bin/env python3
"""Edges of live migration on an L2 network (issue #13): the target agent restarts while
the gate holds the target's port closed.

The world of test/lab/l2lab.py. vm-l2 (eth0 on the pod network, net1 on vlan100) migrates
node-a -> node-b under the legacy host's 1 kHz UDP echo stream over VLAN 100. Once the
target pod is set up (its net1 port closed by the CNI ADD: kvnet_gate), node-b's agent is
killed (SIGKILL) and started again, and the L2Network is touched so the restarted agent
re-applies the trunk. Checked: the port is still closed after the restart and the
re-apply (kvnet_gate on ingress and egress), a frame the target VM sends meanwhile does
not reach the switch and a VLAN 100 broadcast from the legacy host does not reach the
target pod; then the migration completes: the restarted agent opens the port when the
VM goes live (its log: "l2 port open"), the stream moves source -> target once and
nothing is lost outside the hand-over."""
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
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
