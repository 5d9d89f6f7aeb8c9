#!/usr/bin/env python3
"""kwatch — record a Kubernetes watch with arrival times (python3 stdlib only).

    kwatch.py --kubeconfig FILE --path /apis/kvnet.io/v1/ipamblocks --out FILE.jsonl

Lists, then watches from the list's resourceVersion (re-listing after a cut or a 410),
and appends one JSON line per object state seen: {"t": arrival time (CLOCK_REALTIME),
"type": ADDED|MODIFIED|DELETED|LIST, "object": ...}, and {"type": "WATCHING", "object":
null} each time a watch is established (after the list's lines). The lab uses it to see when the
IPAM owner of a VM's address changed, from outside kvnet. Reads the kubeconfig the lab
wrote (JSON): server, certificate-authority, token."""
import argparse
import http.client
import json
import signal
import ssl
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(a.kubeconfig, encoding="utf-8") as f:
        kc = json.load(f)
    cl = kc["clusters"][0]["cluster"]
    token = kc["users"][0]["user"]["token"]
    u = urllib.parse.urlsplit(cl["server"])
    ctx = ssl.create_default_context(cafile=cl["certificate-authority"])
    hdr = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    out = open(a.out, "a", encoding="utf-8")

    def emit(typ, obj):
        out.write(json.dumps({"t": time.time(), "type": typ, "object": obj}) + "\n")
        out.flush()

    while True:
        try:
            c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=5)
            c.request("GET", a.path, headers=hdr)
            r = c.getresponse()
            lst = json.loads(r.read())
            if r.status != 200:
                raise OSError("list: %s" % r.status)
            for it in lst.get("items", []):
                emit("LIST", it)
            rv = lst["metadata"]["resourceVersion"]
            c.close()
            c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=3600)
            c.request("GET", a.path + "?watch=1&resourceVersion=" + rv, headers=hdr)
            r = c.getresponse()
            if r.status != 200:
                raise OSError("watch: %s" % r.status)
            emit("WATCHING", None)  # from here on every change arrives: the lab waits for it
            while True:
                line = r.readline()
                if not line:
                    break
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    break
                if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    emit(ev["type"], ev["object"])
        except (OSError, ValueError, http.client.HTTPException):
            time.sleep(0.2)  # the API server is down or restarting: list again


if __name__ == "__main__":
    main()
