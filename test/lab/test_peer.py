#!/usr/bin/env python3
"""Lab scenarios of the agent-to-agent cut-over path (agent/peer.h), every agent with the
same key file ([agent] peer_key_file) on the default port 9473:

  - A -> B with the API up: node-a (the source) and node-c route the VM's /32 and /128
    via node-b from the target's datagram, before their own IPAMBlock watch could say so
    (the agent takes an address only while the datastore's owner is not node-b yet:
    applied=2), and each node's route change (its `ip -ts monitor route`) is compared
    with the owner change as an outside watch of the blocks saw it (printed);
    tcpdump on node-c keeps the datagrams for the replay below;
  - B -> A with the API server stopped from the memory copy to after the announcement:
    node-b (the source) and node-c forward the VM to node-a while no API exists at all;
    the API back, the owner swap lands and the peer routes are dropped (why=api);
  - forged and replayed: the captured genuine datagram re-sent, one signed with another
    key, garbage, an oversized one, one with the right key but an event time a minute
    old, and one with the right key claiming the VM (local and active on node-a) for
    node-c: each is rejected with its reason counted, and no route moves anywhere;
  - node-c's agent restarted: a message signed with the right key, inside the time
    window but older than the agent's start, is refused (stale): no state is trusted
    across a restart, only the API;
  - a lost message: nft drops the peer port on node-c; A -> B still converges on node-c
    through the API (the drop rule's counter shows the datagram was sent and dropped).
Addresses: the lab's (198.18.0.0/15, 2001:db8::/32)."""
import hashlib
import hmac
import os
import shutil
import struct
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
PORT = 9473
NAMES = ("every agent listens on its node addresses",
         "A -> B: the source and node-c switch from the target's message",
         "B -> A with the API server down: every node forwards to the target",
         "forged, replayed, garbage, oversized, stale, local: nothing moves",
         "lost message: node-c converges through the API")
# (the restart scenario has its own line)


def metrics(lab, node):
    """{(name, label value or ""): value} from the agent's /metrics."""
    out = {}
    for line in lab.agent_metrics(node).splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        name, _, lab_ = key.partition("{")
        lv = lab_.split('"')[1] if '"' in lab_ else ""
        try:
            out[(name, lv)] = float(val)
        except ValueError:
            pass
    return out


def peer_lines(lab, node, msg, since):
    """The agent's log lines with msg=msg at or after since (unix seconds)."""
    out = []
    for f in lab.agent_lines(node):
        if f.get("msg") != msg:
            continue
        t = O._ts(f.get("ts"))
        if t is not None and t >= since - 0.002:  # the log's ts has milliseconds
            out.append(f)
    return out


def peer_key():
    """A throw-away cluster key in a file removed at exit (48 bytes of text, as a Secret
    would hold): (key, the [agent] line that turns the agent-to-agent path on). The lab
    scripts, benches and the demo share it."""
    kdir = tempfile.mkdtemp(prefix="kvt-%d-peerkey-" % L.PID)
    L.reaper().add(shutil.rmtree, kdir, True)
    key = os.urandom(24).hex().encode()
    kfile = os.path.join(kdir, "key")
    with open(kfile, "wb") as f:
        f.write(key + b"\n")
    return key, "peer_key_file = %s\n" % kfile


def wait_for(fn, timeout=10.0):
    """Poll fn() until truthy (the bound turns a hang into a failure; nothing timed)."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.05)


def via(lab, ip, node):
    """{node name: forwards ip towards node?} for every other node."""
    f = O.forwarding(lab, ip)
    gw = node.ip6 if ":" in ip else node.ip4
    return {n: f[n] == ("fab0", gw) for n in f if n != node.name}


def first_route_via(lab, node, ip, gw, since):
    """Time of node's first route change to ip via gw at or after since (ip monitor)."""
    for t, line in lab.route_events(node, since):
        tok = line.split()
        if tok and tok[0] != "Deleted" and tok[0].split("/")[0] == ip and "via" in tok \
                and tok[tok.index("via") + 1] == gw:
            return t
    return None


def owner_change(lab, vm, uid, since):
    """When the outside block watch first saw uid as the active owner of the VM's v4."""
    for t, cur in lab.owner_history(vm.namespace, vm.name, since):
        if cur.get(vm.ip4) == uid:
            return t
    return None


def udp_payloads(pcap, src):
    """UDP payloads of IPv4 packets from src in a pcap file (tcpdump -w, Ethernet),
    read here from the file format (libpcap's: 24-byte file header, 16-byte records)."""
    import socket
    try:
        with open(pcap, "rb") as f:
            data = f.read()
    except OSError:
        return []
    if len(data) < 24:
        return []
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
            continue
        ihl = (frame[14] & 15) * 4
        ip = frame[14:]
        if ip[9] != 17 or socket.inet_ntoa(ip[12:16]) != src:
            continue
        ulen = struct.unpack(">H", ip[ihl + 4:ihl + 6])[0]
        out.append(bytes(ip[ihl + 8:ihl + ulen]))
    return out


