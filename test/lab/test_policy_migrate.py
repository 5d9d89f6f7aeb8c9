#!/usr/bin/env python3
"""A VM under a NetworkPolicy live-migrates (issue #12): the policy holds on the source
and on the target from the first packet.

Three nodes, the agents with [agent] network_policy = enabled and [cni]
policy_setup_timeout_seconds = 10 (the target's CNI ADD answers only once its endpoint is
programmed). Namespace pm: the VM pm/vm-p on node-a, two prober pods on node-c (role=ok
and role=no) and the policy vm-p-from-ok (ingress to kubevirt.io/vm=vm-p only from
role=ok). Both probers stream 1 kHz UDP echo to the VM while it migrates node-a -> node-b
-> node-a. The denied stream must get zero answers at every moment, from source or
target; the allowed one loses echoes only in the hand-over windows. The control: with the
policy deleted the denied prober is answered.

Then fail open: node-c's agent is stopped (SIGSTOP) and its kvnet.conf says [cni]
policy_timeout_action = continue: a CNI ADD waits policy_setup_timeout_seconds, succeeds
and the plugin's log says it continued without the agent's confirmation.

run() is also `make demo DEMO_ARGS="--scenario policy"` (demo.py).
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import observe as O  # noqa: E402
import test_policy as TP  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

NS = "pm"
POLICY = "vm-p-from-ok"
CONF = ("network_policy = enabled\n\n[cni]\npolicy_setup_timeout_seconds = 10\n")


def setup(lab):
    """The namespace, the probers on node-c, the VM on node-a and its policy, in force
    (checked with nft -j on node-a). Returns (kv, vm, ok pod, no pod)."""
    lab.api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": NS, "labels": {"ns": NS}}})
    kv = KubeVirt(lab, NS)
    nc = lab.nodes["node-c"]
    p_ok = TP.mkpod(lab, kv, "prober-ok", nc, {"role": "ok"})
    p_no = TP.mkpod(lab, kv, "prober-no", nc, {"role": "no"})
    vm = kv.create_vm("vm-p", "node-a")
    r = lab.api.post(TP.NETPOL % NS, TP.np(NS, POLICY, {
        "podSelector": TP.sel(**{"kubevirt.io/vm": "vm-p"}),
        "ingress": [{"from": [{"podSelector": TP.sel(role="ok")}]}]}))
    if r.status != 201:
        raise RuntimeError("create policy: %s %s" % (r.status, r.raw[:300]))
    bad = TP.wait_tables(lab, {"node-a": {"vm": vm.pod.host_if}}, {("vm", "in")},
                         {"%s/%s" % (NS, POLICY)})
    if bad:
        raise RuntimeError("policy %s not in node-a's table: %s" % (POLICY, bad))
    return kv, vm, p_ok, p_no


def run(lab, say):
    """Migrate the VM there and back under the policy. Returns (ok, per migration
    [{"name", "src", "tgt", "blackout_ms", "lost_window", "denied_sent",
    "denied_answers", "outcome"}], summary {"allowed": StreamResult, "denied":
    StreamResult, "lost_outside": N, "control": the denied prober is answered once the
    policy is deleted})."""
    kv, vm, p_ok, p_no = setup(lab)
    say("VM %s/%s on node-a (%s) under NetworkPolicy %s/%s: ingress only from pods "
        "role=ok" % (NS, vm.name, vm.ip4, NS, POLICY))
    say("probers on node-c: %s role=ok (allowed), %s role=no (denied)" % (p_ok.ip4,
                                                                         p_no.ip4))
    allowed = lab.stream(p_ok, vm.ip4, "allowed (role=ok)")
    denied = lab.stream(p_no, vm.ip4, "denied (role=no)")
    runs = []
    try:
        allowed.wait_answers(O.guest_name(vm, vm.pod), 1000)
        for target in ("node-b", "node-a"):
            say("live migration %s -> %s" % (vm.node.name, target))
            m = kv.migrate(vm, target, settle=lambda m: O.wait_converged(lab, vm, m.tgt))
            allowed.wait_answers(O.guest_name(vm, vm.pod), 500)
            sent = denied.progress()["sent"]  # the denied stream keeps sending
            end = time.monotonic() + 10
            while denied.progress()["sent"] < sent + 200 and time.monotonic() < end:
                time.sleep(0.01)
            runs.append((m, time.time()))
    finally:
        ra, rd = allowed.stop(), denied.stop()
    # the control: without the policy the same prober is answered (the zero above is the
    # policy's, not a path that does not work)
    lab.api.delete(TP.NETPOL % NS + "/" + POLICY)
    ctl = lab.stream(p_no, vm.ip4, "control (role=no, no policy)")
    try:
        ctl.wait_answers(O.guest_name(vm, vm.pod), 200)
        control = True
    except RuntimeError as e:
        say("control: %s" % e)
        control = False
    finally:
        ctl.stop()
    out = []
    in_window = 0
    for m, t_end in runs:
        a = ra.window(m.t["created"], t_end)
        d = rd.window(m.t["created"], t_end)
        c = a.cutover(O.guest_name(vm, m.src), O.guest_name(vm, m.tgt), m.t_announce)
        in_window += c["lost_window"]
        out.append({"name": m.name, "src": m.src.node.name, "tgt": m.tgt.node.name,
                    "outcome": m.outcome, "blackout_ms": c.get("blackout_ms"),
                    "lost_window": c["lost_window"], "order_ok": c["ok"],
                    "denied_sent": d.sent, "denied_answers": len(d.reply)})
    outside = len(ra.lost()) - in_window
    ok = (len(out) == 2 and all(r["outcome"] == "Succeeded" and r["order_ok"] and
                                r["blackout_ms"] is not None and r["denied_sent"] > 0
                                for r in out)
          and rd.sent > 0 and len(rd.reply) == 0 and outside == 0 and control)
    return ok, out, {"allowed": ra, "denied": rd, "lost_outside": outside,
                     "control": control}


def fail_open(lab):
    """node-c's agent stopped, policy_timeout_action = continue: (pod or None, error,
    the plugin's log lines saying it continued)."""
    nc = lab.nodes["node-c"]
    kv = KubeVirt(lab, NS)
    with open(nc.agent_conf, encoding="utf-8") as f:
        orig = f.read()
    os.kill(nc.agent.p.pid, signal.SIGSTOP)
    pod, err = None, ""
    try:
        with open(nc.agent_conf, "a", encoding="utf-8") as f:
            f.write("\n[cni]\npolicy_timeout_action = continue\n")
        try:
            pod = TP.mkpod(lab, kv, "open", nc, {"role": "open"})
        except RuntimeError as ex:
            err = str(ex)
    finally:
        with open(nc.agent_conf, "w", encoding="utf-8") as f:
            f.write(orig)
        os.kill(nc.agent.p.pid, signal.SIGCONT)
    lines = []
    try:
        with open(nc.cni_log, encoding="utf-8", errors="replace") as f:
            lines = [x for x in f if "continuing without the agent's confirmation" in x]
    except OSError:
        pass
    return pod, err, lines


