"""The daemon end to end: auto-start, one instance, who may connect, patching real processes,
ordering and coalescing of saves, processes that die or hold the GIL, and daemon restarts."""

import json
import os
import signal
import subprocess
import sys
import unittest

from hotd_testing import HOTD, HotdTestCase, RpcClient, wait_for

LOOP_APP = """\
import sys, time

def value():
    return 1

def main():
    while True:
        print("value=%s" % value(), flush=True)
        time.sleep(0.05)

if __name__ == "__main__":
    main()
"""


def loop_app(value):
    return LOOP_APP.replace("return 1", "return %r" % (value,))


class DaemonLifecycle(HotdTestCase):
    def test_client_commands_start_the_daemon_and_only_one_runs(self):
        self.assertEqual(self.hotd("status", check=False).returncode, 1)  # status does not start one
        self.hotd("ps")
        first = self.daemon_pid()
        self.assertGreater(first, 0)
        os.kill(first, 0)
        second = self.hotd("serve", "--foreground", check=False, timeout=10)
        self.assertEqual(second.returncode, 3)
        self.assertIn("another hotd daemon is running (pid %d)" % first, second.stderr)
        status = json.loads(self.hotd("status", "--json").stdout)
        self.assertEqual(status["pid"], first)
        self.assertTrue(status["running"])
        self.assertEqual(status["socket"], os.path.join(self.runtime, "daemon.sock"))

    def test_commands_starting_the_daemon_at_once_all_succeed(self):
        # The daemons that lose the race find the lock taken, sometimes before the winner wrote its
        # pid: that is still "another daemon runs", which auto-start takes as success.
        for attempt in range(10):
            commands = [subprocess.Popen([HOTD, "ps"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True) for _ in range(4)]
            for command in commands:
                _, errors = command.communicate(timeout=30)
                self.assertEqual(command.returncode, 0, "attempt %d: %s" % (attempt, errors))
            self.assertIn("daemon stopped", self.hotd("stop").stdout)
            wait_for(lambda: not os.path.exists(os.path.join(self.runtime, "daemon.sock")), message="socket removed")

    def test_stop_then_autostart_again(self):
        self.hotd("ps")
        first = self.daemon_pid()
        self.assertIn("daemon stopped", self.hotd("stop").stdout)
        wait_for(lambda: not os.path.exists(os.path.join(self.runtime, "daemon.sock")), message="socket removed")
        self.hotd("ps")
        self.assertNotEqual(self.daemon_pid(), first)

    def test_a_command_right_after_stop_starts_a_new_daemon_at_once(self):
        # `hotd stop` returns when the old daemon has exited: until then it holds the instance lock, and
        # a command starting the daemon would lose the start to it and wait for a daemon that is gone.
        # The daemon's exit is slowest on a busy machine, with processes attached (a CPU-bound process
        # runs beside, and programs under `hotd run` whose agents reconnect).
        script = self.write("hello.py", "print('hello')\n")
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for attempt in range(10):
                self.start(self.write("app%d.py" % attempt, LOOP_APP))
                self.hotd("ps")
                self.hotd("stop")
                ran = self.hotd("run", "-q", script, timeout=8)
                self.assertEqual(ran.stdout, "hello\n", "attempt %d" % attempt)
        finally:
            burner.kill()
            burner.wait()

    def test_runtime_dir_writable_by_others_is_refused(self):
        os.makedirs(self.runtime, mode=0o700)
        os.chmod(self.runtime, 0o777)
        result = self.hotd("ps", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("writable by group or others", result.stderr)
        self.assertIn("chmod 700", result.stderr)

    def test_runtime_dir_of_another_user_is_refused(self):
        os.makedirs(self.runtime, mode=0o700)
        os.chown(self.runtime, 65534, 65534)
        result = self.hotd("ps", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("belongs to uid 65534", result.stderr)

    def test_connection_from_another_uid_is_refused_by_peer_credentials(self):
        self.hotd("ps")
        socket_path = os.path.join(self.runtime, "daemon.sock")
        # Without privileges uid 65534 cannot even reach the 0700 directory; with CAP_DAC_OVERRIDE it
        # reaches the socket, and then the daemon's SO_PEERCRED check must refuse it.
        probe = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect(sys.argv[1])\n"
            "except OSError as e:\n"
            "    print('connect-failed', e.errno); sys.exit(0)\n"
            "body = b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hotd/ping\"}'\n"
            "s.settimeout(5)\n"
            "try:\n"
            "    s.sendall(b'Content-Length: %d\\r\\n\\r\\n' % len(body) + body)\n"
            "    print('reply', s.recv(100))\n"
            "except OSError as e:\n"
            "    print('closed', e.errno)\n"
        )
        unprivileged = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", probe, socket_path],
            capture_output=True, text=True, timeout=20)
        self.assertIn("connect-failed 13", unprivileged.stdout, unprivileged.stderr)
        with_override = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_override",
             "--ambient-caps=+dac_override", "/usr/bin/python3", "-c", probe, socket_path],
            capture_output=True, text=True, timeout=20)
        # Closed without an answer: either the read sees end-of-file or the write finds the socket closed.
        self.assertRegex(with_override.stdout, r"reply b''|closed 32|closed 104", with_override.stderr)
        self.assertIn("refused a connection from uid 65534", self.daemon_log())
        self.hotd("ps")  # still serving its owner


