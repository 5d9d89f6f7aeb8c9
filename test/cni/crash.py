#!/usr/bin/env python3
"""kill -9 of the plugin at random points during ADD and DEL, for both datastores.

No hook in the binary: each ADD/DEL is started and SIGKILLed after a random delay drawn
from 0 .. 1.5 x the plugin's own median run time measured just before in the same run,
so kills land before, during and after the IPAM commit and the veth set-up. After every
kill the state is read with python (never with kvnet):
  - file datastore: the log's valid frames (checksums verified in python) hold records
    that all parse as JSON (never half written); a compaction's temporary file is
    allowed until the next call, which removes it;
  - both: no address twice in the blocks, every allocation's handle exists and lists it,
    every handle's addresses are allocated to it, "used" equals the allocation count.
Then the runtime's repair is played: a killed ADD is followed by DEL and ADD again (or, for
some pods, by nothing, left to GC); a killed DEL by DEL again. At the end every pod is
DELeted, GC runs with no valid attachments, and nothing is left: no allocation, handle,
veth or host route. With the kubernetes datastore a VM pod is killed the same way: the VM
keeps one v4 and one v6 and its pod ends as the active owner. The outcomes of the kills
(nothing written / blocks but no handle (torn) / IPAM written / veth made / completed)
are counted and printed, so the spread of kill points is visible. KVT_CRASH_ITER (30)
sets the kills per datastore, KVT_SEED the random seed (printed)."""
import copy
import glob
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import _cnilib as t  # noqa: E402
import kube  # noqa: E402

ok = t.ok
G = "/apis/kvnet.io/v1/"
FIX = os.path.join(t.ROOT, "test", "data", "fixtures")
ITER = int(os.environ.get("KVT_CRASH_ITER", "30"))
EXTRA = 40  # at most this many more kills when one side of the commit got none


def start(command, conf, host, cid, podns, args=""):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/" + podns, "CNI_IFNAME": "eth0",
           "CNI_ARGS": args}
    p = subprocess.Popen(["nsenter", "--net=/run/netns/" + host, t.KVNET],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env)
    p.stdin.write(json.dumps(conf))
    p.stdin.close()
    return p


def run(command, conf, host, cid, podns, args=""):
    p = start(command, conf, host, cid, podns, args)
    out = p.stdout.read()
    p.stdout.close()
    p.wait()
    return p.returncode, out


def killed(command, conf, host, cid, podns, delay, args=""):
    """Start command and SIGKILL it after delay seconds. True when it was killed (False:
    it had already finished)."""
    p = start(command, conf, host, cid, podns, args)
    time.sleep(delay)
    was = p.poll() is None
    if was:
        p.send_signal(signal.SIGKILL)
    p.stdout.read()
    p.stdout.close()
    p.wait()
    return was and p.returncode == -signal.SIGKILL


def consistent(allocs, handles, blocks_used):
    """allocs [(ip, handle)], handles {name: [ips]}, blocks_used [(used, n allocs)].
    Returns a list of problems (empty = consistent)."""
    bad = []
    ips = [a for a, _ in allocs]
    if len(ips) != len(set(ips)):
        bad.append("an address allocated twice")
    owner = dict(allocs)
    for a, h in allocs:
        if h not in handles:
            bad.append("allocation %s names missing handle %s" % (a, h))
        elif a not in handles[h]:
            bad.append("handle %s does not list %s" % (h, a))
    for h, hips in handles.items():
        for a in hips:
            if owner.get(a) != h:
                bad.append("handle %s lists %s, allocated to %s" % (h, a, owner.get(a)))
    for used, n in blocks_used:
        if used != n:
            bad.append("block used=%d with %d allocations" % (used, n))
    return bad


def double_owned(allocs, handles):
    """What must never be seen, even between two writes of a torn commit: an address
    allocated twice, listed by two handles, or listed by a handle while another holds it."""
    bad = []
    ips = [a for a, _ in allocs]
    if len(ips) != len(set(ips)):
        bad.append("an address allocated twice")
    owner = dict(allocs)
    seen = {}
    for h, hips in handles.items():
        for a in hips:
            if a in seen:
                bad.append("%s listed by handles %s and %s" % (a, seen[a], h))
            seen[a] = h
            if owner.get(a) not in (None, h):
                bad.append("handle %s lists %s, allocated to %s" % (h, a, owner[a]))
    return bad


