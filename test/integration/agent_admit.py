#!/usr/bin/env python3
"""The agent routes only what a registration may claim (issue #17), on a real agent
(file datastore) in a private namespace, with hand-written adds over the CNI socket:

  - refused, with no endpoint and no route: lo; a veth without kvnet's name; a kv-named
    interface that is not a veth (a bridge); an interface that does not exist; an
    address outside every configured pool (198.19.0.1 with pool 198.18.0.0/16); an
    address of the pool IPAM never allocated; an address IPAM gave to another handle
  - accepted: a kvnet veth with the address IPAM reserved for the handle named
  - the answers say which check failed; refusals counted (op="refused")"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import agentlib as al  # noqa: E402

ok = al.ok


def main():
    al.enter_netns()
    d = al.tmpdir()
    state = os.path.join(d, "ipam")
    os.makedirs(state)
    ipamctl = [al.KVNET, "ipamctl", "--datastore", "file", "--state-dir", state]
    subprocess.run(ipamctl + ["pool", "add", "198.18.0.0/16"], check=True,
                   capture_output=True)
    subprocess.run(ipamctl + ["reserve", "--vm", "default/vm1", "--ip", "198.18.7.9"],
                   check=True, capture_output=True)
    subprocess.run(ipamctl + ["reserve", "--vm", "default/vm2", "--ip", "198.18.7.10"],
                   check=True, capture_output=True)
    ag = al.Agent(d=d, node="node-a", extra="[datastore]\nstate_dir = %s\n"
                  "[ipam]\nipv4_pools = 198.18.0.0/16\n" % state).start()
    ok(ag.wait_ready(), "agent ready", ag.logtext())
    mine = "file:" + state
    al.sh("ip", "link", "add", "kv0123456789a", "type", "veth", "peer", "name", "kvt-a-p")
    al.sh("ip", "link", "add", "eth9", "type", "veth", "peer", "name", "kvt-b-p")
    al.sh("ip", "link", "add", "kv00000000bb0", "type", "bridge")
    for l in ("kv0123456789a", "eth9", "kv00000000bb0"):
        al.sh("ip", "link", "set", l, "up")

    def add(veth, ips, handle="kvnet.vmi.default.vm1", cid="cid-x"):
        return ag.call({"op": "add", "node": "node-a", "datastore": mine,
                        "container_id": cid, "ifname": "eth0", "veth": veth, "ips": ips,
                        "handle": handle, "namespace": "default", "pod": "virt-launcher-x",
                        "vm": "vm1"})

    cases = [
        ("lo", ["198.18.7.9"], "veth lo: not a kvnet host veth", "lo"),
        ("eth9", ["198.18.7.9"], "veth eth9: not a kvnet host veth (kind \"veth\", name "
         "not kv + 11 hex digits)", "a veth without kvnet's name"),
        ("kv00000000bb0", ["198.18.7.9"], "not a kvnet host veth (kind \"bridge\"",
         "a kv-named bridge"),
        ("kv0fffffffff0", ["198.18.7.9"], "veth kv0fffffffff0 does not exist on this node",
         "an interface that does not exist"),
        ("kv0123456789a", ["198.19.0.1"], "198.19.0.1: outside every configured pool",
         "an address outside the pools"),
        ("kv0123456789a", ["198.18.7.11"], "198.18.7.11: not allocated in IPAM",
         "an address IPAM never allocated"),
        ("kv0123456789a", ["198.18.7.10"], "198.18.7.10: IPAM gave it to handle "
         "kvnet.vmi.default.vm2, not kvnet.vmi.default.vm1", "another handle's address"),
    ]
    for veth, ips, want, name in cases:
        a = add(veth, ips)
        ok(len(a) == 1 and a[0].get("status") == "error" and want in a[0].get("error", ""),
           "refused: %s" % name, a)
    ok(ag.metric("kvnet_agent_endpoints") == 0 and not al.routes() and
       not os.listdir(ag.eps), "nothing registered, no route, no endpoint file",
       al.routes())
    ok((ag.metric("kvnet_agent_cni_requests_total", 'op="refused"') or 0) == len(cases),
       "refusals counted")
    a = add("kv0123456789a", ["198.18.7.9"])
    ok(a == [{"status": "registered"}], "accepted: a kvnet veth and the address IPAM gave "
       "the handle", a)
    ok(al.wait_for(lambda: any(r[0] == "198.18.7.9" and r[2] == "kv0123456789a"
                               for r in al.routes()), timeout=10),
       "its route is installed", al.routes())
    ok(ag.stop() == 0, "agent stops cleanly")
    for l in ("kv0123456789a", "eth9", "kv00000000bb0"):
        al.sh("ip", "link", "del", l, check=False)
    al.finish()


if __name__ == "__main__":
    main()
