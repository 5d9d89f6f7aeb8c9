#!/usr/bin/env python3
"""agent_policy_inc — the agent's incremental NetworkPolicy reconcile ends where a
from-scratch compile does.

A small world in the test API server (3 namespaces, 12 pods, each an endpoint of the
agent behind a veth), the agent with [agent] network_policy = enabled and a resync
period far beyond the test (so only the incremental path runs between the checks).
Random event sequences (seeded, printed): policies created, patched (selectors, ports,
ipBlocks, policy types) and deleted; pods relabelled, readdressed, deleted and created
again; namespace labels changed; endpoints removed from and registered again with the
agent. After each sequence, once the table is settled, `nft -j list table inet kvnet`
is taken; then the agent is stopped, the table deleted, and a fresh agent (same
endpoints) builds it from scratch: both tables, read by nft, must be the same (chains
with their rules in order by their comments, which carry a hash of the whole rule,
sets with their elements, map elements). Also: a deleted policy's rules are gone
(checked by the policy names in the rules' comments), with another policy using the
same port kept.
  AGENT_POLICY_INC_ROUNDS (4), AGENT_POLICY_INC_EVENTS (25), AGENT_POLICY_INC_SEED
"""
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import agentlib as al  # noqa: E402

ROUNDS = int(os.environ.get("AGENT_POLICY_INC_ROUNDS", "4"))
EVENTS = int(os.environ.get("AGENT_POLICY_INC_EVENTS", "25"))
SEED = int(os.environ.get("AGENT_POLICY_INC_SEED", str(int(time.time()) % 100000)))
NSS = ["a", "b", "c"]
PODS = 12
NP = "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies"
PODP = "/api/v1/namespaces/%s/pods"


def veth(i):
    return "kv%011x" % (0xc1000000 + i)


