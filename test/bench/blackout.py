"""blackout — the live-migration blackout harness every cross-node mode is measured with
(bench-migrate --cross-node direct|bgp|vxlan; bench-bgp and bench-vxlan call it too).

In the netns lab (test/lab) with [network] cross_node = MODE, one VM migrates N times back
and forth between node-a and node-b, with 1 kHz UDP echo streams to its IPv4 address from a
pod on node-c and from the API host (direct, vxlan: it routes the pool via node-c; bgp: via
the ToR, which learns the /32 from BGP). Definitions, the same in every mode:
  - a stream's blackout: from the announcement (the kernel timestamp of the VM's
    gratuitous ARP on the wire, sent by arping) to the send of the first echo the target
    answered; its lower bound: to the send of the last echo lost after the announcement;
  - a migration's blackout: its worst stream;
  - its phases (PHASES), each from the announcement: the target's route, its claim sent,
    the source's and node-c's agents taking it, their ip monitors' first route change,
    the first echo answered; with the agent-to-agent path on (a cluster key) unless
    peer=False (bench-migrate --peer off: the other nodes learn through the API);
  - lost echoes per migration: after the announcement, and in the whole hand-over window;
  - announcement -> the target node's first route change for the VM, and -> node-c's
    (`ip -ts monitor route` on that node, an outside observer); announcement -> route
    acked as the agent logs it (latency_us).
Each stream must see ANSWERS echoes answered by the source guest before and by the target
guest after, so every migration starts and ends in steady state. Prints percentiles;
asserts no time. A mode adds its own observations through the hooks of run()."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
sys.dont_write_bytecode = True
import lab as L  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402
from test_peer import peer_key  # noqa: E402

MODES = ("direct", "bgp", "vxlan")
ANSWERS = 200  # echoes each stream must see answered by the source before and the target after
# the prefix of a mode's result lines (direct keeps bench-migrate's historic names)
PREFIX = {"direct": "migrate", "bgp": "bgp", "vxlan": "vxlan"}


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# the cut-over's phases, each from the announcement's kernel timestamp on the wire, read
# from the agents' own log lines (fields of agent/migrate.h and agent/peer.h) and from
# `ip -ts monitor route` on each node (an independent reader)
PHASES = (
    ("target_route", "target agent: route acked (migration live route_ts)"),
    ("peer_sent", "target agent: claim sent to the other agents (peer claim sent sent_ts)"),
    ("source_peer_route", "source agent: claim taken, route acked (peer claim accepted "
                          "route_ts)"),
    ("transit_peer_route", "node-c agent: claim taken, route acked (peer claim accepted "
                           "route_ts)"),
    ("source_monitor", "source node: first route change, its ip monitor"),
    ("transit_monitor", "node-c: first route change, its ip monitor"),
    ("first_echo", "first echo the target answered, worst stream (the blackout)"),
)


def phase_times(lab, vm, m, target, source):
    """{phase: us after the announcement} of migration m, from what the agents logged
    and the nodes' ip monitors saw (the phases that happened)."""
    out = {}
    t0 = m.t_announce
    if not t0:
        return out

    def after(t):
        return (t - t0) * 1e6 if t is not None and t >= t0 - 0.001 else None
    for t, node, f in O.agent_migration_lines(lab, vm, m.t["created"]):
        if node == target and f.get("msg") == "migration live" and f.get("route_ts"):
            out.setdefault("target_route", after(O._ts(f.get("route_ts"))))
    ips = {vm.ip4, vm.ip6}
    for node, key in ((target, "peer_sent"), (source, "source_peer_route"),
                      ("node-c", "transit_peer_route")):
        for f in lab.agent_lines(lab.nodes[node]):
            ts = O._ts(f.get("ts")) or 0
            if ts < t0 - 0.001 or not (set(str(f.get("ip", "")).split(",")) & ips):
                continue
            if key == "peer_sent" and f.get("msg") == "peer claim sent":
                out.setdefault(key, after(O._ts(f.get("sent_ts"))))
            elif key != "peer_sent" and f.get("msg") == "peer claim accepted" \
                    and f.get("route_ts"):
                out.setdefault(key, after(O._ts(f.get("route_ts"))))
    changes = O.route_changes(lab, (vm.ip4,), t0)
    for node, key in ((source, "source_monitor"), ("node-c", "transit_monitor")):
        ch = [t for t, n, _ in changes if n == node]
        if ch:
            out[key] = after(min(ch))
    return {k: v for k, v in out.items() if v is not None}


