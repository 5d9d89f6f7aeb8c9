#!/usr/bin/env python3
"""qemuvm — the lab's VM as a real QEMU guest (python3 stdlib, Debian packages only).

The guest image is made at run time into a cache (build/qemu/, KVT_QEMU_CACHE), never
committed:
  kernel      Debian's cloud kernel (the package linux-image-cloud-amd64 depends on),
              fetched with `apt-get download` and unpacked with `dpkg-deb -x`: nothing
              is installed on the host. virtio-net is a module there (CONFIG_VIRTIO_NET=m):
              virtio_net.ko and what its .modinfo says it depends on go into the initramfs
  initramfs   busybox from busybox-static, guest-echo (test/lab/guest-echo.c, built with
              musl-gcc -static: UDP and TCP echo on port 7, v4 and v6) and an /init that
              loads the modules and configures eth0 from the kernel command line
              (kvnet.ip4/ip6/name): v4 /32 + default via 169.254.1.1 onlink, v6 /128 +
              default via fe80::ecee:eeff:feee:eeee, as kvnet's routed pods have them
The guest answers ping (its kernel), UDP echo (echo.py's stream protocol: it appends its
name) and TCP echo. At resume on a migration target QEMU sends its RARP; with
guest_announce on (virtio-net's VIRTIO_NET_F_GUEST_ANNOUNCE) the guest kernel also sends a
gratuitous ARP and an unsolicited NA (netdev_notify_peers).

The KubeVirt bridge binding, in the virt-launcher pod's namespace after CNI ADD (what
virt-handler's bridge pod-network configurator does): eth0's addresses are removed and
it gets a new random MAC (the guest takes the pod's MAC and IP), bridge k6t-eth0 with
eth0 and tap0 as ports, QEMU in the pod's namespace on tap0 (`ip netns exec`,
-netdev tap,ifname=tap0,script=no,downscript=no; virtio-net-pci with the MAC).

Migration by QMP: a target QEMU waits with -incoming unix:PATH (a unix socket works across
network namespaces on one host); at the cut-over the source gets `stop` + `migrate` and
the target `cont` once its incoming migration completed (KVT_QEMU_MIGRATE=paused, the
default) or only `migrate`, QEMU's live pre-copy (KVT_QEMU_MIGRATE=live; see MIGRATE below
for why it is not the default); the guest pause is from the source's STOP event to the
target's RESUME event (QMP event timestamps, CLOCK_REALTIME as every clock of the lab).
KVT_QEMU_ACCEL (default tcg), KVT_QEMU_APPEND (guest clock options), KVT_QEMU_NIC_OPTS
(appended to the virtio-net-pci options, e.g. ",tx=timer") are for experiments.

QemuGuests plugs into kubevirt.KubeVirt(lab, guests=QemuGuests(lab)) as the guest
implementation (start, stop, cutover); the phases and annotations stay KubeVirt's.

Traffic helpers beside echo.py's UDP stream (run in a pod's namespace or on the API host):
    qemuvm.py tcpstream --to IP --out FILE [--rate 100] [--ready FILE2]
        one TCP connection to IP port 7; a numbered 16-byte message every 1/rate s; the
        answers' arrival times; FILE: {"send": [t...], "reply": {seq: t}, "error": str|null}
    PingStream: `ping -D -n -i 0.001` (iputils) and its printed reply times
Stall of a stream = the longest gap between two answers in a row; stall minus the guest
pause is what the network added."""

