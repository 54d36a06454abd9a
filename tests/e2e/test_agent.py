"""The agent inside real processes under `hotd run`: which modules it reports to the daemon, and
processes that fork (os.fork, multiprocessing) or start Python interpreters (subprocess,
multiprocessing's spawn and forkserver methods) getting agents of their own."""

import json
import os
import subprocess
import unittest

from hotd_testing import PYTHON, HotdTestCase, kill_if_alive, wait_for


class ModuleReports(HotdTestCase):
    def wait_known(self, process, path, modules):
        wait_for(lambda: sorted(self.known_files(process.pid).get(path, [])) == sorted(modules),
                 message="the daemon to know %s as %s in %d" % (path, modules, process.pid))

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
        source = ("import multiprocessing, sys\n\ndef log():\n    return '%s'\n\n"
                  "for line in sys.stdin:\n    print('log=%%s' %% log(), flush=True)\n")
        app = self.write("app.py", source % "v1")
        process = self.start(app, options=["--no-watch"])
        self.wait_known(process, app, ["__main__", "__mp_main__"])
        self.write("app.py", source % "v2")
        report = json.loads(self.hotd("patch", app, "--json").stdout)
        [outcome] = report["processes"]
        self.assertEqual([r["status"] for r in outcome["result"]["results"]], ["updated"])
        self.ask(process, "log")
        self.wait_output(process, "log=v2")


WORKERS_APP = """\
import multiprocessing, os, sys, time

SUFFIX = ""

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
        try:
            os.kill(parent, 0)  # forkserver workers are not the parent's children
        except ProcessLookupError:
            return
        say("worker %d pid %d says %s%s" % (index, os.getpid(), behaviour(), SUFFIX))
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
sys.stdout.write("parent forked %d\\n" % child)  # one write: print's two let the child's line in between
sys.stdout.flush()
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
        wait_for(lambda: all(app in self.known_files(pid) for pid in workers + [process.pid]),
                 message="the parent and its 3 workers in `hotd ps`, running %s (it lists %r)"
                         % (app, self.attached_pids()))
        listing = self.hotd("ps").stdout
        for pid in workers + [process.pid]:
            self.assertIn("%d " % pid, listing)
        new_behaviour = WORKERS_APP.replace('return "old"', 'return "new"')
        self.write("workers.py", new_behaviour)
        result = self.hotd("patch", app)
        for pid in workers:
            self.assertIn("pid %d: applied" % pid, result.stdout)
            self.wait_output(process, "pid %d says new" % pid)
        # A re-run statement reaches the worker's functions too (spawn: they read runpy's copy of the script).
        self.write("workers.py", new_behaviour.replace('SUFFIX = ""', 'SUFFIX = "!"'))
        result = self.hotd("patch", app)
        for pid in workers:
            self.assertIn("pid %d: applied" % pid, result.stdout)
            self.wait_output(process, "pid %d says new!" % pid)
        self.write("workers.py", new_behaviour.replace('SUFFIX = ""', 'SUFFIX = "?"'))
        result = self.hotd("reload", app)  # the same for a whole-module reload
        for pid in workers:
            self.assertIn("pid %d: applied" % pid, result.stdout)
            self.wait_output(process, "pid %d says new?" % pid)

    def test_multiprocessing_fork_workers_get_their_own_agents(self):
        self.workers_follow_one_save("fork")

    def test_multiprocessing_spawn_workers_get_their_own_agents(self):
        # New interpreters: hotd_site's sitecustomize starts their agents; __main__ is re-run as __mp_main__.
        self.workers_follow_one_save("spawn")

    def test_multiprocessing_forkserver_workers_get_their_own_agents(self):
        # The server is a new interpreter, its workers are forked from it.
        self.workers_follow_one_save("forkserver")

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


CHILD_APP = """\
import os, sys, time

def value():
    return 1

parent = int(sys.argv[1])
for _ in range(1200):  # ends with its parent, or after a minute at most
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    sys.stdout.write("child %d value=%s\\n" % (os.getpid(), value()))  # one write per line
    sys.stdout.flush()
    time.sleep(0.05)
"""

STARTER_APP = """\
import os, subprocess, sys, time

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
RUN_PATH_LATER = "import pkgutil, runpy, sys, time; time.sleep(0.5); del sys.argv[0]; runpy.run_path(sys.argv[0], run_name='__main__')"
ENVIRONMENTS = {"spawn": None, "spawn-empty-env": {}, "spawn-pythonpath-only": {"PYTHONPATH": os.environ["PYTHONPATH"]}}

def say(line):
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

def stay_forked(parent):
    for _ in range(1200):
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        say("forked %d" % os.getpid())
        time.sleep(0.05)
    os._exit(0)

say("ready")
for line in sys.stdin:
    how = line.strip()
    if how == "fork":
        child = os.fork()
        if child == 0:
            stay_forked(os.getppid())
    elif how == "run-path-later":
        child = subprocess.Popen([sys.executable, "-c", RUN_PATH_LATER, CHILD, str(os.getpid())]).pid
    else:
        child = subprocess.Popen([sys.executable, CHILD, str(os.getpid())], env=ENVIRONMENTS[how]).pid
    say("started %s %d" % (how, child))
"""

VIEW_APP = """\
import builtins, json, os, subprocess, sys, time

