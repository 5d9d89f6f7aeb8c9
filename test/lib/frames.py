#!/usr/bin/env python3
"""frames.py — send hand-built Ethernet frames from a raw socket, independently of kvnet.

    python3 test/lib/frames.py IFACE KIND [KEY=VALUE ...]

KIND:
  garp       gratuitous ARP request (ip=, mac=, vlan=VID for an 802.1Q tag, op=1|2)
  arp        ordinary ARP request (ip= sender, target=)
  rarp       RARP request reverse as QEMU sends it (mac=, op=3|4)
  na         neighbour advertisement to ff02::1 (ip= target, mac=, flags=0x20, hops=255,
             tlla=0|1, vlan=VID)
  ns         neighbour solicitation for target= from ip=
Frames go out of IFACE in the current network namespace (run it with `ip netns exec`).
The ICMPv6 checksum is computed here (RFC 4443 2.3).
"""
import socket
import struct
import sys


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, ethertype, vlan):
    tag = struct.pack("!HH", 0x8100, int(vlan)) if vlan is not None else b""
    return dst + src + tag + struct.pack("!H", ethertype)


def arp_body(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa


def icmp6(src, dst, msg, hops):
    ph = src + dst + struct.pack("!I", len(msg)) + b"\0\0\0\x3a"
    c = csum(ph + msg)
    msg = msg[:2] + struct.pack("!H", c) + msg[4:]
    return struct.pack("!IHBB", 0x60000000, len(msg), 58, hops) + src + dst + msg


def build(kind, a):
    bcast = b"\xff" * 6
    mac = mac_bytes(a.get("mac", "02:00:00:00:00:01"))
    vlan = a.get("vlan")
    if kind in ("garp", "arp"):
        ip = socket.inet_aton(a["ip"])
        tip = socket.inet_aton(a.get("target", a["ip"]))
        body = arp_body(int(a.get("op", 1)), mac, ip, b"\0" * 6, tip)
        return eth(bcast, mac, 0x0806, vlan) + body + b"\0" * 18
    if kind == "rarp":
        body = arp_body(int(a.get("op", 3)), mac, b"\0" * 4, mac, b"\0" * 4)
        return eth(bcast, mac, 0x8035, vlan) + body + b"\0" * 18
    if kind == "na":
        tgt = socket.inet_pton(socket.AF_INET6, a["ip"])
        dst = socket.inet_pton(socket.AF_INET6, a.get("dst", "ff02::1"))
        msg = struct.pack("!BBHB3x", 136, 0, 0, int(a.get("flags", "0x20"), 0)) + tgt
        if a.get("tlla", "1") == "1":
            msg += b"\x02\x01" + mac_bytes(a.get("tlla_mac", a.get("mac", "02:00:00:00:00:01")))
        return eth(b"\x33\x33\0\0\0\x01", mac, 0x86DD, vlan) + icmp6(
            tgt, dst, msg, int(a.get("hops", 255)))
    if kind == "ns":
        src = socket.inet_pton(socket.AF_INET6, a["ip"])
        tgt = socket.inet_pton(socket.AF_INET6, a["target"])
        sol = b"\xff\x02" + b"\0" * 9 + b"\x01\xff" + tgt[13:]
        msg = struct.pack("!BBH4x", 135, 0, 0) + tgt + b"\x01\x01" + mac
        return eth(b"\x33\x33\xff" + tgt[13:], mac, 0x86DD, vlan) + icmp6(src, sol, msg, 255)
    raise SystemExit("frames.py: unknown kind " + kind)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    ifname, kind = sys.argv[1], sys.argv[2]
    a = dict(kv.split("=", 1) for kv in sys.argv[3:])
    frame = build(kind, a)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    for _ in range(int(a.get("count", 1))):
        s.send(frame)


if __name__ == "__main__":
    main()
