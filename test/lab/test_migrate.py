#!/usr/bin/env python3
"""Lab scenarios of the live-migration hand-over (needs the agents): A -> B with 1 kHz echo
streams from a pod on node-c and from the API host (v4 and v6), back B -> A, a failed
migration, a lost announcement (the target-ready annotation is the fallback), an agent
restarted during a migration, the API server restarted during a migration, two VMs
migrating at once. Each checks the IP, where every node forwards it (`ip -j route get`),
kvnet's host routes and their metric (`ip -j route`: 512 during convergence, 1024 after),
the IPAM owners read through the API, and the traffic: every lost echo lies in the
hand-over window (after the source's last answer, before the target's first), answers go
source then target and never back. Blackouts are printed, not asserted."""
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
CONV = 2  # convergence_seconds of the agents: metric 512 -> 1024 after this
ANSWERS = 300  # echoes each stream must see answered before and after a migration


class Run:
    """One migration under traffic and everything observed about it."""

    def __init__(self, lab, kv, vm, streams_from):
        self.lab, self.kv, self.vm = lab, kv, vm
        self.streams_from = streams_from
        self.settled = None
        self.metric_cut = None

    def go(self, target, what, **kw):
        lab, vm = self.lab, self.vm
        ips = (vm.ip4, vm.ip6)
        streams = [lab.stream(src, ip, "%s->%s" % (tag, "v6" if ":" in ip else "v4"))
                   for tag, src in self.streams_from for ip in ips]
        src = vm.pod
        for s in streams:  # traffic reaches the VM on the source before the migration
            s.wait_answers(O.guest_name(vm, src), ANSWERS)

        def settle(m):
            self.settled = O.wait_converged(lab, vm, m.tgt)
            self.metric_cut = {ip: O.metric_of(m.tgt, ip) for ip in ips}

        m = self.kv.migrate(vm, target, settle=settle, **kw)
        for s in streams:  # and after it, on the pod that runs it now (the source if failed)
            s.wait_answers(O.guest_name(vm, vm.pod), ANSWERS)
        res = [s.stop() for s in streams]
        self.m, self.res, self.src = m, res, src
        return m

    def check(self, what, failed=False, trigger=None):
        lab, vm, m = self.lab, self.vm, self.m
        if trigger:  # what made the target's agent switch: the frame, not the annotation
            live = [f for _, n, f in O.agent_migration_lines(lab, vm, m.t_announce - 1.0)
                    if n == m.tgt.node.name and f.get("msg") == "migration live"]
            ok(bool(live) and live[0].get("trigger") == trigger,
               "%s: the target's agent went live on trigger=%s" % (what, trigger), live)
        ips = (vm.ip4, vm.ip6)
        want_pod = m.src if failed else m.tgt
        ok(m.outcome == ("Failed" if failed else "Succeeded"), "%s: VMIM %s" % (what, m.outcome))
        ok((vm.ip4, vm.ip6) == (want_pod.ip4, want_pod.ip6) and m.tgt.ip4 == m.src.ip4
           and m.tgt.ip6 == m.src.ip6, "%s: the target pod got the VM's addresses %s %s"
           % (what, vm.ip4, vm.ip6), (m.src.ip4, m.tgt.ip4, m.src.ip6, m.tgt.ip6))
        if not failed:
            ok(self.settled and self.settled[0], "%s: every node forwards %s and %s to %s"
               % (what, vm.ip4, vm.ip6, m.tgt.node.name), self.settled)
            # the target node's route monitor says which metric the route came with (the
            # snapshot after settling is only a clue: on a loaded machine settling can
            # outlast the convergence period, and the route is at 1024 by then)
            first = O.first_metrics(lab, m.tgt.node, ips, m.tgt.host_if, m.t["created"])
            ok(all(v == 512 for v in first.values()),
               "%s: at cut-over the target's host route has metric 512" % what,
               {"first route via the target's veth (ip monitor)": first,
                "after settling (ip route)": self.metric_cut})
        okc, bad = O.converged(lab, vm, want_pod)
        ok(okc, "%s: after the migration every node forwards the VM's addresses to %s"
           % (what, want_pod.node.name), bad)
        own = lab.owners(vm.namespace, vm.name)
        ok(own.get(vm.ip4) == (want_pod.uid, "") and own.get(vm.ip6) == (want_pod.uid, ""),
           "%s: IPAM active owner is %s, no alternate" % (what, want_pod.name), own)
        gone = m.tgt if failed else m.src
        stale = [(n.name, r) for n in lab.nodes.values() for ip in ips
                 for r in O.host_route(n, ip) if r.get("dev") == gone.host_if]
        ok(stale == [], "%s: no route via the %s pod's veth" % (
            what, "target" if failed else "source"), stale)
        for r in self.res:
            if failed:
                who = {w for _, _, w in r.who()}
                ok(not r.lost() and who == {O.guest_name(vm, m.src)},
                   "%s: %s: %d echoes, none lost, all answered on the source" % (
                       what, r.tag, r.sent), (len(r.lost()), r.who()))
                continue
            c = r.cutover(O.guest_name(vm, m.src), O.guest_name(vm, m.tgt), m.t_announce)
            ok(c["ok"], "%s: %s: %d echoes; answers from the source then the target; every "
               "lost one (%d) in the hand-over window" % (what, r.tag, r.sent, c["lost_window"]),
               c)
            T.note("%s %s: lost %d in the hand-over (%s after the announcement), blackout "
                   "from the announcement %s ms" % (
                       what, r.tag, c["lost_window"], c.get("lost_after_announce", "-"),
                       "%.1f" % c["blackout_ms"] if "blackout_ms" in c else "-"))
        if not failed:  # the target's cut-over round on its event loop (agent/mignode.h)
            cut = [f for _, n, f in O.agent_migration_lines(lab, vm, m.t["created"])
                   if n == m.tgt.node.name and f.get("round_us")]
            taken = [f for _, n, f in O.agent_migration_lines(lab, vm, m.t["created"])
                     if n == m.tgt.node.name and f.get("msg") == "migration owner answered"]
            T.note("%s: target cut-over round %s us (data plane %s us, owner action on the "
                   "loop %s us); owner swap answered %s us after it was issued" % (
                       what, *[cut[0].get(k, "-") if cut else "-"
                               for k in ("round_us", "dataplane_us", "owner_us")],
                       taken[0].get("swap_us", "-") if taken else "-"))
            okm, have = O.wait_metric(m.tgt, ips, 1024, timeout=CONV + 15)
            ok(okm, "%s: after the convergence period the route is back to metric 1024"
               % what, have)