class Patching(HotdTestCase):
    def test_save_patches_a_running_process_and_keeps_it_running(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=1")
        self.write("app.py", loop_app(2))
        result = self.hotd("patch", app)
        self.assertIn("pid %d: applied" % process.pid, result.stdout)
        self.assertIn("updated value (line 3)", result.stdout)
        self.wait_output(process, "value=2")
        self.assertIsNone(process.poll())
        self.assertIn("hotd: updated app.value (line 3)", self.errors(process))

    def test_syntax_error_applies_nothing(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        self.write("app.py", loop_app(1).replace("def value():", "def value(:"))
        result = self.hotd("patch", app, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("app.py:3:", result.stdout)
        self.assertIn("nothing applied", result.stdout)
        self.write("app.py", loop_app(5))
        self.assertEqual(self.hotd("patch", app).returncode, 0)  # the baseline was not disturbed
        self.wait_output(process, "value=5")

    def test_a_file_that_is_not_python_is_refused_as_such(self):
        template = self.write("templates/page.html", "<p>{{ greeting }}</p>\n")
        result = self.hotd("patch", template, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("is not a Python file (.html)", result.stderr)
        self.assertNotIn("syntax error", result.stdout + result.stderr)
        script = self.write("manage", "def main():\n    return 1\n")  # a script without an extension is Python
        self.assertEqual(self.hotd("patch", script, check=False).returncode, 0)

    def test_rude_edit_exits_1_and_says_why(self):
        source = "from dataclasses import dataclass\n\n@dataclass\nclass P:\n    x: int = 0\n\n" + LOOP_APP
        app = self.write("app.py", source)
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        self.write("app.py", source.replace("x: int = 0\n", "x: int = 0\n    y: int = 1\n").replace("return 1", "return 7"))
        result = self.hotd("patch", app, check=False)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("rude", result.stdout)
        self.assertIn("fields of dataclass `P` changed", result.stdout)
        self.wait_output(process, "value=7")  # the rest of the save applied

    def test_file_watcher_sees_in_place_and_rename_saves(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app)
        self.wait_output(process, "value=")  # the program runs: a user saves now
        with open(app, "w") as out:  # truncate, then write: no transient empty version may be applied
            out.write(loop_app(2))
        self.wait_output(process, "value=2")
        self.write("app.py", loop_app(3))  # temp file + rename in the same directory
        self.wait_output(process, "value=3")
        self.assertNotIn("failed", self.errors(process))
        self.assertNotIn("deleted", self.errors(process))

    def test_saves_apply_in_order_and_bursts_coalesce(self):
        app = self.write("app.py", loop_app(0))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        client = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        ids = [client.send("hotd/patchFile", {"path": app, "text": loop_app(i)}) for i in range(1, 31)]
        replies = {}
        while len(replies) < len(ids):
            reply = client.receive()
            replies[reply["id"]] = reply
        statuses = [replies[i]["result"]["processes"][0]["status"] for i in ids]
        self.assertEqual(statuses[-1], "applied")
        self.assertIn("superseded", statuses)  # the burst coalesced
        self.assertTrue(set(statuses) <= {"applied", "superseded"}, statuses)
        # Every save has answered: what the process prints from now on is the last version, never an older one.
        self.assertEqual(self.next_lines(process, len(self.output(process))), ["value=30", "value=30"])
        client.close()

    def test_process_that_exits_mid_patch_is_reported_and_the_daemon_carries_on(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        # Adding a function evaluates its default in the patch: the process exits in the middle of it.
        self.write("app.py", "def added(x=__import__('os')._exit(7)):\n    pass\n\n" + loop_app(1))
        result = self.hotd("patch", app, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("pid %d: exited" % process.pid, result.stdout)
        self.assertEqual(process.wait(timeout=10), 7)
        wait_for(lambda: process.pid not in self.attached_pids(), message="the process to leave the list")

    def test_a_process_holding_the_gil_times_out_and_is_patched_later(self):
        self.hotd("stop", check=False)
        self.hotd("serve", "--patch-timeout-ms", "700")
        app = self.write("app.py", LOOP_APP.replace(
            "        time.sleep(0.05)",
            "        time.sleep(0.05)\n        if value() == 1 and __import__('os').path.exists(__file__ + '.hold'):\n"
            "            print('holding', flush=True)\n"
            "            import ctypes; ctypes.PyDLL(None).sleep(3)  # a C call that keeps the GIL"))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        open(app + ".hold", "w").close()
        self.wait_output(process, "holding")
        self.write("app.py", loop_app(2))
        result = self.hotd("patch", app, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("pid %d: timeout" % process.pid, result.stdout)
        self.assertIn("holding the GIL", result.stdout)
        self.wait_output(process, "value=2", timeout=10)  # applied once the call returned
        self.assertIsNone(process.poll())

    def test_daemon_killed_while_processes_run_then_patching_resumes(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        self.kill_daemon()
        wait_for(lambda: self.hotd("status", check=False).returncode == 1, message="the daemon to be gone")
        self.next_lines(process, len(self.output(process)))  # unharmed, still working
        self.assertIsNone(process.poll())
        self.hotd("ps")  # a new daemon; the agent reconnects on its own
        self.wait_attached(process)
        self.write("app.py", loop_app(9))
        self.assertIn("applied", self.hotd("patch", app).stdout)
        self.wait_output(process, "value=9")

    def test_detach_stops_patching_but_the_process_keeps_running(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=")  # the program runs: a user saves now
        self.write("app.py", loop_app(2))
        self.hotd("patch", app)
        self.wait_output(process, "value=2")
        self.hotd("detach", str(process.pid))
        wait_for(lambda: process.pid not in self.attached_pids(), message="the process to detach")
        self.next_lines(process, len(self.output(process)))  # it runs on
        self.write("app.py", loop_app(3))
        self.assertIn("no attached process", self.hotd("patch", app).stdout)
        # The save has answered: had it reached the process, what it prints next would say so.
        self.assertEqual(self.next_lines(process, len(self.output(process))), ["value=2", "value=2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
