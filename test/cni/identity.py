#!/usr/bin/env python3
"""Who may hold a VM's IP (#17), probed through dist/kvnet with `datastore: kubernetes`
against the test API server and the KubeVirt fixtures (test/data/fixtures/vm-a.*), as a
hostile user who can create pods in the VM's namespace with a controller ownerReference
naming the real VMI and its uid:

- a second, non-target pod of the running VM is refused (code 999, the rule named) and the
  genuine pod's host route is untouched (`ip -j route`);
- a pod labelled kubevirt.io/migrationJobUID without any VMIM, with the VMIM of another VMI,
  with a finished (Succeeded, Failed) or cancelled (being deleted) VMIM, with a VMIM whose
  target is another node, or with the genuine VMIM's uid but another pod name, is refused;
  nothing is created and neither owner slot changes;
- the genuine migration target still gets the VM's addresses, dark, as the alternate owner;
- a genuine restart still works when the old pod finished (phase Failed), is gone (404) or
  is being deleted, without its DEL having run (the old pod's slot is taken over).
Each refusal prints its code and message."""
import copy
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
KV = "/apis/kubevirt.io/v1/namespaces/default/"
NET = "vmnet"
HANDLE = NET + ".vmi.default.vm-a"
LBL = "kubevirt.io/migrationJobUID"


SRC = kube.fixture("vm-a.source-pod.json")
TGT = kube.fixture("vm-a.target-pod.json")
VMIM = kube.fixture("vm-a.vmim.json")
SRC_NODE, TGT_NODE = "node-a", "node-b"


def uid(n):
    return "%08x-0000-4000-8000-%012x" % (0xdeadbeef, n)


def pod_like(base, name, n, labels=None, drop_labels=(), annotations=None, **md):
    """A copy of a fixture pod: another name and uid, labels/annotations changed."""
    p = copy.deepcopy(base)
    p["metadata"]["name"] = name
    p["metadata"]["uid"] = uid(n)
    p["metadata"].pop("resourceVersion", None)
    for k in drop_labels:
        p["metadata"]["labels"].pop(k, None)
    p["metadata"]["labels"].update(labels or {})
    p["metadata"]["annotations"].update(annotations or {})
    p["metadata"].update(md)
    return p


def vmim_like(name, n, vmi="vm-a", phase="Running", target_node=None, target_pod=None,
              **md):
    m = copy.deepcopy(VMIM)
    m["metadata"].update(name=name, uid=uid(n))
    m["metadata"].pop("resourceVersion", None)
    m["metadata"].update(md)
    m["spec"]["vmiName"] = vmi
    m["status"]["phase"] = phase
    ms = m["status"]["migrationState"]
    ms["targetNode"] = target_node
    ms["targetPod"] = target_pod
    m["status"]["migrationState"] = {k: v for k, v in ms.items() if v is not None}
    return m


def shown(r):
    j = r.json or {}
    return "code=%s msg=%r details=%r" % (j.get("code"), j.get("msg"), j.get("details"))


