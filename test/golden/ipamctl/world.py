"""The planted IPAM world the ipamctl golden tests and scenarios share: records written
straight into a datastore (file: JSON files in the state directory; kubernetes: kvnet.io
objects on the test API server) and the API objects (pods, VM, VMI) that say who is alive.
Everything has fixed names, uids and addresses, so outputs are deterministic.

Planted problems (one of each kind check reports):
  198.18.0.3   LeakedAllocation         pod default/p-gone does not exist
  198.18.0.5   LeakedAllocation         VM default/vm-x, its VMI and its pods are gone
  198.18.0.7   AllocationWithoutHandle  handle missing, pod gone -> release
  198.18.0.8   AllocationWithoutHandle  handle missing, pod p-live2 alive -> relink
  198.18.0.20  HandleWithoutAllocation  handle kvt.c-stale lists an unallocated address
  block 198.18.0.0/26 BlockCountMismatch stored 10, allocations 9
  198.18.0.2   DuplicateAddress         podIPs of p-live and p-dup
Healthy: .2 (p-live), .4 (VM vm-a, active owner its source pod), .6 (reserved for vm-r),
.9 (p-b on node-b, borrowed from node-a's block), 2001:db8:77::2 (p-live)."""
import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIX = os.path.join(ROOT, "test", "data", "fixtures")
G = "/apis/kvnet.io/v1/"


def fixture(name):
    with open(os.path.join(FIX, name)) as f:
        return json.load(f)


SRC = fixture("vm-a.source-pod.json")
SRC_UID = SRC["metadata"]["uid"]
VM = fixture("vm-a.vm.json")
VMI = fixture("vm-a.vmi.json")

POOLS = {
    "v4-198-18-0-0-24": {"cidr": "198.18.0.0/24", "blockSize": 26, "reserved": []},
    "v6-20010db8007700000000000000000000-112": {"cidr": "2001:db8:77::/112",
                                                "blockSize": 120, "reserved": []},
}


def pod_alloc(ip, cid, pod, node="node-a"):
    return {"ip": ip, "handle": "kvt." + cid, "pod": pod, "namespace": "default",
            "node": node, "ifname": "eth0", "containerID": cid}


def blocks():
    a4 = [
        pod_alloc("198.18.0.2", "c-live", "p-live"),
        pod_alloc("198.18.0.3", "c-gone", "p-gone"),
        {"ip": "198.18.0.4", "handle": "vmnet.vmi.default.vm-a",
         "pod": SRC["metadata"]["name"], "namespace": "default", "node": "node-a",
         "ifname": "eth0", "containerID": "c-vm-a", "vmiName": "vm-a",
         "vmiUID": VMI["metadata"]["uid"], "vmUID": VM["metadata"]["uid"],
         "mac": "02:00:00:00:00:04",
         "activeOwner": {"namespace": "default", "name": SRC["metadata"]["name"],
                         "uid": SRC_UID, "node": "node-a"}},
        {"ip": "198.18.0.5", "handle": "vmnet.vmi.default.vm-x", "pod": "virt-launcher-vm-x-1",
         "namespace": "default", "node": "node-a", "ifname": "eth0", "containerID": "c-vm-x",
         "vmiName": "vm-x", "vmiUID": "00000000-0000-4000-8000-0000000000a5",
         "activeOwner": {"namespace": "default", "name": "virt-launcher-vm-x-1",
                         "uid": "00000000-0000-4000-8000-0000000000b5", "node": "node-a"}},
        {"ip": "198.18.0.6", "handle": "vmnet.vmi.default.vm-r", "namespace": "default",
         "vmiName": "vm-r", "mac": "02:00:00:00:00:06"},
        pod_alloc("198.18.0.7", "c-nohandle", "p-gone2"),
        pod_alloc("198.18.0.8", "c-nohandle2", "p-live2"),
        pod_alloc("198.18.0.9", "c-b", "p-b", node="node-b"),
        pod_alloc("198.18.0.10", "c-live3", "p-live3"),
    ]
    a6 = [pod_alloc("2001:db8:77::2", "c-live", "p-live")]
    return {
        "v4-198-18-0-0-26": {"cidr": "198.18.0.0/26", "affinity": "node-a", "used": 10,
                             "allocations": a4},
        "v6-20010db8007700000000000000000000-120": {"cidr": "2001:db8:77::/120",
                                                    "affinity": "node-a", "used": 1,
                                                    "allocations": a6},
    }


