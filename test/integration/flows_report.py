#!/usr/bin/env python3
"""kvnet flows against independently computed expectations, and its picture in a browser.

Two nodes' flow logs of one VM (prod/db-1) that migrated from node-a to node-b, plus
another VM's records and a garbage line, are written the way the agents write them. The
report must hold exactly the peers of prod/db-1 with the sums this script computes
itself, in every output form; the SVG is rendered by headless Debian chromium: the DOM
must parse as SVG (no parsererror) and carry every peer label, and the screenshot must
show the denied edge in red and the VM's blue node.
"""
import csv
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVNET = os.path.join(ROOT, "dist", "kvnet")
FAILED = 0


def ok(cond, name, diag=""):
    global FAILED
    print("%s - %s" % ("ok" if cond else "not ok", name))
    if not cond:
        FAILED += 1
        for line in str(diag).splitlines()[:20]:
            print("# " + line)


def rec(node, vm, direction, peer, port, proto, action, bi, bo, peer_kind="external",
        peer_ns="-", peer_name="-", policy=None, t=61000):
    ep = dict(ip="198.18.0.10" if ":" not in peer else "2001:db8:4b76::10", ns="prod",
              name=vm, kind="vm")
    pr = dict(ip=peer, ns=peer_ns, name=peer_name, kind=peer_kind)
    src, dst = (ep, pr) if direction == "egress" else (pr, ep)
    return dict(start_time=t // 1000 - 1, end_time=t // 1000 + 59,
                reporter="src" if direction == "egress" else "dst", action=action,
                direction=direction,
                source_ip=src["ip"], source_name=src["name"], source_namespace=src["ns"],
                source_kind=src["kind"], dest_ip=dst["ip"], dest_name=dst["name"],
                dest_namespace=dst["ns"], dest_kind=dst["kind"], dest_port=port, proto=proto,
                policies=[policy] if policy else [], policies_cut=0,
                reason=("%s-default-deny" % direction if action == "deny" else
                        "policy" if policy else "no-policy"),
                bytes_in=bi, bytes_out=bo,
                packets_in=bi // 100 + 1, packets_out=bo // 100 + 1, num_flows=1,
                num_flows_started=1, num_flows_completed=0, first_seen_ms=t,
                last_seen_ms=t + 1000, node=node)


