#!/usr/bin/env python3
"""echo — the lab's "VM" and its traffic (python3 stdlib only).

    echo.py vm --name NAME --ip4 A --ip6 B --events FILE [--standby] [--announce KINDS]
        The guest: answers UDP echo on port 7 (v4 and v6) with its NAME appended, so a
        stream knows who answered. SIGUSR1 = pause (the guest stops answering: cut-over on
        the source, or the end of a VM); SIGUSR2 = resume and announce (cut-over on the
        target) with KINDS (comma list of garp, rarp, na; "none" = stay silent). A --standby
        VM starts paused (a migration target before cut-over). Events are JSON lines in
        FILE: {"ev": "ready"|"paused"|"resumed"|"announced", "t": ..., "kind": ...}. The
        time of an announcement is the kernel's timestamp of the frame leaving eth0 (an
        AF_PACKET socket sees our own outgoing frame), so it is the moment on the wire.
        garp is sent by the independent tool arping (Debian's `arping`, Thomas Habets':
        arping -U -i eth0 -S IP IP); rarp (what QEMU sends) and na (an unsolicited
        neighbour advertisement, override flag, no solicited flag) by raw sockets here.

    echo.py stream --to IP --out FILE [--rate 1000] [--id ID] [--ready FILE2]
        Sends one numbered UDP echo per 1/rate s to IP port 7 until SIGTERM/SIGINT, then
        waits 300 ms for late answers and writes FILE: {"send": [t...], "reply": {seq:
        [t, who]}}. Times are CLOCK_REALTIME seconds (the same clock as the kernel's packet
        timestamps above and every process of the lab). FILE2 gets JSON lines while it
        runs: {"ev": "streaming"} before the first echo, then at most every 20 ms when
        something changed {"ev": "progress", "t": ..., "sent": N, "who": {who: answers}}
        (so the lab can wait until echoes are answered, and by whom).

Everything is measured, nothing is assumed: a lost echo is a sequence number never
answered."""

import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

PORT = 7
MAGIC = b"KVE1"
SO_TIMESTAMPNS = 35
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _ev(path, **kw):
    kw.setdefault("t", time.time())
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(kw) + "\n")


