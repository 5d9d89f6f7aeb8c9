#!/usr/bin/env python3
"""The L2 bridge-network data plane (l2/net, l2/prog) with real traffic, checked by peers
and tools nobody here wrote.

Namespaces kvt-<pid>-*: a node N whose trunk `trunk0` is a veth to a switch side S; two
VMs V1 (VLAN 100) and V2 (VLAN 200), each a veth into N. In S, test/lib/legacy.py plays
two legacy hosts with the SAME address 198.18.100.1 / 2001:db8:100::1 but different MACs,
one on VLAN 100 and one on VLAN 200, speaking real 802.1Q frames from a raw socket
(no 8021q). kvnet's side is built by build/tools/l2-apply (kvnet's own code).

Checked: each VM reaches the legacy host of its own VLAN (ARP and ND answers carry that
host's MAC, ping and ping -6 answer); VLANs are apart (V1 cannot reach V2 in the same
subnet; the VLAN 200 host never sees V1); `tcpdump -e` on the switch side shows V1's
frames tagged vlan 100; every spoofing attempt from V1 (another MAC, a VLAN 200 tag, two
tags, another source address, an ARP for another address, a DHCP server reply, a router
advertisement, LLDP) is dropped while a control frame sent after it arrives; kvnet's links
carry no address; re-applying the trunk keeps one program per hook; a network dropped
from the trunk stops taking the switch's frames at once, and once removed its links are
gone and nothing of its VMs reaches the switch. Live migration's part: a closed port
(l2-apply close: the gate on ingress before the guard, and on egress) passes nothing
either way (V1's frames never reach the switch side, a VLAN 100 broadcast never reaches
V1, while the same frames after l2-apply open do), and l2-apply relearn sends a GARP, an
NA and a RARP from V1's MAC that the switch side receives tagged 100.
"""
import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "build", "tools", "l2-apply")
LEGACY = os.path.join(ROOT, "test", "lib", "legacy.py")
SPOOF = os.path.join(ROOT, "test", "lib", "spoof.py")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
PID = os.getpid()
N, S, V1, V2 = ("kvt-%d-l2%s" % (PID, x) for x in ("n", "s", "v1", "v2"))
TMP = tempfile.mkdtemp(prefix="kvt-%d-l2-" % PID)
LOG = os.path.join(TMP, "legacy.jsonl")
VM1 = ("02:00:c6:12:64:0a", "198.18.100.10", "2001:db8:100::10")
VM2 = ("02:00:c6:12:64:14", "198.18.100.20", "2001:db8:100::20")
H100, H200 = "02:4c:00:00:01:00", "02:4c:00:00:02:00"
procs = []
failures = 0


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for n in (N, S, V1, V2):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(cleanup)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, lambda *_: sys.exit(1))


def ok(cond, name, diag=None):
    global failures
    print(("ok - " if cond else "not ok - ") + name)
    if not cond:
        failures += 1
        for line in str(diag or "").splitlines()[:30]:
            print("# " + line)
    return cond


def sh(ns, cmd, check=True):
    r = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", cmd], capture_output=True,
                       text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s: exit %d: %s" % (ns, cmd, r.returncode, r.stderr))
    return r


