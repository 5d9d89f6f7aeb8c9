#!/usr/bin/env python3
"""test/bench/json-py.py FILE ROUNDS — the peer: python3's json module decoding the same
watch lines and extracting the same fields as json-bench.c. Prints
"events SECONDS CHECKSUM" for the best round."""
import json
import sys
import time


def decode(lines):
    total = 0
    for line in lines:
        ev = json.loads(line)
        t = ev["type"]
        pod = ev["object"]
        md = pod["metadata"]
        name = md["name"]
        ns = md.get("namespace")
        uid = md.get("uid")
        rv = md.get("resourceVersion")
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        st = pod.get("status") or {}
        phase = st.get("phase")
        ip = st.get("podIP")
        dom = (md.get("annotations") or {}).get("kubevirt.io/domain")
        job = (md.get("labels") or {}).get("kubevirt.io/migrationJobUID")
        ctrl = None
        for o in md.get("ownerReferences") or []:
            if o.get("controller") is True:
                ctrl = o
        cuid = ctrl["uid"] if ctrl else None
        total += len(t) + len(name) + len(ns or "") + len(uid or "") + len(rv or "") + \
            len(node or "") + len(phase or "") + len(ip or "") + len(dom or "") + \
            len(job or "") + len(cuid or "")
    return total


def main():
    lines = open(sys.argv[1], "rb").read().split(b"\n")
    lines = [l for l in lines if l]
    rounds = int(sys.argv[2])
    best = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        total = decode(lines)
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    print(len(lines), "%.6f" % best, total)


if __name__ == "__main__":
    main()
