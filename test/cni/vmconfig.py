#!/usr/bin/env python3
"""VM pods and cluster settings through dist/kvnet with `datastore: kubernetes` against the
test API server (fixtures test/data/fixtures/vm-a.*):

- IPAMConfig `default` with kubeVirtVMAddressPersistence Disabled: a VM pod is an ordinary
  pod (handle <network>.<containerID>, no VMI GET: server path counters), a migration
  target's ADD fails with a clear error and creates nothing; Enabled again: VM handle.
- the io.kubernetes.cri.pod-annotations capability: runtimeConfig annotations without
  kubevirt.io/domain make the pod ordinary with no pod GET; with the domain the pod is
  verified as before; API calls per ADD printed with and without the capability; a bad
  annotations value is code 7; unknown fields are still code 7 with runtimeConfig present.
- a VM whose handle needs the hash suffix (63-character namespace, 180-character VM name):
  the handle is <net>.vmi.<ns>.<vm> cut to 242 characters + "-" + 10 hex digits of its
  SHA-256 (computed here independently), a restart keeps the addresses and a migration
  target gets them, dark."""
import copy
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
NET = "vmnet"
CAP = "io.kubernetes.cri.pod-annotations"


def addrs(res):
    return sorted(x["address"] for x in res["ips"]) if res and "ips" in res else None


def gets(calls, word):
    """GET requests whose path contains word."""
    return sum(n for k, n in calls["paths"].items() if k.startswith("GET ") and word in k)


def set_config(api, value):
    api.delete(G + "ipamconfigs/default")
    if value is None:
        return
    st, _ = api.post(G + "ipamconfigs", {"apiVersion": "kvnet.io/v1", "kind": "IPAMConfig",
                                         "metadata": {"name": "default"},
                                         "spec": {"kubeVirtVMAddressPersistence": value}})
    ok(st == 201, "IPAMConfig default set to %s" % value, st)


