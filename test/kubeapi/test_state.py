#!/usr/bin/env python3
"""Contract: --state keeps the data across a server restart, like etcd behind a restarted
kube-apiserver (objects, uids and the resourceVersion counter survive; watches from
before the restart get 410 Expired, since the watch cache is rebuilt)."""

import os
import shutil
import tempfile
import unittest

import kt  # noqa: F401  (sets sys.path)
import client
import tap


class State(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kvt-kubeapi-state-")
        self.state = os.path.join(self.dir, "state.json")
        self.api = client.KubeAPI(workdir=self.dir, args=["--state", self.state])

    def tearDown(self):
        self.api.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self):
        port = self.api.port
        self.api.proc.terminate()
        self.api.proc.wait(10)
        self.api.proc = None
        self.api.listen = "127.0.0.1:%d" % port
        self.api.start()

    def test_objects_and_versions_survive_a_restart(self):
        st, p = self.api.post("/api/v1/namespaces/default/pods", kt.pod("keep"))
        self.assertEqual(st, 201)
        rv = int(p["metadata"]["resourceVersion"])
        self.restart()
        st, got = self.api.get("/api/v1/namespaces/default/pods/keep")
        self.assertEqual(st, 200)
        self.assertEqual(got["metadata"]["uid"], p["metadata"]["uid"])
        self.assertEqual(got["metadata"]["resourceVersion"], str(rv))
        st, p2 = self.api.post("/api/v1/namespaces/default/pods", kt.pod("next"))
        self.assertGreater(int(p2["metadata"]["resourceVersion"]), rv)

    def test_watch_from_before_the_restart_is_410(self):
        st, p = self.api.post("/api/v1/namespaces/default/pods", kt.pod("w"))
        rv = p["metadata"]["resourceVersion"]
        self.api.post("/api/v1/namespaces/default/pods", kt.pod("w2"))
        self.restart()
        ev = self.api.watch("/api/v1/namespaces/default/pods", resourceVersion=rv,
                            timeoutSeconds="2").next_event()
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual(ev["object"]["code"], 410)

    def test_a_killed_server_loses_nothing_committed(self):
        self.api.post("/api/v1/namespaces/default/pods", kt.pod("k"))
        port = self.api.port
        self.api.proc.kill()
        self.api.proc.wait(10)
        self.api.proc = None
        os.unlink(os.path.join(self.dir, "ready.json"))
        self.api.listen = "127.0.0.1:%d" % port
        self.api.start()
        st, _ = self.api.get("/api/v1/namespaces/default/pods/k")
        self.assertEqual(st, 200)


if __name__ == "__main__":
    tap.main()
