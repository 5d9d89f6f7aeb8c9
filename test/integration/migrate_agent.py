#!/usr/bin/env python3
"""The migration state machine (agent/migrate.c, agent/mignode.c) in the real agent, on two
nodes of the netns lab (test/lab/lab.py: fabric bridge, test API server, `dist/kvnet agent`
per node, pods through the real CNI), checked from outside: `ip -j route` on each node,
the IPAM owners read through the API, the agents' /metrics and their log lines.

  1. A -> B, trigger = an `arping -U` from inside the target pod (the guest itself sends
     nothing): the target is dark until then (no host route), the announcement makes node-b
     install the /32 and /128 at metric 512 and take the active owner slot (source becomes
     the alternate), node-a stops routing via the source veth; VMIM Succeeded -> after the
     convergence period (1 s here) metric 1024. Log: msg="migration live"
     trigger=announcement latency_us=...; metrics: succeeded 1, a latency observation.
  2. B -> A with no announcement at all: the target-ready annotation is the fallback.
  3. A -> B that goes live on an announcement and then fails: the target's route goes, the
     owner goes back to the source, node-a routes via the source veth at 1024 again.
  4. A -> B failing before the cut-over: nothing moves.
  5. the target's agent restarted while the routes sit at 512: they stay (no delete in `ip
     monitor route`), then go 512 -> 1024 by add-then-delete.
  6. (second lab, convergence 600 s) A -> B, then B -> A while node-b is still converging
     (TimeWait): node-b stops its timer and its route at once (log from=timewait).
No time is asserted (waits are bounded only to turn a hang into a failure)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
sys.dont_write_bytecode = True
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
CONV = 1


def wait(fn, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.02)


def kv_routes(pod, ip):
    """kvnet's routes to ip on pod's node via pod's veth: [(dst, metric)]."""
    return sorted((r["dst"], r.get("metric", 0)) for r in pod.node.routes(ip)
                  if r.get("dev") == pod.host_if and str(r.get("protocol")) in ("75", "kvnet"))


def metrics_of(ip4, ip6, pod):
    return {ip: [m for _, m in kv_routes(pod, ip)] for ip in (ip4, ip6)}


def want_metric(vm, pod, metric):
    return wait(lambda: all(v == [metric] for v in metrics_of(vm.ip4, vm.ip6, pod).values()))


def dark(vm, pod):
    return all(v == [] for v in metrics_of(vm.ip4, vm.ip6, pod).values())


def owners_are(lab, vm, active, alternate):
    return wait(lambda: set(lab.owners(vm.namespace, vm.name).values()) == {(active, alternate)})


def mig_lines(lab, node, pod=None, msg=None):
    out = []
    for f in lab.agent_lines(node):
        if not f.get("msg", "").startswith("migration"):
            continue
        if pod is not None and f.get("pod") != pod.name:
            continue
        if msg is not None and f.get("msg") != msg:
            continue
        out.append(f)
    return out


def metrics(node):
    code = ("import urllib.request\n"
            "print(urllib.request.urlopen('http://127.0.0.1:9746/metrics',timeout=2)"
            ".read().decode())\n")
    p = node.run("python3", "-c", code, check=False)
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def arping(pod, ip4):
    subprocess.run(["ip", "netns", "exec", pod.ns, "arping", "-q", "-U", "-c", "1", "-i", "eth0",
                    "-S", ip4, ip4], check=False, timeout=10)


