"""store — the object store behind the test API server: one global resourceVersion
counter, a bounded event history, consistent snapshots for paginated lists, and watchers.

All state sits behind one threading.Condition (Store.cond). Stored objects are never
mutated after they are committed: every change builds a new dict, so events and snapshots
can share them. REST semantics (create/update/patch/delete rules of the real API) live
here too, so the HTTP layer (server.py) only parses requests and writes answers.
"""

import collections
import copy
import json
import os
import random
import threading
import time
import uuid

import apierr
import patch as jpatch
import resources
import labelsel

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the real API's generateName alphabet


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Event:
    """One committed change. obj: the object after the change (for DELETED: its last state
    stamped with the deletion's resourceVersion); prev: the object before (None for ADDED)."""
    __slots__ = ("rv", "type", "key", "obj", "prev")

    def __init__(self, rv, etype, key, obj, prev):
        self.rv = rv
        self.type = etype
        self.key = key          # (group, plural, namespace or "", name)
        self.obj = obj
        self.prev = prev


class Watcher:
    """A registered watch: events for one resource (and namespace) queue up here."""

    def __init__(self, res, ns, lreqs, freqs):
        self.res = res
        self.ns = ns                  # None: all namespaces
        self.lreqs = lreqs            # label requirements
        self.freqs = freqs            # field requirements
        self.queue = collections.deque()  # Event, or ("BOOKMARK", rv, annotations), or ("ERROR", status)
        self.dropped = None           # None, "abrupt" or "graceful": set by the control API
        self.drop_after = None        # drop abruptly after this many events (fault injection)
        self.sent = 0                 # events written so far

    def matches(self, obj):
        if obj is None:
            return False
        md = obj.get("metadata", {})
        return (labelsel.match_labels(self.lreqs, md.get("labels"))
                and labelsel.match_fields(self.freqs, obj))

    def translate(self, ev):
        """(type, object) as this watcher must see ev, or None. An object that leaves the
        selector is DELETED (previous content, the event's resourceVersion); one that enters
        it is ADDED — as the real API's watch cache does."""
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if self.matches(ev.obj) else None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if self.matches(ev.obj) else None
        cur, old = self.matches(ev.obj), self.matches(ev.prev)
        if cur and old:
            return ("MODIFIED", ev.obj)
        if cur:
            return ("ADDED", ev.obj)
        if old:
            o = copy.deepcopy(ev.prev)
            o["metadata"]["resourceVersion"] = str(ev.rv)
            return ("DELETED", o)
        return None


def _meta(obj):
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = {}
        obj["metadata"] = md
    return md


_MD_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation",
             "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
             "annotations", "ownerReferences", "finalizers")


def _ordered(obj):
    """The object with keys in the order the real API writes them (kind, apiVersion,
    metadata, spec, status, rest), so dumps look like real answers."""
    out = {}
    for k in ("kind", "apiVersion"):
        if k in obj:
            out[k] = obj[k]
    md = obj.get("metadata", {})
    out["metadata"] = {k: md[k] for k in _MD_ORDER if k in md}
    out["metadata"].update({k: v for k, v in md.items() if k not in out["metadata"]})
    for k in obj:
        if k not in out and k not in ("spec", "status"):
            out[k] = obj[k]
    for k in ("spec", "status"):
        if k in obj:
            out[k] = obj[k]
    return out


_MD_STRINGS = ("name", "generateName", "namespace", "uid", "resourceVersion",
               "creationTimestamp", "deletionTimestamp", "selfLink")


def _go_type(v):
    return {dict: "object", list: "array", str: "string", bool: "bool",
            type(None): "null"}.get(type(v), "number")