def main():
    names = ("A -> B", "B -> A", "failed migration", "announcement lost", "RARP only",
             "unsolicited NA only",
             "agent restarted during a migration", "API server restarted during a migration",
             "two VMs at once")
    if not L.agent_built():
        for name in names:
            T.skip(name, "dist/kvnet has no agent yet")
        return 0
    if not L.agent_handover():
        for name in names:
            T.skip(name, "the agent has no live-migration hand-over yet (kvnet agent --help)")
        return 0
    with L.Lab(convergence=CONV) as lab:
        if not lab.agents_migrate():
            for name in names:
                T.skip(name, "the agent has no migration hand-over yet (no "
                             "kvnet_migrations_total in its /metrics)")
            return 0
        kv = KubeVirt(lab)
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        vm = kv.create_vm("vm-a", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "start: every node forwards vm-a's addresses to node-a", bad)
        run = Run(lab, kv, vm, [("pod@node-c", client), ("api", "api")])

        run.go("node-b", "A -> B")
        run.check("A -> B")
        run.go("node-a", "B -> A")
        run.check("B -> A")

        run.go("node-b", "failed migration", fail_at="Running")
        run.check("failed migration", failed=True)

        run.go("node-b", "announcement lost", announce="none")
        run.check("announcement lost")

        # QEMU's self-announce only (RARP, keyed by the MAC), then an IPv6 guest's
        # unsolicited NA only: each alone must move the VM's v4 and v6 routes
        run.go("node-a", "RARP only", announce="rarp")
        run.check("RARP only", trigger="announcement")
        run.go("node-b", "unsolicited NA only", announce="na")
        run.check("unsolicited NA only", trigger="announcement")

        def restart_target_agent(m):
            lab.stop_agent(m.tgt.node)
            lab.start_agent(m.tgt.node)
            lab.wait_agent_ready(m.tgt.node)

        def restart_transit_agent(m):  # node-c forwards both streams: it must drop nothing
            c = lab.nodes["node-c"]
            lab.stop_agent(c)
            lab.start_agent(c)
            lab.wait_agent_ready(c)

        run.go("node-a", "agent restart", hooks={"Scheduled": restart_transit_agent,
                                                 "TargetReady": restart_target_agent})
        run.check("agent restarted during a migration")

        api_gap = {}

        def api_stop(m):
            api_gap["down"] = time.time()
            lab.api_stop()

        def api_start(m):
            time.sleep(0.5)
            lab.api_start()
            api_gap["up"] = time.time()

        run.go("node-b", "API restart", hooks={"Running": api_stop, "cutover": api_start})
        run.check("API server restarted during a migration")

        # two VMs migrating at once, in opposite directions
        vm2 = kv.create_vm("vm-b", "node-a")
        okc, bad = O.wait_converged(lab, vm2, vm2.pod)
        ok(okc, "two VMs: vm-b forwarded to node-a everywhere", bad)
        run2 = Run(lab, kv, vm2, [("api", "api")])
        errs = []

        def go(r, target):
            try:
                r.go(target, "two at once")
            except Exception as e:  # reported below
                errs.append(repr(e))

        th = [threading.Thread(target=go, args=(run, "node-a")),
              threading.Thread(target=go, args=(run2, "node-b"))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        ok(errs == [], "two VMs: both migrations ran", errs)
        if not errs:
            run.check("two at once: vm-a B -> A")
            run2.check("two at once: vm-b A -> B")
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