def scenario_announcement(lab, kv, vm):
    seen = {}
    na, nb = lab.nodes["node-a"], lab.nodes["node-b"]

    def running(m):
        seen["dark"] = dark(vm, m.tgt)
        seen["armed"] = wait(lambda: mig_lines(lab, nb, m.tgt, "migration target armed"))
        arping(m.tgt, vm.ip4)
        seen["512"] = want_metric(vm, m.tgt, 512)
        seen["owner"] = owners_are(lab, vm, m.tgt.uid, m.src.uid)
        seen["src_gone"] = wait(lambda: dark(vm, m.src))
        seen["live"] = mig_lines(lab, nb, m.tgt, "migration live")
        seen["taken"] = wait(lambda: mig_lines(lab, nb, m.tgt, "migration owner taken"))

    m = kv.migrate(vm, "node-b", announce="none", hooks={"Running": running})
    ok(seen.get("dark"), "A->B: the target pod is dark after its CNI ADD (no host route)")
    ok(seen.get("armed"), "A->B: node-b armed announcement detection for the target")
    ok(seen.get("512"), "A->B: arping -U in the target pod -> node-b routes the VM's /32 "
       "and /128 via the target veth at metric 512", metrics_of(vm.ip4, vm.ip6, m.tgt))
    ok(seen.get("owner"), "A->B: target is the active IPAM owner, source the alternate "
       "(read through the API)", lab.owners(vm.namespace, vm.name))
    ok(seen.get("src_gone"), "A->B: node-a stopped routing via the source veth",
       metrics_of(vm.ip4, vm.ip6, m.src))
    live = seen.get("live") or [{}]
    f = live[0]
    ok(f.get("trigger") == "announcement" and f.get("from") == "target"
       and f.get("to") == "claiming" and f.get("latency_us", "").isdigit()
       and f.get("announce_ts") and f.get("route_ts") and f.get("ip", "").count(",") == 1,
       "A->B: log msg=\"migration live\" trigger=announcement to=claiming with announce_ts, "
       "route_ts, latency_us and both addresses", f)
    t = (seen.get("taken") or [{}])[0]
    ok(t.get("from") == "claiming" and t.get("to") == "live" and t.get("event") in (
       "swap_done", "owner_local"), "A->B: then msg=\"migration owner taken\" claiming -> "
       "live (the owner CAS answered off the loop, or its watch event came first)", t)
    T.note("announcement -> route (agent's measure): %s us" % f.get("latency_us"))
    ok(want_metric(vm, m.tgt, 1024), "A->B: after VMIM Succeeded and %d s of convergence "
       "node-b routes at metric 1024" % CONV, metrics_of(vm.ip4, vm.ip6, m.tgt))
    conv = mig_lines(lab, nb, m.tgt, "migration converged")
    ok(conv and conv[-1].get("to") == "base", "A->B: log msg=\"migration converged\"", conv)
    mx = metrics(nb)
    ok(mx.get('kvnet_migrations_total{outcome="succeeded"}') == 1
       and mx.get("kvnet_migration_announce_to_route_seconds_count") == 1
       and mx.get('kvnet_migration_endpoints{state="base"}', 0) >= 1,
       "A->B: node-b metrics: 1 succeeded, 1 latency observation, endpoint back in base",
       {k: v for k, v in mx.items() if "migration" in k})
    src_lines = mig_lines(lab, na, m.src)
    ok([f.get("to") for f in src_lines if f.get("msg") == "migration source handed over"]
       == ["source"], "A->B: node-a logged msg=\"migration source handed over\"", src_lines)
    return m


def scenario_annotation(lab, kv, vm):
    seen = {}
    na = lab.nodes["node-a"]

    def annotated(m):
        seen["512"] = want_metric(vm, m.tgt, 512)
        seen["live"] = mig_lines(lab, na, m.tgt, "migration live")

    m = kv.migrate(vm, "node-a", announce="none", hooks={"annotated": annotated})
    f = (seen.get("live") or [{}])[0]
    ok(seen.get("512") and f.get("trigger") == "annotation",
       "B->A without any announcement: the target-ready annotation makes node-a route at 512 "
       "(trigger=annotation)", (f, metrics_of(vm.ip4, vm.ip6, m.tgt)))
    ok(want_metric(vm, m.tgt, 1024), "B->A: metric 1024 after convergence",
       metrics_of(vm.ip4, vm.ip6, m.tgt))
    ok(owners_are(lab, vm, m.tgt.uid, ""), "B->A: node-a's pod is the active owner, no "
       "alternate once the source pod is gone", lab.owners(vm.namespace, vm.name))
    return m


