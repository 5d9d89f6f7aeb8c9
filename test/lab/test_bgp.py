#!/usr/bin/env python3
"""Lab scenarios with cross_node = bgp (bgplab.py): BIRD on every node and on a ToR route
reflector between the nodes and the API host, which has no route to the pools but its
default route to the ToR. Checked with `birdc` and the ToR's kernel table (`ip -j route`,
`ip -ts monitor route`), independent of kvnet:

  - every ToR session Established; the agents wrote their fragments
  - ordinary: a VM on node-a; the ToR's kernel routes its block via node-a at the one
    metric; echo streams from the API host and a pod on node-c are answered
  - migration A -> B and back under traffic (test_migrate's checks): the ToR's kernel
    routes the /32 via the target; announcement -> ToR route change measured; through the
    convergence period (local_pref 200 -> 100 on the target) the ToR holds exactly one
    route to the /32, at one metric, and never one via the source after the switch
  - node-a's BGP sessions torn down under BIRD (ss -K, no notification): the ToR keeps
    the routes while they are down; at re-establishment it drops and re-adds them (RFC
    4724: no preserved forwarding state), echoes lost only in that gap (printed);
    node-a's BIRD restarted (birdc graceful restart, bird -R): nothing lost
  - cross_node bgp -> none -> bgp on node-a by SIGHUP: its fragment emptied (the device
    protocol only) and BIRD reloaded, so node-a's sessions close, the ToR routes nothing
    via node-a and node-a keeps no BIRD route; back to bgp: the fragment, the sessions
    and the ToR's routes return and every node forwards the VM to node-a again
Figures are printed, not asserted."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgplab as B  # noqa: E402
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
import test_migrate as TM  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok


def tor_changes(lab, ip, since):
    """[(t, line)] of the ToR's route events for ip's /32 or /128 since `since`."""
    return [(t, l) for t, l in lab.route_events(lab.tor, since)
            if l.split()[0:1] in ([ip], [ip + "/32"], [ip + "/128"]) or
            l.startswith("Deleted " + ip + " ") or l.startswith("Deleted " + ip + "/")]


def tor_via(lab, ip):
    return [(r.get("gateway"), r.get("metric")) for r in lab.tor.kernel_routes(ip)]


def migrate(lab, run, target, what):
    tgt = lab.nodes[target]
    t0 = time.time()
    m = run.go(target, what)
    run.check(what)
    vm = run.vm
    home = {ip: tor_get(lab, ip) for ip in (vm.ip4, vm.ip6)}
    for ip, nh in ((vm.ip4, tgt.ip4), (vm.ip6, tgt.ip6)):
        # a /32 via the target, or (back in a block of the target's) none: the block
        okr = O_wait(lambda: tor_get(lab, ip) == nh and
                     tor_via(lab, ip) in ([(nh, B.TOR_METRIC)], []))
        ok(okr, "%s: the ToR forwards %s via %s (a /32 at metric %d, or the target's block)"
           % (what, ip, target, B.TOR_METRIC), (tor_via(lab, ip), tor_get(lab, ip), home))
        ev = tor_changes(lab, ip, t0)
        first = [t for t, l in ev if (" via %s " % nh) in l + " " and not l.startswith("Deleted")]
        if first:
            T.note("%s %s: announcement -> ToR kernel route via %s: %.1f ms" % (
                what, ip, target, (first[0] - m.t_announce) * 1000.0))
        else:
            T.note("%s %s: no ToR route event via the target seen (the block covers it)"
                   % (what, ip))
    # through the convergence period (migration_local_pref -> local_pref on the target)
    # the ToR keeps one route at one metric, never one via another node
    end = time.monotonic() + TM.CONV + 3
    seen = set()
    while time.monotonic() < end:
        for ip in (vm.ip4, vm.ip6):
            seen.add((ip, tuple(tor_via(lab, ip))))
        time.sleep(0.05)
    bad = [s for s in seen if s[1] not in (((tgt.ip4, B.TOR_METRIC),),
                                           ((tgt.ip6, B.TOR_METRIC),), ())]
    ok(not bad, "%s: through the convergence period the ToR held exactly one route per "
       "address (or none: the block), via %s at metric %d (no stale copy)" % (what, target, B.TOR_METRIC), bad)
    return m


def tor_get(lab, ip):
    """The ToR's next hop for ip (`ip -j route get`)."""
    r = L.ipj(lab.tor.ns, "route", "get", ip)
    return r[0].get("gateway") if r else None


