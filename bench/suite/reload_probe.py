"""The `importlib.reload` baseline, run in a plain Python process: write a new version of a module,
reload it, check the new behaviour. Prints the milliseconds of each reload (JSON list) to stdout.

usage: reload_probe.py DIRECTORY {small,large} RUNS
"""

import importlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from suite.harness import large_module, small_module, write_file  # noqa: E402

MODULES = {"small": small_module, "large": large_module}


def main():
    directory, kind, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    make_text = MODULES[kind]
    path = os.path.join(directory, "reloaded_%s.py" % kind)
    write_file(path, make_text(0))
    sys.path.insert(0, directory)
    sys.dont_write_bytecode = True  # a saved file is always recompiled; no cache to read either
    module = importlib.import_module("reloaded_%s" % kind)
    times = []
    for version in range(1, runs + 1):
        write_file(path, make_text(version))
        started = time.monotonic_ns()
        importlib.reload(module)
        if module.probe() != version:
            raise SystemExit("reload did not load version %d" % version)
        times.append((time.monotonic_ns() - started) / 1e6)
    json.dump(times, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