def scenario_failed_after_live(lab, kv, vm):
    seen = {}
    na, nb = lab.nodes["node-a"], lab.nodes["node-b"]
    src = vm.pod

    def running(m):
        arping(m.tgt, vm.ip4)
        seen["512"] = want_metric(vm, m.tgt, 512)
        seen["owner"] = owners_are(lab, vm, m.tgt.uid, m.src.uid)
        seen["tgt"] = m.tgt

    before = metrics(nb).get('kvnet_migrations_total{outcome="failed"}', 0)
    m = kv.migrate(vm, "node-b", announce="none", hooks={"Running": running},
                   fail_at="Running")
    ok(seen.get("512") and seen.get("owner"), "failed: the target went live first (512, owner)")
    ok(owners_are(lab, vm, src.uid, ""), "failed: the source pod is the active owner again",
       lab.owners(vm.namespace, vm.name))
    ok(want_metric(vm, src, 1024), "failed: node-a routes via the source veth at 1024 again",
       metrics_of(vm.ip4, vm.ip6, src))
    tgt_routes = [r for ip in (vm.ip4, vm.ip6) for r in nb.routes(ip)
                  if str(r.get("protocol")) in ("75", "kvnet") and r.get("dev", "").startswith("kv")]
    ok(tgt_routes == [], "failed: node-b has no host route for the VM", tgt_routes)
    fl = mig_lines(lab, nb, seen.get("tgt"), "migration failed")
    ok(fl and fl[0].get("outcome") == "failed", "failed: log msg=\"migration failed\" "
       "outcome=failed", fl)
    ok(metrics(nb).get('kvnet_migrations_total{outcome="failed"}', 0) == before + 1,
       "failed: node-b counts it")
    return m


def scenario_failed_before_cutover(lab, kv, vm):
    src = vm.pod
    m = kv.migrate(vm, "node-b", announce="none", fail_at="TargetReady")
    ok(m.outcome == "Failed" and owners_are(lab, vm, src.uid, "")
       and want_metric(vm, src, 1024),
       "failed before the cut-over: source keeps owner and route at 1024",
       (lab.owners(vm.namespace, vm.name), metrics_of(vm.ip4, vm.ip6, src)))


def scenario_unvouched(lab, kv, vm):
    """The agent's side of who may hold a VM's IP (kube/kubevirt.h): while KubeVirt names
    another pod as the migration's target, the dark target's own announcement does not
    make it live; once the VMI names it again, the next announcement does."""
    seen = {}
    dst = "node-b" if vm.pod.node.name == "node-a" else "node-a"
    nd = lab.nodes[dst]

    def running(m):
        ms = kv._migration_state(m)
        forged = dict(ms, targetPod="virt-launcher-someone-else")
        kv._patch_vmi(vm, {"status": {"migrationState": forged}})
        wait(lambda: mig_lines(lab, nd, m.tgt, "migration target armed"))
        arping(m.tgt, vm.ip4)
        seen["refused"] = wait(lambda: [
            ln for ln in lab.agent_lines(nd) if "may not go live" in ln.get("msg", "")
            and m.tgt.name in ln.get("msg", "")])
        seen["dark"] = dark(vm, m.tgt)
        kv._patch_vmi(vm, {"status": {"migrationState": ms}})
        seen["live"] = False

        def again():
            arping(m.tgt, vm.ip4)
            return wait(lambda: all(v == [512] for v in
                                    metrics_of(vm.ip4, vm.ip6, m.tgt).values()), timeout=1)
        seen["live"] = wait(again)

    m = kv.migrate(vm, dst, announce="none", hooks={"Running": running})
    ok(seen.get("refused"), "VMI names another target pod: %s's agent logs that the "
       "target may not go live" % dst, seen.get("refused"))
    ok(seen.get("dark"), "... and the target stays dark after its announcement",
       metrics_of(vm.ip4, vm.ip6, m.tgt))
    ok(seen.get("live"), "VMI names the target again: its next announcement makes it live "
       "(metric 512)", metrics_of(vm.ip4, vm.ip6, m.tgt))
    mx = metrics(nd)
    ok((mx.get('kvnet_migration_announcements_total{match="unvouched"}') or 0) >= 1,
       "the refusal is counted (kvnet_migration_announcements_total{match=\"unvouched\"})",
       {k: v for k, v in mx.items() if "announce" in k})


def host_route_events(lab, pod, ip, since):
    """[(t, "add"|"del", metric)] of kvnet's host route to ip via pod's veth, seen by the
    node's `ip -ts monitor route` since `since`."""
    out = []
    for t, line in lab.route_events(pod.node, since):
        w = line.split()
        deleted = w[:1] == ["Deleted"]
        if deleted:
            w = w[1:]
        if w[:1] != [ip] or pod.host_if not in w or "metric" not in w:
            continue
        out.append((t, "del" if deleted else "add", int(w[w.index("metric") + 1])))
    return out


