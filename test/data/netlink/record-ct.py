#!/usr/bin/env python3
"""record-ct.py — record real ctnetlink traffic for the conntrack replay tests and fuzzer.

    python3 test/data/netlink/record-ct.py [OUTDIR]      (root; default: this directory)

Creates a throw-away network namespace kvt-<pid>-ctrec with lo up, 198.18.6.1/32,
198.18.1.2/32 and 2001:db8:6::1/128 on lo, a route to 198.18.7.7 via lo, nft inet output
rules (DNAT 198.18.7.7 tcp 80 -> 198.18.6.1:8080, and a `ct state` counter so IPv6 is
tracked too), and accounting and timestamps on (nf_conntrack_acct, _timestamp). A plain
python socket (not kvnet's code), bound to
port id 0x4b560002, joins the conntrack new/update/destroy groups; then real traffic runs
over lo: a TCP connection 198.18.1.2 -> 198.18.7.7:80 (DNAT-ed), a TCP connection over
IPv6, a UDP datagram and a ping. The socket then asks for a conntrack dump (AF_UNSPEC).
Written byte for byte:

  ct-events.bin  every event datagram the kernel sent, concatenated (seq 0, port 0)
  ct-dump.bin    the dump reply, NLMSG_DONE included (seq 201)
  ct-wire.bin    the dump's entries in kvnet's wire form (net/ct.h), encoded HERE from the
                 bytes above by this script's own parser, so the C encoder can be checked
                 against an independent one

The namespace is deleted on every exit path.
"""
import os
import signal
import socket
import struct
import subprocess
import sys

PORTID = 0x4B560002
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP = 1, 2
NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY = 1, 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_DONE = 3
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET = 0, 1
CT_MSG = lambda t: (1 << 8) | t  # NFNL_SUBSYS_CTNETLINK = 1

# attribute numbers (linux/netfilter/nfnetlink_conntrack.h)
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO = 1, 2, 3, 4
CTA_TIMEOUT, CTA_MARK, CTA_ZONE = 7, 8, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 4, 5, 6
CTA_PROTO_ICMPV6_ID, CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE = 7, 8, 9
CTA_PROTOINFO_TCP = 1
TCP_STATE, TCP_WSCALE_O, TCP_WSCALE_R, TCP_FLAGS_O, TCP_FLAGS_R = 1, 2, 3, 4, 5


def attrs(b):
    """{type: payload} of the attributes in b (last one wins)."""
    out, off = {}, 0
    while off + 4 <= len(b):
        ln, t = struct.unpack_from("=HH", b, off)
        if ln < 4:
            break
        out[t & 0x3FFF] = b[off + 4: off + ln]
        off += (ln + 3) & ~3
    return out


def tuple_of(b, fam):
    a = attrs(b)
    ip, pr = attrs(a[CTA_TUPLE_IP]), attrs(a[CTA_TUPLE_PROTO])
    s, d = (CTA_IP_V4_SRC, CTA_IP_V4_DST) if fam == socket.AF_INET else (CTA_IP_V6_SRC, CTA_IP_V6_DST)
    proto = pr[CTA_PROTO_NUM][0]
    be16 = lambda k: struct.unpack(">H", pr[k])[0] if k in pr else 0
    u8 = lambda k: pr[k][0] if k in pr else 0
    if proto == 1:
        sport, dport = be16(CTA_PROTO_ICMP_ID), u8(CTA_PROTO_ICMP_TYPE) << 8 | u8(CTA_PROTO_ICMP_CODE)
    elif proto == 58:
        sport, dport = be16(CTA_PROTO_ICMPV6_ID), u8(CTA_PROTO_ICMPV6_TYPE) << 8 | u8(CTA_PROTO_ICMPV6_CODE)
    else:
        sport, dport = be16(CTA_PROTO_SRC_PORT), be16(CTA_PROTO_DST_PORT)
    pad = lambda x: x + b"\0" * (16 - len(x))
    return proto, pad(ip[s]) + pad(ip[d]) + struct.pack(">HH", sport, dport)


