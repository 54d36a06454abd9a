#!/usr/bin/env python3
"""hotd's benchmark suite: save-to-live latencies (LSP, daemon socket, file watcher), line shifts,
heap independence, fan-out, attach, idle cost, daemon footprint, bursts, parse + diff, and the
baselines (restarting with numpy + pandas, importlib.reload), measured side by side in one run.

usage: bench/run.py [--quick] [--no-docs] [--only CASE ...]
Prints a Markdown table; a full run also writes it into docs/PERFORMANCE.md (the generated section)
with the machine, the command and the date. --quick (under a minute, for CI) writes nothing.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite import cases, report  # noqa: E402
from suite.harness import ROOT, Bench  # noqa: E402

DEFAULT_HOTD = os.path.join(ROOT, "build", "server", "hotd")

# name -> (case, its arguments in a full run, in a quick run); cases take (bench, *arguments, results).
# Quick runs use smaller heaps and fewer processes, to stay under a minute; the labels say so.
CASES = {
    "save": (cases.save_to_live, (100,), (8,)),
    "watcher": (cases.file_watcher, (100,), (8,)),
    "shift": (cases.line_shift, (50, 1000000), (5, 100000)),
    "heap": (cases.heap_independence, (100, 3000000), (8, 300000)),
    "fanout": (cases.fan_out, (30, (1, 8, 32)), (4, (1, 8))),
    "attach": (cases.attach, (30,), (3,)),
    "idle": (cases.idle_cost, (10.0,), (2.0,)),
    "footprint": (cases.daemon_footprint, (1000, 32), (200, 8)),
    "burst": (cases.burst, (3, 4), (1, 2)),
    "restart": (cases.restart, (10,), (2,)),
    "reload": (cases.reload, (100,), (10,)),
    "parse_diff": (cases.parse_diff, (False,), (True,)),
    "lsp_change": (cases.lsp_change, (False,), (True,)),
}


def ratio_rows(results):
    rows = []
    for baseline, measured, label in (
            ("restart heavy", "save small", "restart with numpy + pandas / hotd save, small module"),
            ("reload small", "save small", "importlib.reload / hotd save, small module"),
            ("reload large", "save large", "importlib.reload / hotd save, 5,000-line module")):
        if baseline in results and measured in results:
            ratio = results[baseline].median / results[measured].median
            rows.append(report.Row("ratio: " + label + " (medians; hotd via LSP didSave)", "%.0fx" % ratio
                                   if ratio >= 10 else "%.1fx" % ratio))
    return rows


def machine():
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) / 1024 / 1024
    return "%s, %d cores, %.0f GiB, %s %s" % (model, os.cpu_count(), memory, platform.system(), platform.release())


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def revision():
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return commit + (" with uncommitted changes in the tree" if dirty else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few runs, short windows: a smoke run for CI")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/PERFORMANCE.md")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), help="run only these cases")
    parser.add_argument("--hotd", default=DEFAULT_HOTD, help="the hotd binary (its build has the agent)")
    parser.add_argument("--python", default="/usr/bin/python3", help="the interpreter of the target processes")
    parser.add_argument("--docs", default=os.path.join(ROOT, "docs", "PERFORMANCE.md"))
    args = parser.parse_args()

    started = time.monotonic()
    load_before = load()
    bench = Bench(os.path.abspath(args.hotd), args.python, args.quick)
    rows, results = [], {}
    try:
        bench.start_daemon()
        for name, (case, full, quick) in CASES.items():
            if args.only and name not in args.only:
                continue
            case_started = time.monotonic()
            rows += case(bench, *(quick if args.quick else full), results)
            sys.stderr.write("bench: %s done in %.1f s\n" % (name, time.monotonic() - case_started))
    finally:
        bench.close()
    rows += ratio_rows(results)

    command = "bench/run.py" + (" --quick" if args.quick else "") + (" --only " + " ".join(args.only) if args.only else "")
    header = "\n".join([
        "## Benchmark suite (issue 7)", "",
        "```sh", "cmake --build build -j2", command, "```", "",
        "- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "- machine: %s; load average (1, 5, 15 min) %s before, %s after; %.0f s in all"
        % (machine(), load_before, load(), time.monotonic() - started),
        "- hotd: repository at %s%s; targets: %s (Python %s)" % (
            revision(), "" if args.hotd == DEFAULT_HOTD else ", binary " + args.hotd, args.python, subprocess.run(
            [args.python, "-c", "import platform; print(platform.python_version())"], capture_output=True,
            text=True).stdout.strip()),
        "- times are from the save leaving the harness to the target process reporting the new behaviour "
        "(CLOCK_MONOTONIC on both sides); the targets probe every 0.2 ms (fan-out, bursts: every 1 ms), "
        "which bounds the resolution; p99 of fewer than 100 runs is the maximum or close to it."])
    text = report.section(rows, header)
    print(text)
    if not args.quick and not args.no_docs and not args.only:
        report.write_section(args.docs, text)
        sys.stderr.write("bench: wrote the table into %s\n" % args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
