#!/usr/bin/env python3
"""Contract: create/get/update/delete, 409s, finalizers, preconditions, namespaces, CRDs,
discovery — with the real API's status codes and Status bodies."""

import re

import kt


class Create(kt.TestCase):
    def test_create_sets_system_fields(self):
        before = int(self.api.get(kt.PODS).json["metadata"]["resourceVersion"])
        p = kt.pod("p1")
        p["metadata"]["uid"] = "client-chosen"
        p["status"] = {"phase": "Running"}
        r = self.api.post(kt.PODS, p)
        self.assertEqual(r.status, 201)
        o = r.json
        self.assertEqual(o["kind"], "Pod")
        self.assertEqual(o["apiVersion"], "v1")
        md = o["metadata"]
        self.assertRegex(md["uid"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertIsInstance(md["resourceVersion"], str)
        self.assertGreater(int(md["resourceVersion"]), before)
        self.assertRegex(md["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(md["generation"], 1)
        self.assertEqual(md["namespace"], "default")
        # pods start Pending whatever the client sent (PrepareForCreate)
        self.assertEqual(o["status"]["phase"], "Pending")
        self.assertEqual(self.api.get(kt.PODS + "/p1").json, o)

    def test_one_global_resource_version(self):
        rvs = []
        rvs.append(self.create(kt.PODS, kt.pod("a"))["metadata"]["resourceVersion"])
        rvs.append(self.create(kt.BLOCKS, kt.block("b"))["metadata"]["resourceVersion"])
        rvs.append(self.create("/api/v1/nodes", {"metadata": {"name": "node-a"}})
                   ["metadata"]["resourceVersion"])
        rvs.append(self.create(kt.PODS, kt.pod("c"))["metadata"]["resourceVersion"])
        n = [int(x) for x in rvs]
        self.assertEqual(n, sorted(n))
        self.assertEqual(len(set(n)), 4)
        self.assertEqual(n[3] - n[0], 3)
        lst = self.api.get("/api/v1/nodes").json
        self.assertEqual(lst["metadata"]["resourceVersion"], rvs[3])

    def test_already_exists(self):
        self.create(kt.PODS, kt.pod("p1"))
        s = self.assertStatus(self.api.post(kt.PODS, kt.pod("p1")), 409, "AlreadyExists")
        self.assertEqual(s["message"], 'pods "p1" already exists')
        self.assertEqual(s["details"], {"name": "p1", "kind": "pods"})
        self.create(kt.BLOCKS, kt.block("b1"))
        s = self.assertStatus(self.api.post(kt.BLOCKS, kt.block("b1")), 409, "AlreadyExists")
        self.assertEqual(s["message"], 'ipamblocks.kvnet.io "b1" already exists')
        self.assertEqual(s["details"], {"name": "b1", "group": "kvnet.io", "kind": "ipamblocks"})

    def test_generate_name(self):
        p = kt.pod("")
        del p["metadata"]["name"]
        p["metadata"]["generateName"] = "virt-launcher-vm-a-"
        names = set()
        for _ in range(5):
            o = self.create(kt.PODS, p)
            self.assertRegex(o["metadata"]["name"], r"^virt-launcher-vm-a-[bcdfghjklmnpqrstvwxz2456789]{5}$")
            self.assertEqual(o["metadata"]["generateName"], "virt-launcher-vm-a-")
            names.add(o["metadata"]["name"])
        self.assertEqual(len(names), 5)

    def test_missing_name_is_invalid(self):
        p = kt.pod("x")
        del p["metadata"]["name"]
        s = self.assertStatus(self.api.post(kt.PODS, p), 422, "Invalid")
        self.assertEqual(s["details"]["causes"][0]["field"], "metadata.name")
        self.assertEqual(s["details"]["causes"][0]["reason"], "FieldValueRequired")

    def test_bad_name_is_invalid(self):
        s = self.assertStatus(self.api.post(kt.PODS, kt.pod("Bad_Name")), 422, "Invalid")
        self.assertTrue(s["message"].startswith('Pod "Bad_Name" is invalid: metadata.name: '
                                                'Invalid value: "Bad_Name"'), s["message"])

    def test_resource_version_on_create_is_rejected(self):
        p = kt.pod("p1")
        p["metadata"]["resourceVersion"] = "5"
        s = self.assertStatus(self.api.post(kt.PODS, p), 500, "InternalError")
        self.assertIn("resourceVersion should not be set on objects to be created", s["message"])

    def test_namespace_mismatch_and_missing_namespace(self):
        s = self.assertStatus(self.api.post(kt.PODS, kt.pod("p1", ns="other")), 400,
                              "BadRequest")
        self.assertIn("namespace of the provided object does not match", s["message"])
        s = self.assertStatus(self.api.post("/api/v1/namespaces/nope/pods", kt.pod("p1", ns="nope")),
                              404, "NotFound")
        self.assertEqual(s["message"], 'namespaces "nope" not found')

    def test_kind_mismatch(self):
        p = kt.pod("p1")
        p["kind"] = "Node"
        self.assertStatus(self.api.post(kt.PODS, p), 400, "BadRequest")
        self.assertStatus(self.api.post(kt.PODS, b"{not json"), 400, "BadRequest")

    def test_wrong_json_types_are_400(self):
        bodies = [b"null", b"[]", b"1", b'"s"', b'{"metadata":[]}', b'{"metadata":{"name":5}}',
                  b'{"metadata":{"name":"p1","labels":[1]}}',
                  b'{"metadata":{"name":"p1","labels":{"a":1}}}',
                  b'{"metadata":{"name":"p1","finalizers":"x"}}',
                  b'{"metadata":{"name":"p1","resourceVersion":5}}',
                  b'{"metadata":{"name":"p1","ownerReferences":[1]}}',
                  b'{"kind":[]}', b"\xff\xfe", b""]
        before = self.create(kt.PODS, kt.pod("p1"))
        for b in bodies:
            for method, path in (("POST", kt.PODS), ("PUT", kt.PODS + "/p1"),
                                 ("PUT", kt.PODS + "/p1/status")):
                r = self.api.request(method, path, b, headers={"Content-Type": "application/json"})
                self.assertStatus(r, 400, "BadRequest")
            r = self.api.request("PATCH", kt.PODS + "/p1", b,
                                 headers={"Content-Type": "application/merge-patch+json"})
            self.assertStatus(r, 400, "BadRequest")
        self.assertEqual(self.api.get(kt.PODS + "/p1").json, before)

    def test_bad_label_is_invalid(self):
        s = self.assertStatus(self.api.post(kt.PODS, kt.pod("p1", labels={"bad key": "v"})),
                              422, "Invalid")
        self.assertEqual(s["details"]["causes"][0]["field"], "metadata.labels")
        self.assertStatus(self.api.post(kt.PODS, kt.pod("p1", labels={"k": "-bad-"})), 422,
                          "Invalid")
        self.create(kt.PODS, kt.pod("p1", labels={"kubevirt.io/domain": "vm-a", "e": ""}))

    def test_content_type_must_be_json(self):
        r = self.api.request("POST", kt.PODS, b"name: p1\n",
                             headers={"Content-Type": "application/yaml"})
        self.assertStatus(r, 415, "UnsupportedMediaType")
        r = self.api.request("POST", kt.PODS, b'{"metadata":{"name":"p1"}}',
                             headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 201, r.raw)

    def test_json_written_like_go(self):
        p = kt.pod("p1")
        p["metadata"]["annotations"] = {"note": "<b>café & co</b>"}
        r = self.api.post(kt.PODS, p)
        self.assertEqual(r.status, 201)
        self.assertTrue(r.raw.endswith(b"}\n"))  # json.Encoder adds a newline
        self.assertIn("caf\u00e9".encode("utf-8"), r.raw)  # raw UTF-8, not \u00e9
        self.assertIn(b"\\u003cb\\u003ecaf", r.raw)  # <, > and & escaped
        self.assertIn(b"\\u0026 co", r.raw)
        self.assertNotIn(b": ", r.raw)  # compact
        self.assertEqual(r.json["metadata"]["annotations"]["note"], "<b>café & co</b>")

    def test_missing_kind_is_filled_in(self):
        o = self.create(kt.BLOCKS, {"metadata": {"name": "b1"}, "spec": {}})
        self.assertEqual((o["apiVersion"], o["kind"]), ("kvnet.io/v1", "IPAMBlock"))

    def test_not_found_and_routing_errors(self):
        s = self.assertStatus(self.api.get(kt.PODS + "/nope"), 404, "NotFound")
        self.assertEqual(s["message"], 'pods "nope" not found')
        self.assertEqual(s["details"], {"name": "nope", "kind": "pods"})
        s = self.assertStatus(self.api.get("/apis/kvnet.io/v1/ipamblocks/nope"), 404, "NotFound")
        self.assertEqual(s["message"], 'ipamblocks.kvnet.io "nope" not found')
        s = self.assertStatus(self.api.get("/apis/kvnet.io/v1/widgets"), 404, "NotFound")
        self.assertEqual(s["message"], "the server could not find the requested resource")
        self.assertStatus(self.api.get("/apis/kvnet.io/v1/namespaces/default/ipamblocks"), 404)
        self.assertStatus(self.api.get(kt.PODS + "/p/exec"), 404)
        self.assertStatus(self.api.get("/apis/kvnet.io/v1/ipamblocks/b/status"), 404)
        s = self.assertStatus(self.api.post(kt.PODS + "/p1", kt.pod("p1")), 405,
                              "MethodNotAllowed")
        self.assertStatus(self.api.put(kt.PODS, kt.pod("p1")), 405, "MethodNotAllowed")


class Update(kt.TestCase):
    def test_update_with_current_rv(self):
        o = self.create(kt.PODS, kt.pod("p1"))
        o["metadata"]["labels"]["x"] = "1"
        r = self.api.put(kt.PODS + "/p1", o)
        self.assertEqual(r.status, 200)
        self.assertGreater(int(r.json["metadata"]["resourceVersion"]),
                           int(o["metadata"]["resourceVersion"]))
        self.assertEqual(r.json["metadata"]["labels"]["x"], "1")
        self.assertEqual(r.json["metadata"]["uid"], o["metadata"]["uid"])
        self.assertEqual(r.json["metadata"]["creationTimestamp"], o["metadata"]["creationTimestamp"])

    def test_stale_rv_conflict(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        o2 = dict(o, spec={"cidr": "198.18.4.0/26", "allocations": [0]})
        self.assertEqual(self.api.put(kt.BLOCKS + "/b1", o2).status, 200)
        s = self.assertStatus(self.api.put(kt.BLOCKS + "/b1", o), 409, "Conflict")
        self.assertEqual(s["message"], 'Operation cannot be fulfilled on ipamblocks.kvnet.io "b1": '
                         'the object has been modified; please apply your changes to the '
                         'latest version and try again')
        self.assertEqual(s["details"], {"name": "b1", "group": "kvnet.io", "kind": "ipamblocks"})

    def test_unconditional_update_builtin_only(self):
        self.create(kt.PODS, kt.pod("p1"))
        p = kt.pod("p1", labels={"y": "2"})
        self.assertEqual(self.api.put(kt.PODS + "/p1", p).status, 200)
        self.create(kt.BLOCKS, kt.block("b1"))
        s = self.assertStatus(self.api.put(kt.BLOCKS + "/b1", kt.block("b1")), 422, "Invalid")
        self.assertEqual(s["details"]["causes"][0]["field"], "metadata.resourceVersion")
        self.assertIn("must be specified for an update", s["message"])

    def test_update_missing_object_and_name_mismatch(self):
        self.assertStatus(self.api.put(kt.PODS + "/p1", kt.pod("p1")), 404, "NotFound")
        self.create(kt.PODS, kt.pod("p1"))
        s = self.assertStatus(self.api.put(kt.PODS + "/p1", kt.pod("p2")), 400, "BadRequest")
        self.assertEqual(s["message"], "the name of the object (p2) does not match the name on "
                         "the URL (p1)")

    def test_noop_update_keeps_rv(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        r = self.api.put(kt.BLOCKS + "/b1", o)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"])
        self.assertEqual(self.api.get(kt.BLOCKS).json["metadata"]["resourceVersion"],
                         o["metadata"]["resourceVersion"])

    def test_generation(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        o["metadata"]["labels"] = {"a": "b"}
        o = self.api.put(kt.BLOCKS + "/b1", o).json
        self.assertEqual(o["metadata"]["generation"], 1)  # metadata only
        o["spec"]["cidr"] = "198.18.5.0/26"
        o = self.api.put(kt.BLOCKS + "/b1", o).json
        self.assertEqual(o["metadata"]["generation"], 2)
        o["metadata"]["generation"] = 40  # clients cannot set it
        o["spec"]["cidr"] = "198.18.6.0/26"
        o = self.api.put(kt.BLOCKS + "/b1", o).json
        self.assertEqual(o["metadata"]["generation"], 3)

    def test_uid_mismatch_conflicts(self):
        o = self.create(kt.PODS, kt.pod("p1"))
        o["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
        s = self.assertStatus(self.api.put(kt.PODS + "/p1", o), 409, "Conflict")
        self.assertIn("Precondition failed: UID in precondition", s["message"])


class Concurrency(kt.TestCase):
    def test_concurrent_cas_loses_no_update(self):
        """8 writers each add 10 to a counter with read-modify-write + retry on 409: the
        compare-and-swap on resourceVersion must make every increment count."""
        import threading
        self.create(kt.BLOCKS, kt.block("ctr", count=0))
        conflicts = []
        errors = []

        def writer():
            c = self.api.connect()
            n = 0
            try:
                while n < 10:
                    o = self.api.request("GET", kt.BLOCKS + "/ctr", conn=c).json
                    o["spec"]["count"] += 1
                    r = self.api.request("PUT", kt.BLOCKS + "/ctr", o, conn=c)
                    if r.status == 409:
                        conflicts.append(1)
                        continue
                    if r.status != 200:
                        errors.append(r.raw)
                        return
                    n += 1
            finally:
                c.close()
        ts = [threading.Thread(target=writer) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        final = self.api.get(kt.BLOCKS + "/ctr").json
        self.assertEqual(final["spec"]["count"], 80)
        self.assertEqual(final["metadata"]["generation"], 81)


class Delete(kt.TestCase):
    def test_delete_pod_returns_object(self):
        o = self.create(kt.PODS, kt.pod("p1"))
        r = self.api.delete(kt.PODS + "/p1?gracePeriodSeconds=0")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["kind"], "Pod")
        self.assertEqual(r.json["metadata"]["uid"], o["metadata"]["uid"])
        self.assertGreater(int(r.json["metadata"]["resourceVersion"]),
                           int(o["metadata"]["resourceVersion"]))
        self.assertStatus(self.api.get(kt.PODS + "/p1"), 404, "NotFound")
        self.assertStatus(self.api.delete(kt.PODS + "/p1"), 404, "NotFound")

    def test_graceful_pod_deletion(self):
        """A scheduled, running pod is deleted in two steps, as with a real kubelet: DELETE
        marks it terminating (deletionTimestamp in the future, the grace period), the
        kubelet's DELETE with gracePeriodSeconds=0 removes it."""
        p = kt.pod("p1")
        p["spec"]["terminationGracePeriodSeconds"] = 45
        o = self.create(kt.PODS, p)
        r = self.api.delete(kt.PODS + "/p1")
        self.assertEqual(r.status, 200)
        md = r.json["metadata"]
        self.assertEqual(md["deletionGracePeriodSeconds"], 45)
        self.assertGreater(md["deletionTimestamp"], o["metadata"]["creationTimestamp"])
        self.assertEqual(self.api.get(kt.PODS + "/p1").json["metadata"]["deletionGracePeriodSeconds"], 45)
        # a longer period changes nothing, a shorter one shortens it
        self.assertEqual(self.api.delete(kt.PODS + "/p1", {"gracePeriodSeconds": 60}).json
                         ["metadata"]["resourceVersion"], md["resourceVersion"])
        self.assertEqual(self.api.delete(kt.PODS + "/p1", {"gracePeriodSeconds": 5}).json
                         ["metadata"]["deletionGracePeriodSeconds"], 5)
        self.assertStatus(self.api.delete(kt.PODS + "/p1?gracePeriodSeconds=x"), 400, "BadRequest")
        r = self.api.delete(kt.PODS + "/p1", {"kind": "DeleteOptions", "apiVersion": "v1",
                                              "gracePeriodSeconds": 0})
        self.assertEqual(r.status, 200)
        self.assertStatus(self.api.get(kt.PODS + "/p1"), 404, "NotFound")

    def test_unscheduled_or_finished_pods_go_at_once(self):
        self.create(kt.PODS, kt.pod("unscheduled", node=""))
        self.assertEqual(self.api.delete(kt.PODS + "/unscheduled").status, 200)
        self.assertStatus(self.api.get(kt.PODS + "/unscheduled"), 404)
        done = self.create(kt.PODS, kt.pod("done"))
        done["status"] = {"phase": "Succeeded"}
        self.api.put(kt.PODS + "/done/status", done)
        self.api.delete(kt.PODS + "/done")
        self.assertStatus(self.api.get(kt.PODS + "/done"), 404)
        # and the switch for tests that want every pod gone at once
        self.api.config(gracefulPodDeletion=False)
        try:
            self.create(kt.PODS, kt.pod("p"))
            self.api.delete(kt.PODS + "/p")
            self.assertStatus(self.api.get(kt.PODS + "/p"), 404)
        finally:
            self.api.config(gracefulPodDeletion=True)

    def test_graceful_pod_with_finalizer(self):
        p = kt.pod("p1")
        p["metadata"]["finalizers"] = ["kvnet.io/ip"]
        self.create(kt.PODS, p)
        self.assertEqual(self.api.delete(kt.PODS + "/p1").json["metadata"]
                         ["deletionGracePeriodSeconds"], 30)
        d = self.api.delete(kt.PODS + "/p1?gracePeriodSeconds=0").json
        self.assertEqual(d["metadata"]["deletionGracePeriodSeconds"], 0)  # finalizer holds it
        self.api.patch(kt.PODS + "/p1", {"metadata": {"finalizers": None}})
        self.assertStatus(self.api.get(kt.PODS + "/p1"), 404)

    def test_delete_custom_resource_returns_status(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        r = self.api.delete(kt.BLOCKS + "/b1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Success",
                                  "details": {"name": "b1", "group": "kvnet.io",
                                              "kind": "ipamblocks",
                                              "uid": o["metadata"]["uid"]}})

    def test_preconditions(self):
        o = self.create(kt.BLOCKS, kt.block("b1"))
        bad_uid = {"kind": "DeleteOptions", "apiVersion": "v1",
                   "preconditions": {"uid": "11111111-1111-4111-8111-111111111111"}}
        s = self.assertStatus(self.api.delete(kt.BLOCKS + "/b1", bad_uid), 409, "Conflict")
        self.assertIn("Precondition failed: UID in precondition: 11111111-1111-4111-8111-111111111111, "
                      "UID in object meta: " + o["metadata"]["uid"], s["message"])
        bad_rv = {"preconditions": {"resourceVersion": "1"}}
        s = self.assertStatus(self.api.delete(kt.BLOCKS + "/b1", bad_rv), 409, "Conflict")
        self.assertIn("Precondition failed: ResourceVersion in precondition: 1, ResourceVersion "
                      "in object meta: " + o["metadata"]["resourceVersion"], s["message"])
        self.assertEqual(self.api.get(kt.BLOCKS + "/b1").status, 200)
        good = {"preconditions": {"uid": o["metadata"]["uid"],
                                  "resourceVersion": o["metadata"]["resourceVersion"]}}
        self.assertEqual(self.api.delete(kt.BLOCKS + "/b1", good).status, 200)
        self.assertStatus(self.api.get(kt.BLOCKS + "/b1"), 404)

    def test_finalizers_hold_deletion(self):
        b = kt.block("b1")
        b["metadata"]["finalizers"] = ["kvnet.io/a", "kvnet.io/b"]
        o = self.create(kt.BLOCKS, b)
        r = self.api.delete(kt.BLOCKS + "/b1")
        self.assertEqual(r.status, 200)
        d = r.json
        self.assertEqual(d["kind"], "IPAMBlock")  # the object, not a Status
        self.assertRegex(d["metadata"]["deletionTimestamp"], r"Z$")
        self.assertEqual(d["metadata"]["deletionGracePeriodSeconds"], 0)
        self.assertGreater(int(d["metadata"]["resourceVersion"]), int(o["metadata"]["resourceVersion"]))
        # deleting again changes nothing
        again = self.api.delete(kt.BLOCKS + "/b1").json
        self.assertEqual(again["metadata"]["resourceVersion"], d["metadata"]["resourceVersion"])
        # no new finalizers while being deleted
        d2 = dict(d, metadata=dict(d["metadata"], finalizers=["kvnet.io/a", "kvnet.io/b", "kvnet.io/c"]))
        s = self.assertStatus(self.api.put(kt.BLOCKS + "/b1", d2), 422, "Invalid")
        self.assertIn("no new finalizers can be added if the object is being deleted", s["message"])
        # deletionTimestamp cannot be cleared by an update
        d3 = dict(d, metadata=dict(d["metadata"], finalizers=["kvnet.io/a"]))
        del d3["metadata"]["deletionTimestamp"]
        r = self.api.put(kt.BLOCKS + "/b1", d3)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["metadata"]["deletionTimestamp"], d["metadata"]["deletionTimestamp"])
        # removing the last finalizer deletes it
        r = self.api.patch(kt.BLOCKS + "/b1", {"metadata": {"finalizers": None}})
        self.assertEqual(r.status, 200)
        self.assertStatus(self.api.get(kt.BLOCKS + "/b1"), 404, "NotFound")

    def test_delete_collection(self):
        for i, app in enumerate(["a", "a", "b"]):
            self.create(kt.PODS, kt.pod("p%d" % i, labels={"app": app}))
        r = self.api.delete(kt.PODS + "?labelSelector=app%3Da&gracePeriodSeconds=0")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["kind"], "PodList")
        self.assertEqual(sorted(i["metadata"]["name"] for i in r.json["items"]), ["p0", "p1"])
        self.assertEqual([i["metadata"]["name"] for i in self.api.get(kt.PODS).json["items"]], ["p2"])

    def test_namespace_deletion(self):
        self.create("/api/v1/namespaces", {"metadata": {"name": "lab"}})
        self.create("/api/v1/namespaces/lab/pods", kt.pod("p1", ns="lab"))
        held = kt.pod("p2", ns="lab")
        held["metadata"]["finalizers"] = ["kvnet.io/hold"]
        self.create("/api/v1/namespaces/lab/pods", held)
        r = self.api.delete("/api/v1/namespaces/lab")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["status"]["phase"], "Terminating")
        self.assertStatus(self.api.get("/api/v1/namespaces/lab/pods/p1"), 404)
        s = self.assertStatus(self.api.post("/api/v1/namespaces/lab/pods", kt.pod("p3", ns="lab")),
                              403, "Forbidden")
        self.assertIn("because it is being terminated", s["message"])
        p2 = self.api.get("/api/v1/namespaces/lab/pods/p2").json
        self.assertIn("deletionTimestamp", p2["metadata"])
        self.api.patch("/api/v1/namespaces/lab/pods/p2", {"metadata": {"finalizers": []}})
        self.assertStatus(self.api.get("/api/v1/namespaces/lab"), 404, "NotFound")


class CRD(kt.TestCase):
    CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.kvnet.io"},
           "spec": {"group": "example.kvnet.io", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                              "shortNames": ["wd"]},
                    "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}},
                                  "subresources": {"status": {}}}]}}

    def test_crd_makes_resource_servable(self):
        path = "/apis/example.kvnet.io/v1alpha1/namespaces/default/widgets"
        self.assertStatus(self.api.get(path), 404)
        c = self.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", self.CRD)
        conds = {x["type"]: x["status"] for x in c["status"]["conditions"]}
        self.assertEqual(conds, {"NamesAccepted": "True", "Established": "True"})
        w = self.create(path, {"apiVersion": "example.kvnet.io/v1alpha1", "kind": "Widget",
                               "metadata": {"name": "w1"}, "spec": {"size": 1},
                               "status": {"ready": True}})
        self.assertNotIn("status", w)  # status subresource: dropped on create
        lst = self.api.get(path).json
        self.assertEqual(lst["kind"], "WidgetList")
        self.assertEqual(lst["items"][0]["kind"], "Widget")  # custom resources keep kind in lists
        r = self.api.put(path + "/w1/status", dict(w, status={"ready": True}))
        self.assertEqual(r.json["status"], {"ready": True})
        disc = self.api.get("/apis/example.kvnet.io/v1alpha1").json
        self.assertEqual(sorted(x["name"] for x in disc["resources"]), ["widgets", "widgets/status"])
        groups = [g["name"] for g in self.api.get("/apis").json["groups"]]
        self.assertIn("example.kvnet.io", groups)
        # deleting the CRD removes the resource and its objects
        r = self.api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                            "widgets.example.kvnet.io")
        self.assertEqual(r.status, 200)
        self.assertStatus(self.api.get(path), 404)

    def test_bad_crd_is_invalid(self):
        bad = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "x.example.kvnet.io"}, "spec": {"group": "example.kvnet.io"}}
        self.assertStatus(self.api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                        bad), 422, "Invalid")


