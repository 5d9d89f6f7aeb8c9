#!/usr/bin/env python3
"""Mode l2 as a runtime calls it: a VM's secondary interface net1 on the L2Network vlan100
(VLAN 100 of a veth "trunk" to a legacy peer, test/lib/legacy.py), file datastore.

Namespaces: H (the node: kvnet runs there, trunk tr0), S (the switch side: legacy.py on
s0 answers for 198.18.100.200 on VLAN 100 only), P (the VM pod). Checked with ip -j,
ping, tcpdump -e and the legacy host's own frame log."""
import json
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cnilib as L  # noqa: E402

LEGACY = os.path.join(L.ROOT, "test", "lib", "legacy.py")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
VMMAC = "02:00:c6:12:64:0a"
LEGMAC = "02:4c:00:00:01:00"
L2NET = {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": "vlan100"},
         "spec": {"vlan": 100, "trunk": {"interface": "tr0"},
                  "ipv4": {"subnet": "198.18.100.0/24", "gateway": "198.18.100.1"},
                  "ipv6": {"subnet": "2001:db8:100::/64", "gateway": "2001:db8:100::1"}}}
procs = []


def stop():
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wait_for(pred, what, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def sh(ns, cmd):
    return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", cmd], capture_output=True,
                          text=True, timeout=60)


