#!/usr/bin/env python3
"""Concurrent plugin processes on one node (the runtime calls ADD/DEL for different pods in
parallel): 24 simultaneous ADDs get 24 distinct addresses per family (checked in the
results, in the pods with `ip -j` and in the file datastore), then 24 simultaneous DELs
leave no handle, veth or host route."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cnilib as t  # noqa: E402

ok = t.ok
N = 24


def spawn(command, conf, host, i, ns):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": "par-%d" % i, "CNI_NETNS": "/run/netns/" + ns,
           "CNI_IFNAME": "eth0", "CNI_ARGS": "K8S_POD_NAMESPACE=par;K8S_POD_NAME=p%d" % i}
    p = subprocess.Popen(["nsenter", "--net=/run/netns/" + host, t.KVNET],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    p.stdin.write(json.dumps(conf))
    p.stdin.close()
    return p


def main():
    host = t.netns("node")
    state = t.tmpdir()
    c = t.conf(state, "1.0.0", name="par")
    nss = [t.netns("p%d" % i) for i in range(N)]
    procs = [spawn("ADD", c, host, i, nss[i]) for i in range(N)]
    results = []
    for p in procs:
        out = p.stdout.read()
        p.wait()
        results.append((p.returncode, out))
    good = [json.loads(o) for rc, o in results if rc == 0]
    ok(len(good) == N, "%d parallel ADDs all succeed" % N, [o for rc, o in results if rc])
    ips = [x["address"] for g in good for x in g["ips"]]
    ok(len(ips) == 2 * N and len(set(ips)) == 2 * N, "%d distinct addresses (v4+v6)" % (2 * N),
       sorted(ips))
    seen = set()
    for ns in nss:
        for link in t.ipj(ns, "addr", "show", "dev", "eth0"):
            for a in link["addr_info"]:
                if a["scope"] == "global":
                    seen.add("%s/%d" % (a["local"], a["prefixlen"]))
    ok(seen == set(ips), "the pods' eth0 addresses (ip -j) are exactly the results")
    ok(len(t.handles(state)) == N, "%d handle records in the file datastore" % N)
    procs = [spawn("DEL", c, host, i, nss[i]) for i in range(N)]
    rcs = [p.wait() for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    ok(rcs == [0] * N, "%d parallel DELs all succeed" % N, rcs)
    ok(t.handles(state) == [], "no handle left")
    ok(t.ipj(host, "link", "show", "type", "veth") == []
       and t.ipj(host, "route", "show", "proto", "75") == [], "no veth or host route left")
    t.finish()


if __name__ == "__main__":
    main()
