"""garp-peer.py — the peer for bench-garp: a python3 AF_PACKET socket (no kernel filter,
parsing in python) on the same interface, measuring the same thing: kernel receive
timestamp (SO_TIMESTAMPNS) of a gratuitous ARP -> the frame recognised in userspace.

    ip netns exec NS python3 garp-peer.py IFACE N
Prints "p50_us p99_us max_us got" on one line."""
import select
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35


def main():
    ifname, n = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((ifname, 0))
    s.setblocking(False)
    print("ready", flush=True)
    lat = []
    deadline = time.time() + 30
    while len(lat) < n and time.time() < deadline:
        if not select.select([s], [], [], 2)[0]:
            continue
        while len(lat) < n:
            try:
                data, anc, _, addr = s.recvmsg(2048, 256)
            except BlockingIOError:
                break
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 42:
                continue
            if data[12:14] != b"\x08\x06" or data[28:32] != data[38:42]:
                continue
            now = time.clock_gettime_ns(time.CLOCK_REALTIME)
            for lvl, typ, val in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", val[:16])
                    lat.append(now - (sec * 1000000000 + nsec))
    lat.sort()
    if not lat:
        print("0 0 0 0")
        return 1
    print("%.1f %.1f %.1f %d" % (lat[len(lat) // 2] / 1e3, lat[len(lat) * 99 // 100] / 1e3,
                                 lat[-1] / 1e3, len(lat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
