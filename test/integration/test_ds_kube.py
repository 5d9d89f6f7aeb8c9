#!/usr/bin/env python3
"""Integration tests of the kubernetes IPAM datastore (ipam/ds_kube) against the test API
server, driven through build/tools/ipam-kube. kvnet's own CRD manifests (dist/crds/) define
the kvnet.io types; what kvnet wrote is read back with the python client.

Covers: the objects written by pool/alloc/owner/clear/release; a conflict injected between
load and commit (a stalled PUT while another writer changes the block; the same handle
allocated twice concurrently); 8 processes x 10 allocations on two nodes (no duplicate
address, every handle present, ipam_check clean); the API server down or failing (a clear
-EAGAIN error, nothing written); API calls per allocation.
"""

import glob
import ipaddress
import os
import subprocess
import sys
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "kubeapi"))
sys.dont_write_bytecode = True

import client  # noqa: E402
import tap  # noqa: E402
import yaml  # noqa: E402

TOOL = os.path.join(ROOT, "build", "tools", "ipam-kube")
G = "/apis/kvnet.io/v1/"

_API = []


def api_server():
    if not _API:
        import atexit
        api = client.KubeAPI()
        atexit.register(api.stop)
        _API.append(api)
    return _API[0]


class DsKube(unittest.TestCase):
    def setUp(self):
        self.api = api_server()
        self.api.reset()
        for f in sorted(glob.glob(os.path.join(ROOT, "dist", "crds", "*.yaml"))):
            with open(f) as fp:
                crd = yaml.safe_load(fp)
            r = self.api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            self.assertEqual(r.status, 201, "%s: %s" % (f, r.raw))
        self.kc = os.path.join(self.api.dir, "kubeconfig-dskube")
        self.api.write_kubeconfig(self.kc)

    def run_tool(self, *args, kc=None, retries=0):
        p = subprocess.run([TOOL, "--kubeconfig", kc or self.kc, "--retries", str(retries)]
                           + list(args), capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        rc, out, err = self.run_tool(*args, **kw)
        self.assertEqual(rc, 0, "ipam-kube %s: rc=%d\n%s%s" % (" ".join(args), rc, out, err))
        return out.splitlines()

    def allocs(self, lines):
        """{handle: [ip, ...]} from alloc output."""
        return {ln.split()[0]: ln.split()[1:] for ln in lines if not ln.startswith("stats")}

    def items(self, plural):
        r = self.api.get(G + plural)
        self.assertEqual(r.status, 200, r.raw)
        return {o["metadata"]["name"]: o for o in r.json["items"]}

    def state_rv(self):
        return self.api._ctl("GET", "state")["resourceVersion"]

    def check_consistent(self, want_handles):
        """Independent check of the stored objects: no address twice, every allocation's
        handle exists and lists it, every handle's addresses are allocated to it."""
        blocks, handles = self.items("ipamblocks"), self.items("ipamhandles")
        seen = {}
        for name, b in blocks.items():
            net = ipaddress.ip_network(b["spec"]["cidr"])
            self.assertEqual(b["spec"]["used"], len(b["spec"].get("allocations") or []), name)
            for a in b["spec"].get("allocations") or []:
                ip = ipaddress.ip_address(a["ip"])
                self.assertIn(ip, net)
                self.assertNotIn(ip, seen, "%s allocated twice" % ip)
                seen[ip] = a["handle"]
        self.assertEqual(set(handles), set(want_handles))
        for h, o in handles.items():
            for ip in o["spec"]["ips"]:
                self.assertEqual(seen.get(ipaddress.ip_address(ip)), h, "%s of %s" % (ip, h))
        self.assertEqual(len(seen), sum(len(o["spec"]["ips"]) for o in handles.values()))
        return seen

    def test_crds_applied(self):
        r = self.api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        names = {o["metadata"]["name"]: o for o in r.json["items"]}
        for n in ("ippools.kvnet.io", "ipamblocks.kvnet.io", "ipamhandles.kvnet.io",
                  "ipamconfigs.kvnet.io"):
            self.assertIn(n, names)
            self.assertEqual(names[n]["spec"]["scope"], "Cluster")

    def test_objects_written(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        self.ok("pool", "p6", "2001:db8:7::/120", "122")
        pools = self.items("ippools")
        self.assertEqual(pools["p4"]["spec"]["cidr"], "198.18.0.0/24")
        self.assertEqual(pools["p4"]["kind"], "IPPool")
        self.assertEqual(pools["p6"]["spec"]["blockSize"], 122)

        got = self.allocs(self.ok("alloc", "net.vmi.vms.vm1", "node-a", "1", "dual"))
        ips = got["net.vmi.vms.vm1-0"]
        self.assertEqual(len(ips), 2)
        self.assertEqual(ipaddress.ip_address(ips[0]), ipaddress.ip_address("198.18.0.1"))
        self.assertIn(ipaddress.ip_address(ips[1]), ipaddress.ip_network("2001:db8:7::/120"))
        h = self.items("ipamhandles")["net.vmi.vms.vm1-0"]
        self.assertEqual(h["kind"], "IPAMHandle")
        self.assertEqual(h["apiVersion"], "kvnet.io/v1")
        self.assertEqual(h["spec"]["ips"], ips)
        blocks = self.items("ipamblocks")
        self.assertEqual(set(blocks), {"v4-198-18-0-0-26",
                                       [n for n in blocks if n.startswith("v6-")][0]})
        b4 = blocks["v4-198-18-0-0-26"]["spec"]
        self.assertEqual((b4["cidr"], b4["affinity"], b4["used"]), ("198.18.0.0/26", "node-a", 1))
        self.assertEqual(b4["allocations"][0]["handle"], "net.vmi.vms.vm1-0")
        self.assertEqual(b4["allocations"][0]["node"], "node-a")

        # allocating again for the same handle: same addresses, nothing written
        rv = self.state_rv()
        again = self.allocs(self.ok("alloc", "net.vmi.vms.vm1", "node-b", "1", "dual"))
        self.assertEqual(again, got)
        self.assertEqual(self.state_rv(), rv)

        # owner slot: set, then a wrong precondition is refused and changes nothing
        self.ok("owner", "net.vmi.vms.vm1-0", "active", "vms/virt-launcher-a", "uid-a", "node-a")
        a = self.items("ipamblocks")["v4-198-18-0-0-26"]["spec"]["allocations"][0]
        self.assertEqual(a["activeOwner"], {"namespace": "vms", "name": "virt-launcher-a",
                                            "uid": "uid-a", "node": "node-a"})
        rv = self.state_rv()
        rc, out, _ = self.run_tool("owner", "net.vmi.vms.vm1-0", "active", "vms/virt-launcher-b",
                                   "uid-b", "node-b", "uid-x")
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=EBUSY", out)
        rc, out, _ = self.run_tool("release", "net.vmi.vms.vm1-0")
        self.assertIn("ERR errno=EBUSY", out)
        self.assertEqual(self.state_rv(), rv)
        self.ok("owner", "net.vmi.vms.vm1-0", "alternate", "vms/virt-launcher-b", "uid-b",
                "node-b")
        a = self.items("ipamblocks")["v4-198-18-0-0-26"]["spec"]["allocations"][0]
        self.assertEqual(a["alternateOwner"]["uid"], "uid-b")

        # clear both slots, release: handle object deleted, allocations gone
        self.ok("clear", "net.vmi.vms.vm1-0", "active", "uid-a")
        self.ok("clear", "net.vmi.vms.vm1-0", "alternate", "uid-b")
        self.ok("release", "net.vmi.vms.vm1-0")
        self.assertEqual(self.items("ipamhandles"), {})
        for b in self.items("ipamblocks").values():
            self.assertEqual(b["spec"]["used"], 0)
        self.assertIn("ok pools=2", self.ok("check")[0])

    def test_api_calls_per_allocation(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        self.ok("alloc", "warm", "node-a", "1", "v4")  # claims the block
        self.api.counters(reset=True)
        out = self.ok("alloc", "h", "node-a", "10", "v4")
        c = self.api.counters()
        stats = dict(kv.split("=") for kv in out[-1].split()[1:])
        self.assertEqual(int(stats["requests"]), c["total"])  # the client counts the same
        self.assertEqual(c["verbs"], {"list": 40, "update": 10, "create": 10})
        print("# API calls per allocation (block already claimed): %.1f (%s)"
              % (c["total"] / 10, c["verbs"]), flush=True)
        self.api.counters(reset=True)
        self.ok("alloc", "n", "node-z", "1", "v4")  # a new node claims a block
        c = self.api.counters()
        print("# API calls for an allocation that claims a block: %d (%s)"
              % (c["total"], c["verbs"]), flush=True)
        self.assertEqual(c["verbs"], {"list": 4, "create": 2})

    def test_ipamconfig(self):
        """The IPAMConfig singleton: absent = Enabled; written as IPAMConfig "default" by an
        update, changed, read back by one GET, removed; a bad or misnamed object is named."""
        self.assertIn("config=none", self.ok("check")[0])
        self.assertEqual(self.ok("getconfig")[0], "kubeVirtVMAddressPersistence=Enabled")
        self.ok("config", "Disabled")
        objs = self.items("ipamconfigs")
        self.assertEqual(list(objs), ["default"])
        self.assertEqual(objs["default"]["kind"], "IPAMConfig")
        self.assertEqual(objs["default"]["spec"], {"kubeVirtVMAddressPersistence": "Disabled"})
        self.assertIn("config=Disabled", self.ok("check")[0])
        self.api.counters(reset=True)
        self.assertEqual(self.ok("getconfig")[0], "kubeVirtVMAddressPersistence=Disabled")
        self.assertEqual(self.api.counters()["total"], 1)
        rv = self.state_rv()
        self.ok("config", "Disabled")  # unchanged: nothing written
        self.assertEqual(self.state_rv(), rv)
        self.ok("config", "Enabled")
        self.assertEqual(self.items("ipamconfigs")["default"]["spec"],
                         {"kubeVirtVMAddressPersistence": "Enabled"})
        self.ok("config", "none")
        self.assertEqual(self.items("ipamconfigs"), {})
        # written by someone else with an empty spec: the default (Enabled)
        r = self.api.post(G + "ipamconfigs", {"apiVersion": "kvnet.io/v1", "kind": "IPAMConfig",
                                              "metadata": {"name": "default"}, "spec": {}})
        self.assertEqual(r.status, 201, r.raw)
        self.assertIn("config=Enabled", self.ok("check")[0])
        self.assertEqual(self.ok("getconfig")[0], "kubeVirtVMAddressPersistence=Enabled")
        # a bad value is named, by the load and by the GET
        r = self.api.get(G + "ipamconfigs/default")
        obj = r.json
        obj["spec"] = {"kubeVirtVMAddressPersistence": "Sometimes"}
        r = self.api.put(G + "ipamconfigs/default", obj)
        self.assertEqual(r.status, 200, r.raw)
        for cmd in ("check", "getconfig"):
            rc, out, _ = self.run_tool(cmd)
            self.assertEqual(rc, 1)
            self.assertIn("ERR errno=EUCLEAN", out)
            self.assertIn("kubeVirtVMAddressPersistence", out)
        self.api.delete(G + "ipamconfigs/default")
        r = self.api.post(G + "ipamconfigs", {"apiVersion": "kvnet.io/v1", "kind": "IPAMConfig",
                                              "metadata": {"name": "other"}, "spec": {}})
        self.assertEqual(r.status, 201, r.raw)
        rc, out, _ = self.run_tool("check")
        self.assertIn("ERR errno=EUCLEAN", out)
        self.assertIn("singleton", out)

    def test_paged_load(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        self.ok("pool", "p4b", "198.18.4.0/24")
        self.ok("alloc", "h", "node-a", "5", "v4")
        self.ok("alloc", "k", "node-b", "1", "v4")
        self.api.counters(reset=True)
        # page size 2: 2 pools = 1 page (the server may say there is no more),
        # 2 blocks, 6 handles = 3 pages; the whole state arrives
        p = subprocess.run([TOOL, "--kubeconfig", self.kc, "--page", "2", "check"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ok pools=2 blocks=2 handles=6 allocations=6", p.stdout)
        c = self.api.counters()
        lists = c["paths"]
        self.assertGreaterEqual(lists["GET " + G + "ipamhandles"], 3)
        self.assertGreaterEqual(lists["GET " + G + "ipamblocks"], 1)
        # an allocation through paged loads sees every record (no address twice)
        p = subprocess.run([TOOL, "--kubeconfig", self.kc, "--page", "1", "alloc", "m",
                            "node-a", "1", "v4"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.split()[1], "198.18.0.6")
        self.check_consistent({"h-%d" % i for i in range(5)} | {"k-0", "m-0"})

    def stall_first_block_put(self):
        self.api.fault(action="stall", ms=3000, count=1, method="PUT", path="/ipamblocks/")

    def wait_put_arrived(self):
        for _ in range(400):
            if any(k.startswith("PUT " + G + "ipamblocks")
                   for k in self.api.counters()["paths"]):
                return
            time.sleep(0.02)
        self.fail("the stalled PUT never arrived")

    def test_conflict_between_load_and_commit(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        self.ok("alloc", "warm", "node-a", "1", "v4")
        self.api.counters(reset=True)
        self.stall_first_block_put()
        slow = subprocess.Popen([TOOL, "--kubeconfig", self.kc, "--timeout-ms", "10000",
                                 "alloc", "slow", "node-a", "1", "v4"],
                                stdout=subprocess.PIPE, text=True)
        try:
            self.wait_put_arrived()
            fast = self.allocs(self.ok("alloc", "fast", "node-a", "1", "v4"))
            out, _ = slow.communicate(timeout=60)
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait()
        self.assertEqual(slow.returncode, 0, out)
        got = self.allocs(out.splitlines())
        self.assertNotEqual(got["slow-0"], fast["fast-0"])
        c = self.api.counters()
        # slow: load, PUT (409), load again, PUT, POST handle; fast: load, PUT, POST
        # (a load is 4 LISTs: pools, blocks, handles, configs)
        self.assertEqual(c["verbs"], {"list": 12, "update": 3, "create": 2})
        self.check_consistent({"warm-0", "slow-0", "fast-0"})

    def test_same_handle_concurrently_one_address(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        self.ok("alloc", "warm", "node-a", "1", "v4")
        self.stall_first_block_put()
        slow = subprocess.Popen([TOOL, "--kubeconfig", self.kc, "--timeout-ms", "10000",
                                 "alloc", "vm", "node-a", "1", "v4"],
                                stdout=subprocess.PIPE, text=True)
        try:
            self.wait_put_arrived()
            fast = self.allocs(self.ok("alloc", "vm", "node-b", "1", "v4"))
            out, _ = slow.communicate(timeout=60)
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait()
        self.assertEqual(slow.returncode, 0, out)
        self.assertEqual(self.allocs(out.splitlines()), fast)
        seen = self.check_consistent({"warm-0", "vm-0"})
        self.assertEqual(len(seen), 2)

    def test_concurrent_8x10_two_nodes(self):
        self.ok("pool", "p4", "198.18.0.0/22")
        self.api.counters(reset=True)
        procs = [subprocess.Popen([TOOL, "--kubeconfig", self.kc, "--timeout-ms", "10000",
                                   "--retries", "20", "alloc", "w%d" % i,
                                   "node-%s" % "ab"[i % 2], "10", "v4"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(8)]
        outs = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=300)
                outs.append((p.returncode, out, err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        got, again = {}, 0
        for rc, out, err in outs:
            self.assertEqual(rc, 0, out + err)
            lines = out.splitlines()
            got.update(self.allocs(lines))
            again += int(dict(kv.split("=") for kv in lines[-1].split()[1:])["again"])
        self.assertEqual(len(got), 80)
        ips = [ip for v in got.values() for ip in v]
        self.assertEqual(len(set(ips)), 80, "duplicate addresses handed out")
        seen = self.check_consistent(set(got))
        self.assertEqual({str(k) for k in seen}, set(ips))
        for h, v in got.items():
            self.assertEqual(seen[ipaddress.ip_address(v[0])], h)
        self.assertIn("allocations=80", self.ok("check")[0])
        c = self.api.counters()
        print("# 8x10 concurrent: %d API calls for 80 allocations (%.1f each), %s; "
              "%d updates re-run after the conflict bound" % (c["total"], c["total"] / 80,
                                                               c["verbs"], again), flush=True)

    def test_api_down(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        # an address where nothing listens
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        dead = os.path.join(self.api.dir, "kubeconfig-dead")
        self.api.write_kubeconfig(dead, server="https://127.0.0.1:%d" % port)
        rc, out, _ = self.run_tool("alloc", "h", "node-a", "1", "v4", kc=dead)
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=EAGAIN", out)
        self.assertIn("ipam kubernetes datastore: list ippools: API server unavailable", out)
        # the server failing (503) on the last LIST: nothing is written
        rv = self.state_rv()
        self.api.fault(action="error", code=503, count=0, path="/ipamhandles")
        try:
            rc, out, _ = self.run_tool("alloc", "h", "node-a", "1", "v4")
        finally:
            self.api.clear_faults()
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=EAGAIN", out)
        self.assertIn("list ipamhandles: API server unavailable", out)
        self.assertEqual(self.state_rv(), rv)
        self.assertEqual(self.items("ipamblocks"), {})
        # and it works once the server is back
        self.assertEqual(self.allocs(self.ok("alloc", "h", "node-a", "1", "v4")),
                         {"h-0": ["198.18.0.1"]})
        # the server failing half way through a commit (block written, handle create
        # refused): the block write is undone, no stray allocation stays
        before = self.items("ipamblocks")["v4-198-18-0-0-26"]["spec"]
        self.api.fault(action="error", code=503, count=1, method="POST", path="/ipamhandles")
        rc, out, _ = self.run_tool("alloc", "g", "node-a", "1", "v4")
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=EAGAIN", out)
        self.assertIn("create ipamhandles g-0: API server unavailable", out)
        self.assertEqual(self.items("ipamblocks")["v4-198-18-0-0-26"]["spec"], before)
        self.check_consistent({"h-0"})

    def test_bad_stored_object(self):
        self.ok("pool", "p4", "198.18.0.0/24")
        r = self.api.post(G + "ipamhandles", {"apiVersion": "kvnet.io/v1", "kind": "IPAMHandle",
                                              "metadata": {"name": "junk"},
                                              "spec": {"ips": ["198.18.0.5"], "extra": 1}})
        self.assertEqual(r.status, 201, r.raw)
        rc, out, _ = self.run_tool("alloc", "h", "node-a", "1", "v4")
        self.assertEqual(rc, 1)
        self.assertIn("ERR errno=EUCLEAN", out)
        self.assertIn("ipamhandles junk: bad spec", out)


if __name__ == "__main__":
    tap.main()
