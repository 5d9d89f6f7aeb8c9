"""kubevirt — a simulated KubeVirt over the lab's test API server (python3 stdlib only).

It does what virt-controller, virt-handler and the kubelet do to the API and to the pod
network, in the same order and with the same object shapes as the real ones
(test/data/fixtures, ../shared/reference/kubevirt.md):

  create_vm     VirtualMachine, its VirtualMachineInstance (controller-owned by the VM),
                the virt-launcher pod (generateName, controller ownerReference to the VMI
                with its UID, kubevirt.io/domain, labels copied), CNI ADD on the node, the
                "guest" (echo.py vm) in the pod's namespace, pod Running, VMI Running
  stop_vm       guest off, pod Succeeded, CNI DEL, pod deleted (grace 0, as the kubelet),
                VMI deleted; restart_vm = stop_vm + a new VMI (new UID) and pod
  evict         the VM is shut down and started again on another node (no live migration)
  migrate       a VirtualMachineInstanceMigration through its phases:
                  Pending -> Scheduling (target pod created, label kubevirt.io/migrationJobUID,
                  CNI ADD on the target node while the VM is live on the source) ->
                  Scheduled -> PreparingTarget -> TargetReady -> Running (memory copy) ->
                  cut-over: the source guest pauses, the target guest resumes and announces
                  itself (arping -U / RARP / unsolicited NA), the VMI's migrationState gets
                  targetNodeDomainReadyTimestamp and the target pod the annotation
                  kubevirt.io/migration-target-ready-timestamp -> Succeeded (migrationState
                  completed, VMI nodeName = target, source pod Succeeded, its CNI DEL, pod
                  deleted); or Failed (target pod Failed, its CNI DEL, the source keeps it)
                Hooks let a scenario act at any phase (restart an agent, the API server...).
  secondary     KubeVirt(lab, secondary=[(ifname, network name, fn(node) -> CNI config)]):
                every VM launcher pod also gets those attachments, as Multus adds a
                NetworkAttachmentDefinition's (CNI ADD/DEL with CNI_IFNAME = ifname after /
                before eth0's), kept in Pod.sec[ifname] = {ip4, ip6, mac, host_if}; the
                VMI's status.interfaces lists them (name, interfaceName, mac, addresses),
                as KubeVirt does for a bridge-bound secondary network
  binding       create_vm(binding="bridge"): KubeVirt's bridge binding in every launcher
                pod of the VM (migration targets included): bridge k6t-eth0 (169.254.75.10/32)
                enslaves the pod's eth0 (addresses flushed, a random MAC) and tap0, a veth
                whose far end is eth0 of a separate guest namespace (Pod.guest_ns) holding
                the pod's addresses and MAC and the default routes via 169.254.1.1 and
                fe80::ecee:eeff:feee:eeee (no neighbour entry: the guest ARPs/solicits
                itself); the guest (echo.py vm) runs there. Default binding=None: the
                guest runs in the pod's namespace on the pod's eth0.
"""

import copy
import datetime
import json
import os
import secrets
import signal
import sys
import time

import lab as L

FIX = os.path.join(L.ROOT, "test", "data", "fixtures")


def _fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        return json.load(f)


