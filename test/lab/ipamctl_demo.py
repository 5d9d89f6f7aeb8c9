#!/usr/bin/env python3
"""ipamctl on a lab cluster (not a test: prints what an operator sees). Three nodes, the
kubernetes datastore on the lab's API server, VMs made by the simulated KubeVirt through
the real CNI plugin: vm-a (node-a), vm-b (node-b), vm-c registered first with
`ipamctl reserve` (IP + MAC from its old hypervisor) and then created, vm-a live-migrated
to node-b (ipamctl is run while the target pod is up, and after). Then a leak-repair
round: a pod deleted without its CNI DEL (a node crash) and an IPAMHandle deleted by hand;
check, release --from-report, check.

    python3 test/lab/ipamctl_demo.py       (root; about a minute)"""
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

KVNET = os.path.join(L.ROOT, "dist", "kvnet")


def ctl(lab, *args, show=True):
    cmd = [KVNET, "ipamctl", "-c", "/dev/null", "--datastore", "kubernetes", "--kubeconfig",
           lab.nodes["node-a"].kubeconfig] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/"})
    if show:
        print("$ kvnet ipamctl " + " ".join(args))
        sys.stdout.write(p.stdout)
        if p.stderr:
            sys.stdout.write(p.stderr)
        print("(exit %d)\n" % p.returncode)
    sys.stdout.flush()
    return p


def main():
    with L.Lab(agents=L.agent_built()) as lab:
        kv = KubeVirt(lab)
        ctl(lab, "pool", "add", L.POOL4)
        ctl(lab, "pool", "add", L.POOL6, "-o", "json")
        ctl(lab, "pool", "list")
        ctl(lab, "reserve", "--vm", "default/vm-c", "--ip", "198.18.0.200", "--mac",
            "02:4b:56:00:00:c8")
        ctl(lab, "reserve", "--vm", "default/vm-c", "--ip", "2001:db8:4b76::c8")
        a = kv.create_vm("vm-a", "node-a")
        kv.create_vm("vm-b", "node-b")
        c = kv.create_vm("vm-c", "node-a")
        link = L.ipj(c.pod.ns, "link", "show", "dev", "eth0")
        print("# vm-c's launcher pod eth0 (ip -j link): mac %s, addresses %s %s\n"
              % (link[0]["address"], c.ip4, c.ip6))
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        ctl(lab, "show")
        ctl(lab, "show", "--blocks", "-o", "wide")

        def during(m):
            print("# vm-a migrating to node-b: target pod %s is up\n" % m.tgt.name)
            ctl(lab, "show", "--vm", "default/vm-a", "-o", "wide")
        kv.migrate(a, "node-b", hooks={"TargetReady": during})
        print("# vm-a migrated to node-b (agents: %s)\n" % ("running" if lab.want_agents
                                                              else "not built"))
        ctl(lab, "show", "--vm", "default/vm-a", "-o", "wide")
        ctl(lab, "show", "--ip", a.ip4)
        ctl(lab, "show", "--borrowed")
        ctl(lab, "show", "--configuration")
        ctl(lab, "check")

        # leaks: a pod gone without CNI DEL, a handle record deleted by hand
        leak = kv.ordinary_pod("crashed", lab.nodes["node-c"])
        lab.api.delete(L.PODS % "default" + "/" + leak.name, {"gracePeriodSeconds": 0})
        st, hs = lab.api.get("/apis/kvnet.io/v1/ipamhandles")
        lost = [h["metadata"]["name"] for h in hs["items"]
                if client.ip4 in h["spec"].get("ips", [])]
        print("# pod %s deleted without CNI DEL; IPAMHandle %s of the live pod %s deleted by "
              "hand\n" % (leak.name, lost[0], client.name))
        lab.api.delete("/apis/kvnet.io/v1/ipamhandles/" + lost[0])
        report = os.path.join(tempfile.mkdtemp(prefix="kvt-demo-"), "report.json")
        ctl(lab, "check", "-o", report)
        print("$ cat report.json")
        print(json.dumps(json.load(open(report)), indent=2) + "\n")
        ctl(lab, "release", "--from-report", report)
        ctl(lab, "check")
        for f in (report,):
            os.unlink(f)
        os.rmdir(os.path.dirname(report))


if __name__ == "__main__":
    main()
