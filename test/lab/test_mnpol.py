#!/usr/bin/env python3
"""Lab scenario: MultiNetworkPolicy on L2 ports (issue #13; agent/mnpol.h).

The world of test/lab/l2lab.py on one node (node-a): trunk0 on a plain bridge in a switch
namespace, L2Networks vlan100 and vlan200, the agent with [agent] network_policy =
enabled. Two VMs (vm-l2: its reserved 198.18.100.10 / 2001:db8:100::a; vm-l2b: from the
pool) have net1 on vlan100 (the simulated Multus writes the pods' network-status, NAD
default/vlan100). Two legacy hosts on VLAN 100, A (198.18.100.2, 2001:db8:100::2) and B
(.3, ::3), live in the peer namespace: test/lib/legacy.py answers their ARP/ND and ping,
test/lab/synprobe.py sends their TCP SYNs (raw 802.1Q frames; no 8021q, no kvnet code).
Each VM listens on TCP 8080 and 9090. Checked:
  - before any MultiNetworkPolicy, A and B reach both VMs (v4 and v6) although the routed
    policy's table inet kvnet is there and br_netfilter hands bridged IPv4/IPv6 to it;
  - MNP allow-a (ingress of vm-l2 from A on TCP 8080): A gets answers on 8080 (v4, v6),
    B none, A none on 9090; vm-l2b still answers B (not selected);
  - `nft -j list ruleset`: table bridge kvnet-l2 has exactly the chains and map elements
    of the two ports, the peer sets hold exactly A's addresses, the rules of i_PORT are the
    ones `kvnet policy explain --network vlan100` names, their counters moved;
  - the migration gate (tc, agent/l2.c) of vm-l2's port stays closed through a rewrite
    of the table (A's allowed SYNs get nothing) until it is opened;
  - MNP egress-a (egress of vm-l2b to A only): vm-l2b pings A, not B;
  - a port whose pod has no network-status entry (a plain pod with only net1) is dropped
    (kvnet_mnpol_ports{state="dropped"}); kvnet_mnpol_batches_total, _rules exported;
  - agent stopped and restarted: the table stays in force while it is down (B gets no
    answer, A does) and the restarted agent adopts it untouched (same rule handles);
  - deleting the MNPs restores B's traffic and vm-l2b's ping to B.
"""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import l2lab as W  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok, note = T.ok, T.note
HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "synprobe.py")
LEGACY = os.path.join(L.ROOT, "test", "lib", "legacy.py")
MNP = "/apis/k8s.cni.cncf.io/v1beta1/namespaces/default/multi-networkpolicies"
A = ("02:4c:00:00:01:02", "198.18.100.2", "2001:db8:100::2")
B = ("02:4c:00:00:01:03", "198.18.100.3", "2001:db8:100::3")
TABLE = "kvnet-l2"


def mnp(name, selector_vm, ingress=None, egress=None):
    spec = {"podSelector": {"matchLabels": {"kubevirt.io/vm": selector_vm}}, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"k8s.v1.cni.cncf.io/policy-for": "vlan100"}},
            "spec": spec}


def blocks(h):
    return [{"ipBlock": {"cidr": h[1] + "/32"}}, {"ipBlock": {"cidr": h[2] + "/128"}}]


def probe(w, host, vm_mac, vm_ip, port, count=3):
    """synprobe from host to vm_ip:port: the number of SYNs answered."""
    p = subprocess.run(["ip", "netns", "exec", w.peer_ns, sys.executable, PROBE, "eth0", "100",
                        host[0], host[2] if ":" in vm_ip else host[1], "--to-mac", vm_mac,
                        "--to-ip", vm_ip, "--port", str(port), "--count", str(count)],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("synprobe: %s" % p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])["answers"]


def reaches(w, host, vm_mac, vm_ip, port, want, timeout=20.0):
    """Poll until host's SYNs get answers (want True) or none (want False); the last
    count. Converging either way is bounded by timeout."""
    end = time.monotonic() + timeout
    while True:
        n = probe(w, host, vm_mac, vm_ip, port)
        if (n > 0) == want or time.monotonic() > end:
            return n


