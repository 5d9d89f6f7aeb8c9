#!/usr/bin/env python3
"""record.py — record real nf_tables netlink answers: seeds for test/fuzz/fuzz-nft.c.

    python3 test/data/nft/record.py [OUTDIR]      (root; default: this directory)

Creates a throw-away network namespace kvt-<pid>-nftrec, loads a ruleset into it with
`nft -f` (nftables' own code, not kvnet's), then talks NETLINK_NETFILTER to the kernel
with a plain python socket bound to port id 0x4b560002 (NETLINK_EXT_ACK and
NETLINK_CAP_ACK on) and writes every datagram the kernel sent back, byte for byte and
concatenated, to OUTDIR/*.bin (copy them into test/fuzz/corpus/nft/ after re-recording;
test/unit/test-nft.c replays them):

  table.bin         NFT_MSG_GETTABLE inet kvnet (not a dump): NEWTABLE, ACK
  chains.bin        GETCHAIN dump: base chain, regular chains, NLMSG_DONE
  sets.bin          GETSET dump: interval sets, a port set, a verdict map
  elems-peers.bin   GETSETELEM dump of the interval set (start / end elements)
  elems-epmap.bin   GETSETELEM dump of the verdict map (jump verdicts)
  elems-svc.bin     GETSETELEM dump of a concatenation set with ranges (KEY_END)
  elems-flows.bin   GETSETELEM dump of a dynamic concatenation set with a timeout and
                    a counter per element (NFTA_SET_ELEM_EXPR, EXPIRATION)
  rules.bin         GETRULE dump: rules with comments, counters, lookups, vmap, log
  other.bin         GETRULE dump of every family (a table of family ip besides)
  gen.bin           GETGEN: NEWGEN
  batch-ack.bin     a batch (BEGIN, NEWTABLE + ACK, END): one ACK
  batch-err.bin     a batch whose second message names a missing chain: ACK, -ENOENT
  batch-genid.bin   a batch with a stale NFNL_BATCH_GENID: -ERESTART on BEGIN
The namespace is deleted on every exit path.
"""
import os
import signal
import socket
import struct
import subprocess
import sys

PORTID = 0x4B560002
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_NETFILTER = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_APPEND, NLM_F_DUMP = 1, 4, 0x400, 0x800, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
BATCH_BEGIN, BATCH_END = 16, 17
SUBSYS = 10 << 8
NEWTABLE, GETTABLE, GETCHAIN, GETRULE, NEWRULE, GETSET, GETSETELEM, GETGEN = 0, 1, 4, 7, 6, 10, 13, 16
INET, UNSPEC = 1, 0

RULESET = """
table inet kvnet {
	set peers {
		type ipv4_addr; flags interval
		elements = { 198.18.1.0/24, 198.18.4.0-198.18.4.99, 198.19.0.0/16 }
	}
	set peers6 {
		type ipv6_addr; flags interval
		elements = { 2001:db8:1::/64 }
	}
	set ports {
		type inet_service; flags interval
		elements = { 53, 8000-8080 }
	}
	set svc {
		type inet_proto . inet_service; flags interval
		elements = { tcp . 8000-8080, udp . 53 }
	}
	set flows {
		type ifname . ipv4_addr . ipv4_addr . inet_service . inet_service
		flags dynamic,timeout; size 100; timeout 60s; counter
		elements = { "veth1" . 198.18.1.2 . 198.18.2.2 . 40000 . 80 counter packets 3 bytes 180,
			     "veth2" . 198.18.2.2 . 198.18.1.2 . 80 . 40000 counter packets 2 bytes 2920 }
	}
	map epmap {
		type ifname : verdict
		elements = { "veth1" : jump ep-1, "veth2" : goto ep-2 }
	}
	chain ep-1 {
		ip saddr @peers tcp dport 8080 counter accept comment "r1"
		ip6 saddr @peers6 udp dport @ports counter accept comment "r2"
		iifname "veth*" ip daddr 198.18.2.0/25 tcp dport 9000-9010 log prefix "kvnet " counter drop comment "r3"
		counter drop
	}
	chain ep-2 {
		return
	}
	chain base-fwd {
		type filter hook forward priority 0; policy drop;
		ct state established,related counter accept comment "ct-est"
		ct state invalid counter drop comment "ct-inv"
		oifname vmap @epmap comment "dispatch"
	}
}
table ip other {
	chain c {
		type filter hook input priority 10;
		counter
	}
}
"""