def scenario_restart_at_512(lab, kv, vm):
    """The target's agent restarted while the VM's routes sit at migration_metric: the new
    agent keeps them (no delete of the /32 or /128, no failed action) and converges them
    512 -> 1024 by adding the new route before deleting the old one."""
    seen = {}
    target = "node-b" if vm.pod.node.name == "node-a" else "node-a"

    def annotated(m):
        seen["512"] = want_metric(vm, m.tgt, 512)
        seen["t"] = time.time()
        lab.stop_agent(m.tgt.node)
        lab.start_agent(m.tgt.node)
        lab.wait_agent_ready(m.tgt.node)
        seen["after"] = metrics_of(vm.ip4, vm.ip6, m.tgt)

    m = kv.migrate(vm, target, announce="garp", hooks={"annotated": annotated})
    ok(seen.get("512") and seen.get("after") == {vm.ip4: [512], vm.ip6: [512]},
       "restart at 512: the restarted agent on %s keeps the VM's routes at metric 512" % target,
       seen.get("after"))
    ok(want_metric(vm, m.tgt, 1024), "restart at 512: metric 1024 after convergence",
       metrics_of(vm.ip4, vm.ip6, m.tgt))
    failed = [f for f in mig_lines(lab, m.tgt.node, m.tgt, "migration action failed")]
    ok(failed == [], "restart at 512: no migration action failed in the restarted agent", failed)
    for ip in (vm.ip4, vm.ip6):
        ev = wait(lambda: [e for e in host_route_events(lab, m.tgt, ip, seen.get("t", 0))
                           if e[1:] == ("del", 512)] and
                  host_route_events(lab, m.tgt, ip, seen.get("t", 0)))
        # the restarted agent re-applies the override: an NLM_F_REPLACE of the same route,
        # which IPv6 swaps in place and reports as a new route (IPv4 reports nothing); no
        # delete may come before the 1024 route exists
        ops = [e[1:] for e in ev or [] if e[1:] != ("add", 512)]
        ok(ops == [("add", 1024), ("del", 512)],
           "restart at 512: %s: after the restart no delete until 'add metric 1024', then "
           "'delete metric 512' (ip monitor)" % ip, ev)


def scenario_second_in_timewait(lab, kv, vm):
    nb = lab.nodes["node-b"]
    m1 = kv.migrate(vm, "node-b", announce="garp")
    in_tw = wait(lambda: [f for f in mig_lines(lab, nb, m1.tgt) if f.get("to") == "timewait"])
    m2 = kv.migrate(vm, "node-a", announce="garp")
    ho = [f for f in mig_lines(lab, nb, m1.tgt, "migration source handed over")
          if f.get("from") == "timewait"]
    ok(in_tw and ho, "second migration during TimeWait: node-b hands over from timewait",
       mig_lines(lab, nb, m1.tgt))
    ok(want_metric(vm, m2.tgt, 512), "second migration: node-a routes at 512 (converging)",
       metrics_of(vm.ip4, vm.ip6, m2.tgt))
    ok(wait(lambda: dark(vm, m1.tgt)), "second migration: node-b no longer routes via its veth",
       metrics_of(vm.ip4, vm.ip6, m1.tgt))
    ok(owners_are(lab, vm, m2.tgt.uid, ""), "second migration: owner is node-a's new pod",
       lab.owners(vm.namespace, vm.name))


def main():
    if not L.agent_built():
        T.skip("migration state machine in the agent", "dist/kvnet has no agent yet")
        return 0
    with L.Lab(nodes=("node-a", "node-b"), convergence=CONV) as lab:
        if not lab.agents_migrate():
            T.skip("migration state machine in the agent", "the agent has no migration "
                   "hand-over yet (no kvnet_migrations_total in its /metrics)")
            return 0
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-a", "node-a")
        ok(want_metric(vm, vm.pod, 1024), "VM on node-a routed at 1024",
           metrics_of(vm.ip4, vm.ip6, vm.pod))
        scenario_announcement(lab, kv, vm)
        scenario_annotation(lab, kv, vm)
        scenario_failed_after_live(lab, kv, vm)
        scenario_failed_before_cutover(lab, kv, vm)
        scenario_unvouched(lab, kv, vm)
        scenario_restart_at_512(lab, kv, vm)
    # a convergence period no migration outlasts, so the second one surely meets TimeWait
    with L.Lab(nodes=("node-a", "node-b"), convergence=600) as lab:
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-a", "node-a")
        scenario_second_in_timewait(lab, kv, vm)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
