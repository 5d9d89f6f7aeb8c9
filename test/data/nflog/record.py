#!/usr/bin/env python3
"""Record what the kernel sends an nflog listener, for test/unit/test-nflog.c and the
fuzz seeds (test/fuzz/corpus/nflog/): in a throw-away network namespace, a table logs
every packet leaving through lo to group 7 with a prefix; a plain python netlink socket
binds the group (copy 128 bytes) and the packets below are sent; each datagram the
kernel hands out is written to OUT/nflog-NAME.bin.

    sudo test/data/nflog/record.py [OUT]   (default: the directory of this file)

Packets: UDP 198.18.0.1:5353 -> 198.18.0.1:9999 (100 bytes payload), TCP SYN to
198.18.0.1:8080 (refused), ICMP echo to 198.18.0.1, UDP [2001:db8::1]:5354 ->
[2001:db8::1]:9998."""
import os
import socket
import struct
import subprocess
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
NS = "kvt-%d-nflog" % os.getpid()
GROUP = 7


def sh(*a):
    subprocess.run(a, check=True)


def cfg(s, seq, cmd=None, mode=None):
    attrs = b""
    if cmd is not None:
        attrs += struct.pack("=HHB3x", 5, 1, cmd)                 # NFULA_CFG_CMD
    if mode is not None:
        attrs += struct.pack("=HH", 10, 2) + struct.pack(">IB", mode, 2) + b"\0\0\0"
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(GROUP)) + attrs
    hdr = struct.pack("=IHHII", 16 + len(body), (4 << 8) | 1, 1 | 4, seq, 0)
    s.send(hdr + body)
    ack = s.recv(4096)
    err = struct.unpack_from("=i", ack, 16)[0]
    if err:
        raise OSError(-err, "nflog config")


def child():
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", "198.18.0.1/32", "dev", "lo")
    sh("ip", "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad")
    sh("nft", "add table inet kvt; add chain inet kvt out { type filter hook output "
       "priority 0; }; add rule inet kvt out oifname lo ip daddr 198.18.0.1 "
       "log prefix \"kvnet deny i_kvtest\" group 7; add rule inet kvt out oifname lo "
       "ip6 daddr 2001:db8::1 log prefix \"kvnet deny e_kvtest\" group 7")
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
    s.bind((0, 0))
    cfg(s, 1, cmd=1)
    cfg(s, 2, mode=128)
    s.settimeout(2)

    def grab(name, send):
        send()
        d = s.recv(65536)
        with open(os.path.join(OUT, "nflog-%s.bin" % name), "wb") as f:
            f.write(d)
        # the reply direction (RST, echo reply, port unreachable) may be logged too:
        # drain it so the next recording starts clean
        s.settimeout(0.3)
        try:
            while True:
                s.recv(65536)
        except socket.timeout:
            pass
        s.settimeout(2)

    def udp4():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("198.18.0.1", 5353))
        u.sendto(b"x" * 100, ("198.18.0.1", 9999))

    def tcp4():
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.settimeout(0.2)
        try:
            t.connect(("198.18.0.1", 8080))
        except OSError:
            pass

    def icmp4():
        subprocess.run(["ping", "-c", "1", "-W", "1", "198.18.0.1"], capture_output=True)

    def udp6():
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.bind(("2001:db8::1", 5354))
        u.sendto(b"y" * 10, ("2001:db8::1", 9998))

    for name, fn in (("udp4", udp4), ("tcp4", tcp4), ("icmp4", icmp4), ("udp6", udp6)):
        grab(name, fn)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--child":
        child()
        sys.exit(0)
    sh("ip", "netns", "add", NS)
    try:
        subprocess.run(["ip", "netns", "exec", NS, sys.executable, os.path.abspath(__file__),
                        OUT, "--child"], check=True)
    finally:
        subprocess.run(["ip", "netns", "del", NS])