import argparse
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KVT_QEMU_CACHE") or os.path.join(L.ROOT, "build", "qemu")
QEMU = shutil.which("qemu-system-x86_64")
KPKG = "linux-image-cloud-amd64"
READY = "KVNET-GUEST-READY"
# the guest's clock under TCG: with the TSC-deadline LAPIC timer and the TSC clocksource a
# guest hung after some cut-overs (2 of 6 in bench-qemu-migrate: only QEMU's RARP, no GARP,
# no answers for 60 s); with these, 8 of 8 migrations under traffic went through.
# KVT_QEMU_APPEND replaces them
GUEST_CLOCK = "clocksource=hpet lapic=notscdeadline"
TCP_MAGIC = b"KVT1"
# how a cut-over copies the guest: "paused" (default) stops the source, copies all of its
# memory, resumes the target (a pause of 0.7-1.8 s here: the whole RAM is copied while
# stopped); "live" is QEMU's pre-copy with the guest running. Debian 12's QEMU 7.2 under
# TCG corrupted the guest's memory in live pre-copy under traffic (on this 2-core machine
# 3 of 3 runs of 8 migrations: "virtio_net virtio0: output.0:id 127 is not a head!", then a
# soft lockup in virtnet_poll; a NULL dereference in pick_next_task_fair; "Fatal exception
# in interrupt" - also with -accel tcg,thread=single and with virtio-net tx=timer), never
# in paused copies. The network's share of a stall is measured from RESUME either way.
MIGRATE = os.environ.get("KVT_QEMU_MIGRATE", "paused")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m || echo "init: insmod $m failed"; done
arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1"=*) echo "${a#*=}";; esac; done; }
IP4=$(arg kvnet.ip4); IP6=$(arg kvnet.ip6); NAME=$(arg kvnet.name)
sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
ip link set lo up
n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_ra
ip link set eth0 up
[ -n "$IP4" ] && ip addr add "$IP4/32" dev eth0 && ip route add 169.254.1.1 dev eth0 scope link &&
	ip route add default via 169.254.1.1 dev eth0
[ -n "$IP6" ] && ip -6 addr add "$IP6/128" dev eth0 &&
	ip -6 route add default via fe80::ecee:eeff:feee:eeee dev eth0
ip addr show dev eth0; ip route show; ip -6 route show
/bin/guest-echo "$NAME" &
echo "%s $NAME"
while true; do sleep 3600; done
""" % READY


# ---- the guest image --------------------------------------------------------------------------

def _run(*cmd, cwd=None, timeout=300):
    p = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("qemuvm: %s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                        (p.stderr or p.stdout).strip()[-500:]))
    return p.stdout


def _modinfo_depends(path):
    """The depends= of a kernel module (its .modinfo strings; no modinfo on the host)."""
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"(?:^|\0)depends=([^\0]*)", data)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def _modules_in_order(moddir, want):
    """want's modules and their dependencies, dependencies first: [relative path]."""
    index = {}
    for dp, _, fs in os.walk(moddir):
        for f in fs:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.relpath(os.path.join(dp, f), moddir)
    out, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            raise RuntimeError("qemuvm: kernel module %s not in %s" % (name, moddir))
        for d in _modinfo_depends(os.path.join(moddir, index[name])):
            visit(d)
        out.append(index[name])
    for w in want:
        visit(w)
    return out


def _kernel(cache):
    """(vmlinuz, modules dir) of Debian's cloud kernel, unpacked into the cache."""
    deps = _run("apt-cache", "depends", KPKG)
    pkg = next((ln.split()[-1] for ln in deps.splitlines()
                if "Depends:" in ln and "linux-image-" in ln), None)
    if not pkg:
        raise RuntimeError("qemuvm: %s names no linux-image package (apt-cache depends)" % KPKG)
    root = os.path.join(cache, pkg)
    ver = pkg[len("linux-image-"):]
    vmlinuz = os.path.join(root, "boot", "vmlinuz-" + ver)
    moddir = os.path.join(root, "lib", "modules", ver)
    if not os.path.exists(vmlinuz):
        dl = os.path.join(cache, "dl")
        os.makedirs(dl, exist_ok=True)
        debs = [f for f in os.listdir(dl) if f.startswith(pkg + "_") and f.endswith(".deb")]
        if not debs:
            _run("apt-get", "download", pkg, cwd=dl)
            debs = [f for f in os.listdir(dl) if f.startswith(pkg + "_") and f.endswith(".deb")]
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _run("dpkg-deb", "-x", os.path.join(dl, sorted(debs)[-1]), tmp)
        os.rename(tmp, root)
    return vmlinuz, moddir


def _busybox():
    out = _run("dpkg", "-L", "busybox-static")
    bb = next((p for p in out.split() if p.endswith("/bin/busybox")), None)
    if not bb or not os.path.exists(bb):
        raise RuntimeError("qemuvm: busybox-static has no /bin/busybox (dpkg -L)")
    return bb


def build_image(cache=CACHE):
    """Make (or reuse) the guest image. Returns {"kernel": path, "initrd": path}; raises
    RuntimeError saying what could not be made."""
    os.makedirs(cache, exist_ok=True)
    vmlinuz, moddir = _kernel(cache)
    mods = _modules_in_order(moddir, ["virtio_pci", "virtio_net"])
    bb = _busybox()
    src = os.path.join(HERE, "guest-echo.c")
    with open(src, "rb") as f:
        h = hashlib.sha256(f.read() + INIT.encode() + vmlinuz.encode()
                           + str(os.stat(bb).st_mtime).encode()).hexdigest()[:16]
    initrd = os.path.join(cache, "initrd-%s.cpio.gz" % h)
    if os.path.exists(initrd):
        return {"kernel": vmlinuz, "initrd": initrd}
    if not shutil.which("musl-gcc"):
        raise RuntimeError("qemuvm: no musl-gcc (musl-tools) to build guest-echo")
    stage = os.path.join(cache, "stage-" + h)
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "proc", "sys", "dev", "lib/modules", "tmp"):
        os.makedirs(os.path.join(stage, d))
    shutil.copy(bb, os.path.join(stage, "bin", "busybox"))
    _run("musl-gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
         os.path.join(stage, "bin", "guest-echo"), src)
    for m in mods:
        dst = os.path.join(stage, "lib", "modules", m)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(os.path.join(moddir, m), dst)
    with open(os.path.join(stage, "modules.order"), "w", encoding="ascii") as f:
        f.write("\n".join(mods) + "\n")
    with open(os.path.join(stage, "init"), "w", encoding="ascii") as f:
        f.write(INIT)
    os.chmod(os.path.join(stage, "init"), 0o755)
    files = _run("find", ".", "-mindepth", "1", cwd=stage)
    p = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=stage,
                       input=files.encode(), capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("qemuvm: cpio: %s" % p.stderr.decode(errors="replace"))
    import gzip
    with gzip.open(initrd + ".tmp", "wb", compresslevel=6) as f:
        f.write(p.stdout)
    os.rename(initrd + ".tmp", initrd)
    shutil.rmtree(stage, ignore_errors=True)
    return {"kernel": vmlinuz, "initrd": initrd}