def build(key, node, node_addrs, addrs, boot, seq, ts_ns, uid=""):
    """A datagram as agent/peermsg.h draws it (written here from the diagram)."""
    def tlv(t, v):
        return bytes([t, len(v)]) + v
    b = b"KVPM" + bytes([1, 1, 0, 0]) + struct.pack(">QQQ", boot, seq, ts_ns)
    b += tlv(1, node.encode())
    for a in node_addrs:
        b += tlv(2, _pton(a))
    if uid:
        b += tlv(3, uid.encode())
    for a in addrs:
        b += tlv(4, _pton(a))
    return b + hmac.new(key, b, hashlib.sha256).digest()


def _pton(a):
    import socket
    return socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)


def send_from(node, src, dst, payload):
    """One UDP datagram from src (an address of node) to dst:PORT, sent in node's netns."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind((sys.argv[1],0))\n"
            "s.sendto(bytes.fromhex(sys.argv[3]),(sys.argv[2],%d))\n" % PORT)
    node.run("python3", "-c", code, src, dst, payload.hex())


def main():
    if not L.agent_built() or not L.agent_handover():
        for n in NAMES:
            T.skip(n, "dist/kvnet has no agent with the migration hand-over")
        return 0
    key, conf = peer_key()
    with L.Lab(convergence=CONV, agent_conf_extra=conf) as lab:
        a, b, c = (lab.nodes[n] for n in ("node-a", "node-b", "node-c"))
        listening = {n.name: sorted(f.get("addr") for f in peer_lines(lab, n, "peer listening", 0))
                     for n in (a, b, c)}
        ok(all(v == sorted([n.ip4, n.ip6]) for n, v in zip((a, b, c), listening.values())),
           NAMES[0], listening)
        kv = KubeVirt(lab)
        vm = kv.create_vm("vm-p", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "start: every node forwards vm-p to node-a", bad)
        ips = (vm.ip4, vm.ip6)

        # ---- A -> B, API up; node-c captures the datagrams -------------------------------
        pcap = os.path.join(lab.dir, "peer.pcap")
        dump = L.Proc(c.prefix() + ["tcpdump", "-i", "fab0", "-U", "-n", "-w", pcap, "udp",
                                    "port", str(PORT)], pcap + ".log")
        wait_for(lambda: "listening on" in dump.log())
        base = {n.name: metrics(lab, n) for n in (a, c)}
        t0 = time.time()
        replayed = {}

        def settle1(m):  # seconds after the announcement: re-send the genuine datagram
            O.wait_converged(lab, vm, m.tgt)
            got = wait_for(lambda: udp_payloads(pcap, b.ip4), timeout=5)
            if got:
                replayed["t"] = time.time()
                send_from(b, b.ip4, c.ip4, got[0])

        m1 = kv.migrate(vm, "node-b", settle=settle1)
        okc, bad = O.wait_converged(lab, vm, m1.tgt)
        acc = {n.name: [f for f in peer_lines(lab, n, "peer claim accepted", t0)
                        if f.get("node") == "node-b" and vm.ip4 in f.get("ip", "")]
               for n in (a, c)}
        sent = [f for f in peer_lines(lab, b, "peer claim sent", t0) if vm.ip4 in f.get("ip", "")]
        ok(okc and sent and all(v and v[0].get("applied") == "2" for v in acc.values()),
           NAMES[1] + " (both addresses, before their API watch had the owner change)",
           {"sent": sent, "accepted": acc, "converged": bad})
        t_own = owner_change(lab, vm, m1.tgt.uid, t0)
        for n in (a, c):
            t4 = first_route_via(lab, n, vm.ip4, b.ip4, t0)
            lat = acc[n.name][0].get("latency_us") if acc[n.name] else "-"
            T.note("A -> B: %s: its route via node-b (ip monitor) %s ms %s the owner change "
                   "reached the outside block watch; announcement -> route %s us (agent)" % (
                       n.name, "-" if t4 is None or t_own is None else
                       "%.2f" % abs((t4 - t_own) * 1000),
                       "before" if t4 and t_own and t4 < t_own else "after", lat))
        dropped = wait_for(lambda: all(metrics(lab, n).get(("kvnet_peer_overrides", ""), 1) == 0
                                       for n in (a, c)))
        ok(dropped, "A -> B: the peer routes are dropped once the API's owner changed",
           {n.name: metrics(lab, n).get(("kvnet_peer_overrides", "")) for n in (a, c)})
        wait_for(lambda: udp_payloads(pcap, b.ip4), timeout=5)
        dump.stop()
        captured = udp_payloads(pcap, b.ip4)
        ok(len(captured) >= 1 and captured[0][:4] == b"KVPM",
           "A -> B: tcpdump on node-c captured the target's datagram", dump.log(10))

        # ---- B -> A with the API server down around the cut-over ---------------------------
        seen = {}

        def api_stop(m):
            lab.api_stop()

        def at_cutover(m):
            seen["via"] = wait_for(lambda: all(all(via(lab, ip, a).values()) for ip in ips),
                                   timeout=5)
            seen["have"] = {ip: O.forwarding(lab, ip) for ip in ips}
            lab.api_start()

        # node-b's convergence period first (a VM back within it is left to the API: the
        # migration code's TIMEWAIT timer clears any override of its addresses)
        O.wait_metric(m1.tgt, ips, 1024, timeout=CONV + 15)
        t1 = time.time()
        kv.migrate(vm, "node-a", hooks={"Running": api_stop, "cutover": at_cutover},
                   settle=lambda m: O.wait_converged(lab, vm, m.tgt))
        ok(seen.get("via"), NAMES[2] + " (node-b the source, and node-c)",
           {"forwarding": seen.get("have"), "node-b said": [
               f for f in lab.agent_lines(b) if str(f.get("msg", "")).startswith("peer")][-6:]})
        okc, bad = O.wait_converged(lab, vm, vm.pod, timeout=20)
        ok(okc, "B -> A: after the API is back every node still forwards to node-a", bad)
        # node-c drops its peer routes when the owner swap lands (why=api); on node-b the
        # source pod's own end (FORGET) or its SOURCE step may clear them first (replaced)
        drops = lambda n, whys: [f for f in peer_lines(lab, n, "peer override dropped", t1)
                                 if f.get("why") in whys]
        api_drops = wait_for(lambda: len(drops(c, ("api",))) == 2 and
                             len(drops(b, ("api", "replaced"))) == 2, timeout=20)
        held = {n.name: metrics(lab, n).get(("kvnet_peer_overrides", "")) for n in (a, b, c)}
        ok(api_drops and all(v == 0 for v in held.values()),
           "B -> A: once the API was back and the owner swap landed, node-c dropped its peer "
           "routes for it (why=api), node-b with its source pod's end; none held anywhere",
           {"held": held, "node-b": drops(b, ("api", "replaced", "expired")),
            "node-c": drops(c, ("api", "replaced", "expired"))})

        # ---- forged, replayed, garbage, oversized, stale, local ----------------------------
        O.wait_metric(vm.pod, ips, 1024, timeout=CONV + 15)  # node-a's convergence over
        before = base
        fwd = {ip: O.forwarding(lab, ip) for ip in ips}
        t2 = time.time()
        genuine = captured[0]
        boot, seq, _ = struct.unpack(">QQQ", genuine[8:32])
        now = time.time_ns()
        send_from(b, b.ip4, c.ip4, genuine)  # replayed again, now long after: stale
        send_from(b, b.ip4, c.ip4, build(b"another-key-of-the-same-len-000", "node-b",
                                         [b.ip4, b.ip6], ips, boot, seq + 1, now))  # forged
        send_from(b, b.ip4, c.ip4, os.urandom(100))  # random bytes: no HMAC fits either
        bad = b"KVPM" + bytes([9, 1, 0, 0]) + struct.pack(">QQQ", boot, seq + 3, now)
        send_from(b, b.ip4, c.ip4, bad + hmac.new(key, bad, hashlib.sha256).digest())  # garbage
        send_from(b, b.ip4, c.ip4, b"\0" * 1500)  # oversized
        send_from(b, b.ip4, c.ip4, build(key, "node-b", [b.ip4, b.ip6], ips, boot, seq + 2,
                                         now - 60 * 10**9))  # stale
        send_from(c, c.ip4, a.ip4, build(key, "node-c", [c.ip4, c.ip6], ips, now, 1, now,
                                         uid=m1.uid))  # local: vm-p runs on node-a
        want = {("c", "replay"): 1, ("c", "auth"): 2, ("c", "garbage"): 1, ("c", "size"): 1,
                ("c", "stale"): 1, ("a", "local"): 2, ("c", "replay+stale"): 3}

        def counted():
            have = {}
            for (who, reason), n in want.items():
                if "+" in reason:
                    continue
                node = a if who == "a" else c
                k = ("kvnet_peer_messages_rejected_total", reason)
                have[(who, reason)] = metrics(lab, node).get(k, 0) - before[node.name].get(k, 0)
            # the capture re-sent now is a replay (same boot, seq seen) while its event
            # time is within the window, stale after: either way refused
            have[("c", "replay+stale")] = have[("c", "replay")] + have[("c", "stale")]
            return have if all(have[k] >= want[k] for k in want) else None

        have = wait_for(counted, timeout=10)
        ok(have is not None, "forged and replayed: each rejected with its reason counted "
           "(node-c: the genuine datagram re-sent %s s after it came: replay; forged and "
           "random: auth x2; signed garbage; oversized: size; signed a minute old: stale; the "
           "capture re-sent later: replay or stale; node-a: the VM local and active: local x2)" % (
               "%.1f" % (replayed["t"] - t0) if replayed else "?"), counted() or
           {k: metrics(lab, a if k[0] == "a" else c).get(
               ("kvnet_peer_messages_rejected_total", k[1])) for k in want})
        moved = [(t, n, line) for t, n, line in O.route_changes(lab, ips, t2)]
        accepted = [f for n in (a, c) for f in peer_lines(lab, n, "peer claim accepted", t2)
                    if f.get("applied") != "0"]
        now_fwd = {ip: O.forwarding(lab, ip) for ip in ips}
        ok(now_fwd == fwd and not moved and not accepted, NAMES[3],
           {"before": fwd, "after": now_fwd, "route changes": moved, "accepted": accepted})
        rej = [f for f in peer_lines(lab, c, "peer message rejected", t2)]
        T.note("node-c said: " + "; ".join("%s: %s" % (f.get("reason"), f.get("detail"))
                                           for f in rej[-5:]))

        # ---- a restarted agent takes nothing from before its start ------------------------
        t_restart = time.time()
        lab.stop_agent(c)
        lab.start_agent(c)
        lab.wait_agent_ready(c)
        old_ts = int((t_restart - 0.2) * 1e9)  # signed, within the window, but older than it
        if time.time() - t_restart < 9:
            send_from(b, b.ip4, c.ip4, build(key, "node-b", [b.ip4, b.ip6], ips, boot,
                                             seq + 100, old_ts))
            got = wait_for(lambda: metrics(lab, c).get(
                ("kvnet_peer_messages_rejected_total", "stale"), 0) >= 1, timeout=10)
            now_fwd = {ip: O.forwarding(lab, ip) for ip in ips}
            ok(got and now_fwd == fwd, "restarted agent: a signed message from before its "
               "start (in the time window) is refused as stale, no route moves",
               {"stale": metrics(lab, c).get(("kvnet_peer_messages_rejected_total", "stale")),
                "before": fwd, "after": now_fwd})
        else:
            T.skip("restarted agent: a message from before its start is refused",
                   "the agent took %.1f s to be ready (window 10 s)" % (time.time() - t_restart))

        # ---- a lost message: nft drops the peer port on node-c ---------------------------
        c.run("nft", "add", "table", "inet", "kvtpeer")
        L.reaper().add(lambda: c.run("nft", "delete", "table", "inet", "kvtpeer", check=False))
        c.run("nft", "add", "chain", "inet", "kvtpeer", "in",
              "{ type filter hook input priority -10 ; }")
        c.run("nft", "add", "rule", "inet", "kvtpeer", "in", "udp", "dport", str(PORT),
              "counter", "drop")
        O.wait_metric(vm.pod, ips, 1024, timeout=CONV + 15)
        recv0 = metrics(lab, c).get(("kvnet_peer_messages_received_total", ""), 0)
        t3 = time.time()
        m3 = kv.migrate(vm, "node-b", settle=lambda m: O.wait_converged(lab, vm, m.tgt))
        okc, bad = O.wait_converged(lab, vm, m3.tgt)
        import json
        tab = json.loads(c.run("nft", "-j", "list", "table", "inet", "kvtpeer").stdout)
        drops = [r["expr"] for r in (x.get("rule") for x in tab.get("nftables", [])) if r]
        pk = [e["counter"]["packets"] for ex in drops for e in ex if "counter" in e]
        recv1 = metrics(lab, c).get(("kvnet_peer_messages_received_total", ""), 0)
        src_acc = [f for f in peer_lines(lab, a, "peer claim accepted", t3)
                   if f.get("node") == "node-b"]
        ok(okc and pk and pk[0] >= 1 and recv1 == recv0, NAMES[4] + " (nft dropped %s "
           "datagrams; node-c read none; the source still had it: %s)" % (
               pk[0] if pk else "?", bool(src_acc)),
           {"converged": bad, "nft": pk, "received": (recv0, recv1)})
        c.run("nft", "delete", "table", "inet", "kvtpeer", check=False)
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
