#!/usr/bin/env python3
"""One configuration per node (cni/nodeconf.h): the plugin takes its node settings from
kvnet.conf — the file the conflist's "kvnet_conf" names, KVNET_* variables over it —
keeps old conflists working, and refuses a conflist that disagrees with kvnet.conf (code
7, naming both places). The node name is [kubernetes] node_name, else $NODE_NAME, else
the host name, as for the agent. Checked by reading the file datastore independently."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cnilib as t  # noqa: E402

ok = t.ok


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def nodes_of(state):
    recs, _ = t.file_records(state)
    out = set()
    for b in recs["block"].values():
        out.update(a["node"] for a in b.get("allocations", []))
    return out, recs


def add_del(c, host, cid, **kw):
    ns = t.netns(cid)
    r = t.cni("ADD", c, host, cid=cid, netns_path="/run/netns/" + ns, **kw)
    d = t.cni("DEL", c, host, cid=cid, netns_path="/run/netns/" + ns, **kw)
    t.netns_del(ns)
    return r, d


def main():
    host = t.netns("node")
    d = t.tmpdir()

    # 1. an old conflist (node keys in it) with an empty kvnet.conf keeps working
    legacy = os.path.join(d, "legacy")
    c = t.conf(legacy)
    r, dl = add_del(c, host, "legacy")
    ok(r.rc == 0 and os.path.exists(os.path.join(legacy, "ipam.log")),
       "conflist state_dir still honoured when kvnet.conf does not set it", r)

    # 2. kvnet.conf's state_dir is used when the conflist has none
    node_dir = os.path.join(d, "from-kvnet-conf")
    kc = write(os.path.join(d, "kvnet.conf"),
               "[datastore]\nstate_dir = %s\n[kubernetes]\nnode_name = Node-X.example\n"
               % node_dir)
    c = t.conf(legacy, kvnet_conf=kc)
    del c["state_dir"]
    del c["datastore"]
    r, _ = add_del(c, host, "fromconf")
    ok(r.rc == 0 and os.path.exists(os.path.join(node_dir, "ipam.log")),
       "state_dir from kvnet.conf ([datastore] state_dir)", r)

    # 3. the node name: [kubernetes] node_name beats $NODE_NAME and the host name
    ns = t.netns("nn")
    r = t.cni("ADD", c, host, cid="nodename", netns_path="/run/netns/" + ns,
              env_over={"NODE_NAME": "from-env"}, node="from-hostname")
    nodes, recs = nodes_of(node_dir)
    ok(r.rc == 0 and len(nodes) == 1 and list(nodes)[0].startswith("node-x.example-"),
       "node name from [kubernetes] node_name (mapped to an object name)", (r, recs["block"]))
    t.cni("DEL", c, host, cid="nodename", netns_path="/run/netns/" + ns)
    t.netns_del(ns)

    kc2 = write(os.path.join(d, "kvnet2.conf"), "[datastore]\nstate_dir = %s/2\n" % node_dir)
    c2 = t.conf(legacy, kvnet_conf=kc2)
    del c2["state_dir"]
    ns = t.netns("ne")
    r = t.cni("ADD", c2, host, cid="nodeenv", netns_path="/run/netns/" + ns,
              env_over={"NODE_NAME": "from-env"}, node="from-hostname")
    nodes, recs = nodes_of(node_dir + "/2")
    ok(r.rc == 0 and nodes == {"from-env"}, "node name from $NODE_NAME when kvnet.conf has none",
       (r, recs["block"]))
    t.cni("DEL", c2, host, cid="nodeenv", netns_path="/run/netns/" + ns)
    t.netns_del(ns)
    ns = t.netns("nh")
    r = t.cni("ADD", c2, host, cid="nodehost", netns_path="/run/netns/" + ns,
              node="from-hostname")
    nodes, recs = nodes_of(node_dir + "/2")
    ok(r.rc == 0 and nodes == {"from-hostname"}, "node name from the host name otherwise",
       (r, recs["block"]))
    t.cni("DEL", c2, host, cid="nodehost", netns_path="/run/netns/" + ns)
    t.netns_del(ns)

    # 4. the environment overrides kvnet.conf, as for the agent
    envdir = os.path.join(d, "from-env")
    r, _ = add_del(c2, host, "envover", env_over={"KVNET_DATASTORE_STATE_DIR": envdir})
    ok(r.rc == 0 and os.path.exists(os.path.join(envdir, "ipam.log")),
       "KVNET_DATASTORE_STATE_DIR overrides kvnet.conf", r)

    # 5. disagreement: code 7 naming both places; nothing allocated
    other = os.path.join(d, "other")
    c = t.conf(other, kvnet_conf=kc)
    ns = t.netns("clash")
    r = t.cni("ADD", c, host, cid="clash", netns_path="/run/netns/" + ns)
    det = (r.json or {}).get("details", "")
    ok(r.rc == 1 and (r.json or {}).get("code") == 7 and "state_dir" in det and other in det
       and node_dir in det and "[datastore] state_dir" in det and kc in det,
       "conflist state_dir disagreeing with kvnet.conf: code 7 naming both", r)
    ok(not os.path.exists(other) and not t.ipj(ns, "addr", "show", "eth0"),
       "nothing created on a disagreement")
    t.netns_del(ns)
    for key, val, place in (("agent_socket", "/run/other.sock", "[agent] socket"),
                            ("log_level", "debug", "[cni] log_level"),
                            ("datastore", "kubernetes", "[datastore] type")):
        kx = write(os.path.join(d, "k-%s.conf" % key),
                   "[datastore]\nstate_dir = %s\ntype = file\n[agent]\nsocket = /run/kvt-%d.sock\n"
                   "[cni]\nlog_level = warn\n" % (node_dir, t.PID))
        c = t.conf(node_dir, kvnet_conf=kx)
        c[key] = val
        r = t.cni("ADD", c, host, cid="clash-" + key, netns_path="/run/netns/none")
        det = (r.json or {}).get("details", "")
        ok((r.json or {}).get("code") == 7 and place in det and key in det,
           "conflist %s disagreeing with kvnet.conf %s: code 7" % (key, place), r)
    # the same value in both places is fine
    c = t.conf(node_dir, kvnet_conf=kc)
    r, _ = add_del(c, host, "agree")
    ok(r.rc == 0, "conflist and kvnet.conf agreeing on state_dir: accepted", r)

    # 6. a named kvnet.conf must exist and parse; the path must be absolute
    c = t.conf(legacy, kvnet_conf=os.path.join(d, "missing.conf"))
    r = t.cni("ADD", c, host, cid="missing", netns_path="/run/netns/none")
    ok((r.json or {}).get("code") == 7 and "missing.conf" in (r.json or {}).get("details", ""),
       "kvnet_conf naming a missing file: code 7 naming it", r)
    bad = write(os.path.join(d, "bad.conf"), "[datastore]\nstate_dir = relative\n")
    c = t.conf(legacy, kvnet_conf=bad)
    r = t.cni("ADD", c, host, cid="badconf", netns_path="/run/netns/none")
    ok((r.json or {}).get("code") == 7 and "bad.conf:2" in (r.json or {}).get("details", ""),
       "a kvnet.conf that does not parse: code 7 with file and line", r)
    c = t.conf(legacy, kvnet_conf="relative/kvnet.conf")
    r = t.cni("ADD", c, host, cid="relconf", netns_path="/run/netns/none")
    ok((r.json or {}).get("code") == 7 and "kvnet_conf" in (r.json or {}).get("details", ""),
       "kvnet_conf must be absolute", r)
    t.finish()


if __name__ == "__main__":
    main()