HANDLES = {
    "kvt.c-live": {"ips": ["198.18.0.2", "2001:db8:77::2"]},
    "kvt.c-gone": {"ips": ["198.18.0.3"]},
    "vmnet.vmi.default.vm-a": {"ips": ["198.18.0.4"]},
    "vmnet.vmi.default.vm-x": {"ips": ["198.18.0.5"]},
    "vmnet.vmi.default.vm-r": {"ips": ["198.18.0.6"]},
    "kvt.c-b": {"ips": ["198.18.0.9"]},
    "kvt.c-live3": {"ips": ["198.18.0.10"]},
    "kvt.c-stale": {"ips": ["198.18.0.20"]},
}


def pod(name, uid, ips, node="node-a"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": uid,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": ips[0] if ips else None,
                       "podIPs": [{"ip": i} for i in ips]}}


def api_objects():
    src = copy.deepcopy(SRC)
    src.setdefault("status", {})["podIPs"] = [{"ip": "198.18.0.4"}]
    src["status"]["podIP"] = "198.18.0.4"
    src["status"]["phase"] = "Running"
    return [VM, VMI, src,
            pod("p-live", "00000000-0000-4000-8000-000000000102",
                ["198.18.0.2", "2001:db8:77::2"]),
            pod("p-live2", "00000000-0000-4000-8000-000000000108", ["198.18.0.8"]),
            pod("p-live3", "00000000-0000-4000-8000-000000000110", ["198.18.0.10"]),
            pod("p-b", "00000000-0000-4000-8000-000000000109", ["198.18.0.9"], node="node-b"),
            pod("p-dup", "00000000-0000-4000-8000-0000000001d2", ["198.18.0.2"])]


def records():
    """(kind, plural, name, spec) of every planted record."""
    out = []
    for n, s in POOLS.items():
        out.append(("pool", "ippools", "IPPool", n, s))
    for n, s in blocks().items():
        out.append(("block", "ipamblocks", "IPAMBlock", n, s))
    for n, s in HANDLES.items():
        out.append(("handle", "ipamhandles", "IPAMHandle", n, s))
    return out


def plant_file(state_dir):
    for kind, _, _, name, spec in records():
        d = os.path.join(state_dir, kind)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".json"), "w") as f:
            json.dump(spec, f)


def plant_kube(api):
    for _, plural, kind, name, spec in records():
        r = api.post(G + plural, {"apiVersion": "kvnet.io/v1", "kind": kind,
                                  "metadata": {"name": name}, "spec": spec})
        if r.status != 201:
            raise RuntimeError("plant %s %s: %s %s" % (plural, name, r.status, r.raw))


def load_api(api):
    api.load(api_objects())


def crds(api):
    import yaml
    import glob
    for f in sorted(glob.glob(os.path.join(ROOT, "dist", "crds", "*.yaml"))):
        with open(f) as fp:
            r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         yaml.safe_load(fp))
        if r.status != 201:
            raise RuntimeError("CRD %s: %s" % (f, r.raw))


# --- the L2 world (issue #13): L2Networks vlan100 (pools of its own) and vlan200 (none),
# and one of each L2 problem check reports:
#   198.18.100.1   L2GatewayAllocated   vlan100's gateway, allocated to VM vm-gw
#   198.18.100.9   L2NetworkMismatch    handle kvnet.vmi.default.vm-m (another network's)
#   198.18.101.5   OutsideL2Subnet      pool 198.18.101.0/24 is vlan100's, its subnet is not
#   198.18.0.5     L2NetworkMismatch    vlan100's handle in an ordinary pool
# Healthy: .10 and 2001:db8:100::a (VM vm-a, alive), .11 (reserved for vm-r2).
L2NETS = [
    {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": "vlan100"},
     "spec": {"vlan": 100, "trunk": {"interface": "tr0"},
              "ipv4": {"subnet": "198.18.100.0/24", "gateway": "198.18.100.1"},
              "ipv6": {"subnet": "2001:db8:100::/64", "gateway": "2001:db8:100::1"}}},
    {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": "vlan200"},
     "spec": {"vlan": 200, "trunk": {"interface": "tr0"},
              "ipv4": {"subnet": "198.18.200.0/24"}}},
]
L2POOLS = {
    "v4-198-18-100-0-24": {"cidr": "198.18.100.0/24", "blockSize": 26, "reserved": [],
                           "network": "vlan100"},
    "v4-198-18-101-0-24": {"cidr": "198.18.101.0/24", "blockSize": 26, "reserved": [],
                           "network": "vlan100"},
    "v6-20010db8010000000000000000000000-112": {"cidr": "2001:db8:100::/112",
                                                "blockSize": 120, "reserved": [],
                                                "network": "vlan100"},
    "v4-198-18-0-0-24": {"cidr": "198.18.0.0/24", "blockSize": 26, "reserved": []},
}


