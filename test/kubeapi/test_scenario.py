#!/usr/bin/env python3
"""Contract, end to end: a live migration driven the way the lab's simulated KubeVirt
drives it, observed the way kvnet's agent observes it (list + watch by node, VMIM watch,
CAS on an IPAM handle), using the shared fixtures. Pins the sequence of events and the
exact number of API calls each side makes."""

import copy
import json
import os

import kt

VMIMS = "/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstancemigrations"
HANDLES = "/apis/kvnet.io/v1/ipamhandles"


def fixture(name):
    d = kt.fixtures_dir()
    with open(os.path.join(d, name)) as f:
        return json.load(f)


class Migration(kt.TestCase):
    def setUp(self):
        super().setUp()
        if kt.fixtures_dir() is None:
            self.skipTest("shared/fixtures not found")

    def test_live_migration_sequence(self):
        api = self.api
        api.load([fixture("vm-a.vm.json"), fixture("vm-a.vmi.json"),
                  fixture("vm-a.source-pod.json")])
        vmi = api.get(kt.VMIS + "/vm-a").json
        # kvnet's handle for the VM, written with CAS
        h = self.create(HANDLES, {"apiVersion": "kvnet.io/v1", "kind": "IPAMHandle",
                                  "metadata": {"name": "default.vmi.default.vm-a"},
                                  "spec": {"active": "default/virt-launcher-vm-a-5cd9t",
                                           "alternate": ""}})

        # agent on node-b: list + watch its node's pods, and VMIMs
        lst = api.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b").json
        self.assertEqual(lst["items"], [])
        pods_w = api.watch("/api/v1/pods", fieldSelector="spec.nodeName=node-b",
                           resourceVersion=lst["metadata"]["resourceVersion"],
                           allowWatchBookmarks="true", timeoutSeconds=30)
        mig_w = api.watch("/apis/kubevirt.io/v1/virtualmachineinstancemigrations",
                          resourceVersion=lst["metadata"]["resourceVersion"], timeoutSeconds=30)
        api.counters(reset=True)

        # simulated KubeVirt: VMIM, target pod, phases, cut-over, source pod done
        vmim = fixture("vm-a.vmim.json")
        for f in ("uid", "resourceVersion"):
            del vmim["metadata"][f]
        vmim.pop("status")
        vmim = self.create(VMIMS, vmim)
        tgt = fixture("vm-a.target-pod.json")
        tgt["metadata"] = {k: v for k, v in tgt["metadata"].items()
                           if k not in ("uid", "resourceVersion", "name")}
        tgt["metadata"]["labels"]["kubevirt.io/migrationJobUID"] = vmim["metadata"]["uid"]
        tgt["metadata"]["ownerReferences"][0]["uid"] = vmi["metadata"]["uid"]
        tgt.pop("status")
        tgt = self.create("/api/v1/namespaces/default/pods", tgt)
        self.assertTrue(tgt["metadata"]["name"].startswith("virt-launcher-vm-a-"))
        self.assertEqual(tgt["status"]["phase"], "Pending")
        for phase in ("Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running"):
            cur = api.get(VMIMS + "/" + vmim["metadata"]["name"]).json
            cur["status"] = dict(cur.get("status") or {}, phase=phase)
            self.assertEqual(api.put(VMIMS + "/" + vmim["metadata"]["name"] + "/status", cur).status, 200)
        tpath = "/api/v1/namespaces/default/pods/" + tgt["metadata"]["name"]
        r = api.patch(tpath, {"metadata": {"annotations": {
            "kubevirt.io/migration-target-ready-timestamp": "2026-08-22T10:40:52Z"}}})
        self.assertEqual(r.status, 200)

        # kvnet agent: hand the IP over, CAS on the handle's resourceVersion
        moved = copy.deepcopy(h)
        moved["spec"] = {"active": "default/" + tgt["metadata"]["name"], "alternate": ""}
        self.assertEqual(api.put(HANDLES + "/" + h["metadata"]["name"], moved).status, 200)
        self.assertStatus(api.put(HANDLES + "/" + h["metadata"]["name"], moved), 409, "Conflict")

        src = api.get("/api/v1/namespaces/default/pods/virt-launcher-vm-a-5cd9t").json
        src["status"]["phase"] = "Succeeded"
        api.put("/api/v1/namespaces/default/pods/virt-launcher-vm-a-5cd9t/status", src)
        api.delete("/api/v1/namespaces/default/pods/virt-launcher-vm-a-5cd9t")
        cur = api.get(VMIMS + "/" + vmim["metadata"]["name"]).json
        cur["status"]["phase"] = "Succeeded"
        api.put(VMIMS + "/" + vmim["metadata"]["name"] + "/status", cur)
        d = api.delete(VMIMS + "/" + vmim["metadata"]["name"]).json
        self.assertIn("deletionTimestamp", d["metadata"])  # finalizer holds it
        api.patch(VMIMS + "/" + vmim["metadata"]["name"], {"metadata": {"finalizers": None}})
        self.assertStatus(api.get(VMIMS + "/" + vmim["metadata"]["name"]), 404)

        # what the agent on node-b saw
        evs = []
        while len(evs) < 2:
            ev = pods_w.next_event()
            if ev["type"] != "BOOKMARK":
                evs.append(ev)
        pods_w.close()
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED"])
        self.assertEqual(evs[0]["object"]["metadata"]["labels"]["kubevirt.io/migrationJobUID"],
                         vmim["metadata"]["uid"])
        self.assertIn("kubevirt.io/migration-target-ready-timestamp",
                      evs[1]["object"]["metadata"]["annotations"])
        mig = [mig_w.next_event() for _ in range(9)]
        mig_w.close()
        self.assertEqual([(e["type"], (e["object"].get("status") or {}).get("phase")) for e in mig],
                         [("ADDED", None), ("MODIFIED", "Scheduling"), ("MODIFIED", "Scheduled"),
                          ("MODIFIED", "PreparingTarget"), ("MODIFIED", "TargetReady"),
                          ("MODIFIED", "Running"), ("MODIFIED", "Succeeded"),
                          ("MODIFIED", "Succeeded"), ("DELETED", "Succeeded")])
        self.assertNotIn("deletionTimestamp", mig[6]["object"]["metadata"])
        self.assertIn("deletionTimestamp", mig[7]["object"]["metadata"])

        # and every call counted
        c = api.counters()
        self.assertEqual(c["verbs"], {"create": 2, "get": 8, "update": 9, "patch": 2,
                                      "delete": 2})


if __name__ == "__main__":
    kt.main()
