#!/usr/bin/env python3
"""Contract: watch — initial state, resume from a resourceVersion, bookmarks,
timeoutSeconds, 410 Expired after compaction or past the history window, selectors (an
object leaving the selector is DELETED), and chunked framing that does not line up with
events."""

import json
import time

import kt


def take(w, n):
    out = []
    for _ in range(n):
        ev = w.next_event()
        if ev is None:
            break
        out.append(ev)
    return out


def kinds(evs):
    return [(e["type"], e["object"]["metadata"].get("name")) for e in evs]


class Watch(kt.TestCase):
    def tearDown(self):
        self.api.config(bookmarkIntervalSeconds=10, historyWindow=1000, expiredReason="Expired",
                        splitChunks=True)

    def test_from_zero_initial_then_live(self):
        self.create(kt.PODS, kt.pod("a"))
        self.create(kt.PODS, kt.pod("b"))
        with self.api.watch(kt.PODS, resourceVersion="0", timeoutSeconds=5) as w:
            self.assertEqual(w.status, 200)
            self.assertEqual(w.resp.getheader("Transfer-Encoding"), "chunked")
            self.assertEqual(w.resp.getheader("Content-Type"), "application/json")
            first = take(w, 2)
            self.assertEqual(kinds(first), [("ADDED", "a"), ("ADDED", "b")])
            self.assertEqual(first[0]["object"]["kind"], "Pod")  # watch objects carry kind
            c = self.create(kt.PODS, kt.pod("c"))
            c["metadata"]["labels"]["x"] = "1"
            m = self.api.put(kt.PODS + "/c", c).json
            d = self.api.delete(kt.PODS + "/c" + "?gracePeriodSeconds=0").json
            live = take(w, 3)
            self.assertEqual(kinds(live), [("ADDED", "c"), ("MODIFIED", "c"), ("DELETED", "c")])
            self.assertEqual(live[1]["object"]["metadata"]["resourceVersion"],
                             m["metadata"]["resourceVersion"])
            self.assertEqual(live[2]["object"]["metadata"]["resourceVersion"],
                             d["metadata"]["resourceVersion"])
            self.assertGreater(int(d["metadata"]["resourceVersion"]),
                               int(m["metadata"]["resourceVersion"]))

    def test_absent_rv_is_like_zero(self):
        self.create(kt.PODS, kt.pod("a"))
        with self.api.watch(kt.PODS, timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "a")])

    def test_from_resource_version(self):
        self.create(kt.PODS, kt.pod("a"))
        rv = self.api.get(kt.PODS).json["metadata"]["resourceVersion"]
        self.create(kt.PODS, kt.pod("b"))
        self.api.patch(kt.PODS + "/a", {"metadata": {"labels": {"y": "2"}}})
        self.api.delete(kt.PODS + "/b" + "?gracePeriodSeconds=0")
        with self.api.watch(kt.PODS, resourceVersion=rv, timeoutSeconds=5) as w:
            evs = take(w, 3)
            self.assertEqual(kinds(evs), [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")])
            rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
            self.assertEqual(rvs, sorted(rvs))
            self.assertGreater(rvs[0], int(rv))
            self.create(kt.PODS, kt.pod("z"))
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "z")])

    def test_other_resources_do_not_leak(self):
        rv = self.api.get(kt.PODS).json["metadata"]["resourceVersion"]
        self.create(kt.BLOCKS, kt.block("b1"))
        self.create("/api/v1/namespaces", {"metadata": {"name": "other"}})
        self.create("/api/v1/namespaces/other/pods", kt.pod("o", ns="other"))
        self.create(kt.PODS, kt.pod("mine"))
        # events come in resourceVersion order: anything leaked would come before "mine"
        with self.api.watch(kt.PODS, resourceVersion=rv, timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "mine")])
        with self.api.watch("/api/v1/pods", resourceVersion=rv, timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 2)), [("ADDED", "o"), ("ADDED", "mine")])

    def test_timeout_seconds_ends_normally(self):
        with self.api.watch(kt.PODS, resourceVersion="0", timeoutSeconds=1) as w:
            evs = list(w)  # raises IncompleteRead if the stream is not properly terminated
            self.assertEqual(evs, [])
        self.assertEqual(self.api.watches(), 0)

    def test_bookmarks(self):
        self.api.config(bookmarkIntervalSeconds=0.2)
        self.create(kt.BLOCKS, kt.block("b1"))
        with self.api.watch(kt.BLOCKS, resourceVersion="0", allowWatchBookmarks="true",
                            timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "b1")])
            bm = w.next_event()
            self.assertEqual(bm["type"], "BOOKMARK")
            self.assertEqual(bm["object"], {"kind": "IPAMBlock", "apiVersion": "kvnet.io/v1",
                                            "metadata": {"resourceVersion": bm["object"]["metadata"]["resourceVersion"]}})
            last = self.api.get(kt.BLOCKS + "/b1").json["metadata"]["resourceVersion"]
            self.assertGreaterEqual(int(bm["object"]["metadata"]["resourceVersion"]), int(last))
            # a change elsewhere moves the bookmark past it
            n = self.create(kt.PODS, kt.pod("p"))["metadata"]["resourceVersion"]
            while True:
                ev = w.next_event()
                self.assertEqual(ev["type"], "BOOKMARK")
                if int(ev["object"]["metadata"]["resourceVersion"]) >= int(n):
                    break
        with self.api.watch(kt.BLOCKS, resourceVersion="0", timeoutSeconds=1) as w:
            self.assertEqual([e["type"] for e in w], ["ADDED"])  # no bookmarks unless asked

    def test_send_initial_events(self):
        self.create(kt.PODS, kt.pod("a"))
        with self.api.watch(kt.PODS, sendInitialEvents="true", allowWatchBookmarks="true",
                            resourceVersionMatch="NotOlderThan", resourceVersion="",
                            timeoutSeconds=5) as w:
            a, bm = take(w, 2)
            self.assertEqual(a["type"], "ADDED")
            self.assertEqual(bm["type"], "BOOKMARK")
            self.assertEqual(bm["object"]["metadata"]["annotations"],
                             {"k8s.io/initial-events-end": "true"})
        r = self.api.get(kt.PODS + "?watch=1&sendInitialEvents=true")
        self.assertStatus(r, 422, "Invalid")

    def test_410_after_compaction(self):
        rv = self.create(kt.PODS, kt.pod("a"))["metadata"]["resourceVersion"]
        self.create(kt.PODS, kt.pod("b"))
        c = self.api.compact()
        with self.api.watch(kt.PODS, resourceVersion=rv, timeoutSeconds=5) as w:
            self.assertEqual(w.status, 200)  # the error comes in the stream, as the real API
            evs = list(w)
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["type"], "ERROR")
        self.assertEqual(evs[0]["object"], {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: %s (%s)" % (rv, c["compactedResourceVersion"]),
            "reason": "Expired", "code": 410})
        # from the current resourceVersion all is well
        with self.api.watch(kt.PODS, resourceVersion=c["resourceVersion"], timeoutSeconds=5) as w:
            self.create(kt.PODS, kt.pod("c"))
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "c")])

    def test_410_past_history_window(self):
        self.api.config(historyWindow=5)
        rv = self.create(kt.BLOCKS, kt.block("b0"))["metadata"]["resourceVersion"]
        for i in range(1, 4):
            self.create(kt.BLOCKS, kt.block("b%d" % i))
        with self.api.watch(kt.BLOCKS, resourceVersion=rv, timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 3)), [("ADDED", "b1"), ("ADDED", "b2"),
                                                 ("ADDED", "b3")])  # still in the window
        for i in range(4, 10):
            self.create(kt.BLOCKS, kt.block("b%d" % i))
        with self.api.watch(kt.BLOCKS, resourceVersion=rv, timeoutSeconds=5) as w:
            evs = list(w)
        self.assertEqual([e["type"] for e in evs], ["ERROR"])
        self.assertEqual(evs[0]["object"]["code"], 410)

    def test_expired_reason_gone(self):
        self.api.config(expiredReason="Gone")
        rv = self.create(kt.PODS, kt.pod("a"))["metadata"]["resourceVersion"]
        self.create(kt.PODS, kt.pod("b"))
        self.api.compact()
        with self.api.watch(kt.PODS, resourceVersion=rv, timeoutSeconds=5) as w:
            ev = w.next_event()
        self.assertEqual((ev["object"]["reason"], ev["object"]["code"]), ("Gone", 410))

    def test_label_selector_exit_and_entry(self):
        self.create(kt.PODS, kt.pod("a", labels={"app": "web"}))
        self.create(kt.PODS, kt.pod("b", labels={"app": "db"}))
        with self.api.watch(kt.PODS, resourceVersion="0", labelSelector="app=web",
                            timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "a")])
            m = self.api.patch(kt.PODS + "/a", {"metadata": {"labels": {"app": "db"}}}).json
            self.api.patch(kt.PODS + "/b", {"metadata": {"labels": {"x": "1"}}})  # unseen
            self.api.patch(kt.PODS + "/b", {"metadata": {"labels": {"app": "web"}}})
            gone, came = take(w, 2)
            self.assertEqual(gone["type"], "DELETED")
            self.assertEqual(gone["object"]["metadata"]["name"], "a")
            # previous content (still matching), resourceVersion of the change
            self.assertEqual(gone["object"]["metadata"]["labels"], {"app": "web"})
            self.assertEqual(gone["object"]["metadata"]["resourceVersion"],
                             m["metadata"]["resourceVersion"])
            self.assertEqual(kinds([came]), [("ADDED", "b")])
            self.assertEqual(came["object"]["metadata"]["labels"], {"app": "web", "x": "1"})

    def test_field_selector_watch(self):
        with self.api.watch("/api/v1/pods", resourceVersion="0",
                            fieldSelector="spec.nodeName=node-b", timeoutSeconds=5) as w:
            self.create(kt.PODS, kt.pod("on-a", node="node-a"))
            self.create(kt.PODS, kt.pod("on-b", node="node-b"))
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "on-b")])
            p = self.api.get(kt.PODS + "/on-b").json
            self.api.put(kt.PODS + "/on-b/status", dict(p, status={"phase": "Running"}))
            ev = w.next_event()
            self.assertEqual(ev["type"], "MODIFIED")
            self.assertEqual(ev["object"]["status"]["phase"], "Running")

    def test_watch_named_object(self):
        self.create(kt.PODS, kt.pod("a"))
        self.create(kt.PODS, kt.pod("b"))
        with self.api.watch(kt.PODS, resourceVersion="0", timeoutSeconds=5,
                            fieldSelector="metadata.name=b") as w:
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "b")])
        with self.api.watch(kt.PODS + "/b", resourceVersion="0", timeoutSeconds=5) as w:
            self.api.delete(kt.PODS + "/a" + "?gracePeriodSeconds=0")
            self.api.patch(kt.PODS + "/b", {"metadata": {"labels": {"m": "1"}}})
            self.assertEqual(kinds(take(w, 2)), [("ADDED", "b"), ("MODIFIED", "b")])
        with self.api.watch("/api/v1/watch/namespaces/default/pods/b", watch="0",
                            resourceVersion="0", timeoutSeconds=5) as w:
            self.assertEqual(kinds(take(w, 1)), [("ADDED", "b")])

    def test_finalizer_deletion_events(self):
        b = kt.block("b1")
        b["metadata"]["finalizers"] = ["kvnet.io/x"]
        rv = self.create(kt.BLOCKS, b)["metadata"]["resourceVersion"]
        with self.api.watch(kt.BLOCKS, resourceVersion=rv, timeoutSeconds=5) as w:
            self.api.delete(kt.BLOCKS + "/b1")
            self.api.patch(kt.BLOCKS + "/b1", {"metadata": {"finalizers": None}})
            m, d = take(w, 2)
            self.assertEqual(m["type"], "MODIFIED")
            self.assertIn("deletionTimestamp", m["object"]["metadata"])
            self.assertEqual(d["type"], "DELETED")
            self.assertNotIn("finalizers", d["object"]["metadata"])

    def test_resume_after_drop_has_no_gap(self):
        """What an informer does: remember the last rv, re-watch from it after the stream is
        cut, and see exactly the events it missed."""
        import http.client
        self.create(kt.PODS, kt.pod("a"))
        w = self.api.watch(kt.PODS, resourceVersion="0")
        last = take(w, 1)[0]["object"]["metadata"]["resourceVersion"]
        for _ in range(200):
            if self.api.watches() == 1:
                break
            time.sleep(0.01)
        self.api.drop_watches()
        with self.assertRaises(http.client.IncompleteRead):
            list(w)
        w.close()
        self.create(kt.PODS, kt.pod("b"))
        self.api.delete(kt.PODS + "/a" + "?gracePeriodSeconds=0")
        with self.api.watch(kt.PODS, resourceVersion=last, timeoutSeconds=5) as w2:
            self.assertEqual(kinds(take(w2, 2)), [("ADDED", "b"), ("DELETED", "a")])

    def test_bad_resource_version_is_400(self):
        self.assertStatus(self.api.get(kt.PODS + "?watch=1&resourceVersion=abc"), 400, "BadRequest")


