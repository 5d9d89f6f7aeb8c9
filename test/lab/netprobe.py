#!/usr/bin/env python3
"""netprobe — servers and probes for the policy truth table (python3 stdlib and ncat).

    netprobe.py serve --tcp 80,8080 --udp 81 --ready FILE
        Listens on every port given (v4 and v6 wildcard), accepts TCP connections and
        answers each UDP datagram with "ok". FILE is written once every socket listens.
    netprobe.py probe --timeout S TARGET...
        TARGET is IP:PORT/PROTO. Every target is probed in parallel; TCP with Debian's
        ncat (`ncat -z -w S`: the connection completes or it does not), UDP with a
        datagram that must be answered within S seconds. Prints one JSON object
        {TARGET: true|false}.
"""
import argparse
import json
import os
import select
import socket
import subprocess
import sys
import threading


def serve(a):
    socks = []
    for port in [int(p) for p in a.tcp.split(",") if p]:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(64)
        socks.append(s)
    for port in [int(p) for p in a.udp.split(",") if p]:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        socks.append(s)
    with open(a.ready, "w") as f:
        f.write("ready\n")
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.close()
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(b"ok", peer)


def probe_one(target, timeout, out):
    hp, proto = target.rsplit("/", 1)
    host, port = hp.rsplit(":", 1)
    host = host.strip("[]")
    if proto == "tcp":
        p = subprocess.run(["ncat", "-z", "-w", "%dms" % int(timeout * 1000), host, port],
                           capture_output=True, timeout=timeout + 5)
        out[target] = p.returncode == 0
        return
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(b"probe", (host, int(port)))
        data, _ = s.recvfrom(64)
        out[target] = data == b"ok"
    except OSError:
        out[target] = False
    finally:
        s.close()


def probe(a):
    out = {}
    ts = [threading.Thread(target=probe_one, args=(t, a.timeout, out)) for t in a.targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tcp", default="")
    s.add_argument("--udp", default="")
    s.add_argument("--ready", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("targets", nargs="+")
    a = ap.parse_args()
    serve(a) if a.cmd == "serve" else probe(a)


if __name__ == "__main__":
    sys.exit(main())
