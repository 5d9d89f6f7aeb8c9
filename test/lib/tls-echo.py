#!/usr/bin/env python3
"""tls-echo — a TLS echo server for the kube/tls tests (python3 stdlib only).

    tls-echo.py --cert F --key F [--client-ca F] [--host H ...]

Listens on an ephemeral port on each --host (default 127.0.0.1) and prints the ports,
one line each, in order, then serves until killed. Each connection gets a greeting
"hello CN\n" (CN of the client certificate, "-" without one), then everything it sends
is echoed back; the line "bye\n" is answered with "bye\n" and a TLS close_notify.
With --client-ca, a client certificate signed by that CA is required.
"""
import argparse
import socket
import ssl
import sys
import threading


def serve_one(ctx, raw):
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as ex:
        print(f"tls-echo: handshake: {ex}", file=sys.stderr, flush=True)
        raw.close()
        return
    try:
        cn = "-"
        cert = s.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
        s.sendall(f"hello {cn}\n".encode())
        pending = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            pending = (pending + data)[-4:]
            if pending.endswith(b"bye\n"):
                if len(data) > 4:
                    s.sendall(data[:-4])
                s.sendall(b"bye\n")
                s = s.unwrap()
                break
            s.sendall(data)
    except (ssl.SSLError, OSError) as ex:
        print(f"tls-echo: {ex}", file=sys.stderr, flush=True)
    finally:
        s.close()


def accept_loop(ctx, lsock):
    while True:
        c, _ = lsock.accept()
        threading.Thread(target=serve_one, args=(ctx, c), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--host", action="append")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.load_verify_locations(a.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    socks = []
    for h in a.host or ["127.0.0.1"]:
        fam = socket.AF_INET6 if ":" in h else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((h, 0))
        ls.listen(16)
        socks.append(ls)
        print(ls.getsockname()[1], flush=True)
    for ls in socks[1:]:
        threading.Thread(target=accept_loop, args=(ctx, ls), daemon=True).start()
    accept_loop(ctx, socks[0])


if __name__ == "__main__":
    main()