def run(api, host, kc):
    c = kube.vm_world(api, kc, NET)

    def add(pod, cid, ns, node):
        return t.cni("ADD", c, host, cid=cid, netns_path="/run/netns/" + ns, args=kube.pod_args(pod),
                     node=node)

    def route(ip):
        return [(x.get("dev"), x.get("metric")) for x in t.ipj(host, "route", "show", ip)]

    ns_src = t.netns("src")
    r = add(SRC, "cid-src", ns_src, SRC_NODE)
    ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2, "ADD of the genuine launcher pod", r)
    if not r.json:
        return
    first = r.json
    ip = kube.v4(first)
    src_if = first["interfaces"][0]["name"]
    src_uid = SRC["metadata"]["uid"]
    tgt_uid = TGT["metadata"]["uid"]
    ok(kube.owner_uids(api, HANDLE) == (src_uid, "") and route(ip) == [(src_if, 1024)],
       "it is the active owner; the VM's host route via its veth", (kube.owner_uids(api, HANDLE), route(ip)))

    ns_bad = t.netns("bad")
    cur = {"if": src_if}  # the veth the VM's route must stay on

    def refused(pod, node, what, words):
        """ADD of pod (created in the API first) must fail with code 999 naming the pod,
        the VM and the rule, create nothing and leave both slots and the route alone."""
        api.load([pod])
        before = (kube.owner_uids(api, HANDLE), route(ip), kube.host_links(host))
        r = add(pod, "cid-" + pod["metadata"]["name"], ns_bad, node)
        print("# %s: rc=%d %s" % (what, r.rc, shown(r)))
        d = (r.json or {}).get("details", "")
        ok(r.rc == 1 and r.json and r.json.get("code") == 999
           and r.json.get("msg") == "VM pod rejected" and pod["metadata"]["name"] in d
           and "vm-a" in d and all(w in d for w in words), "refused: " + what, r)
        after = (kube.owner_uids(api, HANDLE), route(ip), kube.host_links(host))
        ok(after == before and after[1] == [(cur["if"], 1024)],
           "refused (%s): owner slots, the genuine pod's host route and the node's links "
           "untouched" % what, (before, after))

    # 1. a second, non-target pod of the running VM (its ownerReference is genuine)
    refused(pod_like(SRC, "virt-launcher-vm-a-evil1", 1), SRC_NODE,
            "second non-target pod of a running VM",
            ["rule 'active owner' refused", "virt-launcher-vm-a-5cd9t", "is alive",
             "status.activePods"])
    # 2. a migration target label, and no VMIM at all
    refused(pod_like(TGT, "virt-launcher-vm-a-evil2", 2, labels={LBL: uid(102)},
                     annotations={"kubevirt.io/migrationJobName": "no-such-vmim"}),
            TGT_NODE, "fake migration target without a VMIM",
            ["rule 'migration target' refused", "no VirtualMachineInstanceMigration",
             uid(102)])
    # 3. the label names the VMIM of another VMI
    api.load([vmim_like("migrate-vm-b", 103, vmi="vm-b", target_node=TGT_NODE)])
    refused(pod_like(TGT, "virt-launcher-vm-a-evil3", 3, labels={LBL: uid(103)},
                     annotations={"kubevirt.io/migrationJobName": "migrate-vm-b"}),
            TGT_NODE, "VMIM of another VMI", ["migrates VMI vm-b, not vm-a"])
    # 4. finished VMIMs (found by LIST: the pod has no migrationJobName annotation)
    for n, phase in ((104, "Succeeded"), (105, "Failed")):
        api.load([vmim_like("migrate-done-%d" % n, n, phase=phase)])
        refused(pod_like(TGT, "virt-launcher-vm-a-evil%d" % n, n, labels={LBL: uid(n)},
                         annotations={"kubevirt.io/migrationJobName": ""}),
                TGT_NODE, "VMIM finished (%s)" % phase, ["is finished (phase %s" % phase])
    api.load([vmim_like("migrate-cancelled", 106, deletionTimestamp="2026-08-22T10:41:00Z",
                        finalizers=["kubevirt.io/migrationJobFinalize"])])
    refused(pod_like(TGT, "virt-launcher-vm-a-evil6", 106, labels={LBL: uid(106)}),
            TGT_NODE, "VMIM being deleted", ["being deleted"])
    # 5. a VMIM whose target is another node
    api.load([vmim_like("migrate-elsewhere", 107, target_node="node-c",
                        target_pod="virt-launcher-vm-a-evil7")])
    refused(pod_like(TGT, "virt-launcher-vm-a-evil7", 7, labels={LBL: uid(107)},
                     annotations={"kubevirt.io/migrationJobName": "migrate-elsewhere"}),
            TGT_NODE, "VMIM for another node", ["target node node-c, this is node node-b"])
    # 6. the genuine VMIM's uid on another pod: the VMI names the real target pod
    refused(pod_like(TGT, "virt-launcher-vm-a-evil8", 8), TGT_NODE,
            "second pod with the genuine migration's uid",
            ["names target pod virt-launcher-vm-a-q7x2m, not this pod"])
    # 6b. the genuine target pod itself, on the wrong node
    r = add(TGT, "cid-tgt-wrong", ns_bad, "node-c")
    print("# genuine target pod on node-c: rc=%d %s" % (r.rc, shown(r)))
    ok(r.rc == 1 and r.json and r.json.get("code") == 999
       and "this is node node-c" in r.json.get("details", "")
       and kube.owner_uids(api, HANDLE) == (src_uid, "") and kube.host_links(host) == [src_if],
       "the genuine target pod run on another node is refused, nothing changes", r)

    # The genuine migration still works: same addresses, alternate slot, dark.
    ns_tgt = t.netns("tgt")
    r = add(TGT, "cid-tgt", ns_tgt, TGT_NODE)
    ok(r.rc == 0 and r.json and sorted(x["address"] for x in r.json["ips"])
       == sorted(x["address"] for x in first["ips"]),
       "the genuine migration target gets the VM's addresses", r)
    tgt_if = r.json["interfaces"][0]["name"] if r.json else "none"
    ok(kube.owner_uids(api, HANDLE) == (src_uid, tgt_uid) and route(ip) == [(src_if, 1024)]
       and not any(x.get("dev") == tgt_if for x in t.ipj(host, "route", "show")),
       "it is the alternate owner, dark; the route stays via the source",
       (kube.owner_uids(api, HANDLE), route(ip)))
    r = t.cni("DEL", c, host, cid="cid-tgt", netns_path="/run/netns/" + ns_tgt, args=kube.pod_args(TGT))
    ok(r.rc == 0 and kube.owner_uids(api, HANDLE) == (src_uid, ""), "DEL of the target", (r, kube.owner_uids(api, HANDLE)))
    t.netns_del(ns_tgt)

    # Genuine restarts, the old pod's DEL never run (its node died): its namespace (and
    # veth, and host route) vanish, and KubeVirt's record of it says why it is no owner.
    old, old_ns, old_if = SRC, ns_src, src_if
    steps = [
        ("old pod finished (phase Failed)",
         lambda p: api.patch("/api/v1/namespaces/default/pods/%s/status" % p["metadata"]["name"],
                             {"status": {"phase": "Failed"}})),
        ("old pod gone (404)",
         lambda p: api.delete("/api/v1/namespaces/default/pods/" + p["metadata"]["name"])),
        ("old pod being deleted",
         lambda p: api.load([dict(p, metadata=dict(
             p["metadata"], deletionTimestamp="2026-08-22T11:00:00Z",
             finalizers=["example.com/hold"]))], replace=True)),
    ]
    for i, (what, kill) in enumerate(steps):
        st = kill(old)
        t.netns_del(old_ns)
        new = pod_like(SRC, "virt-launcher-vm-a-new%d" % i, 200 + i,
                       drop_labels=("kubevirt.io/nodeName",))
        api.load([new])
        new_ns = t.netns("new%d" % i)
        r = add(new, "cid-new%d" % i, new_ns, SRC_NODE)
        ok(r.rc == 0 and r.json and kube.v4(r.json) == ip,
           "restart, %s: the new pod gets the VM's address" % what, (st, r))
        new_if = r.json["interfaces"][0]["name"] if r.json else "none"
        ok(kube.owner_uids(api, HANDLE) == (uid(200 + i), "") and route(ip) == [(new_if, 1024)],
           "restart, %s: it is the active owner, the route via its veth" % what,
           (kube.owner_uids(api, HANDLE), route(ip), old_if))
        old, old_ns, old_if = new, new_ns, new_if
        cur["if"] = new_if
    # ... and the next pod is refused again while the current one lives
    refused(pod_like(SRC, "virt-launcher-vm-a-evil9", 9), SRC_NODE,
            "a further pod while the restarted one runs", ["is alive"])


if __name__ == "__main__":
    kube.run_main(run)
