"""resources — the table of resources the test API server serves.

A Resource says where a kind lives (group, version, plural), whether it is namespaced,
whether it has a status subresource, and the few per-type behaviours of the real API that
kvnet can observe: built-in types drop kind/apiVersion from list items and (pods, nodes,
namespaces, ...) answer DELETE with the object; custom resources need a resourceVersion on
update and answer DELETE with a Status.

CustomResourceDefinitions posted to /apis/apiextensions.k8s.io/v1/customresourcedefinitions
become Resources too (registry.from_crd); they replace a built-in entry of the same
group/plural, so the project's own CRD manifests are the truth for kvnet.io types.
"""

import json
import re

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# field selectors supported per kind beyond metadata.name / metadata.namespace
POD_FIELDS = {
    "spec.nodeName": ("spec", "nodeName"),
    "spec.restartPolicy": ("spec", "restartPolicy"),
    "spec.schedulerName": ("spec", "schedulerName"),
    "spec.serviceAccountName": ("spec", "serviceAccountName"),
    "spec.hostNetwork": ("spec", "hostNetwork"),
    "status.phase": ("status", "phase"),
    "status.podIP": ("status", "podIP"),
    "status.nominatedNodeName": ("status", "nominatedNodeName"),
}
NODE_FIELDS = {"spec.unschedulable": ("spec", "unschedulable")}
NS_FIELDS = {"status.phase": ("status", "phase")}


class Resource:
    """One servable resource type."""

    def __init__(self, group, version, plural, kind, namespaced, status=False, builtin=False,
                 singular=None, short=(), return_deleted=False, fields=None,
                 create_status="drop", name_re=DNS_SUBDOMAIN, crd=None, schema=None):
        self.group = group                  # "" for core
        self.version = version              # served version
        self.plural = plural                # URL segment
        self.kind = kind                    # Kind
        self.namespaced = namespaced        # namespaced or cluster-scoped
        self.status = status                # has the status subresource
        self.builtin = builtin              # compiled-in type (list items lack kind/apiVersion)
        self.singular = singular or kind.lower()
        self.short = list(short)            # short names for discovery
        self.return_deleted = return_deleted  # DELETE answers with the object, not a Status
        self.fields = dict(fields or {})    # extra field selector labels -> path
        self.create_status = create_status  # on create: "drop", "keep", "pod" (phase Pending)
        self.name_re = name_re              # name validation
        self.crd = crd                      # name of the CRD that made this resource, if any
        self.schema = schema                # the CRD's openAPIV3Schema (served as OpenAPI v3)

    @property
    def api_version(self):
        return self.version if not self.group else self.group + "/" + self.version

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def allow_unconditional_update(self):
        """Built-in types accept a PUT without resourceVersion; custom resources do not."""
        return self.builtin

    def discovery(self):
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                 "watch"]
        out = [{"name": self.plural, "singularName": self.singular,
                "namespaced": self.namespaced, "kind": self.kind, "verbs": verbs}]
        if self.short:
            out[0]["shortNames"] = self.short
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind,
                        "verbs": ["get", "patch", "update"]})
        return out


def builtin_resources():
    R = Resource
    return [
        R("", "v1", "pods", "Pod", True, status=True, builtin=True, short=["po"],
          return_deleted=True, fields=POD_FIELDS, create_status="pod"),
        R("", "v1", "nodes", "Node", False, status=True, builtin=True, short=["no"],
          return_deleted=True, fields=NODE_FIELDS, create_status="keep"),
        R("", "v1", "namespaces", "Namespace", False, status=True, builtin=True, short=["ns"],
          return_deleted=True, fields=NS_FIELDS, create_status="namespace", name_re=DNS_LABEL),
        R("", "v1", "configmaps", "ConfigMap", True, builtin=True, short=["cm"],
          return_deleted=False),
        R("", "v1", "services", "Service", True, status=True, builtin=True, short=["svc"],
          return_deleted=True, name_re=DNS_LABEL),
        R("", "v1", "events", "Event", True, builtin=True, short=["ev"]),
        R("coordination.k8s.io", "v1", "leases", "Lease", True, builtin=True),
        # what dist/ manifests hold (test/dist/test_kubectl.py applies them with kubectl):
        # stored and served like any object, no controller behind them
        R("", "v1", "serviceaccounts", "ServiceAccount", True, builtin=True, short=["sa"]),
        R("apps", "v1", "daemonsets", "DaemonSet", True, status=True, builtin=True,
          short=["ds"]),
        R("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False,
          builtin=True),
        R("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
          False, builtin=True),
        R("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, builtin=True,
          short=["netpol"]),
        R("apiextensions.k8s.io", "v1", "customresourcedefinitions",
          "CustomResourceDefinition", False, status=True, builtin=True, short=["crd", "crds"],
          return_deleted=True, create_status="drop"),
        # KubeVirt's own CRDs: the VMI has NO status subresource (virt-controller and
        # virt-handler write the whole object); VM and VMIM have one.
        R("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance", True,
          status=False, singular="virtualmachineinstance", short=["vmi", "vmis"]),
        R("kubevirt.io", "v1", "virtualmachines", "VirtualMachine", True, status=True,
          short=["vm", "vms"]),
        R("kubevirt.io", "v1", "virtualmachineinstancemigrations",
          "VirtualMachineInstanceMigration", True, status=True, short=["vmim", "vmims"]),
        R("kvnet.io", "v1", "ippools", "IPPool", False),
        R("kvnet.io", "v1", "ipamblocks", "IPAMBlock", False),
        R("kvnet.io", "v1", "ipamhandles", "IPAMHandle", False),
        R("kvnet.io", "v1", "ipamconfigs", "IPAMConfig", False),
        R("kvnet.io", "v1", "l2networks", "L2Network", False, status=True),
        # the Network Plumbing WG's MultiNetworkPolicy (dist/crds/multi-networkpolicies.yaml)
        R("k8s.cni.cncf.io", "v1beta1", "multi-networkpolicies", "MultiNetworkPolicy", True,
          short=["multi-policy"]),
    ]


