#!/usr/bin/env python3
"""Lab scenarios of the target's owner swap off the event loop (agent/swapq.h, the table's
CLAIMING state in agent/migrate.h), every agent with the peer path on (one key file):

  - slow API: every PUT of an IPAMBlock stalls (the test API server's "stall" fault)
    from before the announcement; A -> B: node-a (the source) and node-c route the VM via
    node-b from the target's message while the API (read with GET, not stalled) still
    names the source pod the active owner; node-b's agent answers /metrics meanwhile
    and reports the machine in state "claiming" (an agent doing the swap inline could do
    neither: its loop would be inside the PUT); the fault cleared, the swap lands
    (msg="migration owner taken", claiming -> live) and every node's first route change
    via node-b (its `ip -ts monitor route`) comes before the owner change as an outside
    watch of the blocks saw it;
  - the swap fails for good: before the announcement the VM's IPv4 allocation gets
    another pod as its alternate owner (so the target is not the alternate: the CAS
    answers EBUSY); B -> A: node-a goes live, its CAS fails, the table reverts it
    (msg="migration claim reverted", claiming -> target): no host route for the VM on
    node-a while the API still names node-b's pod, and node-a retracts its claim over
    the peer path: node-b and node-c drop the routes they took from it (msg="peer
    override dropped" why=retracted, not expired after PEER_HOLD_MS = 15 s) and every
    node forwards the VM to node-b again while the migration is still running; the
    migration then fails and the VM stays on node-b.
The cut-over round of the target (round_us, dataplane_us, owner_us on its "migration
live" line; swap_us of the answer) is printed. No time is asserted: only orders."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402
from test_peer import first_route_via, owner_change, peer_key, via, wait_for  # noqa: E402

ok = T.ok
CONV = 2
STALL_MS = 4000  # each stalled PUT; the checks below wait for conditions, not for this
G = "/apis/kvnet.io/v1/"
NAMES = ("slow API: every node routes to the target before the owner CAS lands",
         "slow API: the target's loop answers while its CAS waits (state claiming)",
         "slow API: the swap completes after the fault is cleared (claiming -> live)",
         "failed CAS: the target reverts (claiming -> target), no route, the source keeps it",
         "failed CAS: node-a retracts its claim, node-b and node-c route to node-b again")


def lines(lab, node, msg, since, vm):
    key = "%s/%s" % (vm.namespace, vm.name)
    return [f for f in lab.agent_lines(node) if f.get("msg") == msg and f.get("vmi") == key
            and (O._ts(f.get("ts")) or 0) >= since - 0.002]


def metric(lab, node, name):
    for line in lab.agent_metrics(node).splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def drops(lab, node, ips, since):
    """node's "peer override dropped" lines for any of ips since `since`."""
    return [f for f in lab.agent_lines(node) if f.get("msg") == "peer override dropped"
            and f.get("ip") in ips and (O._ts(f.get("ts")) or 0) >= since - 0.002]


def set_alternate(lab, vm, ip, owner):
    """Rewrite the alternate owner of ip's allocation in its IPAMBlock (a CAS PUT)."""
    h = lab.handle_name(vm.namespace, vm.name)
    st, obj = lab.api.get(G + "ipamblocks")
    for b in obj.get("items", []):
        hit = [a for a in L._allocs(b.get("spec")) if a.get("handle") == h and a.get("ip") == ip]
        if hit:
            hit[0]["alternateOwner"] = owner
            st, _ = lab.api.put(G + "ipamblocks/" + b["metadata"]["name"], b)
            return st
    return None


def round_note(what, live, taken):
    f = live[0] if live else {}
    T.note("%s: target cut-over round %s us (data plane %s us, owner action on the loop %s "
           "us); the owner answer came %s us after it was issued (CAS %s us, %s path)" % (
               what, f.get("round_us", "-"), f.get("dataplane_us", "-"), f.get("owner_us", "-"),
               taken.get("swap_us", "-"), taken.get("cas_us", "-"), taken.get("path", "-")))