def available():
    """(image or None, why not)."""
    if not QEMU:
        return None, "no qemu-system-x86_64 (Debian package qemu-system-x86)"
    try:
        return build_image(), ""
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return None, "the guest image cannot be built: %s" % e


# ---- QMP ---------------------------------------------------------------------------------------

class QMP:
    """A QMP connection: commands answered in order, events collected by a reader thread
    (each with its QEMU timestamp as realtime seconds in "t")."""

    def __init__(self, path, timeout=30.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError as e:
                self.s.close()
                if time.monotonic() > end:
                    raise RuntimeError("qemuvm: QMP %s: %s after %.0f s" % (path, e, timeout))
                time.sleep(0.02)
        self.f = self.s.makefile("rb")
        self.cv = threading.Condition()
        self.events, self.replies = [], []
        self.closed = False
        greeting = json.loads(self.f.readline())
        if "QMP" not in greeting:
            raise RuntimeError("qemuvm: QMP %s: no greeting: %r" % (path, greeting))
        self.th = threading.Thread(target=self._reader, daemon=True)
        self.th.start()
        self.cmd("qmp_capabilities")

    def _reader(self):
        try:
            for line in self.f:
                msg = json.loads(line)
                with self.cv:
                    if "event" in msg:
                        ts = msg.get("timestamp") or {}
                        msg["t"] = ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6
                        self.events.append(msg)
                    else:
                        self.replies.append(msg)
                    self.cv.notify_all()
        except (OSError, ValueError):
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def cmd(self, name, args=None, timeout=30.0):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        with self.cv:
            self.s.sendall(json.dumps(msg).encode() + b"\n")
            ok = self.cv.wait_for(lambda: self.replies or self.closed, timeout)
            if not ok or not self.replies:
                raise RuntimeError("qemuvm: QMP %s: no answer%s" % (
                    name, " (QEMU gone)" if self.closed else " after %.0f s" % timeout))
            r = self.replies.pop(0)
        if "error" in r:
            raise RuntimeError("qemuvm: QMP %s: %s" % (name, r["error"].get("desc", r)))
        return r.get("return")

    def wait_event(self, name, since=0, timeout=60.0, cond=None):
        """The first event `name` at index >= since (and cond(event)), waiting up to
        timeout."""
        def find():
            for e in self.events[since:]:
                if e["event"] == name and (cond is None or cond(e)):
                    return e
            return None
        with self.cv:
            self.cv.wait_for(lambda: find() is not None or self.closed, timeout)
            e = find()
        if e is None:
            raise RuntimeError("qemuvm: no QMP event %s after %.0f s%s" % (
                name, timeout, " (QEMU gone)" if self.closed else ""))
        return e

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ---- the KubeVirt bridge binding -----------------------------------------------------------------

def random_mac():
    return "02:%02x:%02x:%02x:%02x:%02x" % tuple(random.randrange(256) for _ in range(5))


def bridge_binding(pod):
    """virt-handler's bridge binding in the launcher pod: eth0 loses its addresses and
    MAC (the guest takes them), k6t-eth0 bridges eth0 and tap0. Returns the guest MAC (the
    pod's eth0 MAC from the CNI result)."""
    ns = pod.ns
    mac = pod.mac or L.ipj(ns, "link", "show", "eth0")[0]["address"]

    def ip(*a):
        L.sh("ip", "-n", ns, *a)

    def sysctl(k, v):
        L.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "%s=%s" % (k, v))
    ip("addr", "flush", "dev", "eth0", "scope", "global")
    ip("link", "set", "eth0", "down")
    ip("link", "set", "eth0", "address", random_mac())
    ip("link", "add", "k6t-eth0", "type", "bridge")
    ip("tuntap", "add", "dev", "tap0", "mode", "tap")
    for dev in ("eth0", "k6t-eth0", "tap0"):  # no address of the pod's own on these
        sysctl("net.ipv6.conf.%s.disable_ipv6" % dev, 1)
    mtu = L.ipj(ns, "link", "show", "eth0")[0].get("mtu", 1500)
    ip("link", "set", "tap0", "mtu", str(mtu))
    ip("link", "set", "eth0", "master", "k6t-eth0")
    ip("link", "set", "tap0", "master", "k6t-eth0")
    for dev in ("k6t-eth0", "eth0", "tap0"):
        ip("link", "set", dev, "up")
    return mac


