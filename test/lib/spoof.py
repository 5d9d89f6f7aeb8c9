#!/usr/bin/env python3
"""spoof.py — what a misbehaving VM sends, from a raw socket (independent of kvnet).

    python3 test/lib/spoof.py IFACE MAC IP KIND MARK

Every frame carries "KVT-MARK:" + MARK in its payload, so the receiving side
(test/lib/legacy.py logs marks) can tell which ones got through. KIND:
  good       UDP from MAC/IP to the broadcast (the control: it must arrive)
  othermac   the same from another source MAC
  hop        the same with an 802.1Q tag for VLAN 200 in the frame (VLAN hopping)
  qinq       two tags (100 outer, 200 inner)
  ipspoof    UDP from 198.18.100.99
  arpspoof   ARP request whose sender address is 198.18.100.99 (the mark in the padding)
  dhcp       a DHCP server reply (UDP 67 -> 68)
  ra         an ICMPv6 router advertisement from fe80::1
  lldp       an LLDP frame
"""
import socket
import struct
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from legacy import eth, icmp6, ip4, ip6, mac_b  # noqa: E402

BCAST = b"\xff" * 6


def udp4(src_ip, sport, dport, payload):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return ip4(socket.inet_aton(src_ip), b"\xff\xff\xff\xff", 17, u)


def main():
    iface, mac, ip, kind, mark = sys.argv[1:6]
    m = mac_b(mac)
    pay = b"KVT-MARK:" + mark.encode() + b"\0" * 8
    other = mac_b("02:00:de:ad:be:ef")
    if kind == "good":
        f = eth(BCAST, m, 0, 0x0800) + udp4(ip, 40000, 9, pay)
    elif kind == "othermac":
        f = eth(BCAST, other, 0, 0x0800) + udp4(ip, 40000, 9, pay)
    elif kind == "hop":
        f = eth(BCAST, m, 200, 0x0800) + udp4(ip, 40000, 9, pay)
    elif kind == "qinq":
        f = BCAST + m + struct.pack("!HHHHH", 0x8100, 100, 0x8100, 200, 0x0800) + \
            udp4(ip, 40000, 9, pay)
    elif kind == "ipspoof":
        f = eth(BCAST, m, 0, 0x0800) + udp4("198.18.100.99", 40000, 9, pay)
    elif kind == "arpspoof":
        body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + m + \
            socket.inet_aton("198.18.100.99") + b"\0" * 6 + socket.inet_aton("198.18.100.1")
        f = eth(BCAST, m, 0, 0x0806) + body + pay
    elif kind == "dhcp":
        f = eth(BCAST, m, 0, 0x0800) + udp4(ip, 67, 68, pay)
    elif kind == "ra":
        src = socket.inet_pton(socket.AF_INET6, "fe80::1")
        dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
        body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + pay
        f = eth(b"\x33\x33\x00\x00\x00\x01", m, 0, 0x86DD) + ip6(src, dst, 58,
                                                                 icmp6(src, dst, body), 255)
    elif kind == "lldp":
        f = eth(b"\x01\x80\xc2\x00\x00\x0e", m, 0, 0x88CC) + pay
    else:
        sys.exit("spoof.py: unknown kind " + kind)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(f)


if __name__ == "__main__":
    main()