def png_pixels(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB/RGBA PNG (python stdlib)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), "PNG type %d/%d" % (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def chromium(*args):
    exe = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="kvt-chromium-")
    try:
        return subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + profile] + list(args),
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main():
    tmp = tempfile.mkdtemp(prefix="kvt-flows-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("# %d failed" % FAILED)
    return 1 if FAILED else 0


def run(tmp):
    a = [rec("node-a", "db-1", "ingress", "198.18.0.77", 5432, "tcp", "allow", 4000, 9000,
             "pod", "web", "front-1", "prod/allow-web"),
         rec("node-a", "db-1", "ingress", "198.19.0.1", 22, "tcp", "deny", 120, 0,
             policy="prod/default-deny"),
         rec("node-a", "db-1", "egress", "2001:db8:fab::1", 443, "tcp", "allow", 7000, 800),
         rec("node-a", "other", "ingress", "198.18.0.77", 80, "tcp", "allow", 1, 1)]
    b = [rec("node-b", "db-1", "ingress", "198.18.0.77", 5432, "tcp", "allow", 6000, 1000,
             "pod", "web", "front-1", "prod/allow-web", t=125000),
         rec("node-b", "db-1", "egress", "198.18.0.200", 53, "udp", "allow", 300, 90,
             "vm", "infra", "dns-1", t=125000)]
    la, lb = os.path.join(tmp, "node-a.log"), os.path.join(tmp, "node-b.log")
    with open(la, "w") as f:
        for r in a:
            f.write(json.dumps(r) + "\n")
        f.write("{not json\n")
    with open(lb, "w") as f:
        for r in b:
            f.write(json.dumps(r) + "\n")

    # the expectation, computed here from the records
    want = {}
    for r in a + b:
        ep = (r["dest_namespace"], r["dest_name"]) if r["direction"] == "ingress" else \
             (r["source_namespace"], r["source_name"])
        if ep != ("prod", "db-1"):
            continue
        peer = r["source_ip"] if r["direction"] == "ingress" else r["dest_ip"]
        k = (peer, r["dest_port"], r["proto"], r["direction"], r["action"])
        w = want.setdefault(k, dict(bytes_in=0, bytes_out=0, nodes=[]))
        w["bytes_in"] += r["bytes_in"]
        w["bytes_out"] += r["bytes_out"]
        if r["node"] not in w["nodes"]:
            w["nodes"].append(r["node"])

    p = subprocess.run([KVNET, "flows", "--vm", "prod/db-1", "-o", "json", la, lb],
                       capture_output=True, text=True)
    ok(p.returncode == 0, "flows -o json exits 0", p.stderr)
    ok("node-a.log:5: skipped" in p.stderr and "1 line skipped" in p.stderr,
       "the garbage line is named with file:line and counted", p.stderr)
    got = {}
    try:
        doc = json.loads(p.stdout)
        for row in doc["rows"]:
            got[(row["peer_ip"], row["port"], row["proto"], row["direction"],
                 row["action"])] = dict(bytes_in=row["bytes_in"], bytes_out=row["bytes_out"],
                                        nodes=row["nodes"])
        ok(doc["endpoint"] == {"namespace": "prod", "name": "db-1", "kind": "vm"},
           "the report names the VM", doc["endpoint"])
        ok(doc["records"] == 5, "5 records of the VM merged (not the other VM's)", doc)
    except (ValueError, KeyError) as e:
        ok(False, "flows -o json is the documented JSON", "%s\n%s" % (e, p.stdout))
    ok(got == want, "every peer of the VM, with the sums over both nodes",
       "got  %s\nwant %s" % (got, want))
    ok(got.get(("198.18.0.77", 5432, "tcp", "ingress", "allow"), {}).get("nodes") ==
       ["node-a", "node-b"], "the migrated VM's peer is reported by source and target")

    p = subprocess.run([KVNET, "flows", "--vm", "prod/db-1", "-o", "csv", la, lb],
                       capture_output=True, text=True)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    ok(p.returncode == 0 and len(rows) == len(want) and
       sum(int(r["bytes_in"]) for r in rows) == sum(w["bytes_in"] for w in want.values()),
       "flows -o csv: one row per peer, same sums", p.stdout + p.stderr)
    p = subprocess.run([KVNET, "flows", "--vm", "prod/db-1", la, lb], capture_output=True,
                       text=True)
    ok(p.returncode == 0 and "web/front-1" in p.stdout and "infra/dns-1" in p.stdout and
       "22/tcp" in p.stdout and "deny" in p.stdout, "flows table names peers", p.stdout)
    p = subprocess.run([KVNET, "flows", "--ip", "2001:db8:4b76::10", la, lb],
                       capture_output=True, text=True)
    ok(p.returncode == 0 and "2001:db8:fab::1" in p.stdout and "web/front-1" not in p.stdout,
       "flows --ip selects by the endpoint's address", p.stdout)
    for bad in (["--vm", "nons"], ["--ip", "198.18.0.999"], ["--since", "5x"],
                ["-o", "xml"], []):
        q = subprocess.run([KVNET, "flows"] + bad + ([la] if bad else []),
                           capture_output=True, text=True)
        ok(q.returncode == 2 and q.stderr, "flows %s: usage error 2" % " ".join(bad),
           q.stderr)
    q = subprocess.run([KVNET, "flows", "--vm", "prod/db-1", os.path.join(tmp, "nope")],
                       capture_output=True, text=True)
    ok(q.returncode == 1 and "nope" in q.stderr, "a missing log: exit 1 naming it", q.stderr)

    svg = os.path.join(tmp, "db-1.svg")
    p = subprocess.run([KVNET, "flows", "--vm", "prod/db-1", "-o", "svg", "--out", svg, la,
                        lb], capture_output=True, text=True)
    ok(p.returncode == 0 and os.path.getsize(svg) > 0, "flows -o svg --out writes the file",
       p.stderr)
    if not shutil.which("chromium"):
        print("ok - # SKIP chromium not installed (build.sh --deps test installs it)")
        return
    d = chromium("--dump-dom", "file://" + svg)
    dom = d.stdout
    ok(d.returncode == 0 and "<svg" in dom and "parsererror" not in dom and
       "error on line" not in dom, "chromium parses the picture as SVG", d.stderr[-2000:])
    for label in ("web/front-1", "infra/dns-1", "198.19.0.1", "2001:db8:fab::1", "db-1",
                  "prod/allow-web", "ingress default deny", "22/tcp denied"):
        ok(label in dom, "the picture carries the label %s" % label)
    # where chromium drew the denied edge: its <line> in the DOM it parsed
    m = re.search(r'<g class="edge denied"><line x1="([\d.]+)" y1="([\d.]+)" '
                  r'x2="([\d.]+)" y2="([\d.]+)"', dom)
    ok(m is not None, "the DOM holds one denied edge", dom[:600])
    png = os.path.join(tmp, "db-1.png")
    s = chromium("--screenshot=" + png, "--window-size=960,720", "file://" + svg)
    ok(s.returncode == 0 and os.path.exists(png), "chromium screenshots the picture",
       s.stderr[-2000:])
    if os.path.exists(png):
        w, h, px = png_pixels(png)
        flat = [c for row in px for c in row]
        red = sum(1 for (r, g, b) in flat if r > 170 and g < 90 and b < 90)
        blue = sum(1 for (r, g, b) in flat if b > 150 and r < 60 and 80 < g < 130)
        dark = sum(1 for (r, g, b) in flat if r + g + b < 200)
        ok(red > 50, "the denied edge is drawn in red (%d red pixels)" % red)
        if m:
            # walk the denied edge in the screenshot: red dashes with gaps between them
            x1, y1, x2, y2 = (float(v) for v in m.groups())
            runs, prev, steps = 0, False, 400
            for i in range(60, steps - 60):  # away from both ends' circles
                x = int(round(x1 + (x2 - x1) * i / steps))
                y = int(round(y1 + (y2 - y1) * i / steps))
                r_, g_, b_ = px[y][x] if 0 <= y < h and 0 <= x < w else (0, 0, 0)
                on = r_ > 170 and g_ < 90 and b_ < 90
                runs += on and not prev
                prev = on
            ok(runs >= 5, "the denied edge is dashed in the screenshot (%d red dashes "
               "along it)" % runs)
        ok(blue > 2000, "the VM's node is drawn (%d blue pixels)" % blue)
        ok(dark > 200, "labels are drawn (%d dark pixels)" % dark)


if __name__ == "__main__":
    sys.exit(main())
