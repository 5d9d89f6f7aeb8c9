#!/usr/bin/env python3
"""The agent's CNI socket against hostile input, on a real agent (file datastore) in a
private namespace (agentlib.enter_netns):

  - a request line over AGENT_PROTO_LINE_MAX (5000 bytes, no LF): one error answer
    "request line too long", the connection closed, the agent alive (it used to die
    with SIGSEGV right after the answer: issue #17)
  - 100 kB of binary (every byte value, LFs included), a line of NULs, an endless
    stream without LF, a peer that sends a lot and never reads, a peer that closes
    mid-answer: the agent stays alive and answers ping on a fresh connection
  - many requests on one connection are answered in order"""
import os
import random
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import agentlib as al  # noqa: E402

ok = al.ok


def connect(ag, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(ag.sock)
    return s


def read_all(s):
    """Everything the agent writes until it closes (or the timeout)."""
    buf = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return buf, True
            buf += d
    except socket.timeout:
        return buf, False
    except ConnectionResetError:
        return buf, True


def alive(ag):
    if ag.proc.poll() is not None:
        return False
    try:
        return ag.call({"op": "ping"}, timeout=10) == [{"status": "pong"}]
    except OSError:
        return False


def main():
    al.enter_netns()
    ag = al.Agent().start()
    ok(ag.wait_ready(), "agent (file datastore) ready", ag.logtext())

    # ---- one line over the limit, no LF --------------------------------------------
    s = connect(ag)
    s.sendall(b"x" * 5000)
    out, closed = read_all(s)
    s.close()
    ok(out == b'{"status":"error","error":"request line too long"}\n' and closed,
       "5000 bytes without LF: one error answer, then the agent closes", out[:200])
    ok(alive(ag), "agent alive and answering ping after an oversized line",
       ag.logtext()[-2000:])

    # the same, three times over (the crash was 3 of 3)
    for i in range(3):
        s = connect(ag)
        s.sendall(b"{" + b"a" * 4999)
        read_all(s)
        s.close()
    ok(alive(ag), "three more oversized lines: still alive")

    # ---- 100 kB of binary ----------------------------------------------------------
    rnd = random.Random(17)
    blob = bytes(rnd.randrange(256) for _ in range(100 * 1024))
    s = connect(ag)
    try:
        s.sendall(blob)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the agent may close first (a too-long line in the noise)
    out, closed = read_all(s)
    s.close()
    lines = [x for x in out.split(b"\n") if x]
    ok(closed and lines and all(x.startswith(b'{"status":"error"') for x in lines),
       "100 kB of binary: only error answers (%d), connection closed" % len(lines),
       out[:300])
    ok(alive(ag), "agent alive after 100 kB of binary")

    # ---- a line of NULs ------------------------------------------------------------
    s = connect(ag)
    s.sendall(b"\0" * 1000 + b"\n")
    s.sendall(b'{"op":"ping"}\n')
    out = b""
    while out.count(b"\n") < 2:
        d = s.recv(4096)
        if not d:
            break
        out += d
    s.close()
    first, second = (out.split(b"\n") + [b"", b""])[:2]
    ok(first.startswith(b'{"status":"error"') and second == b'{"status":"pong"}',
       "a line of NULs: an error answer, the next request on the connection served", out)
    ok(alive(ag), "agent alive after a line of NULs")

    # ---- endless stream without LF -------------------------------------------------
    s = connect(ag)
    sent = 0
    try:
        for _ in range(64):
            s.sendall(b"y" * 4096)
            sent += 4096
    except OSError:
        pass  # closed by the agent after its answer: expected
    out, closed = read_all(s)
    s.close()
    ok(out.startswith(b'{"status":"error","error":"request line too long"}') and closed,
       "an endless line: refused and closed (%d bytes sent)" % sent, out[:200])
    ok(alive(ag), "agent alive after an endless line")

    # ---- a peer that never reads ---------------------------------------------------
    s = connect(ag, timeout=2)
    sent = 0
    try:
        for _ in range(20000):  # ~280 kB of pings, answers never read
            s.sendall(b'{"op":"ping"}\n' * 1)
            sent += 1
    except (socket.timeout, OSError):
        pass
    ok(alive(ag), "a peer that sends %d pings and reads nothing does not block the "
       "agent" % sent)
    # now read: every answer is a pong, in order, none lost for the ones accepted
    s.settimeout(5)
    out, _ = read_all(s)
    s.close()
    lines = [x for x in out.split(b"\n") if x]
    ok(lines and all(x == b'{"status":"pong"}' for x in lines),
       "its answers, read late, are pongs (%d of %d)" % (len(lines), sent))

    # ---- a peer that closes mid-answer ---------------------------------------------
    for i in range(20):
        s = connect(ag)
        s.sendall(b'{"op":"ping"}\n' * 200 + b"z" * 5000)
        s.close()
    for i in range(20):
        s = connect(ag)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(b'{"op":"ping"}\n' * 500)
        s.close()  # RST
    ok(alive(ag), "40 peers closing mid-answer (FIN and RST): agent alive")

    # ---- many requests on one connection -------------------------------------------
    s = connect(ag)
    s.sendall(b'{"op":"ping"}\n' * 100)
    out = b""
    while out.count(b"\n") < 100:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    ok(out == b'{"status":"pong"}\n' * 100, "100 pipelined pings: 100 pongs in order",
       out[:200])
    ok((ag.metric("kvnet_agent_cni_requests_total", 'op="invalid"') or 0) > 0,
       "invalid requests are counted")
    rc = ag.stop()
    ok(rc == 0, "agent stops cleanly (exit 0)", ag.logtext()[-3000:])
    al.finish()


if __name__ == "__main__":
    main()
