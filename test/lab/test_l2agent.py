#!/usr/bin/env python3
"""Lab scenario of the agent's L2 module (issue #13; agent/l2.h): L2Network objects in the
API become bridges and trunk programs on the nodes that have the trunk, and each node says
so in the object's status.nodes.

node-a has the trunk (trunk0, a veth to a switch namespace where test/lib/legacy.py plays
a legacy host on VLAN 100); node-b has none at first. Checked: node-a reports
bridgeReady, node-b reports its trunk missing; the bridge and the trunk's tc program are
there (`ip -j -d link`, `tc -j filter`); a VM port put into the agent's bridge reaches the
legacy host with ping (its frames tagged 100 on the wire, `tcpdump -e`) and is counted in
status, GET /l2networks and kvnet_l2_ports; node-b labelled hw=gen2 uses the override
trunk1 and turns ready; a second network with the same VLAN on the same trunk reports the
clash and breaks nothing; deleting the networks removes their links and the trunk
program; an L2Network deleted while the agent is down is cleaned up when it comes back."""
import hashlib
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402

ok = T.ok
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "build", "tools", "l2-apply")
LEGACY = os.path.join(ROOT, "test", "lib", "legacy.py")
G = "/apis/kvnet.io/v1/l2networks"
VM = ("02:00:c6:12:64:0a", "198.18.100.10")
H100 = "02:4c:00:00:01:00"


def lid(name):
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def l2net(name, vlan, trunk="trunk0"):
    return {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": name},
            "spec": {"vlan": vlan, "trunk": {"interface": trunk, "nodes": [
                {"matchLabels": {"hw": "gen2"}, "interface": "trunk1"}]},
                "ipv4": {"subnet": "198.18.100.0/24", "gateway": "198.18.100.1"}}}


def entry(lab, name, node):
    st, obj = lab.api.get(G + "/" + name)
    if st != 200:
        return None
    for e in (obj.get("status") or {}).get("nodes") or []:
        if e.get("node") == node:
            return e
    return None


def wait(pred, timeout=30.0):
    """Until pred() is truthy (bounded); its last value."""
    end = time.monotonic() + timeout
    v = pred()
    while not v and time.monotonic() < end:
        time.sleep(0.2)
        v = pred()
    return v


def links(ns):
    r = subprocess.run(["ip", "-n", ns, "-j", "-d", "link"], capture_output=True, text=True)
    return {li["ifname"]: li for li in json.loads(r.stdout or "[]")}


def trunk_filters(ns, dev):
    r = subprocess.run(["ip", "netns", "exec", ns, "tc", "-j", "filter", "show", "dev", dev,
                        "ingress"], capture_output=True, text=True)
    try:
        return [f.get("options", {}).get("bpf_name", "") for f in json.loads(r.stdout or "[]")
                if f.get("options")]
    except ValueError:
        return []


def http_l2(node):
    code = ("import urllib.request;print(urllib.request.urlopen("
            "'http://127.0.0.1:9746/l2networks',timeout=5).read().decode())")
    p = node.run("python3", "-c", code, check=False)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {}


def metric(text, key):
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def touch(lab, name):
    """An object event for name (a label): the agents reconcile at once."""
    lab.api.patch(G + "/" + name, {"metadata": {"labels": {"touched": str(time.time_ns())}}})


