"""The agent inside real processes under `hotd run`: which modules it reports to the daemon, and
processes that fork (os.fork, multiprocessing) getting agents of their own."""

import json
import os
import unittest

from hotd_testing import HotdTestCase, kill_if_alive, wait_for


class ModuleReports(HotdTestCase):
    def known_files(self, pid):
        """{file: [module names]} the daemon knows process `pid` runs."""
        for process in json.loads(self.hotd("ps", "--json").stdout)["processes"]:
            if process["pid"] == pid:
                return {entry["file"]: entry["modules"] for entry in process["files"]}
        return {}

    def wait_known(self, process, path, modules):
        wait_for(lambda: sorted(self.known_files(process.pid).get(path, [])) == sorted(modules),
                 message="the daemon to know %s as %s in %d (it knows %r)" % (path, modules, process.pid,
                                                                               self.known_files(process.pid)))

    def ask(self, process, line):
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()

    def test_module_imported_after_registration_is_reported(self):
        # The import hook fires when the import starts; the agent thread drains while the importer
        # searches the path (a long one here, as with many installed packages), before the module is
        # in sys.modules, and must look again.
        self.write("late.py", "def value():\n    return 1\n")
        for index in range(300):
            os.makedirs(os.path.join(self.work, "path", str(index)))
        app = self.write("app.py", "import os, sys\nsys.stdin.readline()\n"
                                   "sys.path[:0] = [os.path.join('%s', 'path', str(i)) for i in range(300)]\n"
                                   "import late\nprint('imported', flush=True)\n"
                                   "for line in sys.stdin:\n    print('late=%%s' %% late.value(), flush=True)\n"
                                   % self.work)
        process = self.start(app, options=["--no-watch"])
        self.wait_attached(process)
        self.ask(process, "import")
        self.wait_output(process, "imported")
        late = os.path.join(self.work, "late.py")
        self.wait_known(process, late, ["late"])
        self.write("late.py", "def value():\n    return 2\n")
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", late).stdout)
        self.ask(process, "value")
        self.wait_output(process, "late=2")

    def test_script_that_imports_nothing_is_reported_as_main(self):
        # The agent may register before the bootstrap hands `__main__` over to the program.
        source = "def value():\n    return %d\n\nfor line in iter(input, 'stop'):\n    print('value=%%s' %% value(), flush=True)\n"
        app = self.write("app.py", source % 1)
        process = self.start(app, options=["--no-watch"])
        self.wait_known(process, app, ["__main__"])
        self.assertEqual(list(self.known_files(process.pid)), [app])  # not the bootstrap
        self.write("app.py", source % 2)
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.ask(process, "value")
        self.wait_output(process, "value=2")

    def test_module_under_two_names_is_patched_once(self):
        # multiprocessing puts __main__ in sys.modules as __mp_main__ too: one module, one patch.
        source = ("import multiprocessing, sys\nLOG = []\nLOG.append('%s')\n\n"
                  "for line in sys.stdin:\n    print('log=%%s' %% LOG, flush=True)\n")
        app = self.write("app.py", source % "v1")
        process = self.start(app, options=["--no-watch"])
        self.wait_known(process, app, ["__main__", "__mp_main__"])
        self.write("app.py", source % "v2")
        report = json.loads(self.hotd("patch", app, "--json").stdout)
        [outcome] = report["processes"]
        self.assertEqual([r["status"] for r in outcome["result"]["results"]].count("executed"), 1)
        self.ask(process, "log")
        self.wait_output(process, "log=['v1', 'v2']")


WORKERS_APP = """\
import multiprocessing, os, sys, time

def behaviour():
    return "old"

def say(line):
    # One write per line: with PYTHONUNBUFFERED, print() writes the newline separately, and lines of
    # processes sharing this pipe could interleave.
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()


def work(index, parent):
    # Ends with its parent (a test killing it), or after a minute at most: never left behind.
    for _ in range(1200):
        if os.getppid() != parent:
            return
        say("worker %d pid %d says %s" % (index, os.getpid(), behaviour()))
        time.sleep(0.05)

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    workers = [multiprocessing.Process(target=work, args=(i, os.getpid()), daemon=True) for i in range(3)]
    for worker in workers:
        worker.start()
    say("parent %d started %s" % (os.getpid(), " ".join(str(w.pid) for w in workers)))
    sys.stdin.readline()
"""

FORK_APP = """\
import os, sys, time

def value():
    return 1

child = os.fork()
if child == 0:
    for _ in range(600):  # outlives the parent, but never the test by long
        sys.stdout.write("child %d value=%s\\n" % (os.getpid(), value()))  # one write per line
        sys.stdout.flush()
        time.sleep(0.05)
    os._exit(0)
print("parent forked %d" % child, flush=True)
sys.stdin.readline()
"""


class Forking(HotdTestCase):
    def workers_follow_one_save(self, start_method):
        app = self.write("workers.py", WORKERS_APP)
        process = self.start(app, start_method, options=["--no-watch"])
        self.wait_output(process, "started")
        started = [line for line in self.output(process).splitlines() if line.startswith("parent")][0]
        workers = [int(pid) for pid in started.split()[3:]]
        for pid in workers:
            self.addCleanup(kill_if_alive, pid)
        wait_for(lambda: set(workers + [process.pid]) <= set(self.attached_pids()),
                 message="the parent and its 3 workers in `hotd ps` (it lists %r)" % self.attached_pids())
        listing = self.hotd("ps").stdout
        for pid in workers + [process.pid]:
            self.assertIn("%d " % pid, listing)
        self.write("workers.py", WORKERS_APP.replace('return "old"', 'return "new"'))
        result = self.hotd("patch", app)
        for pid in workers:
            self.assertIn("pid %d: applied" % pid, result.stdout)
            self.wait_output(process, "pid %d says new" % pid)

    def test_multiprocessing_fork_workers_get_their_own_agents(self):
        self.workers_follow_one_save("fork")

    def test_forked_child_outlives_its_parent(self):
        app = self.write("fork.py", FORK_APP)
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "parent forked")
        child = int(self.output(process).split("parent forked ")[1].split()[0])
        self.addCleanup(kill_if_alive, child)
        wait_for(lambda: {process.pid, child} <= set(self.attached_pids()), message="parent and child registered")
        self.write("fork.py", FORK_APP.replace("return 1", "return 2"))
        result = self.hotd("patch", app).stdout
        self.assertIn("pid %d: applied" % process.pid, result)
        self.assertIn("pid %d: applied" % child, result)
        self.wait_output(process, "child %d value=2" % child)
        # The child got a copy of the parent's daemon connection: unless it closed it, the daemon
        # would not see the parent go.
        process.stdin.close()
        process.stdin = None
        process.wait(timeout=10)
        wait_for(lambda: process.pid not in self.attached_pids(), message="the parent to leave `hotd ps`")
        self.write("fork.py", FORK_APP.replace("return 1", "return 3"))
        self.assertIn("pid %d: applied" % child, self.hotd("patch", app).stdout)
        self.wait_output(process, "child %d value=3" % child)


if __name__ == "__main__":
    unittest.main()