def ping(pod_ns, ip, count=1):
    p = subprocess.run(["ip", "netns", "exec", pod_ns, "ping", "-n", "-c", str(count), "-W", "1",
                        "-I", "net1", ip], capture_output=True, text=True, timeout=30)
    return p.returncode == 0


def pings(pod_ns, ip, want, timeout=20.0):
    end = time.monotonic() + timeout
    while True:
        r = ping(pod_ns, ip)
        if r == want or time.monotonic() > end:
            return r


def ruleset(node):
    p = node.run("nft", "-j", "list", "ruleset")
    return json.loads(p.stdout)["nftables"]


def table(node):
    """{"chains": {name: [(comment, handle, packets)]}, "sets": {name: [elems]}} of table
    bridge kvnet-l2 as nft reads it, or None when absent."""
    d = ruleset(node)
    if not any("table" in o and o["table"]["family"] == "bridge" and
               o["table"]["name"] == TABLE for o in d):
        return None
    out = {"chains": {}, "sets": {}}
    for o in d:
        for k in ("set", "map"):
            if k in o and o[k]["family"] == "bridge" and o[k]["table"] == TABLE:
                el = []
                for e in o[k].get("elem", []):
                    if isinstance(e, list):
                        v = e[1]
                        verdict = list(v)[0]
                        el.append("%s:%s %s" % (e[0], verdict, v[verdict]["target"]))
                    elif isinstance(e, dict) and "prefix" in e:
                        el.append("%s/%d" % (e["prefix"]["addr"], e["prefix"]["len"]))
                    elif isinstance(e, dict) and "range" in e:
                        el.append("%s-%s" % tuple(e["range"]))
                    else:
                        el.append(str(e))
                out["sets"][o[k]["name"]] = sorted(el)
        if "chain" in o and o["chain"]["family"] == "bridge" and o["chain"]["table"] == TABLE:
            out["chains"].setdefault(o["chain"]["name"], [])
        if "rule" in o and o["rule"]["family"] == "bridge" and o["rule"]["table"] == TABLE:
            r = o["rule"]
            pk = next((s["counter"]["packets"] for s in r["expr"] if "counter" in s), None)
            out["chains"].setdefault(r["chain"], []).append((r.get("comment", ""),
                                                             r["handle"], pk))
    return out


def metric(lab, node, name):
    out = {}
    for line in lab.agent_metrics(node).splitlines():
        if line.startswith(name):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def listen(pod_ns, ports):
    """TCP listeners on ports in the VM's namespace (the guest's services)."""
    code = ("import socket,select,sys\nss=[]\nfor p in sys.argv[1:]:\n"
            " for fam,a in ((socket.AF_INET,'0.0.0.0'),(socket.AF_INET6,'::')):\n"
            "  s=socket.socket(fam);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "  if fam==socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1)\n"
            "  s.bind((a,int(p)));s.listen(64);ss.append(s)\n"
            "print('ready',flush=True)\n"
            "while True:\n r,_,_=select.select(ss,[],[])\n for s in r:\n  c,_=s.accept();c.close()\n")
    p = subprocess.Popen(["ip", "netns", "exec", pod_ns, sys.executable, "-c", code] +
                         [str(x) for x in ports], stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError("listener in %s did not start" % pod_ns)
    return p


def explain(lab, node, frm, to, port):
    p = subprocess.run([W.KVNET, "policy", "explain", "--kubeconfig", node.kubeconfig,
                        "--network", "vlan100", "--from", frm, "--to", to, "--port",
                        "%d/tcp" % port], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def plain_l2_pod(lab, w):
    """A plain pod with only net1 on vlan100 (node-a) and no Multus network-status entry:
    its port must stay dropped (fail closed: nothing names its network)."""
    import kubevirt
    node = lab.nodes["node-a"]
    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "l2-plain", "namespace": "default"},
           "spec": {"nodeName": node.name, "containers": [{"name": "c", "image": "x"}]}}
    r = lab.api.post(L.PODS % "default", obj)
    if r.status != 201:
        raise RuntimeError("pod l2-plain: %s %s" % (r.status, r.raw[:200]))
    pod = kubevirt.Pod(r.json, node)
    pod.ns = lab.new_pod_ns()
    rc, res, err = lab.cni("ADD", node, pod, ifname="net1", conf=w.secondary()[0][2](node))
    if rc != 0:
        raise RuntimeError("CNI ADD l2-plain net1: %s %s" % (res, err))
    return pod


