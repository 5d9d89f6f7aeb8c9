#!/usr/bin/env python3
"""Lab scenario of the agents' flow records (issue #14; agent/flows.h): a VM on node-a is
talked to over TCP by a pod on node-b (port 8080), a pod on node-c (port 8080) and the
API host (port 9090), and talks itself to the API host (port 7070). `kvnet flows --vm`
over every node's flow log lists exactly those peers, with their ports, directions, names
(pods by their IPAM allocation, the API host as external) and at least the bytes each
side sent. The VM then migrates to node-b and the same traffic again continues the same
report from the target node. GET /flows on node-a answers the same peers as the CLI on
node-a's log, and /metrics carries the VM's bytes. A flood of 5,000 UDP flows to distinct
ports from the VM fills the window's table (max_flows 1000): drops are counted, no window
holds more than the bound, and the agent's RSS grows by no more than the fixed tables; a
long-lived connection open across the flood is counted once (its bytes are neither lost
nor doubled when new connections fill the connection table).

Conntrack only tracks in a namespace where some rule asks for it (kube-proxy, policy);
the nodes get one such rule here, standing in for kube-proxy. No policy is enforced here, so every verdict is "allow";
denied peers and the policies behind verdicts are test_flows_policy.py's."""
import json
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
MAX_FLOWS = 1000
PAYLOAD = 20000  # bytes each client connection sends
CONNS = 3        # connections per client

SERVER = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
print("listening", flush=True)
def serve(c):
    n = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        n += len(d)
    c.sendall(b"%d\n" % n); c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

CLIENT = r"""
import socket, sys
host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for _ in range(n):
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(b"x" * size); c.shutdown(socket.SHUT_WR)
    got = c.recv(100); c.close()
    assert int(got) == size, got
print("done", flush=True)
"""

FLOOD = r"""
import socket, sys
host, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in range(n):
    s.sendto(b"f", (host, 20000 + p))
print("sent", n, flush=True)
"""


LONG = r"""
import os, socket, sys, time
host, port, size, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = socket.create_connection((host, port), timeout=5)
c.sendall(b"x" * size)
print("half", flush=True)
end = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < end:
    time.sleep(0.05)
c.sendall(b"x" * size); c.shutdown(socket.SHUT_WR)
got = c.recv(100); c.close()
assert int(got) == 2 * size, got
print("done", flush=True)
"""
LONG_SIZE = 200000  # bytes the long-lived connection sends before and after the flood


class FlowLab(L.Lab):
    """The lab with [flows] enabled on every agent, each with its own log directory."""

    def agent_config(self, node):
        return super().agent_config(node) + (
            "\n[flows]\nenabled = true\nlog_dir = %s\nflush_interval = 1\n"
            "max_flows = %d\nmax_log_bytes = 1048576\nmax_log_files = 2\n"
            % (os.path.join(node.dir, "flows"), MAX_FLOWS))


def flow_logs(lab):
    out = []
    for n in lab.nodes.values():
        d = os.path.join(n.dir, "flows")
        for k in (2, 1):
            p = os.path.join(d, "flows.log.%d" % k)
            if os.path.exists(p):
                out.append(p)
        p = os.path.join(d, "flows.log")
        if os.path.exists(p):
            out.append(p)
    return out


def report(lab, vm, files=None):
    files = files if files is not None else flow_logs(lab)
    if not files:
        return None
    p = L.sh(L.KVNET, "flows", "--vm", "%s/%s" % (vm.namespace, vm.name), "-o", "json",
             *files, check=False)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def rows_of(rep):
    """{(peer address, port, direction): row}."""
    return {(r["peer_ip"], r["port"], r["direction"]): r for r in (rep or {}).get("rows", [])}


def wait_rows(lab, vm, want, cond, timeout=30.0):
    """Until every key of want is in the report and cond(rows) holds; the last rows."""
    end = time.monotonic() + timeout
    rows = {}
    while time.monotonic() < end:
        rows = rows_of(report(lab, vm))
        if all(k in rows for k in want) and cond(rows):
            return rows
        time.sleep(0.3)
    return rows


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns] + list(cmd)


