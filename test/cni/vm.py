#!/usr/bin/env python3
"""VM pods through dist/kvnet with `datastore: kubernetes` against the test API server, with
the fixture objects (test/data/fixtures/vm-a.*: VM, VMI, source and migration-target
virt-launcher pods): the VM's handle <network>.vmi.<ns>.<vm> keeps its addresses across a
restart; a migration target (run as its VMIM's target node, node-b) gets the same
addresses, the alternate owner slot and no host route (`ip -j route`); DEL of source then target empties only each pod's own slot; the VM's
deletion releases; CHECK uses the VM handle and requires a target to stay dark; a forged
ownerReference uid, a domain annotation that does not name the
controller VMI, a missing VMI and a target of a VM without addresses are rejected and
create nothing. Prints the API calls of a VM pod ADD (server counters)."""
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
NET = "vmnet"
HANDLE = NET + ".vmi.default.vm-a"


SRC = kube.fixture("vm-a.source-pod.json")
TGT = kube.fixture("vm-a.target-pod.json")
TGT_NODE = "node-b"  # the fixture migration's target node


def handle(api):
    st, obj = api.get(G + "ipamhandles/" + HANDLE)
    return obj if st == 200 else None


def pod_obj(base, name, uid, **md):
    p = copy.deepcopy(base)
    p["metadata"]["name"] = name
    p["metadata"]["uid"] = uid
    p["metadata"].pop("resourceVersion", None)
    for k, v in md.items():
        p["metadata"][k] = v
    return p


