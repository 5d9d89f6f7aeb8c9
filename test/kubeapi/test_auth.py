#!/usr/bin/env python3
"""Contract: authentication, TLS, listening, readiness, shutdown, keep-alive."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

import kt

import client as kclient
import pki


class Auth(kt.TestCase):
    def test_bad_token_is_401_with_status(self):
        r = self.api.get("/api/v1/namespaces", token="not-a-token")
        s = self.assertStatus(r, 401, "Unauthorized")
        self.assertEqual(s, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Failure", "message": "Unauthorized",
                             "reason": "Unauthorized", "code": 401})

    def test_no_credentials_is_401(self):
        self.assertStatus(self.api.get("/api/v1/pods", token=None), 401, "Unauthorized")
        self.assertStatus(self.api.get("/apis/kvnet.io/v1/nosuch", token=None), 401)
        self.assertStatus(self.api.get("/_test/counters", token=None), 401)

    def test_good_token(self):
        r = self.api.get("/api/v1/namespaces/default")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["kind"], "Namespace")
        self.assertEqual(r.json["status"]["phase"], "Active")

    def test_token_rotation_on_disk(self):
        old = self.api.token
        try:
            new = self.api.rotate_token()
            self.assertStatus(self.api.get("/api/v1/pods", token=old), 401, "Unauthorized")
            self.assertEqual(self.api.get("/api/v1/pods", token=new).status, 200)
            self.api.rotate_token(keep_old=True)
            self.assertEqual(self.api.get("/api/v1/pods", token=new).status, 200)
            self.assertEqual(self.api.get("/api/v1/pods").status, 200)
        finally:
            self.api.rotate_token(old)
        self.assertEqual(self.api.get("/api/v1/pods", token=old).status, 200)

    def test_kubeconfig_and_client_token_file(self):
        import tempfile as tf
        with tf.TemporaryDirectory() as d:
            kc = json.load(open(self.api.write_kubeconfig(os.path.join(d, "kc"), user="tokenFile")))
            path = kc["users"][0]["user"]["tokenFile"]
            self.assertEqual(kc["clusters"][0]["cluster"]["server"], self.api.url)
            tok = open(path).read().strip()
            self.assertEqual(self.api.get("/api/v1/pods", token=tok).status, 200)
            old = self.api.token
            try:
                self.api.rotate_token()
                tok2 = open(path).read().strip()
                self.assertNotEqual(tok2, tok)
                self.assertEqual(self.api.get("/api/v1/pods", token=tok2).status, 200)
                self.assertStatus(self.api.get("/api/v1/pods", token=tok), 401, "Unauthorized")
            finally:
                self.api.rotate_token(old)
            kc = json.load(open(self.api.write_kubeconfig(os.path.join(d, "kc2"), user="kvnet-cni")))
            u = kc["users"][0]["user"]
            self.assertTrue(os.path.exists(u["client-certificate"]) and os.path.exists(u["client-key"]))

    def test_client_certificate_cn_is_user(self):
        self.assertEqual(self.api.get("/api/v1/pods", token=None, client="kvnet-agent").status,
                         200)
        self.api.authz([{"user": "kvnet-agent", "verb": "list", "resource": "pods"}])
        r = self.api.get("/api/v1/namespaces/default/pods", token=None, client="kvnet-agent")
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertEqual(s["message"], 'pods is forbidden: User "kvnet-agent" cannot list '
                         'resource "pods" in API group "" in the namespace "default"')
        # another identity is not affected
        self.assertEqual(self.api.get(kt.PODS, token=None, client="kvnet-cni").status, 200)

    def test_forbidden_named_cluster_scope(self):
        self.api.authz([{"user": "kvnet-test", "verb": "update", "group": "kvnet.io"}])
        b = self.create(kt.BLOCKS, kt.block("b1"))
        r = self.api.put(kt.BLOCKS + "/b1", b)
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertEqual(s["message"], 'ipamblocks.kvnet.io "b1" is forbidden: User "kvnet-test" '
                         'cannot update resource "ipamblocks" in API group "kvnet.io" at the '
                         'cluster scope')
        self.assertEqual(s["details"], {"name": "b1", "group": "kvnet.io", "kind": "ipamblocks"})

    def test_certificate_from_unknown_ca_fails_handshake(self):
        with tempfile.TemporaryDirectory() as d:
            other = pki.make(d, clients=[("mallory", None)])
            ctx = ssl.create_default_context(cafile=self.api.pki["ca_cert"])
            ctx.load_cert_chain(*other["clients"]["mallory"])
            c = http.client.HTTPSConnection(self.api.host, self.api.port, context=ctx,
                                            timeout=10)
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                c.request("GET", "/api/v1/pods")
                c.getresponse().read()
            c.close()

    def test_server_certificate_names(self):
        # hostname verification against the SANs (localhost and 127.0.0.1)
        for name in ("localhost", "127.0.0.1"):
            ctx = ssl.create_default_context(cafile=self.api.pki["ca_cert"])
            with socket.create_connection((self.api.host, self.api.port), timeout=10) as s:
                with ctx.wrap_socket(s, server_hostname=name) as t:
                    self.assertTrue(t.version() in ("TLSv1.2", "TLSv1.3"))

    def test_tls12_only_client(self):
        # BearSSL speaks TLS 1.2 only: the server must accept it
        ctx = self.api.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c = http.client.HTTPSConnection(self.api.host, self.api.port, context=ctx, timeout=10)
        c.request("GET", "/version", headers={"Authorization": "Bearer " + self.api.token})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["major"], "1")
        self.assertEqual(c.sock.version(), "TLSv1.2")
        c.close()

    def test_connection_burst(self):
        """Many clients connecting at once (CNI processes on a busy node) all get served."""
        import threading
        ctx = self.api.ssl_context()
        out = []

        def one():
            c = http.client.HTTPSConnection(self.api.host, self.api.port, context=ctx, timeout=60)
            try:
                c.request("GET", "/api/v1/namespaces/default",
                          headers={"Authorization": "Bearer " + self.api.token})
                r = c.getresponse()
                out.append((r.status, json.loads(r.read())["metadata"]["name"]))
            finally:
                c.close()
        ts = [threading.Thread(target=one) for _ in range(64)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(out, [(200, "default")] * 64)

    def test_keep_alive(self):
        c = self.api.connect()
        socks = set()
        for i in range(5):
            r = self.api.request("GET", "/api/v1/namespaces/default", conn=c)
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.headers.get("Connection"), "close")
            socks.add(id(c.sock))
        self.assertEqual(len(socks), 1)
        # errors keep the connection open too
        r = self.api.request("GET", kt.PODS + "/nope", conn=c)
        self.assertStatus(r, 404, "NotFound")
        self.assertEqual(self.api.request("GET", kt.PODS, conn=c).status, 200)
        self.assertEqual(len({id(c.sock)}), 1)
        c.close()


class Process(kt.TestCase):
    """Starting, readiness and stopping, with servers of its own."""

    def test_plain_http_ipv6_and_ready_file(self):
        api = kclient.KubeAPI(listen="[::1]:0", plain=True)
        try:
            self.assertTrue(api.url.startswith("http://[::1]:"), api.url)
            self.assertEqual(api.get("/api/v1/namespaces").status, 200)
            self.assertStatus(api.get("/api/v1/namespaces", token=None), 401)
            with open(os.path.join(api.dir, "ready.json")) as f:
                info = json.load(f)
            self.assertEqual(info["port"], api.port)
            self.assertEqual(info["pid"], api.proc.pid)
        finally:
            self.assertEqual(api.stop(), 0)

    def test_inside_network_namespace(self):
        """The server binds the address it is given inside a lab namespace; a client in
        that namespace reaches it over TLS with the SAN for that address."""
        if os.geteuid() != 0 or not shutil.which("ip"):
            self.skipTest("needs root and iproute2")
        ns = "kvt-%d-api" % os.getpid()
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)
        run("ip", "netns", "add", ns)
        api = None
        try:
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", "198.18.0.1/32", "dev", "lo")
            api = kclient.KubeAPI(listen="198.18.0.1:6443", prefix=["ip", "netns", "exec", ns])
            self.assertEqual(api.url, "https://198.18.0.1:6443")
            probe = ("import ssl,http.client,sys;c=http.client.HTTPSConnection('198.18.0.1',6443,"
                     "context=ssl.create_default_context(cafile=sys.argv[1]),timeout=10);"
                     "c.request('GET','/api/v1/namespaces/default',headers={'Authorization':"
                     "'Bearer '+sys.argv[2]});r=c.getresponse();print(r.status,r.read()[:40])")
            out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", probe,
                                  api.pki["ca_cert"], api.token], capture_output=True,
                                 text=True, timeout=60)
            self.assertTrue(out.stdout.startswith("200 "), out.stdout + out.stderr)
            # and the listening socket is in that namespace (independent view: ss)
            ss = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htln"], capture_output=True,
                                text=True).stdout
            self.assertIn("198.18.0.1:6443", ss)
        finally:
            if api is not None:
                self.assertEqual(api.stop(), 0)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def test_bad_command_lines_fail_clearly(self):
        srv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
        with tempfile.TemporaryDirectory() as d:
            bad_fix = os.path.join(d, "bad.json")
            with open(bad_fix, "w") as f:
                f.write('{"kind": "Nope"')
            for args, want in ((["--plain", "--listen", "nonsense"], "--listen"),
                               (["--plain", "--listen", "127.0.0.1:70000"], "--listen"),
                               (["--plain", "--listen", "198.18.250.1:6443"], "listen 198.18.250.1"),
                               (["--cert", "/nonexistent", "--key", "/nonexistent"], "certificate"),
                               (["--plain", "--fixtures", bad_fix], "fixtures"),
                               (["--listen", "127.0.0.1:0"], "need --cert")):
                p = subprocess.run([sys.executable, srv] + args, capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(p.returncode, 1, (args, p.stderr))
                self.assertNotIn("Traceback", p.stderr)
                self.assertTrue(p.stderr.startswith("kubeapi: "), p.stderr)
                self.assertIn(want, p.stderr)

    def test_stdout_first_line_and_sigterm(self):
        with tempfile.TemporaryDirectory() as d:
            made = kclient._pki_copy(os.path.join(d, "pki"), ["127.0.0.1"], "ec")
            ready = os.path.join(d, "ready")
            p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(
                os.path.abspath(__file__)), "server.py"), "--pki", os.path.join(d, "pki"),
                "--ready-file", ready], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            try:
                line = p.stdout.readline().split()
                self.assertEqual(line[:2], ["kubeapi", "listening"])
                self.assertTrue(line[2].startswith("https://127.0.0.1:"))
                port = int(line[2].rsplit(":", 1)[1])
                self.assertTrue(os.path.exists(ready))
                ctx = ssl.create_default_context(cafile=made["ca_cert"])
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                c.request("GET", "/api/v1/pods?watch=1",
                          headers={"Authorization": "Bearer " + made["token"]})
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)
                self.assertEqual(r.read(), b"")  # the watch ended with the stream
                self.assertFalse(os.path.exists(ready))
                c.close()
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()


if __name__ == "__main__":
    kt.main()