def file_state(state):
    """(allocs, handles, blocks_used, problems) read with python (t.file_records: the
    frames of DIR/ipam.log, checksums verified); problems lists records that do not
    parse."""
    recs, probs = t.file_records(state)
    allocs, used = [], []
    for b in recs["block"].values():
        allocs += [(a["ip"], a["handle"]) for a in b["allocations"]]
        used.append((b["used"], len(b["allocations"])))
    handles = {name: h["ips"] for name, h in recs["handle"].items()}
    return allocs, handles, used, probs


def kube_state(api):
    st, obj = api.get(G + "ipamblocks")
    allocs = [(a["ip"], a["handle"]) for b in obj["items"] for a in b["spec"]["allocations"]]
    used = [(b["spec"]["used"], len(b["spec"]["allocations"])) for b in obj["items"]]
    st, obj = api.get(G + "ipamhandles")
    handles = {o["metadata"]["name"]: o["spec"]["ips"] for o in obj["items"]}
    return allocs, handles, used, []


def outcome(podns, cid, allocs, handles_now, handle_of):
    has_ipam = handle_of(cid) in handles_now
    torn = not has_ipam and any(h == handle_of(cid) for _, h in allocs)
    has_if = any(l["ifname"] == "eth0" for l in t.ipj(podns, "link", "show"))
    return ("veth made" if has_if else "IPAM written") if has_ipam else (
        "blocks written, handle not (torn)" if torn else
        "veth made (no IPAM)" if has_if else "nothing written")


