#!/usr/bin/env python3
"""NetworkPolicy enforced by the agents ([agent] network_policy = enabled), checked by
tools kvnet did not write.

The grid: namespaces x (ns=x) and y (ns=y); on node-a pod x/a (pod=a) and the VM x/vm
(KubeVirt launcher pod, labels kubevirt.io/vm=vm); on node-b pods x/d (pod=d) and y/c
(pod=c); every pod serves 80/tcp, 8080/tcp (named "http" is 80) and 81/udp; the API host
is the external peer. For each case (the upstream e2e netpol cases: deny-all,
allow-from-namespace, allow-from-pod on a named port, ipBlock with except and endPort,
egress to an ipBlock, several policies as a union, both selectors combined):
  - the expected matrix is written here by hand from the Kubernetes semantics;
  - `kvnet policy explain` over the same objects (read from the API) must agree cell by
    cell;
  - every cell, over IPv4 and IPv6, is probed with real traffic (ncat for TCP, UDP
    datagrams) and must agree (the ipBlocks are IPv4: no IPv6 peer matches them);
  - `nft -j list ruleset` on each node holds only table inet kvnet with exactly the
    chains of its local endpoints, map elements to them, a default deny exactly on the
    isolated directions, rule comments naming only the case's policies, no unused set.
Then the agent on node-a is killed (SIGKILL) and started again while two echo streams
run to the VM: the denied one (from y/c) gets zero answers throughout, the allowed one
(from x/a) keeps being answered, and the restarted agent changes nothing in the table.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
from kubevirt import KubeVirt, Pod  # noqa: E402

ok = T.ok
PROBE = os.path.join(L.HERE, "netprobe.py")
PORTS = ["80/tcp", "8080/tcp", "81/udp"]
NETPOL = "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies"


def nft_json(node):
    p = node.run("nft", "-j", "list", "ruleset", check=False)
    if p.returncode != 0:
        return []
    return json.loads(p.stdout).get("nftables", [])


def wait_for(cond, timeout):
    """Poll cond until true (True) or timeout seconds pass (False)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def ruleset_shape(node):
    """nft -j list ruleset without what traffic changes (counter values, the metainfo
    header): two calls compare equal when nobody changed the ruleset in between."""
    def strip(x):
        if isinstance(x, dict):
            if set(x) == {"counter"} and isinstance(x["counter"], dict):
                return {"counter": {}}
            return {k: strip(v) for k, v in x.items()}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return [strip(o) for o in nft_json(node) if "metainfo" not in o]


def in_kernel(pod):
    """What is missing of pod's chains and map elements in its node's ruleset."""
    objs = nft_json(pod.node)
    chains = {o["chain"]["name"] for o in objs if "chain" in o}
    els = {}
    for o in objs:
        if "map" in o:
            for e in o["map"].get("elem", []):
                if isinstance(e, list):
                    els[(o["map"]["name"], e[0])] = e[1].get("goto", {}).get("target")
    miss = ["chain %s_%s" % (d, pod.host_if) for d in "ei"
            if "%s_%s" % (d, pod.host_if) not in chains]
    miss += ["map %s element %s" % (m, pod.host_if) for m, d in (("eg", "e"), ("in", "i"))
             if els.get((m, pod.host_if)) != "%s_%s" % (d, pod.host_if)]
    return miss


def mkpod(lab, kv, name, node, labels):
    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": kv.namespace, "labels": labels},
           "spec": {"nodeName": node.name, "containers": [{
               "name": "c", "image": "busybox",
               "ports": [{"name": "http", "containerPort": 80},
                         {"name": "alt", "containerPort": 8080},
                         {"name": "dns", "containerPort": 81, "protocol": "UDP"}]}]}}
    r = lab.api.post(L.PODS % kv.namespace, obj)
    if r.status != 201:
        raise RuntimeError("create pod %s: %s %s" % (name, r.status, r.raw[:200]))
    pod = Pod(r.json, node)
    kv.pod_add(pod)
    kv._pod_status(pod, "Running")
    return pod