def main():
    if not L.agent_built():
        T.skip("test_mnpol", "dist/kvnet has no agent")
        return 0
    with L.Lab(nodes=("node-a",), agent_conf_extra="network_policy = enabled\n") as lab:
        procs = []
        try:
            na = lab.nodes["node-a"]
            w = W.L2World(lab)
            plain_l2_pod(lab, w)
            hosts = subprocess.Popen(
                ["ip", "netns", "exec", w.peer_ns, sys.executable, LEGACY, "eth0",
                 os.path.join(lab.dir, "legacy.log"), "100,%s,%s,%s" % A, "100,%s,%s,%s" % B],
                stdout=subprocess.PIPE, text=True)
            procs.append(hosts)
            if hosts.stdout.readline().strip() != "ready":
                raise RuntimeError("legacy hosts did not start")
            kv = KubeVirt(lab, secondary=w.secondary())
            vm1 = kv.create_vm("vm-l2", "node-a")
            vm2 = kv.create_vm("vm-l2b", "node-a")
            s1, s2 = vm1.pod.sec["net1"], vm2.pod.sec["net1"]
            ok(s1.get("ip4") == W.VM_IP4 and s2.get("ip4") and s2.get("ip6"),
               "two VMs on VLAN 100: vm-l2 %s %s, vm-l2b %s %s" % (s1.get("ip4"), s1.get("ip6"),
                                                                  s2.get("ip4"), s2.get("ip6")))
            for vm in (vm1, vm2):
                procs.append(listen(vm.pod.ns, (8080, 9090)))
            v1 = (s1["mac"], s1["ip4"], s1["ip6"])
            v2 = (s2["mac"], s2["ip4"], s2["ip6"])

            # no MultiNetworkPolicy yet: everybody reaches everybody (and the routed
            # policy's inet table, which br_netfilter shows bridged IPv4/IPv6, drops nothing)
            tabs = [o["table"]["family"] + " " + o["table"]["name"] for o in ruleset(na)
                    if "table" in o]
            ok("inet kvnet" in tabs and "bridge kvnet-l2" in tabs,
               "the routed table inet kvnet and the bridge table kvnet-l2 are both there", tabs)
            bnf = na.run("cat", "/proc/sys/net/bridge/bridge-nf-call-iptables", check=False)
            note("node-a: net.bridge.bridge-nf-call-iptables = %s" % (bnf.stdout.strip() or
                                                                     "absent (no br_netfilter)"))
            for h, hn in ((A, "A"), (B, "B")):
                for v, vn in ((v1, "vm-l2"), (v2, "vm-l2b")):
                    ok(reaches(w, h, v[0], v[1], 8080, True) > 0 and
                       reaches(w, h, v[0], v[2], 8080, True) > 0,
                       "no MNP: legacy host %s reaches %s on TCP 8080 over IPv4 and IPv6"
                       % (hn, vn))

            # ingress: only A, only 8080, only vm-l2
            r = lab.api.post(MNP, mnp("allow-a", "vm-l2", ingress=[
                {"from": blocks(A), "ports": [{"protocol": "TCP", "port": 8080}]}]))
            ok(r.status == 201, "MultiNetworkPolicy allow-a created", r.raw[:200])
            ok(reaches(w, B, v1[0], v1[1], 8080, False) == 0,
               "allow-a: legacy host B gets zero answers from vm-l2 on TCP 8080 (IPv4)")
            ok(reaches(w, B, v1[0], v1[2], 8080, False) == 0,
               "allow-a: legacy host B gets zero answers from vm-l2 on TCP 8080 (IPv6)")
            ok(probe(w, A, v1[0], v1[1], 8080) > 0 and probe(w, A, v1[0], v1[2], 8080) > 0,
               "allow-a: legacy host A gets answers from vm-l2 on TCP 8080 (IPv4 and IPv6)")
            ok(probe(w, A, v1[0], v1[1], 9090) == 0 and probe(w, A, v1[0], v1[2], 9090) == 0,
               "allow-a: legacy host A gets zero answers from vm-l2 on TCP 9090")
            ok(probe(w, B, v2[0], v2[1], 8080) > 0 and probe(w, B, v2[0], v2[2], 8080) > 0,
               "allow-a: vm-l2b (not selected) still answers B")

            # the kernel's table against what the compiler says
            p1, p2 = s1["host_if"], s2["host_if"]
            t = table(na)
            want_chains = {"egress", "ingress", "e_" + p1, "i_" + p1, "e_" + p2, "i_" + p2}
            got_chains = set(t["chains"]) if t else set()
            dropped_ports = {c[2:] for c in got_chains if c[:2] in ("e_", "i_")} - {p1, p2}
            ok(want_chains <= got_chains and
               all(c[:2] in ("e_", "i_") for c in got_chains - want_chains),
               "nft -j: table bridge kvnet-l2 has the base chains and both VMs' port chains",
               sorted(got_chains))
            ok(t and "%s:goto i_%s" % (p1, p1) in t["sets"].get("in", []) and
               "%s:goto e_%s" % (p2, p2) in t["sets"].get("eg", []),
               "nft -j: the port maps send each VM port to its chains", t and t["sets"])
            peer_sets = {k: v for k, v in (t["sets"] if t else {}).items() if k[:3] in ("p4_", "p6_")}
            ok(sorted(peer_sets.values()) == sorted([[A[1]], [A[2]]]) or
               sorted(sum(peer_sets.values(), [])) == sorted([A[1] + "/32", A[2] + "/128"]) or
               sorted(sum(peer_sets.values(), [])) == sorted([A[1], A[2]]),
               "nft -j: the peer sets hold exactly A's addresses", peer_sets)
            rc_a, out_a = explain(lab, na, A[1], W.VM_IP4, 8080)
            rc_b, out_b = explain(lab, na, B[1], W.VM_IP4, 8080)
            ok(rc_a == 0 and "default/allow-a/ingress/0" in out_a and rc_b == 1,
               "kvnet policy explain --network vlan100: A allowed by default/allow-a/ingress/0, "
               "B denied", out_a + out_b)
            ids = [c for c, _h, _p in t["chains"].get("i_" + p1, [])] if t else []
            named = [c for c in ids if "default/allow-a/ingress/0" in c and "reply" not in c]
            hits = [pk for c, _h, pk in t["chains"].get("i_" + p1, []) if c in named and pk]
            ok(len(named) == 2 and ids and ids[-1].endswith("default deny") and hits,
               "nft -j: i_%s holds the compiler's rule default/allow-a/ingress/0 (v4, v6), "
               "its counters moved, default deny last" % p1, ids)
            m = metric(lab, na, "kvnet_mnpol_")
            ok(m.get('kvnet_mnpol_ports{state="programmed"}', 0) >= 2 and
               m.get('kvnet_mnpol_batches_total{result="ok"}', 0) >= 1 and
               m.get("kvnet_mnpol_rules", 0) > 0,
               "metrics: kvnet_mnpol_ports programmed >= 2, batches ok, rules", m)
            if m.get("kvnet_mnpol_batch_seconds_count"):
                note("table bridge kvnet-l2: %d batches, mean %.2f ms in the kernel, %d rules"
                     % (m["kvnet_mnpol_batch_seconds_count"],
                        1000 * m["kvnet_mnpol_batch_seconds_sum"] /
                        m["kvnet_mnpol_batch_seconds_count"], m.get("kvnet_mnpol_rules", 0)))
            ok(m.get('kvnet_mnpol_ports{state="dropped"}', 0) >= 1 and dropped_ports == set(),
               "metrics: the plain pod's port (no network-status entry) is dropped: no chain, "
               "caught by the fail-closed catch-all", m)

            # the live-migration gate (tc) of a port is not this table's: a sync while
            # vm-l2's port is gated leaves it closed, and A's allowed traffic stays out
            gate = subprocess.run([W.TOOL, "/run/netns/" + na.ns, "close", p1],
                                  capture_output=True, text=True, timeout=30)
            ok(gate.returncode == 0 and w.closed(na, p1), "vm-l2's port closed by the "
               "migration gate (l2-apply close)", gate.stderr)
            n0 = metric(lab, na, "kvnet_mnpol_batches_total").get(
                'kvnet_mnpol_batches_total{result="ok"}', 0)

            # egress: vm-l2b may talk to A only
            r = lab.api.post(MNP, mnp("egress-a", "vm-l2b", egress=[{"to": blocks(A)}]))
            ok(r.status == 201, "MultiNetworkPolicy egress-a created", r.raw[:200])
            W.wait(lambda: metric(lab, na, "kvnet_mnpol_batches_total").get(
                'kvnet_mnpol_batches_total{result="ok"}', 0) > n0, "the table rewritten")
            ok(w.closed(na, p1) and probe(w, A, v1[0], v1[1], 8080) == 0,
               "table rewritten while vm-l2's port is gated: the gate stays, A gets no answer")
            gate = subprocess.run([W.TOOL, "/run/netns/" + na.ns, "open", p1],
                                  capture_output=True, text=True, timeout=30)
            ok(gate.returncode == 0 and reaches(w, A, v1[0], v1[1], 8080, True) > 0,
               "gate opened: A gets answers again", gate.stderr)
            ok(not pings(vm2.pod.ns, B[1], False), "egress-a: vm-l2b cannot ping B")
            ok(ping(vm2.pod.ns, A[1]), "egress-a: vm-l2b pings A")
            ok(not ping(vm2.pod.ns, B[2]) and ping(vm2.pod.ns, A[2]),
               "egress-a: IPv6: vm-l2b pings A, not B")

            # restart: the table stays, the new agent adopts it
            before = table(na)
            lab.stop_agent(na)
            ok(table(na) == before or (table(na) or {}).get("sets") == before["sets"],
               "agent stopped: table bridge kvnet-l2 left in force")
            ok(probe(w, B, v1[0], v1[1], 8080) == 0 and probe(w, A, v1[0], v1[1], 8080) > 0,
               "agent down: B still gets no answer, A does")
            lab.start_agent(na)
            lab.wait_agent_ready(na)
            W.wait(lambda: metric(lab, na, "kvnet_mnpol_ports").get(
                'kvnet_mnpol_ports{state="programmed"}', 0) >= 2, "the restarted agent's sync")
            after = table(na)
            hb = {c: [h for _c, h, _p in r] for c, r in before["chains"].items()}
            ha = {c: [h for _c, h, _p in r] for c, r in after["chains"].items()} if after else {}
            m = metric(lab, na, "kvnet_mnpol_batches_total")
            ok(hb == ha and not m.get('kvnet_mnpol_batches_total{result="ok"}'),
               "agent restarted: the table adopted untouched (same rule handles, no batch)", m)
            ok(probe(w, B, v1[0], v1[1], 8080) == 0 and probe(w, A, v1[0], v1[1], 8080) > 0,
               "after the restart: B still gets no answer, A does")

            # delete: traffic back
            for name in ("allow-a", "egress-a"):
                r = lab.api.delete(MNP + "/" + name)
                ok(r.status in (200, 202), "MultiNetworkPolicy %s deleted" % name)
            ok(reaches(w, B, v1[0], v1[1], 8080, True) > 0 and
               reaches(w, B, v1[0], v1[2], 8080, True) > 0,
               "MNPs deleted: B reaches vm-l2 again (IPv4, IPv6)")
            ok(pings(vm2.pod.ns, B[1], True), "MNPs deleted: vm-l2b pings B again")
        finally:  # before the lab removes their namespaces
            for p in procs:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
