#!/usr/bin/env python3
"""dist/kvnet as a CNI plugin talking to the running agent over its unix socket:

  - ADD with policy_setup_timeout_seconds against a running agent: registered, waits for
    "programmed", succeeds; the agent keeps the endpoint (file, metrics) and its route
  - DEL unregisters it (file gone)
  - no agent + timeout: fails with CNI code 11 and a clear message, leaves nothing behind;
    with policy_timeout_action continue: succeeds with a warning
  - no agent, no timeout: works alone, no warning
  - an agent that cannot program (API server unreachable, never synced): the ADD fails
    after the timeout ("not programmed within")
Runs in a private namespace (agentlib.enter_netns); pods are namespaces kvt-<pid>-...."""
import json
import os
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "cni"))
import agentlib as al  # noqa: E402

ok = al.ok


def main():
    al.enter_netns()
    import _cnilib as t  # after enter_netns: its namespaces are made from inside
    try:
        run(t)
    finally:
        t.cleanup()
    al.finish()


def host_veths():
    return sorted(l["ifname"] for l in al.ipj("link", "show") if l["ifname"].startswith("kv"))


def run(t):
    state = al.tmpdir()
    # the agent's pools and datastore are the plugin's (it admits only addresses inside
    # its pools, checked against IPAM's records when the datastore is the same)
    ag = al.Agent(extra="[ipam]\nipv4_pools = 198.18.0.0/24\nipv6_pools = 2001:db8:77::/112\n"
                  "[datastore]\nstate_dir = %s\n" % state)
    ag.start()
    ok(ag.wait_ready(), "agent (file datastore) ready", ag.logtext())
    args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a;K8S_POD_UID=0a1d-a"
    # one configuration per node: the plugin reads the agent's kvnet.conf (datastore,
    # node name, socket); the conflist keeps only network keys and its wait
    c = t.conf(state, "1.1.0", name="agnet", kvnet_conf=ag.conf,
               policy_setup_timeout_seconds=5)
    for k in ("datastore", "state_dir"):
        del c[k]
    pa = t.netns("poda")
    r = t.cni("ADD", c, None, cid="cid-a", netns_path="/run/netns/" + pa, args=args)
    ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2,
       "ADD with policy_setup_timeout_seconds=5 and a running agent succeeds", r)
    epf = os.path.join(ag.eps, "cid-a_eth0.json")
    ep = json.load(open(epf)) if os.path.exists(epf) else {}
    ips = [x["address"].split("/")[0] for x in (r.json or {}).get("ips", [])]
    ok(ep.get("uid") == "0a1d-a" and ep.get("pod") == "pod-a" and sorted(ep.get("ips", []))
       == sorted(ips) and ep.get("veth", "").startswith("kv"),
       "the agent keeps the endpoint (pod, uid, veth, both IPs)", ep)
    ok(ag.metric("kvnet_agent_endpoints") == 1 and
       ag.metric("kvnet_agent_cni_requests_total", 'op="add"') == 1,
       "agent metrics: 1 endpoint, 1 add")
    rts = al.routes()
    ok(all(any(x[0] == ip and x[2] == ep.get("veth") for x in rts) for ip in ips),
       "the pod's host routes are in place (proto 75)", rts)
    r = t.cni("DEL", c, None, cid="cid-a", netns_path="/run/netns/" + pa, args=args)
    ok(r.rc == 0 and not os.path.exists(epf) and
       al.wait_for(lambda: ag.metric("kvnet_agent_endpoints") == 0, timeout=5),
       "DEL unregisters the endpoint", r)
    rc = ag.stop()
    ok(rc == 0 and not os.path.exists(ag.sock), "agent stopped, socket removed")

    # ---- no agent -------------------------------------------------------------------
    before = host_veths()
    pb = t.netns("podb")
    nosock = os.path.join(al.tmpdir(), "no-agent.sock")
    c2 = t.conf(state, "1.1.0", name="agnet", agent_socket=nosock,
                policy_setup_timeout_seconds=2)
    r = t.cni("ADD", c2, None, cid="cid-b", netns_path="/run/netns/" + pb, args=args)
    j = r.json or {}
    ok(r.rc != 0 and j.get("code") == 11 and
       "not programmed by the kvnet agent" in j.get("msg", "") and
       nosock in j.get("details", "") and "policy_timeout_action fail" in j.get("details", ""),
       "no agent + timeout: CNI error 11 naming the socket and the action", r)
    ok(host_veths() == before and not al.ipj("-n", pb, "addr", "show", "eth0"),
       "the failed ADD left no veth behind", host_veths())
    r = t.cni("ADD", dict(c2, policy_timeout_action="continue"), None, cid="cid-b",
              netns_path="/run/netns/" + pb, args=args)
    ok(r.rc == 0 and "level=warn" in r.err and
       "continuing without the agent's confirmation" in r.err,
       "no agent + timeout + continue: success with a warning", r)
    t.cni("DEL", c2, None, cid="cid-b", netns_path="/run/netns/" + pb, args=args)
    r = t.cni("ADD", dict(c2, policy_setup_timeout_seconds=0), None, cid="cid-b",
              netns_path="/run/netns/" + pb, args=args)
    ok(r.rc == 0 and "level=warn" not in r.err,
       "no agent, no timeout: the plugin works alone, silently", r)
    r = t.cni("DEL", dict(c2, policy_setup_timeout_seconds=0), None, cid="cid-b",
              netns_path="/run/netns/" + pb, args=args)
    ok(r.rc == 0, "DEL without an agent", r)
    r = t.cni("ADD", dict(c2, policy_timeout_action="maybe"), None, cid="cid-b",
              netns_path="/run/netns/" + pb, args=args)
    ok(r.rc != 0 and (r.json or {}).get("code") == 7, "bad policy_timeout_action: code 7", r)

    # ---- a registration from another node's configuration is refused on both sides ----
    ag2 = al.Agent()
    ag2.start()
    ok(ag2.wait_ready(), "second agent ready", ag2.logtext())
    pm = t.netns("podm")
    cm = t.conf(state, "1.1.0", name="agnet", agent_socket=ag2.sock)  # another datastore
    before = host_veths()
    r = t.cni("ADD", cm, None, cid="cid-m", netns_path="/run/netns/" + pm, args=args)
    j = r.json or {}
    ok(r.rc != 0 and j.get("code") == 7 and "refused" in j.get("details", "")
       and ag2.state in j.get("details", "") and state in j.get("details", ""),
       "ADD whose datastore is not the agent's: code 7 naming both datastores", r)
    ok(host_veths() == before and not al.ipj("-n", pm, "addr", "show", "eth0"),
       "the refused ADD left no veth behind", host_veths())
    ok(al.wait_for(lambda: "refused" in ag2.logtext() and state in ag2.logtext(), timeout=5),
       "the agent logs the refused registration, naming both datastores", ag2.logtext())
    # the same datastore, but the plugin's kvnet.conf names another node
    other = os.path.join(al.tmpdir(), "kvnet.conf")
    with open(ag2.conf) as f:
        text = f.read().replace("node_name = node-a", "node_name = node-z")
    with open(other, "w") as f:
        f.write(text)
    cz = t.conf(state, "1.1.0", name="agnet", kvnet_conf=other)
    for k in ("datastore", "state_dir"):
        del cz[k]
    r = t.cni("ADD", cz, None, cid="cid-z", netns_path="/run/netns/" + pm, args=args)
    j = r.json or {}
    ok(r.rc != 0 and j.get("code") == 7 and 'node "node-z"' in j.get("details", "")
       and 'node "node-a"' in j.get("details", ""),
       "ADD from another node's configuration: code 7 naming both nodes", r)
    ag2.stop()

    # ---- an agent that never gets to "programmed" ------------------------------------
    d = al.tmpdir()
    kc = os.path.join(d, "kubeconfig")
    with open(kc, "w") as f:  # an API server that is not there
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "x",
                   "clusters": [{"name": "x", "cluster": {
                       "server": "http://127.0.0.1:%d" % al.free_port()}}],
                   "users": [{"name": "x", "user": {"token": "t"}}],
                   "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]},
                  f)
    stuck = al.Agent(d=d, extra="[ipam]\nipv4_pools = 198.18.0.0/24\n"
                     "ipv6_pools = 2001:db8:77::/112\n")
    with open(stuck.conf) as f:
        text = f.read().replace("type = file", "type = kubernetes").replace(
            "kubeconfig = \n", "kubeconfig = %s\n" % kc)
    with open(stuck.conf, "w") as f:
        f.write(text)
    stuck.start()
    up = al.wait_for(lambda: stuck.get("/healthz")[0] == 200, timeout=10)
    ok(up and stuck.get("/readyz")[0] == 503, "agent without its API server: live, not ready",
       stuck.logtext())
    # the plugin's side of "never programmed": the stuck agent above serves another
    # datastore (its API server), so a plugin on this node's file datastore is refused by
    # it at once; a socket that accepts the registration and never programs stands in
    # for an agent whose datastore is unreachable (the agent's side is /readyz below)
    sock = os.path.join(al.tmpdir(), "silent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock)
    srv.listen(4)
    got = []

    def silent():
        conn, _ = srv.accept()
        got.append(conn.recv(65536))
        conn.sendall(b'{"status":"registered"}\n')
        conn.recv(1)  # until the plugin gives up and closes
        conn.close()
    th = threading.Thread(target=silent, daemon=True)
    th.start()
    c3 = t.conf(state, "1.1.0", name="agnet", agent_socket=sock,
                policy_setup_timeout_seconds=1)
    pc = t.netns("podc")
    r = t.cni("ADD", c3, None, cid="cid-c", netns_path="/run/netns/" + pc, args=args)
    j = r.json or {}
    ok(r.rc != 0 and j.get("code") == 11 and "not programmed within 1000 ms" in
       j.get("details", ""), "agent never programs: ADD fails after the timeout", r)
    req = json.loads(got[0].split(b"\n")[0]) if got else {}
    ok(req.get("node") and req.get("datastore") == "file:" + state and req.get("wait"),
       "the registration carries the node name and the datastore identity", req)
    th.join(5)
    srv.close()
    st, body = stuck.get("/readyz")
    ok(st == 503 and "informer pods not synced" in body, "/readyz says why (%s)"
       % body.strip())
    stuck.stop()


if __name__ == "__main__":
    main()
