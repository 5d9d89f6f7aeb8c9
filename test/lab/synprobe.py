#!/usr/bin/env python3
"""synprobe — a legacy host's TCP connection attempts to a VM over a VLAN, in real 802.1Q
frames from one AF_PACKET socket (no 8021q, no kernel stack: independent of kvnet).

    python3 test/lab/synprobe.py IFACE VID MAC IP --to-mac M --to-ip A --port P
                                 [--count N] [--interval S] [--wait S]

Sends N TCP SYNs (IPv4 or IPv6 by the addresses; a new source port each) from IP at MAC,
tagged VID, to A:P at M, one per S seconds, and answers nothing itself (test/lib/
legacy.py answers the VM's ARP and neighbour solicitations). Prints one JSON line:
{"sent": N, "answers": K, "synack": K1, "rst": K2} where an answer is any TCP segment
from A:P to IP on VLAN VID that answers one of the SYNs (ack = its seq + 1), counted
once per SYN, until --wait seconds after the last SYN.
"""
import argparse
import ipaddress
import json
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from legacy import csum, eth, ip4, ip6, mac_b  # noqa: E402
from l2peer import ETH_P_ALL, PACKET_AUXDATA, SOL_PACKET, vlan_of  # noqa: E402


def tcp_syn(src, dst, sport, dport, seq, v6):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    if v6:
        pseudo = src + dst + struct.pack("!I3xB", len(hdr), 6)
    else:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr))
    c = csum(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def main():
    ap = argparse.ArgumentParser(prog="synprobe.py")
    ap.add_argument("iface")
    ap.add_argument("vid", type=int)
    ap.add_argument("mac")
    ap.add_argument("ip")
    ap.add_argument("--to-mac", required=True)
    ap.add_argument("--to-ip", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--wait", type=float, default=1.0)
    a = ap.parse_args()
    me, to = mac_b(a.mac), mac_b(a.to_mac)
    sa, da = ipaddress.ip_address(a.ip), ipaddress.ip_address(a.to_ip)
    v6 = sa.version == 6
    src, dst = sa.packed, da.packed
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((a.iface, 0))
    s.setblocking(False)
    base = random.randint(20000, 50000)
    want = {}  # sport -> seq
    got = {}   # sport -> "synack" | "rst" | "other"
    sent = 0
    nxt = time.monotonic()
    end = None
    while True:
        now = time.monotonic()
        if sent < a.count and now >= nxt:
            sport, seq = base + sent, random.getrandbits(32)
            seg = tcp_syn(src, dst, sport, a.port, seq, v6)
            if v6:
                frame = eth(to, me, a.vid, 0x86DD) + ip6(src, dst, 6, seg)
            else:
                frame = eth(to, me, a.vid, 0x0800) + ip4(src, dst, 6, seg)
            s.send(frame)
            want[sport] = seq
            sent += 1
            nxt = now + a.interval
            if sent == a.count:
                end = now + a.wait
        if end is not None and now >= end:
            break
        r, _, _ = select.select([s], [], [], 0.02)
        while r:
            try:
                frame, anc, _f, addr = s.recvmsg(65535, socket.CMSG_LEN(64))
            except (BlockingIOError, InterruptedError):
                break
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            vid, frame = vlan_of(frame, anc)
            if vid != a.vid or frame[0:6] != me:
                continue
            p = frame[14:]
            if v6:
                if frame[12:14] != b"\x86\xdd" or len(p) < 60 or p[6] != 6 or \
                        p[8:24] != dst or p[24:40] != src:
                    continue
                t = p[40:]
            else:
                if frame[12:14] != b"\x08\x00" or len(p) < 40 or p[9] != 6 or \
                        p[12:16] != dst or p[16:20] != src:
                    continue
                t = p[(p[0] & 15) * 4:]
            sp, dp, _seq, ack, _off, flags = struct.unpack("!HHIIBB", t[:14])
            if sp != a.port or dp not in want or dp in got or ack != (want[dp] + 1) & 0xFFFFFFFF:
                continue
            got[dp] = "synack" if flags & 0x12 == 0x12 else "rst" if flags & 0x04 else "other"
    print(json.dumps({"sent": sent, "answers": len(got),
                      "synack": sum(1 for v in got.values() if v == "synack"),
                      "rst": sum(1 for v in got.values() if v == "rst")}))


if __name__ == "__main__":
    main()
