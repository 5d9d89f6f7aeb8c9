"""Black-box tests of `kvnet garp-watch` (dist/kvnet) in namespaces kvt-<pid>-*.

Two namespaces joined by a veth pair a0 (A) - b0 (B). garp-watch runs in B; the
announcements come from independent senders in A (Debian's arping, the python raw
socket in test/lib/frames.py), together with ordinary ARP, pings and solicited NAs that
must not show up. The -w file is read back by tcpdump (`tcpdump -r -nn -e`) and by
`garp-watch -r`. --announce is checked by tcpdump in A and by A's neighbour cache.
Usage errors exit 2, runtime errors 1; SIGINT ends a watch cleanly with the file whole.
"""
import atexit
import json
import os
import shutil
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVNET = os.path.join(ROOT, "dist", "kvnet")
FRAMES = os.path.join(ROOT, "test", "lib", "frames.py")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
PID = os.getpid()
A = "kvt-%d-gwa" % PID
B = "kvt-%d-gwb" % PID
TMP = tempfile.mkdtemp(prefix="kvt-%d-" % PID)
procs = []
failures = 0


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for n in (A, B):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(cleanup)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, lambda *_: sys.exit(1))


def ok(cond, name, diag=None):
    global failures
    print(("ok - " if cond else "not ok - ") + name)
    if not cond:
        failures += 1
        if diag:
            for line in str(diag).splitlines():
                print("# " + line)
    return cond


def sh(ns, cmd, check=True):
    r = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", cmd], capture_output=True,
                       text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s%s" % (cmd, r.returncode, r.stdout, r.stderr))
    return r


def frames(args):
    sh(A, "%s %s a0 %s" % (PY, FRAMES, args))


def kvnet(ns, *args, **kw):
    return subprocess.run(["ip", "netns", "exec", ns, KVNET, "garp-watch"] + list(args),
                          capture_output=True, text=True, timeout=kw.get("timeout", 30))


def packet_sockets(pid):
    """How many bound, running AF_PACKET sockets pid holds (/proc/PID/net/packet: R = 1
    once bound to a protocol; Inode matched against the process's fds)."""
    try:
        fds = {os.readlink("/proc/%d/fd/%s" % (pid, fd))[8:-1]
               for fd in os.listdir("/proc/%d/fd" % pid)}
        with open("/proc/%d/net/packet" % pid, encoding="ascii") as f:
            rows = [r.split() for r in f.read().splitlines()[1:]]
    except OSError:
        return 0
    return len([r for r in rows if len(r) >= 9 and r[5] == "1" and r[8] in fds])


def wait_until(cond, what, timeout=10):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError("garpwatch test: %s: not after %d s" % (what, timeout))
        time.sleep(0.01)


