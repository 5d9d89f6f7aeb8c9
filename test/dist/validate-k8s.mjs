// validate-k8s — Kubernetes objects (a JSON array on stdin) against the upstream object
// schemas of the kubernetes-models npm package (generated from the Kubernetes OpenAPI).
// Prints one TAP line per object: "ok - KIND NAME" or "not ok - KIND NAME: why"; objects
// of kinds that are not Kubernetes built-ins (kvnet.io, kubevirt.io, Multus) get a "#"
// comment (their CRD schemas are checked elsewhere). Exit 1 when any is invalid.
import { readFileSync } from "node:fs";

const known = {
  "v1/ServiceAccount": "kubernetes-models/v1/ServiceAccount",
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "apps/v1/DaemonSet": "kubernetes-models/apps/v1/DaemonSet",
  "rbac.authorization.k8s.io/v1/ClusterRole":
    "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole",
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
    "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding",
  "apiextensions.k8s.io/v1/CustomResourceDefinition":
    "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition",
};

const objs = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const o of objs) {
  const key = `${o.apiVersion}/${o.kind}`;
  const name = `${o.kind} ${o.metadata && o.metadata.name}`;
  const mod = known[key];
  if (!mod) {
    console.log(`# upstream schema: ${name}: ${key} is not a Kubernetes built-in`);
    continue;
  }
  const cls = (await import(mod))[o.kind];
  try {
    new cls(o).validate();
    console.log(`ok - upstream schema: ${name} (${key})`);
  } catch (e) {
    bad++;
    console.log(`not ok - upstream schema: ${name} (${key}): ${String(e.message).slice(0, 400)}`);
  }
}
process.exit(bad ? 1 : 0);