def run(api, host, kc):
    c = kube.vm_world(api, kc, NET)

    def add(pod, cid, ns, node=None):
        return t.cni("ADD", c, host, cid=cid, netns_path="/run/netns/" + ns, args=kube.pod_args(pod),
                     node=node)

    def dele(pod, cid, ns):
        return t.cni("DEL", c, host, cid=cid, netns_path="/run/netns/" + ns, args=kube.pod_args(pod))

    src_uid = SRC["metadata"]["uid"]
    tgt_uid = TGT["metadata"]["uid"]
    ns1 = t.netns("src")
    api.counters(reset=True)
    r = add(SRC, "cid-src", ns1)
    calls = api.counters()
    ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2, "ADD VM source pod", r)
    if not r.json:
        return
    first = r.json
    print("# API calls for a VM pod ADD (first, allocating): %s" % calls)
    ok(handle(api) is not None, "handle %s created" % HANDLE)
    ok(kube.owner_uids(api, HANDLE) == (src_uid, ""), "source pod is the active owner", kube.owner_uids(api, HANDLE))
    rt = t.ipj(host, "route", "show", kube.v4(first))
    ok(len(rt) == 1 and rt[0]["dev"] == first["interfaces"][0]["name"],
       "host route to the VM's v4 via the source veth", rt)

    # Restart: the launcher pod dies (DEL; the VM stays), a new one comes.
    r = dele(SRC, "cid-src", ns1)
    ok(r.rc == 0, "DEL of the source pod", r)
    ok(handle(api) is not None and kube.owner_uids(api, HANDLE) == ("", ""),
       "DEL keeps the VM's addresses, active slot emptied", kube.owner_uids(api, HANDLE))
    t.netns_del(ns1)
    ns2 = t.netns("rst")
    RST = pod_obj(SRC, "virt-launcher-vm-a-r5tq2", "11111111-2222-4333-8444-555555555555")
    st, made = api.post("/api/v1/namespaces/default/pods", RST)
    ok(st == 201, "restarted launcher pod created", st)
    RST["metadata"]["uid"] = made["metadata"]["uid"]  # the server assigns it
    api.counters(reset=True)
    r = add(RST, "cid-rst", ns2)
    calls = api.counters()
    ok(r.rc == 0 and r.json and sorted(x["address"] for x in r.json["ips"])
       == sorted(x["address"] for x in first["ips"]), "restart ADD gets the same addresses", r)
    print("# API calls for a VM pod ADD (restart, addresses exist): %s" % calls)
    ok(kube.owner_uids(api, HANDLE) == (RST["metadata"]["uid"], ""), "restarted pod is the active owner",
       kube.owner_uids(api, HANDLE))
    rst_if = r.json["interfaces"][0]["name"] if r.json else ""
    rst_res = r.json

    # Migration target: same addresses, alternate slot, no host route. The fixture VMIM
    # (Running) and the VMI's migrationState name node-b and this pod as the target: the
    # plugin runs as node-b.
    ns3 = t.netns("tgt")
    r = add(TGT, "cid-tgt", ns3, node=TGT_NODE)
    ok(r.rc == 0 and r.json and sorted(x["address"] for x in r.json["ips"])
       == sorted(x["address"] for x in first["ips"]), "migration target gets the same addresses",
       r)
    tgt_if = r.json["interfaces"][0]["name"] if r.json else "none"
    tgt_res = r.json
    ok(kube.owner_uids(api, HANDLE) == (RST["metadata"]["uid"], tgt_uid),
       "target is the alternate owner, the running pod stays active", kube.owner_uids(api, HANDLE))
    rts = [x for x in t.ipj(host, "route", "show") + t.ipj(host, "-6", "route", "show")
           if x.get("dev") == tgt_if and not x["dst"].startswith("fe80:")]
    ok(rts == [], "no host route via the target's veth %s (dark)" % tgt_if, rts)
    rt = t.ipj(host, "route", "show", kube.v4(first))
    ok(len(rt) == 1 and rt[0]["dev"] == rst_if, "the VM's host route still via the source",
       rt)
    addrs = {a["local"] for l in t.ipj(ns3, "addr", "show", "dev", "eth0")
             for a in l["addr_info"] if a["scope"] == "global"}
    ok(kube.v4(first) in addrs, "the target pod has the VM's address inside", addrs)

    r = t.cni("CHECK", dict(c, prevResult=rst_res), host, cid="cid-rst",
              netns_path="/run/netns/" + ns2, args=kube.pod_args(RST))
    ok(r.rc == 0, "CHECK of the running VM pod (VM handle, host route)", r)
    r = t.cni("CHECK", dict(c, prevResult=tgt_res), host, cid="cid-tgt",
              netns_path="/run/netns/" + ns3, args=kube.pod_args(TGT), node=TGT_NODE)
    ok(r.rc == 0, "CHECK of the dark migration target", r)
    v4net = kube.v4(first) + "/32"
    subprocess.run(["ip", "-n", host, "route", "add", v4net, "dev", tgt_if, "proto", "75",
                    "metric", "2000"], check=True)
    r = t.cni("CHECK", dict(c, prevResult=tgt_res), host, cid="cid-tgt",
              netns_path="/run/netns/" + ns3, args=kube.pod_args(TGT), node=TGT_NODE)
    ok(r.rc != 0 and r.json and "dark" in r.json.get("details", ""),
       "CHECK of a target that got a host route fails", r)
    subprocess.run(["ip", "-n", host, "route", "del", v4net, "dev", tgt_if, "proto", "75",
                    "metric", "2000"], check=True)

    # DEL of source then target: each empties only its own slot.
    r = dele(RST, "cid-rst", ns2)
    ok(r.rc == 0 and kube.owner_uids(api, HANDLE) == ("", tgt_uid),
       "DEL of the source leaves the target as the one owner", (r, kube.owner_uids(api, HANDLE)))
    r = dele(TGT, "cid-tgt", ns3)
    ok(r.rc == 0 and kube.owner_uids(api, HANDLE) == ("", "") and handle(api) is not None,
       "DEL of the target empties its slot; the VM (not deleted) keeps its addresses",
       (r, kube.owner_uids(api, HANDLE)))

    # Rejections: nothing created, the VM's owner slots untouched.
    ns4 = t.netns("bad")
    bad = [
        ("forged ownerReference uid",
         pod_obj(SRC, "forged-1", "21111111-2222-4333-8444-555555555555"), "uid"),
        ("domain annotation naming another VM",
         pod_obj(SRC, "forged-2", "31111111-2222-4333-8444-555555555555"), "domain"),
        ("controller VMI that does not exist",
         pod_obj(SRC, "forged-3", "41111111-2222-4333-8444-555555555555"), "does not exist"),
    ]
    bad[0][1]["metadata"]["ownerReferences"][0]["uid"] = "99999999-2222-4333-8444-555555555555"
    bad[1][1]["metadata"]["annotations"]["kubevirt.io/domain"] = "vm-b"
    bad[2][1]["metadata"]["annotations"]["kubevirt.io/domain"] = "vm-x"
    bad[2][1]["metadata"]["ownerReferences"][0]["name"] = "vm-x"
    for what, pod, word in bad:
        api.post("/api/v1/namespaces/default/pods", pod)
        before = json.dumps(api.get(G + "ipamhandles").json, sort_keys=True)
        r = add(pod, "cid-" + pod["metadata"]["name"], ns4)
        after = json.dumps(api.get(G + "ipamhandles").json, sort_keys=True)
        ok(r.rc != 0 and r.json and word in r.json.get("details", ""),
           "ADD rejected: %s" % what, r)
        ok(before == after and kube.host_links(host) == [],
           "rejected ADD (%s) created nothing" % what, kube.host_links(host))
    r = add(SRC, "cid-src2", ns4)
    ok(r.rc == 0, "the genuine pod still gets the VM's addresses", r)
    r = dele(SRC, "cid-src2", ns4)
    ok(r.rc == 0, "its DEL", r)

    # A migration target of a VM without addresses (on another network).
    r = t.cni("ADD", dict(c, name="othernet"), host, cid="cid-tgt2",
              netns_path="/run/netns/" + ns4, args=kube.pod_args(TGT), node=TGT_NODE)
    ok(r.rc != 0 and r.json and "no addresses" in r.json.get("details", "")
       and kube.host_links(host) == [], "migration target of a VM without addresses rejected",
       r)

    # VM deletion releases once both slots are empty.
    r = add(SRC, "cid-src3", ns4)
    ok(r.rc == 0, "ADD of the VM pod again", r)
    st1, _ = api.delete("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/vm-a")
    r = dele(SRC, "cid-src3", ns4)
    ok(r.rc == 0 and handle(api) is None, "DEL after the VM's deletion releases the handle",
       (st1, r, handle(api)))
    st, obj = api.get(G + "ipamblocks")
    ok(not any(HANDLE in json.dumps(b["spec"]) for b in obj.get("items", [])),
       "no block names the VM's handle any more", obj)


if __name__ == "__main__":
    kube.run_main(run)
