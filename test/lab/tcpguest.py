#!/usr/bin/env python3
"""tcpguest — a VM-initiated TCP connection that moves with the lab's simulated VM
(python3 stdlib only; Linux TCP_REPAIR, as CRIU moves a socket).

A real guest keeps its TCP sockets across a live migration: its kernel's memory moves.
The lab's "VM" is a process in the launcher pod's namespace, and the target pod is
another namespace, so the connection is moved the way CRIU does it: frozen in the
source pod (TCP_REPAIR: sequence numbers read, socket closed without a FIN or RST) and
rebuilt in the target pod with the same addresses, ports and sequence numbers (no SYN
is sent: the peer sees the same connection go on). Run it with TCP timestamps, window
scaling and SACK off in the pod's namespace (the guest's own stack settings; the caller
sets them), so nothing but the sequence numbers and the MSS needs moving.

    tcpguest.py serve IP PORT          echo server: every line is sent back, "echo " first
    tcpguest.py connect IP PORT        connect, then take commands on stdin
    tcpguest.py restore JSON           rebuild a frozen connection, then take commands

Commands (one a line), answers JSON lines on stdout:
    ping TAG    send TAG + newline, wait up to 4 s for its echo:
                {"ev": "pong", "ok": true, "reply": "echo TAG"} or ok false with "err"
                ("timeout", "reset: ...")
    freeze      {"ev": "frozen", "src", "sport", "dst", "dport", "snd", "rcv", "mss"};
                the socket is closed in repair mode and the process exits
"""

import json
import socket
import struct
import sys
import threading

TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS = 19, 20, 21, 22
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
TCPOPT_MSS = 2


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def serve(ip, port):
    ls = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(16)
    out(ev="listening")

    def one(c):
        f = c.makefile("rb")
        try:
            for line in f:
                c.sendall(b"echo " + line)
        except OSError:
            pass
        c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def commands(s, buf):
    s.settimeout(4.0)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "ping":
            try:
                s.sendall(cmd[1].encode() + b"\n")
                while b"\n" not in buf:
                    got = s.recv(4096)
                    if not got:
                        raise ConnectionResetError("closed by the peer")
                    buf += got
                reply, _, buf = buf.partition(b"\n")
                out(ev="pong", ok=reply.decode() == "echo " + cmd[1], reply=reply.decode())
            except socket.timeout:
                out(ev="pong", ok=False, err="timeout")
            except OSError as e:
                out(ev="pong", ok=False, err="reset: %s" % e)
        elif cmd[0] == "freeze":
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
            snd = struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
            rcv = struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
            mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            src, sport = s.getsockname()[:2]
            dst, dport = s.getpeername()[:2]
            out(ev="frozen", src=src, sport=sport, dst=dst, dport=dport, snd=snd, rcv=rcv,
                mss=mss)
            s.close()  # in repair mode: nothing is sent
            return


def connect(ip, port):
    s = socket.create_connection((ip, port), timeout=5)
    src, sport = s.getsockname()[:2]
    out(ev="connected", src=src, sport=sport)
    commands(s, b"")


def restore(state):
    st = json.loads(state)
    fam = socket.AF_INET6 if ":" in st["src"] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((st["src"], st["sport"]))
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    s.setsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, struct.pack("I", st["snd"]))
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
    s.setsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, struct.pack("I", st["rcv"]))
    s.connect((st["dst"], st["dport"]))  # repair mode: established, no SYN
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_OPTIONS, struct.pack("II", TCPOPT_MSS,
                                                                     st["mss"]))
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
    out(ev="restored")
    commands(s, b"")


def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "connect":
        connect(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "restore":
        restore(sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
