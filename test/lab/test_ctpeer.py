#!/usr/bin/env python3
"""Lab scenario of the conntrack hand-over over the agent-to-agent path (agent/peerct.h),
every agent with the same peer key file:

  node-a and node-b forward the VM's TCP only under a stateful rule set (nft: `ct state
  established,related accept`, new SYNs from a pod veth accept, else counter drop), and
  node-a DNATs a Service-like address 198.18.200.80:80 to a server on node-c
  (198.19.0.13:8080; node-b has a nat chain too, without that rule). The VM opens two
  TCP connections from its pod while on node-a: D through the DNAT, S straight to the
  server's :9090 (under the stateful rules); a third, T, during the memory copy (after
  the first full copy went out: it travels in a top-up or the cut-over delta). At the
  cut-over each connection moves with the VM (test/lab/tcpguest.py: TCP_REPAIR, no FIN,
  no SYN) into the target pod on node-b, and sends a line the server echoes back.

  1. [agent] conntrack_handover = false, A -> B: node-b has no entry of the VM's
     (conntrack -L), the connections die (no answer: node-b's drop counter grows / the
     DNAT is gone), while the peer path still switches the routes.
  2. the agents restarted with it on (the default), the VM back on node-a, A -> B again:
     node-b holds the entries before the first packet (conntrack -L: D with its DNAT,
     S, T), every connection carries data both ways after the cut-over, and the log and
     metrics say what was sent and applied (entries, the cut-over to applied time).
  3. signed chunks node-b must not take: from node-c (not the migration's source) and
     for a VMI uid nobody has: refused with their reason, no entry changes.
Addresses: the lab's (198.18.0.0/15, 2001:db8::/32)."""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
CONV = 2
VIP, VPORT = "198.18.200.80", 80
TCPG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tcpguest.py")
NAMES = ("handover off: node-b has none of the VM's entries after the cut-over",
         "handover off: the DNAT-ed connection dies",
         "handover off: the connection under the stateful rules dies",
         "handover on: node-b holds the VM's entries (conntrack -L), DNAT included",
         "handover on: every connection carries data both ways after the cut-over",
         "handover on: entries sent by node-a and applied by node-b, none failed",
         "handover on: T, opened after the first full copy, went in a delta",
         "signed chunks not from the migration's source or for an unknown VMI are refused",
         "handover on: node-a, the source, still holds every moved connection's entry")


class Guest:
    """One tcpguest.py in a namespace, driven over its stdin/stdout."""

    def __init__(self, ns, *args):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, TCPG] +
                                  [str(a) for a in args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True)
        self.entry = L.reaper().add(self.stop)

    def read(self, timeout=8.0):
        """The next JSON line (bounded), or {"ev": "none", "why": ...}."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([self.p.stdout], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            line = self.p.stdout.readline()
            if not line:
                return {"ev": "none", "why": "exited %s" % self.p.poll()}
            try:
                return json.loads(line)
            except ValueError:
                continue  # a traceback line: keep reading to its end
        return {"ev": "none", "why": "no answer in %.0f s" % timeout}

    def cmd(self, line, timeout=8.0):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except OSError as e:
            return {"ev": "none", "why": str(e)}
        return self.read(timeout)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, 15)
            except ProcessLookupError:
                pass
            self.p.wait(5)
        L.reaper().drop(self.entry)


def guest_stack(ns):
    """The guest's TCP settings: nothing but sequence numbers and MSS to move."""
    for k in ("tcp_timestamps", "tcp_window_scaling", "tcp_sack"):
        L.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.%s=0" % k)


