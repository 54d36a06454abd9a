#!/usr/bin/env python3
"""Attach time: from the start of `hotd attach <pid>` until the agent is registered with the daemon
(the command returns only then), for fresh idle targets and for re-attaching after a detach.

usage: bench/attach_bench.py [--hotd build/server/hotd] [--runs 30] [--python /usr/bin/python3]
Prints one line per case with the median, p90, min and max in milliseconds.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

IDLE = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(name, values):
    print("%-34s median %6.1f ms  p90 %6.1f ms  min %6.1f ms  max %6.1f ms  (%d runs)" % (
        name, statistics.median(values), percentile(values, 0.9), min(values), max(values), len(values)))


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hotd", default=os.path.join(root, "build", "server", "hotd"))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--python", default="/usr/bin/python3")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="hotd-attach-bench-")
    env = dict(os.environ, HOTD_RUNTIME_DIR=os.path.join(work, "runtime"))
    script = os.path.join(work, "idle.py")
    with open(script, "w") as out:
        out.write(IDLE)

    def hotd(*command):
        return subprocess.run([args.hotd] + list(command), env=env, capture_output=True, text=True, check=True)

    def start_target():
        target = subprocess.Popen([args.python, script], stdout=subprocess.PIPE, text=True)
        target.stdout.readline()
        time.sleep(0.1)  # settled in its sleep loop
        return target

    def timed_attach(pid):
        started = time.perf_counter()
        hotd("attach", str(pid))
        return (time.perf_counter() - started) * 1000.0

    try:
        hotd("ps")  # the daemon is up before timing starts
        fresh = []
        for _ in range(args.runs):
            target = start_target()
            fresh.append(timed_attach(target.pid))
            target.kill()
            target.wait()
            target.stdout.close()
        report("fresh idle target", fresh)

        again = []
        target = start_target()
        timed_attach(target.pid)
        for _ in range(args.runs):
            hotd("detach", str(target.pid))
            while str(target.pid) in hotd("ps").stdout:
                time.sleep(0.005)
            again.append(timed_attach(target.pid))
        target.kill()
        target.wait()
        target.stdout.close()
        report("re-attach after detach", again)
    finally:
        subprocess.run([args.hotd, "stop"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
