#!/usr/bin/env python3
"""CNI GC with `datastore: kubernetes` (test API server, fixtures test/data/fixtures/vm-a.*),
two simulated nodes (the plugin in its own UTS namespace with host name node-a / node-b):

- a VM's handle is never freed because the attachment list lacks it while the VM exists;
- an owner slot of this node whose (containerID, ifname) is no longer valid is emptied; a
  slot held by a pod of the other node is left to that node's GC;
- the handle is freed once the VM is gone and both slots are empty;
- ordinary pods: GC releases only this node's allocations that are not listed.
Records are read back with the python client."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
NET = "gcnet"
VMH = NET + ".vmi.default.vm-a"


def run(api, host, kc):
    c = kube.vm_world(api, kc, NET)
    src, tgt = kube.fixture("vm-a.source-pod.json"), kube.fixture("vm-a.target-pod.json")
    n1, n2, n3, n4 = (t.netns(x) for x in ("s", "t", "o1", "o2"))

    def gc(node, *att):
        cfg = dict(c, **{"cni.dev/valid-attachments":
                         [{"containerID": a, "ifname": "eth0"} for a in att]})
        return t.cni("GC", cfg, host, node=node)

    r = t.cni("ADD", c, host, cid="cid-src", netns_path="/run/netns/" + n1, args=kube.pod_args(src),
              node="node-a")
    ok(r.rc == 0, "ADD of the VM's source pod on node-a", r)
    r = t.cni("ADD", c, host, cid="cid-tgt", netns_path="/run/netns/" + n2, args=kube.pod_args(tgt),
              node="node-b")
    ok(r.rc == 0, "ADD of the migration target on node-b", r)
    act, alt = kube.owner_slots(api, VMH)
    ok(act.get("containerID") == "cid-src" and act.get("ifname") == "eth0"
       and act.get("node") == "node-a" and alt.get("containerID") == "cid-tgt"
       and alt.get("node") == "node-b",
       "owner slots record node, containerID and ifname", (act, alt))

    # ordinary pods, one per node
    r = t.cni("ADD", c, host, cid="cid-oa", netns_path="/run/netns/" + n3, node="node-a")
    ok(r.rc == 0, "ordinary pod on node-a", r)
    r = t.cni("ADD", c, host, cid="cid-ob", netns_path="/run/netns/" + n4, node="node-b")
    ok(r.rc == 0, "ordinary pod on node-b", r)

    r = gc("node-a", "cid-src", "cid-oa")
    ok(r.rc == 0 and kube.handles(api) == sorted([VMH, NET + ".cid-oa", NET + ".cid-ob"])
       and kube.owner_slots(api, VMH)[0].get("uid") == src["metadata"]["uid"],
       "GC on node-a listing its pods changes nothing (node-b's pods are not its business)",
       (r, kube.handles(api)))

    r = gc("node-a")
    act, alt = kube.owner_slots(api, VMH)
    ok(r.rc == 0 and VMH in kube.handles(api) and act == {} and alt.get("containerID") == "cid-tgt",
       "GC on node-a with no attachments: the VM keeps its IP (VM exists), node-a's slot is "
       "emptied, node-b's slot stays", (r, kube.handles(api), act, alt))
    ok(NET + ".cid-oa" not in kube.handles(api) and NET + ".cid-ob" in kube.handles(api),
       "... and releases node-a's ordinary pod, not node-b's", kube.handles(api))

    api.delete("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/vm-a")
    r = gc("node-a")
    ok(r.rc == 0 and VMH in kube.handles(api),
       "VM deleted but node-b's target still holds a slot: the handle stays", kube.handles(api))
    r = gc("node-b", "cid-ob")
    ok(r.rc == 0 and VMH not in kube.handles(api) and NET + ".cid-ob" in kube.handles(api),
       "GC on node-b without the target: slot emptied, VM gone: the handle is freed",
       (r, kube.handles(api)))
    st, obj = api.get(G + "ipamblocks")
    ok(not any(a["handle"] == VMH for b in obj["items"] for a in b["spec"]["allocations"]),
       "no block allocation names the VM's handle any more")
    r = gc("node-b")
    ok(r.rc == 0 and kube.handles(api) == [], "GC on node-b with nothing listed: all released",
       (r, kube.handles(api)))
    for cid, n, pod in (("cid-src", n1, src), ("cid-tgt", n2, tgt)):
        r = t.cni("DEL", c, host, cid=cid, netns_path="/run/netns/" + n, args=kube.pod_args(pod))
        ok(r.rc == 0, "DEL %s after GC is still fine (idempotent)" % cid, r)


if __name__ == "__main__":
    kube.run_main(run)