def rules(node, dnat_to):
    """The stateful forward rule set, and the nat chain (with the DNAT when dnat_to)."""
    dnat = ("ip daddr %s tcp dport %d dnat to %s;" % (VIP, VPORT, dnat_to)) if dnat_to else ""
    text = """table inet kvtct {
 chain ctfwd { type filter hook forward priority filter; policy accept;
  meta l4proto != tcp accept;
  ct state established,related accept;
  iifname "kv*" tcp flags & (syn|ack) == syn ct state new accept;
  counter drop; }
}
table ip kvtctnat {
 chain ctpre { type nat hook prerouting priority dstnat; policy accept; %s }
}
""" % dnat
    subprocess.run(node.prefix() + ["nft", "-f", "-"], input=text, text=True, check=True)
    L.reaper().add(lambda: node.run("nft", "delete", "table", "inet", "kvtct", check=False))
    L.reaper().add(lambda: node.run("nft", "delete", "table", "ip", "kvtctnat", check=False))


def drops(node):
    tab = json.loads(node.run("nft", "-j", "list", "chain", "inet", "kvtct", "ctfwd").stdout)
    return sum(e["counter"]["packets"] for x in tab.get("nftables", []) if "rule" in x
               for e in x["rule"]["expr"] if "counter" in e)


def ct_entries(node, ip):
    """conntrack -L lines of node with ip in either tuple (the independent tool)."""
    out = []
    for flag in ("-s", "-d"):
        p = node.run("conntrack", "-L", "-p", "tcp", flag, ip, check=False)
        out += [ln for ln in p.stdout.splitlines() if ln.startswith("tcp")]
    p = node.run("conntrack", "-L", "-p", "tcp", "--reply-dst", ip, check=False)
    out += [ln for ln in p.stdout.splitlines() if ln.startswith("tcp")]
    return sorted(set(out))


def log_lines(lab, node, msg, since):
    out = []
    for f in lab.agent_lines(node):
        t = O._ts(f.get("ts"))
        if f.get("msg") == msg and t is not None and t >= since - 0.002:
            out.append(f)
    return out


def metric(lab, node, name, lv):
    for line in lab.agent_metrics(node).splitlines():
        if line.startswith(name + "{") and '"%s"' % lv in line:
            return float(line.rpartition(" ")[2])
    return 0.0


def run(lab, kv, vm, c):
    """The VM on node-a opens D and S, T during the copy, all move at the cut-over to
    node-b; returns what was seen."""
    a, b = lab.nodes["node-a"], lab.nodes["node-b"]
    guest_stack(vm.pod.ns)
    conns = {"D": Guest(vm.pod.ns, "connect", VIP, VPORT),
             "S": Guest(vm.pod.ns, "connect", c.ip4, 9090)}
    seen = {"before": {}, "after": {}, "frozen": {}, "restored": {}}
    d0 = {n.name: drops(n) for n in (a, b)}
    t0 = time.time()
    for k, g in conns.items():
        seen["connected_" + k] = g.read()
        seen["before"][k] = g.cmd("ping %s-before" % k)

    def copying(m):  # the memory copy: a connection the first full copy did not have
        end = time.monotonic() + 10  # node-a's first full copy went out (when on)
        while time.monotonic() < end and lab.agent_conf_extra.find("= false") < 0 and not [
                f for f in log_lines(lab, a, "conntrack hand-over sent", t0)
                if f.get("uid") == m.uid and f.get("why") == "initial"]:
            time.sleep(0.02)
        conns["T"] = Guest(vm.pod.ns, "connect", c.ip4, 9090)
        seen["connected_T"] = conns["T"].read()
        seen["before"]["T"] = conns["T"].cmd("ping T-before")

    moved = {}

    def cutover(m):  # the guest resumed on the target: its sockets move with it
        guest_stack(m.tgt.ns)
        for k, g in conns.items():
            st = g.cmd("freeze")
            seen["frozen"][k] = st
            g.stop()
            if st.get("ev") != "frozen":
                continue
            moved[k] = Guest(m.tgt.ns, "restore", json.dumps(st))
            seen["restored"][k] = moved[k].read()

    m = kv.migrate(vm, "node-b", hooks={"Running": copying, "cutover": cutover},
                   copy_seconds=0.1, settle=lambda m: O.wait_converged(lab, vm, m.tgt))
    seen["converged"] = O.wait_converged(lab, vm, m.tgt)[0]
    seen["entries_b"] = ct_entries(b, vm.ip4)
    seen["entries_a"] = ct_entries(a, vm.ip4)
    for k, g in moved.items():
        seen["after"][k] = [g.cmd("ping %s-after-%d" % (k, i), timeout=8) for i in (1, 2)]
        g.stop()
    seen["drops"] = {n.name: drops(n) - d0[n.name] for n in (a, b)}
    seen["t0"] = t0
    seen["m"] = m
    seen["announce"] = min([t for t in m.announce.values() if t] or [0])
    return seen


