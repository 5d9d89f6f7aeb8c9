#!/usr/bin/env python3
"""Contract: label and field selectors, lists across namespaces, pagination with
limit/continue on a consistent snapshot, resourceVersion semantics of LIST."""

import urllib.parse

import kt

import labelsel


def names(lst):
    return [i["metadata"]["name"] for i in lst["items"]]


class Selectors(kt.TestCase):
    def setUp(self):
        super().setUp()
        self.create("/api/v1/namespaces", {"metadata": {"name": "other"}})
        objs = [("p-web", "default", {"app": "web", "tier": "front"}, "node-a"),
                ("p-db", "default", {"app": "db", "tier": "back"}, "node-b"),
                ("p-none", "default", {}, "node-a"),
                ("p-web2", "other", {"app": "web", "env": "prod"}, "node-b"),
                ("p-n", "other", {"app": "cache", "n": "10"}, "node-a")]
        for n, ns, labels, node in objs:
            self.create("/api/v1/namespaces/%s/pods" % ns, kt.pod(n, ns=ns, labels=labels, node=node))

    def sel(self, path, label=None, field=None):
        q = {}
        if label is not None:
            q["labelSelector"] = label
        if field is not None:
            q["fieldSelector"] = field
        r = self.api.get(path + "?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 200, r.raw)
        return sorted(names(r.json))

    def test_label_operators(self):
        all_pods = "/api/v1/pods"
        self.assertEqual(self.sel(all_pods, "app=web"), ["p-web", "p-web2"])
        self.assertEqual(self.sel(all_pods, "app==web"), ["p-web", "p-web2"])
        self.assertEqual(self.sel(all_pods, "app!=web"), ["p-db", "p-n", "p-none"])
        self.assertEqual(self.sel(all_pods, "app in (web, db)"), ["p-db", "p-web", "p-web2"])
        self.assertEqual(self.sel(all_pods, "app notin (web,db)"), ["p-n", "p-none"])
        self.assertEqual(self.sel(all_pods, "tier"), ["p-db", "p-web"])
        self.assertEqual(self.sel(all_pods, "!tier"), ["p-n", "p-none", "p-web2"])
        self.assertEqual(self.sel(all_pods, "app=web,env=prod"), ["p-web2"])
        self.assertEqual(self.sel(all_pods, "app in (web,cache),!env"), ["p-n", "p-web"])
        self.assertEqual(self.sel(all_pods, "n>5"), ["p-n"])
        self.assertEqual(self.sel(all_pods, "n<5"), [])
        self.assertEqual(self.sel(all_pods, ""), ["p-db", "p-n", "p-none", "p-web", "p-web2"])

    def test_bad_label_selector_is_400(self):
        for bad in ("app=(", "a b", "app in (x", "=x", "app=web,", "Bad Key=1", "n>x"):
            r = self.api.get("/api/v1/pods?" + urllib.parse.urlencode({"labelSelector": bad}))
            self.assertStatus(r, 400, "BadRequest")

    def test_label_parser_units(self):
        self.assertEqual(labelsel.parse_labels("kubevirt.io/migrationJobUID"),
                         [("kubevirt.io/migrationJobUID", "exists", None)])
        reqs = labelsel.parse_labels("vmi.kubevirt.io/id=vm-a,!kubevirt.io/migrationJobUID")
        self.assertTrue(labelsel.match_labels(reqs, {"vmi.kubevirt.io/id": "vm-a"}))
        self.assertFalse(labelsel.match_labels(reqs, {"vmi.kubevirt.io/id": "vm-a",
                                                      "kubevirt.io/migrationJobUID": "u"}))

    def test_field_selectors(self):
        self.assertEqual(self.sel("/api/v1/pods", field="spec.nodeName=node-a"),
                         ["p-n", "p-none", "p-web"])
        self.assertEqual(self.sel("/api/v1/pods", field="spec.nodeName!=node-a"),
                         ["p-db", "p-web2"])
        self.assertEqual(self.sel("/api/v1/pods", field="metadata.namespace=other"),
                         ["p-n", "p-web2"])
        self.assertEqual(self.sel("/api/v1/pods", field="metadata.name=p-db"), ["p-db"])
        self.assertEqual(self.sel("/api/v1/pods", "app=web", "spec.nodeName=node-b"), ["p-web2"])
        self.api.put("/api/v1/namespaces/default/pods/p-db/status",
                     dict(self.api.get(kt.PODS + "/p-db").json, status={"phase": "Running"}))
        self.assertEqual(self.sel("/api/v1/pods", field="status.phase=Running"), ["p-db"])
        self.assertEqual(self.sel("/api/v1/pods", field="status.phase==Pending,metadata.namespace=default"),
                         ["p-none", "p-web"])

    def test_unsupported_field_is_400(self):
        r = self.api.get("/api/v1/pods?fieldSelector=spec.hostname%3Dx")
        s = self.assertStatus(r, 400, "BadRequest")
        self.assertIn("field label not supported: spec.hostname", s["message"])
        r = self.api.get(kt.BLOCKS + "?fieldSelector=spec.nodeName%3Dx")
        self.assertStatus(r, 400, "BadRequest")
        self.assertEqual(self.api.get(kt.BLOCKS + "?fieldSelector=metadata.name%3Dx").status, 200)

    def test_namespace_scoping(self):
        self.assertEqual(self.sel("/api/v1/namespaces/other/pods"), ["p-n", "p-web2"])
        lst = self.api.get("/api/v1/pods").json
        self.assertEqual(lst["kind"], "PodList")
        self.assertEqual(lst["apiVersion"], "v1")
        self.assertEqual(len(lst["items"]), 5)
        for item in lst["items"]:
            # built-in kinds: list items carry no kind/apiVersion (as the real API)
            self.assertNotIn("kind", item)
            self.assertNotIn("apiVersion", item)
        self.assertEqual(self.sel("/api/v1/namespaces/empty/pods"), [])


class Compression(kt.TestCase):
    def test_large_lists_are_gzipped_when_accepted(self):
        import gzip
        import json
        objs = [kt.block("b%04d" % i, cidr="198.18.%d.%d/30" % (i // 64, (i % 64) * 4),
                         note="x" * 200) for i in range(600)]
        self.api.load(objs)
        r = self.api.get(kt.BLOCKS, headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
        lst = json.loads(gzip.decompress(r.raw))
        self.assertEqual(len(lst["items"]), 600)
        plain = self.api.get(kt.BLOCKS)  # no Accept-Encoding: never compressed
        self.assertNotIn("Content-Encoding", plain.headers)
        self.assertEqual(plain.json, lst)
        small = self.api.get(kt.BLOCKS + "/b0001", headers={"Accept-Encoding": "gzip"})
        self.assertNotIn("Content-Encoding", small.headers)  # below the threshold


class Pagination(kt.TestCase):
    def setUp(self):
        super().setUp()
        for i in range(7):
            self.create(kt.BLOCKS, kt.block("b%02d" % i))

    def page(self, limit, cont=None, extra=""):
        q = "?limit=%d" % limit + ("&continue=" + urllib.parse.quote(cont) if cont else "") + extra
        r = self.api.get(kt.BLOCKS + q)
        return r

    def test_pages_are_a_consistent_snapshot(self):
        r = self.page(3)
        self.assertEqual(r.status, 200)
        first = r.json
        self.assertEqual(names(first), ["b00", "b01", "b02"])
        self.assertEqual(first["metadata"]["remainingItemCount"], 4)
        rv = first["metadata"]["resourceVersion"]
        cont = first["metadata"]["continue"]
        # changes after the first page are not seen by later pages
        self.create(kt.BLOCKS, kt.block("b035"))
        self.api.delete(kt.BLOCKS + "/b04")
        o = self.api.get(kt.BLOCKS + "/b05").json
        o["spec"]["cidr"] = "198.18.99.0/26"
        self.api.put(kt.BLOCKS + "/b05", o)
        second = self.page(3, cont).json
        self.assertEqual(names(second), ["b03", "b04", "b05"])
        self.assertEqual(second["items"][2]["spec"]["cidr"], "198.18.4.0/26")
        self.assertEqual(second["metadata"]["resourceVersion"], rv)
        third = self.page(3, second["metadata"]["continue"]).json
        self.assertEqual(names(third), ["b06"])
        self.assertNotIn("continue", third["metadata"])
        # a fresh list sees the new state
        self.assertEqual(names(self.api.get(kt.BLOCKS).json),
                         ["b00", "b01", "b02", "b03", "b035", "b05", "b06"])

    def test_pages_across_namespaces_in_storage_order(self):
        for ns in ("a", "a-b", "a.c"):
            self.create("/api/v1/namespaces", {"metadata": {"name": ns.replace(".", "x")}})
        for ns, n in (("a", "z"), ("a-b", "x"), ("axc", "m"), ("a", "b")):
            self.create("/api/v1/namespaces/%s/pods" % ns, kt.pod(n, ns=ns))
        got, cont = [], None
        for _ in range(10):
            q = "?limit=1" + ("&continue=" + urllib.parse.quote(cont) if cont else "")
            r = self.api.get("/api/v1/pods" + q).json
            got += ["%s/%s" % (i["metadata"]["namespace"], i["metadata"]["name"]) for i in r["items"]]
            cont = r["metadata"].get("continue")
            if not cont:
                break
        # etcd key order: "a-b/x" < "a/b" < "a/z" < "axc/m" ('-' sorts before '/')
        self.assertEqual(got, ["a-b/x", "a/b", "a/z", "axc/m"])
        whole = self.api.get("/api/v1/pods").json
        self.assertEqual(["%s/%s" % (i["metadata"]["namespace"], i["metadata"]["name"])
                          for i in whole["items"]], got)

    def test_exact_page_end_has_no_continue(self):
        lst = self.page(7).json
        self.assertEqual(len(lst["items"]), 7)
        self.assertNotIn("continue", lst["metadata"])

    def test_continue_after_compaction_is_410(self):
        first = self.page(2).json
        self.create(kt.BLOCKS, kt.block("zz"))
        self.api.compact()
        r = self.page(2, first["metadata"]["continue"])
        s = self.assertStatus(r, 410, "Expired")
        self.assertIn("continue parameter is too old", s["message"])

    def test_continue_still_fine_without_changes(self):
        first = self.page(2).json
        self.api.compact()  # nothing happened after the list: its rv is still servable
        self.assertEqual(names(self.page(2, first["metadata"]["continue"]).json), ["b02", "b03"])

    def test_bad_continue_and_limit(self):
        self.assertStatus(self.page(2, "garbage!!"), 400, "BadRequest")
        self.assertStatus(self.api.get(kt.BLOCKS + "?limit=x"), 400, "BadRequest")
        first = self.page(2).json
        r = self.api.get(kt.BLOCKS + "?limit=2&resourceVersion=5&continue="
                         + urllib.parse.quote(first["metadata"]["continue"]))
        self.assertStatus(r, 400, "BadRequest")

    def test_pagination_with_selector(self):
        for i in range(5):
            o = self.api.get(kt.BLOCKS + "/b%02d" % i).json
            o["metadata"]["labels"] = {"even": str(i % 2 == 0).lower()}
            self.api.put(kt.BLOCKS + "/b%02d" % i, o)
        got, cont = [], None
        for _ in range(5):
            r = self.page(1, cont, "&labelSelector=even%3Dtrue").json
            got += names(r)
            self.assertNotIn("remainingItemCount", r["metadata"])
            cont = r["metadata"].get("continue")
            if not cont:
                break
        self.assertEqual(got, ["b00", "b02", "b04"])

    def test_list_exact_resource_version(self):
        rv = self.api.get(kt.BLOCKS).json["metadata"]["resourceVersion"]
        self.api.delete(kt.BLOCKS + "/b00")
        self.assertEqual(len(self.api.get(kt.BLOCKS).json["items"]), 6)
        old = self.api.get(kt.BLOCKS + "?resourceVersion=%s&resourceVersionMatch=Exact" % rv).json
        self.assertEqual(len(old["items"]), 7)
        self.assertEqual(old["metadata"]["resourceVersion"], rv)
        # NotOlderThan / legacy rv: the current state
        now = self.api.get(kt.BLOCKS + "?resourceVersion=%s" % rv).json
        self.assertEqual(len(now["items"]), 6)
        self.api.compact()
        r = self.api.get(kt.BLOCKS + "?resourceVersion=%s&resourceVersionMatch=Exact" % rv)
        self.assertStatus(r, 410, "Expired")
        self.assertEqual(self.api.get(kt.BLOCKS + "?resourceVersion=0").status, 200)


if __name__ == "__main__":
    kt.main()