def rfc3339(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Pod:
    """A pod that exists in the API and (after ADD) has a network namespace."""

    def __init__(self, obj, node):
        md = obj["metadata"]
        self.obj = obj
        self.name = md["name"]
        self.namespace = md["namespace"]
        self.uid = md["uid"]
        self.node = node
        self.cid = L.rand_cid()
        self.ns = None
        self.result = None
        self.ip4 = self.ip6 = None
        self.mac = None      # eth0 MAC from the CNI result
        self.host_if = None
        self.dad_after_add = None  # {link: why} tentative right after CNI ADD (links_not_ready)
        self.guest = None
        self.events = None
        self.guest_ns = None  # bridge binding: the guest's namespace (else the pod's)
        self.sec = {}         # secondary attachments: ifname -> {ip4, ip6, mac, host_if}

    def __repr__(self):
        return "Pod(%s on %s)" % (self.name, self.node.name)


class VM:
    def __init__(self, name, namespace):
        self.name = name
        self.namespace = namespace
        self.vm_uid = None
        self.vmi = None      # the VMI object as last written
        self.pod = None      # the pod running the VM
        self.ip4 = self.ip6 = None
        self.mac = None      # the guest's MAC: kept across pods, as a real guest keeps it
        self.binding = None  # None (guest on the pod's eth0) or "bridge" (KubeVirt's)

    @property
    def node(self):
        return self.pod.node if self.pod else None

    def __repr__(self):
        return "VM(%s on %s)" % (self.name, self.node.name if self.node else "-")


class Migration:
    """What happened during one migration, with wall-clock (CLOCK_REALTIME) times."""

    def __init__(self, vm, src, tgt):
        self.vm = vm
        self.src = src          # source Pod
        self.tgt = tgt          # target Pod
        self.name = None
        self.uid = None
        self.t = {}             # event -> time
        self.phases = []        # [(phase, time)]
        self.announce = {}      # kind -> kernel timestamp of the frame on the wire
        self.outcome = None     # "Succeeded" | "Failed"

    @property
    def t_announce(self):
        ts = [t for t in self.announce.values() if t]
        return min(ts) if ts else None


class KubeVirt:
    def __init__(self, lab, namespace="default", guests=None, secondary=None, routed=True):
        self.lab = lab
        self.secondary = list(secondary or [])
        # routed=False: VM pods have no interface on kvnet's pod network (their eth0 is
        # another CNI's, not simulated: the pod has only its secondary interfaces)
        self.routed = routed
        # the guest implementation: None = echo.py in the pod's namespace; or an object
        # with start(kv, pod, vm, standby, announce), stop(kv, pod) and cutover(kv, m,
        # announce) (test/lab/qemuvm.py QemuGuests: a QEMU guest migrated by QMP)
        self.guests = guests
        self.api = lab.api
        self.namespace = namespace
        self.say = lab.say

    # ---- API helpers --------------------------------------------------------------------

    def _ok(self, r, what, codes=(200, 201)):
        if r.status not in codes:
            raise RuntimeError("kubevirt: %s: %s %s" % (what, r.status, r.raw[:300]))
        return r.json

    def _path(self, kind, name=""):
        base = {"vm": L.KV % self.namespace + "virtualmachines",
                "vmi": L.KV % self.namespace + "virtualmachineinstances",
                "vmim": L.KV % self.namespace + "virtualmachineinstancemigrations",
                "pod": L.PODS % self.namespace}[kind]
        return base + ("/" + name if name else "")

    def _patch_vmi(self, vm, patch):
        vm.vmi = self._ok(self.api.patch(self._path("vmi", vm.name), patch), "patch VMI")
        return vm.vmi

    def _pod_status(self, pod, phase, extra=None):
        st = {"phase": phase}
        if pod.ip4 or pod.ip6:
            ips = [x for x in (pod.ip4, pod.ip6) if x]
            st.update({"podIP": ips[0], "podIPs": [{"ip": x} for x in ips],
                       "hostIP": pod.node.ip4})
        st.update(extra or {})
        self._ok(self.api.patch(self._path("pod", pod.name) + "/status", {"status": st}),
                 "pod %s status" % pod.name)

    # ---- objects ------------------------------------------------------------------------

    def _vm_obj(self, name):
        vm = _fixture("vm-a.vm.json")
        md = vm["metadata"]
        md.pop("uid"), md.pop("resourceVersion")
        md["name"] = name
        md["namespace"] = self.namespace
        tl = vm["spec"]["template"]["metadata"]["labels"]
        tl["kubevirt.io/vm"] = name
        return vm

    def _vmi_obj(self, vm, node):
        vmi = _fixture("vm-a.vmi.json")
        md = vmi["metadata"]
        md.pop("uid"), md.pop("resourceVersion")
        md["name"] = vm.name
        md["namespace"] = self.namespace
        md["labels"] = {"kubevirt.io/vm": vm.name, "app": "lab", "kubevirt.io/nodeName": node.name}
        md["ownerReferences"][0].update({"name": vm.name, "uid": vm.vm_uid})
        vmi["status"] = {"phase": "Scheduling", "migrationMethod": "LiveMigration",
                         "conditions": [{"type": "LiveMigratable", "status": "True"}]}
        return vmi

    def _pod_obj(self, vm, node, migration=None):
        p = _fixture("vm-a.target-pod.json" if migration else "vm-a.source-pod.json")
        md = p["metadata"]
        for k in ("uid", "resourceVersion", "name"):
            md.pop(k, None)
        md["generateName"] = "virt-launcher-%s-" % vm.name
        md["namespace"] = self.namespace
        vmi_uid = vm.vmi["metadata"]["uid"]
        md["labels"].update({"kubevirt.io/created-by": vmi_uid, "vm.kubevirt.io/name": vm.name,
                             "vmi.kubevirt.io/id": vm.name, "kubevirt.io/vm": vm.name,
                             "app": "lab"})
        md["labels"].pop("kubevirt.io/nodeName", None)
        md["annotations"]["kubevirt.io/domain"] = vm.name
        md["ownerReferences"][0].update({"name": vm.name, "uid": vmi_uid})
        if migration:
            md["labels"]["kubevirt.io/migrationJobUID"] = migration.uid
            md["annotations"]["kubevirt.io/migrationJobName"] = migration.name
        p["spec"]["hostname"] = vm.name
        p["spec"]["nodeName"] = node.name
        p.pop("status", None)
        return p

    # ---- pods and the CNI ------------------------------------------------------------------

    def _create_pod(self, obj, node):
        made = self._ok(self.api.post(L.PODS % self.namespace, obj), "create pod")
        return Pod(made, node)

    def pod_add(self, pod):
        """Sandbox + CNI ADD on the pod's node, as the runtime does."""
        pod.ns = self.lab.new_pod_ns()
        vm_pod = pod.obj["metadata"].get("labels", {}).get("kubevirt.io/created-by")
        if vm_pod and not self.routed:
            for ifname, _net, conf in self.secondary:
                self._sec_add(pod, ifname, conf(pod.node))
            pod.result = {"ips": [], "interfaces": []}
            return pod.result
        rc, res, err = self.lab.cni("ADD", pod.node, pod)
        if rc != 0 or not res:
            raise RuntimeError("kubevirt: CNI ADD %s on %s: exit %d: %s %s"
                               % (pod.name, pod.node.name, rc, res, err.strip()))
        pod.result = res
        for ip in res.get("ips", []):
            a = ip["address"].split("/")[0]
            if ":" in a:
                pod.ip6 = a
            else:
                pod.ip4 = a
        pod.host_if = res["interfaces"][0]["name"]
        pod.mac = next((i.get("mac") for i in res["interfaces"] if i.get("sandbox")), None)
        # what the plugin left in duplicate address detection (it turns DAD off on both
        # ends before they come up: nothing should be), then the pod's traffic starts once
        # both ends of its veth are up with usable addresses
        pod.dad_after_add = {k: v for k, v in list(L.links_not_ready(pod.ns).items()) + list(
            L.links_not_ready(pod.node.ns, [pod.host_if]).items()) if "tentative" in v}
        L.wait_links_ready(pod.ns)
        L.wait_links_ready(pod.node.ns, [pod.host_if])
        if pod.obj["metadata"].get("labels", {}).get("kubevirt.io/created-by"):
            for ifname, _net, conf in self.secondary:
                self._sec_add(pod, ifname, conf(pod.node))
            if self.secondary:
                self._net_status(pod)
        return res

    def _net_status(self, pod):
        """Multus's k8s.v1.cni.cncf.io/network-status on the pod once its attachments are
        in: the default network, then each secondary one (NAD "NS/NETWORK")."""
        st = [{"name": "kvnet", "interface": "eth0", "default": True, "mac": pod.mac or "",
               "ips": [x for x in (pod.ip4, pod.ip6) if x]}]
        for ifname, net, _conf in self.secondary:
            d = pod.sec.get(ifname)
            if d:
                st.append({"name": "%s/%s" % (self.namespace, net), "interface": ifname,
                           "mac": d["mac"] or "", "ips": [x for x in (d["ip4"], d["ip6"]) if x]})
        self._ok(self.api.patch(self._path("pod", pod.name), {"metadata": {"annotations": {
            "k8s.v1.cni.cncf.io/network-status": json.dumps(st)}}}), "pod network-status")

    def _sec_add(self, pod, ifname, conf):
        rc, res, err = self.lab.cni("ADD", pod.node, pod, ifname=ifname, conf=conf)
        if rc != 0 or not res:
            raise RuntimeError("kubevirt: CNI ADD %s %s on %s: exit %d: %s %s"
                               % (pod.name, ifname, pod.node.name, rc, res, err.strip()))
        d = {"ip4": None, "ip6": None, "result": res,
             "host_if": res["interfaces"][0]["name"],
             "mac": next((i.get("mac") for i in res["interfaces"] if i.get("sandbox")), None)}
        for ip in res.get("ips", []):
            a = ip["address"].split("/")[0]
            d["ip6" if ":" in a else "ip4"] = a
        pod.sec[ifname] = d

    def bridge_bind(self, pod, vm):
        """KubeVirt's bridge binding in pod's namespace (see the module comment), as
        virt-handler's bridge infra configurator and the domain's tap do it."""
        vm.mac = vm.mac or pod.mac
        g = pod.guest_ns = self.lab.new_pod_ns()
        P = ["ip", "-n", pod.ns]
        rnd = "02:" + ":".join("%02x" % b for b in secrets.token_bytes(5))
        for k, v in (("net.ipv6.conf.default.accept_dad", 0),
                     ("net.ipv6.conf.all.accept_dad", 0)):
            L.sh("ip", "netns", "exec", g, "sysctl", "-qw", "%s=%s" % (k, v))
            L.sh("ip", "netns", "exec", pod.ns, "sysctl", "-qw", "%s=%s" % (k, v))
        L.sh(*P, "link", "set", "eth0", "down")
        L.sh(*P, "addr", "flush", "dev", "eth0")
        L.sh(*P, "link", "set", "eth0", "address", rnd)
        L.sh(*P, "link", "add", "k6t-eth0", "type", "bridge", "mcast_snooping", "0")
        L.sh(*P, "addr", "add", "169.254.75.10/32", "dev", "k6t-eth0")
        L.sh(*P, "link", "set", "eth0", "master", "k6t-eth0")
        L.sh(*P, "link", "add", "tap0", "type", "veth", "peer", "name", "eth0", "netns", g)
        L.sh(*P, "link", "set", "tap0", "master", "k6t-eth0")
        for link in ("eth0", "k6t-eth0", "tap0"):
            L.sh(*P, "link", "set", link, "up")
        G = ["ip", "-n", g]
        L.sh(*G, "link", "set", "lo", "up")
        L.sh(*G, "link", "set", "eth0", "address", vm.mac)
        L.sh(*G, "link", "set", "eth0", "up")
        if pod.ip4:
            L.sh(*G, "addr", "add", pod.ip4 + "/32", "dev", "eth0")
            L.sh(*G, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0", "onlink")
        if pod.ip6:
            L.sh(*G, "addr", "add", pod.ip6 + "/128", "dev", "eth0", "nodad")
            L.sh(*G, "-6", "route", "add", "default", "via", "fe80::ecee:eeff:feee:eeee",
                 "dev", "eth0")
        L.wait_links_ready(pod.ns)
        L.wait_links_ready(g)

    def pod_del(self, pod):
        for ifname, _net, conf in self.secondary:
            if ifname in pod.sec:
                rc, res, err = self.lab.cni("DEL", pod.node, pod, ifname=ifname,
                                            conf=conf(pod.node))
                if rc != 0:
                    raise RuntimeError("kubevirt: CNI DEL %s %s on %s: exit %d: %s"
                                       % (pod.name, ifname, pod.node.name, rc, err.strip()))
                del pod.sec[ifname]
        rc, res, err = self.lab.cni("DEL", pod.node, pod) if pod.host_if or self.routed \
            else (0, None, "")
        if rc != 0:
            raise RuntimeError("kubevirt: CNI DEL %s on %s: exit %d: %s %s"
                               % (pod.name, pod.node.name, rc, res, err.strip()))
        if pod.ns:
            L.sh("ip", "netns", "del", pod.ns, check=False)
            pod.ns = None
        if pod.guest_ns:
            L.sh("ip", "netns", "del", pod.guest_ns, check=False)
            pod.guest_ns = None

    def guest_start(self, pod, vm, standby=False, announce="garp"):
        if self.guests is not None:
            return self.guests.start(self, pod, vm, standby, announce)
        pod.events = os.path.join(self.lab.dir, "guest-%s.events" % pod.name)
        if vm.binding == "bridge" and not pod.guest_ns:
            self.bridge_bind(pod, vm)
        cmd = ["ip", "netns", "exec", pod.guest_ns or pod.ns, sys.executable, L.ECHO, "vm",
               "--name", "%s@%s" % (vm.name, pod.node.name), "--ip4", pod.ip4 or "",
               "--ip6", pod.ip6 or "", "--events", pod.events, "--announce", announce]
        vm.mac = vm.mac or pod.mac
        if vm.mac and vm.binding != "bridge" and pod.mac and pod.mac != vm.mac:
            # the guest keeps its MAC across pods and answers frames to it (a bridge-bound
            # guest does so behind k6t-eth0; here the guest is the pod's own stack, so its
            # eth0 takes the MAC it announces: a RARP for a MAC nobody receives would
            # send the node's neighbour entry, taken from the announcement, nowhere)
            L.sh("ip", "-n", pod.ns, "link", "set", "eth0", "address", vm.mac)
            L.wait_links_ready(pod.ns)
        if vm.mac:
            cmd += ["--mac", vm.mac]
        if standby:
            cmd.append("--standby")
        pod.guest = L.Proc(cmd, pod.events + ".log")
        self.guest_wait(pod, "ready")

    def guest_events(self, pod):
        out = []
        try:
            with open(pod.events, encoding="utf-8") as f:
                for line in f:
                    out.append(json.loads(line))
        except (OSError, ValueError):
            pass
        return out

    def guest_wait(self, pod, ev, count=1, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            evs = [e for e in self.guest_events(pod) if e["ev"] == ev]
            if len(evs) >= count:
                return evs[count - 1]
            if pod.guest is None or not pod.guest.alive():
                break
            time.sleep(0.001)
        raise RuntimeError("kubevirt: guest in %s: no %r event: %s"
                           % (pod.name, ev, pod.guest.log(10) if pod.guest else ""))

    def guest_stop(self, pod):
        if pod.guest is not None:
            if self.guests is not None:
                self.guests.stop(self, pod)
            else:
                pod.guest.stop()
            pod.guest = None

    def ordinary_pod(self, name, node):
        """A plain pod (a client) on node, with its network."""
        obj = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": self.namespace, "labels": {"app": "client"}},
               "spec": {"nodeName": node.name, "containers": [{"name": "c", "image": "busybox"}]}}
        pod = Pod(self._ok(self.api.post(L.PODS % self.namespace, obj), "create pod"), node)
        self.pod_add(pod)
        self._pod_status(pod, "Running")
        return pod

    # ---- VM life cycle ------------------------------------------------------------------------

    def create_vm(self, name, node_name, announce="garp", binding=None):
        vm = VM(name, self.namespace)
        vm.binding = binding
        node = self.lab.nodes[node_name]
        made = self._ok(self.api.post(self._path("vm"), self._vm_obj(name)), "create VM")
        vm.vm_uid = made["metadata"]["uid"]
        self.start_vmi(vm, node, announce)
        return vm

    def start_vmi(self, vm, node, announce="garp"):
        vm.vmi = self._ok(self.api.post(self._path("vmi"), self._vmi_obj(vm, node)),
                          "create VMI")
        pod = self._create_pod(self._pod_obj(vm, node), node)
        self.pod_add(pod)
        self.guest_start(pod, vm, announce=announce)
        self._pod_status(pod, "Running")
        vm.pod = pod
        vm.ip4, vm.ip6 = pod.ip4, pod.ip6
        self._patch_vmi(vm, {"metadata": {"labels": {"kubevirt.io/nodeName": node.name}},
                             "status": {"phase": "Running", "nodeName": node.name,
                                        "activePods": {pod.uid: node.name},
                                        "interfaces": self._ifaces(pod, vm),
                                        "conditions": [{"type": "LiveMigratable",
                                                        "status": "True"},
                                                       {"type": "Ready", "status": "True"}]}})
        return pod

    def _iface(self, pod, vm):
        ips = [x for x in (pod.ip4, pod.ip6) if x]
        return {"name": "default", "interfaceName": "eth0", "mac": vm.mac or "",
                "ipAddress": ips[0] if ips else "",
                "ipAddresses": ips, "podInterfaceName": "eth0", "infoSource": "domain",
                "queueCount": 1, "linkState": "up"}

    def _ifaces(self, pod, vm):
        out = [self._iface(pod, vm)]
        for ifname, net, _conf in self.secondary:
            d = pod.sec.get(ifname)
            if d:
                ips = [x for x in (d["ip4"], d["ip6"]) if x]
                out.append({"name": net, "interfaceName": ifname, "mac": d["mac"] or "",
                            "ipAddress": ips[0] if ips else "", "ipAddresses": ips,
                            "infoSource": "domain, guest-agent", "queueCount": 1,
                            "linkState": "up"})
        return out

    def _finish_pod(self, pod, phase="Succeeded"):
        """The pod's containers are done: status, CNI DEL, kubelet deletes it (grace 0)."""
        self.guest_stop(pod)
        self._pod_status(pod, phase)
        self.pod_del(pod)
        r = self.api.delete(self._path("pod", pod.name), {"gracePeriodSeconds": 0})
        self._ok(r, "delete pod %s" % pod.name, (200, 404))

    def stop_vm(self, vm, delete_vm=False):
        """The VM stops (guest off, launcher pod done, VMI gone); with delete_vm the
        VirtualMachine is deleted first, as `virtctl delete`/kubectl delete vm do."""
        if delete_vm:
            self._ok(self.api.delete(self._path("vm", vm.name)), "delete VM", (200, 202))
        if vm.pod:
            self._finish_pod(vm.pod)
            vm.pod = None
        self._ok(self.api.delete(self._path("vmi", vm.name)), "delete VMI", (200, 202))
        vmi = self.api.get(self._path("vmi", vm.name))
        if vmi.status == 200:  # finalizers: KubeVirt removes its own
            self.api.patch(self._path("vmi", vm.name), {"metadata": {"finalizers": None}})

    def restart_vm(self, vm, node_name=None):
        """VM restart: a new VMI (new UID) and launcher pod, on the same node or another
        (an eviction without live migration)."""
        node = self.lab.nodes[node_name] if node_name else vm.node
        self.stop_vm(vm)
        return self.start_vmi(vm, node)

    # ---- live migration -----------------------------------------------------------------------

    def _vmim_phase(self, m, phase):
        p = self._path("vmim", m.name) + "/status"
        cur = self._ok(self.api.get(self._path("vmim", m.name)), "get VMIM")
        st = dict(cur.get("status") or {})
        st["phase"] = phase
        t = time.time()
        st["phaseTransitionTimestamps"] = list(st.get("phaseTransitionTimestamps") or []) + [
            {"phase": phase, "phaseTransitionTimestamp": rfc3339(t)}]
        st["migrationState"] = {"sourceNode": m.src.node.name, "targetNode": m.tgt.node.name
                                if m.tgt else "", "mode": "PreCopy"}
        if m.tgt:
            st["migrationState"]["targetPod"] = m.tgt.name
        cur["status"] = st
        self._ok(self.api.put(p, cur), "VMIM status %s" % phase)
        m.phases.append((phase, t))
        m.t[phase] = t

    def _migration_state(self, m, **kw):
        ms = {"migrationUid": m.uid, "sourceNode": m.src.node.name, "sourcePod": m.src.name,
              "mode": "PreCopy", "migrationNetworkType": "Pod", "completed": False,
              "failed": False, "startTimestamp": rfc3339(m.t.get("Running")),
              "sourceState": {"node": m.src.node.name, "pod": m.src.name,
                              "migrationUID": m.uid}}
        if m.tgt:
            ms.update({"targetNode": m.tgt.node.name, "targetPod": m.tgt.name,
                       "targetNodeAddress": m.tgt.node.ip4})
            ms["targetState"] = {"node": m.tgt.node.name, "pod": m.tgt.name,
                                 "nodeAddress": m.tgt.node.ip4}
        ms.update(kw)
        return ms

    def migrate(self, vm, target_node, announce="garp", fail_at=None, hooks=None,
                copy_seconds=0.3, settle=None):
        """Live-migrate vm to target_node. announce: comma list for the target guest
        (garp, rarp, na) or "none" (lost: only the annotation tells). fail_at: a phase
        after which the migration fails ("TargetReady" or "Running"). hooks: {point:
        fn(migration)} with points "Scheduling", "Scheduled", "TargetReady", "Running",
        "cutover" (after the announcement, before the annotation), "annotated",
        "Succeeded". settle(m): called after the cut-over and before Succeeded (e.g. wait
        for the routes). Returns the Migration."""
        hooks = hooks or {}
        node = self.lab.nodes[target_node]
        src = vm.pod
        m = Migration(vm, src, None)
        vmim = _fixture("vm-a.vmim.json")
        vmim["metadata"] = {"generateName": "kubevirt-migrate-vm-", "namespace": self.namespace,
                            "labels": {"kubevirt.io/vmi-name": vm.name},
                            "finalizers": ["kubevirt.io/migrationJobFinalize"]}
        vmim["spec"] = {"vmiName": vm.name}
        vmim.pop("status")
        made = self._ok(self.api.post(self._path("vmim"), vmim), "create VMIM")
        m.name, m.uid = made["metadata"]["name"], made["metadata"]["uid"]
        m.t["created"] = time.time()
        self._vmim_phase(m, "Pending")

        def hook(point):
            if point in hooks:
                hooks[point](m)

        # Scheduling: the target pod, and its CNI ADD while the VM runs on the source
        m.tgt = self._create_pod(self._pod_obj(vm, node, migration=m), node)
        self._vmim_phase(m, "Scheduling")
        self._patch_vmi(vm, {"metadata": {"labels": {
            "kubevirt.io/migrationTargetNodeName": node.name}},
            "status": {"activePods": {src.uid: src.node.name, m.tgt.uid: node.name},
                       "migrationState": self._migration_state(m)}})
        hook("Scheduling")
        m.t["target_add_start"] = time.time()
        self.pod_add(m.tgt)
        m.t["target_add_done"] = time.time()
        self.guest_start(m.tgt, vm, standby=True, announce=announce)
        self._pod_status(m.tgt, "Running")
        self._vmim_phase(m, "Scheduled")
        hook("Scheduled")
        self._vmim_phase(m, "PreparingTarget")
        self._vmim_phase(m, "TargetReady")
        hook("TargetReady")
        if fail_at == "TargetReady":
            return self._fail(vm, m)
        self._vmim_phase(m, "Running")
        self._patch_vmi(vm, {"status": {"migrationState": self._migration_state(m)}})
        hook("Running")
        time.sleep(copy_seconds)  # the memory copy; the guest runs on the source meanwhile
        if fail_at == "Running":
            return self._fail(vm, m)

        # cut-over: the guest pauses on the source and resumes on the target
        if self.guests is not None:
            self.guests.cutover(self, m, announce)
        else:
            src.guest.send(signal.SIGUSR1)
            m.t["paused"] = self.guest_wait(src, "paused")["t"]
            m.tgt.guest.send(signal.SIGUSR2)
            m.t["resumed"] = self.guest_wait(m.tgt, "resumed")["t"]
            kinds = [k for k in announce.split(",") if k and k != "none"]
            for i, k in enumerate(kinds, 1):
                ev = self.guest_wait(m.tgt, "announced", count=i)
                m.announce[ev["kind"]] = ev["t"] if ev.get("seen") else None
        hook("cutover")
        t_ready = time.time()
        m.t["target_ready_annotation"] = t_ready
        self._ok(self.api.patch(self._path("pod", m.tgt.name), {"metadata": {"annotations": {
            "kubevirt.io/migration-target-ready-timestamp": rfc3339(t_ready)}}}),
            "annotate target pod")
        self._patch_vmi(vm, {"metadata": {"labels": {"kubevirt.io/nodeName": node.name}},
                             "status": {"nodeName": node.name,
                                        "migrationState": self._migration_state(
                                            m, targetNodeDomainDetected=True,
                                            targetNodeDomainReadyTimestamp=rfc3339(t_ready))}})
        hook("annotated")
        if settle:
            settle(m)

        # done: VMIM Succeeded, the source pod ends and its network goes
        self._vmim_phase(m, "Succeeded")
        m.t["end"] = time.time()
        self._patch_vmi(vm, {"metadata": {"labels": {"kubevirt.io/migrationTargetNodeName": None}},
                             "status": {"activePods": {src.uid: None, m.tgt.uid: node.name},
                                        "interfaces": self._ifaces(m.tgt, vm),
                                        "migrationState": self._migration_state(
                                            m, targetNodeDomainDetected=True,
                                            targetNodeDomainReadyTimestamp=rfc3339(t_ready),
                                            endTimestamp=rfc3339(m.t["end"]), completed=True)}})
        hook("Succeeded")
        self._finish_pod(src)
        m.t["source_deleted"] = time.time()
        self._vmim_done(m)
        vm.pod = m.tgt
        m.outcome = "Succeeded"
        return m

    def _fail(self, vm, m):
        self._vmim_phase(m, "Failed")
        m.t["end"] = time.time()
        self._patch_vmi(vm, {"metadata": {"labels": {"kubevirt.io/migrationTargetNodeName": None}},
                             "status": {"activePods": {m.tgt.uid: None, vm.pod.uid: vm.node.name},
                                        "migrationState": self._migration_state(
                                            m, endTimestamp=rfc3339(m.t["end"]), failed=True,
                                            completed=True)}})
        self._finish_pod(m.tgt, "Failed")
        self._vmim_done(m)
        m.outcome = "Failed"
        return m

    def _vmim_done(self, m):
        """virt-controller removes its finalizer once the migration is over (the VMIM
        object itself stays until someone deletes it; we leave it, as KubeVirt does)."""
        self.api.patch(self._path("vmim", m.name), {"metadata": {"finalizers": None}})
