#!/usr/bin/env python3
"""make demo — a VM live-migrates between nodes and its traffic follows.

Starts a 3-node lab on this machine (network namespaces, the test API server with the
kubernetes datastore, a kvnet agent per node), creates a VM on node-a, streams 1 kHz UDP
echo to it from a pod on node-c and from the API-server host, live-migrates it to node-b
and back, and prints for each migration a timeline relative to the VM's announcement (the
kernel timestamp of its gratuitous ARP on the wire): target ready, announcement, the route
switching on each node, the IPAM owner swapped, the route back to normal; then the
blackout in ms. The summary counts every echo lost outside the hand-over windows (start-up
and between migrations included) and checks the VM's addresses against the CNI ADD result
of every pod that ran it; either failing makes the exit status 1. Everything is removed at
the end, also on Ctrl-C (with --keep the lab's files stay).

    test/lab/demo.py [--convergence S] [--announce garp|rarp|na|none] [--keep] [--qemu]
                     [--peer on|off]
    test/lab/demo.py --scenario flows [--keep]
    test/lab/demo.py --scenario policy [--keep]
    test/lab/demo.py --scenario l2 [--keep]

--scenario flows (issue #14): the agents record flows and enforce NetworkPolicy; the VM is
under two policies (allow-clients: TCP 8080 from the pods client-b and client-c;
allow-api-host: TCP 9090 from the API host); pods on node-b and node-c and the API host
connect to the VM over TCP, the VM connects to the API host (its egress is not isolated),
and the pod client-d on node-c sends UDP datagrams to the VM's 8080, which its ingress
default deny drops; the VM migrates node-a -> node-b and the traffic runs again; prints
the blast-radius table of the VM (`kvnet flows --vm` over every node's flow log) and
writes its SVG picture (build/demo-flows.svg). Exit 0 only when the report lists exactly
the peers, ports, directions and verdicts the demo generated (the allowed ones naming the
policy that admitted them, the denied one "ingress-default-deny"), with at least the
bytes (and denied datagrams) it sent, from both nodes.

--scenario policy (issue #12): the agents enforce NetworkPolicy; the VM is under a policy
allowing ingress only from pods role=ok; probers role=ok and role=no on node-c stream 1 kHz
UDP echo to it while it migrates node-a -> node-b -> node-a (test_policy_migrate.py).
Prints per migration the allowed stream's blackout and the denied stream's answers. Exit
0 only when the denied prober got zero answers from source or target at every moment and
the allowed one lost echoes only in the hand-over windows.

--scenario l2 (issue #13): a VM on the L2Network vlan100 (VLAN 100 on a trunk to an
upstream switch) with its original IP and MAC, imported with `ipamctl import`; the legacy
host on VLAN 100 reaches it, spoofing from it is dropped, it live-migrates node-a ->
node-b (blackout from the legacy host printed), VLAN 200 hosts get nothing of VLAN 100
(test_l2demo.py). Each check is printed as it is made; exit 0 only when all held.

--qemu (`make demo DEMO_ARGS=--qemu`): the VM is a real QEMU guest (test/lab/qemuvm.py,
needs qemu-system-x86) migrated by QMP; prints the guest pause and per stream the stall.

--peer off: the agents without the agent-to-agent cut-over path (no cluster key): the other
nodes learn of the move through the API, as before issue #11 (default on, a throw-away key).
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402


def say(msg):
    print("  " + msg, flush=True)


def head(msg):
    print("\n== " + msg, flush=True)


def migrate(lab, kv, vm, target, streams, announce, convergence):
    src_node = vm.node.name
    head("live migration of %s: %s -> %s" % (vm.name, src_node, target))
    m = kv.migrate(vm, target, announce=announce,
                   settle=lambda m: O.wait_converged(lab, vm, m.tgt))
    okc, bad = O.converged(lab, vm, vm.pod)
    t_ann = m.t_announce or m.t.get("target_ready_annotation")
    # the route returns to its normal metric after the convergence period
    okm, have = O.wait_metric(vm.pod, (vm.ip4, vm.ip6), 1024, timeout=convergence + 15)
    t_end = time.time()
    return m, t_ann, okc and okm, (bad, have), t_end


def report(lab, vm, m, t_ann, results, until):
    """Print the migration's timeline and per stream its losses. Returns (worst
    blackout ms, [echoes lost in the hand-over window, per stream])."""
    ev = O.timeline(lab, m, results, until)
    what = "announcement (%s)" % ",".join(k for k, t in m.announce.items() if t) \
        if m.t_announce else "target-ready annotation (no announcement)"
    print("  time relative to the %s:" % what)
    for line in O.fmt_timeline([e for e in ev if e[0] >= m.t.get("TargetReady", 0) - 1e-3],
                               t_ann):
        print("    " + line)
    worst = 0.0
    window = []
    for r in results:
        c = r.cutover(O.guest_name(vm, m.src), O.guest_name(vm, m.tgt), m.t_announce)
        b = c.get("blackout_ms")
        worst = max(worst, b or 0.0)
        window.append(c["lost_window"])
        print("  %-22s lost %3d echoes in the hand-over (%d after the announcement), "
              "%d elsewhere; blackout %s ms" % (
                  r.tag + ":", c["lost_window"], c.get("lost_after_announce", 0),
                  c["lost_outside"], "%.1f-%.1f" % (c["blackout_lo_ms"], b)
                  if b is not None else "n/a"))
    return worst, window


def addresses_kept(vm, orig, pods):
    """[(pod, addresses)] for every pod whose CNI ADD result does not carry exactly the
    VM's original addresses."""
    bad = []
    for pod in pods:
        got = sorted(ip["address"].split("/")[0] for ip in (pod.result or {}).get("ips", []))
        if got != sorted(orig):
            bad.append((pod, got))
    return bad


