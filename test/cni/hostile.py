#!/usr/bin/env python3
"""Hostile CNI input (#17), black-box through dist/kvnet, one test per probe, each printing
the code and message it got:

- CNI_ARGS values that reach API paths, handles or file names: K8S_POD_NAMESPACE not a
  DNS-1123 label ("default/..", "Default", a control byte), K8S_POD_NAME not a DNS-1123
  subdomain ("pod?watch=1", "a/b", "a..b"), K8S_POD_UID not hex and dashes ("../../etc",
  "uid-a", 65+ bytes): code 4, and with the kubernetes datastore no request reaches the
  API server at all; well-formed values still work;
- CNI_NETNS naming the host's own network namespace (/proc/self/ns/net, /proc/1/ns/net,
  a /run/netns bind mount of it): ADD is code 4 and creates nothing; DEL never removes
  CNI_IFNAME from the host;
- an API answer that is not JSON (a 200 whose body is cut) on each request of an ADD:
  code 11, never 999;
- CNI_COMMAND= (empty) is a CNI error object (code 4) on stdout, not the multicall usage,
  both as /opt/cni/bin/kvnet and as `kvnet cni`."""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok


def shown(r):
    j = r.json or {}
    return "rc=%d code=%s msg=%r details=%r" % (r.rc, j.get("code"), j.get("msg"),
                                                 j.get("details"))


def main():
    host, api, kc = kube.setup()
    try:
        run(api, host, kc)
    finally:
        api.stop()
    t.finish()