def wire_of(dump):
    """The entries of a dump reply in the wire form of net/ct.h."""
    entries, off = [], 0
    while off + 16 <= len(dump):
        ln, t = struct.unpack_from("=IH", dump, off)
        body = dump[off + 16: off + ln]
        off += (ln + 3) & ~3
        if t != CT_MSG(IPCTNL_MSG_CT_NEW):
            continue
        fam = body[0]
        a = attrs(body[4:])
        proto, orig = tuple_of(a[CTA_TUPLE_ORIG], fam)
        _, reply = tuple_of(a[CTA_TUPLE_REPLY], fam)
        u32 = lambda k: struct.unpack(">I", a[k])[0] if k in a else 0
        zone = struct.unpack(">H", a[CTA_ZONE])[0] if CTA_ZONE in a else 0
        has_tcp, state, ws, fl, mk = 0, 0, [0, 0], [0, 0], [0, 0]
        if proto == 6 and CTA_PROTOINFO in a:
            tcp = attrs(attrs(a[CTA_PROTOINFO]).get(CTA_PROTOINFO_TCP, b""))
            if TCP_STATE in tcp:
                has_tcp, state = 1, tcp[TCP_STATE][0]
            ws = [tcp.get(TCP_WSCALE_O, b"\0")[0], tcp.get(TCP_WSCALE_R, b"\0")[0]]
            fo, fr = tcp.get(TCP_FLAGS_O, b"\0\0"), tcp.get(TCP_FLAGS_R, b"\0\0")
            fl, mk = [fo[0], fr[0]], [fo[1], fr[1]]
        entries.append(struct.pack("BBBB", fam, proto, has_tcp, state) + orig + reply +
                       struct.pack(">IIIH", u32(CTA_STATUS), u32(CTA_TIMEOUT), u32(CTA_MARK), zone) +
                       bytes(ws + fl + mk))
    return b"KVCT" + struct.pack(">BBH", 1, 0, len(entries)) + b"".join(entries)


def traffic():
    """Real connections over lo: DNAT-ed TCP, TCP over IPv6, UDP, ping."""
    for fam, lst, dial in ((socket.AF_INET, ("198.18.6.1", 8080), ("198.18.7.7", 80)),
                           (socket.AF_INET6, ("2001:db8:6::1", 8080), ("2001:db8:6::1", 8080))):
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.bind(lst)
        ls.listen(1)
        c = socket.socket(fam, socket.SOCK_STREAM)
        if fam == socket.AF_INET:
            c.bind(("198.18.1.2", 0))
        c.settimeout(5)
        c.connect(dial)
        p, _ = ls.accept()
        c.sendall(b"ping")
        p.recv(4)
        p.sendall(b"pong")
        c.recv(4)
        c.close()
        p.close()
        ls.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("198.18.1.2", 5353))
    u.sendto(b"q", ("198.18.6.1", 53))
    u.close()
    subprocess.run(["ping", "-c", "1", "-W", "2", "198.18.6.1"], check=True,
                   stdout=subprocess.DEVNULL)


def record(outdir):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((PORTID, 0))
    for g in (NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY):
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g)

    def save(name, data):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")

    traffic()
    sock.settimeout(0.5)
    events = b""
    try:
        while True:
            events += sock.recv(65536)
    except socket.timeout:
        pass
    save("ct-events.bin", events)
    for g in (NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY):
        sock.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, g)  # the dump alone from here
    req = struct.pack("=IHHII", 20, CT_MSG(IPCTNL_MSG_CT_GET), NLM_F_REQUEST | NLM_F_DUMP, 201,
                      PORTID) + struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)
    sock.settimeout(5)
    sock.send(req)
    dump = b""
    while True:
        d = sock.recv(65536)
        off, end = 0, False
        while off + 16 <= len(d):
            ln, t, _, seq = struct.unpack_from("=IHHI", d, off)
            end = end or (t == NLMSG_DONE and seq == 201)
            off += (ln + 3) & ~3
        dump += d
        if end:
            break
    save("ct-dump.bin", dump)
    save("ct-wire.bin", wire_of(dump))


def main():
    outdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__))
    if os.environ.get("KVT_REC_INSIDE"):
        record(outdir)
        return
    ns = f"kvt-{os.getpid()}-ctrec"

    def cleanup(*_):
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        if _:
            sys.exit(1)

    signal.signal(signal.SIGINT, cleanup)
    signal.signal(signal.SIGTERM, cleanup)
    try:
        sh = lambda *a: subprocess.run(["ip", "-n", ns, *a], check=True)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        sh("link", "set", "lo", "up")
        for a in ("198.18.6.1/32", "198.18.1.2/32", "2001:db8:6::1/128"):
            sh("addr", "add", a, "dev", "lo", *(["nodad"] if ":" in a else []))
        sh("route", "add", "198.18.7.7/32", "dev", "lo")  # the Service address, DNAT-ed
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True, text=True,
                       input="table inet kvtrec { chain out { type nat hook output priority -100"
                             "; ip daddr 198.18.7.7 tcp dport 80 dnat ip to "
                             "198.18.6.1:8080; }; chain track { type filter hook "
                             "output priority 0; ct state new counter; }; }\n")
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                        "net.netfilter.nf_conntrack_acct=1",
                        "net.netfilter.nf_conntrack_timestamp=1"], check=True)
        env = dict(os.environ, KVT_REC_INSIDE="1")
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                        outdir], check=True, env=env)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