def check_types(obj):
    """Raise 400 where the real API's JSON decoder would fail on the object's metadata
    (wrong JSON types), with a message shaped like Go's."""
    if not isinstance(obj, dict):
        raise apierr.bad_request("json: cannot unmarshal %s into Go value of type "
                                 "map[string]interface {}" % _go_type(obj))
    for f in ("apiVersion", "kind"):
        if f in obj and not isinstance(obj[f], str):
            raise apierr.bad_request("json: cannot unmarshal %s into Go struct field "
                                     "TypeMeta.%s of type string" % (_go_type(obj[f]), f))
    md = obj.get("metadata")
    if md is None:
        return
    if not isinstance(md, dict):
        raise apierr.bad_request("json: cannot unmarshal %s into Go struct field "
                                 ".metadata of type v1.ObjectMeta" % _go_type(md))

    def bad(field, v, want):
        raise apierr.bad_request("json: cannot unmarshal %s into Go struct field "
                                 "ObjectMeta.metadata.%s of type %s" % (_go_type(v), field, want))
    for f in _MD_STRINGS:
        if md.get(f) is not None and not isinstance(md[f], str):
            bad(f, md[f], "string")
    if md.get("generation") is not None and (not isinstance(md["generation"], int)
                                             or isinstance(md["generation"], bool)):
        bad("generation", md["generation"], "int64")
    for f in ("labels", "annotations"):
        v = md.get(f)
        if v is None:
            continue
        if not isinstance(v, dict):
            bad(f, v, "map[string]string")
        for x in v.values():
            if not isinstance(x, str):
                bad(f, x, "string")
    for f, item in (("finalizers", str), ("ownerReferences", dict)):
        v = md.get(f)
        if v is None:
            continue
        if not isinstance(v, list):
            bad(f, v, "[]" + ("string" if item is str else "v1.OwnerReference"))
        for x in v:
            if not isinstance(x, item):
                bad(f, x, "string" if item is str else "v1.OwnerReference")


