#!/usr/bin/env python3
"""Two pods on one node through dist/kvnet ADD: working v4 and v6 between them (iputils
ping inside `ip netns exec`), the data plane of design.md checked with `ip -j` and sysctl,
then DEL leaves no link, route or address behind."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cnilib as t  # noqa: E402

ok = t.ok


def sysctl(ns, name):
    p = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-n", name], capture_output=True,
                       text=True)
    return p.stdout.strip()


def ping(ns, addr):
    p = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-w", "10",
                        addr], capture_output=True, text=True)
    return p.returncode == 0, p.stdout + p.stderr


def main():
    host = t.netns("node")
    state = t.tmpdir()
    c = t.conf(state, "1.0.0", name="podnet")
    pods = {}
    for n in ("a", "b"):
        ns = t.netns("pod" + n)
        args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-%s" % n
        r = t.cni("ADD", c, host, cid="cid-" + n, netns_path="/run/netns/" + ns, args=args)
        ok(r.rc == 0 and r.json and len(r.json["ips"]) == 2, "ADD pod %s (dual-stack)" % n, r)
        if not r.json:
            t.finish()
        pods[n] = (ns, r.json, args)

    for n, (ns, res, _) in pods.items():
        hostif = res["interfaces"][0]["name"]
        v4 = [x["address"].split("/")[0] for x in res["ips"] if ":" not in x["address"]][0]
        v6 = [x["address"].split("/")[0] for x in res["ips"] if ":" in x["address"]][0]
        link = t.ipj(host, "link", "show", hostif)
        ok(link and link[0]["address"] == "ee:ee:ee:ee:ee:ee" and "UP" in link[0]["flags"],
           "pod %s: host veth %s up with MAC ee:ee:ee:ee:ee:ee" % (n, hostif), link)
        ok(sysctl(host, "net.ipv4.conf.%s.proxy_arp" % hostif) == "1"
           and sysctl(host, "net.ipv4.conf.%s.forwarding" % hostif) == "1",
           "pod %s: proxy_arp and forwarding on the host veth" % n)
        addrs = {(a["local"], a["prefixlen"]) for l in t.ipj(ns, "addr", "show", "dev", "eth0")
                 for a in l["addr_info"] if a["scope"] == "global"}
        ok(addrs == {(v4, 32), (v6, 128)}, "pod %s: eth0 has %s/32 and %s/128" % (n, v4, v6),
           addrs)
        r4 = t.ipj(ns, "route", "show", "default")
        r6 = t.ipj(ns, "-6", "route", "show", "default")
        ok(r4 and r4[0].get("gateway") == "169.254.1.1" and r4[0]["dev"] == "eth0"
           and "onlink" in r4[0].get("flags", []), "pod %s: v4 default via 169.254.1.1 onlink" % n,
           r4)
        ok(r6 and r6[0].get("gateway") == "fe80::ecee:eeff:feee:eeee" and r6[0]["dev"] == "eth0",
           "pod %s: v6 default via the host veth's link-local" % n, r6)
        h4 = t.ipj(host, "route", "show", v4)
        h6 = t.ipj(host, "-6", "route", "show", v6)
        ok(h4 and h4[0]["dev"] == hostif and h4[0].get("protocol") == "75"
           and h4[0].get("metric") == 1024 and h4[0].get("scope") == "link",
           "pod %s: host route %s/32 dev %s scope link metric 1024 proto 75" % (n, v4, hostif), h4)
        ok(h6 and h6[0]["dev"] == hostif and h6[0].get("protocol") == "75"
           and h6[0].get("metric") == 1024, "pod %s: host route %s/128 proto 75" % (n, v6), h6)

    def addr_of(n, six):
        return [x["address"].split("/")[0] for x in pods[n][1]["ips"]
                if (":" in x["address"]) == six][0]

    for src, dst in (("a", "b"), ("b", "a")):
        for six in (False, True):
            good, out = ping(pods[src][0], addr_of(dst, six))
            ok(good, "ping pod %s -> pod %s over IPv%d" % (src, dst, 6 if six else 4), out)

    for n, (ns, res, args) in pods.items():
        r = t.cni("DEL", c, host, cid="cid-" + n, netns_path="/run/netns/" + ns, args=args)
        ok(r.rc == 0, "DEL pod %s" % n, r)
    ok(t.ipj(host, "route", "show", "proto", "75") == []
       and t.ipj(host, "-6", "route", "show", "proto", "75") == [],
       "no proto 75 route left on the node")
    ok(t.ipj(host, "link", "show", "type", "veth") == [], "no veth left on the node")
    t.finish()


if __name__ == "__main__":
    main()
