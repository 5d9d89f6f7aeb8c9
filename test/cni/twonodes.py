#!/usr/bin/env python3
"""50 parallel CNI ADDs on two simulated nodes sharing one pool, for both datastores.

A node is a network namespace (its host side) plus a UTS namespace whose host name is the
node name the plugin records (node-a, node-b). 25 pods per node are ADDed at once (50
plugin processes), from a pool of two /26 blocks (v4) so the nodes race to claim blocks:
  file        one state_dir shared by both nodes (flock)
  kubernetes  one test API server reached from both node namespaces; 6 of the 50 pods are
              virt-launcher pods of the same VM (3 per node) racing for its handle (their
              API objects say Failed, so any of them may take the active slot from another)
A runtime retries an ADD that fails with code 11 (try again later); the test does the same
and prints how many retries it took. Checked: every ADD succeeds, no address is given
twice (the VM's pods share exactly one v4 and one v6), the pods' eth0 addresses (`ip -j`)
are the results, the stored records (read with python, not kvnet) hold each address once
with its handle, allocations carry the node that asked; then 50 parallel DELs leave no
handle, veth or host route."""
import copy
import glob
import ipaddress
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
FIX = os.path.join(t.ROOT, "test", "data", "fixtures")
N = 50
NODES = ("node-a", "node-b")
VMPODS = 6


