#!/usr/bin/env python3
"""Lab scenario: flow records of a VM's L2 port (issue #14; agent/l2flows.h).

The world of test/lab/l2lab.py on node-a (trunk0 to a plain "upstream switch" bridge, the
legacy host 198.18.100.1 on VLAN 100 sending real 802.1Q frames from a raw socket, no
8021q) with [flows] enabled. Conntrack does not see bridged frames here (no
nf_conntrack_bridge), so the agent counts them in its own table bridge kvnet-l2flows.
The legacy host sends the VM's net1 a UDP echo stream to port 7; checked:
  - `kvnet flows --vm default/vm-l2` over node-a's flow log lists the legacy host by its
    address as an ingress UDP peer on port 7, bytes and packets both ways;
  - the counts are at least what the stream sent and the VM answered (l2peer's own
    tally, not kvnet's);
  - `nft -j list table bridge kvnet-l2flows` holds an element of the stream's key with a
    counter (the kernel's own view of what kvnet read back)."""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import l2lab as W  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok


class L2FlowLab(L.Lab):
    """The lab with [flows] enabled on every agent, each with its own log directory."""

    def agent_config(self, node):
        return super().agent_config(node) + (
            "\n[flows]\nenabled = true\nlog_dir = %s\nflush_interval = 1\n"
            "max_flows = 1000\nmax_log_bytes = 1048576\nmax_log_files = 2\n"
            % os.path.join(node.dir, "flows"))


def report(node, vm):
    """kvnet flows --vm over node's flow log (rotated files first): the JSON, or None."""
    d = os.path.join(node.dir, "flows")
    files = [os.path.join(d, f) for f in ("flows.log.2", "flows.log.1", "flows.log")
             if os.path.exists(os.path.join(d, f))]
    if not files:
        return None
    p = L.sh(L.KVNET, "flows", "--vm", vm, "-o", "json", *files, check=False)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def legacy_row(rep):
    for r in (rep or {}).get("rows", []):
        if r.get("peer_ip") == W.PEER_IP4 and r.get("port") == 7:
            return r
    return None


def kernel_elems(node):
    """Elements of table bridge kvnet-l2flows' sets that name the legacy host, by nft -j."""
    p = L.sh("ip", "netns", "exec", node.ns, "nft", "-j", "list", "table", "bridge",
             "kvnet-l2flows", check=False)
    try:
        objs = json.loads(p.stdout).get("nftables", [])
    except ValueError:
        return []
    out = []
    for o in objs:
        for e in (o.get("set") or {}).get("elem", []):
            if W.PEER_IP4 in json.dumps(e):
                out.append(e)
    return out


def main():
    if not L.agent_built():
        T.skip("test_l2flows", "dist/kvnet has no agent")
        return 0
    with L2FlowLab(nodes=("node-a",)) as lab:
        na = lab.nodes["node-a"]
        w = W.L2World(lab)
        kv = KubeVirt(lab, secondary=w.secondary())
        kv.create_vm("vm-l2", "node-a")
        st = w.stream("legacy", rate=200)
        st.wait_answers("vm-l2@node-a", 200)
        st.stop()
        answered = st.answers("vm-l2@node-a")
        ok(answered >= 200, "the legacy host's UDP stream to vm-l2's net1 is answered "
           "(%d answers)" % answered)
        try:
            W.wait(lambda: (legacy_row(report(na, "default/vm-l2")) or {}).get(
                "packets_out", 0) >= answered, "the legacy host's flow in the log", 30)
        except RuntimeError:
            pass
        rep = report(na, "default/vm-l2")
        row = legacy_row(rep)
        ok(row is not None and row.get("direction") == "ingress" and
           row.get("proto") == "udp",
           "kvnet flows --vm default/vm-l2 lists the legacy host %s as an ingress UDP peer "
           "on port 7 (its L2 port, counted by kvnet's bridge table)" % W.PEER_IP4,
           json.dumps(rep)[:2000])
        ok(row is not None and row.get("packets_in", 0) >= answered and
           row.get("packets_out", 0) >= answered and row.get("bytes_in", 0) > 0 and
           row.get("bytes_out", 0) > 0,
           "the flow's packets in/out are at least the %d echoes the VM answered, bytes > 0"
           % answered, json.dumps(row))
        el = kernel_elems(na)
        ok(el and any("counter" in json.dumps(e) for e in el),
           "nft -j: table bridge kvnet-l2flows holds the legacy host's element with a counter",
           json.dumps(el)[:1000])
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
