#!/usr/bin/env python3
"""Lab scenarios of an upgrade and a downgrade under traffic (needs the agents). A VM on
node-a with 1 kHz echo streams from a pod on node-c and from the API host (v4 and v6).

Upgrade: dist/kvnet copied to a "new release" path; on each node in turn the agent is
stopped and started from the new binary (what `kvnet install` + a restart does) and waited
for until ready. Every echo is answered, kvnet's routes on every node are unchanged
(`ip -j route`, protocol kvnet) and each agent knows its endpoints again
(kvnet_agent_endpoints).

Downgrade: the previous release (commit PREV, built from `git archive` in a temporary
directory; KVT_PREV_KVNET names a prebuilt one instead) is run on node-a, the VM's node,
against the current node state: its kvnet.conf, its endpoint files, the IPAM datastore.
What must hold: it either keeps working or refuses with a line naming the file and the key,
and it never drops a route or an echo. Found with 0.1.0 (969ea9f): it refuses the current
kvnet.conf ("kvnet.conf:LINE: [cni] log_level: unknown key"); with the keys it names
removed, it ignores the current endpoint files (naming each file and the "node" field) and
adopts the pods' addresses from the kernel's routes instead, so nothing is lost."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import labtap as T  # noqa: E402
import observe as O  # noqa: E402
from kubevirt import KubeVirt  # noqa: E402

ok = T.ok
CONV = 2
ANSWERS = 300  # echoes each stream must see answered after each step
PREV = "969ea9f"  # the previous release: wave 1's last landing (VERSION 0.1.0)
NAMES_UP = ("upgrade: every echo answered", "upgrade: routes unchanged",
            "upgrade: endpoints known")
NAMES_DOWN = ("downgrade: current conflist", "downgrade: current kvnet.conf", "downgrade: keys removed",
              "downgrade: back to the current release")


def build_prev(tmp):
    """The previous release's static binary, built from `git archive PREV` in tmp.
    Returns (path, None) or (None, why)."""
    pre = os.environ.get("KVT_PREV_KVNET")
    if pre:
        return (pre, None) if os.access(pre, os.X_OK) else (None, "KVT_PREV_KVNET=%s is not "
                                                                  "executable" % pre)
    src = os.path.join(tmp, "prev")
    os.makedirs(src)
    try:
        arch = subprocess.run(["git", "-C", L.ROOT, "archive", PREV], capture_output=True,
                              timeout=120)
        if arch.returncode != 0:
            return None, "git archive %s: %s" % (PREV, arch.stderr.decode()[-200:].strip())
        subprocess.run(["tar", "-x", "-C", src], input=arch.stdout, check=True, timeout=120)
        mk = subprocess.run(["make", "-j2", "dist/kvnet"], cwd=src, capture_output=True,
                            text=True, timeout=1200)
    except (OSError, subprocess.SubprocessError) as e:
        return None, "building %s: %s" % (PREV, e)
    if mk.returncode != 0:
        return None, "make dist/kvnet of %s failed: %s" % (
            PREV, (mk.stdout + mk.stderr)[-300:].strip().replace("\n", " | "))
    return os.path.join(src, "dist", "kvnet"), None


def kvnet_routes(lab):
    """{node: sorted kvnet routes (protocol kvnet, v4 and v6) as JSON text}."""
    out = {}
    for n in lab.nodes.values():
        rs = [r for r in n.routes() if str(r.get("protocol")) in (str(L.ROUTE_PROTO), "kvnet")]
        out[n.name] = sorted(json.dumps(r, sort_keys=True) for r in rs)
    return out


def routes_diff(a, b):
    return {n: {"gone": sorted(set(a[n]) - set(b.get(n, []))),
                "new": sorted(set(b.get(n, [])) - set(a[n]))}
            for n in a if a[n] != b.get(n)}


def endpoints(lab, node):
    m = re.search(r"^kvnet_agent_endpoints(?:\{[^}]*\})?\s+(\d+)", lab.agent_metrics(node), re.M)
    return int(m.group(1)) if m else None


def ep_diag(lab):
    """What each node's agent has about endpoints: its files and log lines."""
    out = {}
    for n in lab.nodes.values():
        d = os.path.join(n.dir, "endpoints")
        out[n.name] = {"files": sorted(os.listdir(d)) if os.path.isdir(d) else [],
                       "log": [ln.get("msg", "")[:160] for ln in lab.agent_lines(n)
                               if "endpoint" in ln.get("msg", "") or
                               "adopt" in ln.get("msg", "")][-8:]}
    return out


def log_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_exit_or_ready(lab, node, timeout=20.0):
    """'exited' when the agent exits, 'ready' when its /readyz answers 200."""
    try:
        lab.wait_agent_ready(node, timeout=timeout)
        return "ready"
    except RuntimeError:
        if node.agent is not None and not node.agent.alive():
            return "exited"
        raise