class Discovery(kt.TestCase):
    def test_discovery(self):
        self.assertEqual(self.api.get("/api").json["versions"], ["v1"])
        core = {r["name"]: r for r in self.api.get("/api/v1").json["resources"]}
        self.assertTrue(core["pods"]["namespaced"])
        self.assertFalse(core["nodes"]["namespaced"])
        self.assertIn("pods/status", core)
        kv = {r["name"]: r for r in self.api.get("/apis/kvnet.io/v1").json["resources"]}
        for n in ("ippools", "ipamblocks", "ipamhandles", "ipamconfigs", "l2networks"):
            self.assertIn(n, kv)
            self.assertFalse(kv[n]["namespaced"])
        kubevirt = {r["name"] for r in self.api.get("/apis/kubevirt.io/v1").json["resources"]}
        self.assertTrue({"virtualmachineinstances", "virtualmachines",
                         "virtualmachineinstancemigrations"} <= kubevirt)
        self.assertEqual(self.api.get("/version").json["major"], "1")
        self.assertTrue(re.match(r"^v1\.\d+", self.api.get("/version").json["gitVersion"]))

    def test_openapi_v3_of_custom_resources(self):
        # what kubectl explain reads: the v3 discovery document, then one group version's
        # document with the CRD's schema and a path tagged with the kind
        self.assertNotIn("apis/example.kvnet.io/v1alpha1", self.api.get("/openapi/v3").json["paths"])
        self.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD.CRD)
        paths = self.api.get("/openapi/v3").json["paths"]
        ref = paths["apis/example.kvnet.io/v1alpha1"]["serverRelativeURL"]
        doc = self.api.get(ref).json
        self.assertEqual(doc["openapi"], "3.0.0")
        gvk = {"group": "example.kvnet.io", "version": "v1alpha1", "kind": "Widget"}
        w = doc["components"]["schemas"]["io.kvnet.example.v1alpha1.Widget"]
        self.assertEqual(w["x-kubernetes-group-version-kind"], [gvk])
        self.assertEqual(w["type"], "object")
        self.assertEqual(set(w["properties"]), {"apiVersion", "kind", "metadata"})
        op = doc["paths"]["/apis/example.kvnet.io/v1alpha1/namespaces/{namespace}/widgets"]
        self.assertEqual(op["get"]["x-kubernetes-group-version-kind"], gvk)
        self.assertStatus(self.api.get("/openapi/v3/apis/nosuch.io/v1"), 404, "NotFound")
        self.api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                        "widgets.example.kvnet.io")
        self.assertNotIn("apis/example.kvnet.io/v1alpha1", self.api.get("/openapi/v3").json["paths"])


if __name__ == "__main__":
    kt.main()