def crash_loop(label, conf, host, read_state, handle_of, pod_args=lambda i: "", vm=None,
               torn_ok=False):
    """torn_ok: the datastore has no multi-object transaction (kubernetes): right after a
    kill the records may disagree (ipam/ds_kube.h) but never double-own an address; the
    next call on the pod and GC must make them consistent."""
    def check_kill():
        allocs, handles, used, probs = read_state()
        if torn_ok:
            return probs + double_owned(allocs, handles)
        return probs + consistent(allocs, handles, used)
    rnd = random.Random(int(os.environ.get("KVT_SEED", str(os.getpid()))))
    print("# %s: seed %s" % (label, os.environ.get("KVT_SEED", os.getpid())))
    cal = t.netns("cal")
    adds, dels = [], []
    for _ in range(3):
        t0 = time.monotonic()
        run("ADD", conf, host, "cal", cal, pod_args(0))
        t1 = time.monotonic()
        run("DEL", conf, host, "cal", cal, pod_args(0))
        adds.append(t1 - t0)
        dels.append(time.monotonic() - t1)
    t.netns_del(cal)
    print("# %s: median ADD %.1f ms, DEL %.1f ms at the start; kill i of %d at a random point "
          "of slice i of 0..1.2 x the median of the last 5 whole runs (stratified)"
          % (label, statistics.median(adds) * 1000, statistics.median(dels) * 1000, ITER))

    def timed(command, cid, podns, a):
        """A whole run, its duration kept for the kill window (the load changes)."""
        t0 = time.monotonic()
        rc, out = run(command, conf, host, cid, podns, a)
        (adds if command == "ADD" else dels).append(time.monotonic() - t0)
        return rc, out
    counts = {}
    problems = []
    pods = []
    gc_left = []
    def covered():
        after = counts.get("ADD killed: IPAM written", 0) + counts.get("ADD killed: veth made", 0)
        return after > 0 and counts.get("ADD killed: nothing written", 0) > 0

    i = -1
    while True:
        i += 1
        # ITER stratified kills; then, when the load moved the commit so that one side
        # got no kill, more kills aimed at the side that has none (bounded)
        if i >= ITER and (vm or covered() or i >= ITER + EXTRA):
            break
        cid = "crash-%d" % i
        podns = t.netns("c%d" % i)
        pods.append((cid, podns, pod_args(i)))
        tadd = statistics.median(adds[-5:])
        if i < ITER:
            delay = tadd * 1.2 * (i + rnd.random()) / ITER
        elif counts.get("ADD killed: nothing written", 0) == 0:
            delay = tadd * 0.3 * rnd.random()
        else:
            delay = tadd * (0.5 + 0.8 * rnd.random())
        was = killed("ADD", conf, host, cid, podns, delay, pod_args(i))
        problems += check_kill()
        allocs, handles, used, probs = read_state()
        what = ("ADD killed: " + outcome(podns, cid, allocs, handles, handle_of)) if was \
            else "ADD finished first"
        counts[what] = counts.get(what, 0) + 1
        if was and i % 4 == 3:
            gc_left.append(cid)  # the runtime lost it: GC's job
            continue
        if was:
            rc, out = run("DEL", conf, host, cid, podns, pod_args(i))
            if rc:
                problems.append("DEL after killed ADD %s: %s" % (cid, out))
        rc, out = timed("ADD", cid, podns, pod_args(i)) if was else (0, "")
        if rc:
            problems.append("ADD again after killed ADD %s: %s" % (cid, out))
        # now kill a DEL of this pod at a random point, then DEL again, then ADD again
        tdel = statistics.median(dels[-5:])
        delay = tdel * 1.2 * (((i * 7) % ITER) + rnd.random()) / ITER
        was = killed("DEL", conf, host, cid, podns, delay, pod_args(i))
        problems += check_kill()
        what = "DEL killed" if was else "DEL finished first"
        counts[what] = counts.get(what, 0) + 1
        rc, out = timed("DEL", cid, podns, pod_args(i))
        if rc:
            problems.append("DEL again %s: %s" % (cid, out))
        rc, out = timed("ADD", cid, podns, pod_args(i))
        if rc:
            problems.append("ADD after DEL %s: %s" % (cid, out))
        # the pod's own records are whole again after its calls
        allocs, handles, used, probs = read_state()
        mine = handle_of(cid)
        if mine not in handles or len(handles[mine]) != 2 or any(
                dict(allocs).get(a) != mine for a in handles[mine]) or any(
                h == mine and a not in handles[mine] for a, h in allocs):
            problems.append("%s: records of %s not whole after DEL+ADD: %s" % (
                cid, mine, (handles.get(mine), [x for x in allocs if x[1] == mine])))
    for k in sorted(counts):
        print("# %s: %-32s %d" % (label, k, counts[k]))
    ok(not problems, "%s: %d ADD kills and their DEL kills: every record parses, %s after "
       "each kill, DEL/ADD again always work and leave the pod's records whole"
       % (label, i, "no address double-owned" if torn_ok else "state consistent"),
       problems[:10])
    if not vm:
        ok(counts.get("ADD killed: IPAM written", 0) + counts.get("ADD killed: veth made", 0)
           > 0 and counts.get("ADD killed: nothing written", 0) > 0,
           "%s: kills landed both before and after the IPAM commit" % label, counts)
    # the pods the runtime still knows, as live attachments; the lost ones are not listed
    live = [c for c, _, _ in pods if c not in gc_left]
    allocs, handles, used, _ = read_state()
    gcc = dict(conf, **{"cni.dev/valid-attachments":
                        [{"containerID": c, "ifname": "eth0"} for c in live]})
    rc, out = run("GC", gcc, host, "gc", pods[0][1])
    allocs2, handles2, used2, probs = read_state()
    if vm:
        ok(rc == 0 and list(handles2) == [vm] and len(handles2[vm]) == 2 and not probs
           and not consistent(allocs2, handles2, used2),
           "%s: GC keeps the VM's one v4 + one v6 (the VM exists)" % label,
           (out, handles2))
    else:
        ok(rc == 0 and not any(handle_of(c) in handles2 for c in gc_left)
           and all(handle_of(c) in handles2 for c in live) and not probs
           and not consistent(allocs2, handles2, used2),
           "%s: GC frees what the %d killed, forgotten ADDs left, keeps the %d live pods"
           % (label, len(gc_left), len(live)), (out, sorted(handles2)))
    for cid, podns, a in pods:
        rc, out = run("DEL", conf, host, cid, podns, a)
        if rc:
            problems.append("final DEL %s: %s" % (cid, out))
    rc, out = run("GC", dict(conf, **{"cni.dev/valid-attachments": []}), host, "gc",
                  pods[0][1])
    allocs, handles, used, probs = read_state()
    left_links = [l["ifname"] for l in t.ipj(host, "link", "show", "type", "veth")
                  if l["ifname"] != "kvtapi"]
    left_routes = t.ipj(host, "route", "show", "proto", "75")
    ok(rc == 0 and not problems and not probs and not consistent(allocs, handles, used)
       and [a for a, h in allocs if not vm or h != vm]
       == [] and [h for h in handles if h != vm] == [] and left_links == [] and
       left_routes == [],
       "%s: after DEL of every pod and GC nothing leaked (allocations, handles, veths, "
       "routes)" % label, (problems[:5], allocs, handles, left_links, left_routes))
    for _, podns, _ in pods:
        t.netns_del(podns)