def l2_vm(ip, vm, handle, mac="", owner=True):
    a = {"ip": ip, "handle": handle, "namespace": "default", "vmiName": vm}
    if mac:
        a["mac"] = mac
    if owner:
        a.update({"pod": SRC["metadata"]["name"], "node": "node-a", "ifname": "net1",
                  "containerID": "c-" + vm, "vmiUID": VMI["metadata"]["uid"],
                  "vmUID": VM["metadata"]["uid"],
                  "activeOwner": {"namespace": "default", "name": SRC["metadata"]["name"],
                                  "uid": SRC_UID, "node": "node-a"}})
    return a


def l2_blocks():
    return {
        "v4-198-18-100-0-26": {"cidr": "198.18.100.0/26", "affinity": "node-a", "used": 4,
                               "allocations": [
                                   l2_vm("198.18.100.1", "vm-gw", "vlan100.vmi.default.vm-gw",
                                         "02:00:00:00:01:01", owner=False),
                                   l2_vm("198.18.100.9", "vm-m", "kvnet.vmi.default.vm-m",
                                         owner=False),
                                   l2_vm("198.18.100.10", "vm-a", "vlan100.vmi.default.vm-a",
                                         "02:00:00:00:01:0a"),
                                   l2_vm("198.18.100.11", "vm-r2", "vlan100.vmi.default.vm-r2",
                                         "02:00:00:00:01:0b", owner=False)]},
        "v4-198-18-101-0-26": {"cidr": "198.18.101.0/26", "affinity": "node-a", "used": 1,
                               "allocations": [
                                   l2_vm("198.18.101.5", "vm-o", "vlan100.vmi.default.vm-o",
                                         owner=False)]},
        "v4-198-18-0-0-26": {"cidr": "198.18.0.0/26", "affinity": "node-a", "used": 1,
                             "allocations": [
                                 l2_vm("198.18.0.5", "vm-s", "vlan100.vmi.default.vm-s",
                                       owner=False)]},
        "v6-20010db8010000000000000000000000-120": {
            "cidr": "2001:db8:100::/120", "affinity": "node-a", "used": 1,
            "allocations": [l2_vm("2001:db8:100::a", "vm-a", "vlan100.vmi.default.vm-a",
                                  "02:00:00:00:01:0a")]},
    }


L2HANDLES = {
    "vlan100.vmi.default.vm-gw": {"ips": ["198.18.100.1"]},
    "kvnet.vmi.default.vm-m": {"ips": ["198.18.100.9"]},
    "vlan100.vmi.default.vm-a": {"ips": ["198.18.100.10", "2001:db8:100::a"]},
    "vlan100.vmi.default.vm-r2": {"ips": ["198.18.100.11"]},
    "vlan100.vmi.default.vm-o": {"ips": ["198.18.101.5"]},
    "vlan100.vmi.default.vm-s": {"ips": ["198.18.0.5"]},
}


def l2_records():
    out = []
    for n, s in L2POOLS.items():
        out.append(("pool", "ippools", "IPPool", n, s))
    for n, s in l2_blocks().items():
        out.append(("block", "ipamblocks", "IPAMBlock", n, s))
    for n, s in L2HANDLES.items():
        out.append(("handle", "ipamhandles", "IPAMHandle", n, s))
    return out


def plant_l2_file(state_dir):
    for kind, _, _, name, spec in l2_records():
        d = os.path.join(state_dir, kind)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".json"), "w") as f:
            json.dump(spec, f)
    d = os.path.join(state_dir, "l2networks")
    os.makedirs(d, exist_ok=True)
    for n in L2NETS:
        with open(os.path.join(d, n["metadata"]["name"] + ".json"), "w") as f:
            json.dump(n, f)


def plant_l2_kube(api):
    for _, plural, kind, name, spec in l2_records():
        r = api.post(G + plural, {"apiVersion": "kvnet.io/v1", "kind": kind,
                                  "metadata": {"name": name}, "spec": spec})
        if r.status != 201:
            raise RuntimeError("plant %s %s: %s %s" % (plural, name, r.status, r.raw))
    for n in L2NETS:
        r = api.post(G + "l2networks", n)
        if r.status != 201:
            raise RuntimeError("plant l2network %s: %s %s" % (n["metadata"]["name"], r.status,
                                                              r.raw))