def main():
    if not L.agent_built():
        for name in NAMES_UP + NAMES_DOWN:
            T.skip(name, "dist/kvnet has no agent yet")
        return 0
    tmp = tempfile.mkdtemp(prefix="kvt-%d-upgrade-" % L.PID)
    try:
        return run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    new = os.path.join(tmp, "new-release", "kvnet")
    os.makedirs(os.path.dirname(new))
    shutil.copy2(L.KVNET, new)
    prev, why = build_prev(tmp)  # before the lab: a minute of compiling, nothing running
    with L.Lab(convergence=CONV) as lab:
        kv = KubeVirt(lab)
        client = kv.ordinary_pod("client", lab.nodes["node-c"])
        vm = kv.create_vm("vm-a", "node-a")
        okc, bad = O.wait_converged(lab, vm, vm.pod)
        ok(okc, "start: every node forwards vm-a's addresses to node-a", bad)
        okm, have = O.wait_metric(vm.pod, (vm.ip4, vm.ip6), 1024, timeout=CONV + 15)
        ok(okm, "start: vm-a's host routes have metric 1024", have)
        guest = O.guest_name(vm, vm.pod)
        routes0 = kvnet_routes(lab)
        eps0 = {n.name: endpoints(lab, n) for n in lab.nodes.values()}
        want = {"node-a": 1, "node-b": 0, "node-c": 1}
        ok(eps0 == want, "start: the agents know their endpoints (node-a: vm-a, node-c: the "
           "client)", (eps0, ep_diag(lab)))

        def streams():
            ss = [lab.stream(src, ip, "%s->%s" % (tag, "v6" if ":" in ip else "v4"))
                  for tag, src in (("pod@node-c", client), ("api", "api"))
                  for ip in (vm.ip4, vm.ip6)]
            for s in ss:
                s.wait_answers(guest, ANSWERS)
            return ss

        def flowing(ss):
            for s in ss:
                s.wait_answers(guest, ANSWERS)

        # ---- upgrade: each node in turn restarts its agent from the new binary ----------
        ss = streams()
        eps_up, routes_up = {}, {}
        for n in lab.nodes.values():
            lab.stop_agent(n)
            lab.start_agent(n, binary=new)
            lab.wait_agent_ready(n)
            flowing(ss)
            eps_up[n.name] = endpoints(lab, n)
            routes_up[n.name] = kvnet_routes(lab)
        res = [s.stop() for s in ss]
        lost = {r.tag: (r.sent, len(r.lost())) for r in res}
        ok(all(r.sent > 0 and not r.lost() for r in res),
           "upgrade: agents restarted from the new binary one node after the other: every "
           "echo answered (%s)" % ", ".join("%s %d sent" % (t, s) for t, (s, _) in
                                            sorted(lost.items())), lost)
        bad = {k: routes_diff(routes0, v) for k, v in routes_up.items() if v != routes0}
        ok(not bad, "upgrade: kvnet's routes on every node unchanged after each node's "
           "restart", bad)
        ok(eps_up == want, "upgrade: each upgraded agent knows its endpoints again",
           (eps_up, ep_diag(lab)))
        exe = {n.name: [os.readlink("/proc/%d/exe" % p) for p in L._proc_tree(n.agent.pid)
                        if os.path.exists("/proc/%d/exe" % p)] for n in lab.nodes.values()}
        ok(all(new in v for v in exe.values()), "upgrade: every agent runs the new binary",
           exe)

        # ---- downgrade: the previous release on node-a against the current state --------
        if prev is None:
            for name in NAMES_DOWN:
                T.skip(name, "the previous release (%s) could not be built here: %s"
                       % (PREV, why))
            return T.status()
        a = lab.nodes["node-a"]
        ep_dir = os.path.join(a.dir, "endpoints")
        files0 = sorted(os.listdir(ep_dir))
        ss = streams()
        lab.stop_agent(a)
        # 0. the previous release's CNI plugin with the current conflist: refused, named
        cp = subprocess.run([prev], input=json.dumps(lab.cni_conf(a)), capture_output=True,
                            text=True, timeout=30,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                 "CNI_COMMAND": "ADD", "CNI_CONTAINERID": L.rand_cid(),
                                 "CNI_NETNS": "/run/netns/kvt-%d-none" % L.PID,
                                 "CNI_IFNAME": "eth0", "CNI_PATH": os.path.dirname(prev)})
        T.note("downgrade: the %s CNI plugin with the current conflist: exit %d %s" % (
            PREV, cp.returncode, cp.stdout.strip()))
        try:
            cres = json.loads(cp.stdout)
        except ValueError:
            cres = {}
        ok(cp.returncode != 0 and cres.get("code") == 7 and "kvnet_conf" in
           cres.get("details", ""), "downgrade: the previous release's CNI plugin refuses "
           "the current conflist before touching anything (code 7, naming kvnet_conf)",
           cp.stdout + cp.stderr)

        # 1. its own kvnet.conf, as `kvnet install` of the old bundle keeps it
        mark = len(log_text(a.agent_log))
        lab.start_agent(a, binary=prev)
        state = wait_exit_or_ready(lab, a)
        out = a.agent.log() if a.agent else ""
        first = out.strip().splitlines()[-1] if out.strip() else ""
        T.note("downgrade with the current kvnet.conf: the %s agent %s%s" % (
            PREV, state, ": " + first if state == "exited" else ""))
        named = re.search(r"%s:\d+: \[[a-z]+\] [a-z_]+: unknown key" % re.escape(a.agent_conf),
                          out)
        flowing(ss)
        r1 = kvnet_routes(lab)
        ok((state == "exited" and named) or (state == "ready" and r1 == routes0),
           "downgrade: with the current kvnet.conf the previous release refuses to start "
           "naming the file, line and key, or keeps working", out[-400:])
        ok(r1 == routes0, "downgrade: after that, kvnet's routes on every node unchanged",
           routes_diff(routes0, r1))
        lab.stop_agent(a)

        # 2. the keys it names removed (what its message asks for), then run it again
        conf = open(a.agent_conf, encoding="utf-8").read().splitlines()
        old_conf = os.path.join(a.dir, "kvnet-prev.conf")
        removed = []
        for _ in range(20):
            with open(old_conf, "w", encoding="utf-8") as f:
                f.write("\n".join(conf) + "\n")
            a.agent = L.Proc(a.prefix() + [prev, "agent", "-c", old_conf],
                             os.path.join(a.dir, "agent-prev.out"))
            state = wait_exit_or_ready(lab, a)
            if state == "ready":
                break
            m = re.search(r"%s:(\d+): \[[a-z]+\] ([a-z_]+): unknown key" % re.escape(old_conf),
                          a.agent.log(1))
            a.agent = None
            if not m:
                break
            removed.append(conf[int(m.group(1)) - 1].strip())
            conf[int(m.group(1)) - 1] = "# " + conf[int(m.group(1)) - 1] + "  (unknown to %s)" \
                % PREV
        T.note("downgrade: keys removed for %s: %s; then the agent %s" % (
            PREV, removed or "none", state))
        lines = log_text(a.agent_log)[mark:]
        ignored = re.findall(r"(%s/[^ :]+\.json): unusable endpoint file, ignored: (.*)"
                             % re.escape(os.path.join(a.dir, "endpoints")), lines)
        adopted = re.findall(r"adopted (\d+) unregistered pod addresses", lines)
        warns = [ln for ln in map(L.parse_logfmt, lines.splitlines())
                 if ln.get("level") in ("warn", "warning", "error")]
        for ln in warns[:10]:
            T.note("downgrade: %s agent %s: %s" % (PREV, ln.get("level"), ln.get("msg", "")[:200]))
        if adopted:
            T.note("downgrade: %s agent adopted %s pod addresses from the kernel's routes"
                   % (PREV, adopted[-1]))
        ok(state == "ready", "downgrade: with the keys it names removed, the previous "
           "release starts and becomes ready", a.agent.log(10) if a.agent else lines[-600:])
        if state == "ready":
            flowing(ss)
            r2 = kvnet_routes(lab)
            ok(r2 == routes0, "downgrade: the previous release's agent on node-a keeps "
               "kvnet's routes on every node (no route dropped)", routes_diff(routes0, r2))
            ok(endpoints(lab, a) == want["node-a"], "downgrade: the previous release's "
               "agent knows node-a's endpoint (from its file or adopted from its route)",
               (endpoints(lab, a), ignored, adopted))
        lab.stop_agent(a)
        ok(sorted(os.listdir(ep_dir)) == files0, "downgrade: the previous release left "
           "node-a's endpoint files in place", (files0, sorted(os.listdir(ep_dir))))

        # 3. back to the current release: its endpoint files are still there and read
        lab.start_agent(a, binary=new)
        lab.wait_agent_ready(a)
        flowing(ss)
        res = [s.stop() for s in ss]
        lost = {r.tag: (r.sent, len(r.lost())) for r in res}
        ok(all(r.sent > 0 and not r.lost() for r in res),
           "downgrade: through the refusal, the previous release and back: every echo "
           "answered", lost)
        r3 = kvnet_routes(lab)
        ok(r3 == routes0, "downgrade: back to the current release: kvnet's routes unchanged",
           routes_diff(routes0, r3))
        ok(endpoints(lab, a) == want["node-a"], "downgrade: back to the current release: "
           "node-a's agent knows vm-a's endpoint", endpoints(lab, a))
    return T.status()


if __name__ == "__main__":
    sys.exit(main())
