#!/usr/bin/env python3
"""Black-box CNI conformance for dist/kvnet (file datastore, ordinary pods): every command,
every result version, every error code, DEL idempotence, CHECK after a deleted host
route, GC. Prints TAP lines; kernel state is read with `ip -j`, state files directly."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cnilib as t  # noqa: E402

ok = t.ok


def err_is(r, code, name, word=None):
    j = r.json or {}
    good = (r.rc != 0 and j.get("code") == code and isinstance(j.get("msg"), str)
            and "details" in j and "cniVersion" in j)
    if word is not None:
        good = good and word in (j.get("msg", "") + " " + j.get("details", ""))
    return ok(good, name, r)


def handles(state):
    return t.handles(state)


def main():
    host = t.netns("h")
    state = t.tmpdir()
    c = t.conf(state)

    # VERSION
    r = t.cni("VERSION", {"cniVersion": "1.1.0"}, host)
    ok(r.rc == 0 and r.json and r.json.get("supportedVersions") == t.VERSIONS,
       "VERSION lists the five versions", r)
    r = t.cni("VERSION", None, host, raw="")
    ok(r.rc == 0 and r.json and r.json.get("supportedVersions") == t.VERSIONS,
       "VERSION with empty stdin", r)

    # results of every version
    for i, v in enumerate(t.VERSIONS):
        pod = t.netns("p%d" % i)
        cid = "ver-%d" % i
        args = "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-%d;IgnoreUnknown=1;X=1" % i
        r = t.cni("ADD", t.conf(state, v), host, cid=cid, netns_path="/run/netns/" + pod,
                  args=args)
        j = r.json or {}
        ips = j.get("ips", [])
        shape = (r.rc == 0 and j.get("cniVersion") == v and len(ips) == 2
                 and all(("version" in x) == (i < 3) for x in ips)
                 and all(x.get("interface") == 1 for x in ips)
                 and j["interfaces"][1]["name"] == "eth0"
                 and j["interfaces"][1].get("sandbox") == "/run/netns/" + pod
                 and j["interfaces"][0]["mac"] == "ee:ee:ee:ee:ee:ee"
                 and j["interfaces"][0]["name"].startswith("kv")
                 and len(j["interfaces"][0]["name"]) == 13)
        if i < 3:
            shape = shape and sorted(x["version"] for x in ips) == ["4", "6"]
        ok(shape, "ADD result shape for cniVersion %s" % v, r)
        addrs = sorted(a["local"] + "/" + str(a["prefixlen"])
                       for l in t.ipj(pod, "addr", "show", "dev", "eth0")
                       for a in l.get("addr_info", []) if a.get("scope") == "global")
        ok(addrs == sorted(x["address"] for x in ips), "ADD %s: addresses on eth0 (ip -j)" % v,
           "%s vs %s" % (addrs, ips))
        if i >= 2:
            prev = dict(t.conf(state, v), prevResult=j)
            r = t.cni("CHECK", prev, host, cid=cid, netns_path="/run/netns/" + pod, args=args)
            ok(r.rc == 0 and r.out.strip() == "", "CHECK %s succeeds and prints nothing" % v, r)
        r = t.cni("DEL", dict(t.conf(state, v), prevResult=j), host, cid=cid,
                  netns_path="/run/netns/" + pod, args=args)
        ok(r.rc == 0, "DEL %s" % v, r)
        ok(t.ipj(pod, "link", "show", "eth0") == [], "DEL %s removed eth0" % v)
    ok(handles(state) == [], "all handles released after DEL", handles(state))

    # CHECK after someone deleted the host route
    pod = t.netns("chk")
    args = "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=chk"
    r = t.cni("ADD", c, host, cid="chk", netns_path="/run/netns/" + pod, args=args)
    res = r.json
    hostif = res["interfaces"][0]["name"]
    hr = t.ipj(host, "route", "show", "dev", hostif, "proto", "75")
    v4 = res["ips"][0]["address"]
    ok(any(x["dst"] == v4.split("/")[0] and x.get("metric") == 1024 and x.get("scope") == "link"
           for x in hr), "host route IP/32 dev kv... scope link metric 1024 proto 75", hr)
    # the gateway's address on the host veth (issue #11), and CHECK missing it (checked
    # before the routes; deleting a link's last IPv4 address flushes its routes too)
    ga = [(a["local"], a["prefixlen"], a["scope"]) for x in t.ipj(host, "-4", "addr", "show", "dev",
                                                                 hostif)
          for a in x.get("addr_info", [])]
    ok(ga == [("169.254.1.1", 32, "host")], "host veth has 169.254.1.1/32 scope host", ga)
    r = t.cni("CHECK", dict(c, prevResult=res), host, cid="chk", netns_path="/run/netns/" + pod,
              args=args)
    ok(r.rc == 0, "CHECK succeeds with the gateway address in place", r)
    subprocess.run(["ip", "-n", host, "route", "del", v4, "dev", hostif], check=True)
    r = t.cni("CHECK", dict(c, prevResult=res), host, cid="chk", netns_path="/run/netns/" + pod,
              args=args)
    ok(r.rc != 0 and r.json and "host route" in r.json.get("details", ""),
       "CHECK fails naming the deleted host route", r)
    subprocess.run(["ip", "-n", host, "addr", "del", "169.254.1.1/32", "dev", hostif], check=True)
    r = t.cni("CHECK", dict(c, prevResult=res), host, cid="chk", netns_path="/run/netns/" + pod,
              args=args)
    ok(r.rc != 0 and r.json and "gateway address 169.254.1.1/32" in r.json.get("details", ""),
       "CHECK fails naming the missing gateway address", r)
    r = t.cni("CHECK", c, host, cid="chk", netns_path="/run/netns/" + pod, args=args)
    err_is(r, 7, "CHECK without prevResult is code 7", "prevResult")

    # ADD when the interface exists
    r = t.cni("ADD", c, host, cid="chk2", netns_path="/run/netns/" + pod, args=args)
    ok(r.rc != 0 and r.json and "already exists" in r.json.get("details", ""),
       "ADD fails when eth0 already exists in the pod", r)
    ok("kvt.chk2" not in handles(state), "failed ADD holds no address", handles(state))

    # DEL idempotence
    for k in range(2):
        r = t.cni("DEL", c, host, cid="chk", netns_path="/run/netns/" + pod, args=args)
        ok(r.rc == 0 and r.out.strip() == "", "DEL #%d succeeds" % (k + 1), r)
    r = t.cni("DEL", c, host, cid="chk", netns_path="", args=args)
    ok(r.rc == 0, "DEL with CNI_NETNS empty", r)
    pod2 = t.netns("gone")
    r = t.cni("ADD", c, host, cid="gone", netns_path="/run/netns/" + pod2)
    ok(r.rc == 0, "ADD without CNI_ARGS (host veth named from the container ID)", r)
    t.netns_del(pod2)
    r = t.cni("DEL", c, host, cid="gone", netns_path="/run/netns/" + pod2)
    ok(r.rc == 0, "DEL with the netns gone", r)
    ok("kvt.gone" not in handles(state), "DEL with netns gone released the address",
       handles(state))
    st2 = t.tmpdir()
    r = t.cni("DEL", t.conf(os.path.join(st2, "never")), host, cid="x", netns_path="")
    ok(r.rc == 0, "DEL with no state at all", r)

    # STATUS
    r = t.cni("STATUS", c, host)
    ok(r.rc == 0 and r.out.strip() == "", "STATUS 0 with a usable datastore", r)
    blocker = os.path.join(st2, "file")
    open(blocker, "w").close()
    r = t.cni("STATUS", t.conf(os.path.join(blocker, "sub")), host)
    err_is(r, 50, "STATUS code 50 when the datastore is unusable")
    pd = t.netns("dsgone")
    r = t.cni("ADD", t.conf(os.path.join(blocker, "sub")), host, cid="dsgone",
              netns_path="/run/netns/" + pd)
    err_is(r, 11, "ADD with an unusable datastore is code 11", "datastore")
    ok(t.ipj(pd, "link", "show", "eth0") == [], "ADD with an unusable datastore created nothing")
    r = t.cni("STATUS", t.conf(state, "1.0.0"), host)
    err_is(r, 1, "STATUS with cniVersion 1.0.0 is code 1")

    # GC
    pods = {}
    for n in ("ga", "gb", "gc"):
        ns = t.netns(n)
        r = t.cni("ADD", c, host, cid=n, netns_path="/run/netns/" + ns)
        pods[n] = (ns, r.json)
    ok(all(p[1] for p in pods.values()), "three ADDs for GC")
    before = handles(state)
    gc = dict(c)
    gc["cni.dev/valid-attachments"] = [{"containerID": "ga", "ifname": "eth0"},
                                       {"containerID": "gc", "ifname": "eth0"}]
    gc["cni.dev/attachments"] = gc["cni.dev/valid-attachments"]
    r = t.cni("GC", gc, host)
    after = handles(state)
    ok(r.rc == 0 and "kvt.gb" in before and "kvt.gb" not in after and "kvt.ga" in after
       and "kvt.gc" in after, "GC releases exactly what is not listed", (r, before, after))
    gc2 = dict(c)
    gc2["cni.dev/attachments"] = [{"containerID": "ga", "ifname": "eth0"}]
    r = t.cni("GC", gc2, host)
    ok(r.rc == 0 and handles(state) == ["kvt.ga"], "GC reads cni.dev/attachments too",
       (r, handles(state)))
    r = t.cni("GC", dict(c, **{"cni.dev/valid-attachments": []}), host)
    ok(r.rc == 0 and handles(state) == [], "GC with an empty list releases everything",
       handles(state))
    r = t.cni("GC", t.conf(state, "0.4.0", **{"cni.dev/valid-attachments": []}), host)
    err_is(r, 1, "GC with cniVersion 0.4.0 is code 1")
    for n, (ns, _) in pods.items():
        t.cni("DEL", c, host, cid=n, netns_path="/run/netns/" + ns)

    # errors: environment
    pe = t.netns("err")
    pp = "/run/netns/" + pe
    r = t.cni("ADD", c, host, cid="", netns_path=pp)
    err_is(r, 4, "missing CNI_CONTAINERID is code 4", "CNI_CONTAINERID")
    r = t.cni("ADD", c, host, cid="-bad", netns_path=pp)
    err_is(r, 4, "bad container ID is code 4", "CNI_CONTAINERID")
    r = t.cni("ADD", c, host, cid="a/b", netns_path=pp)
    err_is(r, 4, "container ID with '/' is code 4")
    r = t.cni("ADD", c, host, cid="e1", netns_path="")
    err_is(r, 4, "missing CNI_NETNS on ADD is code 4", "CNI_NETNS")
    r = t.cni("ADD", c, host, cid="e1", netns_path=pp, ifname="")
    err_is(r, 4, "missing CNI_IFNAME is code 4", "CNI_IFNAME")
    for bad in ("a" * 16, "et/h0", "eth:0", "eth 0"):
        r = t.cni("ADD", c, host, cid="e1", netns_path=pp, ifname=bad)
        err_is(r, 4, "bad CNI_IFNAME %r is code 4" % bad, "CNI_IFNAME")
    r = t.cni("ADD", c, host, cid="e1", netns_path=pp, args="FOO=1")
    err_is(r, 4, "unknown CNI_ARGS key is code 4", "FOO")
    r = t.cni("ADD", c, host, cid="e1", netns_path=pp, args="novalue")
    err_is(r, 4, "CNI_ARGS without '=' is code 4")
    r = t.cni("ADD", c, host, cid="e1", netns_path="/run/netns/kvt-%d-nonexistent" % t.PID)
    err_is(r, 4, "ADD into a missing netns is an error naming it", "nonexistent")
    r = t.cni("FROB", c, host)
    err_is(r, 4, "unknown CNI_COMMAND is code 4", "FROB")
    r = t.cni("ADD", c, host, env_over={"CNI_COMMAND": ""}, role=True)
    err_is(r, 4, "empty CNI_COMMAND (kvnet cni) is code 4", "CNI_COMMAND")

    # errors: JSON and config
    for raw in ("", "{", "[1]", '{"a":1,}', "nul\x00"):
        r = t.cni("ADD", None, host, cid="e1", netns_path=pp, raw=raw)
        err_is(r, 6, "bad JSON %r is code 6" % raw[:8])
    r = t.cni("ADD", dict(c, frob=1, zap=2), host, cid="e1", netns_path=pp)
    err_is(r, 7, "unknown fields are code 7 naming them", "frob, zap")
    r = t.cni("ADD", dict(c, cniVersion="0.2.0"), host, cid="e1", netns_path=pp)
    err_is(r, 1, "unsupported cniVersion is code 1", "0.2.0")
    cc = dict(c)
    del cc["name"]
    r = t.cni("ADD", cc, host, cid="e1", netns_path=pp)
    err_is(r, 7, "missing name is code 7", "name")
    r = t.cni("ADD", dict(c, datastore="kubernetes", kubeconfig="/nonexistent/kc"), host,
              cid="e1", netns_path=pp)
    err_is(r, 11, "kubernetes datastore with a missing kubeconfig is code 11", "kubeconfig")
    for k, v, word in (("type", "ptp", "type"), ("datastore", "etcd", "datastore"),
                       ("state_dir", "rel/dir", "state_dir"), ("mtu", 20, "mtu"),
                       ("mtu", "big", "mtu"), ("ipv4_pools", ["2001:db8::/112"], "ipv4_pools"),
                       ("ipv4_pools", ["198.18.0.1/24"], "ipv4_pools"),
                       ("log_level", "loud", "log_level"), ("log_file", "x.log", "log_file"),
                       ("policy_setup_timeout_seconds", -1, "policy_setup_timeout"),
                       ("pools", "198.18.0.0/24", "pools")):
        r = t.cni("ADD", dict(c, **{k: v}), host, cid="e1", netns_path=pp)
        err_is(r, 7, "bad %s=%r is code 7" % (k, v), word)
    r = t.cni("ADD", dict(c, ipv4_pools=[], ipv6_pools=[]), host, cid="e1", netns_path=pp)
    err_is(r, 7, "no pools is code 7", "pools")
    r = t.cni("ADD", dict(c, ipv4_pools=["198.18.0.0/24", "198.18.0.0/25"]), host, cid="e1",
              netns_path=pp)
    err_is(r, 7, "overlapping pools are code 7")
    ok(t.ipj(pe, "link", "show", "eth0") == [] and "kvt.e1" not in handles(state),
       "no failed ADD left an interface or an address")

    # a failure half way through ADD undoes everything: IPv6 disabled in the pod
    pu = t.netns("undo")
    subprocess.run(["ip", "netns", "exec", pu, "sysctl", "-qw",
                    "net.ipv6.conf.default.disable_ipv6=1"], check=True)
    r = t.cni("ADD", c, host, cid="undo", netns_path="/run/netns/" + pu)
    ok(r.rc != 0 and r.json and r.json.get("code") == 999, "ADD into a pod without IPv6 fails",
       r)
    ok(t.ipj(pu, "link", "show", "eth0") == [] and
       t.ipj(host, "link", "show", "type", "veth") == [] and "kvt.undo" not in handles(state)
       and t.ipj(host, "route", "show", "proto", "75") == [],
       "failed ADD left no veth, no host route, no address",
       (t.ipj(host, "link", "show", "type", "veth"), handles(state)))

    # accepted optional keys, log file, single-stack v4
    logf = os.path.join(state, "cni.log")
    c4 = t.conf(t.tmpdir(), "1.1.0", mtu=1400, log_file=logf, log_level="debug",
                policy_setup_timeout_seconds=30, policy_timeout_action="continue",
                ipv6_pools=[])  # no agent here: continue (with a warning) instead of failing
    r = t.cni("ADD", c4, host, cid="v4only", netns_path=pp,
              args="K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=0c1d2e3f-0a4b-4c5d-8e9f-1a2b3c4d5e6f;"
              "K8S_POD_INFRA_CONTAINER_ID=x")
    j = r.json or {}
    link = t.ipj(pe, "link", "show", "eth0")
    ok(r.rc == 0 and len(j.get("ips", [])) == 1 and j["interfaces"][1].get("mtu") == 1400
       and link and link[0]["mtu"] == 1400, "IPv4-only ADD with mtu 1400", r)
    ok(os.path.exists(logf) and "ADD v4only" in open(logf).read(), "log_file gets a line")
    r = t.cni("DEL", c4, host, cid="v4only", netns_path=pp,
              args="K8S_POD_NAMESPACE=a;K8S_POD_NAME=b")
    ok(r.rc == 0 and t.ipj(host, "link", "show", "type", "veth") == [],
       "DEL removes the host veth", r)
    t.finish()


if __name__ == "__main__":
    main()
