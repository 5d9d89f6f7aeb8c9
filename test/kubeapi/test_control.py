#!/usr/bin/env python3
"""Contract: the /_test control API — fault injection (errors, 429 + Retry-After, stalls,
truncated bodies, dropped watches), request counters, fixtures, reset."""

import glob
import http.client
import json
import os
import threading
import time

import kt


class Faults(kt.TestCase):
    def test_error_500_next_n_matching(self):
        self.create(kt.PODS, kt.pod("a"))
        self.api.fault(action="error", code=500, count=2, path="/pods/a$")
        for _ in range(2):
            s = self.assertStatus(self.api.get(kt.PODS + "/a"), 500, "InternalError")
            self.assertTrue(s["message"].startswith("Internal error occurred: "))
        self.assertEqual(self.api.get(kt.PODS + "/a").status, 200)
        self.assertEqual(self.api._ctl("GET", "faults")["faults"], [])

    def test_error_only_on_matching_path_and_method(self):
        self.api.fault(action="error", code=500, count=1, path="ipamblocks", method="POST")
        self.assertEqual(self.api.get(kt.BLOCKS).status, 200)  # GET: not matched
        self.assertEqual(self.api.post(kt.PODS, kt.pod("a")).status, 201)  # other path
        self.assertStatus(self.api.post(kt.BLOCKS, kt.block("b")), 500, "InternalError")
        self.assertEqual(self.api.post(kt.BLOCKS, kt.block("b")).status, 201)

    def test_429_with_retry_after(self):
        self.api.fault(action="error", code=429, count=1, retryAfter=3)
        r = self.api.get(kt.PODS)
        s = self.assertStatus(r, 429, "TooManyRequests")
        self.assertEqual(r.headers.get("Retry-After"), "3")
        self.assertEqual(s["details"]["retryAfterSeconds"], 3)
        self.assertEqual(self.api.get(kt.PODS).status, 200)

    def test_unlimited_until_cleared(self):
        self.api.fault(action="error", code=503, count=0, path="nodes")
        for _ in range(3):
            self.assertStatus(self.api.get("/api/v1/nodes"), 503, "ServiceUnavailable")
        self.api.clear_faults()
        self.assertEqual(self.api.get("/api/v1/nodes").status, 200)

    def test_stall(self):
        # The stalled LIST is counted on arrival, then held: an object created while it
        # waits shows up in its answer although the LIST was sent first.
        self.api.fault(action="stall", ms=1500, count=1, path="/pods$", method="GET")
        self.api.counters(reset=True)
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", self.api.get(kt.PODS)))
        t.start()
        for _ in range(500):
            if self.api.counters()["paths"].get("GET " + kt.PODS):
                break
            time.sleep(0.01)
        self.create(kt.PODS, kt.pod("late"))
        t.join(30)
        self.assertEqual([i["metadata"]["name"] for i in out["r"].json["items"]], ["late"])

    def test_truncated_json_body(self):
        self.create(kt.PODS, kt.pod("a"))
        self.api.fault(action="truncate", count=1, path="/pods/a")
        r = self.api.get(kt.PODS + "/a")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.json)
        self.assertEqual(int(r.headers["Content-Length"]), len(r.raw))
        with self.assertRaises(ValueError):
            json.loads(r.raw)
        self.assertTrue(r.raw.startswith(b'{"kind":"Pod"'))
        self.assertEqual(self.api.get(kt.PODS + "/a").json["metadata"]["name"], "a")

    def test_truncated_connection(self):
        self.create(kt.PODS, kt.pod("a"))
        self.api.fault(action="truncate", mode="close", count=1, path="/pods/a")
        with self.assertRaises(http.client.IncompleteRead):
            self.api.get(kt.PODS + "/a")
        self.assertEqual(self.api.get(kt.PODS + "/a").status, 200)

    def test_reset_without_answer(self):
        self.api.fault(action="truncate", mode="reset", count=1, path="/pods", method="POST")
        with self.assertRaises(http.client.RemoteDisconnected):
            self.api.post(kt.PODS, kt.pod("a"))
        # the request was handled before the answer was lost, as when a server dies late
        self.assertEqual(self.api.get(kt.PODS + "/a").status, 200)

    def test_drop_before_handling(self):
        self.api.fault(action="drop", count=1, path="/pods", method="POST")
        with self.assertRaises(http.client.RemoteDisconnected):
            self.api.post(kt.PODS, kt.pod("a"))
        self.assertStatus(self.api.get(kt.PODS + "/a"), 404, "NotFound")  # never applied
        self.assertEqual(self.api.post(kt.PODS, kt.pod("a")).status, 201)

    def test_drop_all_current_watches(self):
        ws = [self.api.watch(kt.PODS, resourceVersion="0") for _ in range(2)]
        for _ in range(200):
            if self.api.watches() == 2:
                break
            time.sleep(0.01)
        self.assertEqual(self.api.drop_watches(), 2)
        for w in ws:
            with self.assertRaises((http.client.IncompleteRead, http.client.HTTPException,
                                    ConnectionError)):
                list(w)
            w.close()
        self.assertEqual(self.api.watches(), 0)

    def test_drop_watches_gracefully(self):
        w = self.api.watch(kt.PODS, resourceVersion="0")
        for _ in range(200):
            if self.api.watches() == 1:
                break
            time.sleep(0.01)
        self.assertEqual(self.api.drop_watches(mode="graceful"), 1)
        self.assertEqual(list(w), [])  # ends like a server-side timeout
        w.close()

    def test_drop_next_watch_after_events(self):
        for n in ("a", "b", "c"):
            self.create(kt.PODS, kt.pod(n))
        self.api.fault(action="drop-watch", count=1, afterEvents=2, path="/pods")
        w = self.api.watch(kt.PODS, resourceVersion="0")
        got = []
        with self.assertRaises((http.client.IncompleteRead, http.client.HTTPException,
                                ConnectionError)):
            for ev in w:
                got.append(ev["object"]["metadata"]["name"])
        w.close()
        self.assertEqual(got, ["a", "b"])
        with self.api.watch(kt.PODS, resourceVersion="0", timeoutSeconds=5) as w2:
            # only the next watch was dropped: this one gets all three and goes on
            self.assertEqual([w2.next_event()["object"]["metadata"]["name"] for _ in range(3)],
                             ["a", "b", "c"])
            self.create(kt.PODS, kt.pod("d"))
            self.assertEqual(w2.next_event()["object"]["metadata"]["name"], "d")

    def test_bad_fault_is_400(self):
        r = self.api.post("/_test/faults", {"action": "explode"})
        self.assertStatus(r, 400, "BadRequest")


