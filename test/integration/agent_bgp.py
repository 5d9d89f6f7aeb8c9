#!/usr/bin/env python3
"""cross_node = bgp (agent/bgp.h): the agent keeps BIRD's fragment and reloads BIRD through
its control socket, checked with a real BIRD 2 (`birdc` reads what it made of the
fragment) in a private namespace kvt-<pid>-agent:

  - BIRD down: the fragment is written anyway (router id = the node's InternalIP, this
    node's blocks only), one warning line names the socket and why; the agent is ready
  - BIRD up: the retry reloads it; birdc shows the blocks, the kernel protocol learned
    kvnet's /32s (krt_source 75), the export filter offers the block and the borrowed
    /32 (local_pref 100) but not a /32 inside the block
  - a new block in the API: the fragment is rewritten, BIRD reconfigured, birdc shows it
  - BIRD's reply is garbage / BIRD never answers: a clear warning, no hang (/healthz
    answers throughout), a real BIRD afterwards is reloaded again
  - [bgp] config moved by SIGHUP: the fragment is written at the new path and a BIRD whose
    include names it is reloaded with kvnet's protocols"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import agentlib as al  # noqa: E402

ok = al.ok


def setup_links():
    al.sh("ip", "link", "add", "fab0", "type", "veth", "peer", "name", "fab1")
    al.sh("ip", "link", "set", "fab1", "up")
    al.sh("ip", "addr", "add", "198.19.1.1/24", "dev", "fab0")
    al.sh("ip", "link", "set", "fab0", "up")
    for i in (1, 2):
        al.sh("ip", "link", "add", "kvtep%d" % i, "type", "veth", "peer", "name", "kvtpe%d" % i)
        al.sh("ip", "link", "set", "kvtep%d" % i, "up")
        al.sh("ip", "link", "set", "kvtpe%d" % i, "up")


class Bird:
    """BIRD 2 in the foreground on its own control socket, bird.conf including the
    fragment the agent writes."""

    def __init__(self, d, frag, sock):
        self.conf = os.path.join(d, "bird.conf")
        self.sock = sock
        self.log = os.path.join(d, "bird.log")
        with open(self.conf, "w") as f:
            f.write('log "%s" all;\ninclude "%s";\n' % (self.log, frag))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["bird", "-f", "-c", self.conf, "-s", self.sock],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        al._procs.append(self.proc)
        return al.wait_for(lambda: self.birdc("show", "status").returncode == 0, timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def birdc(self, *cmd):
        return subprocess.run(["birdc", "-s", self.sock] + list(cmd), capture_output=True,
                              text=True, timeout=10)


def fake_server(path, answer):
    """A unix socket at path that answers every connection with `answer` (None: says
    nothing and keeps the connection open). Returns (socket, thread)."""
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(4)
    held = []

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            if answer is not None:
                c.sendall(answer)
                c.close()
            else:
                held.append(c)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return s, held


def count(text, s):
    return text.count(s)


def main():
    if subprocess.run(["sh", "-c", "command -v bird && command -v birdc"],
                      capture_output=True).returncode != 0:
        print("ok - agent bgp # SKIP bird2 not installed")
        return 0
    al.enter_netns()
    setup_links()
    api = al.start_api(state=True)
    try:
        run(api)
    finally:
        api.stop()
    al.finish()


def run(api):
    api.load([
        al.node_obj("node-a", "198.19.1.1"),
        al.node_obj("node-b", "198.19.1.2"),
        al.block_obj("198.18.0.0/26", "node-a", [
            ("198.18.0.5", "net.c1", "node-a", None, "")]),
        al.block_obj("198.18.0.64/26", "node-b", [
            ("198.18.0.70", "net.vmi.default.vm2", "node-b", "node-a", "uid-vm2")]),
    ])
    d = al.tmpdir()
    frag = os.path.join(d, "kvnet-bird.conf")
    sock = os.path.join(d, "bird.ctl")
    ag = al.Agent(api=api, node="node-a", extra=(
        "[network]\ncross_node = bgp\n[bgp]\npeers = 198.19.1.254 64512\n"
        "config = %s\nsocket = %s\n" % (frag, sock)))
    ag.write_endpoint("c1", "kvtep1", ["198.18.0.5"], namespace="default", pod="p1",
                      uid="uid-p1")
    ag.write_endpoint("c2", "kvtep2", ["198.18.0.70"], namespace="default", pod="vm2",
                      uid="uid-vm2")
    ag.start()
    ok(ag.wait_ready(), "agent ready with cross_node = bgp", ag.logtext())

    # ---- BIRD down -------------------------------------------------------------------
    ok(al.wait_for(lambda: os.path.exists(frag)), "fragment written", ag.logtext())
    text = open(frag).read() if os.path.exists(frag) else ""
    ok("router id 198.19.1.1;" in text, "router id is the node's InternalIP", text)
    ok("route 198.18.0.0/26 unreachable;" in text and "198.18.0.64/26" not in text.split(
        "protocol kernel")[0], "this node's block only", text)
    ok("neighbor 198.19.1.254 as 64512;" in text, "the peer", text)
    ok(al.wait_for(lambda: "bgp: BIRD at %s: reload of %s failed: connect: No such file"
                   % (sock, frag) in ag.logtext()),
       "BIRD down: one warning names the socket and why", ag.logtext())
    ok(ag.get("/healthz")[0] == 200 and ag.get("/readyz")[0] == 200,
       "BIRD down: the agent is healthy and ready")

    # ---- BIRD up: the retry reloads it -----------------------------------------------
    bird = Bird(d, frag, sock)
    ok(bird.start(), "BIRD started on the fragment")
    ok(al.wait_for(lambda: "bgp: BIRD at %s reloaded" % sock in ag.logtext(), timeout=15),
       "BIRD up: the retry reloads it", ag.logtext())
    pr = bird.birdc("show", "protocols").stdout
    ok(all(p in pr for p in ("kvnet_kernel4", "kvnet_blocks4", "kvnet_peer1")),
       "birdc: the fragment's protocols", pr)
    ok(al.wait_for(lambda: "198.18.0.70/32" in bird.birdc("show", "route").stdout),
       "birdc: the kernel protocol learned kvnet's /32", bird.birdc("show", "route").stdout)
    rt = bird.birdc("show", "route", "all").stdout
    ok("Kernel.source: 75" in rt and "198.18.0.5/32" in rt,
       "birdc: learned with krt_source 75, also the /32 inside the block", rt)
    ex = bird.birdc("show", "route", "filter", "kvnet_export4", "all").stdout
    ok("198.18.0.0/26" in ex and "198.18.0.70/32" in ex and "198.18.0.5/32" not in ex and
       "BGP.local_pref: 100" in ex,
       "export filter: the block and the moved-in /32 (local_pref 100), not a /32 inside "
       "the block", ex)

    # ---- a new block: fragment rewritten, BIRD reconfigured --------------------------
    n_rel = count(ag.logtext(), "reloaded")
    api.load([al.block_obj("198.18.1.0/26", "node-a")])
    ok(al.wait_for(lambda: "198.18.1.0/26" in bird.birdc("show", "route").stdout,
                   timeout=15),
       "new block: BIRD announces it after the agent's reload",
       bird.birdc("show", "route").stdout + ag.logtext())
    ok(count(ag.logtext(), "reloaded") > n_rel and "0003 Reconfigured" in ag.logtext(),
       "the reload was answered 0003 Reconfigured", ag.logtext()[-2000:])

    # ---- garbage and silence ---------------------------------------------------------
    bird.stop()
    srv, _ = fake_server(sock, b"HTTP/1.1 400 Bad Request\r\n\r\n")
    api.load([al.block_obj("198.18.2.0/26", "node-a")])
    ok(al.wait_for(lambda: "not a BIRD reply (garbage)" in ag.logtext(), timeout=15),
       "garbage on the socket: a clear warning", ag.logtext()[-2000:])
    srv.close()
    srv, held = fake_server(sock, None)
    t0 = time.monotonic()
    api.load([al.block_obj("198.18.3.0/26", "node-a")])
    ok(al.wait_for(lambda: "no answer within 3000 ms" in ag.logtext(), timeout=20),
       "a silent socket: the exchange times out", ag.logtext()[-2000:])
    ok(ag.get("/healthz", timeout=2)[0] == 200, "the agent answered throughout")
    al.note("silent socket noticed after %.1f s" % (time.monotonic() - t0))
    srv.close()
    for c in held:
        c.close()
    os.unlink(sock)
    ok(bird.start(), "BIRD back")
    ok(al.wait_for(lambda: "198.18.3.0/26" in bird.birdc("show", "route").stdout,
                   timeout=20),
       "BIRD back: it has the latest fragment", bird.birdc("show", "route").stdout)

    # ---- [bgp] config moved by a reload (SIGHUP) ---------------------------------------
    frag2 = os.path.join(d, "kvnet-bird-2.conf")
    bird.stop()
    with open(ag.conf) as f:
        conf = f.read()
    with open(ag.conf, "w") as f:
        f.write(conf.replace("config = %s\n" % frag, "config = %s\n" % frag2))
    with open(frag2, "w") as f:  # nothing of kvnet's in it yet
        f.write("# the new path, before the agent writes it\nrouter id 198.19.1.1;\n"
                "protocol device {}\n")
    bird = Bird(d, frag2, sock)  # BIRD's include names the new file, as the warning asks
    ok(bird.start() and "kvnet_peer1" not in bird.birdc("show", "protocols").stdout,
       "BIRD started on the new path's include, without kvnet's protocols")
    ag.proc.send_signal(signal.SIGHUP)
    ok(al.wait_for(lambda: "bgp: reload: config %s -> %s" % (frag, frag2) in ag.logtext(),
                   timeout=15),
       "[bgp] config changed by SIGHUP: the agent says it writes the new file, leaves the old",
       ag.logtext()[-2000:])
    ok(al.wait_for(lambda: os.path.exists(frag2) and "198.18.3.0/26" in open(frag2).read(),
                   timeout=15), "the fragment is written at the new path", ag.logtext()[-2000:])
    ok(al.wait_for(lambda: "198.18.3.0/26" in bird.birdc("show", "route").stdout and
                   "kvnet_peer1" in bird.birdc("show", "protocols").stdout, timeout=20),
       "BIRD on the new include is reloaded with every block",
       bird.birdc("show", "route").stdout + ag.logtext()[-1500:])
    bird.stop()
    ag.stop()


if __name__ == "__main__":
    sys.exit(main() or 0)