def serve(lab, pod):
    ready = os.path.join(lab.dir, "serve-%s.ready" % pod.name)
    p = L.Proc(["ip", "netns", "exec", pod.ns, sys.executable, PROBE, "serve", "--tcp",
                "80,8080", "--udp", "81", "--ready", ready], ready + ".log")
    end = time.monotonic() + 10
    while not os.path.exists(ready):
        if not p.alive() or time.monotonic() > end:
            raise RuntimeError("netprobe serve in %s: %s" % (pod.name, p.log()))
        time.sleep(0.02)
    return p


def probe(src, targets, timeout=1.0):
    cmd = [sys.executable, PROBE, "probe", "--timeout", str(timeout)] + targets
    if src is not None:
        cmd = ["ip", "netns", "exec", src.ns] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return json.loads(p.stdout)


def explain(objdir, src, dst, port):
    p = subprocess.run([L.KVNET, "policy", "explain", "--dir", objdir, "--from", src, "--to",
                        dst, "--port", port], capture_output=True, text=True, timeout=30)
    return {0: True, 1: False}.get(p.returncode, p.stdout + p.stderr)


def dump_objects(lab, objdir):
    """The objects the compiler reads, from the API, as List files for explain."""
    shutil.rmtree(objdir, ignore_errors=True)
    os.makedirs(objdir)
    for fn, kind, path in (("ns", "Namespace", "/api/v1/namespaces"),
                           ("pods", "Pod", "/api/v1/pods"),
                           ("vmis", "VirtualMachineInstance",
                            "/apis/kubevirt.io/v1/virtualmachineinstances"),
                           ("netpols", "NetworkPolicy",
                            "/apis/networking.k8s.io/v1/networkpolicies")):
        r = lab.api.get(path)
        items = r.json.get("items", []) if r.status == 200 else []
        for it in items:  # a List's items carry no kind, as from a real API server
            it.setdefault("kind", kind)
        with open(os.path.join(objdir, fn + ".json"), "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)


# ---- the cases ------------------------------------------------------------------------

def sel(**kv):
    return {"matchLabels": kv}


def np(ns, name, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


SRCS = ["a", "vm", "c", "d", "api"]
DSTS = ["a", "vm", "c", "d"]
NS = {"a": "x", "vm": "x", "d": "x", "c": "y"}


def case_list(ips):
    """(name, policies, want(src, dst, port, family 4|6) -> bool, isolated {(endpoint,
    dir)}). The ipBlocks are IPv4: an IPv6 peer matches none of them."""
    a4 = ips["a"] + "/32"
    d4 = ips["d"] + "/32"
    deny_x = np("x", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]})
    return [
        ("no policy", [], lambda s, d, p, f: True, set()),
        ("deny-all ingress in x", [deny_x],
         lambda s, d, p, f: NS[d] != "x", {(e, "in") for e in ("a", "vm", "d")}),
        ("allow-from-namespace y to x/a (with deny-all)", [
            deny_x,
            np("x", "a-from-y", {"podSelector": sel(pod="a"), "ingress": [
                {"from": [{"namespaceSelector": sel(ns="y")}]}]})],
         lambda s, d, p, f: NS[d] != "x" or (d == "a" and s == "c"),
         {(e, "in") for e in ("a", "vm", "d")}),
        ("allow-from-pod on a named port (x pods to x/d on http)", [
            np("x", "d-http", {"podSelector": sel(pod="d"), "ingress": [
                {"from": [{"podSelector": {}}], "ports": [{"port": "http"}]}]})],
         lambda s, d, p, f: d != "d" or (s in ("a", "vm") and p == "80/tcp"),
         {("d", "in")}),
        ("ipBlock with except and endPort (to y/c)", [
            np("y", "c-block", {"podSelector": sel(pod="c"), "ingress": [
                {"from": [{"ipBlock": {"cidr": "198.18.0.0/24", "except": [a4]}}],
                 "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}]})],
         lambda s, d, p, f: d != "c" or (f == 4 and s in ("vm", "d") and p == "8080/tcp"),
         {("c", "in")}),
        ("egress of x/a to an ipBlock (d on 81/udp only)", [
            np("x", "a-out", {"podSelector": sel(pod="a"), "policyTypes": ["Egress"],
                              "egress": [{"to": [{"ipBlock": {"cidr": d4}}],
                                          "ports": [{"protocol": "UDP", "port": 81}]}]})],
         lambda s, d, p, f: s != "a" or (f == 4 and d == "d" and p == "81/udp"),
         {("a", "eg")}),
        ("several policies as a union, both selectors combined (to y/c)", [
            np("y", "c-from-xa", {"podSelector": sel(pod="c"), "ingress": [
                {"from": [{"namespaceSelector": sel(ns="x"), "podSelector": sel(pod="a")}],
                 "ports": [{"port": 80}]}]}),
            np("y", "c-from-d", {"podSelector": sel(pod="c"), "ingress": [
                {"from": [{"namespaceSelector": {}, "podSelector": sel(pod="d")}],
                 "ports": [{"port": 8080}]}]})],
         lambda s, d, p, f: d != "c" or (s == "a" and p == "80/tcp") or
         (s == "d" and p == "8080/tcp"), {("c", "in")}),
    ]


def set_policies(lab, pols):
    for ns in ("x", "y"):
        r = lab.api.get(NETPOL % ns)
        for it in (r.json.get("items", []) if r.status == 200 else []):
            lab.api.delete(NETPOL % ns + "/" + it["metadata"]["name"])
    for p in pols:
        r = lab.api.post(NETPOL % p["metadata"]["namespace"], p)
        if r.status != 201:
            raise RuntimeError("create policy: %s %s" % (r.status, r.raw[:300]))


def table_problems(node, local, isolated, pol_names):
    """What is wrong with node's ruleset for this case ([] when it is as designed).
    local: {endpoint: veth} on this node."""
    objs = nft_json(node)
    bad = []
    tables = [(o["table"]["family"], o["table"]["name"]) for o in objs if "table" in o]
    if tables != [("inet", "kvnet")]:
        bad.append("tables %s" % tables)
    chains = {o["chain"]["name"] for o in objs if "chain" in o}
    want = {"egress", "ingress"} | {"%s_%s" % (d, v) for v in local.values() for d in "ei"}
    if chains != want:
        bad.append("chains %s, want %s" % (sorted(chains), sorted(want)))
    rules = {}
    used_sets = set()
    for o in objs:
        if "rule" in o:
            r = o["rule"]
            rules.setdefault(r["chain"], []).append(r.get("comment", ""))
            for ex in r.get("expr", []):
                right = ex.get("match", {}).get("right")
                if isinstance(right, str) and right.startswith("@"):
                    used_sets.add(right[1:])
    sets = {o["set"]["name"]: o["set"] for o in objs if "set" in o}
    maps = {o["map"]["name"]: o["map"] for o in objs if "map" in o}
    unused = set(sets) - used_sets
    if unused:
        bad.append("unused sets %s" % sorted(unused))
    for m, d in (("eg", "e"), ("in", "i")):
        el = {}
        for e in maps.get(m, {}).get("elem", []):
            k, v = e if isinstance(e, list) else (None, None)
            if k is not None:
                el[k] = v.get("goto", {}).get("target")
        want_el = {v: "%s_%s" % (d, v) for v in local.values()}
        if el != want_el:
            bad.append("map %s %s, want %s" % (m, el, want_el))
    for ep, veth in local.items():
        for d, dn in (("e", "eg"), ("i", "in")):
            cm = rules.get("%s_%s" % (d, veth), [])
            iso = (ep, dn) in isolated
            deny = bool(cm) and cm[-1].endswith("default deny")
            if iso != deny:
                bad.append("%s %s: isolated %s but rules %s" % (ep, dn, iso, cm))
            for c in cm[:-1] if deny else []:
                pid = c.split(" ", 1)[1].split("/")[:2] if " " in c else []
                if "/".join(pid) not in pol_names:
                    bad.append("%s %s: rule %r of no policy of this case" % (ep, dn, c))
    return bad


def wait_tables(lab, locals_, isolated, pol_names, timeout=20.0):
    end = time.monotonic() + timeout
    while True:
        bad = {}
        for n, local in locals_.items():
            b = table_problems(lab.nodes[n], local, isolated, pol_names)
            if b:
                bad[n] = b
        if not bad or time.monotonic() > end:
            return bad
        time.sleep(0.1)


def main():
    if not L.agent_built():
        T.skip("policy lab", "dist/kvnet has no agent")
        return 0
    with L.Lab(nodes=("node-a", "node-b"), log=T.note,
               agent_conf_extra="network_policy = enabled\n\n[cni]\n"
               "policy_setup_timeout_seconds = 10\n") as lab:
        for ns in ("x", "y"):
            lab.api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": ns, "labels": {"ns": ns}}})
        kx, ky = KubeVirt(lab, "x"), KubeVirt(lab, "y")
        na, nb = lab.nodes["node-a"], lab.nodes["node-b"]
        pods = {"a": mkpod(lab, kx, "a", na, {"pod": "a"}),
                "d": mkpod(lab, kx, "d", nb, {"pod": "d"}),
                "c": mkpod(lab, ky, "c", nb, {"pod": "c"})}
        vm = kx.create_vm("vm", "node-a")
        pods["vm"] = vm.pod
        # the gate: each CNI ADD above waited for "programmed"; so its chains and map
        # elements were in the kernel when it answered (checked at once, no waiting)
        for k in ("a", "d", "c", "vm"):
            got = in_kernel(pods[k])
            ok(got == [], "gate: %s's chains and map elements were in the kernel when "
               "the CNI ADD on %s answered" % (k, pods[k].node.name), got)
        servers = [serve(lab, p) for p in pods.values()]
        ips = {k: p.ip4 for k, p in pods.items()}
        locals_ = {"node-a": {"a": pods["a"].host_if, "vm": pods["vm"].host_if},
                   "node-b": {"c": pods["c"].host_if, "d": pods["d"].host_if}}
        ips6 = {k: p.ip6 for k, p in pods.items()}
        names = {"a": "x/a", "vm": "x/vm", "c": "y/c", "d": "x/d", "api": L.API4}
        # the IPv6 cells are explained by address (a pod's v6 address is that pod)
        names6 = dict(ips6, api=L.API6)
        objdir = os.path.join(lab.dir, "objects")
        for name, pols, want, isolated in case_list(ips):
            set_policies(lab, pols)
            pnames = {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"])
                      for p in pols}
            bad = wait_tables(lab, locals_, isolated, pnames)
            ok(not bad, "%s: nft -j list ruleset on both nodes is the designed table "
               "(only table inet kvnet, chains and map elements of the local endpoints, "
               "default deny exactly where isolated, no stray rule or set)" % name, bad)
            dump_objects(lab, objdir)
            cells = [(s, d, p, f) for f in (4, 6) for s in SRCS for d in DSTS
                     for p in PORTS if s != d]
            got_explain = {}
            ths = []
            for c in cells:
                def run(c=c):
                    nm = names if c[3] == 4 else names6
                    got_explain[c] = explain(objdir, nm[c[0]], nm[c[1]], c[2])
                ths.append(threading.Thread(target=run))
            for t in ths:
                t.start()
            for t in ths:
                t.join()
            got_probe = {}
            for s in SRCS:
                tg = {}
                for d in DSTS:
                    for p in PORTS:
                        if d != s:
                            tg[(s, d, p, 4)] = "%s:%s" % (ips[d], p)
                            tg[(s, d, p, 6)] = "[%s]:%s" % (ips6[d], p)
                res = probe(pods.get(s), list(tg.values()))
                for c, t in tg.items():
                    got_probe[c] = res.get(t)
            wrong_e = {c: got_explain[c] for c in cells if got_explain[c] != want(*c)}
            wrong_p = {c: got_probe[c] for c in cells if got_probe[c] != want(*c)}
            allowed = sum(1 for c in cells if want(*c))
            ok(not wrong_e, "%s: kvnet policy explain agrees with the expected matrix "
               "(%d cells IPv4 and IPv6, %d allowed)" % (name, len(cells), allowed), wrong_e)
            ok(not wrong_p, "%s: real probes agree with the expected matrix (%d cells IPv4 "
               "and IPv6, %d allowed)" % (name, len(cells), allowed), wrong_p)

        # ---- the agent restarts: the rules stay in force -----------------------------
        set_policies(lab, [np("x", "vm-from-a", {"podSelector": {"matchLabels": {
            "kubevirt.io/vm": "vm"}}, "ingress": [{"from": [{"podSelector": sel(pod="a")}]}]})])
        bad = wait_tables(lab, locals_, {("vm", "in")}, {"x/vm-from-a"})
        ok(not bad, "restart: the table holds vm-from-a", bad)
        guest = "vm@node-a"
        allowed = lab.stream(pods["a"], vm.ip4, "allowed")
        denied = lab.stream(pods["c"], vm.ip4, "denied")
        allowed.wait_answers(guest, 200)
        before = len(lab.agent_lines(na))
        shape = ruleset_shape(na)
        t_kill = time.time()
        lab.stop_agent(na, signal.SIGKILL)
        lab.start_agent(na)
        lab.wait_agent_ready(na)
        t_ready = time.time()
        # the restarted agent's first sync is done once it reports its endpoints
        # programmed (set after it compared the kernel's table with the compiler's)
        synced = wait_for(lambda: 'kvnet_policy_endpoints{state="programmed"} 2' in
                            lab.agent_metrics(na), 20.0)
        ok(synced, "restart: the restarted agent synced table kvnet (both endpoints of "
           "node-a programmed, kvnet_policy_endpoints)", lab.agent_metrics(na)[-2000:])
        bad = wait_tables(lab, locals_, {("vm", "in")}, {"x/vm-from-a"})
        allowed.wait_answers(guest, 200)
        ra, rd = allowed.stop(), denied.stop()
        ok(not bad, "restart: the table is the designed one after the restart", bad)
        shape_after = ruleset_shape(na)
        ok(shape_after == shape, "restart: nft -j list ruleset on node-a is identical "
           "before and after the SIGKILL and restart (%d objects; counter values aside, "
           "handles included)" % len(shape),
           [o for o in shape_after if o not in shape] + [o for o in shape
                                                         if o not in shape_after])
        ok(rd.sent > 0 and len(rd.reply) == 0,
           "restart: the denied stream (y/c -> VM) got zero answers before, during and "
           "after the agent's restart (%d sent)" % rd.sent, rd.who())
        gap = ra.window(t_kill, t_ready)
        ok(gap.sent > 0 and len(gap.reply) > 0, "restart: the allowed stream (x/a -> VM) "
           "was answered while the agent was down and starting (%d of %d echoes sent "
           "then)" % (len(gap.reply), gap.sent))
        after = lab.agent_lines(na)[before:]
        upd = [x for x in after if "table kvnet updated" in x.get("msg", "")]
        ok(upd == [], "restart: the restarted agent adopted the table and changed nothing",
           upd)

        # ---- fail closed: an agent that does not answer (stopped) ---------------------
        # node-b's agent is frozen (SIGSTOP: its socket takes the connection, nobody
        # answers): the CNI ADD waits policy_setup_timeout_seconds and fails (TRYLATER)
        os.kill(nb.agent.p.pid, signal.SIGSTOP)
        try:
            err = ""
            try:
                mkpod(lab, ky, "e", nb, {"pod": "e"})
            except RuntimeError as ex:
                err = str(ex)
        finally:
            os.kill(nb.agent.p.pid, signal.SIGCONT)
        ok("not programmed" in err, "fail closed: with node-b's agent stopped the CNI ADD "
           "failed after policy_setup_timeout_seconds (endpoint not programmed)", err[-400:])
        for s in servers:
            s.stop()
    leftover = [x for x in L.sh("ip", "netns", "list").stdout.split()
                if x.startswith("kvt-%d-" % L.PID)]
    ok(leftover == [], "lab cleaned up: no namespaces left", leftover)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
