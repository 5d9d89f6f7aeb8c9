#!/usr/bin/env python3
"""Integration tests of kvnet's Kubernetes client (kube/client, kube/informer) against the
test API server over TLS, driven through build/tools/kube-probe.

Every operation, and the faults a real API server produces: restart mid-watch, 410 relist,
a token rotated on disk, a wrong CA, a 409 on a stale update, malformed and truncated
answers, 5xx/429, the server going away and coming back.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "kubeapi"))
sys.dont_write_bytecode = True

import client  # noqa: E402
import tap  # noqa: E402

PROBE = os.path.join(ROOT, "build", "tools", "kube-probe")
NS = "vms"
PODS = "/api/v1/namespaces/%s/pods" % NS


def pod(name, labels=None, node="node-a"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": dict(labels or {})},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}


def make_ns(api):
    r = api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": NS}})
    assert r.status in (201, 409), r.raw


class Probe:
    """Runs kube-probe against one KubeAPI with a token (or a client certificate)."""

    def __init__(self, api, tmp):
        self.api = api
        self.tmp = tmp
        self.token_file = os.path.join(tmp, "token")
        self.set_token(api.token)

    def set_token(self, tok):
        with open(self.token_file + ".new", "w") as f:
            f.write(tok + "\n")
        os.replace(self.token_file + ".new", self.token_file)

    def args(self, ca=None, cert=None, token=True, server=None, server_name=None):
        a = [PROBE, "--server", server or self.api.url, "--ca", ca or self.api.pki["ca_cert"],
             "--timeout-ms", "3000"]
        if server_name:
            a += ["--server-name", server_name]
        if token:
            a += ["--token-file", self.token_file]
        if cert:
            a += ["--cert", cert[0], "--key", cert[1]]
        return a

    def run(self, *cmd, stdin=None, **kw):
        p = subprocess.run(self.args(**kw) + list(cmd), input=stdin, capture_output=True,
                           text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *cmd, stdin=None, **kw):
        rc, out, err = self.run(*cmd, stdin=stdin, **kw)
        if rc != 0:
            raise AssertionError("kube-probe %s: rc=%d\n%s%s" % (" ".join(cmd), rc, out, err))
        return out, err

    def spawn(self, *cmd, **kw):
        return Informer(subprocess.Popen(self.args(**kw) + list(cmd), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True))


class Informer:
    """A running `kube-probe inform`: lines are collected by a thread."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.cv = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def wait(self, pred, timeout=15, what="line"):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for i, l in enumerate(self.lines):
                    if pred(l):
                        return l
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %ss; got:\n%s"
                                         % (what, timeout, "\n".join(self.lines)))
                self.cv.wait(left)

    def count(self, prefix):
        with self.cv:
            return sum(1 for l in self.lines if l.startswith(prefix))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.t.join(5)
        return self.lines


