#!/usr/bin/env python3
"""test/bench/json-gen.py FIXTURE OUT [N] — write N (default 10000) pod watch events.

Each line is {"type": ..., "object": POD} built from the fixture virt-launcher pod with a
different name, uid, resourceVersion, node, phase, VM name and owner UID, so no two
events are alike (as in a real watch of a busy cluster). Deterministic (fixed seed).
"""
import copy
import json
import random
import sys
import uuid


def main():
    fixture, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    base = json.load(open(fixture))
    rnd = random.Random(20261122)
    types = ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    phases = ["Pending", "Running", "Running", "Succeeded", "Failed"]
    with open(out, "w") as f:
        for i in range(n):
            pod = copy.deepcopy(base)
            md = pod["metadata"]
            vm = "vm-%05d" % rnd.randrange(100000)
            suffix = "".join(rnd.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            vmi_uid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            md["name"] = "virt-launcher-%s-%s" % (vm, suffix)
            md["generateName"] = "virt-launcher-%s-" % vm
            md["namespace"] = "tenant-%d" % rnd.randrange(40)
            md["uid"] = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            md["resourceVersion"] = str(100000 + i * 3 + rnd.randrange(3))
            node = "node-%d" % rnd.randrange(64)
            md["labels"]["kubevirt.io/created-by"] = vmi_uid
            md["labels"]["vm.kubevirt.io/name"] = vm
            md["labels"]["vmi.kubevirt.io/id"] = vm
            md["labels"]["kubevirt.io/vm"] = vm
            md["labels"]["kubevirt.io/nodeName"] = node
            md["annotations"]["kubevirt.io/domain"] = vm
            md["ownerReferences"][0]["name"] = vm
            md["ownerReferences"][0]["uid"] = vmi_uid
            pod["spec"]["hostname"] = vm
            pod["spec"]["nodeName"] = node
            pod["status"]["phase"] = rnd.choice(phases)
            ip = "198.18.%d.%d" % (rnd.randrange(256), rnd.randrange(1, 255))
            pod["status"]["podIP"] = ip
            pod["status"]["podIPs"] = [{"ip": ip}]
            ev = {"type": rnd.choice(types), "object": pod}
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