def main():
    H, S, P = L.netns("l2h"), L.netns("l2s"), L.netns("l2p")
    for n in (H, S, P):
        sh(n, "ip link set lo up")
    subprocess.run(["ip", "-n", H, "link", "add", "tr0", "type", "veth", "peer", "name", "s0",
                    "netns", S], check=True)
    sh(H, "ip link set tr0 up")
    sh(S, "ip link set s0 up")
    tmp = L.tmpdir()
    log = os.path.join(tmp, "legacy.jsonl")
    state = os.path.join(tmp, "ipam")
    os.makedirs(os.path.join(state, "l2networks"))
    with open(os.path.join(state, "l2networks", "vlan100.json"), "w") as f:
        json.dump(L2NET, f)
    lp = subprocess.Popen(["ip", "netns", "exec", S, PY, LEGACY, "s0", log,
                           "100,%s,198.18.100.200,2001:db8:100::200" % LEGMAC],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(lp)
    r, _, _ = select.select([lp.stdout], [], [], 20)
    L.ok(r and "ready" in lp.stdout.readline(), "legacy host on VLAN 100 is up")

    base = L.conf(state, name="vlan100-nad", network="vlan100")
    del base["ipv4_pools"], base["ipv6_pools"]
    cfg = dict(base, runtimeConfig={"mac": VMMAC})
    pns = "/run/netns/" + P
    res = L.cni("ADD", cfg, H, cid="vm1", netns_path=pns, ifname="net1")
    L.ok(res.rc == 0 and res.json, "ADD net1 on L2Network vlan100", res)
    ips = [i["address"] for i in (res.json or {}).get("ips", [])]
    v4 = [a for a in ips if ":" not in a]
    v6 = [a for a in ips if ":" in a]
    L.ok(len(v4) == 1 and v4[0].startswith("198.18.100.") and v4[0].endswith("/24") and
         not v4[0].startswith("198.18.100.1/") and len(v6) == 1 and
         v6[0].startswith("2001:db8:100::") and v6[0].endswith("/64") and
         not v6[0].startswith("2001:db8:100::1/"),
         "one IPv4 and one IPv6 of the L2Network's subnets with their prefix, not the gateway",
         ips)
    link = (L.ipj(P, "link", "show", "net1") or [{}])[0]
    L.ok(link.get("address") == VMMAC, "net1 has the MAC runtimeConfig.mac asks for", link)
    addrs = [a["local"] + "/" + str(a["prefixlen"])
             for a in (L.ipj(P, "addr", "show", "net1") or [{}])[0].get("addr_info", [])
             if a.get("scope") == "global"]
    L.ok(sorted(addrs) == sorted(ips), "net1's addresses are the result's", addrs)
    sn = subprocess.run([L.KVNET, "ipamctl", "-c", "/dev/null", "--datastore", "file",
                         "--state-dir", state, "show", "--network", "vlan100", "-o", "json"],
                        capture_output=True, text=True, timeout=60,
                        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                             "HOME": "/nonexistent"})
    try:
        items = json.loads(sn.stdout).get("items", [])
    except ValueError:
        items = None
    L.ok(sn.returncode == 0 and items is not None and
         sorted((x["ip"], x["mac"], x["handle"]) for x in items) ==
         sorted((a.split("/")[0], VMMAC, "vlan100.vm1") for a in ips),
         "ipamctl show --network vlan100 (file datastore): both addresses with the VM's MAC",
         sn)
    routes = L.ipj(P, "route", "show", "default") + L.ipj(P, "-6", "route", "show", "default")
    L.ok(routes == [], "no default route on the secondary interface", routes)
    host = (res.json or {}).get("interfaces", [{}])[0].get("name", "")
    hl = (L.ipj(H, "-d", "link", "show", host) or [{}])[0]
    L.ok(hl.get("master", "").startswith("kvl-"), "host port %s is in the bridge" % host, hl)
    h6 = (L.ipj(H, "-6", "addr", "show", host) or [{}])[0].get("addr_info", [])
    L.ok(h6 == [], "the host port has no IPv6 address of its own", h6)

    tcp = subprocess.Popen(["ip", "netns", "exec", H, "tcpdump", "-l", "-n", "-e", "-i", "tr0",
                            "-c", "2", "icmp"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    procs.append(tcp)
    wait_for(lambda: "listening" in (tcp.stderr.readline() or "listening"), "tcpdump")
    pr = sh(P, "ping -c 3 -W 2 198.18.100.200")
    L.ok(pr.returncode == 0, "the VM reaches the legacy host 198.18.100.200 on VLAN 100", pr)
    try:
        out, _ = tcp.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        tcp.kill()
        out, _ = tcp.communicate()
    L.ok("vlan 100" in out and VMMAC in out, "tcpdump -e on the trunk: the VM's frames tagged "
         "vlan 100", out)
    seen = []
    with open(log) as f:
        seen = [json.loads(ln) for ln in f if ln.endswith("\n")]
    L.ok(any(x.get("vid") == 100 and x.get("src") == VMMAC for x in seen),
         "the legacy host received the VM's frames on VLAN 100", seen[-5:])

    prev = dict(cfg, prevResult=res.json)
    chk = L.cni("CHECK", prev, H, cid="vm1", netns_path=pns, ifname="net1")
    L.ok(chk.rc == 0, "CHECK ok", chk)
    again = L.cni("ADD", cfg, H, cid="vm1b", netns_path="/run/netns/" + L.netns("l2q"),
                  ifname="net1", args="MAC=02:00:c6:12:64:0b")
    L.ok(again.rc != 0 and again.json and again.json.get("code") == 4,
         "CNI_ARGS MAC different from runtimeConfig.mac: code 4 (invalid CNI_ARGS)", again)

    # bad configurations: the right CNI error JSON
    bad = [("mode l2 without network", dict(L.conf(state, mode="l2")), 7),
           ("network of no L2Network", dict(base, network="vlan999"), 7),
           ("network with ipv4_pools", dict(base, ipv4_pools=["198.18.0.0/24"]), 7),
           ("network with mode routed", dict(base, mode="routed"), 7),
           ("network not a DNS label", dict(base, network="VLAN_1"), 7)]
    for name, c, code in bad:
        b = L.cni("ADD", c, H, cid="bad1", netns_path=pns, ifname="net2")
        L.ok(b.rc != 0 and b.json and b.json.get("code") == code and b.json.get("details"),
             "%s: code %d with details" % (name, code), b)

    d = L.cni("DEL", cfg, H, cid="vm1", netns_path=pns, ifname="net1")
    L.ok(d.rc == 0, "DEL ok", d)
    L.ok(L.ipj(P, "link", "show", "net1") == [] and L.ipj(H, "link", "show", host) == [],
         "DEL: neither net1 nor the host port is left")
    L.ok(L.handles(state) == [], "DEL: the handle is released", L.handles(state))
    stop()


if __name__ == "__main__":
    try:
        main()
    finally:
        stop()
    L.finish()
