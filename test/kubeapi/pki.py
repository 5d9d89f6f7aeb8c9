#!/usr/bin/env python3
"""pki — make a throw-away PKI with the openssl command: a CA, a server certificate with
DNS and IP SANs, client certificates (CN = user, O = group), and a bearer-token file.

    python3 test/kubeapi/pki.py DIR [--host 198.18.0.1 ...] [--client NAME[:GROUP] ...]

make(dir, hosts, clients, key_type) -> dict of paths; ensure(dir, hosts) makes the
default set only when DIR/ca.crt is missing. Keys are EC P-256 (key_type="ec") or RSA 2048
("rsa"); both are what BearSSL and real clusters use.
"""

import argparse
import ipaddress
import os
import secrets
import subprocess

DEFAULT_CLIENTS = (("admin", "system:masters"), ("kvnet-agent", "kvnet:agents"),
                   ("kvnet-cni", "kvnet:cni"))


def _run(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("pki: openssl %s failed: %s" % (args[0], p.stderr.strip()))


def _key(path, cwd, key_type):
    if key_type == "rsa":
        _run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
              "-out", path], cwd)
    else:
        _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", path], cwd)
    os.chmod(os.path.join(cwd, path), 0o600)


def _sign(cwd, name, subj, ext, days):
    with open(os.path.join(cwd, name + ".ext"), "w", encoding="utf-8") as f:
        f.write(ext)
    _run(["req", "-new", "-key", name + ".key", "-subj", subj, "-out", name + ".csr"], cwd)
    _run(["x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
          "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", name + ".ext",
          "-out", name + ".crt"], cwd)
    os.unlink(os.path.join(cwd, name + ".csr"))
    os.unlink(os.path.join(cwd, name + ".ext"))


def make(d, hosts=("127.0.0.1",), clients=DEFAULT_CLIENTS, key_type="ec", days=30,
         tokens=None):
    """Make the PKI in directory d (created if needed). hosts: names and addresses for the
    server certificate (localhost, 127.0.0.1 and ::1 are always added). clients: (user,
    group or None). tokens: {token: (user, [groups])}, default one random token for
    "kvnet-test" in group system:masters. Returns {"ca_cert", "ca_key", "server_cert",
    "server_key", "tokens", "token", "clients": {user: (cert, key)}}."""
    os.makedirs(d, exist_ok=True)
    _key("ca.key", d, key_type)
    _run(["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=kvnet-test-ca",
          "-days", str(days), "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt"], d)
    names, ips = ["localhost", "kubernetes", "kubernetes.default.svc"], ["127.0.0.1", "::1"]
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            if h not in ips:
                ips.append(h)
        except ValueError:
            if h not in names:
                names.append(h)
    san = ",".join(["DNS:" + n for n in names] + ["IP:" + i for i in ips])
    _key("server.key", d, key_type)
    _sign(d, "server", "/CN=kube-apiserver",
          "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
          "keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san, days)
    out = {"ca_cert": os.path.join(d, "ca.crt"), "ca_key": os.path.join(d, "ca.key"),
           "server_cert": os.path.join(d, "server.crt"),
           "server_key": os.path.join(d, "server.key"), "clients": {}}
    for user, group in clients:
        add_client(d, user, group, out)
    if tokens is None:
        tokens = {secrets.token_hex(16): ("kvnet-test", ["system:masters"])}
    tpath = os.path.join(d, "tokens")
    write_tokens(tpath, tokens)
    out["tokens"] = tpath
    out["token"] = next(iter(tokens))
    return out


def add_client(d, user, group=None, out=None, days=30):
    """Make d/client-USER.crt/.key signed by d's CA; returns (cert, key)."""
    base = "client-" + user.replace(":", "_").replace("/", "_")
    kt = "rsa" if _is_rsa(os.path.join(d, "ca.key")) else "ec"
    _key(base + ".key", d, kt)
    subj = "/CN=%s" % user + ("/O=%s" % group if group else "")
    _sign(d, base, subj, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,"
          "digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n", days)
    pair = (os.path.join(d, base + ".crt"), os.path.join(d, base + ".key"))
    if out is not None:
        out["clients"][user] = pair
    return pair


def _is_rsa(path):
    p = subprocess.run(["openssl", "pkey", "-in", path, "-noout", "-text"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return "RSA" in p.stdout.splitlines()[0] if p.stdout else False


def write_tokens(path, tokens):
    """Replace the token file atomically (the server re-reads it on change)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for tok, (user, groups) in tokens.items():
            f.write('%s,%s,%s,"%s"\n' % (tok, user, user, ",".join(groups)))
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def ensure(d, hosts=("127.0.0.1",)):
    """Paths of the PKI in d, making it first when d/ca.crt does not exist."""
    if not os.path.exists(os.path.join(d, "ca.crt")):
        return make(d, hosts=hosts)
    out = {"ca_cert": os.path.join(d, "ca.crt"), "ca_key": os.path.join(d, "ca.key"),
           "server_cert": os.path.join(d, "server.crt"),
           "server_key": os.path.join(d, "server.key"), "tokens": os.path.join(d, "tokens"),
           "clients": {}}
    with open(out["tokens"], encoding="utf-8") as f:
        first = f.readline()
    out["token"] = first.split(",")[0].strip()
    for n in os.listdir(d):
        if n.startswith("client-") and n.endswith(".crt"):
            base = n[:-4]
            out["clients"][base[len("client-"):]] = (os.path.join(d, n),
                                                      os.path.join(d, base + ".key"))
    return out


def main():
    ap = argparse.ArgumentParser(description="make a test PKI for the kvnet test API server")
    ap.add_argument("dir")
    ap.add_argument("--host", action="append", default=[], help="server SAN (name or IP)")
    ap.add_argument("--client", action="append", default=[], help="USER[:GROUP]")
    ap.add_argument("--rsa", action="store_true", help="RSA 2048 keys instead of EC P-256")
    a = ap.parse_args()
    clients = [tuple(c.split(":", 1)) if ":" in c else (c, None) for c in a.client] \
        or DEFAULT_CLIENTS
    out = make(a.dir, hosts=a.host or ["127.0.0.1"], clients=clients,
               key_type="rsa" if a.rsa else "ec")
    print("ca %s\nserver %s %s\ntokens %s (token %s)" % (out["ca_cert"], out["server_cert"],
                                                         out["server_key"], out["tokens"],
                                                         out["token"]))
    for u, (c, k) in out["clients"].items():
        print("client %s %s %s" % (u, c, k))


if __name__ == "__main__":
    main()
