"""Workflows users bring from other reload tools: the pytest fix loop (Mighty Patcher's
--reload-loop), module hooks and patching from code (jurigged's Recoder, hotload's hooks)."""

import json
import os
import subprocess
import time
import unittest

from hotd_testing import HOTD, PYTHON, HotdTestCase, wait_for


class PytestLoop(HotdTestCase):
    def test_a_failing_test_waits_for_a_save_and_passes_in_the_same_process(self):
        self.write("src/calc/__init__.py", "def add(a, b):\n    return a - b\n")
        self.write("tests/test_calc.py", "import os\nfrom calc import add\n\nPID = os.getpid()\n\n"
                                         "def test_add():\n    assert add(2, 3) == 5\n\n"
                                         "def test_same_process():\n    assert os.getpid() == PID\n")
        out = open(os.path.join(self.work, "pytest.txt"), "w+")
        process = subprocess.Popen(
            [HOTD, "run", "--python", PYTHON, "-m", "pytest", "-p", "hotd_agent.pytest_plugin", "--hotd-loop",
             "--hotd-package-root", "src", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=self.work, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        process.out_path, process.err_path, process.out_file, process.err_file = out.name, out.name, out, None
        self.processes.append(process)
        self.wait_output(process, "edit and save to run tests/test_calc.py::test_add again", timeout=30)
        self.assertIn("assert -1 == 5", self.output(process))
        self.assertIsNone(process.poll())  # waiting, not reported as a failure
        self.write("src/calc/__init__.py", "def add(a, b):\n    return a + b\n")
        self.assertEqual(process.wait(timeout=30), 0, self.output(process))
        self.assertIn("tests/test_calc.py::test_add passed after 2 attempts", self.output(process))
        self.assertIn("2 passed", self.output(process))

    def test_loop_without_hotd_is_a_usage_error(self):
        self.write("tests/test_x.py", "def test_x():\n    pass\n")
        # The plugin importable without an agent: what a user gets running plain pytest with it.
        runtime_python = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "python"))
        env = dict(self.env, PYTHONPATH=runtime_python)
        result = subprocess.run([PYTHON, "-m", "pytest", "-p", "hotd_agent.pytest_plugin", "--hotd-loop", "tests"],
                                cwd=self.work, env=env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--hotd-loop needs live patching", result.stdout + result.stderr)


APP = """\
import sys, time
import hotd_agent

def greet():
    return "disk"

events = []

@hotd_agent.before_patch(module="__main__")
def before(module, changes):
    events.append("before %d" % len(changes))

@hotd_agent.after_patch(module="__main__")
def after(module, results):
    events.append("after " + ",".join(r["status"] for r in results))

@hotd_agent.after_patch(module="some.other.module")
def never(module, results):
    events.append("wrong module")

def command(line):
    if line == "patch_function":
        result = hotd_agent.patch_function(greet, 'def greet():\\n    return "from code"\\n')
        return "ok=%s" % result["ok"]
    if line == "revert":
        return "ok=%s" % hotd_agent.revert(sys.modules["__main__"])["ok"]
    return "unknown"

for line in sys.stdin:
    line = line.strip()
    if line == "show":
        print(greet(), "|", "; ".join(events), flush=True)
    else:
        print(command(line), flush=True)
"""


class ProgrammaticApi(HotdTestCase):
    def ask(self, process, line):
        process.stdin.write(line + "\n")
        process.stdin.flush()
        return wait_for(lambda: process.stdout.readline().strip(), message="an answer to " + line)

    def test_hooks_and_patching_from_code(self):
        app = self.write("app.py", APP)
        process = subprocess.Popen([HOTD, "run", "--python", PYTHON, "--no-watch", app], env=self.env, text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.out_file, process.err_file = process.stdout, process.stderr
        self.processes.append(process)
        self.assertEqual(self.ask(process, "show"), "disk |")
        self.write("app.py", APP.replace('return "disk"', 'return "saved"'))
        self.hotd("patch", app)
        self.assertEqual(self.ask(process, "show"), "saved | before 1; after updated")
        self.assertEqual(self.ask(process, "patch_function"), "ok=True")  # the process patches itself
        self.assertTrue(self.ask(process, "show").startswith("from code |"))
        self.assertEqual(self.ask(process, "revert"), "ok=True")  # back to the file on disk
        self.assertTrue(self.ask(process, "show").startswith("saved |"))
        self.assertNotIn("wrong module", self.ask(process, "show"))


LOOP = "import time\n\ndef value():\n    return %d\n\nwhile True:\n    print('value=%%s' %% value(), flush=True)\n    time.sleep(0.05)\n"


class HistoryAndRevert(HotdTestCase):
    def test_log_lists_versions_and_revert_goes_one_back(self):
        app = self.write("app.py", LOOP % 1)
        process = self.start(app, options=["--no-watch"])
        self.wait_attached(process)
        self.assertIn("only version", self.hotd("revert", app, check=False).stderr)
        for number in (2, 3):
            self.write("app.py", LOOP % number)
            self.hotd("patch", app)
        self.wait_output(process, "value=3")
        log = self.hotd("log", app).stdout.splitlines()
        self.assertEqual(len(log), 3, log)
        self.assertIn("loaded by the processes", log[0])
        self.assertIn("pid %d applied" % process.pid, log[2])
        result = self.hotd("revert", app)
        self.assertIn("pid %d: applied" % process.pid, result.stdout)
        self.wait_output(process, "value=2")
        entries = json.loads(self.hotd("log", "--json").stdout)["entries"]
        self.assertEqual([entry["origin"] for entry in entries], ["loaded", "save", "save", "save"])
        with open(app) as source:
            self.assertIn("return 3", source.read())  # the file on disk is untouched


if __name__ == "__main__":
    unittest.main(verbosity=2)