def pod_obj(i, labels, ip):
    ns = NSS[i % len(NSS)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p%d" % i, "namespace": ns, "uid": "uid-%d" % i,
                         "labels": labels},
            "spec": {"nodeName": "node-a",
                     "containers": [{"name": "c", "image": "x",
                                     "ports": [{"name": "web", "containerPort": 8000 + i % 3,
                                                "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}


def ns_obj(name, labels):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}}


def rnd_sel(r):
    c = r.random()
    if c < 0.2:
        return {}
    if c < 0.8:
        return {"matchLabels": {"app": r.choice(["x", "y", "z"])}}
    return {"matchExpressions": [{"key": "tier", "operator": r.choice(["In", "NotIn"]),
                                  "values": [r.choice(["1", "2"])]}]}


def rnd_peer(r):
    c = r.random()
    if c < 0.4:
        return {"podSelector": rnd_sel(r)}
    if c < 0.6:
        return {"namespaceSelector": {"matchLabels": {"team": r.choice(["red", "blue"])}}}
    if c < 0.75:
        return {"namespaceSelector": {}, "podSelector": rnd_sel(r)}
    o = r.randrange(256)
    return {"ipBlock": {"cidr": "198.18.%d.0/24" % o, "except": ["198.18.%d.%d/28" % (o, 16 * r.randrange(16))]}}


def rnd_ports(r):
    c = r.random()
    if c < 0.25:
        return None
    if c < 0.4:
        return [{"protocol": "TCP", "port": "web"}]
    if c < 0.55:
        return [{"protocol": "UDP", "port": 5000 + r.randrange(50), "endPort": 5100}]
    return [{"protocol": r.choice(["TCP", "UDP", "SCTP"]), "port": 1000 + r.randrange(50)}]


def rnd_rules(r, key):
    out = []
    for _ in range(r.randrange(3)):
        ru = {}
        if r.random() < 0.8:
            ru[key] = [rnd_peer(r) for _ in range(1 + r.randrange(2))]
        p = rnd_ports(r)
        if p:
            ru["ports"] = p
        out.append(ru)
    return out


def rnd_policy(r, ns, name):
    types = r.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
    spec = {"podSelector": rnd_sel(r), "policyTypes": types}
    if "Ingress" in types:
        spec["ingress"] = rnd_rules(r, "from")
    if "Egress" in types:
        spec["egress"] = rnd_rules(r, "to")
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def rnd_labels(r):
    lb = {"app": r.choice(["x", "y", "z"])}
    if r.random() < 0.5:
        lb["tier"] = r.choice(["1", "2"])
    return lb


# ---- the table as nft -j shows it, without handles ------------------------------------

def table():
    p = subprocess.run(["nft", "-j", "list", "table", "inet", "kvnet"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return None
    chains, sets, maps = {}, {}, {}
    for it in json.loads(p.stdout)["nftables"]:
        if "chain" in it:
            chains.setdefault(it["chain"]["name"], [])
        elif "rule" in it:
            chains.setdefault(it["rule"]["chain"], []).append(it["rule"].get("comment", "?"))
        elif "set" in it:
            sets[it["set"]["name"]] = json.dumps(it["set"].get("elem", []), sort_keys=True)
        elif "map" in it:
            maps[it["map"]["name"]] = sorted(json.dumps(e, sort_keys=True)
                                             for e in it["map"].get("elem", []))
    return {"chains": chains, "sets": sets, "maps": maps}


def diff(a, b):
    out = []
    for k in ("chains", "sets", "maps"):
        for n in sorted(set(a[k]) | set(b[k])):
            if a[k].get(n) != b[k].get(n):
                out.append("%s %s: incremental %s / from scratch %s" % (
                    k, n, a[k].get(n), b[k].get(n)))
    return out


def settled(ag):
    """The table and the agent's batch counter unchanged for 1.5 s (polled, bounded)."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cur = (json.dumps(table(), sort_keys=True), ag.metric("kvnet_policy_batches_total",
                                                              'result="ok"'))
        if cur != last:
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= 1.5:
            return True
        time.sleep(0.1)
    return False


def main():
    al.enter_netns()
    api = al.start_api()
    try:
        run(api)
    finally:
        api.stop()
        al.cleanup()
    al.finish()


def register(ag, api, i, ip):
    ns = NSS[i % len(NSS)]
    ans = ag.call({"op": "add", "node": "node-a", "datastore": "kubernetes:" + api.url,
                   "container_id": "cid-%d" % i, "ifname": "eth0", "veth": veth(i),
                   "ips": [ip], "namespace": ns, "pod": "p%d" % i, "uid": "uid-%d" % i,
                   "wait": True}, answers=2, timeout=60)
    return [a.get("status") for a in ans]


def unregister(ag, i):
    return ag.call({"op": "del", "container_id": "cid-%d" % i, "ifname": "eth0"},
                   answers=1, timeout=30)


def run(api):
    r = random.Random(SEED)
    al.note("seed %d (AGENT_POLICY_INC_SEED=%d reproduces)" % (SEED, SEED))
    ips = {i: "198.18.%d.%d" % (i % 3, 10 + i) for i in range(PODS)}
    objs = [al.node_obj("node-a", "198.19.255.1")]
    objs += [ns_obj(n, {"team": r.choice(["red", "blue"])}) for n in NSS]
    labels = {i: rnd_labels(r) for i in range(PODS)}
    objs += [pod_obj(i, labels[i], ips[i]) for i in range(PODS)]
    blocks = {}
    for i in range(PODS):
        cidr = ips[i].rsplit(".", 1)[0] + ".0/24"
        blocks.setdefault(cidr, []).append((ips[i], "net.%s.p%d" % (NSS[i % 3], i),
                                            "node-a", "node-a", "uid-%d" % i))
    objs += [al.block_obj(c, "node-a", a) for c, a in blocks.items()]
    pols = {}
    for k in range(6):
        ns = NSS[k % 3]
        pols[(ns, "pol%d" % k)] = True
        objs.append(rnd_policy(r, ns, "pol%d" % k))
    api.load(objs)
    for i in range(PODS):
        al.sh("ip", "link", "add", veth(i), "type", "veth", "peer", "name", "pi%03d" % i)
        al.sh("ip", "link", "set", veth(i), "up")
    d = al.tmpdir()
    extra = "network_policy = enabled\n"
    ag = al.Agent(api=api, node="node-a", d=d, resync=3600, extra=extra).start()
    al.ok(ag.wait_ready(60), "agent ready", ag.logtext()[-1500:])
    st = [register(ag, api, i, ips[i]) for i in range(PODS)]
    al.ok(all(s == ["registered", "programmed"] for s in st), "%d endpoints programmed" % PODS,
          st)
    # DELs whose veth and route survive (a plugin that failed to delete the veth, a CNI
    # DEL before the pod sandbox goes): the agent's route adoption takes each veth back
    # as an unregistered address, with no pod, so its rules must leave the kernel. Sent
    # together, so that the adoption's reconcile runs before the policy's sync (each
    # DEL re-arms that one): the order that left a deleted pod's chains in place.
    gone = [0, 1, 2, 3]
    answers = ag.call_all([{"op": "del", "container_id": "cid-%d" % i, "ifname": "eth0"}
                           for i in gone], timeout=30)

    def chains_of(i):
        t = table() or {"chains": {}}
        return sorted(c for c in t["chains"] if c.endswith(veth(i)))
    settled(ag)
    left = {i: chains_of(i) for i in gone}
    al.ok(all('"deleted"' in a for a in answers) and not any(left.values()) and
          al.wait_for(lambda: "adopted" in ag.logtext(), timeout=10),
          "4 endpoints DEL'd together with their veths and routes left behind: the route "
          "adoption took the veths back and their rules left the kernel",
          "answers %s, chains left %s\n%s" % (answers, left, ag.logtext()[-1500:]))
    st = [register(ag, api, i, ips[i]) for i in gone]
    al.ok(all(s == ["registered", "programmed"] for s in st),
          "the 4 registered again are programmed", st)
    registered = set(range(PODS))
    present = set(range(PODS))
    npol = 6
    for rnd in range(ROUNDS):
        done = []
        for _ in range(EVENTS):
            c = r.random()
            if c < 0.3 and pols:  # patch a policy
                ns, name = r.choice(sorted(pols))
                rs = api.patch(NP % ns + "/" + name, {"spec": rnd_policy(r, ns, name)["spec"]})
                done.append("patch %s/%s %s" % (ns, name, rs.status))
            elif c < 0.4:
                ns = r.choice(NSS)
                name = "pol%d" % npol
                npol += 1
                rs = api.post(NP % ns, rnd_policy(r, ns, name))
                pols[(ns, name)] = True
                done.append("create %s/%s %s" % (ns, name, rs.status))
            elif c < 0.5 and pols:
                ns, name = r.choice(sorted(pols))
                rs = api.delete(NP % ns + "/" + name)
                del pols[(ns, name)]
                done.append("delete %s/%s %s" % (ns, name, rs.status))
            elif c < 0.68:  # relabel a pod
                i = r.randrange(PODS)
                if i in present:
                    labels[i] = rnd_labels(r)
                    rs = api.patch(PODP % NSS[i % 3] + "/p%d" % i,
                                   {"metadata": {"labels": {"app": labels[i]["app"],
                                                            "tier": labels[i].get("tier")}}})
                    done.append("relabel p%d %s" % (i, rs.status))
            elif c < 0.74:  # a namespace's labels
                n = r.choice(NSS)
                rs = api.patch("/api/v1/namespaces/" + n,
                               {"metadata": {"labels": {"team": r.choice(["red", "blue", "green"])}}})
                done.append("namespace %s %s" % (n, rs.status))
            elif c < 0.82:  # delete or create a pod
                i = r.randrange(PODS)
                if i in present:
                    rs = api.delete(PODP % NSS[i % 3] + "/p%d" % i)
                    present.discard(i)
                    done.append("delete pod p%d %s" % (i, rs.status))
                else:
                    ips[i] = "198.18.%d.%d" % (i % 3, 100 + r.randrange(100))
                    rs = api.post(PODP % NSS[i % 3], pod_obj(i, labels[i], ips[i]))
                    present.add(i)
                    done.append("create pod p%d %s %s" % (i, ips[i], rs.status))
            else:  # an endpoint leaves or comes back
                i = r.randrange(PODS)
                if i in registered:
                    unregister(ag, i)
                    registered.discard(i)
                    done.append("endpoint p%d removed" % i)
                elif i in present:
                    s = register(ag, api, i, ips[i])
                    registered.add(i)
                    done.append("endpoint p%d registered: %s" % (i, s))
        ok_settled = settled(ag)
        inc = table()
        ag.stop()
        al.sh("nft", "delete", "table", "inet", "kvnet")
        ag = al.Agent(api=api, node="node-a", d=d, resync=3600, extra=extra).start()
        ready = ag.wait_ready(60)
        ok_settled2 = ready and settled(ag)
        scratch = table()
        dd = diff(inc, scratch) if inc and scratch else ["no table: %s %s" % (inc is None, scratch is None)]
        al.ok(ok_settled and ok_settled2 and not dd,
              "round %d (%d events, seed %d): the incremental table equals the from-scratch "
              "one (%d chains, %d rules, %d sets)" % (
                  rnd, EVENTS, SEED, len(inc["chains"]) if inc else 0,
                  sum(len(v) for v in inc["chains"].values()) if inc else 0,
                  len(inc["sets"]) if inc else 0),
              "\n".join(dd[:10] + done + [ag.logtext()[-800:]]))

    # a deleted policy's rules leave the kernel; a policy with the same port stays
    ns = "a"
    live = [i for i in sorted(registered & present) if i % 3 == 0]
    if not live:  # an endpoint of namespace a for the two policies to select
        if 0 not in present:
            api.post(PODP % "a", pod_obj(0, labels[0], ips[0]))
        register(ag, api, 0, ips[0])
        live = [0]
    sel = {"matchLabels": {"app": labels[live[0]]["app"]}}
    for name, proto in (("gone", "TCP"), ("kept", "UDP")):
        api.post(NP % ns, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"name": name, "namespace": ns},
                           "spec": {"podSelector": sel, "policyTypes": ["Ingress"],
                                    "ingress": [{"ports": [{"protocol": proto, "port": 5201}]}]}})

    def named(pol):
        t = table() or {"chains": {}}
        return [c for rules in t["chains"].values() for c in rules if " a/%s/" % pol in c]
    al.ok(al.wait_for(lambda: named("gone") and named("kept"), timeout=30),
          "policies gone and kept in the table", named("gone"))
    api.delete(NP % ns + "/gone")
    al.ok(al.wait_for(lambda: not named("gone") and named("kept"), timeout=30),
          "the deleted policy's rules left the kernel, the other policy's on the same port stayed",
          named("gone"))
    # the changes went the incremental way: one full sync per agent start, no error
    log = ag.logtext()
    full = log.count('msg="policy: table kvnet updated')
    inc = log.count("endpoints changed:")
    al.ok(full <= ROUNDS + 1 and inc > 0 and "(retrying)" not in log,
          "%d incremental batches, %d full syncs for %d agent starts, no failed sync" % (
              inc, full, ROUNDS + 1),
          "\n".join(l for l in log.splitlines() if "policy" in l)[-1500:])
    ag.stop()


if __name__ == "__main__":
    main()
