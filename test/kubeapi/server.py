#!/usr/bin/env python3
"""server — a Kubernetes API server stand-in for kvnet's tests (python3 stdlib only).

    python3 test/kubeapi/server.py --pki DIR [--listen 127.0.0.1:0] [--ready-file F] ...

HTTPS with bearer tokens (a file re-read when it changes) and client certificates
(CN = user, O = groups); generic REST storage with one global resourceVersion; list/watch
with the real API's semantics; a control API under /_test/ for tests (reset, compact,
faults, counters, fixtures). See README.md in this directory for everything it does and
the simplifications it makes.
"""

import argparse
import gzip
import http.server
import json
import os
import re
import select
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apierr  # noqa: E402
import labelsel  # noqa: E402
import store as kstore  # noqa: E402

GZIP_MIN = 128 * 1024  # the real API compresses larger answers when the client accepts gzip

VERSION_INFO = {"major": "1", "minor": "34", "gitVersion": "v1.34.0+kvnet-test",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"}


def go_json(obj):
    """JSON bytes as Go's encoding/json writes them (what the real API sends): compact,
    raw UTF-8, with <, >, & and U+2028/U+2029 escaped as \\u sequences, ending in a
    newline (json.Encoder.Encode)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)  # only strings can hold these characters
    return text.encode("utf-8", "replace") + b"\n"


# ---- authentication -------------------------------------------------------------------

class TokenFile:
    """Bearer tokens from a file, re-read whenever its mtime/size/inode change.

    Lines: `TOKEN` (user "kvnet-test") or the kube-apiserver --token-auth-file CSV form
    `TOKEN,USER,UID,"GROUP1,GROUP2"`. Blank lines and lines starting with # are ignored."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = None
        self.tokens = {}

    def _load(self):
        try:
            st = os.stat(self.path)
        except OSError:
            self.tokens, self.stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self.stamp:
            return
        toks = {}
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = next(__import__("csv").reader([line]))
                tok = parts[0].strip()
                user = parts[1].strip() if len(parts) > 1 and parts[1].strip() else "kvnet-test"
                groups = [g for g in parts[3].split(",") if g] if len(parts) > 3 else []
                toks[tok] = (user, groups)
        self.tokens, self.stamp = toks, stamp

    def lookup(self, token):
        with self.lock:
            self._load()
            return self.tokens.get(token)


# ---- faults, counters, authorization ------------------------------------------------------

class Faults:
    """Armed faults. A rule: {"action": "error"|"stall"|"truncate"|"drop"|"drop-watch",
    "count": N (default 1; 0 or null = until cleared), "path": regex searched in the request
    path+query, "method": "GET"... , plus per action: code/retryAfter, ms, mode, afterEvents}."""

    ACTIONS = ("error", "stall", "truncate", "drop", "drop-watch")

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, rule):
        if not isinstance(rule, dict) or rule.get("action") not in self.ACTIONS:
            raise apierr.bad_request("fault: action must be one of %s" % ", ".join(self.ACTIONS))
        r = dict(rule)
        try:
            r["_re"] = re.compile(r.get("path") or "")
        except re.error as e:
            raise apierr.bad_request("fault: bad path regex: %s" % e) from None
        r["count"] = int(r.get("count", 1) or 0)
        if r["action"] == "error":
            r["code"] = int(r.get("code", 500))
            if r["code"] not in (429, 500, 503, 504):
                raise apierr.bad_request("fault: error code must be 429, 500, 503 or 504")
        with self.lock:
            self.rules.append(r)

    def take(self, action, method, target):
        with self.lock:
            for r in self.rules:
                if r["action"] != action:
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if not r["_re"].search(target):
                    continue
                if r["count"]:
                    r["count"] -= 1
                    if r["count"] == 0:
                        self.rules.remove(r)
                return r
        return None

    def clear(self):
        with self.lock:
            self.rules = []

    def list(self):
        with self.lock:
            return [{k: v for k, v in r.items() if k != "_re"} for r in self.rules]


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.paths = {}
        self.verbs = {}
        self.total = 0

    def count(self, method, path, verb):
        with self.lock:
            k = method + " " + path
            self.paths[k] = self.paths.get(k, 0) + 1
            self.verbs[verb] = self.verbs.get(verb, 0) + 1
            self.total += 1

    def read(self, reset=False):
        with self.lock:
            out = {"paths": dict(self.paths), "verbs": dict(self.verbs), "total": self.total}
            if reset:
                self.paths, self.verbs, self.total = {}, {}, 0
            return out


