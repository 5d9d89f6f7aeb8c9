#!/usr/bin/env python3
"""dist/kvnet as a CNI plugin with `datastore: kubernetes`, against the test API server
(test/kubeapi) with kvnet's CRDs (dist/crds): STATUS, ADD/DEL of an ordinary pod create and
remove the kvnet.io records (read back with the python client, the data plane with
`ip -j`), API calls per ADD/DEL (server counters), a failing or stopped API server gives
code 11 (STATUS: 50) and creates nothing.

The plugin runs inside a node namespace kvt-<pid>-node; the API server listens in the root
namespace on an address of a /28 in 198.19.0.0/16 chosen by this test's pid (so that two
test runs on one machine never share an address), reached over a veth pair (the first /30
of that /28; net(k) gives the k-th /30 for more nodes)."""
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "kubeapi"))
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import client  # noqa: E402
import yaml  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
_BASE = (198 << 24) | (19 << 16) | (((t.PID // 16) % 256) << 8) | ((t.PID % 16) * 16)


def net(k):
    """(root side, node side) addresses of the k-th /30 (k 0..3) of this run's /28."""
    a = _BASE + 4 * k
    return tuple("%d.%d.%d.%d" % (x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255)
                 for x in (a + 1, a + 2))


API_IP, NODE_IP = net(0)


def items(api, res):
    st, obj = api.get(G + res)
    return obj.get("items", []) if st == 200 and obj else None


def host_links(host):
    return sorted(l["ifname"] for l in t.ipj(host, "link", "show")
                  if l["ifname"] not in ("lo", "kvtapi"))


def setup():
    """Node namespace + veth to the root namespace + a started API server with kvnet's
    CRDs; returns (host, api, kubeconfig path). The caller stops api."""
    host = t.netns("node")
    vroot = "kvt-%d-ka" % t.PID
    subprocess.run(["ip", "link", "add", vroot, "type", "veth", "peer", "name", "kvtapi",
                    "netns", host], check=True)
    subprocess.run(["ip", "addr", "add", API_IP + "/30", "dev", vroot], check=True)
    subprocess.run(["ip", "link", "set", vroot, "up"], check=True)
    subprocess.run(["ip", "-n", host, "addr", "add", NODE_IP + "/30", "dev", "kvtapi"],
                   check=True)
    subprocess.run(["ip", "-n", host, "link", "set", "kvtapi", "up"], check=True)
    subprocess.run(["ip", "-n", host, "link", "set", "lo", "up"], check=True)
    api = client.KubeAPI(listen=API_IP + ":0")
    for f in sorted(glob.glob(os.path.join(t.ROOT, "dist", "crds", "*.yaml"))):
        with open(f) as fp:
            r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         yaml.safe_load(fp))
        ok(r.status == 201, "CRD %s created" % os.path.basename(f), r.raw)
    kc = api.write_kubeconfig(os.path.join(t.tmpdir(), "kubeconfig"))
    return host, api, kc



# ---- shared by the VM tests (vm, identity, gc, vmconfig) ---------------------------------

FIX = os.path.join(t.ROOT, "test", "data", "fixtures")


def fixture(name):
    """A fixture object of test/data/fixtures/ (the vm-a.* world of a migrating VM)."""
    with open(os.path.join(FIX, name)) as f:
        return json.load(f)


def pod_args(pod):
    """CNI_ARGS naming the pod."""
    return "K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s" % (pod["metadata"]["namespace"],
                                                     pod["metadata"]["name"])


def v4(res):
    """The first IPv4 address of a CNI result."""
    return [x["address"].split("/")[0] for x in res["ips"] if ":" not in x["address"]][0]


def handles(api):
    """Names of every IPAMHandle."""
    st, obj = api.get(G + "ipamhandles")
    return sorted(o["metadata"]["name"] for o in obj.get("items", []))


def _allocs(x):
    if isinstance(x, dict):
        if "handle" in x:
            yield x
        for v in x.values():
            yield from _allocs(v)
    elif isinstance(x, list):
        for v in x:
            yield from _allocs(v)


def owner_slots(api, handle):
    """(active, alternate) owner objects ({} when empty) of handle's first allocation, read
    from its block; None when no block holds it."""
    st, obj = api.get(G + "ipamblocks")
    for b in obj.get("items", []) if st == 200 and obj else []:
        for a in _allocs(b["spec"]):
            if a.get("handle") == handle:
                return a.get("activeOwner") or {}, a.get("alternateOwner") or {}
    return None


def owner_uids(api, handle):
    """(active uid, alternate uid) of handle's first allocation ("" for an empty slot);
    None when no block holds it."""
    o = owner_slots(api, handle)
    return None if o is None else (o[0].get("uid", ""), o[1].get("uid", ""))


def vm_world(api, kc, net):
    """Load the vm-a.* fixtures into the API server and give the plugin configuration of
    network `net` with the kubernetes datastore (no state directory)."""
    api.load_files(sorted(glob.glob(os.path.join(FIX, "vm-a.*.json"))))
    c = t.conf("/nonexistent-kvnet-state", "1.1.0", name=net, datastore="kubernetes",
               kubeconfig=kc)
    del c["state_dir"]
    return c


def run_main(run):
    """setup(), run(api, host, kc), the API server stopped whatever happens, t.finish()."""
    host, api, kc = setup()
    try:
        run(api, host, kc)
    finally:
        api.stop()
    t.finish()

def main():
    run_main(run)


def run(api, host, kc):
    c = t.conf("/nonexistent-kvnet-state", "1.1.0", name="kubenet", datastore="kubernetes",
               kubeconfig=kc)
    del c["state_dir"]

    r = t.cni("STATUS", c, host)
    ok(r.rc == 0, "STATUS with a reachable API server is 0", r)

    # insecure-skip-tls-verify is honoured only when set, and then logged loudly
    with open(kc) as fp:
        kcj = json.load(fp)
    cl = kcj["clusters"][0]["cluster"]
    del cl["certificate-authority"]
    cl["insecure-skip-tls-verify"] = True
    ikc = os.path.join(t.tmpdir(), "kubeconfig-insecure")
    with open(ikc, "w") as fp:
        json.dump(kcj, fp)
    ilog = os.path.join(t.tmpdir(), "insecure.log")
    ic = dict(c, kubeconfig=ikc, log_file=ilog)
    r = t.cni("STATUS", ic, host)
    with open(ilog) as fp:
        logged = fp.read()
    ok(r.rc == 0 and "insecure-skip-tls-verify is set" in logged and "level=warn" in logged,
       "insecure-skip-tls-verify works only when set and is logged as a warning", logged)

    pod = t.netns("poda")
    args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a"
    api.counters(reset=True)
    r = t.cni("ADD", c, host, cid="cid-a", netns_path="/run/netns/" + pod, args=args)
    n_add = api.counters()
    ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2, "ADD ordinary pod (dual-stack)", r)
    if not r.json:
        return
    added = r.json
    ips = [x["address"].split("/")[0] for x in r.json["ips"]]
    hs = items(api, "ipamhandles")
    ok(hs is not None and len(hs) == 1 and hs[0]["metadata"]["name"].startswith("kubenet")
       and all(ip in str(hs[0]["spec"]) for ip in ips),
       "ADD created one IPAMHandle naming both addresses %s" % ips, hs)
    bs = items(api, "ipamblocks")
    ok(bs is not None and len(bs) == 2, "ADD created one IPAMBlock per family", bs)
    ps = items(api, "ippools")
    ok(ps is not None and len(ps) == 2, "ADD created the two IPPools", ps)
    rts = t.ipj(host, "route", "show", ips[0] if ":" not in ips[0] else ips[1])
    ok(len(rts) == 1 and rts[0]["dev"].startswith("kv"), "host route to the pod's v4", rts)
    print("# API calls for the first ADD (ordinary pod): %s" % n_add)
    ok(n_add["total"] == 10 and n_add["verbs"].get("list") == 2
       and n_add["paths"].get("GET " + G + "ipamhandles/kubenet.cid-a") == 1
       and "GET " + G + "ipamhandles" not in n_add["paths"],
       "ADD: 10 API calls; LISTs pools and blocks only, GETs its handle and the config",
       n_add)

    r = t.cni("CHECK", dict(c, prevResult=added), host, cid="cid-a",
              netns_path="/run/netns/" + pod, args=args)
    ok(r.rc == 0, "CHECK against the kubernetes datastore", r)

    api.counters(reset=True)
    r = t.cni("DEL", c, host, cid="cid-a", netns_path="/run/netns/" + pod, args=args)
    n_del = api.counters()
    ok(r.rc == 0, "DEL", r)
    hs = items(api, "ipamhandles")
    ok(hs == [], "DEL removed the IPAMHandle", hs)
    bs = items(api, "ipamblocks") or []
    ok(not any(ip in str(b["spec"]) for b in bs for ip in ips),
       "no block still names the released addresses", bs)
    ok(host_links(host) == [], "DEL left no veth on the node", host_links(host))
    print("# API calls for DEL: %s" % n_del)
    ok(n_del["total"] == 8 and n_del["verbs"].get("list") == 2
       and "GET " + G + "ipamhandles" not in n_del["paths"],
       "DEL: 8 API calls; no LIST of every handle", n_del)
    r = t.cni("DEL", c, host, cid="cid-a", netns_path="/run/netns/" + pod, args=args)
    ok(r.rc == 0, "second DEL succeeds", r)

    # 8 ADDs at once on one node: the node-local lock makes them take turns, so no
    # compare-and-swap conflicts (no retried requests) and 8 distinct address pairs
    pods = [t.netns("par%d" % i) for i in range(8)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_IFNAME": "eth0",
           "CNI_ARGS": "", "CNI_PATH": "/opt/cni/bin"}
    api.counters(reset=True)

    def spawn(cmd, i):
        e = dict(env, CNI_COMMAND=cmd, CNI_CONTAINERID="cid-p%d" % i,
                 CNI_NETNS="/run/netns/" + pods[i])
        return subprocess.Popen(["ip", "netns", "exec", host, t.KVNET], env=e, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    procs = [spawn("ADD", i) for i in range(8)]
    outs = [p.communicate(json.dumps(c)) for p in procs]
    n_par = api.counters()
    got = []
    for (out, _), p in zip(outs, procs):
        got += [x["address"] for x in json.loads(out).get("ips", [])] if p.returncode == 0 else []
    ok(all(p.returncode == 0 for p in procs) and len(got) == 16 and len(set(got)) == 16,
       "8 parallel ADDs on one node: 16 distinct addresses", outs)
    ok(n_par["total"] == 8 * 7 and n_par["verbs"] == {"list": 16, "get": 16, "update": 16,
                                                       "create": 8},
       "8 parallel ADDs: 7 API calls each, no conflict retried", n_par)
    procs = [spawn("DEL", i) for i in range(8)]
    outs = [p.communicate(json.dumps(c)) for p in procs]
    ok(all(p.returncode == 0 for p in procs) and items(api, "ipamhandles") == [],
       "8 parallel DELs release everything", outs)

    # The API server failing: code 11, nothing created.
    before = {k: len(items(api, k)) for k in ("ipamhandles", "ipamblocks", "ippools")}
    api.fault(action="error", code=503, count=100, path="/ipamblocks")
    r = t.cni("ADD", c, host, cid="cid-b", netns_path="/run/netns/" + pod, args=args)
    ok(r.rc != 0 and r.json and r.json.get("code") == 11,
       "ADD with the API server answering 503 is code 11", r)
    api.clear_faults()
    after = {k: len(items(api, k)) for k in ("ipamhandles", "ipamblocks", "ippools")}
    ok(after == before and host_links(host) == [], "failed ADD created nothing",
       (before, after, host_links(host)))

    bad = dict(c, kubeconfig="/nonexistent/kubeconfig")
    r = t.cni("ADD", bad, host, cid="cid-b", netns_path="/run/netns/" + pod, args=args)
    ok(r.rc != 0 and r.json and r.json.get("code") == 11 and "kubeconfig" in r.out,
       "ADD with a missing kubeconfig is code 11 naming it", r)

    api.stop()
    r = t.cni("ADD", c, host, cid="cid-b", netns_path="/run/netns/" + pod, args=args)
    ok(r.rc != 0 and r.json and r.json.get("code") == 11,
       "ADD with the API server down is code 11", r)
    ok(host_links(host) == [], "ADD with the API server down created no veth",
       host_links(host))
    r = t.cni("STATUS", c, host)
    ok(r.rc != 0 and r.json and r.json.get("code") == 50,
       "STATUS with the API server down is code 50", r)
    r = t.cni("DEL", c, host, cid="cid-b", netns_path="/run/netns/" + pod, args=args)
    ok(r.rc != 0 and r.json and r.json.get("code") == 11,
       "DEL with the API server down is code 11 (the runtime retries)", r)


if __name__ == "__main__":
    main()
