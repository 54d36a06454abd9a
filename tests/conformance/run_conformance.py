#!/usr/bin/env python3
"""Conformance suite of the Python patcher: every case in a fresh process of one interpreter.

    run_conformance.py --hotd build/server/hotd --python 3.12 [--apply in-process] [-k NAME] [--jobs 2]

A case (cases/*.case) is data: sections `@@@ v1`, `@@@ v2`, `@@@ setup`, `@@@ check` and an optional
`@@@ options` (`as_main: true` also runs the file as `__main__`, so two modules come from it).
The process loads v1 as module `mod`, runs setup, the save to v2 is applied, then check runs in the
same namespace with `result` (what apply_plan returned) and helpers (see driver.py).

How a save reaches the process is one function, selected with --apply; today `in-process` (plan from
`hotd diff --json`, applied by the driver calling apply_plan from a foreign thread).

Exit status: 0 all passed, 1 a case failed, 77 (ctest SKIP_RETURN_CODE) the interpreter is missing.
"""

import argparse
import atexit
import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "runtime", "python", "hotd_agent"))
SKIP = 77
CASE_TIMEOUT = 30  # seconds for one reply of the driver


def parse_case(path):
    sections = {}
    current = None
    with open(path) as f:
        for line in f:
            if line.startswith("@@@ "):
                current = line[4:].strip()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
    case = {k: "".join(v) for k, v in sections.items()}
    missing = {"v1", "v2", "setup", "check"} - set(case)
    if missing:
        raise ValueError("%s: missing sections %s" % (path, ", ".join(sorted(missing))))
    options = {}
    for line in case.get("options", "").splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
    case["options"] = options
    case["name"] = os.path.splitext(os.path.basename(path))[0]
    return case


def find_python(spec):
    """`system` is /usr/bin/python3; `3.12` is the newest pyenv 3.12.x. None when not installed."""
    if spec == "system":
        return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
    if os.path.sep in spec:
        return spec if os.path.exists(spec) else None
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = glob.glob(os.path.join(root, "versions", spec + ".*", "bin", "python3"))
    found = [p for p in found if p.split(os.sep)[-3].replace(".", "").isdigit()]
    found.sort(key=lambda p: [int(x) for x in p.split(os.sep)[-3].split(".")])
    return found[-1] if found else None


class Session:
    """The driver process of one case: request/reply over its stdin and stdout."""

    def __init__(self, python, workdir):
        # -S: no site-packages .pth hooks, which on some installs import threading at startup and
        # would hide what the agent imports.
        self.proc = subprocess.Popen([python, "-S", "-X", "faulthandler", os.path.join(HERE, "driver.py")],
                                     cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, universal_newlines=True)

    def request(self, message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("driver exited:\n" + self.close())
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(reply["traceback"])
        return reply

    def close(self):
        """Ends the driver; returns its stderr (only the first call gets it)."""
        if self.proc.returncode is not None:
            return ""
        try:
            _, err = self.proc.communicate(timeout=CASE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def apply_in_process(hotd, session, module_path, new_text):
    """Save `new_text` over the module file, compute the plan with `hotd diff --json` from the text the
    process runs, and have the process apply it itself. Returns apply_plan's result."""
    old_copy = module_path + ".old"
    shutil.copyfile(module_path, old_copy)
    with open(module_path, "w") as f:
        f.write(new_text)
    diff = subprocess.run([hotd, "diff", "--json", old_copy, module_path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if diff.returncode not in (0, 1):
        raise RuntimeError("hotd diff failed (%d): %s" % (diff.returncode, diff.stderr))
    plan = json.loads(diff.stdout)
    return session.request({"cmd": "apply", "plan": plan, "filename": module_path})["result"]


APPLIERS = {"in-process": apply_in_process}


def run_case(case, python, hotd, apply):
    """Returns (passed, details)."""
    workdir = tempfile.mkdtemp(prefix="hotd-conf-")
    module_path = os.path.join(workdir, "mod.py")
    with open(module_path, "w") as f:
        f.write(case["v1"])
    session = Session(python, workdir)
    try:
        session.request({"cmd": "load", "agent": AGENT_DIR, "path": module_path, "workdir": workdir,
                         "as_main": case["options"].get("as_main") == "true", "setup": case["setup"]})
        result = apply(hotd, session, module_path, case["v2"])
        session.request({"cmd": "check", "check": case["check"], "result": result})
        return True, ""
    except Exception as error:
        return False, "%s\nresult: %s\ndriver stderr:\n%s" % (
            error, json.dumps(locals().get("result"), indent=1)[:4000], session.close()[-2000:])
    finally:
        session.close()
        shutil.rmtree(workdir, ignore_errors=True)


def snapshot_binary(path, wait_seconds=60):
    """A private copy of hotd: the build directory is shared, and a relink during the run (the file
    briefly missing or not executable) must not fail cases."""
    copy = os.path.join(tempfile.mkdtemp(prefix="hotd-conf-bin-"), "hotd")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            shutil.copyfile(path, copy)
            os.chmod(copy, 0o755)
            subprocess.run([copy, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            atexit.register(shutil.rmtree, os.path.dirname(copy), True)
            return copy
        except (OSError, subprocess.CalledProcessError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hotd", required=True, help="path of the hotd binary")
    parser.add_argument("--python", default="system", help="`system`, a pyenv version like 3.12, or a path")
    parser.add_argument("--apply", default="in-process", choices=sorted(APPLIERS))
    parser.add_argument("-k", dest="filter", default="", help="run only cases whose name contains this")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    python = find_python(args.python)
    if python is None:
        print("SKIP: interpreter %s is not installed" % args.python)
        return SKIP
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    hotd = snapshot_binary(args.hotd)
    cases = [parse_case(p) for p in sorted(glob.glob(os.path.join(HERE, "cases", "*.case")))]
    cases = [c for c in cases if args.filter in c["name"]]
    apply = APPLIERS[args.apply]
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = pool.map(lambda c: run_case(c, python, hotd, apply), cases)
        for case, (passed, details) in zip(cases, outcomes):
            print("%s %s (python %s)" % ("PASS" if passed else "FAIL", case["name"], version), flush=True)
            if not passed:
                failed += 1
                print("    " + details.replace("\n", "\n    "), flush=True)
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