def start_watch(*args, sockets=1):
    """garp-watch in B, returned once it holds its `sockets` capture sockets (frames sent
    from then on reach it)."""
    p = subprocess.Popen(["ip", "netns", "exec", B, KVNET, "garp-watch"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    wait_until(lambda: packet_sockets(p.pid) >= sockets or p.poll() is not None,
               "garp-watch %s: %d capture socket(s)" % (" ".join(args), sockets))
    return p


def first_line(p, timeout=10):
    """The first line p writes to stdout (read from the fd itself, so communicate() later
    gets the rest and nothing stays in a python buffer); "" at EOF or after timeout."""
    fd, buf, end = p.stdout.fileno(), b"", time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        b = os.read(fd, 1)
        if not b:
            break
        buf += b
    return buf.decode(errors="replace")


def setup():
    for n in (A, B):
        subprocess.run(["ip", "netns", "add", n], check=True)
        sh(n, "ip link set lo up")
    subprocess.run(["ip", "link", "add", "a0", "netns", A, "type", "veth", "peer", "name", "b0",
                    "netns", B], check=True)
    sh(A, "ip addr add 198.18.1.1/24 dev a0 && ip addr add 2001:db8:1::1/64 dev a0 nodad "
          "&& ip link set a0 up")
    sh(B, "ip addr add 198.18.1.2/24 dev b0 && ip addr add 2001:db8:1::2/64 dev b0 nodad "
          "&& ip link set b0 up")


def mac_of(ns, dev):
    r = sh(ns, "ip -j link show dev " + dev)
    return json.loads(r.stdout)[0]["address"]


def test_watch_json_and_pcap():
    pcap = os.path.join(TMP, "w.pcap")
    w = start_watch("-i", "b0", "--json", "--count", "4", "-w", pcap)
    mac_a0 = mac_of(A, "a0")
    # noise first: none of it may be reported
    sh(A, "arping -q -c 1 -i a0 198.18.1.2", check=False)
    sh(B, "ping -c 1 -W 2 198.18.1.1 && ping -6 -c 1 -W 2 2001:db8:1::1")
    frames("na ip=2001:db8:1::1 flags=0x60 mac=" + mac_a0)
    # the four announcements
    sh(A, "arping -q -U -i a0 -S 198.18.1.1 -c 1 198.18.1.1; [ $? -le 1 ]")
    frames("rarp mac=52:54:00:12:34:56")
    frames("na ip=2001:db8:1::a mac=02:00:00:00:00:0a")
    frames("garp ip=198.18.9.9 mac=02:00:00:00:00:0c vlan=100")
    try:
        out, err = w.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        w.kill()
        out, err = w.communicate()
    ok(w.returncode == 0, "watch --count 4 exits 0", err)
    ev = [json.loads(l) for l in out.splitlines()]
    ok(len(ev) == 4, "four events, no noise", out)
    if len(ev) != 4:
        return pcap
    ok(ev[0]["kind"] == "garp" and ev[0]["op"] == "request" and ev[0]["ip"] == "198.18.1.1"
       and ev[0]["mac"] == mac_a0 and ev[0]["ifname"] == "b0" and ev[0]["vlan"] is None,
       "arping -U seen as garp", ev[0])
    ok(ev[1]["kind"] == "rarp" and ev[1]["ip"] is None and ev[1]["mac"] == "52:54:00:12:34:56"
       and ev[1]["op"] == "request-reverse", "rarp seen, keyed by MAC", ev[1])
    ok(ev[2]["kind"] == "na" and ev[2]["ip"] == "2001:db8:1::a"
       and ev[2]["mac"] == "02:00:00:00:00:0a" and ev[2]["flags"]["override"] is True,
       "unsolicited NA seen", ev[2])
    ok(ev[3]["kind"] == "garp" and ev[3]["vlan"] == 100 and ev[3]["ip"] == "198.18.9.9",
       "802.1Q-tagged garp seen with its VLAN", ev[3])
    ok(all(e["ts_ns"] > 0 and e["time"].endswith("Z") for e in ev), "kernel timestamps", ev)
    ok("4 events, 0 not announcements, 0 malformed" in err, "counters on stderr", err)
    # the file, read by tcpdump
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-e"], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    ok(r.returncode == 0 and len(lines) == 4, "tcpdump -r reads 4 frames", r.stdout + r.stderr)
    if len(lines) == 4:
        ok("Request who-has 198.18.1.1 " in lines[0] and "tell 198.18.1.1," in lines[0],
           "tcpdump: garp", lines[0])
        ok("Reverse ARP" in lines[1] or "RARP" in lines[1], "tcpdump: rarp", lines[1])
        ok("neighbor advertisement, tgt is 2001:db8:1::a" in lines[2], "tcpdump: NA", lines[2])
        ok("vlan 100" in lines[3] and "198.18.9.9" in lines[3], "tcpdump: VLAN tag kept",
           lines[3])
    # nanosecond timestamps: tcpdump's epoch times are the events' kernel times, to the ns
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-tt", "--time-stamp-precision=nano"],
                       capture_output=True, text=True)
    stamps = [int(l.split()[0].replace(".", "")) for l in r.stdout.splitlines()]
    ok(stamps == [e["ts_ns"] for e in ev], "tcpdump reads the kernel timestamps to the ns",
       r.stdout + r.stderr)
    # the same file, read by garp-watch -r (text and JSON)
    r = kvnet(B, "-r", pcap)
    tl = r.stdout.splitlines()
    ok(r.returncode == 0 and len(tl) == 4, "garp-watch -r: 4 lines", r.stdout + r.stderr)
    if len(tl) == 4:
        ok(tl[0].split()[1:5] == ["-", "garp", "198.18.1.1", mac_a0], "-r garp line", tl[0])
        ok(tl[1].split()[1:5] == ["-", "rarp", "-", "52:54:00:12:34:56"], "-r rarp line", tl[1])
        ok(tl[3].endswith("vlan=100"), "-r vlan", tl[3])
    r = kvnet(B, "-r", pcap, "--json")
    ev2 = [json.loads(l) for l in r.stdout.splitlines()]
    ok([(e["kind"], e["ip"], e["mac"], e["ts_ns"]) for e in ev2] ==
       [(e["kind"], e["ip"], e["mac"], e["ts_ns"]) for e in ev],
       "-r --json gives the live events back (timestamps to the ns)", r.stdout)
    return pcap


def test_read_garbage(pcap):
    bad = os.path.join(TMP, "bad.pcap")
    with open(bad, "wb") as f:
        f.write(b"\x7fELF" + b"\0" * 40)
    r = kvnet(B, "-r", bad)
    ok(r.returncode == 1 and "bad magic 0x7f454c46 (not a pcap file)" in r.stderr,
       "-r garbage: exit 1, said why", r.stderr)
    cut = os.path.join(TMP, "cut.pcap")
    with open(pcap, "rb") as f:
        data = f.read()
    with open(cut, "wb") as f:
        f.write(data[:-10])
    r = kvnet(B, "-r", cut)
    ok(r.returncode == 1 and len(r.stdout.splitlines()) == 3 and
       "record 4: caplen" in r.stderr and "past the end of the file" in r.stderr,
       "-r cut file: the 3 whole records, then exit 1", r.stdout + r.stderr)
    r = kvnet(B, "-r", os.path.join(TMP, "missing.pcap"))
    ok(r.returncode == 1 and "No such file or directory" in r.stderr, "-r missing file",
       r.stderr)


def test_golden_file():
    """A checked-in capture: 11 frames (announcements, ordinary ARP, a solicited NA, an NA
    with hop limit 64, an NS, a tagged GARP, an NA whose option names another MAC); the
    text and JSON outputs are golden (test/data/pcap/announcements.{txt,jsonl})."""
    data = os.path.join(ROOT, "test", "data", "pcap")
    src = os.path.join(data, "announcements.pcap")
    for args, golden in (([], "announcements.txt"), (["--json"], "announcements.jsonl")):
        r = kvnet(B, "-r", src, *args)
        with open(os.path.join(data, golden)) as f:
            want = f.read()
        ok(r.returncode == 0 and r.stdout == want, "golden: -r %s" % golden,
           r.stdout + r.stderr)
    # -r with -w keeps only the announcements, and tcpdump agrees on what they are
    out = os.path.join(TMP, "filtered.pcap")
    r = kvnet(B, "-r", src, "-w", out)
    t = subprocess.run(["tcpdump", "-r", out, "-nn"], capture_output=True, text=True)
    lines = t.stdout.splitlines()
    ok(r.returncode == 0 and len(lines) == 7 and "who-has 198.18.0.9" not in t.stdout
       and "solicitation" not in t.stdout, "-r -w: the 7 announcements, read by tcpdump",
       t.stdout + t.stderr)


def test_announce():
    pcap = os.path.join(TMP, "a.pcap")
    sh(B, "ip neigh replace 198.18.1.1 lladdr %s dev b0 nud permanent && "
          "ip neigh replace 2001:db8:1::1 lladdr %s dev b0 nud permanent"
       % (mac_of(A, "a0"), mac_of(A, "a0")))
    sh(A, "ping -c 1 -W 2 198.18.1.2 && ping -6 -c 1 -W 2 2001:db8:1::2")
    tderr = os.path.join(TMP, "tcpdump.err")
    with open(tderr, "w") as ef:
        td = subprocess.Popen(["ip", "netns", "exec", A, "tcpdump", "-i", "a0", "-nn", "-U",
                               "-c", "5", "-w", pcap, "arp or rarp or icmp6[0] == 136"],
                              stdout=subprocess.DEVNULL, stderr=ef)
    procs.append(td)

    def listening():  # tcpdump says so once its capture and filter are in place
        with open(tderr) as f:
            return "listening on a0" in f.read() or td.poll() is not None
    wait_until(listening, "tcpdump -i a0 listening")
    r1 = kvnet(B, "--announce", "-i", "b0", "--ip", "198.18.1.2", "--mac", "02:4b:56:00:00:77",
               "--count", "2", "--interval", "50")
    r2 = kvnet(B, "--announce", "-i", "b0", "--ip", "198.18.1.2", "--reply")
    r3 = kvnet(B, "--announce", "-i", "b0", "--ip", "2001:db8:1::2", "--mac", "02:4b:56:00:00:77")
    r4 = kvnet(B, "--announce", "-i", "b0", "--rarp")
    ok(all(r.returncode == 0 for r in (r1, r2, r3, r4)), "--announce exits 0",
       "\n".join(r.stdout + r.stderr for r in (r1, r2, r3, r4)))
    ok(r1.stdout.splitlines() == ["sent garp request 198.18.1.2 02:4b:56:00:00:77 on b0"] * 2,
       "--announce prints what it sent", r1.stdout)
    # A's kernel took the NA (its neighbour entry has the announced MAC)
    n6 = json.loads(sh(A, "ip -j neigh show to 2001:db8:1::2 dev a0").stdout)
    ok(n6 and n6[0].get("lladdr") == "02:4b:56:00:00:77", "A's neighbour cache took the NA", n6)
    try:
        td.wait(timeout=10)
    except subprocess.TimeoutExpired:
        td.kill()
        td.wait()
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-e", "-vv"], capture_output=True, text=True)
    out = r.stdout
    mac_b0 = mac_of(B, "b0")
    ok(out.count("02:4b:56:00:00:77 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: "
                 "Ethernet (len 6), IPv4 (len 4), Request who-has 198.18.1.2 tell 198.18.1.2")
       == 2, "tcpdump: two GARP requests with --mac", out)
    ok("Reply 198.18.1.2 is-at %s" % mac_b0 in out, "tcpdump: GARP reply with b0's MAC", out)
    ok("[icmp6 sum ok] ICMP6, neighbor advertisement, length 32, tgt is 2001:db8:1::2, "
       "Flags [override]" in out and "2001:db8:1::2 > ff02::1" in out, "tcpdump: NA", out)
    ok("%s > ff:ff:ff:ff:ff:ff, ethertype Reverse ARP (0x8035)" % mac_b0 in out,
       "tcpdump: RARP", out)
    r = kvnet(B, "--announce", "-i", "nosuch0", "--ip", "198.18.1.2")
    ok(r.returncode == 1 and "nosuch0" in r.stderr and "No such device" in r.stderr,
       "--announce on a missing interface: exit 1", r.stderr)


def test_sigint():
    pcap = os.path.join(TMP, "s.pcap")
    w = start_watch("-w", pcap)  # every interface of B
    frames("garp ip=198.18.1.77 mac=02:00:00:00:00:77")
    first = first_line(w)  # the event is out: the frame is in the file's buffer too
    w.send_signal(signal.SIGINT)
    try:
        out, err = w.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        w.kill()
        out, err = w.communicate()
    out = first + out
    ok(w.returncode == 0, "SIGINT: exit 0", err)
    ok(len(out.splitlines()) == 1 and " b0 garp 198.18.1.77 02:00:00:00:00:77 op=request"
       in out, "all-interfaces watch printed the event", out)
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn"], capture_output=True, text=True)
    ok(r.returncode == 0 and len(r.stdout.splitlines()) == 1, "SIGINT: pcap file whole",
       r.stdout + r.stderr)


def test_outgoing_and_several_interfaces():
    # --outgoing: B's own announcement shows up; two -i sockets (b0 and lo) both watched
    w = start_watch("-i", "lo", "-i", "b0", "--outgoing", "--count", "2", sockets=2)
    r = kvnet(B, "--announce", "-i", "b0", "--ip", "198.18.1.2", "--mac", "02:4b:56:00:00:31")
    frames("garp ip=198.18.1.32 mac=02:00:00:00:00:32")
    try:
        out, err = w.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        w.kill()
        out, err = w.communicate()
    lines = out.splitlines()
    ok(r.returncode == 0 and w.returncode == 0 and len(lines) == 2 and
       " b0 garp 198.18.1.2 02:4b:56:00:00:31 op=request" in lines[0] and
       " b0 garp 198.18.1.32 02:00:00:00:00:32 op=request" in lines[1],
       "--outgoing with -i lo -i b0: own and received announcements", out + err)
    r = kvnet(B, "-i", "b0", "-w", "/nonexistent-dir/x.pcap")
    ok(r.returncode == 1 and
       "pcap /nonexistent-dir/x.pcap: open: No such file or directory" in r.stderr,
       "-w into a missing directory: exit 1, said why", r.stderr)


def test_usage():
    cases = [
        (["--bogus"], "unknown option --bogus"),
        (["-i"], "option -i needs an argument"),
        (["--ip"], "option --ip needs an argument"),
        (["--announce"], "--announce needs exactly one -i IFACE"),
        (["--announce", "-i", "b0"], "--announce needs --ip IP (or --rarp)"),
        (["--announce", "-i", "b0", "--ip", "1.2.3"], "--ip: '1.2.3' is not an IPv4 or IPv6"),
        (["--announce", "-i", "b0", "--ip", "198.18.1.2", "--mac", "zz"], "--mac: 'zz'"),
        (["--announce", "-i", "b0", "--ip", "2001:db8::1", "--reply"], "--reply is for IPv4"),
        (["--announce", "-i", "b0", "--rarp", "--ip", "198.18.1.2"], "--rarp takes no --ip"),
        (["--ip", "198.18.1.2"], "go with --announce"),
        (["--count", "0"], "--count: '0' is not a number"),
        (["-r", "x.pcap", "-i", "b0"], "-r reads a file"),
        (["extra"], "unexpected argument 'extra'"),
    ]
    for args, want in cases:
        r = kvnet(B, *args)
        ok(r.returncode == 2 and want in r.stderr and "usage: kvnet garp-watch" in r.stderr,
           "usage error exits 2: " + " ".join(args), r.stderr)
    r = kvnet(B, "-h")
    ok(r.returncode == 0 and r.stdout.startswith("usage: kvnet garp-watch"), "-h", r.stdout)
    r = kvnet(B, "-i", "nosuch0")
    ok(r.returncode == 1 and "interface nosuch0: No such device" in r.stderr,
       "watch a missing interface: exit 1", r.stderr)


def main():
    setup()
    pcap = test_watch_json_and_pcap()
    test_read_garbage(pcap)
    test_golden_file()
    test_announce()
    test_sigint()
    test_outgoing_and_several_interfaces()
    test_usage()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