def tool(*args):
    r = subprocess.run([TOOL, "/run/netns/" + N] + list(args), capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr


def ipj(ns, *args):
    r = subprocess.run(["ip", "-n", ns, "-j"] + list(args), capture_output=True, text=True)
    return json.loads(r.stdout or "[]")


def log():
    try:
        with open(LOG) as f:
            return [json.loads(ln) for ln in f if ln.endswith("\n")]
    except OSError:
        return []


def wait_for(pred, what, timeout=15.0):
    """Until pred() holds; the bound turns a hang into a failure naming what."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def start_line(cmd, want, stream="stdout"):
    """Start cmd, wait for a line holding want on its stdout/stderr (bounded)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    f = p.stdout if stream == "stdout" else p.stderr
    end = time.monotonic() + 20
    buf = ""
    while want not in buf:
        r, _, _ = select.select([f], [], [], max(0.0, end - time.monotonic()))
        if not r or p.poll() is not None:
            raise RuntimeError("%s: no %r (%s)" % (cmd[-1], want, buf))
        buf += f.readline()
    return p


def setup():
    for n in (N, S, V1, V2):
        subprocess.run(["ip", "netns", "add", n], check=True)
        sh(n, "ip link set lo up")
    subprocess.run(["ip", "-n", N, "link", "add", "trunk0", "type", "veth", "peer", "name",
                    "s0", "netns", S], check=True)
    sh(S, "ip link set s0 up")
    for ns, port, (mac, v4, v6) in ((V1, "p1", VM1), (V2, "p2", VM2)):
        subprocess.run(["ip", "-n", N, "link", "add", port, "type", "veth", "peer", "name",
                        "eth0", "netns", ns], check=True)
        sh(ns, "ip link set eth0 address %s && ip addr add %s/24 dev eth0 && "
               "ip addr add %s/64 dev eth0 nodad && ip link set eth0 up" % (mac, v4, v6))
    start_line(["ip", "netns", "exec", S, PY, LEGACY, "s0", LOG,
                "100,%s,198.18.100.1,2001:db8:100::1" % H100,
                "200,%s,198.18.100.1,2001:db8:100::1" % H200], "ready")


def neigh_mac(ns, ip):
    for n in ipj(ns, "neigh", "show", "dev", "eth0"):
        if n.get("dst") == ip:
            return n.get("lladdr")
    return None

INBOUND = ("import socket,struct,sys;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);"
           "s.bind(('s0',0));m=bytes.fromhex(sys.argv[1].replace(':',''));"
           "s.send(b'\\xff'*6+m+struct.pack('!HHH',0x8100,100,0x88b5)+b'KVT-MARK:'+"
           "sys.argv[2].encode()+b'\\0'*30)")


def send_inbound(mark):
    """One broadcast frame tagged VLAN 100 (EtherType 0x88b5) from the switch side."""
    sh(S, "%s -c \"%s\" %s %s" % (PY, INBOUND, H100, mark))


def pcap_marks(pcap):
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-A"], capture_output=True, text=True)
    return r.stdout


def filters(port):
    out = {}
    for hook in ("ingress", "egress"):
        _, o, _ = tool("filters", port, hook)
        out[hook] = [(x.split()[0], x.split()[3]) for x in o.split("\n")[:-1]]
    return out


def gates_and_relearn():
    """The migration gates of a VM port (l2_port_close / _open) and the relearn frames
    (l2_relearn), checked from the switch side and inside the VM. An absence is shown by
    order: what was sent while closed never arrives although what was sent on the same
    path after the opening does."""
    pcap = os.path.join(TMP, "v1-gate.pcap")
    td = start_line(["ip", "netns", "exec", V1, "tcpdump", "-i", "eth0", "-nn", "-U", "-w",
                     pcap, "ether", "proto", "0x88b5"], "listening on", stream="stderr")
    rc, _, err = tool("close", "p1")
    f = filters("p1")
    ok(rc == 0 and f == {"ingress": [("1", "kvnet_gate"), ("2", "kvnet_guard")],
                         "egress": [("1", "kvnet_gate")]},
       "l2-apply close p1: the gate before the guard on ingress (prio 1, 2), and on egress",
       err + str(f))
    before = len(log())
    sh(V1, "%s %s eth0 %s %s good closed-out" % (PY, SPOOF, VM1[0], VM1[1]))
    send_inbound("closed-in")
    r = sh(V1, "ping -c 2 -i 0.2 -W 1 198.18.100.1", check=False)
    ok(r.returncode != 0, "closed: V1's pings go unanswered", r.stdout)
    rc, _, err = tool("open", "p1")
    f = filters("p1")
    ok(rc == 0 and f == {"ingress": [("2", "kvnet_guard")], "egress": []},
       "l2-apply open p1: the gates are gone, the guard stays", err + str(f))
    sh(V1, "%s %s eth0 %s %s good open-out" % (PY, SPOOF, VM1[0], VM1[1]))
    send_inbound("open-in")
    try:
        wait_for(lambda: any(x.get("mark") == "open-out" for x in log()), "open-out")
        wait_for(lambda: "KVT-MARK:open-in" in pcap_marks(pcap), "open-in in V1")
        arrived = True
    except RuntimeError:
        arrived = False
    td.send_signal(signal.SIGINT)
    td.wait(timeout=10)
    marks = pcap_marks(pcap)
    v1 = [x for x in log()[before:] if x["src"] == VM1[0]]
    ok(arrived and not [x for x in v1 if x.get("mark") == "closed-out"],
       "closed: what V1 sent did not reach the switch side (what it sent after the opening "
       "did)", v1[:6])
    ok(arrived and "KVT-MARK:closed-in" not in marks and "KVT-MARK:open-in" in marks,
       "closed: a VLAN 100 broadcast from the switch side did not reach V1 (tcpdump in V1; "
       "the one after the opening did)", marks[-600:])
    r = sh(V1, "ping -c 2 -i 0.2 -W 2 198.18.100.1", check=False)
    ok(r.returncode == 0, "open: V1 reaches its legacy host again", r.stdout)
    before = len(log())
    rc, out, err = tool("relearn", "v100", VM1[0], VM1[1], VM1[2])
    ok(rc == 0 and out.strip() == "garp 1 na 1 rarp 1", "l2-apply relearn v100: one GARP, "
       "one NA, one RARP sent", out + err)
    want = {0x0806, 0x86dd, 0x8035}
    try:
        got = wait_for(lambda: {x["type"] for x in log()[before:] if x["src"] == VM1[0] and
                                x["vid"] == 100} >= want, "the relearn frames on the switch side")
    except RuntimeError:
        got = False
    frames = [x for x in log()[before:] if x["src"] == VM1[0]]
    ok(got and all(x["vid"] == 100 for x in frames),
       "the switch side got the GARP, NA and RARP from V1's MAC, all tagged 100 (none on "
       "VLAN 200)", frames)


def main():
    setup()
    rc, out, err = tool("trunk", "trunk0", "v100:100", "v200:200")
    ok(rc == 0, "l2-apply trunk: two networks on trunk0", err)
    for port, nid, (mac, v4, v6) in (("p1", "v100", VM1), ("p2", "v200", VM2)):
        rc, out, err = tool("port", nid, port, mac, v4, v6)
        ok(rc == 0, "l2-apply port: %s into %s behind its guard" % (port, nid), err)

    # each VM reaches the legacy host of its own VLAN, v4 and v6
    for ns, host, name in ((V1, H100, "VLAN 100"), (V2, H200, "VLAN 200")):
        r = sh(ns, "ping -c 3 -i 0.2 -W 2 198.18.100.1", check=False)
        ok(r.returncode == 0 and neigh_mac(ns, "198.18.100.1") == host,
           "%s: ping 198.18.100.1 answered by the %s legacy host (ARP: %s)" % (ns, name, host),
           r.stdout + r.stderr + " neigh " + str(neigh_mac(ns, "198.18.100.1")))
        r = sh(ns, "ping -6 -c 3 -i 0.2 -W 2 2001:db8:100::1", check=False)
        ok(r.returncode == 0 and neigh_mac(ns, "2001:db8:100::1") == host,
           "%s: ping -6 2001:db8:100::1 answered by the %s legacy host (ND)" % (ns, name),
           r.stdout + r.stderr)

    # VLANs apart: V1 and V2 share a subnet but not a VLAN
    r = sh(V1, "ping -c 2 -i 0.2 -W 1 198.18.100.20", check=False)
    ok(r.returncode != 0, "V1 cannot reach V2 (same subnet, other VLAN)", r.stdout)
    seen = [x for x in log() if x["src"] == VM1[0]]
    ok(seen and all(x["vid"] == 100 for x in seen),
       "the switch side saw V1's frames only on VLAN 100 (%d frames)" % len(seen),
       [x for x in seen if x["vid"] != 100][:5])
    seen = [x for x in log() if x["src"] == VM2[0]]
    ok(seen and all(x["vid"] == 200 for x in seen),
       "the switch side saw V2's frames only on VLAN 200 (%d frames)" % len(seen))

    # tcpdump -e on the switch side: the tag on the wire
    pcap = os.path.join(TMP, "s0.pcap")
    td = start_line(["ip", "netns", "exec", S, "tcpdump", "-i", "s0", "-nn", "-e", "-U", "-w",
                     pcap, "ether", "src", VM1[0]], "listening on", stream="stderr")
    sh(V1, "ping -c 2 -i 0.2 -W 2 198.18.100.1", check=False)
    wait_for(lambda: os.path.exists(pcap) and os.path.getsize(pcap) > 200, "tcpdump's capture")
    td.send_signal(signal.SIGINT)
    td.wait(timeout=10)
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-e"], capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    ok(lines and all("ethertype 802.1Q (0x8100)" in ln and "vlan 100," in ln for ln in lines),
       "tcpdump -e on the switch side: V1's frames carry 802.1Q vlan 100 (%d frames)" % len(lines),
       r.stdout + r.stderr)

    # spoofing from V1: dropped; a control frame after each one arrives
    for kind in ("othermac", "hop", "qinq", "ipspoof", "arpspoof", "dhcp", "ra", "lldp"):
        sh(V1, "%s %s eth0 %s %s %s %s" % (PY, SPOOF, VM1[0], VM1[1], kind, kind))
        sh(V1, "%s %s eth0 %s %s good after-%s" % (PY, SPOOF, VM1[0], VM1[1], kind))
        try:
            wait_for(lambda: any(x.get("mark") == "after-" + kind for x in log()),
                     "the control frame after " + kind)
            arrived = True
        except RuntimeError:
            arrived = False
        got = [x for x in log() if x.get("mark") == kind]
        ok(arrived and not got, "V1 %s: dropped (the control frame after it arrived)" % kind,
           "control arrived %s; got through: %s" % (arrived, got))

    gates_and_relearn()

    # kvnet's links carry no address; one program per hook after a second apply
    addrs = [a for ln in ipj(N, "addr", "show") if ln["ifname"].startswith(("kvl-", "kvu-", "kvt-"))
             for a in ln.get("addr_info", [])]
    ok(not addrs, "kvnet's bridges and veths carry no address (IPv6 off)", addrs)
    rc, _, err = tool("trunk", "trunk0", "v100:100", "v200:200")
    rc2, out, err2 = tool("filters", "trunk0", "ingress")
    fl = out.split("\n")[:-1]
    ok(rc == 0 and rc2 == 0 and len(fl) == 1 and fl[0].startswith("1 1 ") and
       fl[0].endswith(" kvnet_trunk da"), "re-applied: trunk0 has one program (prio 1, da)",
       err + err2 + out)

    # VLAN 200 dropped from the trunk: the switch's VLAN 200 frames stop at once (V2's
    # pings go unanswered); once removed, nothing of V2 reaches the switch and its links
    # are gone
    rc, _, err = tool("trunk", "trunk0", "v100:100")
    ok(rc == 0, "trunk re-applied with VLAN 100 only", err)
    r = sh(V2, "ping -c 2 -i 0.2 -W 1 198.18.100.1", check=False)
    ok(r.returncode != 0, "V2's pings go unanswered: VLAN 200 no longer enters the node",
       r.stdout)
    rc, _, err = tool("remove", "v200")
    left = [ln["ifname"] for ln in ipj(N, "link", "show") if ln["ifname"].endswith("-v200")]
    ok(rc == 0 and not left, "l2-apply remove v200: its bridge and veths are gone", err + str(left))
    before = len(log())
    sh(V2, "ping -c 2 -i 0.2 -W 1 198.18.100.1", check=False)
    sh(V1, "%s %s eth0 %s %s good after-drop" % (PY, SPOOF, VM1[0], VM1[1]))
    wait_for(lambda: any(x.get("mark") == "after-drop" for x in log()), "V1's frame after the drop")
    v2 = [x for x in log()[before:] if x["src"] == VM2[0]]
    ok(not v2, "after the removal nothing of V2 reaches the switch", v2)
    r = sh(V1, "ping -c 2 -i 0.2 -W 2 198.18.100.1", check=False)
    ok(r.returncode == 0, "V1 still reaches its legacy host", r.stdout)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
