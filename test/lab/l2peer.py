#!/usr/bin/env python3
"""l2peer — a legacy host on a VLAN of the lab's upstream switch that streams UDP echoes
to a VM, in real 802.1Q frames from one AF_PACKET socket (no 8021q; independent of kvnet).

    python3 test/lab/l2peer.py IFACE VID MAC IP --to-mac M --to-ip A --out FILE
                               [--rate 1000] [--ready FILE2] [--id ID]

It answers ARP requests and ICMP echo for IP on VLAN VID (test/lib/legacy.py's answer()),
and sends one numbered UDP echo (echo.py's format: "KVE1" + seq, port 7) per 1/rate s to
A at M, tagged VID, until SIGTERM; answers from A (the guest's echo.py appends its name)
are matched by sequence number. FILE gets echo.py stream's format {"to", "id", "send":
[t...], "reply": {seq: [t, who]}} (CLOCK_REALTIME), so lab.StreamResult reads it; FILE2
gets {"ev": "streaming"} once the socket is bound and {"ev": "progress", "t", "sent",
"who"} at most every 20 ms when something changed.
"""
import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from legacy import Host, answer, eth, ip4, mac_b  # noqa: E402

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
MAGIC = b"KVE1"
PORT = 7
SPORT = 40007


def vlan_of(frame, anc):
    """(vid or None, frame without an in-frame tag)."""
    for level, typ, data in anc:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(data) >= 20:
            status = struct.unpack_from("I", data, 0)[0]
            tci = struct.unpack_from("H", data, 16)[0]
            if status & TP_STATUS_VLAN_VALID or tci:
                return tci & 0xFFF, frame
    if len(frame) >= 18 and frame[12:14] == b"\x81\x00":
        return struct.unpack("!H", frame[14:16])[0] & 0xFFF, frame[:12] + frame[16:]
    return None, frame


def main():
    ap = argparse.ArgumentParser(prog="l2peer.py")
    ap.add_argument("iface")
    ap.add_argument("vid", type=int)
    ap.add_argument("mac")
    ap.add_argument("ip")
    ap.add_argument("--to-mac", required=True)
    ap.add_argument("--to-ip", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--ready", default="")
    ap.add_argument("--id", default="")
    a = ap.parse_args()
    try:
        os.nice(-10)
    except OSError:
        pass
    host = Host("%d,%s,%s" % (a.vid, a.mac, a.ip))
    me, to_mac = mac_b(a.mac), mac_b(a.to_mac)
    src, dst = ipaddress.ip_address(a.ip).packed, ipaddress.ip_address(a.to_ip).packed
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((a.iface, 0))
    s.setblocking(False)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("now", True))
    prog = open(a.ready, "a", buffering=1) if a.ready else None
    if prog:
        prog.write(json.dumps({"ev": "streaming"}) + "\n")
    sends, replies, who = [], {}, {}
    last = {"at": 0.0, "state": None}
    period = 1.0 / a.rate
    nxt = time.monotonic()

    def echo(seq):
        payload = MAGIC + struct.pack("!Q", seq)
        udp = struct.pack("!HHHH", SPORT, PORT, 8 + len(payload), 0) + payload
        return eth(to_mac, me, a.vid, 0x0800) + ip4(src, dst, 17, udp)

    def receive():
        while True:
            try:
                frame, anc, _f, addr = s.recvmsg(65535, socket.CMSG_LEN(64))
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            vid, frame = vlan_of(frame, anc)
            if vid != a.vid:
                continue
            r = answer(host, frame, a.vid)
            if r:
                s.send(r)
                continue
            p = frame[14:]
            if (frame[12:14] != b"\x08\x00" or len(p) < 28 or p[9] != 17 or
                    p[16:20] != src or frame[0:6] != me):
                continue
            ihl = (p[0] & 15) * 4
            dport = struct.unpack("!H", p[ihl + 2:ihl + 4])[0]
            data = p[ihl + 8:]
            if dport != SPORT or len(data) < 12 or data[:4] != MAGIC:
                continue
            seq = struct.unpack("!Q", data[4:12])[0]
            if seq < len(sends) and seq not in replies:
                name = data[12:].decode(errors="replace")
                replies[seq] = (time.time(), name)
                who[name] = who.get(name, 0) + 1

    while not stop["now"]:
        now = time.monotonic()
        if now >= nxt:
            sends.append(time.time())
            try:
                s.send(echo(len(sends) - 1))
            except OSError:
                pass
            nxt = max(nxt + period, now + period / 2)
        receive()
        if prog and now - last["at"] >= 0.02 and last["state"] != (len(sends), len(replies)):
            prog.write(json.dumps({"ev": "progress", "t": time.time(), "sent": len(sends),
                                   "who": who}) + "\n")
            last.update(at=now, state=(len(sends), len(replies)))
        try:
            select.select([s], [], [], max(0.0, nxt - time.monotonic()))
        except InterruptedError:
            pass
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        select.select([s], [], [], max(0.0, end - time.monotonic()))
        receive()
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"to": a.to_ip, "id": a.id, "send": sends,
                   "reply": {str(k): v for k, v in replies.items()}}, f)
    os.rename(tmp, a.out)


if __name__ == "__main__":
    main()
