#!/usr/bin/env python3
"""A real CNI client: podman 4 (Debian 12) with its CNI backend runs containers on a kvnet
network, offline.

Set-up, all under a temporary directory and a node namespace kvt-<pid>-pmnode (podman is
started inside it with nsenter, so the plugin's host side - veths, routes, sysctls - lives
there and never on the machine's interfaces):
  containers.conf   network_backend = "cni", cni_plugin_dirs = [DIR/cnibin (dist/kvnet as
                    "kvnet"), /usr/lib/cni], network_config_dir = DIR/net.d; default
                    ulimits the sandbox allows
  net.d/kvtpm.conflist   a kvnet network with the file datastore in DIR/state
  rootfs            /bin/busybox (busybox-static) and its applet links: `podman run
                    --rootfs`, no image, no pull
  storage           --root/--runroot/--tmpdir in DIR, vfs driver, runc, cgroupfs (crun
                    refuses this machine's hybrid cgroup layout)
Checked with tools other than kvnet: container A's address (podman inspect) is on its
eth0 (busybox ip inside), the node has a proto 75 host route to it (ip -j), the handle
record is named after podman's container ID; container B reaches A (busybox ping); removing
A runs DEL: record, veth and route gone. Everything (containers, podman's netns, storage,
the node namespace) is removed on every exit path."""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402

ok = t.ok
NET = "kvtpm"
POOL = "198.18.9.0/24"


def skip(why):
    print("ok - podman # SKIP " + why)
    t.finish()


class Podman:
    def __init__(self, d, node):
        self.d, self.node = d, node
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers.conf"))

    def __call__(self, *args, timeout=120):
        cmd = ["nsenter", "--net=/run/netns/" + self.node, "podman",
               "--root", os.path.join(self.d, "root"), "--runroot", os.path.join(self.d, "run"),
               "--tmpdir", os.path.join(self.d, "tmp"), "--storage-driver", "vfs",
               "--events-backend", "file", "--cgroup-manager", "cgroupfs",
               "--runtime", "runc"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout)
        return p.returncode, p.stdout.strip(), p.stderr.strip()[-600:]


def setup(d):
    for sub in ("cnibin", "net.d", "state", "root", "run", "tmp", "rootfs/bin", "rootfs/proc",
                "rootfs/sys", "rootfs/dev", "rootfs/etc", "rootfs/tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(d, "rootfs", "bin", "busybox"))
    for a in ("sh", "ip", "ping", "sleep", "cat"):
        os.symlink("busybox", os.path.join(d, "rootfs", "bin", a))
    shutil.copy(t.KVNET, os.path.join(d, "cnibin", "kvnet"))
    with open(os.path.join(d, "net.d", NET + ".conflist"), "w") as f:
        json.dump({"cniVersion": "1.0.0", "name": NET,
                   "plugins": [{"type": "kvnet", "datastore": "file",
                                "state_dir": os.path.join(d, "state"), "ipv4_pools": [POOL],
                                "log_file": os.path.join(d, "kvnet.log")}]}, f)
    with open(os.path.join(d, "containers.conf"), "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                '[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["%s", "/usr/lib/cni"]\n'
                'network_config_dir = "%s"\n'
                % (os.path.join(d, "cnibin"), os.path.join(d, "net.d")))


def main():
    for tool, pkg in (("podman", "podman"), ("runc", "runc"), ("busybox", "busybox-static")):
        if not shutil.which(tool) and not os.path.exists("/bin/" + tool):
            skip("%s not installed (./build.sh --deps test installs %s)" % (tool, pkg))
    d = t.tmpdir()
    node = t.netns("pmnode")
    subprocess.run(["ip", "-n", node, "link", "set", "lo", "up"], check=True)
    setup(d)
    pm = Podman(d, node)
    netns_before = set(os.listdir("/run/netns"))
    try:
        run(pm, d, node)
    finally:
        pm("rm", "-a", "-f", "-t", "0")
        pm("system", "reset", "-f")
        # (other tests' kvt-* namespaces come and go meanwhile; podman's are netns-*/cni-*)
        left = {n for n in set(os.listdir("/run/netns")) - netns_before
                if not n.startswith("kvt-")}
        ok(not left, "podman left no network namespace behind", left)
    t.finish()


def run(pm, d, node):
    rc, out, err = pm("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    ok(rc == 0 and NET + " kvnet" in out.splitlines(),
       "podman (CNI backend) lists the kvnet network", (out, err))
    rc, cid_a, err = pm("run", "-d", "--name", "kvt-a", "--network", NET, "--rootfs",
                        os.path.join(d, "rootfs"), "/bin/sleep", "600")
    if not ok(rc == 0, "podman run container A on the kvnet network", err):
        log = os.path.join(d, "kvnet.log")
        if os.path.exists(log):
            print("#   kvnet.log: " + open(log).read()[-600:].replace("\n", "\n#   "))
        return
    rc, ip_a, err = pm("inspect", "kvt-a", "--format",
                       "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % NET)
    ok(rc == 0 and ip_a.startswith("198.18.9."), "A got an address from the kvnet pool: "
       + ip_a, err)
    rc, out, err = pm("exec", "kvt-a", "ip", "-4", "addr", "show", "eth0")
    ok(rc == 0 and ("inet %s/32" % ip_a) in out, "A's eth0 holds %s/32 (busybox ip)" % ip_a,
       (out, err))
    rts = t.ipj(node, "route", "show", ip_a)
    ok(len(rts) == 1 and rts[0]["dev"].startswith("kv") and rts[0].get("metric") == 1024,
       "the node has the host route to A via a kv veth, metric 1024 (ip -j)", rts)
    handles = sorted(t.file_records(os.path.join(d, "state"))[0]["handle"])
    ok(handles == ["%s.%s" % (NET, cid_a)],
       "the kvnet handle is named after podman's container ID", handles)
    rc, out, err = pm("run", "--rm", "--name", "kvt-b", "--network", NET, "--rootfs",
                      os.path.join(d, "rootfs"), "/bin/sh", "-c",
                      "ip -4 -o addr show eth0; ping -c 3 -W 2 " + ip_a)
    ok(rc == 0 and "3 packets received" in out and ip_a not in out.splitlines()[0],
       "container B (another kvnet address) pings A", (out, err))
    rc, out, err = pm("rm", "-f", "-t", "0", "kvt-a")
    ok(rc == 0, "podman rm -f A", err)
    ok(t.file_records(os.path.join(d, "state"))[0]["handle"] == {}
       and t.ipj(node, "route", "show", "proto", "75") == []
       and t.ipj(node, "link", "show", "type", "veth") == [],
       "podman's DEL released the address and removed veth and route")


if __name__ == "__main__":
    main()