def run(api, host, kc):
    kconf = t.conf("/nonexistent-kvnet-state", "1.1.0", name="kubenet", datastore="kubernetes",
                   kubeconfig=kc)
    del kconf["state_dir"]
    state = t.tmpdir()
    fconf = t.conf(state)
    pod = t.netns("pod")
    pod_path = "/run/netns/" + pod

    # ---- CNI_ARGS ---------------------------------------------------------------------
    bad_args = [
        ("K8S_POD_NAMESPACE with '/..'", "K8S_POD_NAMESPACE=default/..;K8S_POD_NAME=p",
         "K8S_POD_NAMESPACE 'default/..' must be a DNS-1123 label"),
        ("K8S_POD_NAMESPACE with capitals", "K8S_POD_NAMESPACE=Default;K8S_POD_NAME=p",
         "K8S_POD_NAMESPACE 'Default' must be a DNS-1123 label"),
        ("K8S_POD_NAMESPACE with a control byte", "K8S_POD_NAMESPACE=ns\x01x;K8S_POD_NAME=p",
         "K8S_POD_NAMESPACE 'ns\\x01x' must be"),
        ("K8S_POD_NAME with '?'", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod?watch=1",
         "K8S_POD_NAME 'pod?watch=1' must be a DNS-1123 subdomain"),
        ("K8S_POD_NAME with '/'", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=a/b",
         "K8S_POD_NAME 'a/b' must be"),
        ("K8S_POD_NAME with '..'", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=a..b",
         "K8S_POD_NAME 'a..b' must be"),
        ("K8S_POD_NAME with '%2F'", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=a%2Fb",
         "K8S_POD_NAME 'a%2Fb' must be"),
        ("K8S_POD_UID with '../'",
         "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;K8S_POD_UID=../../etc",
         "K8S_POD_UID '../../etc' must be a uid"),
        ("K8S_POD_UID not hex", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;K8S_POD_UID=uid-a",
         "K8S_POD_UID 'uid-a' must be a uid"),
        ("K8S_POD_UID of 65 bytes",
         "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;K8S_POD_UID=" + "a" * 65,
         "K8S_POD_UID '" + "a" * 65 + "' must be a uid"),
    ]
    for what, args, words in bad_args:
        api.counters(reset=True)
        r = t.cni("ADD", kconf, host, cid="cid-bad", netns_path=pod_path, args=args)
        calls = api.counters()
        print("# %s: %s" % (what, shown(r)))
        ok(r.rc == 1 and r.json and r.json.get("code") == 4
           and r.json.get("msg") == "invalid CNI_ARGS" and words in r.json.get("details", "")
           and calls.get("total", -1) == 0 and kube.host_links(host) == [],
           "CNI_ARGS: %s is code 4, nothing reaches the API server" % what, (r, calls))
    args = ("IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=web-0.a-b;"
            "K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=3F6C1D2E-0a4b-4c5d-8e9f-1a2b3c4d5e6f")
    r = t.cni("ADD", fconf, host, cid="cid-good", netns_path=pod_path, args=args)
    ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2,
       "CNI_ARGS: well-formed namespace, dotted pod name and uid are accepted", r)
    r = t.cni("DEL", fconf, host, cid="cid-good", netns_path=pod_path, args=args)
    ok(r.rc == 0 and kube.host_links(host) == [], "and DEL removes them", r)

    # ---- CNI_NETNS = the host's own namespace -----------------------------------------
    ifaces = lambda: sorted(l["ifname"] for l in t.ipj(host, "link", "show"))  # noqa: E731
    before = ifaces()
    for what, path in (("/proc/self/ns/net", "/proc/self/ns/net"),
                       ("/proc/1/ns/net", "/proc/1/ns/net"),
                       ("the node's own /run/netns mount", "/run/netns/" + host)):
        r = t.cni("ADD", fconf, host, cid="cid-hostns", netns_path=path,
                  args="K8S_POD_NAMESPACE=default;K8S_POD_NAME=hostns", ifname="kvthost0")
        print("# CNI_NETNS %s: %s" % (what, shown(r)))
        d = (r.json or {}).get("details", "")
        # PID 1's namespace may not even be open()able here (a container): refused as well
        ok(r.rc == 1 and r.json and r.json.get("code") == 4
           and ("host's own network namespace" in d
                or (path.startswith("/proc/1/") and "open: Permission denied" in d))
           and ifaces() == before and t.handles(state) == [],
           "CNI_NETNS %s (the host's namespace) is code 4; no interface, no address" % what,
           r)
    # DEL naming a host interface through the host namespace must leave it alone
    subprocess.run(["ip", "-n", host, "link", "add", "kvthost1", "type", "veth", "peer", "name",
                    "kvthost1p"], check=True)
    r = t.cni("DEL", fconf, host, cid="cid-hostns", netns_path="/proc/self/ns/net",
              args="K8S_POD_NAMESPACE=default;K8S_POD_NAME=hostns", ifname="kvthost1")
    print("# DEL with CNI_NETNS /proc/self/ns/net: %s stderr=%r" % (shown(r), r.err.strip()))
    ok(r.rc == 0 and "kvthost1" in ifaces() and "host's own network namespace" in r.err,
       "DEL with the host's namespace succeeds, says so, and leaves the host's CNI_IFNAME "
       "interface alone", (r, ifaces()))
    subprocess.run(["ip", "-n", host, "link", "del", "kvthost1"], check=True)

    # ---- an API answer that is not JSON -----------------------------------------------
    # every request of a VM pod's ADD (the fixtures, an IPAMConfig, the target's VMIM) and
    # of an ordinary pod's, answered 200 with the body cut in half
    api.load_files(sorted(glob.glob(os.path.join(t.ROOT, "test", "data", "fixtures",
                                                 "vm-a.*.json"))))
    st, _ = api.post("/apis/kvnet.io/v1/ipamconfigs",
                     {"apiVersion": "kvnet.io/v1", "kind": "IPAMConfig",
                      "metadata": {"name": "default"},
                      "spec": {"kubeVirtVMAddressPersistence": "Enabled"}})
    ok(st == 201, "IPAMConfig default created", st)
    st, _ = api.post("/api/v1/namespaces/default/pods",
                     {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "plain", "namespace": "default"},
                      "spec": {"nodeName": "node-a", "containers": [{"name": "c"}]}})
    vm_args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-vm-a-5cd9t"
    tgt_args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-vm-a-q7x2m"
    probes = [("pods/virt-launcher-vm-a-5cd9t", vm_args, None),
              ("pods/plain", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=plain", None),
              ("ipamconfigs/default", vm_args, None),
              ("virtualmachineinstances/vm-a", vm_args, None),
              ("virtualmachineinstancemigrations", tgt_args, "node-b"),
              ("ippools", vm_args, None), ("ipamblocks", vm_args, None),
              ("ipamhandles", vm_args, None)]
    for path, a, node in probes:
        api.counters(reset=True)
        api.fault(action="truncate", path=path, count=0)
        r = t.cni("ADD", kconf, host, cid="cid-trunc", netns_path=pod_path, args=a, node=node)
        api.clear_faults()
        hit = sum(n for k, n in api.counters()["paths"].items() if path in k)
        print("# 200 answers cut in half on %s (%d requests): %s" % (path, hit, shown(r)))
        ok(r.rc == 1 and r.json and r.json.get("code") == 11 and hit > 0
           and kube.host_links(host) == [],
           "a 200 answer that is not JSON on %s is code 11 (try again), nothing left" % path,
           r)
        if r.rc == 0:
            t.cni("DEL", kconf, host, cid="cid-trunc", netns_path=pod_path, args=a)

    # ---- CNI_COMMAND= -------------------------------------------------------------------
    for role in (False, True):
        r = t.cni("", fconf, host, cid="cid-x", netns_path=pod_path, role=role)
        print("# CNI_COMMAND='' (%s): %s stderr=%r" % ("kvnet cni" if role else "kvnet",
                                                       shown(r), r.err.strip()[:120]))
        ok(r.rc == 1 and r.json and r.json.get("code") == 4
           and "CNI_COMMAND" in r.json.get("details", "") and "usage" not in r.err.lower(),
           "CNI_COMMAND= (empty) as %s: a CNI error object, code 4"
           % ("`kvnet cni`" if role else "/opt/cni/bin/kvnet"), r)
    p = subprocess.run([t.KVNET, "version"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "CNI_COMMAND": ""})
    ok(p.returncode == 0 and p.stdout.strip(),
       "an empty CNI_COMMAND does not take over `kvnet ROLE`", p)


if __name__ == "__main__":
    main()