def main():
    with L.Lab(nodes=("node-a", "node-b")) as lab:
        na, nb = lab.nodes["node-a"], lab.nodes["node-b"]
        sw, vm = "kvt-%d-l2sw" % L.PID, "kvt-%d-l2vm" % L.PID
        for ns in (sw, vm):
            lab._netns(ns)
        L.sh("ip", "-n", na.ns, "link", "add", "trunk0", "type", "veth", "peer", "name", "s0",
             "netns", sw)
        L.sh("ip", "-n", sw, "link", "set", "s0", "up")
        leg_log = os.path.join(lab.dir, "legacy.jsonl")
        leg = L.Proc(["ip", "netns", "exec", sw, "python3", LEGACY, "s0", leg_log,
                      "100,%s,198.18.100.1,2001:db8:100::1" % H100],
                     os.path.join(lab.dir, "legacy.out"))
        try:
            ok(wait(lambda: "ready" in leg.log(), 20), "the legacy host on VLAN 100 is up",
               leg.log())
            st, _ = lab.api.post(G, l2net("vlan100", 100))
            ok(st == 201, "L2Network vlan100 created", st)
            br = "kvl-" + lid("vlan100")
            ea = wait(lambda: (lambda e: e if e and e.get("bridgeReady") else None)(
                entry(lab, "vlan100", "node-a")))
            ok(ea and ea.get("trunk") == "trunk0" and ea.get("trunkFound") is True and
               ea.get("ports") == 0,
               "node-a reports vlan100 ready on trunk0 in status.nodes", ea)
            eb = wait(lambda: entry(lab, "vlan100", "node-b"))
            ok(eb and eb.get("trunkFound") is False and eb.get("bridgeReady") is False and
               "trunk trunk0 not found" in eb.get("message", ""),
               "node-b reports its trunk missing", eb)
            la = links(na.ns)
            ok(la.get(br, {}).get("linkinfo", {}).get("info_kind") == "bridge" and
               "kvu-" + lid("vlan100") in la and "kvt-" + lid("vlan100") in la,
               "ip -d link on node-a: bridge %s and its uplink veth pair" % br, sorted(la))
            ok("kvnet_trunk" in trunk_filters(na.ns, "trunk0"),
               "tc filter on trunk0 ingress: kvnet_trunk", trunk_filters(na.ns, "trunk0"))
            ok(br not in links(nb.ns), "node-b made no bridge")

            # a VM port in the agent's bridge reaches the legacy host, tagged 100 on the wire
            L.sh("ip", "-n", na.ns, "link", "add", "p1", "type", "veth", "peer", "name", "eth0",
                 "netns", vm)
            L.sh("ip", "netns", "exec", vm, "sh", "-c",
                 "ip link set eth0 address %s && ip addr add %s/24 dev eth0 && "
                 "ip link set eth0 up && ip link set lo up" % VM)
            r = subprocess.run([TOOL, "/run/netns/" + na.ns, "port", lid("vlan100"), "p1",
                                VM[0], VM[1]], capture_output=True, text=True)
            ok(r.returncode == 0, "a VM port into the agent's bridge (l2-apply port)", r.stderr)
            pcap = os.path.join(lab.dir, "trunk.pcap")
            td = L.Proc(["ip", "netns", "exec", sw, "tcpdump", "-i", "s0", "-nn", "-e", "-U",
                         "-w", pcap, "vlan 100 and icmp"], os.path.join(lab.dir, "td.out"))
            wait(lambda: "listening on" in td.log(), 10)
            p = subprocess.run(["ip", "netns", "exec", vm, "ping", "-c", "3", "-i", "0.2",
                                "-W", "2", "198.18.100.1"], capture_output=True, text=True)
            ok(p.returncode == 0, "the VM port pings the legacy host 198.18.100.1", p.stdout)
            wait(lambda: os.path.exists(pcap) and os.path.getsize(pcap) > 100, 10)
            td.stop()
            rd = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-e"], capture_output=True,
                                text=True)
            tagged = [ln for ln in rd.stdout.splitlines() if "vlan 100" in ln and VM[1] in ln]
            ok(len(tagged) >= 3, "tcpdump -e on the trunk: the VM's pings carry vlan 100 "
               "(%d frames)" % len(tagged), rd.stdout + rd.stderr)
            touch(lab, "vlan100")
            ea = wait(lambda: (lambda e: e if e and e.get("ports") == 1 else None)(
                entry(lab, "vlan100", "node-a")))
            ok(ea is not None, "status counts the port on node-a (ports: 1)",
               entry(lab, "vlan100", "node-a"))
            h = http_l2(na)
            nets = {n["name"]: n for n in h.get("networks", [])}
            ok(h.get("node") == "node-a" and nets.get("vlan100", {}).get("vlan") == 100 and
               nets["vlan100"].get("bridge") == br and
               nets["vlan100"].get("status", {}).get("ports") == 1,
               "GET /l2networks on node-a: vlan100, VLAN 100, its bridge, 1 port", h)
            mt = lab.agent_metrics(na)
            ok(metric(mt, 'kvnet_l2_networks{state="ready"}') == 1 and
               metric(mt, "kvnet_l2_ports") == 1,
               "metrics: kvnet_l2_networks{state=\"ready\"} 1, kvnet_l2_ports 1",
               [ln for ln in mt.splitlines() if ln.startswith("kvnet_l2")])

            # node-b gets a trunk by its label
            L.sh("ip", "-n", nb.ns, "link", "add", "trunk1", "type", "veth", "peer", "name",
                 "trunk1p")
            L.sh("ip", "-n", nb.ns, "link", "set", "trunk1p", "up")
            lab.api.patch("/api/v1/nodes/node-b", {"metadata": {"labels": {"hw": "gen2"}}})
            eb = wait(lambda: (lambda e: e if e and e.get("bridgeReady") else None)(
                entry(lab, "vlan100", "node-b")))
            ok(eb and eb.get("trunk") == "trunk1" and "message" not in eb,
               "node-b labelled hw=gen2 uses the override trunk1 and is ready", eb)
            ok("kvnet_trunk" in trunk_filters(nb.ns, "trunk1"), "tc filter on node-b's trunk1")

            # one VLAN twice on one trunk: the second reports it, the first keeps working
            st, _ = lab.api.post(G, l2net("vlan100-dup", 100))
            ed = wait(lambda: entry(lab, "vlan100-dup", "node-a"))
            ok(ed and ed.get("bridgeReady") is False and
               "taken by L2Network vlan100" in ed.get("message", ""),
               "a second L2Network with VLAN 100 on trunk0 reports the clash", ed)
            ok("kvl-" + lid("vlan100-dup") not in links(na.ns), "and gets no bridge")
            p = subprocess.run(["ip", "netns", "exec", vm, "ping", "-c", "1", "-W", "2",
                                "198.18.100.1"], capture_output=True, text=True)
            ok(p.returncode == 0, "vlan100 still carries the VM port's traffic", p.stdout)

            # deleting removes the links and, with the last network, the trunk program
            lab.api.delete(G + "/vlan100-dup")
            lab.api.delete(G + "/vlan100")
            gone = wait(lambda: br not in links(na.ns) and
                        "kvnet_trunk" not in trunk_filters(na.ns, "trunk0") and
                        br not in links(nb.ns))
            ok(gone, "vlan100 deleted: its bridges and both trunk programs are gone",
               {"a": sorted(links(na.ns)), "a-trunk0": trunk_filters(na.ns, "trunk0")})
            ok("p1" in links(na.ns), "the VM port itself is left to its owner (the CNI DEL)")

            # deleted while the agent is down: cleaned up at its start
            lab.api.post(G, l2net("vlan200", 200))
            br2 = "kvl-" + lid("vlan200")
            ok(wait(lambda: (entry(lab, "vlan200", "node-a") or {}).get("bridgeReady")),
               "L2Network vlan200 ready on node-a")
            lab.stop_agent(na, L.signal.SIGKILL)
            lab.api.delete(G + "/vlan200")
            ok(br2 in links(na.ns), "agent killed, vlan200 deleted meanwhile: %s still there"
               % br2)
            lab.start_agent(na)
            lab.wait_agent_ready(na)
            ok(wait(lambda: br2 not in links(na.ns)), "the restarted agent removed %s" % br2)
            ok(any("removed kvl-" + lid("vlan200") in ln.get("msg", "")
                   for ln in lab.agent_lines(na)),
               "and said so in its log")
        finally:
            leg.stop()
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
