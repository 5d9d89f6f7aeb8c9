#!/usr/bin/env python3
"""Mode l2 with the kubernetes datastore against the test API server: the L2Network is a
custom resource (GET /apis/kvnet.io/v1/l2networks/vlan100); the VM vm-a's address and MAC
are reserved with `ipamctl reserve --network vlan100` before its first ADD; the VM pod's
net1 gets exactly them (ip -j), a restart (DEL, new launcher pod, ADD) keeps them, a
runtime MAC that differs from the reserved one is code 7 naming both, and the pool of the
L2Network reserves its gateway and serves it alone (a routed network cannot take it).
`ipamctl show --network vlan100` lists the running VM with its MAC and live owner, and
check finds no L2 problem."""
import copy
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
SRC = kube.fixture("vm-a.source-pod.json")
L2NET = {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": "vlan100"},
         "spec": {"vlan": 100, "trunk": {"interface": "tr0"},
                  "ipv4": {"subnet": "198.18.100.0/24", "gateway": "198.18.100.1"}}}
IP4, MAC = "198.18.100.77", "02:4b:56:00:01:77"


def ctl(args, kc, host):
    cmd = ["ip", "netns", "exec", host, t.KVNET, "ipamctl", "-c", "/dev/null", "--datastore",
           "kubernetes", "--kubeconfig", kc] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "HOME": "/nonexistent"})


def show_network(kc, host, pod):
    """ipamctl show --network and check see the running VM on vlan100 (issue #13)."""
    p = ctl(["show", "--network", "vlan100", "-o", "json"], kc, host)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = {}
    items = doc.get("items", [])
    ok(p.returncode == 0 and doc.get("l2Network", {}).get("vlan") == 100 and
       [x.get("cidr") for x in doc.get("pools", [])] == ["198.18.100.0/24"],
       "show --network vlan100 -o json: the L2Network (VLAN 100) and its one pool", p)
    ok([(x.get("ip"), x.get("mac"), x.get("namespace"), x.get("vm"), x.get("owner"),
         (x.get("activeOwner") or {}).get("uid")) for x in items] ==
       [(IP4, MAC, "default", "vm-a", "alive", pod["metadata"]["uid"])],
       "show --network: the VM's address with its MAC, owned by the running launcher pod",
       items)
    p = ctl(["show", "--network", "vlan100"], kc, host)
    rows = [ln.split() for ln in p.stdout.splitlines()]
    ok(p.returncode == 0 and [IP4, MAC, "default/vm-a"] in [r[:3] for r in rows],
       "show --network (table): a row IP, MAC, VM", p)
    p = ctl(["show", "--network", "vlan999"], kc, host)
    ok(p.returncode == 1 and "vlan999 is not known" in p.stdout,
       "show --network of no L2Network and no pool: exit 1, says so", p)
    p = ctl(["check", "-o", "json"], kc, host)
    try:
        probs = [x["kind"] for x in json.loads(p.stdout).get("problems", [])]
    except (ValueError, KeyError):
        probs = None
    ok(probs is not None and not [k for k in probs if k.startswith("L2") or
                                  k == "OutsideL2Subnet"],
       "check: no L2 problem on the healthy network", p)


