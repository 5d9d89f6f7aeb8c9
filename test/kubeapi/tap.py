"""tap — run a unittest module and print one TAP-style line per test for test/run.

    if __name__ == "__main__":
        tap.main()

Prints "ok - Class.test_name", "not ok - Class.test_name" (with the traceback as # lines)
or "ok - ... # SKIP why"; exits 1 when anything failed. KUBEAPI_TIMES=1 adds a "# N s NAME"
comment line per test.
"""

import os
import sys
import time
import unittest


class _Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.t0 = {}

    def _name(self, test):
        return "%s.%s" % (type(test).__name__, test._testMethodName) \
            if isinstance(test, unittest.TestCase) and hasattr(test, "_testMethodName") \
            else str(test)

    def startTest(self, test):
        super().startTest(test)
        self.t0[test] = time.monotonic()

    def stopTest(self, test):
        super().stopTest(test)
        if os.environ.get("KUBEAPI_TIMES"):
            print("# %.2f s %s" % (time.monotonic() - self.t0[test], self._name(test)),
                  flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        print("ok - %s" % self._name(test), flush=True)

    def _fail(self, test, err, what):
        print("not ok - %s (%s)" % (self._name(test), what), flush=True)
        for line in self._exc_info_to_string(err, test).rstrip().splitlines():
            print("# " + line, flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print("ok - %s # SKIP %s" % (self._name(test), reason), flush=True)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        print("ok - %s # expected failure" % self._name(test), flush=True)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        print("not ok - %s (unexpected success)" % self._name(test), flush=True)


def main(module="__main__"):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    if len(sys.argv) > 1:  # run only tests whose name contains an argument
        keep = sys.argv[1:]
        flat = []

        def walk(s):
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    walk(t)
                elif any(k in t.id() for k in keep):
                    flat.append(t)
        walk(suite)
        suite = unittest.TestSuite(flat)
    res = _Result()
    t0 = time.monotonic()
    suite.run(res)
    n = res.testsRun
    bad = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    print("# %d tests, %d failed, %.1f s" % (n, bad, time.monotonic() - t0), flush=True)
    if n == 0:
        print("not ok - no tests ran", flush=True)
        sys.exit(1)
    sys.exit(1 if bad else 0)
