"""kt — shared setup for the contract tests: one server per test module.

    import kt
    class T(kt.TestCase):
        def test_x(self):
            st, obj = self.api.get("/api/v1/namespaces")

kt.TestCase starts the server once per module (setUpModule is not needed), resets its
storage before every test, and offers small helpers. Run a file with `python3 FILE`.
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import client  # noqa: E402
import tap  # noqa: E402

_API = {}


def server(args=()):
    """The module's shared server (started on first use, stopped at exit)."""
    key = tuple(args)
    if key not in _API:
        import atexit
        api = client.KubeAPI(args=["--seed", "7"] + list(args))
        atexit.register(api.stop)
        _API[key] = api
    return _API[key]


def pod(name, ns="default", labels=None, node="node-a", **extra):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {})},
         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}
    p.update(extra)
    return p


def block(name, **spec):
    return {"apiVersion": "kvnet.io/v1", "kind": "IPAMBlock", "metadata": {"name": name},
            "spec": dict(spec) or {"cidr": "198.18.4.0/26"}}


PODS = "/api/v1/namespaces/default/pods"
BLOCKS = "/apis/kvnet.io/v1/ipamblocks"
VMIS = "/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances"


def fixtures_dir():
    """The shared fixtures directory (beside the repository or the worktree)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "fixtures"),
                 os.path.join(here, "..", "..", "..", "shared", "fixtures"),
                 os.path.join(here, "..", "..", "shared", "fixtures"),
                 "/work/shared/fixtures"):
        if os.path.isdir(cand):
            return os.path.abspath(cand)
    return None


class TestCase(unittest.TestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.api = server(cls.server_args)

    def setUp(self):
        self.api.reset()

    def assertStatus(self, resp, code, reason=None):
        """resp has HTTP status code and (for failures) a real-shaped Status body."""
        self.assertEqual(resp.status, code, resp.raw[:400])
        if code >= 400:
            s = resp.json
            self.assertIsInstance(s, dict, resp.raw)
            self.assertEqual(s.get("kind"), "Status")
            self.assertEqual(s.get("apiVersion"), "v1")
            self.assertEqual(s.get("metadata"), {})
            self.assertEqual(s.get("status"), "Failure")
            self.assertEqual(s.get("code"), code)
            self.assertIsInstance(s.get("message"), str)
            self.assertEqual(resp.headers.get("Content-Type"), "application/json")
            if reason is not None:
                self.assertEqual(s.get("reason"), reason, s)
        return resp.json

    def create(self, path, obj):
        r = self.api.post(path, obj)
        self.assertEqual(r.status, 201, r.raw)
        return r.json


def main():
    tap.main()