def run(api, host, kc):
    api.load_files(sorted(kube.glob.glob(os.path.join(kube.FIX, "vm-a.*.json"))))
    st = api.post(G + "l2networks", L2NET)
    ok(st.status == 201, "L2Network vlan100 created", st.raw)
    subprocess.run(["ip", "-n", host, "link", "add", "tr0", "type", "veth", "peer", "name",
                    "tr0p"], check=True)
    c = t.conf("/nonexistent", "1.1.0", name="vlan100-nad", datastore="kubernetes",
               kubeconfig=kc, network="vlan100")
    for k in ("state_dir", "ipv4_pools", "ipv6_pools"):
        del c[k]
    p = ctl(["pool", "add", "198.18.100.0/24"], kc, host)
    ok(p.returncode == 0, "ipamctl pool add 198.18.100.0/24", p)
    p = ctl(["reserve", "--vm", "default/vm-a", "--ip", IP4, "--mac", MAC, "--network",
             "vlan100"], kc, host)
    ok(p.returncode == 0, "ipamctl reserve %s %s for default/vm-a on vlan100" % (IP4, MAC), p)
    args = kube.pod_args(SRC)
    ns1 = t.netns("l2k1")
    r = t.cni("ADD", c, host, cid="cid1", netns_path="/run/netns/" + ns1, ifname="net1",
              args=args)
    ok(r.rc == 0 and r.json and [i["address"] for i in r.json["ips"]] == [IP4 + "/24"],
       "VM pod ADD: net1 gets the reserved address", r)
    link = (t.ipj(ns1, "link", "show", "net1") or [{}])[0]
    ok(link.get("address") == MAC, "net1 has the reserved MAC", link)
    st, pool = api.get(G + "ippools/v4-198-18-100-0-24")
    spec = pool.get("spec", {}) if st == 200 else {}
    ok(spec.get("network") == "vlan100" and "198.18.100.1" in spec.get("reserved", []),
       "the pool became vlan100's and reserves the gateway 198.18.100.1", pool)
    chk = t.cni("CHECK", dict(c, prevResult=r.json), host, cid="cid1",
                netns_path="/run/netns/" + ns1, ifname="net1", args=args)
    ok(chk.rc == 0, "CHECK ok", chk)

    d = t.cni("DEL", c, host, cid="cid1", netns_path="/run/netns/" + ns1, ifname="net1",
              args=args)
    ok(d.rc == 0 and t.ipj(ns1, "link", "show", "net1") == [], "DEL: net1 gone", d)
    t.netns_del(ns1)
    rst = copy.deepcopy(SRC)
    rst["metadata"]["name"] = "virt-launcher-vm-a-r5tq2"
    rst["metadata"]["uid"] = "11111111-2222-4333-8444-555555555555"
    rst["metadata"].pop("resourceVersion", None)
    st, made = api.post("/api/v1/namespaces/default/pods", rst)
    rst["metadata"]["uid"] = made["metadata"]["uid"]
    ns2 = t.netns("l2k2")
    r2 = t.cni("ADD", c, host, cid="cid2", netns_path="/run/netns/" + ns2, ifname="net1",
               args=kube.pod_args(rst))
    ok(r2.rc == 0 and r2.json and [i["address"] for i in r2.json["ips"]] == [IP4 + "/24"] and
       (t.ipj(ns2, "link", "show", "net1") or [{}])[0].get("address") == MAC,
       "restart: the new launcher pod's net1 keeps the address and the MAC", r2)
    show_network(kc, host, rst)
    t.cni("DEL", c, host, cid="cid2", netns_path="/run/netns/" + ns2, ifname="net1",
          args=kube.pod_args(rst))
    ns3 = t.netns("l2k3")
    bad = t.cni("ADD", dict(c, runtimeConfig={"mac": "02:4b:56:00:01:99"}), host, cid="cid3",
                netns_path="/run/netns/" + ns3, ifname="net1", args=kube.pod_args(rst))
    ok(bad.rc != 0 and bad.json and bad.json.get("code") == 7 and
       "02:4b:56:00:01:99" in bad.json.get("details", "") and MAC in bad.json.get("details", ""),
       "a runtime MAC other than the reserved one: code 7 naming both", bad)
    ok(t.ipj(ns3, "link", "show", "net1") == [], "the refused ADD made no interface")
    routed = t.conf("/nonexistent", "1.1.0", name="other", datastore="kubernetes",
                    kubeconfig=kc, ipv4_pools=["198.18.100.0/24"])
    del routed["state_dir"], routed["ipv6_pools"]
    ns4 = t.netns("l2k4")
    rr = t.cni("ADD", routed, host, cid="cid4", netns_path="/run/netns/" + ns4)
    ok(rr.rc != 0 and rr.json and rr.json.get("code") == 7 and "vlan100" in rr.json["details"],
       "a routed network naming the L2Network's subnet is refused (code 7)", rr)


if __name__ == "__main__":
    kube.run_main(run)