# ---- the guest ----------------------------------------------------------------------------------

class Guest:
    """One QEMU process in a pod's namespace; incoming=True waits for a migration."""

    def __init__(self, lab, img, pod, name, mac, ip4, ip6, guest_announce=True,
                 incoming=False, mem=128):
        self.lab, self.pod, self.name, self.mac = lab, pod, name, mac
        base = os.path.join(lab.dir, "qemu-%s" % pod.name)
        self.console = base + ".console"
        self.qmp_path = base + ".qmp"
        self.incoming = (base + ".mig") if incoming else None
        self.guest_announce = guest_announce
        append = "console=ttyS0 loglevel=3 panic=-1 mitigations=off kvnet.ip4=%s " \
                 "kvnet.ip6=%s kvnet.name=%s %s" % (ip4 or "", ip6 or "", name,
                                                     os.environ.get("KVT_QEMU_APPEND", GUEST_CLOCK))
        cmd = ["ip", "netns", "exec", pod.ns, QEMU, "-name", "%s@%s" % (name, pod.node.name),
               "-accel", os.environ.get("KVT_QEMU_ACCEL", "tcg"), "-machine", "pc",
               "-m", str(mem), "-smp", "1", "-nodefaults", "-no-user-config",
               "-display", "none", "-vga", "none", "-no-reboot",
               "-kernel", img["kernel"], "-initrd", img["initrd"], "-append", append,
               "-serial", "file:" + self.console,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off",
               "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=,guest_announce=%s%s"
               % (mac, "on" if guest_announce else "off",
                  os.environ.get("KVT_QEMU_NIC_OPTS", ""))]
        if self.incoming:
            cmd += ["-incoming", "unix:" + self.incoming]
        self.proc = L.Proc(cmd, base + ".log")
        self.qmp = QMP(self.qmp_path)

    def alive(self):
        return self.proc.alive()

    def wait_ready(self, timeout=None):
        """Until the guest's /init said it is up (its console), bounded."""
        timeout = timeout or float(os.environ.get("KVT_QEMU_BOOT_TIMEOUT", "180"))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with open(self.console, encoding="utf-8", errors="replace") as f:
                    if READY in f.read():
                        return
            except OSError:
                pass
            if not self.alive():
                break
            time.sleep(0.05)
        raise RuntimeError("qemuvm: guest %s in %s not up after %.0f s%s: %s\n%s" % (
            self.name, self.pod.name, timeout, "" if self.alive() else " (QEMU exited)",
            self.proc.log(5), self.console_tail()))

    def wait_incoming(self, timeout=30.0):
        end = time.monotonic() + timeout
        while not os.path.exists(self.incoming):
            if not self.alive() or time.monotonic() > end:
                raise RuntimeError("qemuvm: target QEMU in %s does not listen on %s: %s" % (
                    self.pod.name, self.incoming, self.proc.log(5)))
            time.sleep(0.01)

    def console_tail(self, n=15):
        try:
            with open(self.console, encoding="utf-8", errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        try:
            if self.alive():
                self.qmp.cmd("quit", timeout=5)
        except RuntimeError:
            pass
        self.qmp.close()
        self.proc.stop()


def _capture_in(ns, ifname):
    """An AF_PACKET socket (kernel timestamps) on ifname in netns ns, made there by this
    thread (setns is per thread) and usable from here."""
    import echo
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        L.setns("/run/netns/" + ns)
        return echo._capture_open(ifname)
    finally:
        if L._libc.setns(home, L.CLONE_NEWNET) != 0:
            raise OSError("qemuvm: setns back failed")
        os.close(home)


def _capture_kinds(s, kinds, ip4, ip6, timeout):
    """{kind: kernel timestamp of the first outgoing frame of that kind} within timeout."""
    import echo
    out = {}
    end = time.monotonic() + timeout
    while len(out) < len(kinds) and time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        data, anc, _, addr = s.recvmsg(2048, socket.CMSG_SPACE(16))
        if addr[2] != echo.PACKET_OUTGOING:
            continue
        for k in kinds:
            if k not in out and echo._is_announce(data, k, ip4, ip6 or "::"):
                t = time.time()
                for lvl, typ, val in anc:
                    if lvl == socket.SOL_SOCKET and typ == echo.SO_TIMESTAMPNS and len(val) >= 16:
                        sec, nsec = struct.unpack("qq", val[:16])
                        t = sec + nsec / 1e9
                out[k] = t
    return out


class TapWatch:
    """A thread reading the target pod's tap0 (the guest's side of the bridge, kernel
    timestamps) during a cut-over: the times of the IP frames to the guest (what the
    network delivers) and from it (what the guest answers), per peer address. Splits a
    stream's stall into the network's share and the guest's (a TCG guest runs from a cold
    translation cache after RESUME). Bounded: max_frames, and stop()."""

    def __init__(self, ns, ifname="tap0", max_frames=200000):
        self.s = _capture_in(ns, ifname)
        self.s.settimeout(0.05)
        self.frames = []  # (t, "to"|"from", peer address)
        self.max = max_frames
        self.done = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        import echo
        while not self.done.is_set() and len(self.frames) < self.max:
            try:
                data, anc, _, addr = self.s.recvmsg(256, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 14:
                continue
            et = struct.unpack("!H", data[12:14])[0]
            to = addr[2] == echo.PACKET_OUTGOING
            if et == 0x0800 and len(data) >= 34:
                peer = socket.inet_ntoa(data[26:30] if to else data[30:34])
            elif et == 0x86DD and len(data) >= 54:
                if data[20] == 58 and data[54:55] and data[54] in (133, 134, 135, 136):
                    continue  # ND, not traffic
                peer = socket.inet_ntop(socket.AF_INET6, data[22:38] if to else data[38:54])
            else:
                continue
            t = time.time()
            for lvl, typ, val in anc:
                if lvl == socket.SOL_SOCKET and typ == echo.SO_TIMESTAMPNS and len(val) >= 16:
                    sec, nsec = struct.unpack("qq", val[:16])
                    t = sec + nsec / 1e9
            self.frames.append((t, "to" if to else "from", peer))

    def stop(self):
        self.done.set()
        self.th.join(5)
        self.s.close()

    def first_after(self, t0):
        """{"to": {peer: t}, "from": {peer: t}}: the first frame each way after t0."""
        out = {"to": {}, "from": {}}
        for t, d, peer in self.frames:
            if t > t0 and peer not in out[d]:
                out[d][peer] = t
        return out


class QemuGuests:
    """The guest implementation kubevirt.KubeVirt uses when given guests=QemuGuests(lab):
    start (bridge binding + QEMU, a migration target waits -incoming), stop, cutover
    (QMP migrate; paused/resumed from STOP/RESUME; announcements seen on the target pod's
    eth0). guest_announce (per VM, fixed at its first start: source and target must offer
    the same virtio features): from create_vm's announce — "rarp" alone = off (QEMU's RARP
    only), anything else = on (RARP + the guest's GARP and NA)."""

    def __init__(self, lab, img=None, mem=128):
        self.lab = lab
        self.img = img or build_image()
        self.mem = mem
        self.migrations = []  # per cut-over: {"pause_ms", "stop_t", "resume_t", ...}

    def start(self, kv, pod, vm, standby=False, announce="garp"):
        vm.mac = vm.mac or pod.mac
        if not hasattr(vm, "guest_announce"):
            vm.guest_announce = announce != "rarp"
        bridge_binding(pod)
        pod.events = None
        g = Guest(self.lab, self.img, pod, vm.name, vm.mac, pod.ip4, pod.ip6,
                  vm.guest_announce, incoming=standby, mem=self.mem)
        pod.guest = g
        if standby:
            g.wait_incoming()
        else:
            g.wait_ready()
        for q in (g.qmp,):  # fast cut-over: no bandwidth cap on a local socket
            q.cmd("migrate-set-parameters", {"max-bandwidth": 4 << 30, "downtime-limit": 50})
        return g

    def stop(self, kv, pod):
        pod.guest.stop()

    def cutover(self, kv, m, announce):
        """The memory copy and the cut-over, by QMP. Fills m.t["paused"], m.t["resumed"]
        (QMP STOP on the source, RESUME on the target), m.announce {kind: wire time}."""
        src, tgt = m.src.guest, m.tgt.guest
        kinds = ["rarp"] + (["garp", "na"] if m.vm.guest_announce else [])
        cap = _capture_in(m.tgt.ns, "eth0")
        tap = TapWatch(m.tgt.ns)
        try:
            s0, t0 = len(src.qmp.events), len(tgt.qmp.events)
            m.t["migrate_cmd"] = time.time()
            if MIGRATE == "paused":
                src.qmp.cmd("stop")
            src.qmp.cmd("migrate", {"uri": "unix:" + tgt.incoming})
            stop = src.qmp.wait_event("STOP", s0, timeout=120)
            if MIGRATE == "paused":  # the target stays paused too: resume it at once
                end = time.monotonic() + 120
                while tgt.qmp.cmd("query-migrate").get("status") != "completed":
                    if time.monotonic() > end:
                        raise RuntimeError("qemuvm: incoming migration not completed")
                    time.sleep(0.002)
                tgt.qmp.cmd("cont")
            resume = tgt.qmp.wait_event("RESUME", t0, timeout=120)
            m.t["paused"], m.t["resumed"] = stop["t"], resume["t"]
            seen = _capture_kinds(cap, kinds, m.vm.ip4, m.vm.ip6, timeout=3.0)
            end = time.monotonic() + 10  # until the guest answered each peer (bounded)
            while time.monotonic() < end:
                f = tap.first_after(resume["t"])
                if f["to"] and all(p in f["from"] for p in f["to"]):
                    break
                time.sleep(0.02)
        finally:
            cap.close()
            tap.stop()
        end = time.monotonic() + 30
        while True:
            st = src.qmp.cmd("query-migrate")
            if st.get("status") == "completed":
                break
            if st.get("status") in ("failed", "cancelled") or time.monotonic() > end:
                raise RuntimeError("qemuvm: migration %s -> %s: %s" % (
                    m.src.name, m.tgt.name, st))
            time.sleep(0.01)
        for k in kinds:
            m.announce[k] = seen.get(k)
        rec = {"pause_ms": (m.t["resumed"] - m.t["paused"]) * 1000,
               "downtime_ms": st.get("downtime"), "total_ms": st.get("total-time"),
               "ram": st.get("ram", {}), "announce": dict(m.announce),
               "stop_t": m.t["paused"], "resume_t": m.t["resumed"],
               "tap": tap.first_after(m.t["resumed"])}
        m.qemu = rec
        self.migrations.append(rec)


# ---- traffic ------------------------------------------------------------------------------------

def tcpstream_main(a):
    fam = socket.AF_INET6 if ":" in a.to else socket.AF_INET
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    sends, replies, err = [], {}, None
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect((a.to, 7))
    except OSError as e:
        err = "connect: %s" % e
    prog = open(a.ready, "a", encoding="utf-8") if a.ready else None
    if prog:
        prog.write(json.dumps({"ev": "streaming", "connected": err is None}) + "\n")
        prog.flush()
    period = 1.0 / a.rate
    buf = b""
    nxt = time.monotonic()
    last_prog = 0.0
    if err is None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
    while err is None and not stop["now"]:
        now = time.monotonic()
        if now >= nxt:
            seq = len(sends)
            sends.append(time.time())
            try:
                s.send(TCP_MAGIC + struct.pack("!Q", seq) + b"\0" * 4)
            except BlockingIOError:
                pass  # a full send buffer during a stall: the gap shows in the answers
            except OSError as e:
                err = "send: %s" % e
                break
            nxt = max(nxt + period, now + period / 2)
        try:
            r, _, _ = select.select([s], [], [], max(0.0, nxt - time.monotonic()))
        except InterruptedError:
            continue
        if r:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                err = "recv: %s" % e
                break
            if not data:
                err = "connection closed by the guest"
                break
            buf += data
            t = time.time()
            while len(buf) >= 16:
                if buf[:4] == TCP_MAGIC:
                    replies[struct.unpack("!Q", buf[4:12])[0]] = t
                buf = buf[16:]
        if prog and time.monotonic() - last_prog > 0.02:
            prog.write(json.dumps({"ev": "progress", "t": time.time(), "sent": len(sends),
                                   "who": {"tcp": len(replies)}}) + "\n")
            prog.flush()
            last_prog = time.monotonic()
    s.close()
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"to": a.to, "send": sends, "reply": {str(k): v for k, v in replies.items()},
                   "error": err}, f)
    os.rename(tmp, a.out)


