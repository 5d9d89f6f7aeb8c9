#!/usr/bin/env python3
"""Policy verdicts in the agents' flow records and the drops per endpoint and direction
(issues #14 and #12): a VM on node-a under a NetworkPolicy that admits TCP 8080 only from
the pod client-ok (node-b); client-no (node-c) is denied.

  - /metrics of node-a: kvnet_policy_dropped_{packets,bytes}_total{namespace,pod,
    direction} of the VM's ingress equal the counter of the default deny rule of its
    chain in `nft -j list ruleset` (a tool kvnet did not write), and the denied prober's
    datagrams are all counted there, none on the egress series nor on client-ok's;
    there is one series per programmed endpoint and direction.
  - the flow records name the policies behind each verdict (agent/flows.h): client-ok's
    allowed flow lists the NetworkPolicy vm-from-client-ok (reason "policy") in the flow
    log, `kvnet flows -o json` and `-o table`, and GET /flows on node-a; client-no's
    denied one says "ingress-default-deny" with the policy that isolates the VM's
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402
import test_flows as F  # noqa: E402

ok = T.ok
NETPOL = "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies"
DENIED_DGRAMS = 40  # UDP datagrams the denied prober sends
DGRAM = 100         # their payload bytes
NFLOG_GROUP = 9746  # [flows] nflog_group (the default)
NFLOG_RATE = 100    # [flows] nflog_rate (the default)
FLOOD = 5000        # datagrams of the flood

SENDER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    s.sendto(b"y" * int(sys.argv[4]), (sys.argv[1], int(sys.argv[2])))
print("sent", flush=True)
"""


class PolicyFlowLab(F.FlowLab):
    """FlowLab with NetworkPolicy enforced."""

    def __init__(self, **kw):
        super().__init__(agent_conf_extra="network_policy = enabled\n\n[cni]\n"
                         "policy_setup_timeout_seconds = 10\n", **kw)


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.2)


def deny_counters(node, veth):
    """{direction: (packets, bytes)} of the default deny rules of veth's chains, from
    nft -j list ruleset."""
    p = node.run("nft", "-j", "list", "ruleset", check=False)
    out = {}
    for o in json.loads(p.stdout or "{}").get("nftables", []):
        r = o.get("rule")
        if not r or r.get("table") != "kvnet":
            continue
        d = {"e_" + veth: "egress", "i_" + veth: "ingress"}.get(r.get("chain"))
        if d and r.get("comment", "").endswith("default deny"):
            for x in r.get("expr", []):
                if "counter" in x:
                    out[d] = (x["counter"]["packets"], x["counter"]["bytes"])
    return out


def deny_log_rule(node, veth):
    """{"group", "rate", "prefix"} of the log rule in chain i_VETH, from nft -j."""
    p = node.run("nft", "-j", "list", "ruleset", check=False)
    for o in json.loads(p.stdout or "{}").get("nftables", []):
        r = o.get("rule")
        if not r or r.get("table") != "kvnet" or r.get("chain") != "i_" + veth:
            continue
        got = {}
        for x in r.get("expr", []):
            if "log" in x:
                got["group"] = x["log"].get("group")
                got["prefix"] = x["log"].get("prefix")
            if "limit" in x:
                got["rate"] = x["limit"].get("rate")
        if "group" in got:
            return got
    return None


def drop_series(text):
    """{(namespace, pod, direction): packets} of kvnet_policy_dropped_packets_total."""
    out = {}
    for line in text.splitlines():
        if line.startswith("kvnet_policy_dropped_packets_total{"):
            lab, v = line[line.index("{") + 1:].rsplit("} ", 1)
            kv = dict(x.split("=", 1) for x in lab.split('",'))
            kv = {k: v.strip('"') for k, v in kv.items()}
            out[(kv["namespace"], kv["pod"], kv["direction"])] = float(v)
    return out


def policy(ns, vm, allowed):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "vm-from-client-ok", "namespace": ns},
            "spec": {"podSelector": {"matchLabels": {"kubevirt.io/vm": vm.name}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"ipBlock": {"cidr": allowed.ip4 + "/32"}}],
                                  "ports": [{"protocol": "TCP", "port": 8080}]}]}}


