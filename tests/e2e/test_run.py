"""`hotd run` must be as close to a plain `python` run as possible: argv, sys.path[0], __file__,
the __main__ module (pickling its classes), stdin, exit status, tracebacks, `-m`."""

import json
import os
import signal
import subprocess
import time
import unittest

from hotd_testing import HOTD, PYTHON, HotdTestCase, pyenv_python

PROBE = """\
import json, os, pickle, sys

class Point:
    def __init__(self, x):
        self.x = x

line = sys.stdin.readline().strip()
print(json.dumps({
    "argv": sys.argv,
    "path": sys.path,
    "environ": dict(os.environ),
    "file": __file__,
    "name": __name__,
    "main_is_module": sys.modules["__main__"] is sys.modules[__name__],
    "pickled": pickle.loads(pickle.dumps(Point(3))).x,
    "stdin": line,
    "main_thread_ok": __import__("threading").main_thread() is __import__("threading").current_thread(),
}))
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
"""


# Python 3.8 keeps a script's path as given on the command line in __file__ and co_filename.
PYTHON38 = pyenv_python("3.8")

RELATIVE_SCRIPT = """\
import sys, traceback

def banner():
    return "v1"

def boom():
    raise ValueError("v1")

print("ready", __file__, flush=True)
for line in sys.stdin:
    try:
        boom()
    except ValueError:
        frame = traceback.extract_tb(sys.exc_info()[2])[-1]
        print(banner(), frame.filename, frame.lineno, frame.line, flush=True)
"""


# hotd_start.hand_down: what the environment of a program under `hotd run` has more than a plain run's.
SITE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "python", "hotd_site"))


class RunLikePython(HotdTestCase):
    def run_both(self, args, cwd, stdin="hello\n"):
        plain = subprocess.run([PYTHON] + args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=30,
                               env=self.env)
        under = subprocess.run([HOTD, "run", "--python", PYTHON] + args, cwd=cwd, input=stdin, capture_output=True,
                               text=True, timeout=30, env=self.env)
        return plain, under

    def assertSameView(self, under, plain):
        """Equal, but for the environment the program's Python children inherit from hotd."""
        under, plain = json.loads(under.stdout), json.loads(plain.stdout)
        environ = under.pop("environ")
        user_path = self.env.get("PYTHONPATH")
        self.assertEqual(environ.pop("PYTHONPATH"), SITE_DIR + os.pathsep + user_path if user_path else SITE_DIR)
        self.assertEqual(sorted(set(environ) - set(plain["environ"])), ["HOTD_AGENT_CONFIG", "HOTD_AGENT_LIB"])
        for name in ("HOTD_AGENT_CONFIG", "HOTD_AGENT_LIB"):
            del environ[name]
        plain["environ"].pop("PYTHONPATH", None)
        self.assertEqual(environ, plain.pop("environ"))
        self.assertEqual(under, plain)

    def test_script_sees_what_a_plain_run_sees(self):
        self.write("pkg/probe.py", PROBE)
        plain, under = self.run_both(["pkg/probe.py", "a b", "--flag", "3"], cwd=self.work)
        self.assertEqual(plain.returncode, 3, plain.stderr)
        self.assertEqual(under.returncode, 3, under.stderr)
        self.assertSameView(under, plain)
        self.assertEqual(under.stderr, "")

    def test_pythonpath_of_the_user_is_kept(self):
        # sys.path as in a plain run; PYTHONPATH in the environment has hotd_site before the user's.
        self.write("pkg/probe.py", PROBE)
        self.env["PYTHONPATH"] = os.pathsep.join([os.path.join(self.work, "lib"), "/nonexistent"])
        plain, under = self.run_both(["pkg/probe.py", "x", "0"], cwd=self.work)
        self.assertEqual(under.returncode, 0, under.stderr)
        self.assertIn(os.path.join(self.work, "lib"), json.loads(under.stdout)["path"])
        self.assertSameView(under, plain)

    def test_module_run_sees_what_python_m_sees(self):
        self.write("pkg/__init__.py", "")
        self.write("pkg/probe.py", PROBE)
        plain, under = self.run_both(["-m", "pkg.probe", "x", "0"], cwd=self.work)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(under.returncode, 0, under.stderr)
        self.assertSameView(under, plain)

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


@unittest.skipIf(PYTHON38 is None, "pyenv 3.8 is not installed")
class RelativeScriptPath(HotdTestCase):
    def test_functions_of_a_script_run_by_a_relative_path_are_patched_on_3_8(self):
        script = self.write("main.py", RELATIVE_SCRIPT)
        process = self.start("main.py", options=["--no-watch"], python=PYTHON38, cwd=self.work)
        self.wait_output(process, "ready main.py")  # relative, as in a plain 3.8 run
        self.write("main.py", RELATIVE_SCRIPT.replace('"v1"', '"v2"').replace(
            '    raise ValueError', '    # one line lower\n    raise ValueError'))
        result = self.hotd("patch", script)
        self.assertIn("updated banner (line 3)", result.stdout)
        self.assertIn("updated boom (line 6)", result.stdout)
        process.stdin.write(b"call\n")
        process.stdin.flush()
        # The new code carries the name the running code uses: tracebacks read as in a plain run.
        self.wait_output(process, 'v2 main.py 8 raise ValueError("v2")')
        self.write("main.py", RELATIVE_SCRIPT.replace('"v1"', '"v3"'))
        self.assertIn("updated banner (line 3)", self.hotd("reload", script).stdout)  # in place, not rebound
        process.stdin.write(b"call\n")
        process.stdin.flush()
        self.wait_output(process, 'v3 main.py 7 raise ValueError("v3")')


class Interactive(HotdTestCase):
    def test_i_opens_a_prompt_in_the_programs_namespace_that_stays_patched(self):
        script = self.write("prog.py", "def f():\n    return 1\nstate = 41\nraise ValueError('boom')\n")
        process = subprocess.Popen([HOTD, "run", "--python", PYTHON, "--no-watch", "-i", script], env=self.env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process.out_file, process.err_file = process.stdout, process.stderr
        self.processes.append(process)
        banner = ""
        while "its code is still live-patched" not in banner:
            line = process.stderr.readline()
            self.assertTrue(line, "the prompt never opened; stderr: " + banner)
            banner += line
        self.assertIn("ValueError: boom", banner)  # the program's traceback, as python -i prints it
        process.stdin.write("print('first', f(), state + 1)\n")
        process.stdin.flush()
        self.assertEqual(process.stdout.readline().strip(), "first 1 42")
        self.write("prog.py", "def f():\n    return 2\nstate = 41\nraise ValueError('boom')\n")
        self.assertIn("applied", self.hotd("patch", script).stdout)
        process.stdin.write("print('second', f())\n")
        process.stdin.close()
        self.assertEqual(process.stdout.readline().strip(), "second 2")
        self.assertEqual(process.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