def migrations():
    return int(os.environ.get("BENCH_MIGRATIONS", "20"))


class Result:
    """The figures of one run, one entry per migration (route samples may be fewer)."""

    def __init__(self, mode):
        self.mode = mode
        self.blackout = []     # ms, worst stream (migrations whose every stream has one)
        self.blackout_lo = []  # ms, lower bound of the worst stream
        self.lost_after = []   # echoes lost after the announcement, worst stream
        self.lost_window = []  # echoes lost in the hand-over window, worst stream
        self.route_us = []     # announcement -> target node's route change
        self.transit_us = []   # announcement -> node-c's route change
        self.agent_us = []     # announcement -> route acked (agent log)
        self.fails = []        # (migration, stream, cutover) of streams that lost echoes
        self.error = None      # why the run stopped early (no route to the VM)
        self.peer = False      # the agent-to-agent cut-over path was on
        # per phase, us after the announcement on the wire (PHASES names them)
        self.phases = {k: [] for k, _ in PHASES}


def run(mode, n=None, setup=None, after=None, peer=True):
    """Measure n migrations (BENCH_MIGRATIONS, default 20) with cross_node = mode; peer:
    the agents' agent-to-agent cut-over path on (a cluster key) or off (the API only).
    setup(lab) runs once the lab is up, before the VM exists; after(lab, vm, m, i) after
    migration i has settled (both streams on the target, the VM's route back at its normal
    metric). Returns a Result, or None when the agent cannot migrate."""
    if mode not in MODES:
        raise ValueError("blackout: cross_node %r is none of %s" % (mode, "|".join(MODES)))
    n = migrations() if n is None else n
    res = Result(mode)
    res.peer = peer
    extra = peer_key()[1] if peer else ""
    with L.Lab(convergence=1, cross_node=mode, agent_conf_extra=extra) as lab:
        if not lab.agents_migrate():
            return None
        if setup:
            setup(lab)
        kv = KubeVirt(lab)
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        vm = kv.create_vm("vm-a", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        if not okc:
            res.error = "no route to the VM: %s" % bad
            return res
        for i in range(n):
            target = "node-b" if vm.node.name == "node-a" else "node-a"
            streams = [lab.stream(client, vm.ip4, "pod@node-c"),
                       lab.stream("api", vm.ip4, "api")]
            # traffic flows to the source guest before, and to the target guest after
            for s in streams:
                s.wait_answers(O.guest_name(vm, vm.pod), ANSWERS)
            m = kv.migrate(vm, target, settle=lambda m: O.wait_converged(lab, vm, m.tgt))
            for s in streams:
                s.wait_answers(O.guest_name(vm, m.tgt), ANSWERS)
            done = [s.stop() for s in streams]
            worst, worst_lo, la, lw, bad = 0.0, 0.0, 0, 0, False
            for r in done:
                c = r.cutover(O.guest_name(vm, m.src), O.guest_name(vm, m.tgt), m.t_announce)
                if not c["ok"] or "blackout_ms" not in c:
                    res.fails.append((i, r.tag, c))
                    bad = True
                    continue
                worst = max(worst, c["blackout_ms"])
                worst_lo = max(worst_lo, c["blackout_lo_ms"])
                la = max(la, c["lost_after_announce"])
                lw = max(lw, c["lost_window"])
            if not bad:  # a migration counts when every stream has its figure
                ph = phase_times(lab, vm, m, target, m.src.node.name)
                ph["first_echo"] = worst * 1000
                for k, v in ph.items():
                    res.phases[k].append(v)
                res.blackout.append(worst)
                res.blackout_lo.append(worst_lo)
                res.lost_after.append(la)
                res.lost_window.append(lw)
            changes = O.route_changes(lab, (vm.ip4,), m.t_announce) if m.t_announce else []
            ch = [t for t, node, line in changes
                  if node == target and not line.startswith("Deleted")]
            if ch:
                res.route_us.append((min(ch) - m.t_announce) * 1e6)
            tr = [t for t, node, line in changes if node == "node-c"]
            if tr:
                res.transit_us.append((min(tr) - m.t_announce) * 1e6)
            for t, node, f in O.agent_migration_lines(lab, vm, m.t["created"]):
                if f.get("msg") == "migration live" and "latency_us" in f:
                    res.agent_us.append(float(f["latency_us"]))
            # let the route go back to 1024 before the next one
            O.wait_metric(vm.pod, (vm.ip4,), 1024, timeout=20)
            if after:
                after(lab, vm, m, i)
    return res


def report(res):
    """Print res's summary lines; 0, or 1 when a stream lost echoes outside the hand-over
    or the run stopped early."""
    p = PREFIX[res.mode]
    if res.error:
        print("%s-blackout: failed: %s" % (p, res.error))
        return 1
    b = res.blackout
    print("%s-blackout: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d migrations "
          "(cross_node = %s; peer path %s; 1 kHz UDP echo from a pod on node-c and the API "
          "host; from the GARP on the wire to the first echo the target answered; load %s)" % (
              p, pct(b, 50), pct(b, 99), max(b) if b else float("nan"), len(b), res.mode,
              "on" if res.peer else "off", " ".join(open("/proc/loadavg").read().split()[:3])))
    for k, what in PHASES:
        v = res.phases.get(k) or []
        if v:
            print("%s-phase %s: p50 %.2f ms, p99 %.2f ms (%d samples) -- %s" % (
                p, k, pct(v, 50) / 1000, pct(v, 99) / 1000, len(v), what))
    print("%s-blackout-lower-bound: p50 %.1f ms, p99 %.1f ms (announcement to the send of "
          "the last echo lost after it; the blackout lies between the two)" % (
              p, pct(res.blackout_lo, 50), pct(res.blackout_lo, 99)))
    print("%s-lost: echoes lost after the announcement p50 %d max %d; in the whole "
          "hand-over window (guest pause + announce) p50 %d max %d" % (
              p, pct(res.lost_after, 50), max(res.lost_after or [0]),
              pct(res.lost_window, 50), max(res.lost_window or [0])))
    if res.route_us:
        print("%s-route: announcement on the wire -> target node's route change seen by "
              "ip monitor: p50 %.0f us, p99 %.0f us (%d samples)" % (
                  p, pct(res.route_us, 50), pct(res.route_us, 99), len(res.route_us)))
    if res.transit_us:
        print("%s-transit: announcement on the wire -> node-c's route change (it forwards "
              "both streams): p50 %.1f ms, p99 %.1f ms (%d samples)" % (
                  p, pct(res.transit_us, 50) / 1000, pct(res.transit_us, 99) / 1000,
                  len(res.transit_us)))
    if res.agent_us:
        print("%s-agent: announcement -> route acked, as the agent logs it (latency_us): "
              "p50 %.0f us, p99 %.0f us, max %.0f us (%d samples)" % (
                  p, pct(res.agent_us, 50), pct(res.agent_us, 99), max(res.agent_us),
                  len(res.agent_us)))
    if res.fails:
        print("%s-blackout: %d stream(s) with echoes lost outside the hand-over (their "
              "migrations %s are not in the figures above): %s"
              % (p, len(res.fails), sorted({f[0] for f in res.fails}), res.fails[:3]))
        return 1
    return 0


def skipped(mode):
    """Why mode cannot be measured here, or None."""
    if not L.agent_built():
        return "dist/kvnet has no agent yet"
    if not L.agent_handover():
        return "the agent has no live-migration hand-over yet"
    if mode == "bgp" and os.system("command -v bird >/dev/null && "
                                   "command -v birdc >/dev/null") != 0:
        return "bird2 not installed"
    return None


def bench(mode, setup=None, after=None, peer=True):
    """Measure mode (run()) and print its summary, or why it was skipped. Returns (status,
    Result or None when skipped); status 0 for a skip."""
    p = PREFIX[mode]
    why = skipped(mode)
    res = None if why else run(mode, setup=setup, after=after, peer=peer)
    if res is None:
        print("%s-blackout: skipped: %s" % (
            p, why or "the agent has no migration hand-over yet"))
        return 0, None
    return report(res), res
