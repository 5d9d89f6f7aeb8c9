#!/usr/bin/env python3
"""Registration identity (issue #10 §2), on a real agent (file datastore) in a private
namespace: a hand-written add over the CNI socket naming another node, or another
datastore, is refused with an answer naming both sides, and the agent logs the same
line; no endpoint, no route. The matching identity registers (a real veth kv... in the
namespace). An add without node or datastore (a plugin older than the agent) is
accepted with a warning."""
import json
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import agentlib as al  # noqa: E402

ok = al.ok


def main():
    al.enter_netns()
    d = al.tmpdir()
    ag = al.Agent(d=d, node="node-a").start()
    state = ag.state
    ok(ag.wait_ready(), "agent (file datastore, node node-a) ready", ag.logtext())
    mine = "file:" + state
    al.sh("ip", "link", "add", "kv0abcdef0001", "type", "veth", "peer", "name", "kvt-id-p")
    al.sh("ip", "link", "set", "kv0abcdef0001", "up")
    base = {"op": "add", "container_id": "cid-id", "ifname": "eth0",
            "veth": "kv0abcdef0001", "ips": ["198.18.7.1"], "namespace": "default",
            "pod": "pod-id"}

    def add(**kw):
        r = dict(base, **kw)
        return ag.call(r)

    a = add(node="node-b", datastore=mine)
    want = ('registration for node "node-b" (datastore %s) refused: this agent serves '
            'node "node-a" with datastore %s' % (mine, mine))
    ok(a == [{"status": "error", "error": want}],
       "another node's registration is refused, naming both sides", a)
    ok(want.replace('"', '\\"') in ag.logtext(), "the agent logs the same line (logfmt)", ag.logtext()[-2000:])
    a = add(node="node-a", datastore="file:/somewhere/else")
    want2 = ('registration for node "node-a" (datastore file:/somewhere/else) refused: '
             'this agent serves node "node-a" with datastore %s' % mine)
    ok(a == [{"status": "error", "error": want2}],
       "another datastore's registration is refused, naming both sides", a)
    a = add(node="node-a", datastore="kubernetes:https://198.18.0.1:6443")
    ok(a and a[0].get("status") == "error" and "kubernetes:https://198.18.0.1:6443" in
       a[0].get("error", ""), "a kubernetes datastore against a file one: refused", a)
    ok(ag.metric("kvnet_agent_endpoints") == 0 and not os.path.exists(
        os.path.join(ag.eps, "cid-id_eth0.json")) and not al.routes(),
       "nothing registered, no endpoint file, no route")
    ok((ag.metric("kvnet_agent_cni_requests_total", 'op="refused"') or 0) == 3,
       "refusals counted (op=refused)")
    a = add(node="node-a", datastore=mine, wait=True)
    ok(a == [{"status": "registered"}], "the agent's own node and datastore: registered", a)
    epf = os.path.join(ag.eps, "cid-id_eth0.json")
    ep = json.load(open(epf)) if os.path.exists(epf) else {}
    ok(ep.get("node") == "node-a" and ep.get("datastore") == mine,
       "the endpoint file records the identity", ep)
    ok(al.wait_for(lambda: any(r[0] == "198.18.7.1" for r in al.routes()), timeout=10),
       "its route is installed", al.routes())
    # a plugin of the previous release sends no identity: accepted with a warning (an
    # upgrade whose agent restarted before /opt/cni/bin/kvnet was replaced)
    a = ag.call(dict(base, container_id="cid-old"))
    ok(a == [{"status": "registered"}] and "no registration identity" in ag.logtext() and
       (ag.metric("kvnet_agent_cni_requests_total", 'op="unidentified"') or 0) == 1,
       "an add without node/datastore (older plugin): registered, warned, counted", a)
    ag.call({"op": "del", "container_id": "cid-old", "ifname": "eth0"})
    ok(ag.stop() == 0, "agent stops cleanly")
    al.sh("ip", "link", "del", "kv0abcdef0001", check=False)
    al.finish()


if __name__ == "__main__":
    main()
