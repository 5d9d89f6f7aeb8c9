"""labtap — TAP lines for the lab scenarios ("ok - NAME" / "not ok - NAME" / "# SKIP"),
counted by test/run."""
import sys

failures = 0


def ok(cond, name, diag=None):
    global failures
    if cond:
        print("ok - " + name)
    else:
        failures += 1
        print("not ok - " + name)
        if diag is not None:
            for line in str(diag).splitlines()[:60]:
                print("#   " + line)
    sys.stdout.flush()
    return bool(cond)


def skip(name, why):
    print("ok - %s # SKIP %s" % (name, why))
    sys.stdout.flush()


def note(msg):
    for line in str(msg).splitlines():
        print("# " + line)
    sys.stdout.flush()


def status():
    return 1 if failures else 0
