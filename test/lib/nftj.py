#!/usr/bin/env python3
"""nftj — evaluate a python expression over `nft -j list ruleset` read from stdin.

    nft -j list ruleset | python3 test/lib/nftj.py 'tables()'

The expression sees `d` (the list under "nftables") and these helpers, all computed from
nft's own JSON (nftables parses the kernel's netlink answers itself, independently of
kvnet's reader):
  tables()          sorted "family name" of every table
  chains(t)         chain dicts of table t, in nft's order
  chain(t, c)       one chain dict (or None)
  sets(t)           set dicts of table t
  elems(t, s)       the set's elements normalised: "A" / "A-B" (ranges, prefixes) /
                    "KEY:jump CHAIN" (verdict maps); sorted
  rules(t, c)       rule dicts of chain c, in order
  comments(t, c)    the comments of its rules, in order
  counter(t, c, cm) (packets, bytes) of the counter in the rule with comment cm
  stmts(t, c, cm)   the statement kinds of that rule, in order (["match", "counter", ...])
"""
import ipaddress
import json
import sys

d = json.load(sys.stdin)["nftables"]


def _objs(kind, t=None):
    return [o[kind] for o in d if kind in o and (t is None or o[kind].get("table") == t)]


def tables():
    return sorted("%s %s" % (o["family"], o["name"]) for o in _objs("table"))


def chains(t):
    return _objs("chain", t)


def chain(t, c):
    for o in chains(t):
        if o["name"] == c:
            return o
    return None


def sets(t):
    return _objs("set", t) + _objs("map", t)


def _val(v):
    if isinstance(v, dict) and "prefix" in v:
        n = ipaddress.ip_network("%s/%d" % (v["prefix"]["addr"], v["prefix"]["len"]))
        return "%s-%s" % (n[0], n[-1])
    if isinstance(v, dict) and "range" in v:
        return "%s-%s" % (v["range"][0], v["range"][1])
    if isinstance(v, dict) and "elem" in v:
        return _val(v["elem"]["val"])
    return str(v)


def elems(t, s):
    out = []
    for o in sets(t):
        if o["name"] != s:
            continue
        for e in o.get("elem", []):
            if isinstance(e, list):  # map element: [key, verdict]
                k, v = e
                verdict = list(v.keys())[0]
                target = v[verdict].get("target") if isinstance(v[verdict], dict) else None
                out.append("%s:%s%s" % (_val(k), verdict, " " + target if target else ""))
            else:
                out.append(_val(e))
    return sorted(out)


def rules(t, c):
    return [r for r in _objs("rule", t) if r["chain"] == c]


def comments(t, c):
    return [r.get("comment") for r in rules(t, c)]


def _rule(t, c, cm):
    for r in rules(t, c):
        if r.get("comment") == cm:
            return r
    return None


def counter(t, c, cm):
    r = _rule(t, c, cm)
    for s in r["expr"] if r else []:
        if "counter" in s:
            return (s["counter"]["packets"], s["counter"]["bytes"])
    return None


def stmts(t, c, cm):
    r = _rule(t, c, cm)
    return [list(s.keys())[0] for s in r["expr"]] if r else None


print(eval(sys.argv[1]))
