"""client — start the test API server and talk to it, for tests and lab code.

    from client import KubeAPI
    with KubeAPI() as api:                       # PKI in a temp dir, server on 127.0.0.1:0
        st, obj = api.post("/api/v1/namespaces/default/pods", pod)
        api.fault(action="error", code=500, count=2, path="/pods")
        for ev in api.watch("/api/v1/pods", resourceVersion="0", timeoutSeconds=1): ...
        print(api.counters()["verbs"])

KubeAPI(listen="198.18.0.1:6443", prefix=["ip", "netns", "exec", "kvt-1-api"]) runs the
server inside a network namespace. write_kubeconfig() gives kvnet a kubeconfig (token or
client-certificate user). Everything the server made is removed by stop().
"""

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
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pki  # noqa: E402


_PKI_TEMPLATES = {}  # (hosts, key_type) -> directory of a PKI made earlier in this process


def _pki_copy(d, hosts, key_type):
    """A PKI in d: a copy of one made earlier in this process for the same hosts (openssl
    is slow on a busy machine), with a fresh bearer token."""
    import atexit
    import secrets
    hosts = sorted(set(hosts) - {"127.0.0.1", "::1", "localhost"})  # always in the SANs
    key = (tuple(hosts), key_type)
    tpl = _PKI_TEMPLATES.get(key)
    if tpl is None:
        tpl = tempfile.mkdtemp(prefix="kvt-kubeapi-pki-")
        atexit.register(shutil.rmtree, tpl, True)
        pki.make(tpl, hosts=hosts, key_type=key_type)
        _PKI_TEMPLATES[key] = tpl
    shutil.copytree(tpl, d)
    pki.write_tokens(os.path.join(d, "tokens"),
                     {secrets.token_hex(16): ("kvnet-test", ["system:masters"])})
    return pki.ensure(d)


