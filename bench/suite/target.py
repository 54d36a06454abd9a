"""The program a benchmark runs (under `hotd run`, or plain python for baselines): it imports the
modules named on the command line and loops, probing each; whenever a probe's value changes it writes
`<module> <value> <time.monotonic_ns()>` to stdout, so the harness, on the same CLOCK_MONOTONIC, sees
when the process first ran the new code.

Probes: `value` calls `probe()`; `traceback` calls `fail()` and reports the line of the raising
frame in the module (what a traceback would show); `state` reports `version()` and the module-level
`VERSION` (a function update and a re-run statement).
"""

import argparse
import importlib
import os
import sys
import time


def probe_value(module):
    return str(module.probe())


def probe_traceback(module):
    try:
        module.fail()
    except Exception as error:
        frame = error.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        return str(frame.tb_lineno)
    raise AssertionError("fail() returned")


def probe_state(module):
    return "%s/%s" % (module.version(), module.VERSION)


PROBES = {"value": probe_value, "traceback": probe_traceback, "state": probe_state}


def report(name, value):
    os.write(1, ("%s %s %d\n" % (name, value, time.monotonic_ns())).encode())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", required=True, help="comma-separated module names")
    parser.add_argument("--probe", choices=sorted(PROBES), default="value")
    parser.add_argument("--interval", type=float, default=0.0002, help="seconds between probes")
    parser.add_argument("--ballast", type=int, default=0, help="extra live (gc-tracked) objects")
    parser.add_argument("--idle", action="store_true", help="import, report once, then only sleep")
    args = parser.parse_args()

    # Lists, not ints or strings: each one is tracked by the garbage collector, so a patcher that
    # scans the heap (gc.get_objects, gc.get_referrers) pays for every one of them.
    ballast = [[i] for i in range(args.ballast)]  # noqa: F841 (kept alive on purpose)
    probe = PROBES[args.probe]
    modules = [(name, importlib.import_module(name)) for name in args.modules.split(",")]
    last = {}
    for name, module in modules:
        last[name] = probe(module)
        report(name, last[name])
    os.write(1, b"ready\n")
    if args.idle:
        while True:
            time.sleep(3600)
    while True:
        for name, module in modules:
            value = probe(module)
            if value != last[name]:
                last[name] = value
                report(name, value)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