class Chunks(kt.TestCase):
    def raw_watch(self, path, events):
        """The chunk payloads of a watch, read off the wire until `events` lines came."""
        s = self.api.raw_socket()
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Connection: close\r\n\r\n" % (path, self.api.token)).encode())
        data, chunks = b"", []
        head = None
        while sum(c.count(b"\n") for c in chunks) < events:
            b = s.recv(65536)
            self.assertTrue(b, "stream ended early")
            data += b
            if head is None:
                if b"\r\n\r\n" not in data:
                    continue
                head, _, data = data.partition(b"\r\n\r\n")
                self.assertIn(b"transfer-encoding: chunked", head.lower())
            while b"\r\n" in data:
                line, _, rest = data.partition(b"\r\n")
                n = int(line, 16)
                if len(rest) < n + 2:
                    break
                self.assertEqual(rest[n:n + 2], b"\r\n")
                chunks.append(rest[:n])
                data = rest[n + 2:]
        s.close()
        return chunks

    def test_chunks_do_not_line_up_with_events(self):
        for i in range(40):
            self.create(kt.BLOCKS, kt.block("b%02d" % i))
        chunks = self.raw_watch(kt.BLOCKS + "?watch=1&resourceVersion=0&timeoutSeconds=10", 40)
        stream = b"".join(chunks)
        lines = stream.split(b"\n")
        self.assertEqual(lines[-1], b"")
        evs = [json.loads(x) for x in lines[:-1]]
        self.assertEqual([e["object"]["metadata"]["name"] for e in evs],
                         ["b%02d" % i for i in range(40)])
        mid_event = sum(1 for c in chunks if not c.endswith(b"\n"))
        multi = sum(1 for c in chunks if c.count(b"\n") > 1)
        self.assertGreater(mid_event, 0, "some chunk must end inside an event")
        self.assertGreater(multi, 0, "some chunk must hold more than one event")

    def test_split_can_be_turned_off(self):
        self.api.config(splitChunks=False)
        try:
            for i in range(10):
                self.create(kt.BLOCKS, kt.block("b%02d" % i))
            chunks = self.raw_watch(kt.BLOCKS + "?watch=1&resourceVersion=0&timeoutSeconds=10", 10)
            self.assertTrue(all(c.endswith(b"\n") for c in chunks))
        finally:
            self.api.config(splitChunks=True)


if __name__ == "__main__":
    kt.main()
