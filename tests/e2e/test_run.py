"""`hotd run` must be as close to a plain `python` run as possible: argv, sys.path[0], __file__,
the __main__ module (pickling its classes), stdin, exit status, tracebacks, `-m`."""

import json
import os
import signal
import subprocess
import time
import unittest

from hotd_testing import HOTD, PYTHON, HotdTestCase

PROBE = """\
import json, os, pickle, sys

class Point:
    def __init__(self, x):
        self.x = x

line = sys.stdin.readline().strip()
print(json.dumps({
    "argv": sys.argv,
    "path0": sys.path[0],
    "file": __file__,
    "name": __name__,
    "main_is_module": sys.modules["__main__"] is sys.modules[__name__],
    "pickled": pickle.loads(pickle.dumps(Point(3))).x,
    "stdin": line,
    "main_thread_ok": __import__("threading").main_thread() is __import__("threading").current_thread(),
}))
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
"""


class RunLikePython(HotdTestCase):
    def run_both(self, args, cwd, stdin="hello\n"):
        plain = subprocess.run([PYTHON] + args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=30)
        under = subprocess.run([HOTD, "run", "--python", PYTHON] + args, cwd=cwd, input=stdin, capture_output=True,
                               text=True, timeout=30, env=self.env)
        return plain, under

    def test_script_sees_what_a_plain_run_sees(self):
        self.write("pkg/probe.py", PROBE)
        plain, under = self.run_both(["pkg/probe.py", "a b", "--flag", "3"], cwd=self.work)
        self.assertEqual(plain.returncode, 3, plain.stderr)
        self.assertEqual(under.returncode, 3, under.stderr)
        self.assertEqual(json.loads(under.stdout), json.loads(plain.stdout))
        self.assertEqual(under.stderr, "")

    def test_module_run_sees_what_python_m_sees(self):
        self.write("pkg/__init__.py", "")
        self.write("pkg/probe.py", PROBE)
        plain, under = self.run_both(["-m", "pkg.probe", "x", "0"], cwd=self.work)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(under.returncode, 0, under.stderr)
        self.assertEqual(json.loads(under.stdout), json.loads(plain.stdout))

    def test_uncaught_exception_prints_the_programs_traceback_only(self):
        script = self.write("boom.py", "def f():\n    raise ValueError('boom')\n\nf()\n")
        plain, under = self.run_both([script], cwd=self.work)
        self.assertEqual(under.returncode, 1)
        self.assertEqual(under.stderr, plain.stderr)
        self.assertNotIn("hotd_run", under.stderr)

    def test_missing_script_and_missing_interpreter(self):
        result = self.hotd("run", "--python", PYTHON, os.path.join(self.work, "nope.py"), check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("can't open file", result.stderr)
        result = self.hotd("run", "--python", "/no/such/python", "x.py", check=False)
        self.assertEqual(result.returncode, 127)
        self.assertIn("cannot run '/no/such/python'", result.stderr)
        result = self.hotd("run", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("give a script", result.stderr)

    def test_sigint_ends_the_program_like_python(self):
        script = self.write("wait.py", "import time\nprint('ready', flush=True)\ntime.sleep(30)\n")
        process = subprocess.Popen([HOTD, "run", "--python", PYTHON, script], env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        self.assertEqual(process.stdout.readline().strip(), "ready")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
        self.assertEqual(process.returncode, -signal.SIGINT)  # as python: killed by SIGINT after the traceback
        self.assertIn("KeyboardInterrupt", err)
        process.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