def O_wait(fn, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        if fn():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


def steady_traffic(lab, vm, what, action, blip_ok=False):
    """Echo streams from the API host to the VM while action() runs: nothing lost; with
    blip_ok, echoes may be lost only while the ToR's kernel had no route for the VM
    (between a route deletion and its re-addition, as the ToR's ip monitor saw them)."""
    t0 = time.time()
    streams = [lab.stream("api", ip, "%s %s" % (what, "v6" if ":" in ip else "v4"))
               for ip in (vm.ip4, vm.ip6)]
    for s in streams:
        s.wait_answers(O.guest_name(vm, vm.pod), TM.ANSWERS)
    action()
    for s in streams:
        s.wait_answers(O.guest_name(vm, vm.pod), TM.ANSWERS)
    gaps = []
    if blip_ok:
        ev = lab.route_events(lab.tor, t0)
        dels = [t for t, l in ev if l.startswith("Deleted 198.18.") or
                l.startswith("Deleted 2001:db8:4b76:")]
        for td in dels:
            adds = [t for t, l in ev if t >= td and not l.startswith("Deleted")]
            gaps.append((td, min(adds) if adds else float("inf")))
    for s in streams:
        r = s.stop()
        lost = r.lost()
        if not blip_ok:
            ok(not lost, "%s: %s: %d echoes, none lost" % (what, r.tag, r.sent), len(lost))
            continue
        outside = [i for i in lost if not any(a - 0.005 <= r.send[i] <= b + 0.005
                                              for a, b in gaps)]
        ok(not outside, "%s: %s: %d echoes; every lost one (%d) sent while the ToR had "
           "deleted a stale route and not yet re-added it" % (what, r.tag, r.sent, len(lost)),
           {"outside": len(outside), "gaps": gaps})
        T.note("%s %s: lost %d; ToR route gaps %s ms" % (
            what, r.tag, len(lost), ["%.1f" % ((b - a) * 1000) for a, b in gaps]))


def mode_switch(lab, vm, a):
    """[network] cross_node bgp -> none -> bgp on node-a by SIGHUP."""
    as_bgp = lab.agent_config(a)
    frag = B.frag_path(a)

    def hup(text):
        mark = len(log_text(a))
        with open(a.agent_conf, "w", encoding="utf-8") as f:
            f.write(text)
        a.agent.send(signal.SIGHUP)
        return mark

    def via_a():
        return [r.get("dst") for r in lab.tor.kernel_routes() if r.get("gateway") in
                (a.ip4, a.ip6)]
    mark = hup(as_bgp.replace("cross_node = bgp", "cross_node = none"))
    said = O_wait(lambda: "bgp: BIRD at %s reloaded the empty %s" % (B.sock_path(a), frag)
                  in log_text(a)[mark:], 15)
    text = open(frag).read()
    down = O_wait(lambda: all(lab.tor.sessions().get(s) != "Established"
                              for s in ("node_a_4", "node_a_6")), 15)
    gone = O_wait(lambda: not via_a(), 15)
    learned = [r for r in L.ipj(a.ns, "route", "show") if r.get("protocol") == "bird"]
    ok(said and "protocol bgp" not in text and "protocol kernel" not in text and down and
       gone and not learned, "cross_node bgp -> none (SIGHUP) on node-a: the agent empties "
       "its fragment and reloads BIRD: node-a's sessions close, the ToR routes nothing via "
       "node-a, node-a keeps no BIRD route",
       {"log": log_text(a)[mark:][-1500:], "fragment": text, "sessions":
        lab.tor.sessions(), "via node-a": via_a(), "bird routes on node-a": learned})
    mark = hup(as_bgp)
    back = O_wait(lambda: "protocol bgp kvnet_peer1" in open(frag).read() and
                  all(lab.tor.sessions().get(s) == "Established"
                      for s in ("node_a_4", "node_a_6")), 30)
    blk = O_wait(lambda: any(r.get("dst", "").startswith("198.18.0.") for r in
                             lab.tor.kernel_routes() if r.get("gateway") == a.ip4), 30)
    okc, bad = O.wait_converged(lab, vm, vm.pod)
    ok(back and blk and okc, "cross_node none -> bgp (SIGHUP) on node-a: the fragment is "
       "written again, the sessions are Established, the ToR routes node-a's block via "
       "node-a, every node forwards vm-a to it", {"sessions": lab.tor.sessions(),
                                                "bad": bad, "log": log_text(a)[mark:][-1500:]})


def log_text(node):
    try:
        with open(node.agent_log, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    names = ("sessions", "ordinary", "A -> B", "B -> A", "session down/up", "BIRD restart",
             "cross_node")
    if not L.agent_built() or not L.agent_handover():
        for n in names:
            T.skip(n, "dist/kvnet has no agent with the hand-over")
        return 0
    if os.system("command -v bird >/dev/null && command -v birdc >/dev/null") != 0:
        for n in names:
            T.skip(n, "bird2 not installed")
        return 0
    with L.Lab(convergence=TM.CONV, cross_node="bgp") as lab:
        s = lab.tor.wait_sessions()
        ok(len(s) == 2 * len(lab.nodes), "sessions: every node's v4 and v6 session to the "
           "ToR is Established", s)
        frags = {n.name: open(B.frag_path(n)).read() for n in lab.nodes.values()}
        ok(all("router id %s;" % n.ip4 in frags[n.name] for n in lab.nodes.values()),
           "sessions: each agent wrote its fragment (router id = its InternalIP)")
        kv = KubeVirt(lab)
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        vm = kv.create_vm("vm-a", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "ordinary: every node forwards vm-a's addresses to node-a", bad)
        a = lab.nodes["node-a"]
        blk = [r for r in lab.tor.kernel_routes() if r.get("dst", "").startswith("198.18.0.")
               and r.get("gateway") == a.ip4]
        ok(O_wait(lambda: any(r.get("metric") == B.TOR_METRIC and r.get("protocol") == "bird"
                              for r in lab.tor.kernel_routes()
                              if r.get("gateway") == a.ip4)),
           "ordinary: the ToR's kernel routes node-a's block via node-a (proto bird, metric "
           "%d)" % B.TOR_METRIC, lab.tor.kernel_routes())
        T.note("ToR kernel routes via node-a: %s" % [r.get("dst") for r in blk])
        run = TM.Run(lab, kv, vm, [("pod@node-c", client), ("api", "api")])
        migrate(lab, run, "node-b", "A -> B")
        migrate(lab, run, "node-a", "B -> A")

        def session_flap():
            # the TCP connections of node-a's sessions torn down under BIRD (ss -K: no
            # BGP notification, as a link or peer failure): the ToR keeps node-a's routes
            # as stale (graceful restart) until the sessions are back
            # (one session after the other: IPv4, then IPv6)
            for sess, dst in (("node_a_4", B.TOR4), ("node_a_6", "[%s]" % B.TOR6)):
                a.run("ss", "-K", "dst", dst)
                O_wait(lambda: lab.tor.sessions().get(sess) != "Established", 10)
                lab.tor.wait_sessions()
        # graceful restart keeps the routes while the sessions are down; when one comes
        # back, the ToR drops the stale routes at once (the peer did not restart, so it
        # announces no preserved forwarding state, RFC 4724) and re-adds them with the
        # peer's first update: echoes may be lost in that gap only
        steady_traffic(lab, vm, "session down/up", session_flap, blip_ok=True)
        ok(lab.tor.sessions().get("node_a_4") == "Established" and
           lab.tor.sessions().get("node_a_6") == "Established",
           "session down/up: the sessions are back")

        def bird_restart():
            B.node_birdc(a, "graceful", "restart")
            a.bird.p.wait(10)
            conf = os.path.join(a.dir, "bird.conf")
            a.bird = L.Proc(a.prefix() + ["bird", "-f", "-R", "-c", conf, "-s",
                                          B.sock_path(a)], os.path.join(a.dir, "bird2.log"))
            lab.tor.wait_sessions()
        steady_traffic(lab, vm, "BIRD restart", bird_restart)
        ok(lab.tor.sessions().get("node_a_4") == "Established",
           "BIRD restart: node-a's sessions are back")
        mode_switch(lab, vm, a)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
