#!/usr/bin/env python3
"""Golden tests of `kvnet ipamctl`: every command and output format, against the file
datastore and against the test API server (kubernetes datastore), over the planted world
of world.py. Each case's recorded text is stdout, then "# stderr" and stderr if any, then
"# exit N" when the status is not 0; it must equal CASE.DATASTORE.ok here. Every `-o json`
output is parsed back with python3's json module. The cases run in order: the read-only
ones first, then a sequence that changes the state (reserve, import, release, pool).
--update rewrites the .ok files instead of comparing (make golden-update)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "kubeapi"))
sys.dont_write_bytecode = True
import world  # noqa: E402

KVNET = os.path.join(world.ROOT, "dist", "kvnet")
UPDATE = "--update" in sys.argv
fails = 0


def ok(cond, name, diag=None):
    global fails
    print(("ok - " if cond else "not ok - ") + name)
    if not cond:
        fails += 1
        for line in str(diag or "").splitlines()[:60]:
            print("#   " + line)
    sys.stdout.flush()


GOOD_CSV = """namespace,vm,ip,mac,network
default,vm-c,198.18.0.40,02:00:00:00:00:40,
default,vm-c,2001:db8:77::40,,
other,vm-d,198.18.0.41,,othernet
"""
BAD_CSV = """namespace,vm,ip,mac,network
default,vm-e,198.18.0.42,02:00:00:00:00:42,
Default,vm-f,198.18.0.43,,
default,vm-g,10.1.2.3,,
default,vm-h,198.18.0.2,,
default,vm-i,198.18.0.44,01:00:5e:00:00:01,
default,vm-j,198.18.0.42,,
default,vm-k,198.18.0.45
"""
# One MAC per VM and network (issue #17): vm-m2 repeats vm-m1's MAC (other case), vm-m3
# takes vm-c's (imported by GOOD_CSV into the default network); vm-m4's is free.
DUPMAC_CSV = """namespace,vm,ip,mac,network
default,vm-m1,198.18.0.52,02:00:00:00:00:5a,
default,vm-m2,198.18.0.53,02:00:00:00:00:5A,
default,vm-m3,198.18.0.54,02:00:00:00:00:40,
default,vm-m4,198.18.0.56,02:00:00:00:00:56,
"""

# (name, args, stdin-file-content or None). {R} is the report file.
READ_ONLY = [
    ("show", ["show"]),
    ("show-wide", ["show", "-o", "wide"]),
    ("show-json", ["show", "-o", "json"]),
    ("show-blocks", ["show", "--blocks"]),
    ("show-blocks-wide", ["show", "--blocks", "-o", "wide"]),
    ("show-blocks-json", ["show", "--blocks", "-o", "json"]),
    ("show-ip-vm", ["show", "--ip", "198.18.0.4"]),
    ("show-ip-vm-json", ["show", "--ip", "198.18.0.4", "-o", "json"]),
    ("show-ip-pod", ["show", "--ip", "2001:db8:77::2"]),
    ("show-ip-free", ["show", "--ip", "198.18.0.30"]),
    ("show-ip-nopool", ["show", "--ip", "10.0.0.1"]),
    ("show-ip-bad", ["show", "--ip", "198.18.0.300"]),
    ("show-vm", ["show", "--vm", "default/vm-a"]),
    ("show-vm-wide", ["show", "--vm", "default/vm-a", "-o", "wide"]),
    ("show-vm-json", ["show", "--vm", "default/vm-a", "-o", "json"]),
    ("show-vm-reserved", ["show", "--vm", "default/vm-r"]),
    ("show-vm-none", ["show", "--vm", "default/nothing"]),
    ("show-borrowed", ["show", "--borrowed"]),
    ("show-borrowed-json", ["show", "--borrowed", "-o", "json"]),
    ("show-configuration", ["show", "--configuration"]),
    ("show-configuration-json", ["show", "--configuration", "-o", "json"]),
    ("pool-list", ["pool", "list"]),
    ("pool-list-json", ["pool", "list", "-o", "json"]),
    ("check", ["check", "--vm-grace-seconds", "0"]),
    ("check-json", ["check", "--vm-grace-seconds", "0", "-o", "json"]),
    ("check-grace", ["check"]),
    ("usage-none", []),
    ("usage-unknown", ["frobnicate"]),
    ("usage-output", ["show", "-o", "yaml"]),
    ("usage-modes", ["show", "--blocks", "--ip", "198.18.0.2"]),
    ("usage-flag", ["check", "--mac", "02:00:00:00:00:01"]),
    ("usage-release", ["release"]),
    ("usage-reserve", ["reserve", "--vm", "default/vm-z"]),
    ("usage-reserve-vm", ["reserve", "--vm", "vm-z", "--ip", "198.18.0.50"]),
    ("usage-reserve-mac", ["reserve", "--vm", "default/vm-z", "--ip", "198.18.0.50",
                           "--mac", "zz:00:00:00:00:01"]),
    ("usage-pool", ["pool", "resize", "198.18.0.0/24"]),
    ("usage-datastore", ["show", "--datastore", "etcd"]),
]

SEQUENCE = [
    ("reserve", ["reserve", "--vm", "default/vm-z", "--ip", "198.18.0.50", "--mac",
                 "02:00:00:00:00:50", "--network", "vmnet"]),
    ("reserve-again", ["reserve", "--vm", "default/vm-z", "--ip", "198.18.0.50", "--mac",
                       "02:00:00:00:00:50", "--network", "vmnet"]),
    ("reserve-json", ["reserve", "--vm", "default/vm-z", "--ip", "2001:db8:77::50",
                      "--network", "vmnet", "-o", "json"]),
    ("reserve-held", ["reserve", "--vm", "default/vm-y", "--ip", "198.18.0.2"]),
    ("reserve-outside", ["reserve", "--vm", "default/vm-y", "--ip", "198.19.0.1"]),
    ("reserve-second", ["reserve", "--vm", "default/vm-z", "--ip", "198.18.0.51",
                        "--network", "vmnet"]),
    ("show-vm-z", ["show", "--vm", "default/vm-z"]),
    ("import", ["import", "{GOOD}"]),
    ("import-again", ["import", "{GOOD}"]),
    ("import-bad", ["import", "{BAD}"]),
    ("import-bad-json", ["import", "{BAD}", "-o", "json"]),
    ("import-partial", ["import", "{BAD}", "--partial"]),
    ("import-missing", ["import", "{TMP}/missing.csv"]),
    ("release-live", ["release", "--ip", "198.18.0.2"]),
    ("release-reserved", ["release", "--ip", "198.18.0.6"]),
    ("release-leaked", ["release", "--ip", "198.18.0.3"]),
    ("release-notallocated", ["release", "--ip", "198.18.0.3"]),
    ("release-handle-live", ["release", "--handle", "kvt.c-live3"]),
    ("release-handle-force", ["release", "--handle", "kvt.c-live3", "--force", "-o", "json"]),
    ("check-report", ["check", "--vm-grace-seconds", "0", "-o", "{R}"]),
    ("release-report", ["release", "--from-report", "{R}", "--vm-grace-seconds", "0"]),
    ("release-report-again", ["release", "--from-report", "{R}", "--vm-grace-seconds", "0",
                              "-o", "json"]),
    ("check-after", ["check", "--vm-grace-seconds", "0"]),
    ("release-bad-report", ["release", "--from-report", "{BADR}"]),
    ("pool-add", ["pool", "add", "198.18.8.0/24", "--block-size", "28"]),
    ("pool-add-again", ["pool", "add", "198.18.8.0/24"]),
    ("pool-add-overlap", ["pool", "add", "198.18.0.0/16"]),
    ("pool-add-json", ["pool", "add", "198.18.9.0/24", "-o", "json"]),
    ("pool-delete-busy", ["pool", "delete", "198.18.0.0/24"]),
    ("pool-delete", ["pool", "delete", "198.18.8.0/24"]),
    ("pool-delete-none", ["pool", "delete", "198.18.8.0/24"]),
    ("pool-list-after", ["pool", "list", "-o", "wide"]),
    ("configure-bad", ["configure", "--kubevirt-ip-persistence=Maybe"]),
    ("configure-disable", ["configure", "--kubevirt-ip-persistence=Disabled"]),
    ("configure-again", ["configure", "--kubevirt-ip-persistence", "Disabled"]),
    ("show-configuration-after", ["show", "--configuration"]),
    ("configure-enable-json", ["configure", "--kubevirt-ip-persistence=Enabled", "-o", "json"]),
    ("show-configuration-after-json", ["show", "--configuration", "-o", "json"]),
    # duplicate MACs: refused with both VMs named, nothing written (vm-m1 stays unknown)
    ("import-dup-mac", ["import", "{DUPMAC}"]),
    ("import-dup-mac-json", ["import", "{DUPMAC}", "-o", "json"]),
    ("show-vm-m1", ["show", "--vm", "default/vm-m1"]),
    ("reserve-dup-mac", ["reserve", "--vm", "default/vm-y", "--ip", "198.18.0.55", "--mac",
                         "02:00:00:00:00:04", "--network", "vmnet"]),
    ("reserve-dup-mac-imported", ["reserve", "--vm", "default/vm-y", "--ip", "198.18.0.55",
                                  "--mac", "02:00:00:00:00:40"]),
    ("show-vm-y", ["show", "--vm", "default/vm-y"]),
    # vm-a's MAC is vm-a's on vmnet only: another network may give it to another VM
    ("reserve-mac-othernet", ["reserve", "--vm", "default/vm-y", "--ip", "198.18.0.55",
                              "--mac", "02:00:00:00:00:04"]),
]

# The L2 world (world.py, issue #13): show --network, the L2 problems of check, release
# --network; in order (the releases change the state).
L2_CASES = [
    ("l2-show", ["show", "--network", "vlan100"]),
    ("l2-show-wide", ["show", "--network", "vlan100", "-o", "wide"]),
    ("l2-show-json", ["show", "--network", "vlan100", "-o", "json"]),
    ("l2-show-nopool", ["show", "--network", "vlan200"]),
    ("l2-show-unknown", ["show", "--network", "vlan999"]),
    ("l2-show-unknown-json", ["show", "--network", "vlan999", "-o", "json"]),
    ("l2-usage-modes", ["show", "--network", "vlan100", "--vm", "default/vm-a"]),
    ("l2-check", ["check", "--vm-grace-seconds", "0"]),
    ("l2-check-json", ["check", "--vm-grace-seconds", "0", "-o", "json"]),
    ("l2-release-elsewhere", ["release", "--network", "vlan100", "--ip", "198.18.0.5"]),
    ("l2-release-handle-elsewhere", ["release", "--network", "vlan100", "--handle",
                                     "vlan100.vmi.default.vm-s"]),
    ("l2-release-live", ["release", "--network", "vlan100", "--ip", "198.18.100.10"]),
    ("l2-release-force", ["release", "--network", "vlan100", "--ip", "2001:db8:100::a",
                          "--force"]),
    ("l2-release-reserved", ["release", "--network", "vlan100", "--handle",
                             "vlan100.vmi.default.vm-gw", "--force"]),
    ("l2-show-after", ["show", "--network", "vlan100"]),
    ("l2-check-report", ["check", "--vm-grace-seconds", "0", "-o", "{R}"]),
    ("l2-release-report-othernet", ["release", "--from-report", "{R}", "--network", "vlan200",
                                    "--vm-grace-seconds", "0"]),
]


class Env:
    def __init__(self, ds, tmp, api):
        self.ds, self.tmp, self.api = ds, tmp, api
        self.state = os.path.join(tmp, "state")
        self.home = os.path.join(tmp, "home")
        os.makedirs(self.home)
        self.kc = api.write_kubeconfig(os.path.join(tmp, "kubeconfig")) if api else None
        self.files = {"{GOOD}": os.path.join(tmp, "good.csv"),
                      "{BAD}": os.path.join(tmp, "bad.csv"),
                      "{R}": os.path.join(tmp, "report.json"),
                      "{BADR}": os.path.join(tmp, "bad-report.json"),
                      "{DUPMAC}": os.path.join(tmp, "dupmac.csv"), "{TMP}": tmp}
        with open(self.files["{GOOD}"], "w") as f:
            f.write(GOOD_CSV)
        with open(self.files["{BAD}"], "w") as f:
            f.write(BAD_CSV)
        with open(self.files["{DUPMAC}"], "w") as f:
            f.write(DUPMAC_CSV)
        with open(self.files["{BADR}"], "w") as f:
            f.write('{"kind":"IPAMCheckReport","problems":[{"kind":"Leak","repair":"x"}]}')

    def run(self, args, global_args=True):
        a = []
        for x in args:
            for k, v in self.files.items():
                x = x.replace(k, v)
            a.append(x)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home}
        g = ["-c", "/dev/null"]
        if self.ds == "file":
            g += ["--datastore", "file", "--state-dir", self.state]
        else:
            g += ["--datastore", "kubernetes"]
        if self.kc:
            g += ["--kubeconfig", self.kc]
        cmd = [KVNET, "ipamctl"] + (a if not args or not global_args else g + a)
        if not args:
            cmd = [KVNET, "ipamctl"]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        return p

    def record(self, p):
        def clean(s):
            s = s.replace(self.tmp, "$TMP")
            if self.api:
                s = s.replace(self.api.url, "$API")
            return s
        out = clean(p.stdout)
        if p.stderr:
            out += "# stderr\n" + clean(p.stderr)
        if p.returncode:
            out += "# exit %d\n" % p.returncode
        return out


def compare(name, text):
    path = os.path.join(HERE, name + ".ok")
    if UPDATE:
        with open(path, "w") as f:
            f.write(text)
        ok(True, "golden ipamctl: %s (updated)" % name)
        return
    if not os.path.exists(path):
        ok(False, "golden ipamctl: %s: no .ok file (run make golden-update and review)" % name)
        return
    with open(path) as f:
        want = f.read()
    if want == text:
        ok(True, "golden ipamctl: " + name)
    else:
        import difflib
        d = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                         "want", "got"))
        ok(False, "golden ipamctl: " + name, d)


def run_cases(env, cases):
    for name, args in cases:
        p = env.run(args)
        compare("%s.%s" % (name, env.ds), env.record(p))
        if "-o" in args and args[args.index("-o") + 1] == "json" and p.stdout.strip():
            try:
                json.loads(p.stdout)
                ok(True, "ipamctl %s %s: -o json parses" % (env.ds, name))
            except ValueError as e:
                ok(False, "ipamctl %s %s: -o json parses" % (env.ds, name), e)


def main():
    if not os.access(KVNET, os.X_OK):
        ok(False, "dist/kvnet is missing (run make)")
        sys.exit(1)
    from client import KubeAPI
    # file datastore (the API server only tells who is alive)
    for ds in ("file", "kube"):
        tmp = tempfile.mkdtemp(prefix="kvt-%d-ipamctl-" % os.getpid())
        api = KubeAPI(listen="127.0.0.1:0")
        try:
            world.crds(api)
            world.load_api(api)
            env = Env(ds, tmp, api)
            if ds == "file":
                world.plant_file(env.state)
            else:
                world.plant_kube(api)
            run_cases(env, READ_ONLY)
            run_cases(env, SEQUENCE)
            # the report round trip: what check wrote, release read (kinds and repairs)
            if ds == "file":
                noapi = Env("file", tempfile.mkdtemp(prefix="kvt-%d-ipamctl-" % os.getpid()),
                            None)
                world.plant_file(noapi.state)
                try:
                    run_cases(noapi, [("check-noapi", ["check"]),
                                      ("release-noapi", ["release", "--ip", "198.18.0.3"])])
                finally:
                    shutil.rmtree(noapi.tmp, ignore_errors=True)
        finally:
            api.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    # the L2 world, each datastore on an API server of its own
    for ds in ("file", "kube"):
        tmp = tempfile.mkdtemp(prefix="kvt-%d-ipamctl-" % os.getpid())
        api = KubeAPI(listen="127.0.0.1:0")
        try:
            world.crds(api)
            world.load_api(api)
            env = Env(ds, tmp, api)
            if ds == "file":
                world.plant_l2_file(env.state)
            else:
                world.plant_l2_kube(api)
            run_cases(env, L2_CASES)
        finally:
            api.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