def from_crd(crd):
    """The Resource a CRD object describes, or raise ValueError saying what is missing."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    plural = names.get("plural")
    kind = names.get("kind")
    scope = spec.get("scope")
    if not group or not plural or not kind:
        raise ValueError("spec.group, spec.names.plural and spec.names.kind are required")
    if scope not in ("Namespaced", "Cluster"):
        raise ValueError('spec.scope must be "Namespaced" or "Cluster"')
    served = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not served:
        raise ValueError("spec.versions must name at least one served version")
    storage = [v for v in served if v.get("storage")] or served
    v = storage[0]
    has_status = "status" in ((v.get("subresources") or {}))
    if crd.get("metadata", {}).get("name") != plural + "." + group:
        raise ValueError("metadata.name must be spec.names.plural+\".\"+spec.group")
    return Resource(group, v.get("name", "v1"), plural, kind, scope == "Namespaced",
                    status=has_status, singular=names.get("singular"),
                    short=names.get("shortNames") or (), crd=crd["metadata"]["name"],
                    schema=(v.get("schema") or {}).get("openAPIV3Schema"))


class Registry:
    """Resources by (group, plural) and by (group, version, plural). Not thread-safe:
    the store's lock guards it."""

    def __init__(self):
        self.builtin = {r.key: r for r in builtin_resources()}
        self.by_key = dict(self.builtin)

    def lookup(self, group, version, plural):
        r = self.by_key.get((group, plural))
        if r is None or r.version != version:
            return None
        return r

    def add_crd(self, res):
        self.by_key[res.key] = res

    def remove_crd(self, key):
        if key in self.builtin:
            self.by_key[key] = self.builtin[key]
        else:
            self.by_key.pop(key, None)

    def reset(self):
        self.by_key = dict(self.builtin)

    def groups(self):
        """{group: version} for every non-core group."""
        out = {}
        for r in self.by_key.values():
            if r.group:
                out.setdefault(r.group, r.version)
        return out

    def group_versions(self):
        """{group: [version, ...]} for every non-core group, the preferred one (groups())
        first: a group may serve several versions (k8s.cni.cncf.io: v1 NADs, v1beta1
        MultiNetworkPolicies)."""
        out = {}
        for r in self.by_key.values():
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    def openapi_v3(self, group=None, version=None):
        """OpenAPI v3 as kube-apiserver serves it, for the resources that came with a schema
        (custom resources): without group, the discovery document {"paths": {"apis/G/V":
        {"serverRelativeURL": ...}}}; with group and version, that group version's document:
        per kind a component schema named like the real one (io.kvnet.v1.IPPool) and a GET
        path for its list, both tagged with x-kubernetes-group-version-kind; None when the
        group version has no schema."""
        rs = [r for r in self.by_key.values() if r.schema is not None and r.group]
        if group is None:
            return {"paths": {"apis/%s/%s" % (r.group, r.version): {
                "serverRelativeURL": "/openapi/v3/apis/%s/%s" % (r.group, r.version)}
                for r in rs}}
        rs = sorted((r for r in rs if r.group == group and r.version == version),
                    key=lambda r: r.kind)
        if not rs:
            return None
        meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        schemas = {meta: {"type": "object", "description": "Standard object's metadata.",
                          "properties": {k: {"type": t} for k, t in (
                              ("name", "string"), ("namespace", "string"),
                              ("uid", "string"), ("resourceVersion", "string"),
                              ("generation", "integer"), ("creationTimestamp", "string"),
                              ("labels", "object"), ("annotations", "object"))}}}
        paths = {}
        for r in rs:
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            base = "/apis/%s/%s/%s%s" % (r.group, r.version,
                                        "namespaces/{namespace}/" if r.namespaced else "",
                                        r.plural)
            # kubectl explain finds the kind of a resource through its paths' operations
            paths[base] = {"get": {"x-kubernetes-group-version-kind": gvk,
                                   "responses": {"200": {"description": "OK"}}}}
            s = json.loads(json.dumps(r.schema))
            props = s.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string", "description":
                                            "APIVersion defines the versioned schema of this "
                                            "representation of an object."})
            props.setdefault("kind", {"type": "string", "description":
                                      "Kind is a string value representing the REST resource "
                                      "this object represents."})
            props["metadata"] = {"allOf": [{"$ref": "#/components/schemas/" + meta}],
                                 "description": "Standard object's metadata."}
            s["x-kubernetes-group-version-kind"] = [
                {"group": r.group, "version": r.version, "kind": r.kind}]
            name = ".".join(reversed(r.group.split("."))) + "." + r.version + "." + r.kind
            schemas[name] = s
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version":
                                               "v1.34.0+kvnet-test"},
                "paths": paths, "components": {"schemas": schemas}}

    def in_group(self, group, version):
        return sorted((r for r in self.by_key.values()
                       if r.group == group and r.version == version), key=lambda r: r.plural)
