#!/usr/bin/env python3
"""Runs Python unittest tests for CTest and says in its exit code what happened:
  0   every test ran and passed
  1   a test failed or raised, a name matched nothing, or no test ran
  77  at least one test was skipped and none failed (CTest's SKIP_RETURN_CODE shows it as Skipped)
The skipped tests are listed at the end with their reasons.

  run_unittest.py test_module.Class [test_module.Class.test_x ...]

Names are resolved from the current directory (CTest's WORKING_DIRECTORY), as `python3 -m unittest`
does. `python3 -m unittest` exits 0 when everything was skipped, so a test whose tool is missing
passed silently; this runner is what tells the two apart."""

import os
import sys
import unittest

SKIPPED = 77


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    sys.path.insert(0, os.getcwd())
    suite = unittest.defaultTestLoader.loadTestsFromNames(argv[1:])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    sys.stdout.flush()
    if result.failures or result.errors or result.unexpectedSuccesses:
        return 1
    if result.testsRun == 0 and not result.skipped:
        print("run_unittest: no test ran", file=sys.stderr)
        return 1
    if result.skipped:
        print(f"run_unittest: {len(result.skipped)} skipped, none failed:")
        for test, reason in result.skipped:
            print(f"  SKIPPED {test.id()}: {reason}")
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
