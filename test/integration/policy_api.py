#!/usr/bin/env python3
"""kvnet policy explain over the API server: the same answers as over the files.

The fixture objects of test/data/policy/ are put into the test API server with a real
kubectl (`kubectl create`, then the pods' status through `kubectl patch
--subresource=status`, as the kubelet writes it; a VMI's status is part of the object); every golden case of
test/golden/policy/cases must print the same with --kubeconfig as with --dir. Also: more
pods than one LIST page (the explain pages through them), an API server that is down
(exit 2, a message naming the server), --dir with --kubeconfig refused.
"""
import glob
import json
import os
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "kubeapi"))
sys.dont_write_bytecode = True

import client  # noqa: E402
import yaml  # noqa: E402

KVNET = os.path.join(ROOT, "dist", "kvnet")
DATA = os.path.join(ROOT, "test", "data", "policy")
CASES = os.path.join(ROOT, "test", "golden", "policy", "cases")
FAILED = 0


def ok(cond, name, diag=""):
    global FAILED
    print("%s - %s" % ("ok" if cond else "not ok", name))
    if not cond:
        FAILED += 1
        for line in str(diag).splitlines()[:20]:
            print("# " + line)


def objects():
    """Every object of the fixture directory, Lists unpacked, in file order."""
    out = []
    for f in sorted(glob.glob(os.path.join(DATA, "*"))):
        with open(f) as fp:
            docs = list(yaml.safe_load_all(fp)) if f.endswith((".yaml", ".yml")) else [json.load(fp)]
        for d in docs:
            if not d:
                continue
            for o in d.get("items", [d]) if d.get("kind", "").endswith("List") else [d]:
                o = dict(o)
                if "kind" not in o:  # items of a typed list
                    o["kind"] = d["kind"][:-4]
                o.setdefault("apiVersion", {"Pod": "v1", "Namespace": "v1",
                                            "NetworkPolicy": "networking.k8s.io/v1",
                                            "MultiNetworkPolicy": "k8s.cni.cncf.io/v1beta1",
                                            "VirtualMachineInstance": "kubevirt.io/v1"}[o["kind"]])
                out.append(o)
    return out


def kubectl(kc, *args, stdin=None):
    return subprocess.run(["kubectl", "--kubeconfig", kc] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=60)


def explain(*args):
    return subprocess.run([KVNET, "policy", "explain"] + list(args), capture_output=True,
                          text=True, timeout=60)


def main():
    tmp = tempfile.mkdtemp(prefix="kvt-policy-api-")
    try:
        return run(tmp)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    with client.KubeAPI() as api:
        kc = os.path.join(tmp, "kubeconfig")
        api.write_kubeconfig(kc)
        objs = objects()
        # namespaces first, then the rest; status separately, as the API wants it
        objs.sort(key=lambda o: o["kind"] != "Namespace")
        bad = []
        for o in objs:
            # a VMI's status is part of the object (KubeVirt's CRD has no status
            # subresource for it); a pod's is written through pods/status
            sub = o["kind"] == "Pod" and "status" in o
            body = {k: v for k, v in o.items() if k != "status" or not sub}
            if o["kind"] == "Pod":
                body.setdefault("spec", {}).setdefault("containers", [{"name": "c", "image": "x"}])
                for c in body["spec"]["containers"]:
                    c.setdefault("image", "registry.invalid/x")
            p = kubectl(kc, "create", "--validate=false", "-f", "-", stdin=json.dumps(body))
            if p.returncode != 0:
                bad.append("create %s %s: %s" % (o["kind"], o["metadata"]["name"], p.stderr))
                continue
            if sub:
                p = kubectl(kc, "patch", "pod", o["metadata"]["name"], "-n", o["metadata"]["namespace"],
                            "--subresource=status", "--type=merge",
                            "-p", json.dumps({"status": o["status"]}))
                if p.returncode != 0:
                    bad.append("status %s %s: %s" % (o["kind"], o["metadata"]["name"], p.stderr))
        ok(not bad, "kubectl created the %d fixture objects" % len(objs), "\n".join(bad))
        p = kubectl(kc, "get", "pods", "-A", "-o", "json")
        ips = sorted(i.get("status", {}).get("podIP", "") for i in json.loads(p.stdout or "{}").get("items", []))
        ok("198.18.1.10" in ips, "kubectl reads the pods' status back", ips)

        with open(CASES) as fp:
            cases = [ln.split(None, 1) for ln in fp if ln.strip() and not ln.startswith("#")]
        for name, args in cases:
            a = shlex.split(args)
            want = explain("--dir", DATA, *a)
            got = explain("--kubeconfig", kc, *a)
            ok((got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr),
               "explain over the API = over the files: %s" % name,
               "files (exit %d):\n%s%s\napi (exit %d):\n%s%s" % (want.returncode, want.stdout,
                                                                 want.stderr, got.returncode,
                                                                 got.stdout, got.stderr))

        # more pods than one LIST page (500): the last one is still found
        many = [{"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "p%03d" % i, "namespace": "dev", "labels": {"bulk": "1"}},
                 "spec": {"containers": [{"name": "c", "image": "registry.invalid/x"}]}}
                for i in range(520)]
        for chunk in range(0, len(many), 130):
            kubectl(kc, "create", "--validate=false", "-f", "-",
                    stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": many[chunk:chunk + 130]}))
        p = kubectl(kc, "patch", "pod", "p519", "-n", "dev", "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"podIP": "198.18.5.19"}}))
        ok(p.returncode == 0, "kubectl patched the 520th pod's status", p.stderr)
        r = explain("--kubeconfig", kc, "--from", "198.18.5.19", "--to", "prod/db", "--port", "5432")
        ok(r.returncode == 1 and "198.18.5.19 = pod dev/p519" in r.stdout,
           "explain pages through a LIST of 520 pods (the last one is found)", r.stdout + r.stderr)

        ok(explain("--dir", DATA, "--kubeconfig", kc, "--from", "dev/debug", "--to", "prod/db",
                   "--port", "1").returncode == 2, "--dir with --kubeconfig is refused")
        # an API server that is not there (a closed port): exit 2, naming the server
        with open(kc) as fp:
            cfg = yaml.safe_load(fp)
        for c in cfg["clusters"]:
            c["cluster"]["server"] = "https://127.0.0.1:9"
        down = os.path.join(tmp, "kubeconfig-down")
        with open(down, "w") as fp:
            yaml.safe_dump(cfg, fp)
        r = explain("--kubeconfig", down, "--from", "dev/debug", "--to", "prod/db", "--port", "5432")
        ok(r.returncode == 2 and "kvnet policy:" in r.stderr and "127.0.0.1:9" in r.stderr,
           "API server down: exit 2, the message names the server", "%d %s" % (r.returncode, r.stderr))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
