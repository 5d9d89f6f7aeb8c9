#!/usr/bin/env python3
"""The agent owns kvnet's routes (protocol 75) against the test API server, checked with
`ip -j route` and `ip monitor route` (independent of kvnet's netlink code):

  - start: a correct route is adopted (untouched), a wrong one fixed, stale ones removed,
    a route of another protocol left alone; an unregistered route on a kv* veth adopted;
    direct mode: remote blocks via their node's InternalIP (IPv4 and IPv6), /32s of
    addresses living away from their block's node via the owner's node
  - restart: not one route event (no delete, no replace), identical dumps
  - API server down: routes unchanged through resyncs, /healthz still 200; back up: a
    change made after it returned is routed (resync), reconnects counted
  - /healthz /readyz /metrics over HTTP (python urllib); SIGTERM removes the socket and
    leaves the routes
Everything runs in a private namespace kvt-<pid>-agent (agentlib.enter_netns)."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import agentlib as al  # noqa: E402

ok = al.ok


def setup_links():
    # the node's interface on the shared segment (no dummy driver here: a veth pair)
    al.sh("ip", "link", "add", "fab0", "type", "veth", "peer", "name", "fab1")
    al.sh("ip", "link", "set", "fab1", "up")
    al.sh("ip", "addr", "add", "198.19.1.1/24", "dev", "fab0")
    al.sh("ip", "addr", "add", "2001:db8:ff::1/64", "dev", "fab0", "nodad")
    al.sh("ip", "link", "set", "fab0", "up")
    for i in (1, 2, 3):
        al.sh("ip", "link", "add", "kvtep%d" % i, "type", "veth", "peer", "name", "kvtpe%d" % i)
        al.sh("ip", "link", "set", "kvtep%d" % i, "up")
        al.sh("ip", "link", "set", "kvtpe%d" % i, "up")


def rt(*args):
    al.sh("ip", "route", "add", *args)


def reconciles(ag):
    """The agent's reconcile passes so far (kvnet_agent_reconciles_total, ok + failed)."""
    return sum(ag.metric("kvnet_agent_reconciles_total", 'result="%s"' % r) or 0
               for r in ("ok", "failed"))


def wait_reconciles(ag, more, what, timeout=30):
    """Until the agent made `more` further reconcile passes (resyncs) than now: a check
    that nothing changed through resyncs has then seen them happen."""
    want = reconciles(ag) + more
    ok(al.wait_for(lambda: reconciles(ag) >= want, timeout=timeout),
       "%s: %d more reconcile passes seen" % (what, more),
       "reconciles %s, waited for %s" % (reconciles(ag), want))


def wait_monitoring(proc, timeout=10):
    """Until proc (ip monitor) holds a NETLINK_ROUTE socket bound to multicast groups
    (/proc/PID/net/netlink): from then on it sees every route change."""
    def listening():
        try:
            inodes = {os.readlink("/proc/%d/fd/%s" % (proc.pid, fd))[8:-1]
                      for fd in os.listdir("/proc/%d/fd" % proc.pid)}
            with open("/proc/%d/net/netlink" % proc.pid, encoding="ascii") as f:
                rows = [r.split() for r in f.read().splitlines()[1:]]
        except OSError:
            return False
        return any(len(r) >= 10 and r[1] == "0" and int(r[3], 16) and r[9] in inodes
                   for r in rows)
    ok(al.wait_for(listening, timeout=timeout), "ip monitor route is listening")


def main():
    al.enter_netns()
    setup_links()
    api = al.start_api(state=True)
    try:
        run(api)
    finally:
        api.stop()
    al.finish()