def main():
    if not L.agent_built():
        T.skip("flows policy lab", "dist/kvnet has no agent")
        return 0
    procs = []
    with PolicyFlowLab(nodes=("node-a", "node-b", "node-c"), convergence=2) as lab:
        kv = KubeVirt(lab)
        na = lab.nodes["node-a"]
        vm = kv.create_vm("vm-a", "node-a")
        good = kv.ordinary_pod("client-ok", lab.nodes["node-b"])
        bad = kv.ordinary_pod("client-no", lab.nodes["node-c"])
        r = lab.api.post(NETPOL % kv.namespace, policy(kv.namespace, vm, good))
        ok(r.status == 201, "the NetworkPolicy is created", r.status)
        try:
            veth = vm.pod.host_if
            isolated = wait_for(lambda: "ingress" in deny_counters(na, veth), 20)
            ok(bool(isolated), "node-a's table isolates the VM's ingress (a default deny "
               "in chain i_%s)" % veth, deny_counters(na, veth))
            F.start_server(lab, vm.pod.ns, 8080, procs)
            res = F.client(good.ns, vm.ip4, 8080)
            ok(res.returncode == 0 and "done" in res.stdout,
               "client-ok's connections to the VM on 8080 complete", res.stderr[-300:])
            before = deny_counters(na, veth).get("ingress", (0, 0))
            s = L.sh("ip", "netns", "exec", bad.ns, "python3", "-c", SENDER, vm.ip4, "8080",
                     str(DENIED_DGRAMS), str(DGRAM), check=False)
            ok("sent" in s.stdout, "client-no sent %d datagrams to the VM" % DENIED_DGRAMS,
               s.stderr[-300:])
            want_pk = before[0] + DENIED_DGRAMS
            after = wait_for(lambda: (lambda c: c if c[0] >= want_pk else None)(
                deny_counters(na, veth).get("ingress", (0, 0))), 10)
            ok(bool(after) and after[0] == want_pk,
               "nft -j: the VM's ingress default deny counted exactly the denied "
               "datagrams", (before, after))
            key = (kv.namespace, vm.pod.name, "ingress")

            def metric_matches():
                k = deny_counters(na, veth).get("ingress")
                series = drop_series(lab.agent_metrics(na))
                return series if k and series.get(key) == k[0] else None
            series = wait_for(metric_matches, 15)
            ok(bool(series), "/metrics: kvnet_policy_dropped_packets_total%s equals the "
               "nft -j counter of that rule" % (key,), drop_series(lab.agent_metrics(na)))
            series = series or {}
            ok(set(series) == {key},
               "one series per isolated endpoint direction on node-a (the VM's ingress; "
               "its egress is not isolated), none of other nodes' pods", series)
            mt = lab.agent_metrics(na)
            by = F.metric(mt, "kvnet_policy_dropped_bytes_total",
                          'namespace="%s",pod="%s",direction="ingress"'
                          % (kv.namespace, vm.pod.name))
            ok(by is not None and by == deny_counters(na, veth)["ingress"][1],
               "kvnet_policy_dropped_bytes_total equals the rule's byte counter", by)

            # ---- denied flows in the flow log (nflog) ----------------------------
            lim = deny_log_rule(na, veth)
            ok(lim is not None and lim.get("group") == NFLOG_GROUP and
               lim.get("rate") == NFLOG_RATE,
               "nft -j: a rate-limited log rule to nflog group %d stands before the "
               "default deny" % NFLOG_GROUP, lim)
            deny_key = (bad.ip4, 8080, "ingress")
            allow_key = (good.ip4, 8080, "ingress")
            rows = F.wait_rows(lab, vm, [deny_key, allow_key],
                               lambda rows: rows[deny_key].get("packets_in", 0)
                               >= DENIED_DGRAMS, timeout=20)
            dr, ar = rows.get(deny_key, {}), rows.get(allow_key, {})
            ok(dr.get("action") == "deny" and dr.get("proto") == "udp",
               "kvnet flows --vm lists client-no on 8080/udp with action deny", dr)
            ok(dr.get("packets_in") == DENIED_DGRAMS and
               dr.get("bytes_in") == DENIED_DGRAMS * (20 + 8 + DGRAM),
               "with every denied datagram and its bytes (under nflog_rate)", dr)
            ok(dr.get("peer") == "%s/%s" % (kv.namespace, bad.name)
               and dr.get("peer_kind") == "pod",
               "the denied peer is named (its pod)", dr)
            ok(ar.get("action") == "allow", "client-ok's flows on 8080/tcp are allowed", ar)
            pname = "%s/vm-from-client-ok" % kv.namespace
            ok(ar.get("policies") == [pname] and ar.get("reason") == "policy"
               and ar.get("policies_cut") == 0,
               "the allowed flow names the NetworkPolicy that admitted it (%s)" % pname, ar)
            ok(dr.get("reason") == "ingress-default-deny" and dr.get("policies") == [pname],
               "the denied flow says ingress-default-deny, isolated by %s" % pname, dr)
            lines = []
            for fn in F.flow_logs(lab):
                if fn.startswith(na.dir):
                    with open(fn) as fh:
                        lines += [json.loads(x) for x in fh if x.strip()]
            raw = [x for x in lines if x.get("source_ip") == good.ip4
                   and x.get("dest_port") == 8080 and x.get("action") == "allow"]
            ok(raw and all(x.get("policies") == [pname] and x.get("reason") == "policy"
                           for x in raw),
               "node-a's flow log lines of client-ok carry policies [%s]" % pname, raw[:2])
            tbl = L.sh(L.KVNET, "flows", "--vm", "%s/%s" % (kv.namespace, vm.name), "-o",
                       "table", *F.flow_logs(lab), check=False)
            tl = [x for x in tbl.stdout.splitlines() if "%s/%s" % (kv.namespace, good.name)
                  in x and "8080/tcp" in x]
            bl = [x for x in tbl.stdout.splitlines() if "%s/%s" % (kv.namespace, bad.name)
                  in x and "8080/udp" in x]
            ok(tl and pname in tl[0] and bl and
               ("ingress-default-deny:" + pname) in bl[0] and " deny " in bl[0],
               "kvnet flows -o table: the policy's name on client-ok's row, the default "
               "deny on client-no's", tbl.stdout[-1200:])
            q = "vm=%s%%2F%s" % (kv.namespace, vm.name)
            code = ("import urllib.request;print(urllib.request.urlopen("
                    "'http://127.0.0.1:9746/flows?%s',timeout=5).read().decode())" % q)
            hp = na.run("python3", "-c", code, check=False)
            try:
                hrows = F.rows_of(json.loads(hp.stdout))
            except ValueError:
                hrows = {}
            ok(hrows.get(allow_key, {}).get("policies") == [pname]
               and hrows.get(deny_key, {}).get("reason") == "ingress-default-deny",
               "GET /flows on node-a: the same policies and reasons", hp.stdout[-600:])
            ok(F.metric(lab.agent_metrics(na), "kvnet_flows_vm_denied_total",
                        'vm="%s/%s"' % (kv.namespace, vm.name)) == DENIED_DGRAMS,
               "kvnet_flows_vm_denied_total of the VM counts the denied attempts",
               F.metric(lab.agent_metrics(na), "kvnet_flows_vm_denied_total",
                        'vm="%s/%s"' % (kv.namespace, vm.name)))

            # a flood: the kernel logs at most nflog_rate a second, the counter counts all
            s = L.sh("ip", "netns", "exec", bad.ns, "python3", "-c", SENDER, vm.ip4, "8081",
                     str(FLOOD), "10", check=False)
            ok("sent" in s.stdout, "client-no floods %d datagrams to 8081" % FLOOD)
            cnt = wait_for(lambda: (lambda c: c if c[0] >= want_pk + FLOOD else None)(
                deny_counters(na, veth).get("ingress", (0, 0))), 10)
            ok(bool(cnt) and cnt[0] == want_pk + FLOOD,
               "the deny counter counted the whole flood", cnt)
            logged = wait_for(lambda: F.metric(
                lab.agent_metrics(na), "kvnet_flows_denied_packets_logged_total"), 10)
            fl = F.wait_rows(lab, vm, [(bad.ip4, 8081, "ingress")], lambda r: True, 20)
            fr = fl.get((bad.ip4, 8081, "ingress"), {})
            ok(fr.get("action") == "deny" and 0 < fr.get("packets_in", 0) < FLOOD,
               "the flood's flow is denied and logged rate-limited (%s of %d packets)"
               % (fr.get("packets_in"), FLOOD), (fr, logged))
        finally:
            for p in procs:
                p.stop()
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