def start_server(lab, ns, port, procs):
    log = os.path.join(lab.dir, "srv-%s-%d.log" % (ns or "api", port))
    cmd = ["python3", "-c", SERVER, str(port)]
    p = L.Proc(in_ns(ns, *cmd) if ns else cmd, log)
    procs.append(p)
    end = time.monotonic() + 10
    while time.monotonic() < end and "listening" not in p.log():
        time.sleep(0.05)
    return p


def client(ns, host, port):
    cmd = ["python3", "-c", CLIENT, host, str(port), str(CONNS), str(PAYLOAD)]
    return L.sh(*(in_ns(ns, *cmd) if ns else cmd), check=False, timeout=60)


def agent_pid(node):
    for pid in L._proc_tree(node.agent.pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "kvnet":
                    return pid
        except OSError:
            pass
    return None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def metric(text, name, labels=""):
    key = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def traffic(lab, vm, pb, pc, procs):
    """The VM's servers in its current pod, then every client once."""
    for port in (8080, 9090):
        start_server(lab, vm.pod.ns, port, procs)
    res = [client(pb.ns, vm.ip4, 8080), client(pc.ns, vm.ip4, 8080),
           client(None, vm.ip4, 9090), client(vm.pod.ns, L.API4, 7070)]
    return all(r.returncode == 0 and "done" in r.stdout for r in res), res


def conntrack_on(lab):
    """kube-proxy's stand-in: a rule using ct on every node, so conntrack tracks there."""
    for n in lab.nodes.values():
        L.sh("ip", "netns", "exec", n.ns, "nft",
             "add table inet kvt_ct; add chain inet kvt_ct fw { type filter hook "
             "forward priority 0; }; add rule inet kvt_ct fw ct state new counter")


def expected(vm, pb, pc):
    """The VM's peers as traffic() makes them: {(address, port, direction): (kind, label)}."""
    return {(pb.ip4, 8080, "ingress"): ("pod", "%s/%s" % (pb.namespace, pb.name)),
            (pc.ip4, 8080, "ingress"): ("pod", "%s/%s" % (pc.namespace, pc.name)),
            (L.API4, 9090, "ingress"): ("external", ""),
            (L.API4, 7070, "egress"): ("external", "")}


def main():
    procs = []
    with FlowLab(nodes=("node-a", "node-b", "node-c"), convergence=2) as lab:
        conntrack_on(lab)
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-a", "node-a")
        pb = kv.ordinary_pod("client-b", lab.nodes["node-b"])
        pc = kv.ordinary_pod("client-c", lab.nodes["node-c"])
        start_server(lab, None, 7070, procs)
        try:
            acct = L.sh("ip", "netns", "exec", lab.nodes["node-a"].ns, "cat",
                        "/proc/sys/net/netfilter/nf_conntrack_acct").stdout.strip()
            ok(acct == "1", "the agent set nf_conntrack_acct=1 on its node", acct)
            said = [f for f in lab.agent_lines(lab.nodes["node-a"])
                    if "nf_conntrack_acct" in f.get("msg", "")]
            ok(bool(said), "and said so in its log")

            good, res = traffic(lab, vm, pb, pc, procs)
            ok(good, "every client connection to and from the VM completed",
               [(r.returncode, r.stdout, r.stderr) for r in res])
            want = expected(vm, pb, pc)
            sent = CONNS * PAYLOAD

            def enough(rows):
                return all(rows[k]["bytes_in" if k[2] == "ingress" else "bytes_out"] >= sent
                           for k in want if k in rows)
            rows = wait_rows(lab, vm, want, enough)
            ok(set(rows) == set(want), "kvnet flows --vm lists exactly the VM's peers, "
               "ports and directions", {"got": sorted(rows), "want": sorted(want)})
            for k, (kind, label) in want.items():
                r = rows.get(k, {})
                ok(r.get("peer_kind") == kind and r.get("peer") == (label or k[0]) and
                   r.get("proto") == "tcp",
                   "peer %s:%d %s named %s %s" % (k[0], k[1], k[2], kind, label or ""), r)
                side = "bytes_in" if k[2] == "ingress" else "bytes_out"
                ok(r.get(side, 0) >= sent and r.get("connections", 0) >= CONNS,
                   "peer %s:%d %s: %s >= %d and %d connections" % (
                       k[0], k[1], k[2], side, sent, CONNS), r)
                ok(r.get("nodes") == ["node-a"], "peer %s:%d reported by node-a only" % k[:2],
                   r.get("nodes"))
                ok(r.get("reason") == "unenforced" and r.get("policies") == [],
                   "peer %s:%d: reason unenforced, no policies (no policy enforced here)"
                   % k[:2], r)

            # GET /flows on node-a = the CLI over node-a's log
            na = lab.nodes["node-a"]
            q = urllib.parse.urlencode({"vm": "default/vm-a"})
            code = ("import urllib.request;print(urllib.request.urlopen("
                    "'http://127.0.0.1:9746/flows?%s',timeout=5).read().decode())" % q)
            p = na.run("python3", "-c", code, check=False)
            try:
                http_rows = rows_of(json.loads(p.stdout))
            except ValueError:
                http_rows = {}
            cli_rows = rows_of(report(lab, vm, [f for f in flow_logs(lab)
                                                if f.startswith(na.dir)]))
            ok(set(http_rows) == set(cli_rows) and set(want) <= set(http_rows),
               "GET /flows?vm=default/vm-a on node-a answers the same peers as kvnet flows",
               {"http": sorted(http_rows), "cli": sorted(cli_rows), "out": p.stdout[:300]})
            bad = na.run("python3", "-c", code.replace(q, "since=5m"), check=False)
            ok(bad.returncode != 0 and "400" in bad.stderr, "GET /flows without vm or ip: 400",
               bad.stderr[-300:])
            mt = lab.agent_metrics(na)
            got = metric(mt, "kvnet_flows_vm_bytes_in_total", 'vm="default/vm-a"')
            ok(got is not None and got >= 3 * sent,
               "kvnet_flows_vm_bytes_in_total{vm=\"default/vm-a\"} >= %d" % (3 * sent), got)

            # the VM migrates to node-b; the same traffic again
            for p_ in procs[1:]:
                p_.stop()
            del procs[1:]
            m = kv.migrate(vm, "node-b")
            ok(m.outcome == "Succeeded" and vm.node.name == "node-b", "the VM migrated to node-b",
               m.outcome)
            good, res = traffic(lab, vm, pb, pc, procs)
            ok(good, "after the migration every client connection completed",
               [(r.returncode, r.stdout, r.stderr) for r in res])

            def both(rows):
                return all(set(rows[k].get("nodes", [])) == {"node-a", "node-b"} and
                           rows[k]["bytes_in" if k[2] == "ingress" else "bytes_out"] >= 2 * sent
                           for k in want if k in rows)
            rows = wait_rows(lab, vm, want, both)
            ok(set(rows) == set(want), "after the migration the report has the same peers",
               sorted(rows))
            for k in want:
                r = rows.get(k, {})
                side = "bytes_in" if k[2] == "ingress" else "bytes_out"
                ok(set(r.get("nodes", [])) == {"node-a", "node-b"} and r.get(side, 0) >= 2 * sent
                   and r.get("connections", 0) >= 2 * CONNS,
                   "peer %s:%d %s continues from node-b (nodes %s, %s %s)" % (
                       k[0], k[1], k[2], r.get("nodes"), side, r.get(side)), r)

            # a flood of short flows from the VM: the table bound holds, and a long-lived
            # connection open across it is counted once (its counters keep their place in
            # the connection table, the flood's new connections do not push it out)
            nb = lab.nodes["node-b"]
            start_server(lab, None, 6060, procs)
            go = os.path.join(lab.dir, "long-go")
            longc = L.Proc(in_ns(vm.pod.ns, "python3", "-c", LONG, L.API4, "6060",
                                 str(LONG_SIZE), go), os.path.join(lab.dir, "long.log"))
            procs.append(longc)
            lk = (L.API4, 6060, "egress")
            rows = wait_rows(lab, vm, [lk], lambda r: r[lk]["bytes_out"] >= LONG_SIZE)
            ok(rows.get(lk, {}).get("bytes_out", 0) >= LONG_SIZE,
               "the long-lived connection's first half is in the report", rows.get(lk))
            pid = agent_pid(nb)
            before = rss_kib(pid)
            mt = lab.agent_metrics(nb)
            table_bytes = metric(mt, "kvnet_flows_table_bytes") or 0
            drops0 = metric(mt, "kvnet_flows_dropped_total") or 0
            fl = L.sh(*in_ns(vm.pod.ns, "python3", "-c", FLOOD, L.API4, "5000"), check=False)
            ok("sent 5000" in fl.stdout, "the VM sent 5,000 UDP flows to distinct ports",
               fl.stderr)
            end = time.monotonic() + 20
            drops = drops0
            while time.monotonic() < end:
                drops = metric(lab.agent_metrics(nb), "kvnet_flows_dropped_total") or 0
                if drops - drops0 >= 5000 - 3 * MAX_FLOWS:
                    break
                time.sleep(0.3)
            ok(drops - drops0 >= 5000 - 3 * MAX_FLOWS,
               "the table filled: kvnet_flows_dropped_total grew by %d" % (drops - drops0))
            dumps0 = metric(lab.agent_metrics(nb), "kvnet_flows_ct_dumps_total") or 0
            end = time.monotonic() + 20
            while time.monotonic() < end and (
                    metric(lab.agent_metrics(nb), "kvnet_flows_ct_dumps_total") or 0) < dumps0 + 2:
                time.sleep(0.3)
            with open(go, "w"):
                pass
            end = time.monotonic() + 30
            while time.monotonic() < end and "done" not in longc.log():
                time.sleep(0.1)
            ok("done" in longc.log(), "the long-lived connection sent its second half after "
               "two dumps of the full table", longc.log()[-300:])
            rows = wait_rows(lab, vm, [lk], lambda r: r[lk]["bytes_out"] >= 2 * LONG_SIZE)
            dumps1 = metric(lab.agent_metrics(nb), "kvnet_flows_ct_dumps_total") or 0
            end = time.monotonic() + 20
            while time.monotonic() < end and (
                    metric(lab.agent_metrics(nb), "kvnet_flows_ct_dumps_total") or 0) < dumps1 + 2:
                time.sleep(0.3)
            got = rows_of(report(lab, vm)).get(lk, {}).get("bytes_out", 0)
            # IP and TCP headers add ~4% on 1448-byte segments; counted twice would be 2x
            ok(2 * LONG_SIZE <= got <= 2 * LONG_SIZE * 1.15,
               "the long-lived connection is counted once: %d bytes out for %d sent"
               % (got, 2 * LONG_SIZE), rows.get(lk))
            after = rss_kib(pid)
            T.note("agent RSS on node-b: %d KiB before, %d KiB after the flood; tables %d KiB"
                   % (before, after, table_bytes // 1024))
            ok(after - before <= table_bytes // 1024 + 2048,
               "the agent's RSS grew by %d KiB, within its fixed tables (%d KiB) + 2 MiB"
               % (after - before, table_bytes // 1024))
            def windows():
                per = {}
                for f in flow_logs(lab):
                    if f.startswith(nb.dir):
                        for line in open(f, encoding="utf-8"):
                            d = json.loads(line)
                            per[d["end_time"]] = per.get(d["end_time"], 0) + 1
                return per
            end = time.monotonic() + 20
            while time.monotonic() < end and max(windows().values() or [0]) < MAX_FLOWS:
                time.sleep(0.3)
            most = max(windows().values() or [0])
            ok(most == MAX_FLOWS, "the flood's window was written with exactly %d records "
               "(the bound), no window with more (most: %d)" % (MAX_FLOWS, most))
        finally:
            for p_ in procs:
                p_.stop()
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
