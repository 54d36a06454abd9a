#!/usr/bin/env python3
"""Conformance suite of the Python patcher: every case in a fresh process of one interpreter.

    run_conformance.py --hotd build/server/hotd --python 3.12 [--apply daemon] [-k NAME] [--jobs 2]

A case (cases/*.case) is data: sections `@@@ v1`, `@@@ v2`, `@@@ setup`, `@@@ check` and an optional
`@@@ options` (`as_main: true` also runs the file as `__main__`, so two modules come from it).
The process loads v1 as module `mod`, runs setup, the save to v2 is applied, then check runs in the
same namespace with `result` (what apply_plan returned) and helpers (see driver.py).

How a save reaches the process is an applier, selected with --apply: `in-process` (plan from
`hotd diff --json`, applied by the driver calling apply_plan from a foreign thread) or `daemon` (the
driver runs under `hotd run`, one daemon per run patches it through its agent after `hotd patch`).

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
DRIVER = os.path.join(HERE, "driver.py")
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

    def __init__(self, command, workdir, env=None):
        self.proc = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


def save_file(path, text):
    """Write the way editors often save: a temporary file renamed over the original."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class InProcessApplier:
    """The plan comes from `hotd diff --json` against the text the process runs; the driver applies
    it itself, calling apply_plan from a foreign thread as the native agent does."""

    def __init__(self, hotd, python):
        self.hotd = hotd
        self.python = python

    def start(self, workdir):
        # -S: no site-packages .pth hooks, which on some installs import threading at startup and
        # would hide what the agent imports.
        return Session([self.python, "-S", "-X", "faulthandler", DRIVER], workdir)

    def load_extras(self):
        return {"agent": AGENT_DIR}

    def save(self, session, module_path, new_text):
        """Returns apply_plan's result."""
        old_copy = module_path + ".old"
        shutil.copyfile(module_path, old_copy)
        save_file(module_path, new_text)
        diff = subprocess.run([self.hotd, "diff", "--json", old_copy, module_path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        if diff.returncode not in (0, 1):
            raise RuntimeError("hotd diff failed (%d): %s" % (diff.returncode, diff.stderr))
        plan = json.loads(diff.stdout)
        return session.request({"cmd": "apply", "plan": plan, "filename": module_path})["result"]

    def close(self):
        pass


class DaemonApplier:
    """The product path: one daemon for the whole run, in a private runtime directory; each driver
    runs under `hotd run --no-watch`, its native agent registers and reports the modules it imports,
    and the save goes through `hotd patch --json` right after the driver loaded the case, as a user
    saves right after the program is ready; it waits for every process's answer."""

    # How the daemon sums up one process's answer, from the agent's result.
    EXPECTED_STATUS = {True: "applied", False: ("partial", "failed")}

    def __init__(self, hotd, python):
        self.hotd = hotd
        self.python = python
        self.runtime = tempfile.mkdtemp(prefix="hotd-conf-rt-")
        self.env = dict(os.environ, HOTD_RUNTIME_DIR=self.runtime, PYTHONFAULTHANDLER="1")
        self.hotd_command("serve", "--quiet")

    def hotd_command(self, *args):
        done = subprocess.run([self.hotd] + list(args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=CASE_TIMEOUT)
        if done.returncode not in (0, 1):
            raise RuntimeError("hotd %s exited %d: %s%s" % (" ".join(args), done.returncode, done.stdout, done.stderr))
        return done

    def start(self, workdir):
        # As a user would: nothing waits for the daemon to know the process or its modules; the save
        # comes as soon as the driver says it loaded the case (`hotd run` registers the agent first).
        return Session([self.hotd, "run", "--no-watch", "--python", self.python, DRIVER], workdir, self.env)

    def load_extras(self):
        return {}

    @staticmethod
    def refusal_result(report):
        """The daemon sends no plan for a text with syntax errors: it reports them itself. In the form
        of apply_plan's results for such a plan (PATCHING.md), so cases check both paths alike."""
        results = [{"op": None, "kind": "module", "qualname": None, "line": error["line"], "status": "failed",
                    "message": "the daemon refused the save", "module": None, "stale": [], "running_frames": 0,
                    "caches_cleared": [], "error": {"type": "SyntaxError", "message": error["message"], "traceback": ""}}
                   for error in report["errors"]]
        return {"ok": False, "elapsed_ms": 0.0, "results": results}

    def save(self, session, module_path, new_text):
        """Returns the agent's result for this process, as `hotd patch --json` reports it."""
        save_file(module_path, new_text)
        report = json.loads(self.hotd_command("patch", module_path, "--json").stdout)
        if report["errors"]:
            if report["processes"] or report["ok"]:
                raise AssertionError("a save with syntax errors reached processes: %s" % json.dumps(report))
            return self.refusal_result(report)
        processes = [p for p in report["processes"] if p["pid"] == session.proc.pid]
        if len(processes) != 1:
            raise AssertionError("expected one answer of pid %d, got %s" % (session.proc.pid, json.dumps(report)))
        process = processes[0]
        result = process["result"]
        expected = self.EXPECTED_STATUS[result.get("ok") is True]
        if process["status"] not in expected:
            raise AssertionError("the daemon reported %r for a result with ok=%r: %s"
                                 % (process["status"], result.get("ok"), json.dumps(process)[:2000]))
        if report["ok"] != result.get("ok"):
            raise AssertionError("`hotd patch` says ok=%r, the process ok=%r" % (report["ok"], result.get("ok")))
        return result

    def close(self):
        self.hotd_command("stop")
        shutil.rmtree(self.runtime, ignore_errors=True)


APPLIERS = {"in-process": InProcessApplier, "daemon": DaemonApplier}


def run_case(case, applier):
    """Returns (passed, details)."""
    workdir = tempfile.mkdtemp(prefix="hotd-conf-")
    module_path = os.path.join(workdir, "mod.py")
    with open(module_path, "w") as f:
        f.write(case["v1"])
    as_main = case["options"].get("as_main") == "true"
    session = None
    result = None
    try:
        session = applier.start(workdir)
        session.request(dict(applier.load_extras(), cmd="load", path=module_path, workdir=workdir, as_main=as_main,
                             setup=case["setup"]))
        result = applier.save(session, module_path, case["v2"])
        session.request({"cmd": "check", "check": case["check"], "result": result})
        return True, ""
    except Exception as error:
        return False, "%s\nresult: %s\ndriver stderr:\n%s" % (
            error, json.dumps(result, indent=1)[:4000], session.close()[-2000:] if session else "")
    finally:
        if session:
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
    parser.add_argument("--load", action="store_true",
                        help="keep a CPU-bound process running beside the cases, as on a busy machine")
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
    applier = APPLIERS[args.apply](hotd, python)
    if args.load:
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        atexit.register(burner.kill)
    failed = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = pool.map(lambda c: run_case(c, applier), cases)
            for case, (passed, details) in zip(cases, outcomes):
                print("%s %s (python %s, %s)" % ("PASS" if passed else "FAIL", case["name"], version, args.apply),
                      flush=True)
                if not passed:
                    failed += 1
                    print("    " + details.replace("\n", "\n    "), flush=True)
    finally:
        applier.close()
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