def main():
    host = t.netns("fnode")
    state = t.tmpdir()
    c = t.conf(state, "1.1.0", name="crash")
    crash_loop("file", c, host, lambda: file_state(state), lambda cid: "crash." + cid)
    tmp = glob.glob(os.path.join(state, ".*.tmp"))
    ok(tmp == [], "file: no temporary file left after the last call", tmp)

    khost, api, kc = kube.setup()
    try:
        api.load_files(sorted(glob.glob(os.path.join(FIX, "vm-a.*.json"))))
        kcf = t.conf("/nonexistent", "1.1.0", name="crash", datastore="kubernetes",
                     kubeconfig=kc)
        del kcf["state_dir"]
        crash_loop("kubernetes", kcf, khost, lambda: kube_state(api),
                   lambda cid: "crash." + cid, torn_ok=True)
        # a VM pod: kill its ADD at random points; the VM keeps one address pair and
        # the pod ends as the active owner
        src = json.load(open(os.path.join(FIX, "vm-a.source-pod.json")))
        vargs = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + src["metadata"]["name"]
        vmh = "crash.vmi.default.vm-a"
        for i in range(ITER):  # one launcher pod per iteration (restarts of the VM)
            p = copy.deepcopy(src)
            p["metadata"]["name"] = "virt-launcher-vm-a-crash%d" % i
            p["metadata"]["uid"] = "6%07d-2222-4333-8444-555555555555" % i
            p["metadata"].pop("resourceVersion", None)
            # a restart's earlier launcher pod has finished when the next one comes: only
            # then may the next take the VM's active slot (kube/kubevirt.h, #17)
            p["status"]["phase"] = "Succeeded"
            api.load([p])
        crash_loop("kubernetes VM pod", kcf, khost, lambda: kube_state(api),
                   lambda cid: vmh, vm=vmh, torn_ok=True,
                   pod_args=lambda i: "K8S_POD_NAMESPACE=default;K8S_POD_NAME="
                   "virt-launcher-vm-a-crash%d" % i)
        podns = t.netns("vmfinal")
        rc, out = run("ADD", kcf, khost, "vm-final", podns, vargs)
        allocs, handles, used, _ = kube_state(api)
        st, obj = api.get(G + "ipamblocks")
        owners = {(a.get("activeOwner") or {}).get("uid") for b in obj["items"]
                  for a in b["spec"]["allocations"] if a["handle"] == vmh}
        ok(rc == 0 and list(handles) == [vmh] and len(handles[vmh]) == 2
           and owners == {src["metadata"]["uid"]},
           "kubernetes VM pod: after all the kills the VM holds one v4 + one v6 and its pod "
           "is the active owner", (out, handles, owners))
        run("DEL", kcf, khost, "vm-final", podns, vargs)
    finally:
        api.stop()
    t.finish()


if __name__ == "__main__":
    main()
