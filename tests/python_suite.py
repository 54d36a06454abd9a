"""Runs one unittest module as one ctest test (`hotd_python_suites` in tests/CMakeLists.txt), from the
module's directory:

    python3 tests/python_suite.py MODULE

Exit status: 0 when every test ran and passed; 77 (the tests' SKIP_RETURN_CODE) when none failed and
at least one test or subtest was skipped, so ctest reports the suite as skipped rather than passed;
1 when a test failed, or when the module holds no test. The skipped tests and their reasons are
listed last (docs/TESTING.md)."""

import os
import sys
import unittest

SKIPPED = 77


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python_suite.py MODULE")
    sys.path.insert(0, os.getcwd())  # as `python -m unittest` does: the suite imports its neighbours
    suite = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    for test, reason in result.skipped:
        sys.stderr.write("SKIPPED %s: %s\n" % (test.id(), reason))
    if not result.wasSuccessful():
        return 1
    if result.testsRun == 0:
        sys.stderr.write("%s holds no test\n" % sys.argv[1])
        return 1
    if result.skipped:
        sys.stderr.write("%d skipped (tests or subtests) of %d tests run: the suite is reported as skipped\n"
                         % (len(result.skipped), result.testsRun))
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