def main():
    import labtap as T
    if not L.agent_built():
        T.skip("policy migration lab", "dist/kvnet has no agent")
        return 0
    with L.Lab(log=T.note, convergence=5, agent_conf_extra=CONF) as lab:
        okr, out, s = run(lab, T.note)
        for r in out:
            ok = (r["outcome"] == "Succeeded" and r["order_ok"] and
                  r["blackout_ms"] is not None)
            T.ok(ok, "%s -> %s: the allowed stream moved to the target (blackout %.1f ms, "
                 "%d echoes lost in the hand-over)" % (r["src"], r["tgt"],
                                                       r["blackout_ms"] or 0.0,
                                                       r["lost_window"]), r)
            T.ok(r["denied_sent"] > 0 and r["denied_answers"] == 0,
                 "%s -> %s: the denied stream got zero answers from source or target (%d "
                 "sent)" % (r["src"], r["tgt"], r["denied_sent"]), r)
        rd, ra = s["denied"], s["allowed"]
        T.ok(rd.sent > 0 and len(rd.reply) == 0, "denied stream: zero answers at every "
             "moment (%d sent)" % rd.sent, rd.who())
        T.ok(s["lost_outside"] == 0, "allowed stream: no echo lost outside the hand-over "
             "windows (%d sent, %d answered)" % (ra.sent, len(ra.reply)), ra.runs()[:20])
        T.ok(s["control"], "control: with the policy deleted the denied prober is answered")
        pod, err, lines = fail_open(lab)
        for x in lines:
            T.note("plugin log: " + x.strip())
        T.ok(pod is not None and pod.ip4, "fail open: with node-c's agent stopped and "
             "policy_timeout_action = continue the CNI ADD succeeded after the timeout",
             err[-400:])
        T.ok(len(lines) == 1, "fail open: the plugin logged that it continued without the "
             "agent's confirmation", lines)
    leftover = [x for x in L.sh("ip", "netns", "list").stdout.split()
                if x.startswith("kvt-%d-" % L.PID)]
    T.ok(leftover == [], "lab cleaned up: no namespaces left", leftover)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
