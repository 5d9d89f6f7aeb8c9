#!/usr/bin/env python3
"""Contract: merge patch (RFC 7386), JSON patch (RFC 6902) and the status subresource."""

import json

import kt

import patch as jpatch


class MergePatch(kt.TestCase):
    def test_rfc7386_examples(self):
        # RFC 7386 appendix A, a few cases
        cases = [({"a": "b"}, {"a": "c"}, {"a": "c"}),
                 ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
                 ({"a": "b"}, {"a": None}, {}),
                 ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
                 ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
                 (["a", "b"], ["c", "d"], ["c", "d"]),
                 ({"a": "foo"}, None, None),
                 ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
                 ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
                 ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}})]
        for target, p, want in cases:
            self.assertEqual(jpatch.merge_patch(target, p), want, (target, p))

    def test_merge_patch_object(self):
        o = self.create(kt.PODS, kt.pod("p1", labels={"a": "1", "b": "2"}))
        r = self.api.patch(kt.PODS + "/p1", {"metadata": {"labels": {"a": None, "c": "3"},
                                                          "annotations": {"x": "y"}}})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["metadata"]["labels"], {"b": "2", "c": "3"})
        self.assertEqual(r.json["metadata"]["annotations"], {"x": "y"})
        self.assertGreater(int(r.json["metadata"]["resourceVersion"]),
                           int(o["metadata"]["resourceVersion"]))
        self.assertEqual(r.json["spec"], o["spec"])

    def test_patch_with_resource_version_is_cas(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        rv = o["metadata"]["resourceVersion"]
        r = self.api.patch(kt.BLOCKS + "/b1", {"metadata": {"resourceVersion": rv},
                                               "spec": {"allocations": [1]}})
        self.assertEqual(r.status, 200)
        s = self.assertStatus(self.api.patch(kt.BLOCKS + "/b1", {
            "metadata": {"resourceVersion": rv}, "spec": {"allocations": [2]}}), 409, "Conflict")
        self.assertIn("the object has been modified", s["message"])
        self.assertEqual(self.api.get(kt.BLOCKS + "/b1").json["spec"]["allocations"], [1])

    def test_strategic_merge_treated_as_merge(self):
        self.create(kt.PODS, kt.pod("p1"))
        r = self.api.patch(kt.PODS + "/p1", {"metadata": {"labels": {"s": "1"}}}, kind="strategic")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["metadata"]["labels"]["s"], "1")

    def test_unsupported_patch_type(self):
        self.create(kt.PODS, kt.pod("p1"))
        r = self.api.request("PATCH", kt.PODS + "/p1", json.dumps({"a": 1}),
                             headers={"Content-Type": "application/apply-patch+yaml"})
        self.assertStatus(r, 415, "UnsupportedMediaType")
        r = self.api.request("PATCH", kt.PODS + "/p1", b"{bad",
                             headers={"Content-Type": "application/merge-patch+json"})
        self.assertStatus(r, 400, "BadRequest")

    def test_patch_missing_object(self):
        self.assertStatus(self.api.patch(kt.PODS + "/nope", {"metadata": {}}), 404, "NotFound")


class JSONPatch(kt.TestCase):
    def test_ops(self):
        doc = {"a": {"b": [1, 2, 3]}, "c": "d"}
        ops = [{"op": "add", "path": "/a/b/1", "value": 9},
               {"op": "add", "path": "/a/b/-", "value": 4},
               {"op": "remove", "path": "/a/b/0"},
               {"op": "replace", "path": "/c", "value": "e"},
               {"op": "copy", "from": "/c", "path": "/f"},
               {"op": "move", "from": "/f", "path": "/a/g"},
               {"op": "add", "path": "/h~1i", "value": {"~": 1}},
               {"op": "test", "path": "/h~1i/~0", "value": 1}]
        self.assertEqual(jpatch.json_patch(doc, ops),
                         {"a": {"b": [9, 2, 3, 4], "g": "e"}, "c": "e", "h/i": {"~": 1}})
        self.assertEqual(doc, {"a": {"b": [1, 2, 3]}, "c": "d"})  # input untouched
        for bad in ([{"op": "remove", "path": "/zz"}], [{"op": "replace", "path": "/zz", "value": 1}],
                    [{"op": "add", "path": "/a/b/7", "value": 1}], [{"op": "test", "path": "/c", "value": "x"}],
                    [{"op": "move", "from": "/a", "path": "/a/b/x"}], [{"op": "test", "path": "/c", "value": True}]):
            with self.assertRaises(jpatch.PatchError, msg=bad):
                jpatch.json_patch(doc, bad)

    def test_json_patch_object(self):
        b = kt.block("b1")
        b["spec"]["allocations"] = [None, None]
        self.create(kt.BLOCKS, b)
        r = self.api.patch(kt.BLOCKS + "/b1", [
            {"op": "test", "path": "/spec/allocations/0", "value": None},
            {"op": "replace", "path": "/spec/allocations/0", "value": 7},
            {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}}], kind="json")
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(r.json["spec"]["allocations"], [7, None])
        self.assertEqual(r.json["metadata"]["labels"], {"k": "v"})

    def test_failed_test_op_is_422(self):
        self.create(kt.BLOCKS, kt.block("b1"))
        r = self.api.patch(kt.BLOCKS + "/b1", [
            {"op": "test", "path": "/spec/cidr", "value": "198.18.9.0/26"},
            {"op": "replace", "path": "/spec/cidr", "value": "198.18.10.0/26"}], kind="json")
        s = self.assertStatus(r, 422, "Invalid")
        self.assertEqual(s["message"], "the server rejected our request due to an error in our request")
        self.assertIn("test failed", s["details"]["causes"][0]["message"])
        self.assertEqual(self.api.get(kt.BLOCKS + "/b1").json["spec"]["cidr"], "198.18.4.0/26")

    def test_test_op_on_resource_version_gives_cas(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        rv = o["metadata"]["resourceVersion"]
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
               {"op": "replace", "path": "/spec/cidr", "value": "198.18.5.0/26"}]
        self.assertEqual(self.api.patch(kt.BLOCKS + "/b1", ops, kind="json").status, 200)
        self.assertStatus(self.api.patch(kt.BLOCKS + "/b1", ops, kind="json"), 422, "Invalid")
        # replacing resourceVersion with a stale one is an optimistic-lock conflict
        ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
               {"op": "replace", "path": "/spec/cidr", "value": "198.18.6.0/26"}]
        self.assertStatus(self.api.patch(kt.BLOCKS + "/b1", ops, kind="json"), 409, "Conflict")

    def test_malformed_json_patch_is_400(self):
        self.create(kt.BLOCKS, kt.block("b1"))
        self.assertStatus(self.api.patch(kt.BLOCKS + "/b1", {"op": "add"}, kind="json"), 400,
                          "BadRequest")