def spawn(command, conf, node, hostns, cid, podns, args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/" + podns, "CNI_IFNAME": "eth0",
           "CNI_ARGS": args}
    p = subprocess.Popen(["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', node,
                          "nsenter", "--net=/run/netns/" + hostns, t.KVNET],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    p.stdin.write(json.dumps(conf))
    p.stdin.close()
    return p


def run_all(command, conf, pods):
    """Run command for every pod at once; retry those that fail with code 11 (all at once
    again) like a runtime. Returns ({cid: result json}, {cid: last failure}, retries)."""
    todo = list(pods)
    done, failed, retries = {}, {}, 0
    for rnd in range(20):
        procs = [(p, spawn(command, conf, p["node"], p["hostns"], p["cid"], p["podns"],
                           p["args"])) for p in todo]
        again = []
        for pod, pr in procs:
            out = pr.stdout.read()
            err = pr.stderr.read()
            pr.wait()
            pr.stdout.close()
            pr.stderr.close()
            j = json.loads(out) if out.strip() else {}
            if pr.returncode == 0:
                done[pod["cid"]] = j
                failed.pop(pod["cid"], None)
            else:
                failed[pod["cid"]] = (out, err[-300:])
                if j.get("code") == 11:
                    again.append(pod)
        if not again:
            break
        retries += len(again)
        todo = again
        time.sleep(0.05 * (rnd + 1))
    return done, failed, retries


def v4(res):
    return [x["address"] for x in res["ips"] if ":" not in x["address"]]


def scenario(label, conf, pods, records, vm_cids=()):
    """The common part: parallel ADDs, checks, parallel DELs. records() returns the stored
    allocations [(ip, handle, node)] and the handle names."""
    done, failed, retries = run_all("ADD", conf, pods)
    ok(len(done) == N and not failed, "%s: %d parallel ADDs on 2 nodes all succeed" % (label, N),
       failed)
    print("# %s: %d ADDs retried after code 11 (try again later)" % (label, retries))
    vmres = [done[c] for c in vm_cids if c in done]
    ordinary = [r for c, r in done.items() if c not in vm_cids]
    ips = [x["address"] for r in ordinary for x in r["ips"]]
    vmips = {tuple(sorted(x["address"] for x in r["ips"])) for r in vmres}
    ok(len(ips) == 2 * len(ordinary) and len(set(ips)) == len(ips),
       "%s: %d distinct addresses for %d ordinary pods" % (label, len(ips), len(ordinary)),
       sorted(ips))
    if vm_cids:
        ok(len(vmips) == 1 and len(next(iter(vmips))) == 2,
           "%s: the %d racing pods of one VM all got the same one v4 + one v6"
           % (label, len(vm_cids)), vmips)
        ok(not (set(next(iter(vmips))) & set(ips)),
           "%s: the VM's addresses are nobody else's" % label)
    seen = {}
    for p in pods:
        for link in t.ipj(p["podns"], "addr", "show", "dev", "eth0"):
            seen[p["cid"]] = sorted("%s/%d" % (a["local"], a["prefixlen"])
                                    for a in link["addr_info"] if a["scope"] == "global")
    ok(all(seen.get(c) == sorted(x["address"] for x in r["ips"]) for c, r in done.items()),
       "%s: every pod's eth0 (ip -j) holds exactly its result" % label)
    allocs, hnames, listed = records()
    addrs = [a for a, _, _ in allocs]
    ok(len(addrs) == len(set(addrs)), "%s: stored blocks hold no address twice" % label)
    want = {x.split("/")[0] for x in ips} | {x.split("/")[0] for v in vmips for x in v}
    extra = set(addrs) - want
    ok(want <= set(addrs) and all(a not in listed for a in extra),
       "%s: every handed-out address is stored; any other allocation is a stray that no "
       "handle lists (a failed undo, ipam/ds_kube.h)" % label, (sorted(want - set(addrs)),
                                                               sorted(extra)))
    print("# %s: %d stray allocations after the ADDs (repaired by the DELs)" % (label, len(extra)))
    ok(all(h in hnames for _, h, _ in allocs) and len(hnames) == len(ordinary) + bool(vm_cids),
       "%s: every allocation's handle is stored (%d handles)" % (label, len(hnames)))
    nodes_of = {}
    for r, p in ((done[p["cid"]], p) for p in pods if p["cid"] in done and p["cid"] not in vm_cids):
        for a in v4(r):
            nodes_of[a.split("/")[0]] = p["node"]
    ok(all(nodes_of.get(a, n) == n for a, _, n in allocs),
       "%s: each allocation records the node that asked" % label)
    by_node = {n: sum(1 for _, _, nd in allocs if nd == n) for n in NODES}
    print("# %s: allocations per node %s" % (label, by_node))
    done, failed, retries = run_all("DEL", conf, pods)
    ok(len(done) == N and not failed, "%s: %d parallel DELs all succeed" % (label, N), failed)
    return records


def pods_for(hosts, vm_pods=()):
    pods = []
    for i in range(N):
        node = NODES[i % 2]
        cid = "tn-%02d" % i
        podns = t.netns("tn%d" % i)
        args = "K8S_POD_NAMESPACE=par;K8S_POD_NAME=p%d" % i
        pods.append({"node": node, "hostns": hosts[node], "cid": cid, "podns": podns,
                     "args": args})
    for k, name in enumerate(vm_pods):
        pods[k]["args"] = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + name
    return pods


def file_records(state):
    def rd():
        recs, _ = t.file_records(state)
        allocs = [(a["ip"], a["handle"], a.get("node")) for b in recs["block"].values()
                  for a in b["allocations"]]
        listed = {ip for h in recs["handle"].values() for ip in h["ips"]}
        return allocs, set(recs["handle"]), listed
    return rd


def kube_records(api):
    def rd():
        st, obj = api.get(G + "ipamblocks")
        allocs = [(a["ip"], a["handle"], a.get("node")) for b in obj["items"]
                  for a in b["spec"]["allocations"]]
        st, obj = api.get(G + "ipamhandles")
        listed = {ip for o in obj["items"] for ip in o["spec"]["ips"]}
        return allocs, {o["metadata"]["name"] for o in obj["items"]}, listed
    return rd


def host_clean(hosts):
    return all([l for l in t.ipj(h, "link", "show", "type", "veth") if l["ifname"] != "kvtapi"] == []
               and t.ipj(h, "route", "show", "proto", "75") == [] for h in hosts.values())


def second_node_to_api(hostb):
    """Give node-b's namespace its own veth to the root namespace and a route to the API
    server's address (node-a got one from kube.setup())."""
    vroot = "kvt-%d-kb" % t.PID
    subprocess.run(["ip", "link", "add", vroot, "type", "veth", "peer", "name", "kvtapi",
                    "netns", hostb], check=True)
    rootip, nodeip = kube.net(1)
    subprocess.run(["ip", "addr", "add", rootip + "/30", "dev", vroot], check=True)
    subprocess.run(["ip", "link", "set", vroot, "up"], check=True)
    for cmd in (["addr", "add", nodeip + "/30", "dev", "kvtapi"],
                ["link", "set", "kvtapi", "up"], ["link", "set", "lo", "up"],
                ["route", "add", kube.API_IP + "/32", "via", rootip]):
        subprocess.run(["ip", "-n", hostb] + cmd, check=True)
    return vroot


def main():
    # ---- file datastore: one state_dir, two nodes --------------------------------------
    hosts = {"node-a": t.netns("fa"), "node-b": t.netns("fb")}
    state = t.tmpdir()
    c = t.conf(state, "1.1.0", name="tn", ipv4_pools=["198.18.0.0/25"],
               ipv6_pools=["2001:db8:77::/112"])
    pods = pods_for(hosts)
    scenario("file", c, pods, file_records(state))
    allocs, hn, _ = file_records(state)()
    ok(allocs == [] and hn == set() and host_clean(hosts), "file: nothing left after the DELs")
    for p in pods:
        t.netns_del(p["podns"])

    # ---- kubernetes datastore ------------------------------------------------------------
    hosta, api, kc = kube.setup()
    hosts = {"node-a": hosta, "node-b": t.netns("kb")}
    vroot = second_node_to_api(hosts["node-b"])
    try:
        api.load_files(sorted(glob.glob(os.path.join(FIX, "vm-a.*.json"))))
        src = json.load(open(os.path.join(FIX, "vm-a.source-pod.json")))
        names = []
        for k in range(VMPODS):
            p = copy.deepcopy(src)
            p["metadata"]["name"] = "virt-launcher-vm-a-race%d" % k
            p["metadata"]["uid"] = "5%07d-2222-4333-8444-555555555555" % k
            p["metadata"].pop("resourceVersion", None)
            # finished launcher pods, as a VM's earlier pods are when the next comes: each
            # may take the active slot from another (kube/kubevirt.h, #17), so all 6 race
            p["status"]["phase"] = "Failed"
            names.append(p["metadata"]["name"])
            api.load([p])
        kc2 = dict(t.conf("/nonexistent", "1.1.0", name="tn", datastore="kubernetes",
                          kubeconfig=kc, ipv4_pools=["198.18.0.0/25"],
                          ipv6_pools=["2001:db8:77::/112"]))
        del kc2["state_dir"]
        pods = pods_for(hosts, names)
        vm_cids = [p["cid"] for p in pods[:VMPODS]]
        api.counters(reset=True)
        scenario("kubernetes", kc2, pods, kube_records(api), vm_cids)
        allocs, hn, _ = kube_records(api)()
        ok(hn == {"tn.vmi.default.vm-a"} and all(h == "tn.vmi.default.vm-a" for _, h, _ in allocs)
           and host_clean(hosts),
           "kubernetes: after the DELs only the VM's handle is left (the VM exists)",
           (hn, allocs, {n: (t.ipj(h, "link", "show", "type", "veth"),
                             t.ipj(h, "route", "show", "proto", "75")) for n, h in hosts.items()}))
    finally:
        api.stop()
        subprocess.run(["ip", "link", "del", vroot], stderr=subprocess.DEVNULL)
    t.finish()


if __name__ == "__main__":
    main()
