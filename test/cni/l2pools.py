#!/usr/bin/env python3
"""An L2Network's pools are never the routed allocator's, also before the network's first
CNI ADD (issue #13 edge (c); ipam.h ipam_pool_claim), file datastore.

The user's order of work: the L2Network vlan100's subnet made a pool with `ipamctl pool
add` after the L2Network exists, and vlan300's pool added *before* its L2Network existed,
then the VMs' original addresses imported with `ipamctl import` (network column). No L2
ADD happens. Then ordinary pods are added with the routed mode (a conflist whose pool is a
/26, too small for them): every address they get is in the routed pool, the ADD after
the last free one fails with "exhausted" instead of taking an address of an L2Network,
and `ipamctl pool list -o json` names the networks. A control: a pool inside no
L2Network, added like vlan300's and never imported into, does serve the routed pods."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402

ok = t.ok


def l2net(name, vlan, subnet, gw):
    return {"apiVersion": "kvnet.io/v1", "kind": "L2Network", "metadata": {"name": name},
            "spec": {"vlan": vlan, "trunk": {"interface": "tr0"},
                     "ipv4": {"subnet": subnet, "gateway": gw}}}


def ctl(state, *args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    return subprocess.run([t.KVNET, "ipamctl", "-c", "/dev/null", "--datastore", "file",
                           "--state-dir", state] + list(args), capture_output=True, text=True,
                          env=env, timeout=60)


def write_net(state, doc):
    d = os.path.join(state, "l2networks")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, doc["metadata"]["name"] + ".json"), "w") as f:
        json.dump(doc, f)


def main():
    H = t.netns("l2ph")
    tmp = t.tmpdir()
    state = os.path.join(tmp, "ipam")
    os.makedirs(state)
    write_net(state, l2net("vlan100", 100, "198.18.100.0/24", "198.18.100.1"))
    p = ctl(state, "pool", "add", "198.18.100.0/24")
    ok(p.returncode == 0 and "serves only L2Network vlan100" in p.stdout,
       "ipamctl pool add of vlan100's subnet: the pool serves only vlan100", p.stdout + p.stderr)
    p = ctl(state, "pool", "add", "198.18.30.0/24")
    ok(p.returncode == 0 and "serves only" not in p.stdout,
       "ipamctl pool add 198.18.30.0/24 before any L2Network holds it: a plain pool",
       p.stdout + p.stderr)
    p = ctl(state, "pool", "add", "198.18.31.0/28", "--block-size", "28")
    ok(p.returncode == 0, "a third plain pool (the control)", p.stderr)
    write_net(state, l2net("vlan300", 300, "198.18.30.0/24", "198.18.30.1"))
    inv = os.path.join(tmp, "inv.csv")
    with open(inv, "w") as f:
        f.write("namespace,vm,ip,mac,network\n"
                "default,vm-a,198.18.100.10,02:00:00:00:00:0a,vlan100\n"
                "default,vm-b,198.18.30.10,02:00:00:00:00:0b,vlan300\n")
    p = ctl(state, "import", inv)
    ok(p.returncode == 0 and "1 pool now serves only the L2Network" in p.stdout,
       "ipamctl import with the network column: vlan300's pool became vlan300's",
       p.stdout + p.stderr)
    p = ctl(state, "pool", "list", "-o", "json")
    nets = {}
    try:
        nets = {i["cidr"]: i.get("network", "") for i in json.loads(p.stdout)["items"]}
    except (ValueError, KeyError):
        pass
    ok(nets == {"198.18.100.0/24": "vlan100", "198.18.30.0/24": "vlan300",
                "198.18.31.0/28": ""},
       "ipamctl pool list -o json names each pool's network", p.stdout + p.stderr)

    # the routed CNI ADD: a /26 of its own, then the control pool, never an L2Network's
    conf = t.conf(state, ipv4_pools=["198.18.0.0/26"])
    del conf["ipv6_pools"]
    got, last = [], None
    for i in range(100):
        pns = t.netns("l2pp%d" % i)
        r = t.cni("ADD", conf, H, cid="pod%d" % i, netns_path="/run/netns/" + pns)
        t.netns_del(pns)
        last = r
        if r.rc != 0:
            break
        got += [ip["address"].split("/")[0] for ip in r.json.get("ips", [])]
    l2 = [a for a in got if a.startswith(("198.18.100.", "198.18.30."))]
    ok(got and not l2, "%d routed CNI ADDs: no address of vlan100's or vlan300's pools "
       "(%d in the /26, %d in the plain pool 198.18.31.0/28)" % (
           len(got), len([a for a in got if a.startswith("198.18.0.")]),
           len([a for a in got if a.startswith("198.18.31.")])), l2[:10])
    ok(any(a.startswith("198.18.31.") for a in got),
       "the control: the plain pool 198.18.31.0/28 did serve routed pods", got[-5:])
    ok(last is not None and last.rc != 0 and "exhaust" in (last.out + last.err).lower(),
       "once the routed pools are full the ADD fails (exhausted), it takes nothing of an "
       "L2Network", (last.out + last.err)[-400:] if last else None)
    t.finish()


if __name__ == "__main__":
    try:
        main()
    finally:
        t.cleanup()