def demo_policy(ns, vm, name, port, cidrs):
    """A NetworkPolicy admitting TCP port to the VM from the addresses cidrs."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {"matchLabels": {"kubevirt.io/vm": vm.name}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"ipBlock": {"cidr": c}} for c in cidrs],
                                  "ports": [{"protocol": "TCP", "port": port}]}]}}


def flows_scenario(a):
    """The blast-radius demo (--scenario flows)."""
    import test_flows as TF
    import test_flows_policy as TP
    head("kvnet demo: who talks to this VM? (flow records and their policies, across a "
         "live migration)")
    procs = []
    with TP.PolicyFlowLab(log=say, convergence=a.convergence, keep=a.keep) as lab:
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-a", "node-a")
        pb = kv.ordinary_pod("client-b", lab.nodes["node-b"])
        pc = kv.ordinary_pod("client-c", lab.nodes["node-c"])
        pd = kv.ordinary_pod("client-d", lab.nodes["node-c"])
        ns = kv.namespace
        pols = {"allow-clients": (8080, [pb.ip4 + "/32", pc.ip4 + "/32"]),
                "allow-api-host": (9090, [L.API4 + "/32"])}
        for name, (port, cidrs) in pols.items():
            r = lab.api.post(TP.NETPOL % ns, demo_policy(ns, vm, name, port, cidrs))
            if r.status != 201:
                say("NetworkPolicy %s NOT created: %s" % (name, r.status))
                return 1
        TF.start_server(lab, None, 7070, procs)
        want = TF.expected(vm, pb, pc)
        # the verdict and policies each peer's row must carry
        verdict = {(pb.ip4, 8080, "ingress"): ("allow", "policy", ["%s/allow-clients" % ns]),
                   (pc.ip4, 8080, "ingress"): ("allow", "policy", ["%s/allow-clients" % ns]),
                   (L.API4, 9090, "ingress"): ("allow", "policy",
                                               ["%s/allow-api-host" % ns]),
                   (L.API4, 7070, "egress"): ("allow", "no-policy", []),
                   (pd.ip4, 8080, "ingress"): ("deny", "ingress-default-deny",
                                               sorted("%s/%s" % (ns, n) for n in pols))}
        want[(pd.ip4, 8080, "ingress")] = ("pod", "%s/%s" % (ns, pd.name))
        sent = TF.CONNS * TF.PAYLOAD
        denied_sent = 0

        def isolated(node):
            return TP.wait_for(lambda: "ingress" in TP.deny_counters(node, vm.pod.host_if),
                               20)

        def deny_traffic(node):
            """Send the denied datagrams; how many the VM's ingress default deny on node
            dropped (its counter in `nft -j`, read until it stops growing)."""
            veth = vm.pod.host_if
            before = TP.deny_counters(node, veth).get("ingress", (0, 0))[0]
            s = L.sh("ip", "netns", "exec", pd.ns, "python3", "-c", TP.SENDER, vm.ip4,
                     "8080", str(TP.DENIED_DGRAMS), str(TP.DGRAM), check=False)
            if "sent" not in s.stdout:
                return 0
            got = TP.wait_for(lambda: (lambda c: c if c - before >= TP.DENIED_DGRAMS
                                       else None)(
                TP.deny_counters(node, veth).get("ingress", (0, 0))[0]), 5)
            n = (got or TP.deny_counters(node, veth).get("ingress", (0, 0))[0]) - before
            say("%s's ingress default deny on %s dropped %d of the %d datagrams (nft -j)"
                % (vm.name, node.name, n, TP.DENIED_DGRAMS))
            return n
        try:
            say("VM %s/%s on node-a (%s); clients %s, %s on node-b, %s, %s on node-c, the "
                "API host %s" % (ns, vm.name, vm.ip4, pb.name, pb.ip4, pc.name, pc.ip4,
                                 L.API4))
            good = bool(isolated(lab.nodes["node-a"]))
            say("policies %s programmed on node-a: %s" % (", ".join(sorted(pols)),
                                                          "yes" if good else "NO"))
            g1, _ = TF.traffic(lab, vm, pb, pc, procs)
            denied_sent += deny_traffic(lab.nodes["node-a"])
            say("traffic: %d TCP connections of %d bytes from each client (ports 8080, "
                "9090) and from the VM to the API host (7070); %d UDP datagrams from %s "
                "to 8080 (denied)" % (TF.CONNS, TF.PAYLOAD, TP.DENIED_DGRAMS, pd.name))
            for p in procs[1:]:
                p.stop()
            del procs[1:]
            m = kv.migrate(vm, "node-b")
            say("live migration node-a -> node-b: %s" % m.outcome)
            good = good and bool(isolated(lab.nodes["node-b"]))
            g2, _ = TF.traffic(lab, vm, pb, pc, procs)
            denied_sent += deny_traffic(lab.nodes["node-b"])
            say("the same traffic again, now to the VM on node-b")
            good = good and g1 and g2

            def done(rows):
                for k in want:
                    r = rows.get(k, {})
                    if set(r.get("nodes", [])) != {"node-a", "node-b"}:
                        return False
                    if verdict[k][0] == "deny":
                        if r.get("packets_in", 0) < denied_sent:
                            return False
                    elif r.get("bytes_in" if k[2] == "ingress" else "bytes_out", 0) \
                            < 2 * sent:
                        return False
                return True
            rows = TF.wait_rows(lab, vm, want, done, timeout=40)
        finally:
            for p in procs:
                p.stop()
        files = TF.flow_logs(lab)
        head("kvnet flows --vm %s/%s  (flow logs of %s)" % (ns, vm.name,
                                                             ", ".join(lab.nodes)))
        table = L.sh(L.KVNET, "flows", "--vm", "%s/%s" % (ns, vm.name), *files,
                     check=False)
        print(table.stdout, end="", flush=True)
        svg = os.path.join(L.ROOT, "build", "demo-flows.svg")
        os.makedirs(os.path.dirname(svg), exist_ok=True)
        pic = L.sh(L.KVNET, "flows", "--vm", "%s/%s" % (ns, vm.name), "-o", "svg",
                   "--out", svg, *files, check=False)
        say("picture: %s" % (svg if pic.returncode == 0 else "NOT written: " + pic.stderr))
        wrong = []
        if set(rows) != set(want):
            wrong.append("peers %s, want %s" % (sorted(rows), sorted(want)))
        for k, (kind, label) in want.items():
            r = rows.get(k, {})
            act, reason, names = verdict[k]
            deny = act == "deny"
            side = "bytes_in" if k[2] == "ingress" else "bytes_out"
            if (r.get("peer_kind") != kind or r.get("peer") != (label or k[0]) or
                    r.get("proto") != ("udp" if deny else "tcp") or
                    (r.get("packets_in", 0) != denied_sent or not denied_sent if deny else
                     r.get(side, 0) < 2 * sent) or
                    r.get("action") != act or r.get("reason") != reason or
                    r.get("policies") != names or
                    set(r.get("nodes", [])) != {"node-a", "node-b"}):
                wrong.append("%s:%d %s: %s" % (k[0], k[1], k[2], r))
        # the table a person reads says the same
        for k, (kind, label) in want.items():
            act, reason, names = verdict[k]
            line = [x for x in table.stdout.splitlines()
                    if x.startswith((label or k[0]) + " ") and " %d/" % k[1] in x
                    and " %s " % k[2] in x]
            cell = ",".join(names) if reason == "policy" else \
                reason + (":" + ",".join(names) if names else "")
            if not line or " %s " % act not in line[0] or cell not in line[0]:
                wrong.append("table row of %s:%d %s lacks %s %s" % (k[0], k[1], k[2], act,
                                                                   cell))
        ok = good and m.outcome == "Succeeded" and pic.returncode == 0 and not wrong
        head("summary")
        if ok:
            say("the report matches the traffic: %d peers, their ports, directions and "
                "verdicts (allowed by %s; %s denied by the ingress default deny, %d "
                "datagrams), from node-a before and node-b after the migration"
                % (len(want), " and ".join(sorted(pols)), pd.name, denied_sent))
        else:
            say("the report does NOT match the traffic: %s" % "; ".join(wrong or ["traffic "
                                                                            "failed"]))
    return 0 if ok else 1


def policy_scenario(a):
    """A VM under a NetworkPolicy live-migrates (--scenario policy)."""
    import test_policy_migrate as PM
    t_start = time.time()
    head("kvnet demo: a VM's NetworkPolicy holds from the first packet on every node it "
         "runs on")
    with L.Lab(log=say, convergence=a.convergence, keep=a.keep,
               agent_conf_extra=PM.CONF) as lab:
        say("agents ready on %s ([agent] network_policy = enabled, [cni] "
            "policy_setup_timeout_seconds = 10)" % ", ".join(lab.nodes))
        try:
            ok, out, s = PM.run(lab, say)
        except RuntimeError as e:
            print("make demo: %s" % e, file=sys.stderr)
            return 1
        for i, r in enumerate(out):
            head("migration %d: %s -> %s (%s, %s)" % (i + 1, r["src"], r["tgt"], r["name"],
                                                     r["outcome"]))
            b = r["blackout_ms"]
            say("allowed (role=ok):   blackout %s ms, %d echoes lost in the hand-over%s" % (
                "%.1f" % b if b is not None else "n/a", r["lost_window"],
                "" if r["order_ok"] else " (answers NOT source then target)"))
            say("denied  (role=no):   %d answers of %d echoes sent (source and target)" % (
                r["denied_answers"], r["denied_sent"]))
        head("summary")
        ra, rd = s["allowed"], s["denied"]
        say("allowed: %d echoes sent, %d answered, %d lost outside the hand-over windows" %
            (ra.sent, len(ra.reply), s["lost_outside"]))
        say("denied:  %d echoes sent, %d answered%s" % (
            rd.sent, len(rd.reply), "" if not rd.reply else " by %s" % rd.who()))
        say("control: with the policy deleted the role=no prober is %s" % (
            "answered" if s["control"] else "NOT answered (the path is broken)"))
        say("blackout per migration (allowed stream): %s ms" % ", ".join(
            "%.1f" % r["blackout_ms"] if r["blackout_ms"] is not None else "n/a"
            for r in out))
        say("the policy held" if ok else "the policy did NOT hold (see above)")
    say("lab removed (namespaces, links, processes%s); %.0f s in all" % (
        "; files kept in %s" % lab.dir if a.keep else ", files", time.time() - t_start))
    return 0 if ok else 1


def l2_scenario(a):
    """A VM on a VLAN keeps its IP, MAC and VLAN while it live-migrates (--scenario l2)."""
    import test_l2demo as TD
    t_start = time.time()
    head("kvnet demo: a VM on VLAN 100 keeps its original IP and MAC, reached from a legacy "
         "host, while it live-migrates")
    checks = []

    def check(cond, what, diag=None):
        checks.append(bool(cond))
        print("  [%s] %s" % ("ok" if cond else "FAILED", what), flush=True)
        if not cond and diag is not None:
            for line in str(diag).splitlines()[:20]:
                print("         " + line, flush=True)

    with L.Lab(log=say, convergence=a.convergence, keep=a.keep,
               nodes=("node-a", "node-b")) as lab:
        try:
            r = TD.run(lab, say, check)
        except RuntimeError as e:
            print("make demo: %s" % e, file=sys.stderr)
            return 1
        head("summary")
        say("%d checks, %d held; blackout from the legacy host %.1f ms (%d echoes lost)" % (
            len(checks), sum(checks), r["blackout_ms"], r["lost"]))
        ok = bool(checks) and all(checks)
        say("every check held" if ok else "a check FAILED (see above)")
    say("lab removed (namespaces, links, processes%s); %.0f s in all" % (
        "; files kept in %s" % lab.dir if a.keep else ", files", time.time() - t_start))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(prog="make demo")
    ap.add_argument("--scenario", choices=("migrate", "flows", "policy", "l2"),
                    default="migrate",
                    help="migrate (default): the hand-over timeline; flows: the blast-radius "
                         "report of the VM; policy: a VM under a NetworkPolicy migrates; l2: a VM on a VLAN "
                         "(L2Network) migrates")
    ap.add_argument("--convergence", type=int, default=5,
                    help="seconds the migrated route keeps metric 512 (agent default 30)")
    ap.add_argument("--announce", default="garp")
    ap.add_argument("--keep", action="store_true", help="keep the lab's files")
    ap.add_argument("--cross-node", choices=("direct", "bgp", "vxlan"), default="direct",
                    help="direct (default): one L2 segment; bgp: BIRD on every node and a "
                         "ToR route reflector (test/lab/bgplab.py); vxlan: nodes routed "
                         "through a router, pods over the overlay (test/lab/vxlanlab.py)")
    ap.add_argument("--qemu", action="store_true", help="a real QEMU guest (qemuvm.py)")
    ap.add_argument("--peer", choices=("on", "off"), default="on",
                    help="the agents' agent-to-agent cut-over path (off: the API only)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("make demo: needs root (network namespaces)", file=sys.stderr)
        return 1
    if a.scenario == "flows":
        return flows_scenario(a)
    if a.scenario in ("policy", "l2"):
        if not L.agent_built():
            print("make demo: dist/kvnet has no agent", file=sys.stderr)
            return 1
        return policy_scenario(a) if a.scenario == "policy" else l2_scenario(a)
    if not L.agent_built():
        print("make demo: dist/kvnet has no agent yet (`kvnet agent` is not implemented): "
              "the live-migration hand-over needs it (issue #5)", file=sys.stderr)
        return 1
    if not L.agent_handover():
        print("make demo: the kvnet agent has no live-migration hand-over yet "
              "(`kvnet agent --help` says so; issue #5)", file=sys.stderr)
        return 1
    guests = None
    if a.qemu:
        import qemuvm
        img, why = qemuvm.available()
        if img is None:
            print("make demo: --qemu: %s" % why, file=sys.stderr)
            return 1
    t_start = time.time()
    head("kvnet demo: a VM keeps its IP and its traffic while it live-migrates")
    from test_peer import peer_key
    with L.Lab(log=say, convergence=a.convergence, keep=a.keep, cross_node=a.cross_node,
               agent_conf_extra=peer_key()[1] if a.peer == "on" else "") as lab:
        say("agent-to-agent cut-over path %s" % a.peer)
        if lab.tor:
            say("cross_node = bgp: ToR BGP sessions %s" % lab.tor.wait_sessions())
        if lab.router:
            say("cross_node = vxlan: nodes routed through %s, pods over kvnet.vxlan"
                % lab.router.ns)
        if a.qemu:
            guests = qemuvm.QemuGuests(lab, img)
        kv = KubeVirt(lab, guests=guests)
        say("agents ready on %s" % ", ".join(lab.nodes))
        if not lab.agents_migrate():
            print("make demo: the kvnet agent has no live-migration hand-over yet (no "
                  "kvnet_migrations_total in its /metrics; issue #5)", file=sys.stderr)
            return 1
        if a.qemu:
            return qemuvm.demo(lab, kv, say, head)
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        vm = kv.create_vm("vm-a", "node-a", announce=a.announce)
        orig = (vm.ip4, vm.ip6)
        head("VM vm-a on node-a: %s and %s (kept for the VM, not the pod)" % (vm.ip4, vm.ip6))
        say("client pod on node-c: %s; API host %s %s" % (
            client.ip4, L.API4, "routes the pool via node-c (an upstream router)"
            if not lab.tor else "has only a default route to the ToR, which learns the "
            "pool over BGP"))
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        if not okc:
            print("make demo: the nodes do not route to the VM: %s" % bad, file=sys.stderr)
            return 1
        streams = [lab.stream(client, vm.ip4, "pod on node-c -> v4"),
                   lab.stream("api", vm.ip4, "API host -> v4"),
                   lab.stream("api", vm.ip6, "API host -> v6")]
        say("streaming 1 kHz UDP echo to the VM from the pod on node-c and the API host")
        try:
            for s in streams:  # every stream reaches the VM before the first migration
                s.wait_answers(O.guest_name(vm, vm.pod), 1000)
            runs = []
            for target in ("node-b", "node-a"):
                runs.append(migrate(lab, kv, vm, target, streams, a.announce,
                                    a.convergence))
                for s in streams:  # the traffic follows the VM before the next step
                    s.wait_answers(O.guest_name(vm, vm.pod), 500)
        except RuntimeError as e:
            print("make demo: %s" % e, file=sys.stderr)
            return 1
        results = [s.stop() for s in streams]
        worst = []
        in_window = [0] * len(results)
        for i, (m, t_ann, okm, why, t_end) in enumerate(runs):
            head("migration %d: %s %s -> %s (%s)" % (i + 1, vm.name, m.src.node.name,
                                                     m.tgt.node.name, m.name))
            sub = [r.window(m.t["created"], t_end) for r in results]
            w, lost = report(lab, vm, m, t_ann, sub, t_end)
            worst.append(w)
            in_window = [x + y for x, y in zip(in_window, lost)]
            if not okm:
                say("NOT converged: %s" % (why,))
        head("summary")
        t_first = runs[0][0].t["created"]
        outside = 0
        for r, win in zip(results, in_window):
            lost = r.lost()
            startup = len([i for i in lost if r.send[i] < t_first])
            outside += len(lost) - win
            say("%-22s %d echoes sent, %d answered; lost %d in the hand-over windows, "
                "%d outside them (%d before the first migration)" % (
                    r.tag + ":", r.sent, len(r.reply), win, len(lost) - win, startup))
        targets = [m.tgt for m, *_ in runs]
        changed = addresses_kept(vm, orig, [runs[0][0].src] + targets)
        if changed:
            say("VM addresses CHANGED (the VM had %s, %s): %s" % (orig + ("; ".join(
                "%s on %s got %s" % (p.name, p.node.name, ", ".join(g) or "none")
                for p, g in changed),)))
        else:
            say("VM addresses unchanged: %s, %s (the CNI ADD result of every pod that ran "
                "the VM: %s)" % (orig + (", ".join("%s on %s" % (p.name, p.node.name)
                                                    for p in [runs[0][0].src] + targets),)))
        if outside:
            say("%d echoes lost outside the hand-over windows (see above)" % outside)
        say("cross_node = %s" % a.cross_node)
        say("blackout per migration (worst stream, from the announcement to the first echo "
            "the target answered): %s ms" %
            ", ".join("%.1f" % w for w in worst))
        ok = all(r[2] for r in runs) and not changed and not outside
    if a.keep:
        say("lab removed (namespaces, links, processes); its files are kept in %s; %.0f s "
            "in all" % (lab.dir, time.time() - t_start))
    else:
        say("lab removed (namespaces, links, processes, files); %.0f s in all"
            % (time.time() - t_start))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
