"""observe — what the lab checks and reports about a VM's addresses, from outside kvnet:
where each node forwards them (`ip -j route get`), kvnet's routes (`ip -j route`), the
IPAM owners (through the API), route changes (`ip -ts monitor route`), the IPAM owner
changes (a watch of the blocks) and the echo streams; and the timeline of a migration."""

import datetime
import time

import lab as L


def forwarding(lab, ip):
    """{node: (dev, gateway)} — the kernel's answer to `ip route get ip` on every node."""
    out = {}
    for n in lab.nodes.values():
        r = L.ipj(n.ns, "route", "get", ip)
        r = r[0] if r else {}
        out[n.name] = (r.get("dev"), r.get("gateway"))
    return out


def expected(lab, pod, ip):
    """Where every node should send ip when pod runs the VM: the pod's veth on its node,
    the pod's node over the fabric (cross_node = vxlan: the overlay) everywhere else."""
    gw = pod.node.ip6 if ":" in ip else pod.node.ip4
    via = "kvnet.vxlan" if lab.cross_node == "vxlan" else "fab0"  # vxlan: the overlay
    return {n.name: ((pod.host_if, None) if n is pod.node else (via, gw))
            for n in lab.nodes.values()}


def converged(lab, vm, pod):
    """(ok, diff): every node forwards both of the VM's addresses towards pod."""
    bad = {}
    for ip in (vm.ip4, vm.ip6):
        have, want = forwarding(lab, ip), expected(lab, pod, ip)
        for n in want:
            if have[n] != want[n]:
                bad["%s %s" % (n, ip)] = {"have": have[n], "want": want[n]}
    return not bad, bad


def wait_converged(lab, vm, pod, timeout=15.0):
    """Poll until converged (the bound only turns a hang into a failure; no time is
    asserted). Returns (ok, diff)."""
    end = time.monotonic() + timeout
    while True:
        okk, bad = converged(lab, vm, pod)
        if okk or time.monotonic() > end:
            return okk, bad
        time.sleep(0.05)


def host_route(node, ip):
    """kvnet's routes to ip (/32, /128) on node."""
    return [r for r in node.routes(ip) if str(r.get("protocol")) in (str(L.ROUTE_PROTO), "kvnet")]


def metric_of(pod, ip):
    """Metrics of kvnet's host routes to ip via pod's veth on its node."""
    return sorted(r.get("metric", 0) for r in host_route(pod.node, ip)
                  if r.get("dev") == pod.host_if)


