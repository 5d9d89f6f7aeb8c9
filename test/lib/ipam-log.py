#!/usr/bin/env python3
"""ipam-log.py — an independent reader (and writer) of the file datastore's DIR/ipam.log
for tests, written from the format in ipam/ds_file.h, not from the C code.

  ipam-log.py DIR dump              {"pool": {NAME: record}, "block": ..., "handle": ...}
  ipam-log.py DIR ips               every address held by a handle, one per line
  ipam-log.py DIR info              frames=N end=OFFSET size=BYTES seq=N
  ipam-log.py DIR put KIND NAME J   write one frame at the end (a writer ignoring the lock)
"""
import hashlib
import json
import os
import sys


def walk(buf):
    """Valid frames in order: list of (offset, seq, payload bytes)."""
    out, off = [], 0
    while True:
        h = buf[off:off + 48]
        if len(h) < 48 or h[:5] != b"KVL1 " or h[21:22] != b" " or h[30:31] != b" " \
                or h[47:48] != b"\n":
            break
        try:
            seq, n = int(h[5:21], 16), int(h[22:30], 16)
        except ValueError:
            break
        if h[5:21].decode() != "%016x" % seq or h[22:30].decode() != "%08x" % n:
            break
        p = buf[off + 48:off + 48 + n]
        if len(p) != n or buf[off + 48 + n:off + 49 + n] != b"\n" or b"\n" in p:
            break
        if hashlib.sha256(h[:31] + p).hexdigest()[:16].encode() != h[31:47]:
            break
        if out and seq != out[-1][1] + 1:
            break
        out.append((off, seq, p))
        off += 49 + n
    if not out and buf[:1] not in (b"", b"\0"):
        sys.exit("ipam-log.py: first frame invalid")
    return out, off


def state(d):
    path = os.path.join(d, "ipam.log")
    buf = open(path, "rb").read() if os.path.exists(path) else b""
    frames, end = walk(buf)
    st = {"pool": {}, "block": {}, "handle": {}, "config": {}}
    for _, _, p in frames:
        for c in json.loads(p)["changes"]:
            if c["data"] is None:
                st[c["kind"]].pop(c["name"], None)
            else:
                st[c["kind"]][c["name"]] = json.loads(c["data"])
    return st, frames, end, len(buf)


def main():
    d, cmd = sys.argv[1], sys.argv[2]
    st, frames, end, size = state(d)
    if cmd == "dump":
        print(json.dumps(st, sort_keys=True))
    elif cmd == "ips":
        for h in st["handle"].values():
            for ip in h["ips"]:
                print(ip)
    elif cmd == "info":
        print("frames=%d end=%d size=%d seq=%d" % (len(frames), end, size,
                                                  frames[-1][1] if frames else 0))
    elif cmd == "put":
        kind, name, data = sys.argv[3], sys.argv[4], sys.argv[5]
        p = json.dumps({"changes": [{"kind": kind, "name": name, "data": data}]},
                       separators=(",", ":")).encode()
        seq = frames[-1][1] + 1 if frames else 1
        h = b"KVL1 %016x %08x " % (seq, len(p))
        h += hashlib.sha256(h + p).hexdigest()[:16].encode() + b"\n"
        with open(os.path.join(d, "ipam.log"), "r+b") as f:
            f.seek(end)
            f.write(h + p + b"\n")
    else:
        sys.exit("ipam-log.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