class ClientOps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kvt-kubeclient-")
        cls.api = client.KubeAPI(args=["--seed", "3", "--bookmark-interval", "0.5",
                                       "--immediate-pod-deletion"])
        cls.p = Probe(cls.api, cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.api.stop()
        subprocess.run(["rm", "-rf", cls.tmp])

    def setUp(self):
        self.api.reset()
        self.api.clear_faults()
        make_ns(self.api)
        self.p.set_token(self.api.token)

    def write(self, name, obj):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def test_crud_over_tls(self):
        out, _ = self.p.ok("create", "pods", NS, self.write("p.json", pod("a", {"app": "web"})))
        created = json.loads(out)
        self.assertEqual(created["metadata"]["name"], "a")
        out, _ = self.p.ok("get", "pods", NS, "a")
        got = json.loads(out)
        self.assertEqual(got["metadata"]["uid"], created["metadata"]["uid"])
        # update with the current resourceVersion: compare-and-swap succeeds
        got["metadata"]["labels"]["tier"] = "1"
        out, _ = self.p.ok("update", "pods", NS, "a", self.write("u.json", got))
        upd = json.loads(out)
        self.assertEqual(upd["metadata"]["labels"]["tier"], "1")
        self.assertNotEqual(upd["metadata"]["resourceVersion"], got["metadata"]["resourceVersion"])
        # merge patch and json patch
        out, _ = self.p.ok("patch", "pods", NS, "a", "merge",
                           self.write("m.json", {"metadata": {"labels": {"m": "x"}}}))
        self.assertEqual(json.loads(out)["metadata"]["labels"]["m"], "x")
        out, _ = self.p.ok("patch", "pods", NS, "a", "json", self.write(
            "j.json", [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]))
        self.assertEqual(json.loads(out)["metadata"]["annotations"], {"k": "v"})
        # status subresource changes only status
        cur = json.loads(self.p.ok("get", "pods", NS, "a")[0])
        cur["status"] = {"phase": "Running"}
        cur["metadata"]["labels"]["ignored"] = "1"
        out, _ = self.p.ok("update", "pods", NS, "a", self.write("s.json", cur), "status")
        st = json.loads(out)
        self.assertEqual(st["status"]["phase"], "Running")
        self.assertNotIn("ignored", st["metadata"]["labels"])
        # delete, then get: 404 NotFound
        self.p.ok("delete", "pods", NS, "a")
        rc, out, _ = self.p.run("get", "pods", NS, "a")
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=ENOENT status=404 reason=NotFound", out)
        self.assertIn('pods \\"a\\" not found', out.replace('"a"', '\\"a\\"'))

    def test_conflict_on_stale_update_is_returned(self):
        self.p.ok("create", "pods", NS, self.write("p.json", pod("b")))
        stale = json.loads(self.p.ok("get", "pods", NS, "b")[0])
        self.p.ok("patch", "pods", NS, "b", "merge",
                  self.write("m.json", {"metadata": {"labels": {"x": "1"}}}))
        self.api.counters(reset=True)
        stale["metadata"]["labels"]["y"] = "2"
        rc, out, _ = self.p.run("update", "pods", NS, "b", self.write("u.json", stale))
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=ESTALE status=409 reason=Conflict", out)
        self.assertIn("the object has been modified", out)
        # exactly one PUT: a conflict is never retried blindly
        self.assertEqual(self.api.counters()["verbs"].get("update", 0), 1)
        # AlreadyExists is a different 409
        rc, out, _ = self.p.run("create", "pods", NS, self.write("p.json", pod("b")))
        self.assertIn("ERR errno=EEXIST status=409 reason=AlreadyExists", out)

    def test_delete_preconditions(self):
        obj = json.loads(self.p.ok("create", "pods", NS, self.write("p.json", pod("c")))[0])
        rc, out, _ = self.p.run("delete", "pods", NS, "c", "uid=not-the-uid")
        self.assertIn("ERR errno=ESTALE status=409", out)
        rc, out, _ = self.p.run("delete", "pods", NS, "c", "rv=1")
        self.assertIn("ERR errno=ESTALE status=409", out)
        self.p.ok("delete", "pods", NS, "c", "uid=" + obj["metadata"]["uid"],
                  "rv=" + obj["metadata"]["resourceVersion"])

    def test_list_selectors_and_pages(self):
        for i in range(7):
            self.api.post(PODS, pod("p%d" % i, {"app": "web" if i % 2 else "db"},
                                    node="node-b" if i < 3 else "node-a"))
        out, _ = self.p.ok("list", "pods", NS, "limit=2")
        pages = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("PAGE ")]
        self.assertEqual(len(pages), 4)
        names = [i["metadata"]["name"] for pg in pages for i in pg["items"]]
        self.assertEqual(sorted(names), ["p%d" % i for i in range(7)])
        out, _ = self.p.ok("list", "pods", NS, "label=app=web")
        items = json.loads(out.splitlines()[0][5:])["items"]
        self.assertEqual(sorted(i["metadata"]["name"] for i in items), ["p1", "p3", "p5"])
        out, _ = self.p.ok("list", "pods", "-", "label=app in (db),tier notin (x)",
                           "field=spec.nodeName=node-b")
        items = json.loads(out.splitlines()[0][5:])["items"]
        self.assertEqual(sorted(i["metadata"]["name"] for i in items), ["p0", "p2"])

    def test_keep_alive_reuses_one_connection(self):
        self.api.post(PODS, pod("k"))
        _, err = self.p.ok("repeat", "5", "get", "pods", NS, "k")
        self.assertIn("requests=5 connects=1 retries=0", err)

    def test_client_certificates(self):
        self.api.post(PODS, pod("cc"))
        for user in ("kvnet-agent", "kvnet-cni"):
            cert = self.api.pki["clients"][user]
            out, _ = self.p.ok("get", "pods", NS, "cc", token=False, cert=cert)
            self.assertEqual(json.loads(out)["metadata"]["name"], "cc")

    def test_kubeconfig_token_and_client_cert_users(self):
        self.api.post(PODS, pod("kc"))
        for user in ("token", "kvnet-agent"):
            kc = self.api.write_kubeconfig(os.path.join(self.tmp, "kc-" + user), user=user)
            p = subprocess.run([PROBE, "--kubeconfig", kc, "get", "pods", NS, "kc"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(json.loads(p.stdout)["metadata"]["name"], "kc")
        # --context naming a context that is not there: a clear error
        p = subprocess.run([PROBE, "--kubeconfig", kc, "--context", "nope", "get", "pods", NS,
                            "kc"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn('context \"nope\"', p.stdout.replace('"nope"', '\"nope\"'))

    def test_no_credentials_is_unauthorized(self):
        rc, out, _ = self.p.run("get", "pods", NS, "x", token=False)
        self.assertIn("ERR errno=EACCES status=401 reason=Unauthorized", out)

    def test_wrong_ca_is_a_clear_tls_error(self):
        ca = os.path.join(self.tmp, "other-ca.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=some-other-ca",
                        "-days", "1", "-keyout", ca + ".key", "-out", ca],
                       check=True, capture_output=True)
        rc, out, _ = self.p.run("get", "pods", NS, "x", ca=ca)
        self.assertEqual(rc, 1)
        self.assertIn("not trusted", out)
        self.assertIn("BR_ERR_X509_NOT_TRUSTED", out)

    def test_ip_san_and_name_mismatch(self):
        self.api.post(PODS, pod("n"))
        # the server is addressed by IP: verified against the certificate's IP SANs
        self.assertTrue(self.api.url.startswith("https://127.0.0.1:"))
        self.p.ok("get", "pods", NS, "n")
        # tls-server-name that the certificate does not carry: a clear error
        rc, out, _ = self.p.run("get", "pods", NS, "n", server_name="not-the-api.example")
        self.assertEqual(rc, 1, out)
        self.assertIn("BR_ERR_X509_BAD_SERVER_NAME", out)

    def test_token_rotated_on_disk_is_picked_up_after_401(self):
        self.api.post(PODS, pod("t"))
        tok = self.api.rotate_token()   # the old token is now refused
        self.p.set_token(tok)           # and the new one is on disk
        # the probe re-reads after 60 s or after a 401; a fresh process reads at once,
        # so use the informer (long-lived) to show the 401 path:
        inf = self.p.spawn("inform", "pods", NS)
        try:
            inf.wait(lambda l: l.startswith("SYNCED"), what="SYNCED")
            tok2 = self.api.rotate_token()
            self.p.set_token(tok2)
            self.api.drop_watches()
            self.api.post(PODS, pod("after-rotation"))
            inf.wait(lambda l: l.startswith("ADD %s/after-rotation" % NS), what="ADD after rotation")
        finally:
            inf.stop()

    def test_malformed_and_truncated_answers(self):
        self.api.post(PODS, pod("m"))
        self.api.fault(action="truncate", path="/pods/m", count=1)
        rc, out, _ = self.p.run("get", "pods", NS, "m")
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"ERR errno=(EPROTO|EINVAL)")
        # and the next call works (no crash, no poisoned connection)
        out, _ = self.p.ok("get", "pods", NS, "m")
        self.assertEqual(json.loads(out)["metadata"]["name"], "m")

    def test_server_errors_map_to_errno(self):
        self.api.fault(action="error", code=500, path="/pods", count=1)
        rc, out, _ = self.p.run("get", "pods", NS, "x")
        self.assertIn("ERR errno=EIO status=500", out)
        self.api.fault(action="error", code=429, path="/pods", count=1)
        rc, out, _ = self.p.run("get", "pods", NS, "x")
        self.assertIn("ERR errno=EBUSY status=429", out)

    def test_watch_from_version_bookmarks_and_timeout(self):
        r = self.api.post(PODS, pod("w1"))
        rv = r.json["metadata"]["resourceVersion"]
        self.api.post(PODS, pod("w2"))
        out, _ = self.p.ok("watch", "pods", NS, "rv=" + rv, "timeout=2", "bookmarks")
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("ADDED rv="), lines)
        self.assertEqual(sum(1 for l in lines if l.startswith("ADDED")), 1)   # only w2
        self.assertIn("BOOKMARK", out)
        self.assertEqual(lines[-1], "END")

    def test_watch_too_old_is_410(self):
        r = self.api.post(PODS, pod("o1"))
        rv = r.json["metadata"]["resourceVersion"]
        for i in range(3):
            self.api.post(PODS, pod("o%d" % (i + 2)))
        self.api.compact()
        rc, out, _ = self.p.run("watch", "pods", NS, "rv=" + rv, "count=1", "timeout=5")
        self.assertTrue("ERROR rv=" in out and "code=410" in out or "ETIME" in out, out)


def wait_for_watch(api, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if api.watches():
            return
        time.sleep(0.02)
    raise AssertionError("the informer opened no watch")


class InformerBehaviour(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvt-informer-")
        self.state = os.path.join(self.tmp, "state.json")
        self.api = client.KubeAPI(workdir=os.path.join(self.tmp, "api"),
                                  args=["--bookmark-interval", "0.5", "--immediate-pod-deletion",
                                        "--state", self.state])
        self.p = Probe(self.api, self.tmp)
        self.inf = None
        make_ns(self.api)

    def tearDown(self):
        if self.inf:
            self.inf.stop()
        self.api.stop()
        subprocess.run(["rm", "-rf", self.tmp])

    def test_list_watch_add_update_delete(self):
        for i in range(5):
            self.api.post(PODS, pod("i%d" % i))
        self.inf = self.p.spawn("inform", "pods", NS, "page=2")
        self.inf.wait(lambda l: l.startswith("SYNCED count=5"), what="SYNCED count=5")
        self.api.post(PODS, pod("new"))
        self.inf.wait(lambda l: l.startswith("ADD %s/new" % NS))
        self.api.patch(PODS + "/i1", {"metadata": {"labels": {"x": "y"}}})
        self.inf.wait(lambda l: l.startswith("UPDATE %s/i1" % NS))
        self.api.delete(PODS + "/i2")
        self.inf.wait(lambda l: l.startswith("DEL %s/i2" % NS))
        lines = self.inf.stop()
        self.inf = None
        stats = [l for l in lines if l.startswith("STATS")][0]
        self.assertIn("count=5", stats)
        self.assertIn("lists=1 ", stats)

    def test_dropped_watch_resumes_without_relist(self):
        self.api.post(PODS, pod("d0"))
        self.inf = self.p.spawn("inform", "pods", NS)
        self.inf.wait(lambda l: l.startswith("SYNCED"))
        wait_for_watch(self.api)
        self.assertEqual(self.api.drop_watches(), 1)
        self.api.post(PODS, pod("d1"))
        self.inf.wait(lambda l: l.startswith("ADD %s/d1" % NS))
        lines = self.inf.stop()
        self.inf = None
        stats = [l for l in lines if l.startswith("STATS")][0]
        self.assertIn("lists=1 ", stats)       # resumed from the version, no relist
        self.assertNotIn("watches=1 ", stats)

    def test_410_relists_and_converges(self):
        self.api.post(PODS, pod("r0"))
        self.api.post(PODS, pod("r1"))
        self.inf = self.p.spawn("inform", "pods", NS)
        self.inf.wait(lambda l: l.startswith("SYNCED count=2"))
        wait_for_watch(self.api)
        # the watch breaks and cannot come back for a while; meanwhile things change
        # and the history is compacted, so the informer's version is too old: 410
        self.api.fault(action="error", code=503, path="watch=", count=0)
        self.api.drop_watches()
        self.api.delete(PODS + "/r0")
        self.api.post(PODS, pod("r2"))
        self.api.compact()
        self.api.clear_faults()
        self.inf.wait(lambda l: l.startswith("ADD %s/r2" % NS), what="r2 after relist")
        self.inf.wait(lambda l: l.startswith("DEL %s/r0" % NS), what="r0 deleted")
        lines = self.inf.stop()
        self.inf = None
        stats = [l for l in lines if l.startswith("STATS")][0]
        self.assertIn("count=2", stats)
        self.assertNotIn("relists=0", stats)

    def restart(self, kill=False):
        port = self.api.port
        if kill:
            self.api.proc.kill()
        else:
            self.api.proc.terminate()
        self.api.proc.wait(10)
        self.api.proc = None
        ready = os.path.join(self.api.dir, "ready.json")
        if os.path.exists(ready):
            os.unlink(ready)
        self.api.listen = "127.0.0.1:%d" % port
        return port

    def test_server_restart_mid_watch(self):
        self.api.post(PODS, pod("a0"))
        self.api.post(PODS, pod("a1"))
        self.inf = self.p.spawn("inform", "pods", NS)
        self.inf.wait(lambda l: l.startswith("SYNCED count=2"))
        wait_for_watch(self.api)
        self.restart()          # SIGTERM: streams end, the data stays (--state)
        self.api.start()
        self.api.post(PODS, pod("a2"))
        self.inf.wait(lambda l: l.startswith("ADD %s/a2" % NS), timeout=30, what="a2 after restart")
        lines = self.inf.stop()
        self.inf = None
        self.assertEqual([l for l in lines if l.startswith("DEL")], [])
        stats = [l for l in lines if l.startswith("STATS")][0]
        self.assertIn("count=3", stats)

    def test_server_down_keeps_state_backs_off_and_resyncs(self):
        self.api.post(PODS, pod("s0"))
        self.api.post(PODS, pod("gone"))
        self.inf = self.p.spawn("inform", "pods", NS)
        self.inf.wait(lambda l: l.startswith("SYNCED count=2"))
        wait_for_watch(self.api)
        self.restart(kill=True)
        time.sleep(3)
        # down: the store is kept (no DEL) and retries back off (no busy loop)
        errors = self.inf.count("ERROR")
        self.assertGreaterEqual(errors, 1)
        self.assertLess(errors, 30, "retries must back off, not spin")
        self.assertEqual(self.inf.count("DEL"), 0)
        # back, with changes made meanwhile (through the same data)
        self.api.start()
        self.api.delete(PODS + "/gone")
        self.api.post(PODS, pod("s1"))
        self.inf.wait(lambda l: l.startswith("ADD %s/s1" % NS), timeout=30, what="resync")
        self.inf.wait(lambda l: l.startswith("DEL %s/gone" % NS), timeout=30, what="DEL gone")
        lines = self.inf.stop()
        self.inf = None
        stats = [l for l in lines if l.startswith("STATS")][0]
        self.assertIn("count=2", stats)
        self.assertNotIn("reconnects=0 ", stats)


if __name__ == "__main__":
    if not os.access(PROBE, os.X_OK):
        print("not ok - kube-probe not built (make unit)")
        sys.exit(1)
    tap.main()