def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)


def s(t, v):
    return attr(t, v.encode() + b"\0")


def msg(t, flags, seq, fam, body, res=0):
    body = struct.pack("=BBH", fam, 0, res) + body
    return struct.pack("=IHHII", 16 + len(body), t, flags | NLM_F_REQUEST, seq, PORTID) + body


def read_until(sock, done):
    out = b""
    while True:
        d = sock.recv(65536)
        out += d
        off = 0
        while off + 16 <= len(d):
            ln, t = struct.unpack_from("=IH", d, off)
            if done(t):
                return out
            off += (ln + 3) & ~3


def drain(sock):
    out = b""
    sock.setblocking(False)
    try:
        while True:
            out += sock.recv(65536)
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return out


def record(outdir):
    sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sk.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sk.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sk.bind((PORTID, 0))
    files = {}

    def get(name, t, seq, fam, body, dump):
        sk.send(msg(SUBSYS | t, NLM_F_DUMP if dump else NLM_F_ACK, seq, fam, body))
        files[name] = read_until(sk, lambda ty: ty == NLMSG_DONE or (not dump and ty == NLMSG_ERROR))

    get("table", GETTABLE, 101, INET, s(1, "kvnet"), False)
    get("chains", GETCHAIN, 102, INET, s(1, "kvnet"), True)
    get("sets", GETSET, 103, INET, s(1, "kvnet"), True)
    get("elems-peers", GETSETELEM, 104, INET, s(1, "kvnet") + s(2, "peers"), True)
    get("elems-epmap", GETSETELEM, 105, INET, s(1, "kvnet") + s(2, "epmap"), True)
    get("elems-svc", GETSETELEM, 109, INET, s(1, "kvnet") + s(2, "svc"), True)
    get("elems-flows", GETSETELEM, 110, INET, s(1, "kvnet") + s(2, "flows"), True)
    get("rules", GETRULE, 106, INET, s(1, "kvnet"), True)
    get("other", GETRULE, 107, UNSPEC, b"", True)
    get("gen", GETGEN, 108, UNSPEC, b"", False)

    def batch(name, seq, msgs, genid=None):
        begin = msg(BATCH_BEGIN, 0, seq, UNSPEC,
                    attr(1, struct.pack(">I", genid)) if genid else b"", res=socket.htons(10))
        body = b"".join(m(seq + 1 + i) for i, m in enumerate(msgs))
        end = msg(BATCH_END, 0, seq + 1 + len(msgs), UNSPEC, b"", res=socket.htons(10))
        sk.send(begin + body + end)
        files[name] = drain(sk)

    newtable = lambda seq: msg(SUBSYS | NEWTABLE, NLM_F_ACK | NLM_F_CREATE, seq, INET, s(1, "kvnet"))
    badrule = lambda seq: msg(SUBSYS | NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, seq, INET,
                              s(1, "kvnet") + s(2, "missing"))
    batch("batch-ack", 200, [newtable])
    batch("batch-err", 300, [newtable, badrule])
    batch("batch-genid", 400, [newtable], genid=1)
    for name, data in files.items():
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(data)
        print("%s.bin: %d bytes" % (name, len(data)))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        record(sys.argv[2])
        return
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(outdir, exist_ok=True)
    ns = "kvt-%d-nftrec" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=RULESET.encode(),
                       check=True)
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                        "--inside", outdir], check=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