class Authz:
    """Deny rules: [{"user": U|"*", "verb": V|"*", "resource": R|"*", "group": G|"*"}]."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deny = []

    def set(self, rules):
        if not isinstance(rules, list):
            raise apierr.bad_request("authz: deny must be a list")
        with self.lock:
            self.deny = [dict(r) for r in rules]

    def allowed(self, user, verb, res):
        with self.lock:
            for r in self.deny:
                if all(r.get(f, "*") in ("*", v) for f, v in
                       (("user", user), ("verb", verb), ("resource", res.plural),
                        ("group", res.group))):
                    return False
        return True


# ---- the HTTP server ------------------------------------------------------------------

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024  # listen backlog: many CNI processes connect at once

    def __init__(self, addr, family, opts, tls_ctx):
        self.address_family = family
        self.opts = opts
        self.tls_ctx = tls_ctx
        self.store = kstore.Store(history=opts.history, seed=opts.seed)
        if opts.state:
            self.store.persist_to(opts.state)
        self.tokens = TokenFile(opts.token_file) if opts.token_file else None
        self.faults = Faults()
        self.counters = Counters()
        self.authz = Authz()
        self.stopping = threading.Event()
        self.bookmark_interval = opts.bookmark_interval
        self.split_chunks = not opts.no_split
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's net/http
        except OSError:
            pass
        if self.tls_ctx is not None:
            request.settimeout(10)
            try:
                request = self.tls_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                if self.opts.verbose:
                    print("kubeapi: TLS handshake from %s failed: %s" % (client_address[0], e),
                          file=sys.stderr)
                try:
                    request.close()
                except OSError:
                    pass
                return
            request.settimeout(None)
        with self.conns_lock:
            self.conns.add(request)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            with self.conns_lock:
                self.conns.discard(request)
            try:
                if isinstance(request, ssl.SSLSocket) and not getattr(request, "kv_abrupt", False):
                    request.settimeout(0.2)  # send close_notify, as Go's server does
                    request.unwrap()
            except (OSError, ValueError):
                pass
            try:
                request.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if self.opts.verbose:
            super().handle_error(request, client_address)

    def close_all(self):
        with self.conns_lock:
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Dropped(Exception):
    """Close the connection without finishing the response (fault injection)."""


def _parse_resource_path(parts):
    """(group, version, rest) from path segments, or None when not a resource path."""
    if parts and parts[0] == "api" and len(parts) >= 2:
        return "", parts[1], parts[2:]
    if parts and parts[0] == "apis" and len(parts) >= 3:
        return parts[1], parts[2], parts[3:]
    return None


class Req:
    """What a resource request asks for."""

    def __init__(self):
        self.res = None         # resources.Resource
        self.ns = None          # namespace from the URL, or None
        self.name = None        # object name, or None for the collection
        self.sub = None         # "status" or None
        self.watch = False      # /watch/ path prefix or ?watch=
        self.verb = None        # Kubernetes verb


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kvnet-kubeapi/1"

    # ---- plumbing -------------------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("kubeapi: %s %s\n" % (self.address_string(), fmt % args))

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(16)
        n = int(self.headers.get("Content-Length") or 0)
        if n > 64 << 20:
            raise apierr.ApiError(413, "RequestEntityTooLarge", "request entity too large")
        return self.rfile.read(n) if n else b""

    def _send_json(self, code, obj, headers=None, truncate=None):
        if truncate is not None and truncate.get("mode") == "reset":
            raise Dropped()  # no answer at all: the connection just closes
        body = go_json(obj)
        headers = dict(headers or {})
        if len(body) > GZIP_MIN and truncate is None and "gzip" in [
                x.split(";")[0].strip().lower()
                for x in (self.headers.get("Accept-Encoding") or "").split(",")]:
            body = gzip.compress(body, 1)  # as the real API (APIResponseCompression)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        full = len(body)
        if truncate is not None and truncate.get("mode", "json") == "json":
            body = body[:max(1, full // 2)]
            full = len(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(full))
        self.end_headers()
        if truncate is not None and truncate.get("mode") == "close":
            self.wfile.write(body[:max(1, len(body) // 2)])
            raise Dropped()
        self.wfile.write(body)

    def _send_error(self, e, truncate=None):
        self._send_json(e.code, e.status(), e.headers, truncate)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")

    def _drop(self):
        self.close_connection = True
        self.connection.kv_abrupt = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- authentication -------------------------------------------------------------

    def _user(self):
        """(user, groups) or None."""
        conn = self.connection
        if isinstance(conn, ssl.SSLSocket):
            cert = conn.getpeercert()
            if cert:
                cn, groups = None, []
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
                        elif k == "organizationName":
                            groups.append(v)
                if cn:
                    return cn, groups
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and self.server.tokens is not None:
            u = self.server.tokens.lookup(auth[7:].strip())
            if u is not None:
                return u
        if self.server.opts.anonymous:
            return "system:anonymous", ["system:unauthenticated"]
        return None

    # ---- dispatch -------------------------------------------------------------------

    def _serve(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in q.items()}
        target = path + ("?" + url.query if url.query else "")
        control = path.startswith("/_test/") or path == "/_test"
        try:
            try:
                body = self._read_body()
            except (ValueError, OSError):
                self.close_connection = True
                raise apierr.bad_request("malformed request body framing") from None
            req, route_err = None, None
            if not control:
                try:
                    req = self._route(method, path, query)
                except apierr.ApiError as e:
                    route_err = e
                verb = req.verb if isinstance(req, Req) else method.lower()
                self.server.counters.count(method, path, verb)
            user = self._user()
            if user is None:
                raise apierr.unauthorized()
            if route_err is not None:
                raise route_err
            if control:
                return self._control(method, path, query, body)
            faults = self.server.faults
            stall = faults.take("stall", method, target)
            if stall is not None:
                time.sleep(float(stall.get("ms", 1000)) / 1000.0)
            if faults.take("drop", method, target) is not None:
                raise Dropped()  # closed before the request is handled
            err = faults.take("error", method, target)
            if err is not None:
                raise self._fault_error(err)
            headers = None
            try:
                if isinstance(req, Req):
                    if not self.server.authz.allowed(user[0], req.verb, req.res):
                        raise apierr.forbidden(user[0], req.verb, req.res.plural,
                                               req.res.group, req.name, req.ns)
                    if req.verb == "watch":
                        return self._watch(req, query, method, target)
                    code, ans = self._resource(method, req, query, body)
                else:
                    code, ans = 200, req
            except apierr.ApiError as e:  # answered like any other body, truncation too
                code, ans, headers = e.code, e.status(), e.headers
            self._send_json(code, ans, headers, truncate=faults.take("truncate", method, target))
        except apierr.ApiError as e:
            self._send_error(e)
        except Dropped:
            self._drop()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug here must still answer like a server would
            import traceback
            traceback.print_exc(file=sys.stderr)
            try:
                self._send_error(apierr.internal("kubeapi: %s: %s" % (type(e).__name__, e)))
            except OSError:
                self.close_connection = True

    def _fault_error(self, rule):
        code = rule["code"]
        if code == 429:
            return apierr.too_many_requests(int(rule.get("retryAfter", 1)))
        if code == 503:
            return apierr.ApiError(503, "ServiceUnavailable", "the server is currently unable "
                                   "to handle the request", {})
        if code == 504:
            return apierr.ApiError(504, "Timeout", "the server was unable to return a response "
                                   "in the time allotted, but may still be processing the request",
                                   {})
        return apierr.internal(rule.get("message", "injected fault"))

    def _route(self, method, path, query):
        """A Req for resource paths, or the answer (dict) for discovery paths."""
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]
        st = self.server.store
        if path in ("/healthz", "/livez", "/readyz"):
            return {"status": "ok"}
        if path == "/version":
            return VERSION_INFO
        if parts == ["api"]:
            host = "%s:%d" % self.server.server_address[:2]
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs":
                    [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        with st.cond:
            if parts[:2] == ["openapi", "v3"]:
                # OpenAPI v3 of the custom resources (kubectl explain reads it)
                doc = (st.registry.openapi_v3() if len(parts) == 2 else
                       st.registry.openapi_v3(parts[3], parts[4])
                       if len(parts) == 5 and parts[2] == "apis" else None)
                if doc is None:
                    raise apierr.no_such_resource()
                return doc
            if parts == ["apis"]:
                groups = [{"name": g, "versions": [{"groupVersion": g + "/" + v, "version": v}
                                                    for v in vs],
                           "preferredVersion": {"groupVersion": g + "/" + vs[0], "version": vs[0]}}
                          for g, vs in sorted(st.registry.group_versions().items())]
                return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
            if len(parts) == 2 and parts[0] == "apis":
                vs = st.registry.group_versions().get(parts[1])
                if not vs:
                    raise apierr.no_such_resource()
                gvs = [{"groupVersion": parts[1] + "/" + v, "version": v} for v in vs]
                return {"kind": "APIGroup", "apiVersion": "v1", "name": parts[1],
                        "versions": gvs, "preferredVersion": gvs[0]}
            p = _parse_resource_path(parts)
            if p is None:
                raise apierr.no_such_resource()
            group, version, rest = p
            if not rest:
                rs = st.registry.in_group(group, version)
                if not rs:
                    raise apierr.no_such_resource()
                return {"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": rs[0].api_version,
                        "resources": [d for r in rs for d in r.discovery()]}
            r = Req()
            if rest[0] == "watch":
                r.watch = True
                rest = rest[1:]
            if (len(rest) >= 3 and rest[0] == "namespaces" and
                    not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))):
                r.ns = rest[1]
                rest = rest[2:]
            if not rest or len(rest) > 3:
                raise apierr.no_such_resource()
            res = st.registry.lookup(group, version, rest[0])
            if res is None:
                raise apierr.no_such_resource()
            r.res = res
            r.name = rest[1] if len(rest) > 1 else None
            r.sub = rest[2] if len(rest) > 2 else None
        if r.ns is not None and not res.namespaced:
            raise apierr.no_such_resource()
        if res.namespaced and r.ns is None and r.name is not None:
            raise apierr.no_such_resource()
        if r.sub is not None and (r.sub != "status" or not res.status):
            raise apierr.no_such_resource()
        watch = r.watch or query.get("watch", "") in ("1", "true", "True")
        if r.sub is not None:
            verbs = {"GET": "get", "PUT": "update", "PATCH": "patch"}
        elif r.name is None:
            verbs = {"GET": "watch" if watch else "list", "POST": "create",
                     "DELETE": "deletecollection"}
        else:
            verbs = {"GET": "watch" if watch else "get", "PUT": "update", "PATCH": "patch",
                     "DELETE": "delete"}
        if method not in verbs:
            raise apierr.method_not_allowed()
        r.verb = verbs[method]
        if r.verb == "create" and res.namespaced and r.ns is None:
            raise apierr.method_not_allowed()
        return r

    # ---- REST -----------------------------------------------------------------------

    @staticmethod
    def _json(body):
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise apierr.bad_request("the body of the request was in an unknown format - "
                                     "accepted media types include: application/json, "
                                     "application/yaml: %s" % e) from None

    def _selectors(self, req, query):
        try:
            lreqs = labelsel.parse_labels(query.get("labelSelector"))
            freqs = labelsel.parse_fields(query.get("fieldSelector"), req.res)
        except ValueError as e:
            raise apierr.bad_request(str(e)) from None
        if req.name is not None:
            freqs = freqs + [(("metadata", "name"), "=", req.name)]
        return lreqs, freqs

    def _resource(self, method, req, query, body):
        st = self.server.store
        res, ns, name = req.res, req.ns, req.name
        if query.get("dryRun"):
            raise apierr.bad_request("dryRun is not supported by the kvnet test API server")
        if req.verb == "get":
            return 200, st.get(res, ns, name)
        if req.verb == "list":
            lreqs, freqs = self._selectors(req, query)
            limit = query.get("limit") or "0"
            try:
                limit = int(limit)
                if limit < 0:
                    raise ValueError
            except ValueError:
                raise apierr.bad_request('invalid limit "%s"' % query.get("limit")) from None
            cont = query.get("continue") or None
            rvm = query.get("resourceVersionMatch") or None
            rv = query.get("resourceVersion")
            if rvm not in (None, "Exact", "NotOlderThan"):
                raise apierr.bad_request('resourceVersionMatch: Unsupported value: "%s"' % rvm)
            if rvm is not None and not rv:
                raise apierr.bad_request("resourceVersionMatch is forbidden unless "
                                         "resourceVersion is provided")
            if cont is not None and rv:
                raise apierr.bad_request("specifying resource version is not allowed when "
                                         "using continue")
            if rv:
                kstore._parse_rv(rv)
            items, at, token, remaining = st.list(res, ns, lreqs, freqs, limit, cont, rv, rvm)
            return 200, self._list_body(res, items, at, token, remaining)
        if req.verb in ("create", "update"):
            ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0]
            if ctype.strip().lower() != "application/json":
                raise apierr.ApiError(415, "UnsupportedMediaType",
                                      "the body of the request was in an unknown format - "
                                      "accepted media types include: application/json", {})
        if req.verb == "create":
            return 201, st.create(res, ns, self._json(body))
        if req.verb == "update":
            return 200, st.update(res, ns, name, self._json(body), req.sub == "status")
        if req.verb == "patch":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/json-patch+json":
                ptype = "json"
            elif ctype in ("application/merge-patch+json",
                           "application/strategic-merge-patch+json"):
                ptype = "merge"
            else:
                raise apierr.unsupported_media(ctype or "(none)")
            return 200, st.patch(res, ns, name, ptype, self._json(body), req.sub == "status")
        if req.verb == "delete":
            opts = self._delete_options(query, body)
            return st.delete(res, ns, name, opts, opts.get("gracePeriodSeconds"))
        if req.verb == "deletecollection":
            lreqs, freqs = self._selectors(req, query)
            opts = self._delete_options(query, body)
            items, at = st.delete_collection(res, ns, lreqs, freqs,
                                             opts.get("gracePeriodSeconds"))
            return 200, self._list_body(res, items, at, None, None)
        raise apierr.method_not_allowed()

    def _delete_options(self, query, body):
        """DeleteOptions from the body and the query (the query wins, as the real API).
        propagationPolicy/orphanDependents are accepted and ignored: no garbage collector."""
        opts = self._json(body) if body.strip() else {}
        if not isinstance(opts, dict):
            raise apierr.bad_request("json: cannot unmarshal %s into Go value of type "
                                     "v1.DeleteOptions" % type(opts).__name__)
        if query.get("gracePeriodSeconds") not in (None, ""):
            opts["gracePeriodSeconds"] = query["gracePeriodSeconds"]
        g = opts.get("gracePeriodSeconds")
        if g is not None:
            try:
                if isinstance(g, bool):
                    raise ValueError
                opts["gracePeriodSeconds"] = int(g)
            except (TypeError, ValueError):
                raise apierr.bad_request('invalid gracePeriodSeconds "%s"' % g) from None
        pre = opts.get("preconditions")
        if pre is not None and not isinstance(pre, dict):
            raise apierr.bad_request("json: cannot unmarshal preconditions into "
                                     "v1.Preconditions")
        return opts

    @staticmethod
    def _list_body(res, items, at, token, remaining):
        if res.builtin:
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                     for o in items]
        md = {"resourceVersion": str(at)}
        if token:
            md["continue"] = token
        if remaining is not None:
            md["remainingItemCount"] = remaining
        return {"kind": res.kind + "List", "apiVersion": res.api_version, "metadata": md,
                "items": items}

    # ---- watch ----------------------------------------------------------------------

    def _write_chunks(self, data):
        """Write data as HTTP chunks; with splitting on, cut at random points so chunk
        boundaries often fall inside or across events."""
        srv = self.server
        pieces = [data]
        rnd = srv.store.rnd
        if srv.split_chunks and len(data) > 2 and rnd.random() < 0.6:
            n = rnd.randint(1, 3)
            cuts = sorted(rnd.sample(range(1, len(data)), min(n, len(data) - 1)))
            pieces, prev = [], 0
            for c in cuts + [len(data)]:
                pieces.append(data[prev:c])
                prev = c
        for p in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))

    def _watch(self, req, query, method, target):
        srv, st = self.server, self.server.store
        lreqs, freqs = self._selectors(req, query)
        rv = query.get("resourceVersion")
        bookmarks = query.get("allowWatchBookmarks", "") in ("1", "true", "True")
        send_initial = query.get("sendInitialEvents", "") in ("1", "true", "True")
        if send_initial and (query.get("resourceVersionMatch") != "NotOlderThan"):
            raise apierr.invalid("ListOptions", "meta.k8s.io", "", [
                ("resourceVersionMatch", "FieldValueForbidden",
                 "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                 "NotOlderThan")])
        timeout = None
        if query.get("timeoutSeconds"):
            try:
                timeout = float(int(query["timeoutSeconds"]))
            except ValueError:
                raise apierr.bad_request('invalid timeoutSeconds "%s"'
                                         % query["timeoutSeconds"]) from None
        elif srv.opts.watch_timeout:
            timeout = srv.opts.watch_timeout
        drop = srv.faults.take("drop-watch", method, target)
        w = st.watch(req.res, req.ns, lreqs, freqs, rv, send_initial, bookmarks)
        if drop is not None:
            w.drop_after = int(drop.get("afterEvents", 0))
        start = time.monotonic()
        deadline = start + timeout if timeout is not None else None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        next_bm = start + srv.bookmark_interval
        last_check = start
        graceful = True
        try:
            while True:
                if w.drop_after is not None and w.sent >= w.drop_after:
                    raise Dropped()
                out = []
                final = False
                with st.cond:
                    while True:
                        now = time.monotonic()
                        if w.queue or w.dropped or srv.stopping.is_set():
                            break
                        if deadline is not None and now >= deadline:
                            break
                        if bookmarks and now >= next_bm:
                            break
                        wait = 1.0
                        if deadline is not None:
                            wait = min(wait, deadline - now)
                        if bookmarks:
                            wait = min(wait, next_bm - now)
                        st.cond.wait(max(wait, 0.001))
                        if time.monotonic() - last_check >= 1.0:
                            last_check = time.monotonic()
                            if self._client_gone():
                                raise Dropped()
                    if w.dropped == "abrupt":
                        raise Dropped()
                    if w.dropped == "graceful" or srv.stopping.is_set():
                        final = True
                    limit = None if w.drop_after is None else w.drop_after - w.sent
                    while w.queue and (limit is None or len(out) < limit):
                        item = w.queue.popleft()
                        line = self._event_line(w, item)
                        if line is None:
                            continue
                        out.append(line)
                        if isinstance(item, tuple) and item[0] == "ERROR":
                            final = True
                            break
                    now = time.monotonic()
                    if not out and not final and bookmarks and now >= next_bm and not w.queue:
                        out.append(self._bookmark(req.res, st.rv, None))
                    if bookmarks and now >= next_bm:
                        next_bm = now + srv.bookmark_interval
                    if deadline is not None and now >= deadline and not w.queue:
                        final = True
                if out:
                    w.sent += len(out)
                    self._write_chunks(b"".join(out))
                if final:
                    break
        except Dropped:
            graceful = False
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            graceful = False
            self.close_connection = True
        finally:
            st.unwatch(w)
        if graceful:
            try:
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
        else:
            self._drop()

    def _client_gone(self):
        """True when the watching client has closed its end (EOF or close_notify)."""
        sock = self.connection
        try:
            r, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            sock.setblocking(False)
            try:
                return sock.recv(1) == b""
            finally:
                sock.setblocking(True)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True

    def _bookmark(self, res, rv, annotations):
        md = {"resourceVersion": str(rv)}
        if annotations:
            md["annotations"] = annotations
        return go_json({"type": "BOOKMARK", "object": {
            "kind": res.kind, "apiVersion": res.api_version, "metadata": md}})

    def _event_line(self, w, item):
        if isinstance(item, tuple):
            if item[0] == "BOOKMARK":
                return self._bookmark(w.res, item[1], item[2])
            return go_json({"type": "ERROR", "object": item[1]})
        t = w.translate(item)
        if t is None:
            return None
        return go_json({"type": t[0], "object": t[1]})

    # ---- control API ----------------------------------------------------------------

    def _control(self, method, path, query, body):
        srv, st = self.server, self.server.store
        data = self._json(body) if body.strip() else {}
        op = path[len("/_test/"):].strip("/")
        if (op, method) == ("reset", "POST"):
            st.reset()
            srv.faults.clear()
            srv.authz.set([])
            srv.counters.read(reset=True)
            ans = {"resourceVersion": str(st.rv)}
        elif (op, method) == ("compact", "POST"):
            ans = st.compact(data.get("resourceVersion") if isinstance(data, dict) else None)
        elif (op, method) == ("faults", "POST"):
            for r in data if isinstance(data, list) else [data]:
                srv.faults.add(r)
            ans = {"faults": srv.faults.list()}
        elif (op, method) == ("faults", "GET"):
            ans = {"faults": srv.faults.list()}
        elif (op, method) == ("faults", "DELETE"):
            srv.faults.clear()
            ans = {"faults": []}
        elif (op, method) == ("watches/drop", "POST"):
            how = data.get("mode", "abrupt") if isinstance(data, dict) else "abrupt"
            if how not in ("abrupt", "graceful"):
                raise apierr.bad_request('watches/drop: mode must be "abrupt" or "graceful"')
            ans = {"dropped": st.drop_watches(how)}
        elif (op, method) == ("watches", "GET"):
            with st.cond:
                ans = {"watches": len(st.watchers)}
        elif op == "counters" and method in ("GET", "DELETE"):
            reset = method == "DELETE" or query.get("reset", "") in ("1", "true")
            ans = srv.counters.read(reset=reset)
        elif (op, method) == ("load", "POST"):
            items = data.get("items") if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise apierr.bad_request('load: body must be a list of objects or {"items": [...]}')
            replace = isinstance(data, dict) and bool(data.get("replace"))
            objs = st.load(items, replace=replace)
            ans = {"items": objs, "resourceVersion": str(st.rv)}
        elif (op, method) == ("state", "GET"):
            ans = st.dump()
        elif (op, method) == ("config", "POST"):
            if not isinstance(data, dict):
                raise apierr.bad_request("config: body must be an object")
            if "bookmarkIntervalSeconds" in data:
                srv.bookmark_interval = float(data["bookmarkIntervalSeconds"])
            if "splitChunks" in data:
                srv.split_chunks = bool(data["splitChunks"])
            if "expiredReason" in data:
                if data["expiredReason"] not in ("Expired", "Gone"):
                    raise apierr.bad_request('config: expiredReason must be "Expired" or "Gone"')
                st.expired_reason = data["expiredReason"]
            if "gracefulPodDeletion" in data:
                st.graceful_pods = bool(data["gracefulPodDeletion"])
            if "historyWindow" in data:
                with st.cond:
                    st.history_max = max(1, int(data["historyWindow"]))
            ans = self._config()
        elif (op, method) == ("config", "GET"):
            ans = self._config()
        elif (op, method) == ("authz", "POST"):
            srv.authz.set(data.get("deny", []) if isinstance(data, dict) else data)
            ans = {"deny": srv.authz.deny}
        else:
            raise apierr.ApiError(404, "NotFound", "no control operation %s %s" % (method, path),
                                  {})
        self._send_json(200, ans)

    def _config(self):
        srv, st = self.server, self.server.store
        return {"bookmarkIntervalSeconds": srv.bookmark_interval,
                "splitChunks": srv.split_chunks, "expiredReason": st.expired_reason,
                "historyWindow": st.history_max, "gracefulPodDeletion": st.graceful_pods}


# ---- main -----------------------------------------------------------------------------

def _split_listen(s):
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", s) or re.match(r"^([^:]+):(\d+)$", s)
    if not m or int(m.group(2)) > 65535:
        raise SystemExit("kubeapi: --listen %r: want HOST:PORT or [V6]:PORT" % s)
    host, port = m.group(1), int(m.group(2))
    return host, port, socket.AF_INET6 if ":" in host else socket.AF_INET


def main(argv=None):
    ap = argparse.ArgumentParser(description="kvnet test Kubernetes API server")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT ([V6]:PORT); port 0 picks one")
    ap.add_argument("--plain", action="store_true", help="plain HTTP (no TLS)")
    ap.add_argument("--pki", help="directory with ca.crt/server.crt/server.key (made if missing) "
                    "and tokens (used when --token-file is not given)")
    ap.add_argument("--cert", help="server certificate (PEM)")
    ap.add_argument("--key", help="server key (PEM)")
    ap.add_argument("--client-ca", help="CA for client certificates (enables cert auth)")
    ap.add_argument("--token-file", help="bearer tokens, re-read when it changes")
    ap.add_argument("--anonymous", action="store_true", help="accept unauthenticated requests")
    ap.add_argument("--ready-file", help="write {url,host,port,pid} here (atomically) when up")
    ap.add_argument("--history", type=int, default=1000, help="watch event history window")
    ap.add_argument("--bookmark-interval", type=float, default=10.0,
                    help="seconds between BOOKMARK events (real API: about 60)")
    ap.add_argument("--watch-timeout", type=float, default=0,
                    help="end watches without timeoutSeconds after this long (0 = never)")
    ap.add_argument("--no-split", action="store_true", help="one chunk per write, never split")
    ap.add_argument("--seed", type=int, default=None, help="seed for names and chunk splits")
    ap.add_argument("--state", help="keep objects and the resourceVersion counter in this "
                    "file across restarts (an etcd stand-in)")
    ap.add_argument("--immediate-pod-deletion", action="store_true",
                    help="delete scheduled pods at once instead of gracefully")
    ap.add_argument("--fixtures", nargs="*", default=[], help="JSON files to load at start")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args(argv)

    host, port, family = _split_listen(opts.listen)
    tls_ctx = None
    if not opts.plain:
        if opts.pki:
            import pki
            made = pki.ensure(opts.pki, hosts=[host])
            opts.cert = opts.cert or made["server_cert"]
            opts.key = opts.key or made["server_key"]
            opts.client_ca = opts.client_ca or made["ca_cert"]
            opts.token_file = opts.token_file or made["tokens"]
        if not opts.cert or not opts.key:
            raise SystemExit("kubeapi: need --cert and --key (or --pki DIR, or --plain)")
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            tls_ctx.load_cert_chain(opts.cert, opts.key)
        except (OSError, ssl.SSLError) as e:
            raise SystemExit("kubeapi: certificate %s / key %s: %s" % (opts.cert, opts.key, e))
        if opts.client_ca:
            try:
                tls_ctx.load_verify_locations(opts.client_ca)
            except (OSError, ssl.SSLError) as e:
                raise SystemExit("kubeapi: client CA %s: %s" % (opts.client_ca, e))
            tls_ctx.verify_mode = ssl.CERT_OPTIONAL
    elif opts.pki and not opts.token_file:
        import pki
        opts.token_file = pki.ensure(opts.pki, hosts=[host])["tokens"]

    try:
        srv = Server((host, port), family, opts, tls_ctx)
    except OSError as e:
        raise SystemExit("kubeapi: listen %s: %s" % (opts.listen, e.strerror or e))
    srv.store.graceful_pods = not opts.immediate_pod_deletion
    for f in opts.fixtures:
        try:
            with open(f, encoding="utf-8") as fh:
                data = json.load(fh)
            items = data.get("items") if isinstance(data, dict) and "items" in data else (
                data if isinstance(data, list) else [data])
            srv.store.load(items, replace=True)
        except (OSError, ValueError) as e:
            raise SystemExit("kubeapi: fixtures %s: %s" % (f, e))
        except apierr.ApiError as e:
            raise SystemExit("kubeapi: fixtures %s: %s" % (f, e.message))

    bound = srv.server_address
    shown = "[%s]" % bound[0] if family == socket.AF_INET6 else bound[0]
    url = "%s://%s:%d" % ("http" if opts.plain else "https", shown, bound[1])

    def on_term(signum, frame):
        srv.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if opts.ready_file:
        tmp = opts.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"url": url, "host": bound[0], "port": bound[1], "pid": os.getpid()}, f)
        os.rename(tmp, opts.ready_file)
    print("kubeapi listening %s" % url, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.stopping.set()
        with srv.store.cond:
            srv.store.cond.notify_all()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with srv.store.cond:
                if not srv.store.watchers:
                    break
            time.sleep(0.02)
        srv.close_all()
        srv.server_close()
        if opts.ready_file:
            try:
                os.unlink(opts.ready_file)
            except OSError:
                pass
    print("kubeapi stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