class StatusSubresource(kt.TestCase):
    def test_main_endpoint_ignores_status(self):
        p = self.create(kt.PODS, kt.pod("p1"))
        p["status"] = {"phase": "Running", "podIP": "198.18.4.10"}
        p["metadata"]["labels"]["x"] = "1"
        r = self.api.put(kt.PODS + "/p1", p)
        self.assertEqual(r.json["status"]["phase"], "Pending")
        self.assertEqual(r.json["metadata"]["labels"]["x"], "1")
        rv = r.json["metadata"]["resourceVersion"]
        r = self.api.patch(kt.PODS + "/p1", {"status": {"phase": "Failed"}})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["status"]["phase"], "Pending")
        self.assertEqual(r.json["metadata"]["resourceVersion"], rv)  # nothing changed: no write

    def test_status_endpoint_changes_only_status(self):
        p = self.create(kt.PODS, kt.pod("p1"))
        p["status"] = {"phase": "Running", "podIP": "198.18.4.10"}
        p["spec"]["nodeName"] = "node-z"
        p["metadata"]["labels"] = {"changed": "yes"}
        r = self.api.put(kt.PODS + "/p1/status", p)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(r.json["status"], {"phase": "Running", "podIP": "198.18.4.10"})
        self.assertEqual(r.json["spec"]["nodeName"], "node-a")
        self.assertEqual(r.json["metadata"]["labels"], {})
        self.assertEqual(r.json["metadata"]["generation"], 1)
        g = self.api.get(kt.PODS + "/p1/status").json
        self.assertEqual(g, r.json)
        # stale rv on the status endpoint conflicts too
        self.assertStatus(self.api.put(kt.PODS + "/p1/status", p), 409, "Conflict")
        r = self.api.patch(kt.PODS + "/p1/status", {"status": {"phase": "Succeeded"},
                                                    "spec": {"nodeName": "node-q"}})
        self.assertEqual(r.json["status"]["phase"], "Succeeded")
        self.assertEqual(r.json["spec"]["nodeName"], "node-a")

    def test_custom_resource_status(self):
        vmims = "/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstancemigrations"
        vmim = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                "metadata": {"name": "mig"}, "spec": {"vmiName": "vm-a"},
                "status": {"phase": "Running"}}
        o = self.create(vmims, vmim)
        self.assertNotIn("status", o)  # dropped on create
        o["status"] = {"phase": "Scheduling"}
        o2 = self.api.put(vmims + "/mig/status", o).json
        self.assertEqual(o2["status"], {"phase": "Scheduling"})
        o2["spec"] = {"vmiName": "vm-b"}
        o2["status"] = {"phase": "Failed"}
        o3 = self.api.put(vmims + "/mig", o2).json
        self.assertEqual(o3["status"], {"phase": "Scheduling"})
        self.assertEqual(o3["spec"]["vmiName"], "vm-b")
        self.assertEqual(o3["metadata"]["generation"], 2)

    def test_vmi_has_no_status_subresource(self):
        # as KubeVirt's CRD: virt-handler writes the VMI's status through the main endpoint
        vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
               "metadata": {"name": "vm-a"}, "spec": {"domain": {}},
               "status": {"phase": "Pending"}}
        o = self.create(kt.VMIS, vmi)
        self.assertEqual(o["status"], {"phase": "Pending"})
        o["status"] = {"phase": "Running", "nodeName": "node-a"}
        o2 = self.api.put(kt.VMIS + "/vm-a", o).json
        self.assertEqual(o2["status"]["nodeName"], "node-a")
        self.assertEqual(o2["metadata"]["generation"], 2)  # no subresource: status counts
        self.assertStatus(self.api.get(kt.VMIS + "/vm-a/status"), 404, "NotFound")

    def test_resource_without_status_subresource_keeps_status(self):
        b = kt.block("b1")
        b["status"] = {"used": 1}
        o = self.create(kt.BLOCKS, b)
        self.assertEqual(o["status"], {"used": 1})
        o["status"] = {"used": 2}
        self.assertEqual(self.api.put(kt.BLOCKS + "/b1", o).json["status"], {"used": 2})
        self.assertStatus(self.api.put(kt.BLOCKS + "/b1/status", o), 404, "NotFound")


if __name__ == "__main__":
    kt.main()