# What a plain run would show too: hotd's sitecustomize hides itself and runs the one it hides.
view = {"path": sys.path, "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
        "user_site": getattr(builtins, "USER_SITE", None)}
sys.stdout.write("view %d %s\\n" % (os.getpid(), json.dumps(view)))
sys.stdout.flush()
if sys.argv[1:] == []:
    subprocess.Popen([sys.executable, __file__, str(os.getpid())])
    sys.stdin.readline()
elif sys.argv[1] != "once":
    for _ in range(1200):  # a child: lives as long as its parent, a minute at most
        try:
            os.kill(int(sys.argv[1]), 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
"""


class NewInterpreters(HotdTestCase):
    def start_starter(self):
        self.write("child.py", CHILD_APP)
        process = self.start(self.write("starter.py", STARTER_APP), options=["--no-watch"])
        self.wait_output(process, "ready")
        return process

    def start_child(self, process, how):
        """Asks the program to start a child; returns its pid once it runs."""
        announcement = "started %s " % how
        earlier = self.output(process).count(announcement)
        process.stdin.write(how.encode() + b"\n")
        process.stdin.flush()
        wait_for(lambda: self.output(process).count(announcement) > earlier, message="the program to start a child")
        pid = int(self.output(process).split(announcement)[-1].split()[0])
        self.addCleanup(kill_if_alive, pid)
        self.wait_output(process, ("forked %d" if how == "fork" else "child %d value=") % pid)
        return pid

    def test_python_subprocess_gets_its_own_agent(self):
        process = self.start_starter()
        child = self.start_child(process, "spawn")
        path = os.path.join(self.work, "child.py")
        wait_for(lambda: path in self.known_files(child), message="the child to report child.py")
        self.write("child.py", CHILD_APP.replace("return 1", "return 2"))
        self.assertIn("pid %d: applied" % child, self.hotd("patch", path).stdout)
        self.wait_output(process, "child %d value=2" % child)

    def test_child_that_runs_its_script_after_registering_reports_it(self):
        # As multiprocessing's spawned children do (`__mp_main__`) when their parent is slow: __main__
        # gets a file after the agent registered, and nothing is imported then (pkgutil, which
        # run_path imports, is imported first) to make the agent look again.
        process = self.start_starter()
        child = self.start_child(process, "run-path-later")
        path = os.path.join(self.work, "child.py")
        wait_for(lambda: path in self.known_files(child), message="the child to report child.py")

    def test_child_with_a_cleaned_environment_gets_no_agent(self):
        process = self.start_starter()
        inheriting = self.start_child(process, "spawn")
        cleaned = [self.start_child(process, how) for how in ("spawn-empty-env", "spawn-pythonpath-only")]
        wait_for(lambda: inheriting in self.attached_pids(), message="the child that inherits the environment to register")
        # A child's agent registers before its program runs (hotd_start.wait_for_registration): one the
        # cleaned children had started would be listed now that they print.
        self.assertFalse(set(cleaned) & set(self.attached_pids()))

    def test_detached_process_starts_no_agents(self):
        process = self.start_starter()
        self.wait_attached(process)
        before = [self.start_child(process, how) for how in ("fork", "spawn")]
        wait_for(lambda: set(before) <= set(self.attached_pids()), message="children started before the detach to register")
        self.hotd("detach", str(process.pid))
        wait_for(lambda: process.pid not in self.attached_pids(), message="the program to leave `hotd ps`")
        after = [self.start_child(process, how) for how in ("fork", "spawn")]
        # Now that they print: a spawned child's agent would have registered before its program ran; a
        # forked child's would be a second thread, started by the fork hook before the child went on.
        self.assertEqual(os.listdir("/proc/%d/task" % after[0]), [str(after[0])])
        self.assertFalse(set(after) & set(self.attached_pids()))
        self.assertTrue(set(before) <= set(self.attached_pids()))

    def children_see_a_plain_run(self):
        app = self.write("view.py", VIEW_APP)
        plain = subprocess.run([PYTHON, app, "once"], env=self.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(plain.stderr, "")
        expected = json.loads(plain.stdout.split(" ", 2)[2])
        process = self.start(app, options=["--no-watch"])
        wait_for(lambda: self.output(process).count("view ") == 2, message="the program and its child to print their views")
        views = {int(line.split()[1]): json.loads(line.split(" ", 2)[2]) for line in self.output(process).splitlines()}
        [child] = set(views) - {process.pid}
        self.addCleanup(kill_if_alive, child)
        self.assertEqual(views[process.pid], expected)
        self.assertEqual(views[child], expected)
        wait_for(lambda: child in self.attached_pids(), message="the child to register")
        self.assertEqual(self.errors(process), "")
        return expected

    def test_child_runs_the_sitecustomize_hotd_hides(self):
        # Debian's python3 has one (apport's hook); hotd's sitecustomize runs it in children.
        self.children_see_a_plain_run()

    def test_sitecustomize_of_the_user_runs_in_program_and_children(self):
        user = self.write("user/sitecustomize.py", "import builtins\nbuiltins.USER_SITE = __file__\n")
        self.env["PYTHONPATH"] = os.path.dirname(user)
        self.assertEqual(self.children_see_a_plain_run()["user_site"], user)


if __name__ == "__main__":
    unittest.main()