class ApiResponse:
    """status, headers, raw body, and the JSON (or None when the body is not JSON)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __iter__(self):  # st, obj = api.get(...)
        return iter((self.status, self.json))


class WatchStream:
    """Iterate a watch: yields event dicts; ends (StopIteration) when the server ends the
    stream with the terminating chunk. A connection closed before that raises
    http.client.IncompleteRead, as a careful client must notice. It decodes the chunked
    framing itself (http.client's readline hides an early EOF)."""

    def __init__(self, conn, resp):
        self.conn = conn
        self.resp = resp
        self.status = resp.status
        self.fp = resp.fp
        self.buf = b""
        self.done = False
        self.chunked = resp.chunked

    def __iter__(self):
        return self

    def _fill(self):
        """Read one more chunk into buf; False at the proper end of the stream."""
        if not self.chunked:
            data = self.resp.read(65536) if self.fp is not None else b""
            if not data:
                return False
            self.buf += data
            return True
        line = self.fp.readline(1024)
        if not line.endswith(b"\n"):
            raise http.client.IncompleteRead(self.buf)
        try:
            n = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise http.client.IncompleteRead(self.buf) from None
        if n == 0:
            self.fp.readline(1024)  # the empty trailer line
            return False
        data = self.fp.read(n)
        if len(data) < n or self.fp.read(2) != b"\r\n":
            raise http.client.IncompleteRead(self.buf + data)
        self.buf += data
        return True

    def __next__(self):
        while b"\n" not in self.buf:
            if self.done or not self._fill():
                self.done = True
                if self.buf.strip():
                    raise http.client.IncompleteRead(self.buf)
                self.close()
                raise StopIteration
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def next_event(self):
        try:
            return next(self)
        except StopIteration:
            return None

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class KubeAPI:
    def __init__(self, listen="127.0.0.1:0", plain=False, workdir=None, args=(), prefix=(),
                 hosts=(), key_type="ec", start=True, env=None):
        self.listen = listen
        self.plain = plain
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="kvt-kubeapi-")
        self.args = list(args)
        self.prefix = list(prefix)
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        listen_host = listen.rsplit(":", 1)[0].strip("[]")
        self.pki = _pki_copy(os.path.join(self.dir, "pki"), [listen_host] + list(hosts),
                             key_type)
        self.token = self.pki["token"]
        self.env = env
        if start:
            self.start()

    # ---- lifecycle ------------------------------------------------------------------

    def start(self, timeout=20.0):
        ready = os.path.join(self.dir, "ready.json")
        cmd = self.prefix + [sys.executable, os.path.join(HERE, "server.py"),
                             "--listen", self.listen, "--ready-file", ready,
                             "--token-file", self.pki["tokens"]]
        if self.plain:
            cmd.append("--plain")
        else:
            cmd += ["--cert", self.pki["server_cert"], "--key", self.pki["server_key"],
                    "--client-ca", self.pki["ca_cert"]]
        cmd += self.args
        self.log_path = os.path.join(self.dir, "server.log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        log.close()
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("kubeapi: server exited with %s: %s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kubeapi: server not ready after %.0f s" % timeout)
            time.sleep(0.02)
        with open(ready, encoding="utf-8") as f:
            info = json.load(f)
        self.url, self.host, self.port = info["url"], info["host"], info["port"]
        return self

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, wait (kill after 5 s); returns the exit status. Removes the temp dir."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
            self.proc = None
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    # ---- connections ----------------------------------------------------------------

    def ssl_context(self, client=None):
        """TLS context trusting the test CA; client: a user from the PKI (cert auth)."""
        ctx = ssl.create_default_context(cafile=self.pki["ca_cert"])
        if client is not None:
            cert, key = self.pki["clients"][client] if isinstance(client, str) else client
            ctx.load_cert_chain(cert, key)
        return ctx

    def connect(self, client=None, timeout=30):
        host = self.host
        if self.plain:
            return http.client.HTTPConnection(host, self.port, timeout=timeout)
        return http.client.HTTPSConnection(host, self.port, timeout=timeout,
                                           context=self.ssl_context(client))

    def raw_socket(self, client=None, timeout=30):
        """A connected (TLS) socket for tests that read the wire bytes themselves."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        if self.plain:
            return s
        return self.ssl_context(client).wrap_socket(s, server_hostname=self.host)

    def request(self, method, path, body=None, headers=None, token=True, client=None,
                conn=None, query=None):
        """One request. body: dict/list (sent as JSON) or bytes. token: True = the test
        token, a string = that token, None/False = no Authorization header. Returns an
        ApiResponse (iterable as (status, json))."""
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        h = {"Accept": "application/json"}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = "Bearer " + (self.token if token is True else token)
        h.update(headers or {})
        own = conn is None
        c = conn or self.connect(client)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read()
            return ApiResponse(r.status, dict(r.getheaders()), raw)
        finally:
            if own:
                c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)

    def patch(self, path, body, kind="merge", **kw):
        ctype = {"merge": "application/merge-patch+json",
                 "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[kind]
        hdr = dict(kw.pop("headers", None) or {})
        hdr["Content-Type"] = ctype
        return self.request("PATCH", path, json.dumps(body), headers=hdr, **kw)

    def watch(self, path, client=None, token=True, timeout=30, **params):
        """Open a watch (params become the query; watch=1 is added)."""
        q = dict(params)
        q.setdefault("watch", "1")
        full = path + ("&" if "?" in path else "?") + urllib.parse.urlencode(q)
        c = self.connect(client, timeout=timeout)
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + (self.token if token is True else token)
        c.request("GET", full, headers=h)
        return WatchStream(c, c.getresponse())

    # ---- control API ----------------------------------------------------------------

    def _ctl(self, method, op, body=None, query=None):
        r = self.request(method, "/_test/" + op, body, query=query)
        if r.status != 200:
            raise RuntimeError("kubeapi control %s %s: %s %s" % (method, op, r.status, r.raw))
        return r.json

    def reset(self):
        return self._ctl("POST", "reset")

    def compact(self, resource_version=None):
        return self._ctl("POST", "compact", {} if resource_version is None
                         else {"resourceVersion": str(resource_version)})

    def fault(self, **rule):
        return self._ctl("POST", "faults", rule)

    def clear_faults(self):
        return self._ctl("DELETE", "faults")

    def drop_watches(self, mode="abrupt"):
        return self._ctl("POST", "watches/drop", {"mode": mode})["dropped"]

    def watches(self):
        return self._ctl("GET", "watches")["watches"]

    def counters(self, reset=False):
        return self._ctl("GET", "counters", query={"reset": "1"} if reset else None)

    def load(self, objs, replace=False):
        return self._ctl("POST", "load", {"items": list(objs), "replace": replace})

    def load_files(self, paths, replace=False):
        objs = []
        for p in paths:
            with open(p, encoding="utf-8") as f:
                d = json.load(f)
            objs += d["items"] if isinstance(d, dict) and "items" in d else (
                d if isinstance(d, list) else [d])
        return self.load(objs, replace)

    def config(self, **kw):
        return self._ctl("POST", "config", kw)

    def authz(self, deny):
        return self._ctl("POST", "authz", {"deny": deny})

    def state(self):
        return self._ctl("GET", "state")

    # ---- for kvnet --------------------------------------------------------------------

    def write_kubeconfig(self, path, user="token", server=None):
        """A kubeconfig for this server: user "token" (bearer token) or a PKI client name
        (client certificate) or "tokenFile" (a token file the client re-reads; rotate_token()
        rewrites it). JSON is valid YAML, so kvnet's kubeconfig reader takes it."""
        if user == "token":
            u = {"token": self.token}
        elif user == "tokenFile":
            u = {"tokenFile": self.write_client_token()}
        else:
            u = {"client-certificate": self.pki["clients"][user][0],
                 "client-key": self.pki["clients"][user][1]}
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "kvnet-test",
               "clusters": [{"name": "kvnet-test", "cluster": {
                   "server": server or self.url,
                   "certificate-authority": self.pki["ca_cert"]}}],
               "users": [{"name": "kvnet-test", "user": u}],
               "contexts": [{"name": "kvnet-test", "context": {"cluster": "kvnet-test",
                                                               "user": "kvnet-test"}}]}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=1)
        return path

    def write_client_token(self):
        """The client's copy of the current token (what kubeconfig tokenFile points at, or
        a projected service-account token); rotate_token() rewrites it too."""
        path = os.path.join(self.dir, "client-token")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.token + "\n")
        os.rename(tmp, path)
        return path

    def rotate_token(self, new_token=None, keep_old=False, client_file=True):
        """Write a new token to the server's token file (the old one stops working unless
        kept) and, when client_file, to the client's copy (write_client_token)."""
        import secrets
        new_token = new_token or secrets.token_hex(16)
        toks = {new_token: ("kvnet-test", ["system:masters"])}
        if keep_old:
            toks[self.token] = ("kvnet-test", ["system:masters"])
        pki.write_tokens(self.pki["tokens"], toks)
        self.token = new_token
        if client_file and os.path.exists(os.path.join(self.dir, "client-token")):
            self.write_client_token()
        return new_token