class Counters(kt.TestCase):
    def test_counts_per_path_and_verb(self):
        self.api.counters(reset=True)
        self.create(kt.PODS, kt.pod("x"))
        self.api.get(kt.PODS + "/x")
        self.api.get(kt.PODS + "/x")
        self.api.get("/api/v1/pods?labelSelector=a")
        self.api.patch(kt.PODS + "/x", {"metadata": {"labels": {"a": "b"}}})
        self.api.get(kt.PODS + "/x", token="wrong")  # counted: it reached the server
        with self.api.watch(kt.PODS, resourceVersion="0", timeoutSeconds=5) as w:
            self.assertEqual(w.next_event()["type"], "ADDED")
        c = self.api.counters(reset=True)
        self.assertEqual(c["paths"], {"POST " + kt.PODS: 1, "GET " + kt.PODS + "/x": 3,
                                      "GET /api/v1/pods": 1, "PATCH " + kt.PODS + "/x": 1,
                                      "GET " + kt.PODS: 1})
        self.assertEqual(c["verbs"], {"create": 1, "get": 3, "list": 1, "patch": 1, "watch": 1})
        self.assertEqual(c["total"], 7)
        self.assertEqual(self.api.counters(), {"paths": {}, "verbs": {}, "total": 0})

    def test_control_requests_are_not_counted(self):
        self.api.counters(reset=True)
        self.api.state()
        self.api.watches()
        self.assertEqual(self.api.counters()["total"], 0)


class Fixtures(kt.TestCase):
    def test_load_shared_fixtures(self):
        d = kt.fixtures_dir()
        if d is None:
            self.skipTest("shared/fixtures not found")
        files = sorted(glob.glob(os.path.join(d, "*.json")))
        self.assertTrue(files)
        out = self.api.load_files(files)
        self.assertEqual(len(out["items"]), len(files))
        src = self.api.get(kt.PODS + "/virt-launcher-vm-a-5cd9t").json
        vmi = self.api.get(kt.VMIS + "/vm-a").json
        with open(os.path.join(d, "vm-a.source-pod.json")) as f:
            orig = json.load(f)
        self.assertEqual(src["metadata"]["uid"], orig["metadata"]["uid"])
        self.assertEqual(src["status"], orig["status"])  # status kept as given
        self.assertNotEqual(src["metadata"]["resourceVersion"], orig["metadata"]["resourceVersion"])
        self.assertEqual(src["metadata"]["ownerReferences"][0]["uid"], vmi["metadata"]["uid"])
        vmim = self.api.get("/apis/kubevirt.io/v1/namespaces/default/"
                            "virtualmachineinstancemigrations").json["items"][0]
        self.assertEqual(vmim["metadata"]["finalizers"], ["kubevirt.io/migrationJobFinalize"])
        tgt = self.api.get("/api/v1/pods?labelSelector=kubevirt.io%2FmigrationJobUID").json
        self.assertEqual(len(tgt["items"]), 1)
        # loading again conflicts unless replace is asked for
        r = self.api.post("/_test/load", {"items": [orig]})
        self.assertStatus(r, 409, "AlreadyExists")
        self.assertEqual(len(self.api.load([orig], replace=True)["items"]), 1)

    def test_load_creates_namespace(self):
        p = kt.pod("x", ns="lab-ns")
        self.api.load([p])
        self.assertEqual(self.api.get("/api/v1/namespaces/lab-ns").status, 200)
        self.assertEqual(self.api.get("/api/v1/namespaces/lab-ns/pods/x").status, 200)

    def test_load_rejects_unknown_kind(self):
        r = self.api.post("/_test/load", [{"apiVersion": "v9", "kind": "Nope",
                                           "metadata": {"name": "x"}}])
        self.assertStatus(r, 400, "BadRequest")

    def test_reset(self):
        self.create(kt.PODS, kt.pod("a"))
        rv = int(self.api.get(kt.PODS).json["metadata"]["resourceVersion"])
        w = self.api.watch(kt.PODS, resourceVersion="0")
        self.api.reset()
        with self.assertRaises((http.client.IncompleteRead, http.client.HTTPException,
                                ConnectionError)):
            list(w)
        w.close()
        lst = self.api.get(kt.PODS).json
        self.assertEqual(lst["items"], [])
        self.assertGreater(int(lst["metadata"]["resourceVersion"]), rv)  # never goes back
        self.assertEqual(self.api.get("/api/v1/namespaces/default").status, 200)


if __name__ == "__main__":
    kt.main()
