#!/usr/bin/env python3
"""The agent's local surfaces (issue #17), on a real agent (file datastore) in a private
namespace:

  - the CNI socket file is created 0600 root-only without [agent] socket_group, and
    root:GROUP 0660 with it; an unprivileged user (setpriv --reuid=65534) is refused by
    the agent itself (SO_PEERCRED) even when the file mode would let it in, with an
    answer naming its uid; a member of socket_group (supplementary group) is served
  - 300, then 1,000 idle TCP connections held open on the HTTP port: /healthz still
    answers, a CNI ping and a registration on the socket still succeed, the agent's
    descriptors stay bounded; the excess is counted (rejected), the idle ones are closed
    after the HTTP timeout (timed out); a slow HTTP client (half a request) does not
    block the loop
  - the running agent holds only CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF, no_new_privs set"""
import json
import os
import resource
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import agentlib as al  # noqa: E402

ok = al.ok
NOBODY = 65534

CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
    try:
        s.sendall(b'{"op":"ping"}\n')
    except OSError:
        pass  # refused and closed first: its answer is still to be read
    print(s.makefile("rb").readline().decode().strip())
except OSError as e:
    print("oserror: %s" % e)
"""


def as_user(path, groups=None):
    """Ping the socket as uid/gid 65534 (optionally with supplementary groups)."""
    cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY]
    cmd += ["--groups=%s" % ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    p = subprocess.run(cmd + [sys.executable, "-c", CLIENT, path], capture_output=True,
                       text=True, timeout=30)
    return (p.stdout + p.stderr).strip()


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def main():
    al.enter_netns()
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    # ---- root only -------------------------------------------------------------------
    d = al.tmpdir()
    os.chmod(d, 0o755)  # so the unprivileged user reaches the socket file at all
    ag = al.Agent(d=d).start()
    ok(ag.wait_ready(), "agent ready (no socket_group)", ag.logtext())
    st = os.stat(ag.sock)
    ok(st.st_mode & 0o777 == 0o600 and st.st_uid == 0,
       "socket created 0600 root-only (%o)" % (st.st_mode & 0o777))
    out = as_user(ag.sock)
    ok("Permission denied" in out, "uid 65534: the file mode keeps it out", out)
    os.chmod(ag.sock, 0o666)  # as if someone loosened the mode: the agent still checks
    out = as_user(ag.sock)
    ok('"status":"error"' in out and "uid 65534" in out and "refused" in out,
       "uid 65534 with the file mode open: refused by SO_PEERCRED, told why", out)
    ok(ag.metric("kvnet_agent_socket_peers_refused_total") == 1, "the refusal is counted")
    ok("uid 65534" in ag.logtext() and "refused" in ag.logtext(), "and logged")
    ok(ag.call({"op": "ping"}) == [{"status": "pong"}], "root is still served")
    status = {}
    with open("/proc/%d/status" % ag.proc.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    want = "%016x" % ((1 << 12) | (1 << 13) | (1 << 39))  # CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF
    ok(status.get("CapEff") == want and status.get("CapPrm") == want and
       status.get("CapBnd") == want and status.get("CapInh") == "0" * 16 and
       status.get("CapAmb") == "0" * 16 and status.get("NoNewPrivs") == "1",
       "the running agent keeps net_admin, net_raw and bpf only, no_new_privs set",
       {k: status.get(k) for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb",
                                    "NoNewPrivs")})
    ag.stop()

    # ---- with socket_group -----------------------------------------------------------
    d2 = al.tmpdir()
    os.chmod(d2, 0o755)
    ag = al.Agent(d=d2, extra="[agent]\nsocket_group = daemon\n").start()
    ok(ag.wait_ready(), "agent ready (socket_group = daemon)", ag.logtext())
    st = os.stat(ag.sock)
    ok(st.st_mode & 0o777 == 0o660 and st.st_uid == 0 and st.st_gid == 1,
       "socket root:daemon 0660 (%o, gid %d)" % (st.st_mode & 0o777, st.st_gid))
    out = as_user(ag.sock, groups=[1])
    ok(out == '{"status":"pong"}', "uid 65534 in group daemon (supplementary): served", out)
    out = as_user(ag.sock)
    ok("Permission denied" in out or ('"status":"error"' in out and "uid 65534" in out),
       "uid 65534 outside the group: refused", out)
    os.chmod(ag.sock, 0o666)
    out = as_user(ag.sock)
    ok('"status":"error"' in out and "not root nor in group daemon" in out,
       "... also with the file mode open (SO_PEERCRED)", out)
    ag.stop()
    bad = al.Agent(extra="[agent]\nsocket_group = kvt-no-such-group\n").start()
    rc = bad.proc.wait(timeout=20)
    ok(rc == 1 and "socket_group kvt-no-such-group: no such group" in bad.logtext(),
       "an unknown socket_group: the agent does not start, saying why", bad.logtext())

    # ---- idle connections and slow clients -------------------------------------------
    ag = al.Agent().start()
    ok(ag.wait_ready(), "agent ready (connection limits)", ag.logtext())
    al.sh("ip", "link", "add", "kv0a1b2c3d4e5", "type", "veth", "peer", "name", "kvt-s-p")
    al.sh("ip", "link", "set", "kv0a1b2c3d4e5", "up")
    for count in (300, 1000):
        held = []
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", ag.port))
            except BlockingIOError:
                pass
            held.append(s)
        # every connect completes (accepted, or accepted and closed: none hangs)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (ag.metric("kvnet_agent_connections_rejected_total", 'listener="http"')
                    or 0) >= count - 64:
                break
            time.sleep(0.05)
        st_, body = ag.get("/healthz")
        ok(st_ == 200 and body == "ok\n",
           "%d idle HTTP connections held: /healthz answers" % count, (st_, body))
        ok(ag.call({"op": "ping"}) == [{"status": "pong"}],
           "%d idle HTTP connections held: the CNI socket answers" % count)
        cid = "cid-surf-%d" % count
        ans = ag.call({"op": "add", "node": "node-a", "datastore": "file:" + ag.state,
                       "container_id": cid, "ifname": "eth0", "veth": "kv0a1b2c3d4e5",
                       "ips": ["198.18.9.%d" % (count % 250)], "wait": True}, answers=2)
        ok(ans == [{"status": "registered"}, {"status": "programmed"}],
           "%d idle HTTP connections held: a CNI registration is programmed" % count, ans)
        ag.call({"op": "del", "container_id": cid, "ifname": "eth0"})
        n = nfds(ag.proc.pid)
        ok(0 < n < 200, "the agent's descriptors stay bounded (%d)" % n)
        rej = ag.metric("kvnet_agent_connections_rejected_total", 'listener="http"') or 0
        ok(rej >= count - 64, "the excess is counted as rejected (%d)" % rej)
        for s in held:
            s.close()
    # a slow client and idle ones are closed by the agent after the timeout
    slow = socket.create_connection(("127.0.0.1", ag.port))
    slow.sendall(b"GET /heal")  # and nothing more
    idle = [socket.create_connection(("127.0.0.1", ag.port)) for _ in range(10)]
    st_, body = ag.get("/healthz")
    ok(st_ == 200, "a slow client and 10 idle ones: /healthz answers meanwhile")
    ok(al.wait_for(lambda: (ag.metric("kvnet_agent_connections_timed_out_total",
                                      'listener="http"') or 0) > 0, timeout=20),
       "idle HTTP connections are timed out (counted: %s)" % ag.metric(
           "kvnet_agent_connections_timed_out_total", 'listener="http"'))
    slow.settimeout(20)
    try:
        gone = slow.recv(100) == b""
    except (ConnectionResetError, socket.timeout):
        gone = True
    slow.close()
    for s in idle:
        s.close()
    ok(gone, "the slow HTTP client (half a request head) is closed by the agent")
    ok(ag.metric("kvnet_agent_connections", 'listener="cni"') is not None,
       "open connections are reported per listener")
    ok(ag.stop() == 0, "agent stops cleanly", ag.logtext()[-2000:])
    al.sh("ip", "link", "del", "kv0a1b2c3d4e5", check=False)
    al.finish()


if __name__ == "__main__":
    main()