def wait_metric(pod, ips, metric, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        have = {ip: metric_of(pod, ip) for ip in ips}
        if all(v == [metric] for v in have.values()) or time.monotonic() > end:
            return all(v == [metric] for v in have.values()), have
        time.sleep(0.05)


def first_metrics(lab, node, ips, dev, since):
    """{ip: metric} of the first kvnet route (proto 75) to each of ips via dev that
    node's `ip -ts monitor route` saw added at or after since (None: none seen). The
    monitor's record, so the answer does not depend on when it is asked."""
    out = {ip: None for ip in ips}
    for _, line in lab.route_events(node, since):
        tok = line.split()
        if not tok or tok[0] == "Deleted" or tok[0].split("/")[0] not in out:
            continue
        f = {k: tok[i + 1] for i, k in enumerate(tok[:-1]) if k in ("dev", "proto", "metric")}
        ip = tok[0].split("/")[0]
        if (out[ip] is None and f.get("dev") == dev and f.get("proto") in
                (str(L.ROUTE_PROTO), "kvnet")):
            out[ip] = int(f.get("metric", 0))
    return out


def route_changes(lab, ips, since, until=None):
    """[(t, node, line)] route changes naming one of ips, from every node's monitor."""
    out = []
    keys = tuple(ips)
    for n in lab.nodes.values():
        for t, line in lab.route_events(n, since):
            if until is not None and t > until:
                continue
            dst = line.split()[1] if line.startswith("Deleted ") else line.split()[0]
            if dst.split("/")[0] in keys:
                out.append((t, n.name, line))
    return sorted(out)


def timeline(lab, m, results=(), until=None):
    """The migration's events as [(t, text)], sorted; t is CLOCK_REALTIME."""
    vm = m.vm
    ev = []
    t0 = m.t.get("created", 0)
    for phase, t in m.phases:
        ev.append((t, "VMIM %s" % phase))
    if "target_add_done" in m.t:
        ev.append((m.t["target_add_done"], "target pod %s: CNI ADD done on %s (dark)"
                   % (m.tgt.name, m.tgt.node.name)))
    if "paused" in m.t:
        ev.append((m.t["paused"], "guest paused on %s (source stops answering)" % m.src.node.name))
    for kind, t in m.announce.items():
        if t:
            ev.append((t, "announcement on the wire: %s from %s" % (kind, m.tgt.node.name)))
    if "target_ready_annotation" in m.t:
        ev.append((m.t["target_ready_annotation"],
                   "annotation kubevirt.io/migration-target-ready-timestamp set"))
    if "source_deleted" in m.t:
        ev.append((m.t["source_deleted"], "source pod %s: Succeeded, CNI DEL, deleted"
                   % m.src.name))
    for t, node, line in route_changes(lab, (vm.ip4, vm.ip6), t0, until):
        ev.append((t, "%s: route %s" % (node, line)))
    prev = None
    for t, own in lab.owner_history(vm.namespace, vm.name):
        if t >= t0 and (until is None or t <= until) and prev is not None and own != prev:
            who = {m.src.uid: m.src.name, m.tgt.uid: m.tgt.name if m.tgt else "?"}
            ev.append((t, "IPAM active owner -> %s (seen by a watch)" % ", ".join(
                sorted({who.get(u, u or "none") for u in own.values()}))))
        prev = own
    for t, node, f in agent_migration_lines(lab, vm, t0, until):
        extra = ", ".join("%s %s" % (k, f[k]) for k in ("trigger", "latency_us", "metric",
                                                         "outcome") if k in f)
        ev.append((t, "%s agent: %s%s" % (node, f.get("msg", "?"),
                                          " (%s)" % extra if extra else "")))
    for r in results:
        c = r.cutover(guest_name(vm, m.src), guest_name(vm, m.tgt), m.t_announce)
        if c.get("first_tgt_t"):
            ev.append((c["first_tgt_t"], "stream %s: first echo answered on %s" % (
                r.tag, m.tgt.node.name)))
    return sorted(ev)


def _ts(v):
    """A log timestamp: unix seconds (S.UUUUUU) or RFC 3339 UTC (2026-...Z)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        pass
    try:
        return datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def agent_migration_lines(lab, vm, since, until=None):
    """[(t, node, fields)]: the agents' "migration ..." log lines about vm (logfmt fields
    of agent/migrate.h), at route_ts when the line has one (the kernel's ack of the
    route), else at the line's ts."""
    out = []
    key = "%s/%s" % (vm.namespace, vm.name)
    for n in lab.nodes.values():
        for f in lab.agent_lines(n):
            msg = f.get("msg", "")
            if (not isinstance(msg, str) or not msg.startswith("migration")
                    or f.get("vmi") != key or f.get("level") == "debug"
                    or msg == "migration event ignored"):
                continue  # repeats and events without effect: not transitions
            t = _ts(f.get("route_ts")) or _ts(f.get("ts"))
            if t is None or t < since or (until is not None and t > until):
                continue
            out.append((t, n.name, f))
    return out


def guest_name(vm, pod):
    return "%s@%s" % (vm.name, pod.node.name)


def fmt_timeline(ev, t_ref):
    lines = []
    for t, text in ev:
        lines.append("%+10.3f ms  %s" % ((t - t_ref) * 1000.0, text))
    return lines
