#!/usr/bin/env python3
"""record.py — record real kernel netlink replies for the replay tests.

    python3 test/data/netlink/record.py [OUTDIR]      (root; default: this directory)

Creates a throw-away network namespace kvt-<pid>-rec, sets it up with iproute2, talks
rtnetlink to the kernel with a plain python socket (independent of kvnet's own netlink
code) and writes every datagram the kernel sent back, byte for byte, to OUTDIR/*.bin.
The namespace is deleted on every exit path. See README.md for what each file holds.
"""
import os
import signal
import socket
import struct
import subprocess
import sys

PORTID = 0x4B560001  # bound explicitly, so the replay tests know it
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_NEWROUTE, RTM_GETROUTE, RTM_GETTFILTER = 18, 24, 26, 46
TC_H_CLSACT, TC_H_MIN_INGRESS, TC_H_MIN_EGRESS = 0xFFFFFFF1, 0xFFF2, 0xFFF3
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY = 1, 4, 5, 6


def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)


def msg(t, flags, seq, body):
    return struct.pack("=IHHII", 16 + len(body), t, flags, seq, PORTID) + body


def exchange(sock, req, dump):
    """Send req, return the concatenated datagrams of the whole reply."""
    sock.send(req)
    out = b""
    while True:
        d = sock.recv(65536)
        out += d
        off, end = 0, False
        while off + 16 <= len(d):
            ln, t = struct.unpack_from("=IH", d, off)
            if t == NLMSG_DONE or (t == NLMSG_ERROR and not dump):
                end = True
            off += (ln + 3) & ~3
        if end:
            return out


def rtmsg(dst_len, table, proto, scope, rtype=1):
    # family, dst_len, src_len, tos, table, protocol, scope, type, flags
    return struct.pack("=BBBBBBBBI", socket.AF_INET, dst_len, 0, 0, table, proto, scope, rtype, 0)


def record(outdir):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sock.bind((PORTID, 0))
    v0 = socket.if_nametoindex("v0")

    def save(name, data):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")

    # link dump: lo, v0, v1
    ifi = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    link = exchange(sock, msg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 101, ifi), True)
    save("link-dump.bin", link)
    # ACK: add 198.18.7.7/32 dev v0 scope link proto 75 metric 1024
    body = rtmsg(32, 254, 75, 253) + attr(RTA_DST, socket.inet_aton("198.18.7.7")) + \
        attr(RTA_OIF, struct.pack("=I", v0)) + attr(RTA_PRIORITY, struct.pack("=I", 1024))
    save("ack.bin", exchange(sock, msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE |
                                       NLM_F_EXCL, 103, body), False))
    # route dump (IPv4, all tables)
    save("route-dump.bin", exchange(sock, msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 102,
                                              rtmsg(0, 0, 0, 0, 0)), True))
    # error with extended ack: gateway not reachable on v0
    body = rtmsg(32, 254, 75, 0) + attr(RTA_DST, socket.inet_aton("198.18.0.5")) + \
        attr(RTA_GATEWAY, socket.inet_aton("198.19.9.9")) + attr(RTA_OIF, struct.pack("=I", v0))
    save("err-extack.bin", exchange(sock, msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK |
                                              NLM_F_CREATE | NLM_F_EXCL, 104, body), False))
    # tc filter dumps of v0's clsact hooks (set up by tc: an eBPF filter on ingress, a
    # classic BPF one on egress)
    for name, hook, seq in (("tc-dump-ingress.bin", TC_H_MIN_INGRESS, 105),
                            ("tc-dump-egress.bin", TC_H_MIN_EGRESS, 106)):
        tcm = struct.pack("=BxxxiIII", socket.AF_UNSPEC, v0, 0, (TC_H_CLSACT & 0xFFFF0000) | hook, 0)
        save(name, exchange(sock, msg(RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, seq, tcm), True))
    # truncated: the link dump cut 10 bytes into its second message
    first_len = (struct.unpack_from("=I", link, 0)[0] + 3) & ~3
    save("truncated.bin", link[: first_len + 10])


def main():
    outdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__))
    if os.environ.get("KVT_REC_INSIDE"):
        record(outdir)
        return
    ns = f"kvt-{os.getpid()}-rec"

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
        sh("link", "add", "v0", "address", "02:4b:56:00:00:01", "mtu", "1400", "type", "veth",
           "peer", "name", "v1", "address", "02:4b:56:00:00:02")
        sh("link", "set", "v0", "up")
        sh("link", "set", "v1", "up")
        sh("addr", "add", "198.18.0.1/24", "dev", "v0")
        sh("route", "add", "198.18.6.0/24", "via", "198.18.0.2", "dev", "v0", "proto", "75",
           "metric", "512")
        # a trivial eBPF classifier, compiled here by clang (only to record with)
        src = os.path.join(outdir, ".rec-cls.c")
        obj = os.path.join(outdir, ".rec-cls.o")
        with open(src, "w") as f:
            f.write('__attribute__((section("classifier"), used)) int cls(void *s) { return 2; }\n'
                    'char _license[] __attribute__((section("license"), used)) = "GPL";\n')
        subprocess.run(["clang", "-target", "bpf", "-O2", "-c", src, "-o", obj], check=True)
        tc = lambda *a: subprocess.run(["ip", "netns", "exec", ns, "tc", *a], check=True)
        tc("qdisc", "add", "dev", "v0", "clsact")
        tc("filter", "add", "dev", "v0", "ingress", "prio", "7", "handle", "1", "bpf", "da",
           "obj", obj, "sec", "classifier")
        tc("filter", "add", "dev", "v0", "egress", "bpf", "bytecode", "1,6 0 0 0,",
           "classid", "1:1")
        os.unlink(src)
        os.unlink(obj)
        env = dict(os.environ, KVT_REC_INSIDE="1")
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                        outdir], check=True, env=env)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
