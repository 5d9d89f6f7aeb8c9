#!/usr/bin/env python3
"""legacy.py — "legacy hosts" on VLANs of a trunk, independent of kvnet: real 802.1Q
frames without the 8021q module, from one AF_PACKET socket.

    python3 test/lib/legacy.py IFACE LOG HOST...

HOST is VID,MAC,IP[,IP...] (VID 0: untagged). The script answers, on that VLAN only: ARP
requests for its IPv4 addresses, ICMP echo, IPv6 neighbour solicitations for its IPv6
addresses and ICMPv6 echo. Frames it sends carry the 802.1Q tag in the frame itself. What
it receives is tagged by the kernel's metadata (PACKET_AUXDATA: tp_vlan_tci, tp_status
TP_STATUS_VLAN_VALID) or in the frame (a TPID 0x8100 ethertype), and either way every
frame is logged to LOG as one JSON line: {"t": monotonic s, "vid": VID or null, "src":
MAC, "dst": MAC, "type": ethertype, "ip_src", "ip_dst", "proto", "mark"}, where mark is
the payload's first 16 bytes after a "KVT-MARK:" tag if it carries one (so a test can
look for the frames it sent itself). SIGTERM ends it. "ready" goes to stdout once the
socket is bound.
"""
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4


def mac_b(s):
    return bytes(int(x, 16) for x in s.split(":"))


def mac_s(b):
    return ":".join("%02x" % x for x in b)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Host:
    def __init__(self, spec):
        parts = spec.split(",")
        self.vid = int(parts[0])
        self.mac = mac_b(parts[1])
        self.v4 = [ipaddress.ip_address(p).packed for p in parts[2:] if ":" not in p]
        self.v6 = [ipaddress.ip_address(p).packed for p in parts[2:] if ":" in p]


def eth(dst, src, vid, ethertype):
    tag = struct.pack("!HH", 0x8100, vid) if vid else b""
    return dst + src + tag + struct.pack("!H", ethertype)


def ip4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ip6(src, dst, nh, payload, hops=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hops, src, dst) + payload


def icmp6(src, dst, body):
    pseudo = src + dst + struct.pack("!I3xB", len(body), 58)
    c = csum(pseudo + body)
    return body[:2] + struct.pack("!H", c) + body[4:]


def answer(h, frame, vid):
    """The frame host h sends in reply to frame (received on VLAN vid), or None."""
    if len(frame) < 14:
        return None
    dst, src, et = frame[0:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    p = frame[14:]
    if et == 0x0806 and len(p) >= 28:
        op = struct.unpack("!H", p[6:8])[0]
        sha, spa, tpa = p[8:14], p[14:18], p[24:28]
        if op == 1 and tpa in h.v4:
            body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + h.mac + tpa + sha + spa
            return eth(src, h.mac, vid, 0x0806) + body
    if et == 0x0800 and len(p) >= 28 and dst == h.mac:
        ihl = (p[0] & 15) * 4
        proto, s4, d4 = p[9], p[12:16], p[16:20]
        if proto == 1 and d4 in h.v4 and p[ihl] == 8:
            icmp = b"\0\0\0\0" + p[ihl + 4:]
            icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
            return eth(src, h.mac, vid, 0x0800) + ip4(d4, s4, 1, icmp)
    if et == 0x86DD and len(p) >= 48:
        nh, s6, d6 = p[6], p[8:24], p[24:40]
        body = p[40:]
        if nh != 58 or not body:
            return None
        if body[0] == 135 and len(body) >= 24 and body[8:24] in h.v6:
            tgt = body[8:24]
            na = struct.pack("!BBHI16s", 136, 0, 0, 0x60000000, tgt) + struct.pack("!BB6s", 2, 1,
                                                                                  h.mac)
            return eth(src, h.mac, vid, 0x86DD) + ip6(tgt, s6, 58, icmp6(tgt, s6, na), 255)
        if body[0] == 128 and d6 in h.v6 and dst == h.mac:
            rep = bytes([129, 0, 0, 0]) + body[4:]
            return eth(src, h.mac, vid, 0x86DD) + ip6(d6, s6, 58, icmp6(d6, s6, rep))
    return None


def describe(frame, vid):
    rec = {"t": round(time.monotonic(), 6), "vid": vid, "dst": mac_s(frame[0:6]),
           "src": mac_s(frame[6:12]), "type": None}
    if len(frame) < 14:
        return rec
    et = struct.unpack("!H", frame[12:14])[0]
    p = frame[14:]
    rec["type"] = et
    if et == 0x0800 and len(p) >= 20:
        rec.update(ip_src=socket.inet_ntop(socket.AF_INET, p[12:16]),
                   ip_dst=socket.inet_ntop(socket.AF_INET, p[16:20]), proto=p[9])
    elif et == 0x86DD and len(p) >= 40:
        rec.update(ip_src=socket.inet_ntop(socket.AF_INET6, p[8:24]),
                   ip_dst=socket.inet_ntop(socket.AF_INET6, p[24:40]), proto=p[6])
    elif et == 0x0806 and len(p) >= 28:
        rec.update(ip_src=socket.inet_ntop(socket.AF_INET, p[14:18]),
                   ip_dst=socket.inet_ntop(socket.AF_INET, p[24:28]), proto=None)
    i = frame.find(b"KVT-MARK:")
    if i >= 0:
        rec["mark"] = frame[i + 9:i + 25].split(b"\0")[0].decode("ascii", "replace")
    return rec


def main():
    iface, logpath = sys.argv[1], sys.argv[2]
    hosts = [Host(a) for a in sys.argv[3:]]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log = open(logpath, "a", buffering=1)
    print("ready", flush=True)
    while True:
        frame, anc, _flags, addr = s.recvmsg(65535, socket.CMSG_LEN(64))
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        vid = None
        for level, typ, data in anc:
            # struct tpacket_auxdata: status, len, snaplen (u32), mac, net, vlan_tci,
            # vlan_tpid (u16)
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(data) >= 20:
                status = struct.unpack_from("I", data, 0)[0]
                tci = struct.unpack_from("H", data, 16)[0]
                if status & TP_STATUS_VLAN_VALID or tci:
                    vid = tci & 0xFFF
        if vid is None and len(frame) >= 18 and frame[12:14] == b"\x81\x00":
            vid = struct.unpack("!H", frame[14:16])[0] & 0xFFF
            frame = frame[:12] + frame[16:]
        log.write(json.dumps(describe(frame, vid)) + "\n")
        for h in hosts:
            if h.vid == (vid or 0):
                r = answer(h, frame, h.vid)
                if r:
                    s.send(r)


if __name__ == "__main__":
    main()