def _mac(ifname):
    with open("/sys/class/net/%s/address" % ifname, encoding="ascii") as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def _capture_open(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((ifname, ETH_P_ALL))
    return s


def _is_announce(frame, kind, ip4, ip6):
    """Whether an outgoing frame is our announcement of this kind."""
    if len(frame) < 14:
        return False
    et = struct.unpack("!H", frame[12:14])[0]
    if kind == "garp":
        return (et == 0x0806 and len(frame) >= 42 and frame[28:32] == frame[38:42]
                and frame[28:32] == socket.inet_aton(ip4))
    if kind == "rarp":
        return et == 0x8035
    if kind == "na":
        return (et == 0x86DD and len(frame) >= 78 and frame[20] == 58 and frame[54] == 136
                and frame[62:78] == socket.inet_pton(socket.AF_INET6, ip6))
    return False


def _capture_wait(s, kind, ip4, ip6, timeout=2.0):
    """Kernel timestamp (realtime s) of our outgoing announcement frame, or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        data, anc, _, addr = s.recvmsg(2048, socket.CMSG_SPACE(16))
        if addr[2] != PACKET_OUTGOING or not _is_announce(data, kind, ip4, ip6):
            continue
        for lvl, typ, val in anc:
            if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(val) >= 16:
                sec, nsec = struct.unpack("qq", val[:16])
                return sec + nsec / 1e9
        return time.time()
    return None


def _send_rarp(ifname, guest_mac=None):
    """QEMU's self-announce: RARP with the guest's MAC (kept across a migration)."""
    mac = bytes.fromhex(guest_mac.replace(":", "")) if guest_mac else _mac(ifname)
    frame = (b"\xff" * 6 + mac + struct.pack("!H", 0x8035)
             + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 3) + mac + b"\0" * 4 + mac + b"\0" * 4)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind((ifname, 0))
        s.send(frame.ljust(60, b"\0"))
    finally:
        s.close()


def _send_na(ifname, ip6):
    mac = _mac(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        idx = socket.if_nametoindex(ifname)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
        # type 136, code 0, checksum (kernel), flags: override only (not solicited)
        msg = (struct.pack("!BBHI", 136, 0, 0, 0x20000000)
               + socket.inet_pton(socket.AF_INET6, ip6) + bytes([2, 1]) + mac)
        s.sendto(msg, ("ff02::1", 0, 0, idx))
    finally:
        s.close()


def announce(ifname, kind, ip4, ip6, events, guest_mac=None):
    cap = _capture_open(ifname)
    try:
        if kind == "garp":
            p = subprocess.run(["arping", "-q", "-U", "-i", ifname, "-S", ip4, "-c", "1",
                                "-w", "0", ip4], capture_output=True, text=True, timeout=10)
            if p.returncode not in (0, 1):
                _ev(events, ev="error", kind=kind, msg=p.stderr.strip())
                return
        elif kind == "rarp":
            _send_rarp(ifname, guest_mac)
        elif kind == "na":
            _send_na(ifname, ip6)
        t = _capture_wait(cap, kind, ip4, ip6)
    finally:
        cap.close()
    _ev(events, ev="announced", kind=kind, t=t, seen=t is not None)


def vm_main(a):
    state = {"active": not a.standby, "cmd": []}
    socks = []
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.bind(("0.0.0.0", PORT))
    socks.append(s4)
    if a.ip6:
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::", PORT))
        socks.append(s6)
    name = a.name.encode()
    kinds = [k for k in a.announce.split(",") if k and k != "none"]

    def on_pause(*_):
        state["cmd"].append("pause")

    def on_resume(*_):
        state["cmd"].append("resume")

    signal.signal(signal.SIGUSR1, on_pause)
    signal.signal(signal.SIGUSR2, on_resume)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # select() is restarted after a signal handler (PEP 475): a wakeup pipe ends it at once
    wr, ww = os.pipe()
    os.set_blocking(wr, False)
    os.set_blocking(ww, False)
    signal.set_wakeup_fd(ww)
    _ev(a.events, ev="ready", active=state["active"])
    while True:
        while state["cmd"]:
            c = state["cmd"].pop(0)
            if c == "pause" and state["active"]:
                state["active"] = False
                _ev(a.events, ev="paused")
            elif c == "resume" and not state["active"]:
                state["active"] = True
                _ev(a.events, ev="resumed")
                for k in kinds:
                    announce("eth0", k, a.ip4, a.ip6, a.events, a.mac or None)
        try:
            r, _, _ = select.select(socks + [wr], [], [], 1.0)
        except InterruptedError:
            continue
        if wr in r:
            try:
                os.read(wr, 512)
            except BlockingIOError:
                pass
            r.remove(wr)
        for s in r:
            try:
                data, addr = s.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                continue
            if state["active"] and data.startswith(MAGIC):
                try:
                    s.sendto(data[:12] + name, addr)
                except OSError:
                    pass


def stream_main(a):
    fam = socket.AF_INET6 if ":" in a.to else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((a.to, PORT))
    stop = {"now": False}

    def on_stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    period = 1.0 / a.rate
    sends = []
    replies = {}
    who = {}
    nxt = time.monotonic()
    prog = {"f": None, "at": 0.0, "state": None}
    if a.ready:
        _ev(a.ready, ev="streaming")
        prog["f"] = open(a.ready, "a", encoding="utf-8")

    def progress():
        now = time.monotonic()
        if prog["f"] is None or now - prog["at"] < 0.02:
            return
        state = (len(sends), len(replies))
        if state != prog["state"]:
            prog["f"].write(json.dumps({"ev": "progress", "t": time.time(), "sent": state[0],
                                        "who": who}) + "\n")
            prog["f"].flush()
            prog["state"] = state
        prog["at"] = now

    def drain():
        while True:
            try:
                data = s.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP errors (unreachable) surface here; the echo is lost
                continue
            if len(data) >= 12 and data[:4] == MAGIC:
                seq = struct.unpack("!Q", data[4:12])[0]
                if seq < len(sends) and seq not in replies:
                    name = data[12:].decode(errors="replace")
                    replies[seq] = (time.time(), name)
                    who[name] = who.get(name, 0) + 1

    while not stop["now"]:
        now = time.monotonic()
        if now >= nxt:
            seq = len(sends)
            sends.append(time.time())
            try:
                s.send(MAGIC + struct.pack("!Q", seq))
            except OSError:
                pass
            # never burst to catch up after a stall: the next one is one period from now
            nxt = max(nxt + period, now + period / 2)
        drain()
        progress()
        try:
            select.select([s], [], [], max(0.0, nxt - time.monotonic()))
        except InterruptedError:
            pass
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        try:
            select.select([s], [], [], max(0.0, end - time.monotonic()))
        except InterruptedError:
            pass
        drain()
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"to": a.to, "id": a.id, "send": sends,
                   "reply": {str(k): v for k, v in replies.items()}}, f)
    os.rename(tmp, a.out)


def main():
    try:  # the lab's measuring processes go first on a busy machine (they are light)
        os.nice(-10)
    except OSError:
        pass
    ap = argparse.ArgumentParser(prog="echo.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vm")
    v.add_argument("--name", required=True)
    v.add_argument("--ip4", required=True)
    v.add_argument("--ip6", default="")
    v.add_argument("--events", required=True)
    v.add_argument("--standby", action="store_true")
    v.add_argument("--announce", default="garp")
    v.add_argument("--mac", default="")
    st = sub.add_parser("stream")
    st.add_argument("--to", required=True)
    st.add_argument("--out", required=True)
    st.add_argument("--rate", type=float, default=1000.0)
    st.add_argument("--id", default="")
    st.add_argument("--ready", default="")
    a = ap.parse_args()
    if a.cmd == "vm":
        vm_main(a)
    else:
        stream_main(a)


if __name__ == "__main__":
    main()