def run(api):
    api.load([
        al.node_obj("node-a", "198.19.1.1", "2001:db8:ff::1"),
        al.node_obj("node-b", "198.19.1.2", "2001:db8:ff::2"),
        al.node_obj("node-c", "198.19.1.3"),
        al.block_obj("198.18.0.0/26", "node-a", [
            ("198.18.0.5", "net.c1", "node-a", None, ""),
            ("198.18.0.10", "net.vmi.default.vm1", "node-a", "node-b", "uid-vm1")]),
        al.block_obj("198.18.0.64/26", "node-b", [
            ("198.18.0.70", "net.vmi.default.vm2", "node-b", "node-c", "uid-vm2")]),
        al.block_obj("2001:db8:4b76::40/122", "node-b"),
    ])
    # what a previous agent and the CNI plugin left behind
    rt("198.18.0.5/32", "dev", "kvtep1", "proto", "75", "metric", "1024", "scope", "link")
    rt("198.18.0.5/32", "dev", "kvtep1", "proto", "75", "metric", "512", "scope", "link")
    rt("198.18.0.6/32", "dev", "kvtep1", "proto", "75", "metric", "1024", "scope", "link")
    rt("198.18.0.7/32", "dev", "kvtep3", "proto", "75", "metric", "1024", "scope", "link")
    rt("198.18.0.99/32", "via", "198.19.1.9", "proto", "75", "metric", "1024")
    rt("198.18.0.64/26", "via", "198.19.1.3", "proto", "75", "metric", "1024")
    rt("198.18.2.0/24", "via", "198.19.1.2", "proto", "static")
    ag = al.Agent(api=api, node="node-a")
    ag.write_endpoint("c1", "kvtep1", ["198.18.0.5"], namespace="default", pod="p1",
                      uid="uid-p1")
    ag.write_endpoint("c2", "kvtep2", ["198.18.0.6", "2001:db8:4b76::6"],
                      namespace="default", pod="p2", uid="uid-p2")

    ag.start()
    ready = ag.wait_ready()
    ok(ready, "agent ready after the informers synced and the routes were adopted",
       ag.logtext())
    if not ready:
        return
    want = sorted([
        ("198.18.0.5", "", "kvtep1", 1024, "link"),
        ("198.18.0.6", "", "kvtep2", 1024, "link"),
        ("198.18.0.7", "", "kvtep3", 1024, "link"),
        ("198.18.0.10", "198.19.1.2", "fab0", 1024, ""),
        ("198.18.0.64/26", "198.19.1.2", "fab0", 1024, ""),
        ("198.18.0.70", "198.19.1.3", "fab0", 1024, ""),
        ("2001:db8:4b76::6", "", "kvtep2", 1024, ""),
        ("2001:db8:4b76::40/122", "2001:db8:ff::2", "fab0", 1024, ""),
    ])
    # ip -j prints scope only for IPv4 non-universe routes
    got = [(d, g, dev, m, s if s != "global" else "") for d, g, dev, m, s in al.routes()]
    ok(got == want, "start: adopted, fixed, added and stale routes removed (ip -j route)",
       "got  %s\nwant %s" % (got, want))
    other = al.ipj("route", "show", "proto", "static")
    ok(any(r["dst"] == "198.18.2.0/24" for r in other),
       "a route of another protocol is left alone", other)
    m = {k: ag.metric("kvnet_agent_route_changes_total", 'op="%s"' % k)
         for k in ("added", "fixed", "removed")}
    ok(m["added"] >= 4 and m["fixed"] >= 2 and m["removed"] >= 2,
       "metrics count the first reconcile's changes %s" % m)
    ok(ag.metric("kvnet_agent_routes") == len(want) and ag.metric("kvnet_agent_ready") == 1
       and ag.metric("kvnet_agent_endpoints") == 3,
       "metrics: routes programmed %s, ready, 3 endpoints (one adopted)"
       % ag.metric("kvnet_agent_routes"))

    # ---- HTTP endpoints --------------------------------------------------------------
    st, body = ag.get("/healthz")
    ok(st == 200 and body == "ok\n", "/healthz 200 ok", (st, body))
    st, body = ag.get("/readyz")
    ok(st == 200, "/readyz 200 when ready", (st, body))
    st, body = ag.get("/metrics")
    ok(st == 200 and "# TYPE kvnet_agent_api_reconnects_total counter" in body and
       'kvnet_agent_informer_objects{kind="ipamblocks"} 3' in body,
       "/metrics: Prometheus text with reconnects and informer objects", body)
    st, body = ag.get("/nope")
    ok(st == 404, "unknown path 404", (st, body))

    # ---- restart: no route event at all ------------------------------------------------
    before = al.routes()
    mon = subprocess.Popen(["ip", "monitor", "route"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    wait_monitoring(mon)
    rc = ag.stop()
    ok(rc == 0 and not os.path.exists(ag.sock), "SIGTERM: exit 0, socket removed", rc)
    ok(al.routes() == before, "SIGTERM leaves every route in place")
    ag.start()
    ready = ag.wait_ready()
    wait_reconciles(ag, 2, "restart")  # the first pass and a resync
    mon.send_signal(signal.SIGTERM)
    events, _ = mon.communicate(timeout=5)
    # only kvnet's routes count (the kernel adds link-local routes of its own meanwhile)
    events = "\n".join(l for l in events.splitlines() if "proto 75" in l)
    ok(ready and al.routes() == before and events.strip() == "",
       "restart: identical routes, not one route event (ip monitor route)",
       "events: %r\n%s" % (events, ag.logtext()[-3000:]))
    # (the kernel sends no event for a replace by an identical route: the agent's own
    # count says it made no change at all)
    ch = {k: ag.metric("kvnet_agent_route_changes_total", 'op="%s"' % k)
          for k in ("added", "fixed", "removed", "failed")}
    ok(all(v == 0 for v in ch.values()), "restart: the agent changed nothing %s" % ch)

    # ---- API server down, then back --------------------------------------------------
    port = api.port
    api.stop()
    wait_reconciles(ag, 3, "API server down")  # several resyncs with the API unreachable
    ok(al.routes() == before and ag.get("/healthz")[0] == 200,
       "API server down: routes unchanged through resyncs, /healthz 200")
    api.listen = "127.0.0.1:%d" % port
    api.start()
    api.load([al.block_obj("198.18.0.128/26", "node-c")])
    got = al.wait_for(lambda: any(r[0] == "198.18.0.128/26" and r[1] == "198.19.1.3"
                                  for r in al.routes()), timeout=40)
    ok(got, "API server back: a block created after it returned is routed (resync)",
       ag.logtext()[-3000:])
    rec = ag.metric("kvnet_agent_api_reconnects_total")
    ok(rec is not None and rec >= 1, "API reconnects counted (%s)" % rec)

    # ---- SIGHUP: the configuration is read again ---------------------------------------
    with open(ag.conf) as f:
        orig = f.read()
    with open(ag.conf, "w") as f:
        f.write(orig.replace("level = debug", "level = info") + "[network]\ncross_node = none\n")
    ag.proc.send_signal(signal.SIGHUP)
    local_only = al.wait_for(lambda: all(r[1] == "" for r in al.routes()))
    ok(local_only and "configuration reloaded (log level info)" in ag.logtext(),
       "SIGHUP: log level and cross_node = none taken: only local routes left", al.routes())
    with open(ag.conf, "w") as f:
        f.write(orig)
    ag.proc.send_signal(signal.SIGHUP)
    back = al.wait_for(lambda: any(r[0] == "198.18.0.64/26" for r in al.routes()))
    ok(back, "SIGHUP again: direct routes back", al.routes())

    # ---- a pod whose CNI ADD did not reach the agent keeps its route ---------------------
    rt("198.18.0.8/32", "dev", "kvtep3", "proto", "75", "metric", "1024", "scope", "link")
    wait_reconciles(ag, 2, "unregistered pod route")  # resyncs
    ok(any(r[0] == "198.18.0.8" and r[2] == "kvtep3" for r in al.routes()) and
       "check agent_socket" in ag.logtext(),
       "an unregistered pod route on a live kv* veth is adopted, not removed (warning)",
       al.routes())

    # ---- a block moves away / an endpoint is removed via the socket -------------------
    al.sh("ip", "link", "del", "kvtep1")  # the CNI plugin's DEL removes the veth first
    ans = ag.call({"op": "del", "container_id": "c1", "ifname": "eth0"})
    ok(ans == [{"status": "deleted"}], "socket DEL answered", ans)
    gone = al.wait_for(lambda: not any(r[0] == "198.18.0.5" for r in al.routes()))
    ok(gone and not os.path.exists(os.path.join(ag.eps, "c1_eth0.json")),
       "DEL: the endpoint's route and file are gone", al.routes())
    rc = ag.stop()
    ok(rc == 0, "agent stopped", ag.logtext()[-2000:])
    ok("level=error" not in ag.logtext(), "no error in the agent's log",
       "\n".join(l for l in ag.logtext().splitlines() if "level=error" in l))


if __name__ == "__main__":
    main()