def validate_labels(res, md):
    """422 Invalid for label keys/values the real API rejects."""
    name = md.get("name") or ""
    for k, v in (md.get("labels") or {}).items():
        try:
            labelsel.check_key(k)
        except ValueError:
            raise apierr.invalid(res.kind, res.group, name, [
                ("metadata.labels", "FieldValueInvalid",
                 'Invalid value: "%s": name part must consist of alphanumeric characters, '
                 "'-', '_' or '.', and must start and end with an alphanumeric character" % k)]
            ) from None
        try:
            labelsel.check_value(v)
        except ValueError:
            raise apierr.invalid(res.kind, res.group, name, [
                ("metadata.labels", "FieldValueInvalid",
                 'Invalid value: "%s": a valid label must be an empty string or consist of '
                 "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                 "alphanumeric character" % v)]) from None


def _strip_for_compare(obj, drop_status):
    o = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    if drop_status:
        o.pop("status", None)
    return o


def _same_but_rv(a, b):
    a2 = dict(a)
    b2 = dict(b)
    a2["metadata"] = {k: v for k, v in a["metadata"].items() if k != "resourceVersion"}
    b2["metadata"] = {k: v for k, v in b["metadata"].items() if k != "resourceVersion"}
    return a2 == b2


class Store:
    def __init__(self, history=1000, initial_rv=100, seed=None):
        self.cond = threading.Condition()
        self.registry = resources.Registry()
        self.rv = initial_rv            # the global resourceVersion counter
        self.objects = {}               # (group, plural) -> {(ns, name): obj}
        self.history = collections.deque()  # Event, oldest first
        self.history_max = history      # events kept for watch-from-rv and snapshots
        self.oldest = initial_rv        # a watch/snapshot from rv >= oldest is servable
        self.watchers = set()
        self.expired_reason = "Expired"  # or "Gone" (older servers), settable for tests
        self.graceful_pods = True       # pod DELETE is graceful as with a real kubelet
        self.rnd = random.Random(seed)
        self.state_path = None          # persist every commit here (etcd stand-in), or None
        with self.cond:
            self._init_namespaces()

    # ---- persistence (--state): a restarted server keeps its data, like etcd -------------

    def persist_to(self, path):
        """Load the state saved at path (if any) and save every later commit there, so a
        server restarted with the same file keeps its objects and resourceVersion counter.
        The watch history is not kept: a watch from before the restart gets 410 Expired,
        as from a real API server whose watch cache was rebuilt."""
        with self.cond:
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    d = json.load(f)
                self.objects.clear()
                for o in d["objects"]:
                    res = self._res_for_kind(o.get("apiVersion", ""), o.get("kind", ""))
                    if res is None:
                        continue
                    md = _meta(o)
                    ns = md.get("namespace", "") if res.namespaced else ""
                    self._bucket(res)[(ns, md["name"])] = o
                    if res.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                        self._crd_register(o)
                self.rv = int(d["resourceVersion"])
                self.oldest = self.rv
                self.history.clear()
            self.state_path = path
            self._persist()

    def _persist(self):
        if not self.state_path:
            return
        d = {"resourceVersion": str(self.rv),
             "objects": [o for b in self.objects.values() for o in b.values()]}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(d, f)
        os.replace(tmp, self.state_path)

    # ---- plumbing -------------------------------------------------------------------

    def _init_namespaces(self):
        ns = self.registry.by_key[("", "namespaces")]
        for n in DEFAULT_NAMESPACES:
            self._commit_put(ns, "", n, {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": n, "uid": str(uuid.uuid4()),
                             "creationTimestamp": now_rfc3339(),
                             "labels": {"kubernetes.io/metadata.name": n}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, None)

    def _bucket(self, res):
        return self.objects.setdefault(res.key, {})

    def _record(self, ev):
        self.history.append(ev)
        while len(self.history) > self.history_max:
            self.oldest = self.history.popleft().rv
        for w in self.watchers:
            if w.res.key == ev.key[:2] and (w.ns is None or w.ns == ev.key[2]):
                w.queue.append(ev)
        self.cond.notify_all()

    def _commit_put(self, res, ns, name, obj, prev):
        """Store obj (new dict, not shared with the caller) as ADDED/MODIFIED."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        _meta(obj)["resourceVersion"] = str(self.rv)
        obj = _ordered(obj)
        self._bucket(res)[(ns, name)] = obj
        self._record(Event(self.rv, "MODIFIED" if prev is not None else "ADDED",
                           (res.group, res.plural, ns, name), obj, prev))
        self._persist()
        return obj

    def _commit_delete(self, res, ns, name, last):
        """Remove the object; last is its final content (stamped with the deletion rv)."""
        self.rv += 1
        prev = self._bucket(res).pop((ns, name))
        last = copy.deepcopy(last)
        _meta(last)["resourceVersion"] = str(self.rv)
        self._record(Event(self.rv, "DELETED", (res.group, res.plural, ns, name), last, prev))
        if res.crd is None and res.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._crd_gone(last)
        if res.namespaced:
            self._maybe_finish_namespace(ns)
        self._persist()
        return last

    def _ns_key(self, res, ns):
        return ns if res.namespaced else ""

    def get_obj(self, res, ns, name):
        return self._bucket(res).get((self._ns_key(res, ns), name))

    # ---- control --------------------------------------------------------------------

    def reset(self):
        """Drop every object, CRD and watch; the resourceVersion counter keeps growing."""
        with self.cond:
            for w in self.watchers:
                w.dropped = "abrupt"
            self.watchers.clear()
            self.objects.clear()
            self.history.clear()
            self.registry.reset()
            self.oldest = self.rv
            self._init_namespaces()
            self.cond.notify_all()

    def compact(self, rv=None):
        """Forget history up to rv (default: now): watches and paginated lists from an
        older resourceVersion get 410 Expired."""
        with self.cond:
            upto = self.rv if rv is None else min(int(rv), self.rv)
            while self.history and self.history[0].rv <= upto:
                self.history.popleft()
            self.oldest = max(self.oldest, upto)
            return {"compactedResourceVersion": str(self.oldest),
                    "resourceVersion": str(self.rv)}

    def drop_watches(self, how="abrupt"):
        with self.cond:
            n = len(self.watchers)
            for w in self.watchers:
                w.dropped = how
            self.cond.notify_all()
            return n

    def load(self, objs, replace=False):
        """Bulk-load fixture objects as they are (uid, creationTimestamp and status kept;
        resourceVersion assigned fresh); missing namespaces are created. Returns the
        stored objects."""
        out = []
        with self.cond:
            for o in objs:
                check_types(o)
                av, kind = o.get("apiVersion", ""), o.get("kind", "")
                res = self._res_for_kind(av, kind)
                if res is None:
                    raise apierr.bad_request('load: no resource for apiVersion "%s" kind "%s"'
                                             % (av, kind))
                o = copy.deepcopy(o)
                md = _meta(o)
                name = md.get("name")
                if not name:
                    raise apierr.bad_request("load: %s without metadata.name" % kind)
                ns = (md.get("namespace") or "default") if res.namespaced else ""
                if res.namespaced:
                    md["namespace"] = ns
                    self._ensure_namespace(ns)
                else:
                    md.pop("namespace", None)
                md.setdefault("uid", str(uuid.uuid4()))
                md.setdefault("creationTimestamp", now_rfc3339())
                md.setdefault("generation", 1)
                md.pop("resourceVersion", None)
                prev = self._bucket(res).get((ns, name))
                if prev is not None and not replace:
                    raise apierr.already_exists(res.plural, res.group, name)
                if res.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                    self._crd_register(o)
                out.append(self._commit_put(res, ns, name, o, prev))
        return out

    def _ensure_namespace(self, ns):
        nsres = self.registry.by_key[("", "namespaces")]
        if ("", ns) not in self._bucket(nsres):
            self._commit_put(nsres, "", ns, {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": str(uuid.uuid4()),
                             "creationTimestamp": now_rfc3339(),
                             "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, None)

    def _res_for_kind(self, api_version, kind):
        for r in self.registry.by_key.values():
            if r.api_version == api_version and r.kind == kind:
                return r
        return None

    def dump(self):
        with self.cond:
            return {"resourceVersion": str(self.rv), "oldest": str(self.oldest),
                    "watchers": len(self.watchers),
                    "objects": [o for b in self.objects.values() for o in b.values()]}

    # ---- CRDs -----------------------------------------------------------------------

    def _crd_register(self, crd):
        try:
            res = resources.from_crd(crd)
        except ValueError as e:
            name = crd.get("metadata", {}).get("name", "")
            raise apierr.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name,
                                 [("spec", "FieldValueInvalid", str(e))]) from None
        self.registry.add_crd(res)
        return res

    def _crd_gone(self, crd):
        try:
            res = resources.from_crd(crd)
        except ValueError:
            return
        cur = self.registry.by_key.get(res.key)
        if cur is None or cur.crd != res.crd:
            return
        for (ns, name), obj in list(self._bucket(cur).items()):
            self._commit_delete(cur, ns, name, obj)
        self.objects.pop(res.key, None)
        for w in list(self.watchers):
            if w.res.key == res.key:
                w.dropped = "graceful"
        self.registry.remove_crd(res.key)

    # ---- namespaces -----------------------------------------------------------------

    def _namespace_live(self, ns):
        """Raise unless namespace ns exists and is not terminating."""
        nsobj = self._bucket(self.registry.by_key[("", "namespaces")]).get(("", ns))
        if nsobj is None:
            raise apierr.not_found("namespaces", "", ns)
        return nsobj

    def _ns_has_content(self, ns):
        for key, bucket in self.objects.items():
            r = self.registry.by_key.get(key)
            if r is not None and r.namespaced and any(k[0] == ns for k in bucket):
                return True
        return False

    def _maybe_finish_namespace(self, ns):
        nsres = self.registry.by_key[("", "namespaces")]
        nsobj = self._bucket(nsres).get(("", ns))
        if (nsobj is not None and nsobj["metadata"].get("deletionTimestamp")
                and not nsobj["metadata"].get("finalizers") and not self._ns_has_content(ns)):
            self._commit_delete(nsres, "", ns, nsobj)

    # ---- REST verbs -----------------------------------------------------------------

    def get(self, res, ns, name):
        with self.cond:
            obj = self.get_obj(res, ns, name)
            if obj is None:
                raise apierr.not_found(res.plural, res.group, name)
            return obj

    def _snapshot(self, res, at):
        """{(ns, name): obj} for res as it was at resourceVersion at."""
        if at < self.oldest:
            raise apierr.expired("too old resource version: %d (%d)" % (at, self.oldest),
                                 self.expired_reason)
        if at > self.rv:
            raise apierr.ApiError(504, "Timeout", "Too large resource version: %d, current: %d"
                                  % (at, self.rv), {"causes": [{"reason":
                                                                "ResourceVersionTooLarge",
                                                                "message": "Too large resource version"}],
                                                    "retryAfterSeconds": 1})
        state = dict(self._bucket(res))
        for ev in reversed(self.history):
            if ev.rv <= at:
                break
            if ev.key[:2] != res.key:
                continue
            k = ev.key[2:]
            if ev.prev is None:
                state.pop(k, None)
            else:
                state[k] = ev.prev
        return state

    def list(self, res, ns, lreqs, freqs, limit=0, cont=None, rv=None, rv_match=None):
        """The items, list resourceVersion, continue token and remaining count."""
        with self.cond:
            start_after = None
            if cont is not None:
                at, start_after = decode_continue(cont)
                try:
                    state = self._snapshot(res, at)
                except apierr.ApiError as e:
                    if e.code == 410:
                        raise apierr.expired(
                            "The provided continue parameter is too old to display a consistent "
                            "list result. You can start a new list without the continue "
                            "parameter, or use the continue token in this response to retrieve "
                            "the remainder of the results. Continuing with the provided token "
                            "results in an inconsistent list - objects that were created, "
                            "modified, or deleted between the time the first chunk was "
                            "returned and now may show up in the list.",
                            self.expired_reason) from None
                    raise
            elif rv_match == "Exact":
                at = _parse_rv(rv)
                state = self._snapshot(res, at)
            else:
                at = self.rv
                state = self._bucket(res)
            keys = sorted((k for k in state if ns is None or k[0] == ns), key=_skey)
            if start_after is not None:
                keys = [k for k in keys if _skey(k) > start_after]
            items, next_key, taken = [], None, 0
            for i, k in enumerate(keys):
                obj = state[k]
                md = obj.get("metadata", {})
                if not (labelsel.match_labels(lreqs, md.get("labels"))
                        and labelsel.match_fields(freqs, obj)):
                    continue
                if limit and taken == limit:
                    next_key = True
                    break
                items.append(obj)
                taken += 1
                last_index = i
            token, remaining = None, None
            if next_key is not None:
                token = encode_continue(at, _skey(keys[last_index]))
                if not lreqs and not freqs:
                    remaining = len(keys) - last_index - 1
            return items, at, token, remaining

    def _prepare_create(self, res, ns, obj):
        check_types(obj)
        obj = copy.deepcopy(obj)
        av = obj.get("apiVersion")
        if av and av != res.api_version:
            raise apierr.bad_request("the API version in the data (%s) does not match the "
                                     "expected API version (%s)" % (av, res.api_version))
        kind = obj.get("kind")
        if kind and kind != res.kind:
            raise apierr.bad_request("the kind in the data (%s) does not match the expected "
                                     "kind (%s)" % (kind, res.kind))
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        md = _meta(obj)
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise apierr.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        validate_labels(res, md)
        return obj

    def _validate_name(self, res, name):
        limit = 63 if res.name_re is resources.DNS_LABEL else 253
        if len(name) > limit or not res.name_re.match(name):
            what = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character"
                    if res.name_re is resources.DNS_LABEL else
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric "
                    "character")
            raise apierr.invalid(res.kind, res.group, name, [
                ("metadata.name", "FieldValueInvalid", 'Invalid value: "%s": %s' % (name, what))])

    def create(self, res, ns, body):
        obj = self._prepare_create(res, ns, body)
        md = obj["metadata"]
        if md.get("resourceVersion"):
            raise apierr.internal("resourceVersion should not be set on objects to be created")
        with self.cond:
            nsk = self._ns_key(res, ns)
            if res.namespaced:
                nsobj = self._namespace_live(ns)
                if nsobj["metadata"].get("deletionTimestamp"):
                    raise apierr.ApiError(403, "Forbidden",
                                          '%s "%s" is forbidden: unable to create new content in '
                                          'namespace %s because it is being terminated'
                                          % (res.plural, md.get("name") or md.get("generateName", ""),
                                             ns),
                                          {"name": md.get("name", ""), "kind": res.plural})
            name = md.get("name")
            if not name:
                gen = md.get("generateName")
                if not gen:
                    raise apierr.invalid(res.kind, res.group, "", [
                        ("metadata.name", "FieldValueRequired",
                         "Required value: name or generateName is required")])
                for _ in range(100):
                    name = gen[:max(0, 63 - 5)] + "".join(
                        self.rnd.choice(_GEN_CHARS) for _ in range(5))
                    if (nsk, name) not in self._bucket(res):
                        break
                md["name"] = name
            self._validate_name(res, name)
            if (nsk, name) in self._bucket(res):
                raise apierr.already_exists(res.plural, res.group, name)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            md["generation"] = 1
            for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                      "managedFields"):
                md.pop(f, None)
            if res.status:
                if res.create_status == "pod":
                    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
                elif res.create_status == "namespace":
                    obj["status"] = {"phase": "Active"}
                elif res.create_status == "drop":
                    obj.pop("status", None)
            if res.key == ("", "namespaces"):
                md.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
                obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            if res.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                r = self._crd_register(obj)
                names = copy.deepcopy(obj.get("spec", {}).get("names", {}))
                names.setdefault("singular", r.singular)
                names.setdefault("listKind", r.kind + "List")
                t = now_rfc3339()
                obj["status"] = {"acceptedNames": names, "storedVersions": [r.version],
                                 "conditions": [
                                     {"type": "NamesAccepted", "status": "True",
                                      "reason": "NoConflicts", "lastTransitionTime": t,
                                      "message": "no conflicts found"},
                                     {"type": "Established", "status": "True",
                                      "reason": "InitialNamesAccepted",
                                      "lastTransitionTime": t,
                                      "message": "the initial names have been accepted"}]}
            return self._commit_put(res, nsk, name, obj, None)

    def _finish_update(self, res, old, new, status_only):
        """Apply the real API's update rules to new (a fresh dict) against old and commit.
        Returns the stored object."""
        omd, nmd = old["metadata"], _meta(new)
        new["apiVersion"] = res.api_version
        new["kind"] = res.kind
        for f in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation"):
            if f in omd:
                nmd[f] = omd[f]
            else:
                nmd.pop(f, None)
        nmd.pop("selfLink", None)
        if status_only:
            st = new.get("status")
            new = copy.deepcopy(old)
            if st is None:
                new.pop("status", None)
            else:
                new["status"] = st
        elif res.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        md = new["metadata"]
        name = md["name"]
        validate_labels(res, md)
        fin = md.get("finalizers") or []
        if omd.get("deletionTimestamp"):
            added = [f for f in fin if f not in (omd.get("finalizers") or [])]
            if added:
                raise apierr.invalid(res.kind, res.group, name, [
                    ("metadata.finalizers", "FieldValueForbidden",
                     "Forbidden: no new finalizers can be added if the object is being deleted, "
                     "found new finalizers %s" % json.dumps(added))])
        if not status_only:
            drop = res.status
            if _strip_for_compare(new, drop) != _strip_for_compare(old, drop):
                md["generation"] = int(omd.get("generation", 1)) + 1
        if _same_but_rv(new, old):
            return old
        nsk = md.get("namespace", "") if res.namespaced else ""
        if (md.get("deletionTimestamp") and not md.get("finalizers")
                and not md.get("deletionGracePeriodSeconds")):
            return self._commit_delete(res, nsk, name, new)
        return self._commit_put(res, nsk, name, new, old)

    def update(self, res, ns, name, body, status_only=False):
        check_types(body)
        body = copy.deepcopy(body)
        md = _meta(body)
        if md.get("name") is not None and md.get("name") != name:
            raise apierr.bad_request("the name of the object (%s) does not match the name on "
                                     "the URL (%s)" % (md.get("name"), name))
        if res.namespaced and md.get("namespace") and md["namespace"] != ns:
            raise apierr.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        av, kind = body.get("apiVersion"), body.get("kind")
        if av and av != res.api_version:
            raise apierr.bad_request("the API version in the data (%s) does not match the "
                                     "expected API version (%s)" % (av, res.api_version))
        if kind and kind != res.kind:
            raise apierr.bad_request("the kind in the data (%s) does not match the expected "
                                     "kind (%s)" % (kind, res.kind))
        with self.cond:
            old = self.get_obj(res, ns, name)
            if old is None:
                raise apierr.not_found(res.plural, res.group, name)
            rv = md.get("resourceVersion")
            if rv:
                if rv != old["metadata"]["resourceVersion"]:
                    raise apierr.conflict_modified(res.plural, res.group, name)
            elif not res.allow_unconditional_update:
                raise apierr.invalid(res.kind, res.group, name, [
                    ("metadata.resourceVersion", "FieldValueInvalid",
                     "Invalid value: 0x0: must be specified for an update")])
            uid = md.get("uid")
            if uid and uid != old["metadata"].get("uid"):
                raise apierr.conflict(res.plural, res.group, name,
                                      "Precondition failed: UID in precondition: %s, UID in "
                                      "object meta: %s" % (uid, old["metadata"].get("uid")))
            return self._finish_update(res, old, body, status_only)

    def patch(self, res, ns, name, ptype, doc, status_only=False):
        with self.cond:
            old = self.get_obj(res, ns, name)
            if old is None:
                raise apierr.not_found(res.plural, res.group, name)
            if ptype == "json":
                try:
                    new = jpatch.json_patch(old, doc)
                except jpatch.PatchError as e:
                    raise apierr.unprocessable(str(e)) from None
                except ValueError as e:
                    raise apierr.bad_request(str(e)) from None
            else:
                if not isinstance(doc, dict):
                    raise apierr.bad_request("json: cannot unmarshal %s into Go value of type "
                                             "map[string]interface {}" % type(doc).__name__)
                new = jpatch.merge_patch(old, doc)
            check_types(new)
            md = _meta(new)
            rv = md.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise apierr.conflict_modified(res.plural, res.group, name)
            uid = md.get("uid")
            if uid and uid != old["metadata"].get("uid"):
                raise apierr.conflict(res.plural, res.group, name,
                                      "Precondition failed: UID in precondition: %s, UID in "
                                      "object meta: %s" % (uid, old["metadata"].get("uid")))
            if md.get("name") != name:
                raise apierr.invalid(res.kind, res.group, name, [
                    ("metadata.name", "FieldValueInvalid",
                     'Invalid value: "%s": field is immutable' % md.get("name"))])
            return self._finish_update(res, old, new, status_only)

    def delete(self, res, ns, name, opts, grace=None):
        """(http code, answer): the object, or a Status for types that answer that way.
        grace: gracePeriodSeconds from the query or DeleteOptions (pods only), or None."""
        pre = (opts or {}).get("preconditions") or {}
        with self.cond:
            old = self.get_obj(res, ns, name)
            if old is None:
                raise apierr.not_found(res.plural, res.group, name)
            return self._delete_locked(res, old, pre, grace)

    def _pod_grace(self, pod, grace):
        """Seconds of graceful deletion the real API gives this pod: 0 when it is not
        scheduled or already terminal, else the asked-for period, else
        spec.terminationGracePeriodSeconds, else 30."""
        if not self.graceful_pods:
            return 0
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if grace is not None:
            return max(int(grace), 0) if int(grace) >= 0 else 1
        tg = spec.get("terminationGracePeriodSeconds")
        return tg if isinstance(tg, int) and not isinstance(tg, bool) and tg >= 0 else 30

    def _delete_locked(self, res, old, pre, grace=None, immediate=False):
        omd = old["metadata"]
        name = omd["name"]
        nsk = omd.get("namespace", "") if res.namespaced else ""
        if pre.get("uid") and pre["uid"] != omd.get("uid"):
            raise apierr.conflict(res.plural, res.group, name,
                                  "Precondition failed: UID in precondition: %s, UID in object "
                                  "meta: %s" % (pre["uid"], omd.get("uid")))
        if pre.get("resourceVersion") and pre["resourceVersion"] != omd.get("resourceVersion"):
            raise apierr.conflict(res.plural, res.group, name,
                                  "Precondition failed: ResourceVersion in precondition: %s, "
                                  "ResourceVersion in object meta: %s"
                                  % (pre["resourceVersion"], omd.get("resourceVersion")))
        if res.key == ("", "namespaces"):
            return self._delete_namespace(res, old)
        g = 0 if immediate or res.key != ("", "pods") else self._pod_grace(old, grace)
        if g > 0:
            # graceful: the pod stays, terminating, until the kubelet deletes it with
            # gracePeriodSeconds=0; a second delete may only shorten the period
            cur = omd.get("deletionGracePeriodSeconds")
            if omd.get("deletionTimestamp") and cur is not None and cur <= g:
                return 200, old
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + g))
            new["metadata"]["deletionGracePeriodSeconds"] = g
            return 200, self._commit_put(res, nsk, name, new, old)
        if omd.get("finalizers"):
            if omd.get("deletionTimestamp") and omd.get("deletionGracePeriodSeconds") == 0:
                return 200, old
            new = copy.deepcopy(old)
            if not omd.get("deletionTimestamp"):
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return 200, self._commit_put(res, nsk, name, new, old)
        last = self._commit_delete(res, nsk, name, old)
        if res.return_deleted:
            return 200, last
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": res.group, "kind": res.plural,
                                 "uid": omd.get("uid")}}

    def _delete_namespace(self, res, old):
        """The namespace turns Terminating, its contents are deleted (finalizers honoured);
        it vanishes when it is empty and has no metadata.finalizers."""
        name = old["metadata"]["name"]
        cur = old
        if not old["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            cur = self._commit_put(res, "", name, new, old)
        for key in list(self.objects):
            r = self.registry.by_key.get(key)
            if r is None or not r.namespaced:
                continue
            for (ons, oname), obj in sorted(self.objects[key].items()):
                if ons == name:
                    self._delete_locked(r, obj, {}, immediate=True)
        final = self._bucket(res).get(("", name))
        if final is None:
            return 200, self._last_deleted(res, name, cur)
        self._maybe_finish_namespace(name)
        final = self._bucket(res).get(("", name))
        return 200, final if final is not None else self._last_deleted(res, name, cur)

    def _last_deleted(self, res, name, fallback):
        for ev in reversed(self.history):
            if ev.type == "DELETED" and ev.key == (res.group, res.plural, "", name):
                return ev.obj
        return fallback

    def delete_collection(self, res, ns, lreqs, freqs, grace=None):
        with self.cond:
            out = []
            for (ons, name), obj in sorted(self._bucket(res).items(), key=lambda kv: _skey(kv[0])):
                if ns is not None and ons != ns:
                    continue
                md = obj.get("metadata", {})
                if not (labelsel.match_labels(lreqs, md.get("labels"))
                        and labelsel.match_fields(freqs, obj)):
                    continue
                _, ans = self._delete_locked(res, obj, {}, grace)
                out.append(ans if ans.get("kind") != "Status" else obj)
            return out, self.rv

    # ---- watch ----------------------------------------------------------------------

    def watch(self, res, ns, lreqs, freqs, rv, send_initial=False, bookmarks=False):
        """Register a watcher. Its queue starts with the initial events: synthetic ADDED
        for the current state (rv absent/"0" or sendInitialEvents), or the history after
        rv, or a single 410 ERROR when rv is older than the history window."""
        with self.cond:
            w = Watcher(res, ns, lreqs, freqs)
            if send_initial or rv in (None, "", "0"):
                for (ons, name), obj in sorted(self._bucket(res).items(),
                                               key=lambda kv: _skey(kv[0])):
                    if ns is None or ons == ns:
                        w.queue.append(Event(int(obj["metadata"]["resourceVersion"]), "ADDED",
                                             res.key + (ons, name), obj, None))
                if send_initial and bookmarks:
                    w.queue.append(("BOOKMARK", self.rv, {"k8s.io/initial-events-end": "true"}))
            else:
                at = _parse_rv(rv)
                if at < self.oldest:
                    e = apierr.expired("too old resource version: %d (%d)" % (at, self.oldest),
                                       self.expired_reason)
                    w.queue.append(("ERROR", e.status()))
                    return w
                for ev in self.history:
                    if ev.rv > at and ev.key[:2] == res.key and (ns is None or ev.key[2] == ns):
                        w.queue.append(ev)
            self.watchers.add(w)
            return w

    def unwatch(self, w):
        with self.cond:
            self.watchers.discard(w)


def _skey(k):
    """The storage key order of the real API (etcd keys .../NAMESPACE/NAME as strings)."""
    return k[0] + "/" + k[1] if k[0] else k[1]


def _parse_rv(rv):
    try:
        n = int(rv)
        if n < 0:
            raise ValueError
        return n
    except (TypeError, ValueError):
        raise apierr.bad_request('invalid resource version "%s"' % rv) from None


def encode_continue(rv, start_after):
    import base64
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_after + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token):
    import base64
    try:
        pad = "=" * (-len(token) % 4)
        d = json.loads(base64.urlsafe_b64decode(token + pad))
        if d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int):
            raise ValueError("unknown version")
        start = d["start"]
        if not isinstance(start, str) or not start.endswith("\x00"):
            raise ValueError("bad start key")
        return d["rv"], start[:-1]
    except (ValueError, KeyError, TypeError) as e:
        raise apierr.bad_request("continue key is not valid: %s" % e) from None