def main():
    if not L.agent_built() or not L.agent_handover():
        for n in NAMES:
            T.skip(n, "dist/kvnet has no agent with the migration hand-over")
        return 0
    if shutil.which("conntrack") is None:
        for n in NAMES:
            T.skip(n, "no conntrack(8) to check the entries with")
        return 0
    kdir = tempfile.mkdtemp(prefix="kvt-%d-ctkey-" % L.PID)
    L.reaper().add(shutil.rmtree, kdir, True)
    kfile = os.path.join(kdir, "key")
    with open(kfile, "wb") as f:
        f.write(os.urandom(24).hex().encode() + b"\n")
    base = "peer_key_file = %s\n" % kfile
    with L.Lab(convergence=CONV, agent_conf_extra=base + "conntrack_handover = false\n") as lab:
        a, b, c = (lab.nodes[n] for n in ("node-a", "node-b", "node-c"))
        servers = [L.Proc(c.prefix() + [sys.executable, TCPG, "serve", c.ip4, port],
                          os.path.join(lab.dir, "tcpserver-%d.log" % port))
                   for port in (8080, 9090)]
        end = time.monotonic() + 10
        while time.monotonic() < end and not all("listening" in s.log() for s in servers):
            time.sleep(0.05)
        rules(a, "%s:8080" % c.ip4)
        rules(b, None)
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-ct", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "start: every node forwards vm-ct to node-a", bad)

        # ---- 1: the hand-over off ---------------------------------------------------------
        off = run(lab, kv, vm, c)
        ok(all(v.get("ok") for v in off["before"].values()),
           "handover off: D, S and T answered on node-a before the migration", off["before"])
        ok(off["converged"] and not any(vm.ip4 in ln for ln in off["entries_b"]), NAMES[0],
           off["entries_b"])
        for k, name in (("D", NAMES[1]), ("S", NAMES[2])):
            after = off["after"].get(k) or [{"ok": True, "err": "not moved"}]
            ok(not any(x.get("ok") for x in after),
               name + " (%s)" % "; ".join(str(x.get("err") or x.get("why")) for x in after),
               {"restored": off["restored"].get(k), "after": after, "drops": off["drops"]})
        T.note("handover off: node-b's stateful rules dropped %d packets of the moved "
               "connections" % off["drops"]["node-b"])

        # ---- back to node-a, the agents with the hand-over on -----------------------------
        O.wait_metric(off["m"].tgt, (vm.ip4, vm.ip6), 1024, timeout=CONV + 15)
        kv.migrate(vm, "node-a", settle=lambda m: O.wait_converged(lab, vm, m.tgt))
        lab.agent_conf_extra = base  # conntrack_handover: the default (true)
        for n in (a, b, c):
            lab.stop_agent(n)
            lab.start_agent(n)
        for n in (a, b, c):
            lab.wait_agent_ready(n)
        okc, bad = O.wait_converged(lab, vm, vm.pod, timeout=20)
        O.wait_metric(vm.pod, (vm.ip4, vm.ip6), 1024, timeout=CONV + 15)
        ok(okc, "the VM back on node-a, agents restarted with the hand-over on", bad)

        # ---- 2: the hand-over on ----------------------------------------------------------
        on = run(lab, kv, vm, c)
        ok(all(v.get("ok") for v in on["before"].values()),
           "handover on: D, S and T answered on node-a before the migration", on["before"])
        ent = on["entries_b"]
        has_dnat = [ln for ln in ent if "dst=%s" % VIP in ln and "src=%s" % c.ip4 in ln
                    and "sport=8080" in ln]
        has_s = [ln for ln in ent if "dport=9090" in ln and "ESTABLISHED" in ln]
        ports = {k: str(v.get("sport")) for k, v in on["frozen"].items()}
        mine = {k: [ln for ln in ent if "sport=%s " % p in ln] for k, p in ports.items()}
        ok(has_dnat and len(has_s) >= 2 and len(mine) == 3 and all(mine.values()), NAMES[3] + " (%d entries)" % len(ent), ent)
        T.note("node-b conntrack -L: " + " | ".join(ent))
        kept = {k: [ln for ln in on["entries_a"] if "sport=%s " % p in ln]
                for k, p in ports.items()}
        ok(len(kept) == 3 and all(kept.values()), "handover on: node-a, the source, still "
           "holds every moved connection's entry (nothing flushed)", on["entries_a"])
        after = on["after"]
        ok(len(after) == 3 and all(x.get("ok") for v in after.values() for x in v), NAMES[4]
           + " (D, S, T: 2 round trips each)", {"after": after, "restored": on["restored"],
                                                "drops": on["drops"]})
        t0 = on["t0"]
        sent = log_lines(lab, a, "conntrack hand-over sent", t0)
        applied = log_lines(lab, b, "conntrack hand-over applied", t0)
        n_sent = sum(int(f.get("entries", 0)) for f in sent)
        n_app = sum(int(f.get("applied", 0)) for f in applied)
        n_fail = sum(int(f.get("failed", 0)) for f in applied)
        refused = log_lines(lab, b, "conntrack hand-over refused", t0)
        ok(sent and applied and n_app >= 3 and n_fail == 0 and not refused, NAMES[5] +
           " (sent %d in %d rounds, applied %d)" % (n_sent, len(sent), n_app),
           {"sent": sent, "applied": applied, "refused": refused})
        rounds = ", ".join("%s %s entries" % (f.get("why"), f.get("entries")) for f in sent)
        ok(any(f.get("why") in ("topup", "cutover") and int(f.get("entries", 0)) >= 1
               for f in sent), "handover on: T, opened after the first full copy, went in a "
           "delta (top-up or cut-over round), not only in the repeat", sent)
        T.note("node-a sent: " + rounds)
        cut = [f for f in applied if f.get("cutover") == "1"]
        first = min((O._ts(f.get("ts")) for f in applied), default=None)
        T.note("node-b applied: %d chunks, %d entries (failed %d, foreign %d); first chunk "
               "%s ms before the announcement; announcement to the cut-over round applied "
               "(us): %s" % (
                   len(applied), n_app, n_fail,
                   sum(int(f.get("foreign", 0)) for f in applied),
                   "%.1f" % ((on["announce"] - first) * 1000) if first and on["announce"]
                   else "?", ",".join(f.get("cutover_to_applied_us", "?") for f in cut)
                   or "none (T had gone out in a top-up)"))
        claim = [f for f in log_lines(lab, b, "peer claim sent", t0)
                 if vm.ip4 in f.get("ip", "")]
        acc = [f for f in log_lines(lab, a, "peer claim accepted", t0)
               if f.get("node") == "node-b"]
        cs = [f for f in sent if f.get("why") == "cutover"]
        T.note("cut-over path: announcement %.6f; node-b claim sent %s; node-a claim "
               "accepted %s (latency_us %s); node-a cut-over round sent %s; node-b applied %s" % (
                   on["announce"], claim[0].get("sent_ts") if claim else "-",
                   acc[0].get("ts") if acc else "-", acc[0].get("latency_us") if acc else "-",
                   cs[0].get("ts") if cs else "-", "%s (apply_us %s)" % (
                       cut[0].get("ts"), cut[0].get("apply_us")) if cut else "-"))
        mig = [f for f in lab.agent_lines(b) if str(f.get("msg", "")).startswith("migration")
               and (O._ts(f.get("ts")) or 0) >= on["announce"] - 0.01][:4]
        T.note("node-b around the cut-over: " + "; ".join(
            "%s %s" % (f.get("ts"), f.get("msg")) for f in mig))
        T.note("metrics node-b: applied %d failed %d; node-a: sent %d" % (
            metric(lab, b, "kvnet_ct_handover_entries_total", "applied"),
            metric(lab, b, "kvnet_ct_handover_entries_total", "failed"),
            metric(lab, a, "kvnet_ct_handover_entries_total", "sent")))

        # ---- chunks the target must not take ------------------------------------------------
        key = open(kfile, "rb").read().strip()
        vmi_uid = vm.vmi["metadata"]["uid"]
        ref0 = metric(lab, b, "kvnet_ct_handover_chunks_total", "refused")
        # an entry's addresses and ports only: its state and timeout move on their own
        # (TIME_WAIT entries expire, a connection closes) while the forged chunks arrive
        tuples = lambda: sorted(set(" ".join(w for w in ln.split(" [")[0].split()  # noqa: E731
                                             if w.split("=")[0] in ("src", "dst", "sport", "dport"))
                                    for ln in ct_entries(b, vm.ip4)))
        have0 = tuples()
        now = time.time_ns()
        payload = open(os.path.join(L.ROOT, "test", "fuzz", "corpus", "ct", "ct-wire.bin"),
                       "rb").read()
        # node-c (a known node, the right key) for the VM's last migration: not its source
        send_from(c, c.ip4, b.ip4, ct_msg(key, "node-c", c.ip4, on["m"].uid, vmi_uid,
                                          payload, now, 1, now))
        # node-a, the real source of that migration, for a VMI uid nobody has
        send_from(a, a.ip4, b.ip4, ct_msg(key, "node-a", a.ip4, on["m"].uid,
                                          "00000000-0000-4000-8000-000000000000", payload,
                                          now, 1, now))
        end = time.monotonic() + 10
        ref1 = ref0
        while time.monotonic() < end and ref1 < ref0 + 2:
            ref1 = max(ref1, metric(lab, b, "kvnet_ct_handover_chunks_total", "refused"))
            time.sleep(0.05)
        why = [f.get("reason") for f in log_lines(lab, b, "conntrack hand-over refused", t0)]
        ok(ref1 >= ref0 + 2 and
           "not_target" in why and "unknown_vmi" in why and set(tuples()) <= set(have0),
           "signed chunks from a node that is not the migration's source, or for an unknown "
           "VMI, are refused (not_target, unknown_vmi) and add no entry on node-b",
           {"why": why, "refused": (ref0, ref1), "before": have0, "after": tuples()})
        for s in servers:
            s.stop()
    return T.status()


def ct_msg(key, node, node_ip, uid, vmi_uid, payload, boot, seq, ts_ns):
    """A CT datagram as agent/peermsg.h draws it (written here from the diagram)."""
    import hashlib
    import hmac
    import socket
    import struct

    def tlv(t, v):
        return bytes([t, len(v)]) + v
    b = b"KVPM" + bytes([1, 2, 0, 0]) + struct.pack(">QQQ", boot, seq, ts_ns)
    b += tlv(1, node.encode()) + tlv(2, socket.inet_aton(node_ip)) + tlv(3, uid.encode())
    b += tlv(5, vmi_uid.encode()) + tlv(6, struct.pack(">IHH", 1, 0, 1))
    for o in range(0, len(payload), 255):
        b += tlv(7, payload[o:o + 255])
    return b + hmac.new(key, b, hashlib.sha256).digest()


def send_from(node, src, dst, payload):
    """One UDP datagram from src (an address of node) to dst:9473, sent in node's netns."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind((sys.argv[1],0))\n"
            "s.sendto(bytes.fromhex(sys.argv[3]),(sys.argv[2],9473))\n")
    node.run("python3", "-c", code, src, dst, payload.hex())


if __name__ == "__main__":
    sys.exit(main())