class Traffic:
    """The streams of one migration: per source (a Pod or "api") and per address of the VM,
    a 1 kHz UDP echo (echo.py), a ping at ping_hz (iputils, -D times) and a TCP echo at
    tcp_hz. stop() gives {tag: {"kind", "stall_ms", "answers", "lost_conn", "error"}}."""

    def __init__(self, lab, vm, sources, udp_hz=1000, ping_hz=1000, tcp_hz=100):
        self.lab, self.vm = lab, vm
        self.items = []  # (tag, kind, proc-ish, out)
        for stag, src in sources:
            for ip in (vm.ip4, vm.ip6):
                fam = "v6" if ":" in ip else "v4"
                pre = [] if src == "api" else ["ip", "netns", "exec", src.ns]
                if udp_hz:
                    st = self._udp(pre, ip, "udp %s->%s" % (stag, fam), udp_hz)
                    self.items.append(("udp %s->%s" % (stag, fam), "udp", st, None))
                if tcp_hz:
                    out = os.path.join(lab.dir, "tcp-%d.json" % next(lab.seq))
                    p = L.Proc(pre + [sys.executable, os.path.abspath(__file__), "tcpstream",
                                      "--to", ip, "--out", out, "--rate", str(tcp_hz),
                                      "--ready", out + ".ready"], out + ".log")
                    self.items.append(("tcp %s->%s" % (stag, fam), "tcp", p, out))
                if ping_hz:
                    out = os.path.join(lab.dir, "ping-%d.txt" % next(lab.seq))
                    p = L.Proc(pre + ["ping", "-D", "-n", "-i", "%g" % (1.0 / ping_hz),
                                      "-W", "1", ip], out)
                    self.items.append(("ping %s->%s" % (stag, fam), "ping", p, out))

    def _udp(self, pre, ip, tag, hz):
        """echo.py's UDP stream at hz (lab.stream() with a rate)."""
        out = os.path.join(self.lab.dir, "udp-%d.json" % next(self.lab.seq))
        ready = out + ".ready"
        p = L.Proc(pre + [sys.executable, L.ECHO, "stream", "--to", ip, "--out", out, "--id",
                          tag, "--ready", ready, "--rate", str(hz)], out + ".log")
        end = time.monotonic() + 10
        while not os.path.exists(ready):
            if not p.alive() or time.monotonic() > end:
                raise RuntimeError("qemuvm: stream %s did not start: %s" % (tag, p.log()))
            time.sleep(0.01)
        return L.Stream(p, out, tag, ready, ip)

    def _answers(self, kind, obj, out):
        if kind == "udp":
            return obj.answers()
        if kind == "tcp":
            try:
                with open(out + ".ready", encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError:
                return 0
            for line in reversed(lines):  # the last line may be still being written
                try:
                    return json.loads(line).get("who", {}).get("tcp", 0)
                except ValueError:
                    continue
            return 0
        try:
            with open(out, encoding="utf-8", errors="replace") as f:
                return f.read().count("icmp_seq=")
        except OSError:
            return 0

    def wait_answers(self, more=100, timeout=60.0):
        """Until every stream has `more` further answers (ping's output is block-buffered:
        for it any answer counts once its first block is out)."""
        base = {tag: self._answers(k, o, out) for tag, k, o, out in self.items}
        end = time.monotonic() + timeout
        while True:
            short = {}
            for tag, k, o, out in self.items:
                n = self._answers(k, o, out)
                if n < base[tag] + (1 if k == "ping" else more):
                    short[tag] = n - base[tag]
            if not short:
                return
            if time.monotonic() > end:
                raise RuntimeError("qemuvm: streams without answers after %.0f s: %s"
                                   % (timeout, short))
            time.sleep(0.02)

    def stop(self, t_stop=None):
        """Ends every stream: {tag: {kind, sent, answers, stall_ms (longest gap), cut_ms
        and first_after (the gap spanning t_stop, the guest's STOP, and the first answer
        after it), lost_conn, error}}."""
        res = {}
        for tag, kind, o, out in self.items:
            if kind == "udp":
                r = o.stop()
                times = sorted(t for t, _ in r.reply.values())
                res[tag] = {"kind": kind, "sent": r.sent, "answers": len(times),
                            "stall_ms": _max_gap_ms(times), "lost_conn": 0, "error": None}
            elif kind == "tcp":
                o.stop(signal.SIGTERM, wait=10)
                try:
                    with open(out, encoding="utf-8") as f:
                        d = json.load(f)
                except (OSError, ValueError) as e:
                    d = {"send": [], "reply": {}, "error": "no result: %s" % e}
                times = sorted(d["reply"].values())
                res[tag] = {"kind": kind, "sent": len(d["send"]), "answers": len(times),
                            "stall_ms": _max_gap_ms(times),
                            "lost_conn": 1 if d.get("error") else 0, "error": d.get("error")}
            else:
                o.stop(signal.SIGINT, wait=10)
                times, sent = [], 0
                with open(out, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        mt = re.match(r"\[(\d+\.\d+)\] .*icmp_seq=(\d+)", line)
                        if mt:
                            times.append(float(mt.group(1)))
                        ms = re.search(r"(\d+) packets transmitted", line)
                        if ms:
                            sent = int(ms.group(1))
                times.sort()
                res[tag] = {"kind": kind, "sent": sent, "answers": len(times),
                            "stall_ms": _max_gap_ms(times), "lost_conn": 0, "error": None}
            res[tag]["cut_ms"], res[tag]["first_after"] = (
                cut_gap(times, t_stop) if t_stop else (None, None))
        return res


def _max_gap_ms(times):
    return max((b - a for a, b in zip(times, times[1:])), default=0.0) * 1000


def cut_gap(times, t_stop):
    """(gap ms, first answer after t_stop) for the gap between answers that spans the
    guest's STOP: the stall the cut-over caused (the longest gap may lie elsewhere on a
    loaded machine)."""
    before = [t for t in times if t <= t_stop]
    after = [t for t in times if t > t_stop]
    if not before or not after:
        return None, None
    return (after[0] - before[-1]) * 1000, after[0]


def demo(lab, kv, say, head, rates=(250, 50, 20)):
    """`make demo DEMO_ARGS=--qemu`: the real VM on node-a, migrated to node-b and back
    under traffic from a pod on node-c and the API host; per migration the guest pause,
    the announcements and per stream the stall and stall minus pause. Returns the exit
    status (1 when a migration fails, a stream does not answer again or a TCP connection
    is lost)."""
    import observe as O
    client = kv.ordinary_pod("client", lab.nodes["node-c"])
    head("a QEMU guest (TCG) with the KubeVirt bridge binding in its launcher pod on node-a")
    vm = kv.create_vm("vm-a", "node-a")
    links = {x["ifname"]: x.get("master") for x in L.ipj(vm.pod.ns, "link", "show")}
    say("VM vm-a: %s and %s, MAC %s (the pod's); in the pod: %s" % (
        vm.ip4, vm.ip6, vm.mac, ", ".join("%s master %s" % (k, v) if v else k
                                          for k, v in links.items() if k != "lo")))
    okc, bad = O.wait_converged(lab, vm, vm.pod)
    if not okc:
        say("the nodes do not route to the VM: %s" % bad)
        return 1
    status = 0
    for target in ("node-b", "node-a"):
        head("live migration of vm-a by QMP: %s -> %s" % (vm.node.name, target))
        tr = Traffic(lab, vm, [("pod@node-c", client), ("api", "api")], *rates)
        m = None
        try:
            tr.wait_answers(200)
            m = kv.migrate(vm, target, settle=lambda m: O.wait_converged(lab, vm, m.tgt))
            tr.wait_answers(200)
        except RuntimeError as e:
            say("FAILED: %s" % e)
            status = 1
        finally:
            res = tr.stop(m.t.get("paused") if m else None)
        if m is None or not hasattr(m, "qemu"):
            return 1
        q = m.qemu
        say("guest pause %.1f ms (QMP STOP on %s -> RESUME on %s; QEMU: downtime %s ms, "
            "migration %s ms, %.0f MB)" % (q["pause_ms"], m.src.node.name, m.tgt.node.name,
                                           q["downtime_ms"], q["total_ms"],
                                           q["ram"].get("transferred", 0) / 1e6))
        say("announcements after RESUME: %s" % ", ".join(
            "%s %+.1f ms" % (k, (t - q["resume_t"]) * 1000) for k, t in m.announce.items() if t))
        for tag, r in sorted(res.items()):
            cut = r["cut_ms"]
            say("%-20s stall %7s ms, stall - pause %7s ms%s" % (
                tag + ":", "%.1f" % cut if cut is not None else "-",
                "%.1f" % (cut - q["pause_ms"]) if cut is not None else "-",
                "; connection LOST: %s" % r["error"] if r["lost_conn"] else ""))
            if r["lost_conn"]:
                status = 1
    return status


def main():
    ap = argparse.ArgumentParser(prog="qemuvm.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tcpstream")
    t.add_argument("--to", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--rate", type=float, default=100.0)
    t.add_argument("--ready", default="")
    sub.add_parser("image")
    a = ap.parse_args()
    if a.cmd == "tcpstream":
        try:
            os.nice(-10)
        except OSError:
            pass
        tcpstream_main(a)
    else:
        print(json.dumps(build_image()))


if __name__ == "__main__":
    main()