def run(api, host, kc):
    c = kube.vm_world(api, kc, NET)
    src, tgt = kube.fixture("vm-a.source-pod.json"), kube.fixture("vm-a.target-pod.json")
    ns = t.netns("p1")
    nsp = "/run/netns/" + ns

    # --- persistence Disabled -----------------------------------------------------------
    set_config(api, "Disabled")
    api.counters(reset=True)
    r = t.cni("ADD", c, host, cid="cid-off", netns_path=nsp, args=kube.pod_args(src))
    calls = api.counters()
    ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2, "Disabled: the VM pod's ADD works", r)
    ok(kube.handles(api) == [NET + ".cid-off"],
       "Disabled: the VM pod got an ordinary handle <network>.<containerID>", kube.handles(api))
    ok(gets(calls, "virtualmachineinstances") == 0 and gets(calls, "ipamconfigs/default") >= 1,
       "Disabled: no VMI GET (the IPAMConfig is read first)", calls["paths"])
    print("# API calls for a VM pod ADD with persistence Disabled: %d %s"
          % (calls["total"], calls["verbs"]))
    tns = t.netns("t1")
    before = kube.handles(api)
    r = t.cni("ADD", c, host, cid="cid-tgt-off", netns_path="/run/netns/" + tns,
              args=kube.pod_args(tgt))
    ok(r.rc != 0 and r.json and r.json["msg"] == "migration target rejected"
       and "kubeVirtVMAddressPersistence: Disabled" in r.json["details"],
       "Disabled: a migration target's ADD is rejected with a clear error", r)
    ok(kube.handles(api) == before and "eth0" not in [l["ifname"] for l in t.ipj(tns, "link")],
       "Disabled: the rejected target created nothing", kube.handles(api))
    r = t.cni("DEL", c, host, cid="cid-off", netns_path=nsp, args=kube.pod_args(src))
    ok(r.rc == 0 and kube.handles(api) == [], "Disabled: DEL releases like any pod", (r, kube.handles(api)))

    # --- Enabled again: the VM handle -----------------------------------------------------
    set_config(api, "Enabled")
    r = t.cni("ADD", c, host, cid="cid-on", netns_path=nsp, args=kube.pod_args(src))
    ok(r.rc == 0 and kube.handles(api) == [NET + ".vmi.default.vm-a"],
       "Enabled: the VM pod gets the VM handle", (r, kube.handles(api)))
    r = t.cni("DEL", c, host, cid="cid-on", netns_path=nsp, args=kube.pod_args(src))
    ok(r.rc == 0, "Enabled: DEL", r)
    set_config(api, None)

    # --- the pod-annotations capability ---------------------------------------------------
    capc = dict(c, capabilities={CAP: True})
    plain = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "plain", "namespace": "default",
                          "uid": "aaaaaaaa-0000-4000-8000-000000000001",
                          "annotations": {"team": "x"}}, "spec": {}}
    api.post("/api/v1/namespaces/default/pods", plain)
    pa = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=plain"
    api.counters(reset=True)
    r = t.cni("ADD", c, host, cid="cid-plain1", netns_path=nsp, args=pa)
    without = api.counters()
    ok(r.rc == 0 and gets(without, "/pods/plain") == 1,
       "without the capability an ordinary pod's ADD GETs the pod", without["paths"])
    t.cni("DEL", c, host, cid="cid-plain1", netns_path=nsp, args=pa)
    api.counters(reset=True)
    r = t.cni("ADD", dict(capc, runtimeConfig={CAP: {"team": "x"}}), host, cid="cid-plain2",
              netns_path=nsp, args=pa)
    withcap = api.counters()
    ok(r.rc == 0 and gets(withcap, "/pods/") == 0 and withcap["total"] == without["total"] - 1,
       "with the capability (no kubevirt.io/domain) no pod GET: one call fewer",
       (without["paths"], withcap["paths"]))
    print("# API calls per ordinary pod ADD: %d without the annotations capability, %d with it"
          % (without["total"], withcap["total"]))
    api.counters(reset=True)
    r = t.cni("DEL", dict(capc, runtimeConfig={CAP: {"team": "x"}}), host, cid="cid-plain2",
              netns_path=nsp, args=pa)
    d = api.counters()
    ok(r.rc == 0 and gets(d, "/pods/") == 0 and NET + ".cid-plain2" not in kube.handles(api),
       "DEL with the capability: no pod GET, released", (r, d["paths"]))

    vmann = src["metadata"]["annotations"]
    api.counters(reset=True)
    r = t.cni("ADD", dict(capc, runtimeConfig={CAP: vmann}), host, cid="cid-vmcap",
              netns_path=nsp, args=kube.pod_args(src))
    vcalls = api.counters()
    ok(r.rc == 0 and kube.handles(api) == [NET + ".vmi.default.vm-a"]
       and gets(vcalls, "/pods/") == 1 and gets(vcalls, "virtualmachineinstances/vm-a") == 1,
       "with the capability a pod with kubevirt.io/domain is still verified (pod, VMI GET)",
       (r, vcalls["paths"]))
    print("# API calls per VM pod ADD with the capability (addresses exist): %d %s"
          % (vcalls["total"], vcalls["verbs"]))
    # a forged annotation set cannot make a VM pod ordinary... it can only skip the GET
    # for pods that the runtime says are not VM pods; the VM's own pod is unaffected
    r = t.cni("DEL", dict(capc, runtimeConfig={CAP: vmann}), host, cid="cid-vmcap",
              netns_path=nsp, args=kube.pod_args(src))
    ok(r.rc == 0, "DEL of the VM pod with the capability", r)

    for what, rc_cfg, word in [
            ("annotations not an object", {CAP: "kubevirt.io/domain=vm-a"}, "must be an object"),
            ("an annotation value not a string", {CAP: {"kubevirt.io/domain": 1}},
             "must be a string"),
            ("runtimeConfig not an object", [], "runtimeConfig: must be an object")]:
        r = t.cni("ADD", dict(capc, runtimeConfig=rc_cfg), host, cid="cid-bad", netns_path=nsp,
                  args=pa)
        ok(r.rc != 0 and r.json and r.json["code"] == 7 and word in r.json["details"],
           "code 7: %s" % what, r)
    r = t.cni("ADD", dict(capc, runtimeConfig={CAP: {}}, bogus=1, other=2), host,
              cid="cid-bad", netns_path=nsp, args=pa)
    ok(r.rc != 0 and r.json and r.json["code"] == 7 and "bogus, other" in r.json["details"],
       "unknown fields are still code 7 and named with runtimeConfig present", r)

    # --- a VM whose handle needs the hash suffix ------------------------------------------
    lns = "n" + "s" * 61 + "1"  # 63 characters
    lvm = "vm-" + "long" * 44 + "-x"  # 181 characters
    want = "%s.vmi.%s.%s" % (NET, lns, lvm)
    ok(len(want) > 253, "the long VM's plain handle would be %d characters" % len(want))
    want = want[:242].rstrip(".-") + "-" + hashlib.sha256(want.encode()).hexdigest()[:10]
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": lns}})
    objs = {}
    for k in ("vm", "vmi", "source-pod", "target-pod", "vmim"):
        o = kube.fixture("vm-a.%s.json" % k)
        s = json.dumps(o).replace("virt-launcher-vm-a-", "virt-launcher-%s-" % lvm)
        s = s.replace('"vm-a"', json.dumps(lvm)).replace('"default"', json.dumps(lns))
        o = json.loads(s)
        o["metadata"].pop("resourceVersion", None)
        objs[k] = o
    ok(objs["source-pod"]["metadata"]["annotations"]["kubevirt.io/domain"] == lvm
       and objs["source-pod"]["metadata"]["ownerReferences"][0]["name"] == lvm,
       "long-name fixtures rewritten", objs["source-pod"]["metadata"])
    api.load(list(objs.values()))
    lsrc, ltgt = objs["source-pod"], objs["target-pod"]
    n1, n2, n3 = t.netns("l1"), t.netns("l2"), t.netns("l3")
    r1 = t.cni("ADD", c, host, cid="cid-l1", netns_path="/run/netns/" + n1, args=kube.pod_args(lsrc))
    vma = NET + ".vmi.default.vm-a"  # the fixture VM's handle, kept: that VM exists
    ok(r1.rc == 0 and kube.handles(api) == sorted([vma, want]),
       "long VM: handle is the cut name + '-' + 10 hex digits of SHA-256",
       (r1, kube.handles(api), want))
    r = t.cni("DEL", c, host, cid="cid-l1", netns_path="/run/netns/" + n1, args=kube.pod_args(lsrc))
    ok(r.rc == 0 and want in kube.handles(api), "long VM: DEL of its pod keeps the handle", r)
    rst = copy.deepcopy(lsrc)
    rst["metadata"]["name"] = "virt-launcher-%s-r5tq2" % lvm
    rst["metadata"]["uid"] = "11111111-2222-4333-8444-777777777777"
    api.load([rst])
    r2 = t.cni("ADD", c, host, cid="cid-l2", netns_path="/run/netns/" + n2, args=kube.pod_args(rst))
    ok(r2.rc == 0 and addrs(r2.json) == addrs(r1.json),
       "long VM: a restart keeps the addresses", (r2, addrs(r1.json)))
    r3 = t.cni("ADD", c, host, cid="cid-l3", netns_path="/run/netns/" + n3, args=kube.pod_args(ltgt),
               node="node-b")  # the fixture VMIM's target node
    ok(r3.rc == 0 and addrs(r3.json) == addrs(r1.json),
       "long VM: the migration target gets the same addresses", r3)
    tif = r3.json["interfaces"][0]["name"] if r3.json else "none"
    rts = [x for x in t.ipj(host, "route", "show") + t.ipj(host, "-6", "route", "show")
           if x.get("dev") == tif and not x["dst"].startswith("fe80:")]
    ok(rts == [], "long VM: the target is dark (no host route via %s)" % tif, rts)
    for cid, n, pod in (("cid-l2", n2, rst), ("cid-l3", n3, ltgt)):
        r = t.cni("DEL", c, host, cid=cid, netns_path="/run/netns/" + n, args=kube.pod_args(pod))
        ok(r.rc == 0, "long VM: DEL %s" % cid, r)
    api.delete("/apis/kubevirt.io/v1/namespaces/%s/virtualmachines/%s" % (lns, lvm))
    api.delete("/apis/kubevirt.io/v1/namespaces/%s/virtualmachineinstances/%s" % (lns, lvm))
    r = t.cni("GC", dict(c, **{"cni.dev/valid-attachments": []}), host)
    ok(r.rc == 0 and kube.handles(api) == [vma],
       "long VM: GC frees it once the VM is gone; vm-a (exists, no attachment) is kept",
       (r, kube.handles(api)))


if __name__ == "__main__":
    kube.run_main(run)