def main():
    if not L.agent_built() or not L.agent_handover():
        for n in NAMES:
            T.skip(n, "dist/kvnet has no agent with the migration hand-over")
        return 0
    with L.Lab(convergence=CONV, agent_conf_extra=peer_key()[1]) as lab:
        a, b, c = (lab.nodes[n] for n in ("node-a", "node-b", "node-c"))
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-s", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "start: every node forwards vm-s to node-a", bad)
        ips = (vm.ip4, vm.ip6)

        # ---- A -> B with every IPAMBlock PUT stalled -----------------------------------
        seen = {}
        t0 = time.time()

        def stall(m):
            lab.api.fault(action="stall", ms=STALL_MS, method="PUT", path="/ipamblocks",
                          count=0)

        def at_cutover(m):
            seen["via"] = wait_for(lambda: all(all(via(lab, ip, b).values()) for ip in ips),
                                   timeout=STALL_MS / 1000.0)
            seen["t_via"] = time.time()
            seen["owners"] = lab.owners(vm.namespace, vm.name)  # GET: not stalled
            seen["claiming"] = metric(lab, b, 'kvnet_migration_endpoints{state="claiming"}')
            seen["taken_early"] = lines(lab, b, "migration owner taken", t0, vm)
            lab.api.clear_faults()

        def settle(m):
            seen["taken"] = wait_for(lambda: lines(lab, b, "migration owner taken", t0, vm),
                                     timeout=3 * STALL_MS / 1000.0 + 10)
            seen["answer"] = wait_for(lambda: lines(lab, b, "migration owner answered", t0, vm),
                                      timeout=3 * STALL_MS / 1000.0 + 10)
            O.wait_converged(lab, vm, m.tgt)

        m1 = kv.migrate(vm, "node-b", hooks={"Running": stall, "cutover": at_cutover},
                        settle=settle)
        own = seen.get("owners") or {}
        ok(seen.get("via") and own.get(vm.ip4, ("",))[0] == m1.src.uid
           and own.get(vm.ip6, ("",))[0] == m1.src.uid and not seen.get("taken_early"),
           NAMES[0] + " (node-a and node-c via node-b; the API still names the source pod)",
           {"forwarding": {ip: O.forwarding(lab, ip) for ip in ips}, "owners": own,
            "taken": seen.get("taken_early")})
        ok(seen.get("claiming") == 1, NAMES[1], {"claiming": seen.get("claiming")})
        taken = (seen.get("taken") or [{}])[0]
        answer = (seen.get("answer") or [{}])[0]
        t_own = owner_change(lab, vm, m1.tgt.uid, t0)
        firsts = {n.name: first_route_via(lab, n, vm.ip4, b.ip4, t0) for n in (a, c)}
        # the watch event of the first block written may move it before the answer does
        ok(taken.get("from") == "claiming" and taken.get("to") == "live"
           and taken.get("event") in ("swap_done", "owner_local")
           and answer.get("owner") == "swapped" and t_own is not None
           and all(t is not None and t < t_own for t in firsts.values()),
           NAMES[2] + " (node-a and node-c's first route via node-b before the owner "
           "change reached the outside block watch)",
           {"taken": taken, "answer": answer, "owner change": t_own,
            "first route via node-b": firsts})
        live = lines(lab, b, "migration live", t0, vm)
        round_note("slow API A -> B", live, answer)
        T.note("slow API A -> B: owner change seen %s ms after node-a's and %s ms after "
               "node-c's route change" % tuple(
                   "%.1f" % ((t_own - t) * 1000) if t and t_own else "-"
                   for t in (firsts["node-a"], firsts["node-c"])))
        okc, bad = O.wait_converged(lab, vm, m1.tgt)
        own = lab.owners(vm.namespace, vm.name)
        ok(okc and own.get(vm.ip4) == (m1.tgt.uid, ""), "slow API: after the migration every "
           "node forwards to node-b, its pod the only owner", {"bad": bad, "owners": own})

        # ---- B -> A with a CAS that cannot succeed ------------------------------------
        O.wait_metric(m1.tgt, ips, 1024, timeout=CONV + 15)
        t1 = time.time()
        seen = {}
        fake = {"uid": "00000000-0000-0000-0000-0000000000ff", "name": "someone-else",
                "namespace": vm.namespace, "node": "node-c"}

        def running(m):  # the memory copy runs; the target's guest announces early
            seen["put"] = set_alternate(lab, vm, vm.ip4, fake)
            L.sh("ip", "netns", "exec", m.tgt.ns, "arping", "-q", "-U", "-c", "1", "-i",
                 "eth0", "-S", vm.ip4, vm.ip4, check=False, timeout=10)
            seen["reverted"] = wait_for(
                lambda: lines(lab, a, "migration claim reverted", t1, vm), timeout=15)
            seen["routes_a"] = {ip: O.host_route(a, ip) for ip in ips}
            seen["owners"] = lab.owners(vm.namespace, vm.name)
            # the retraction: node-b and node-c drop node-a's claim, routes by the API
            seen["back"] = wait_for(lambda: O.converged(lab, vm, m.src)[0], timeout=12)
            seen["t_back"] = time.time()
            seen["bad"] = O.converged(lab, vm, m.src)[1]
            seen["drops"] = {n.name: drops(lab, n, ips, t1) for n in (b, c)}
            seen["retract"] = lines(lab, a, "migration claim reverted", t1, vm)

        m2 = kv.migrate(vm, "node-a", announce="none", fail_at="Running",
                        hooks={"Running": running})
        rv = (seen.get("reverted") or [{}])[0]
        mine = [r for ip in ips for r in (seen.get("routes_a") or {}).get(ip, [])
                if r.get("dev") == m2.tgt.host_if]
        own = seen.get("owners") or {}
        ok(seen.get("put") == 200 and rv.get("from") == "claiming" and rv.get("to") == "target"
           and rv.get("owner") == "failed" and not mine
           and own.get(vm.ip4, ("",))[0] == m2.src.uid, NAMES[3] + " (EBUSY: the target is "
           "not the alternate owner)", {"put": seen.get("put"), "reverted": rv,
                                        "routes via the target veth": mine, "owners": own})
        live = lines(lab, a, "migration live", t1, vm)
        round_note("failed CAS B -> A", live, rv)
        # node-b and node-c took node-a's claim message; node-a's retraction drops it
        dr = seen.get("drops") or {}
        why = {n: sorted({(f.get("ip"), f.get("node"), f.get("why")) for f in v})
               for n, v in dr.items()}
        sent = [f for f in lab.agent_lines(a) if f.get("msg") == "peer retract sent"
                and (O._ts(f.get("ts")) or 0) >= t1 - 0.002]
        ok(seen.get("back") and sent and all(
            {(ip, "node-a", "retracted") for ip in ips} <= set(why.get(n, []))
            for n in ("node-b", "node-c")), NAMES[4] + " (why=retracted, while the "
           "migration still runs)", {"bad": seen.get("bad"), "drops": why, "sent": sent})
        # from the failed CAS's answer (logged before the table reverts and retracts)
        ans = [f for f in lines(lab, a, "migration owner answered", t1, vm)
               if f.get("owner") == "failed"]
        t_ans = O._ts(ans[0].get("ts")) if ans else None
        t_c = first_route_via(lab, c, vm.ip4, b.ip4, t_ans) if t_ans else None
        if t_c:
            T.note("failed CAS: node-c's route via node-b back %.2f ms after node-a's CAS "
                   "answer (its ip monitor; the hold this replaces: 15000 ms)"
                   % ((t_c - t_ans) * 1000))
        okc, bad = O.wait_converged(lab, vm, m2.src, timeout=30)
        ok(okc and m2.outcome == "Failed", "failed CAS: the migration failed, every node "
           "forwards the VM to node-b", bad)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
