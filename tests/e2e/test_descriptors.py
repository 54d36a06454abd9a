"""Programs that close or reuse descriptors (issue 14, point 3): a program that closes every number
it did not open (os.closerange) and then opens files of its own must run under `hotd run` as under
plain python: the agent must not close, read or write a number that is no longer its own, its import
hook must not write into the program's files, and patching must still work afterwards."""

import os
import subprocess
import unittest

from hotd_testing import PYTHON, HotdTestCase, wait_for

# Closes every descriptor above stderr, then opens files (taking the numbers the agent had) and
# imports modules (which wake the agent) while they are open; any byte the agent wrote into them, or
# a number it took back, shows as a damaged file or an exception. With `serve`, it then runs on.
CLOSERANGE_APP = """\
import importlib
import os
import sys
import tempfile
import time


def value():
    return "before"


os.closerange(3, 1000)
work = tempfile.mkdtemp()
sys.path.insert(0, work)
damaged = []
for i in range(60):
    with open(os.path.join(work, "data%d.txt" % i), "w+") as data:
        data.write("line %d\\n" % i)
        data.flush()
        with open(os.path.join(work, "mod%d.py" % i), "w") as module:
            module.write("X = %d\\n" % i)
        importlib.import_module("mod%d" % i)
        data.seek(0)
        if data.read() != "line %d\\n" % i:
            damaged.append(i)
    time.sleep(0.01)
print("damaged=%s" % damaged, flush=True)
while sys.argv[1:] == ["serve"]:
    print("value=%s" % value(), flush=True)
    time.sleep(0.05)
print("done")
"""


class ClosedDescriptors(HotdTestCase):
    def setUp(self):
        super().setUp()
        self.hotd("serve", "--quiet")
        self.app = self.write("app.py", CLOSERANGE_APP)

    def test_a_program_closing_every_descriptor_runs_as_under_plain_python(self):
        plain = subprocess.run([PYTHON, self.app], capture_output=True, text=True, timeout=60)
        self.assertEqual((plain.returncode, plain.stdout), (0, "damaged=[]\ndone\n"), plain.stderr)
        for run in range(4):
            process = self.start(self.app, options=["--no-watch"])
            self.assertEqual(process.wait(timeout=60), plain.returncode, "run %d: %s" % (run, self.errors(process)))
            self.assertEqual(self.output(process), plain.stdout, "run %d: %s" % (run, self.errors(process)))

    def test_patching_works_after_the_program_closed_the_agents_descriptors(self):
        process = self.start(self.app, "serve", options=["--no-watch"])
        self.wait_output(process, "value=before")
        self.assertIn("damaged=[]", self.output(process))
        self.wait_attached(process)
        self.write("app.py", CLOSERANGE_APP.replace('return "before"', 'return "after"'))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", self.app).stdout)
        self.wait_output(process, "value=after")

    def test_a_patch_that_closes_every_descriptor_leaves_the_agent_able_to_patch_again(self):
        process = self.start(self.app, "serve", options=["--no-watch"])
        self.wait_output(process, "value=before")
        self.wait_attached(process)
        # The patched function closes the agent's numbers once, and opens a file that takes one.
        closing = CLOSERANGE_APP.replace('    return "before"', (
            '    if "kept" not in globals():\n'
            '        os.closerange(3, 1000)\n'
            '        globals()["kept"] = open(__file__)\n'
            '    return "closed"'))
        self.write("app.py", closing)
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", self.app).stdout)
        self.wait_output(process, "value=closed")
        wait_for(lambda: "process %d disconnected" % process.pid in self.daemon_log(),
                 message="the daemon to see the connection the program closed")
        self.wait_attached(process)
        self.write("app.py", CLOSERANGE_APP.replace('return "before"', 'return "after"'))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", self.app).stdout)
        self.wait_output(process, "value=after")
        self.assertIsNone(process.poll())


if __name__ == "__main__":
    unittest.main()
