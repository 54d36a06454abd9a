"""`hotd attach <pid>` end to end: processes started without hotd become live-editable, keep behaving
exactly as before, and every failure leaves the target alive and unchanged."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

from hotd_testing import HOTD, PYTHON, HotdTestCase, process_state, pyenv_python, wait_for

# A target that reports value() in a loop of its own kind: sleep, input(), accept(), busy.
TARGET = """\
import os, socket, sys, time

def value():
    return "v1"

def serve_forever(mode):
    if mode == "idle":
        while True:
            print(value(), flush=True)
            time.sleep(0.05)
    elif mode == "input":
        while True:
            print("waiting", flush=True)
            line = input()
            print(line, value(), flush=True)
    elif mode == "accept":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        print("port", server.getsockname()[1], flush=True)
        while True:
            connection, _ = server.accept()
            connection.sendall(value().encode())
            connection.close()
    elif mode == "busy":
        count = 0
        while True:
            count += 1
            if count % 200000 == 0:
                print(value(), flush=True)
    elif mode == "threads":
        import threading
        def worker():
            while True:
                time.sleep(0.01)
        for _ in range(4):
            threading.Thread(target=worker, daemon=True).start()
        while True:
            print(value(), threading.main_thread() is threading.current_thread(), flush=True)
            time.sleep(0.05)

serve_forever(sys.argv[1])
"""


def interpreters():
    return [("system", "/usr/bin/python3")] + [(version, pyenv_python(version))
                                               for version in ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")]


PYTHON36 = pyenv_python("3.6")  # hotd refuses it


class Attach(HotdTestCase):
    def launch(self, mode, python=PYTHON, cwd=None):
        script = self.write("target.py", TARGET)
        out = open(os.path.join(self.work, "target-%d.out" % len(self.processes)), "w+")
        process = subprocess.Popen([python, script, mode], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                   text=True, cwd=cwd or self.work)
        process.out_path, process.err_path, process.out_file, process.err_file = out.name, out.name, out, None
        self.processes.append(process)
        return script, process

    def attach(self, pid, *extra, check=True):
        return self.hotd("attach", str(pid), *extra, check=check)

    def save_v2(self, script):
        self.write("target.py", TARGET.replace('return "v1"', 'return "v2"'))
        return self.hotd("patch", script)

    def test_idle_target_is_patched_and_attaching_twice_is_harmless(self):
        script, process = self.launch("idle")
        self.wait_output(process, "v1")
        result = self.attach(process.pid)
        self.assertRegex(result.stdout, r"attached to %d: python 3\.\d+\.\d+, .*target\.py, 1 module file" % process.pid)
        self.assertIn("already attached", self.attach(process.pid).stdout)
        self.assertIn("pid %d: applied" % process.pid, self.save_v2(script).stdout)
        self.wait_output(process, "v2")
        self.hotd("detach", str(process.pid))
        wait_for(lambda: process.pid not in self.attached_pids(), message="detach")
        self.next_lines(process, len(self.output(process)))  # it runs on
        self.assertIn("attached to %d" % process.pid, self.attach(process.pid).stdout)  # attach again after detach

    def test_target_blocked_in_input_still_gets_its_input(self):
        script, process = self.launch("input")
        self.wait_output(process, "waiting")
        wait_for(lambda: process_state(process.pid) == "S", message="the target to block in input()")
        self.attach(process.pid)
        process.stdin.write("hello\n")
        process.stdin.flush()
        self.wait_output(process, "hello v1")
        self.save_v2(script)
        process.stdin.write("again\n")
        process.stdin.flush()
        self.wait_output(process, "again v2")

    def test_target_blocked_in_accept_still_serves(self):
        script, process = self.launch("accept")
        port = int(wait_for(lambda: [l for l in self.output(process).splitlines() if l.startswith("port")],
                            message="the server's port")[0].split()[1])

        def fetch():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                return connection.recv(100).decode()

        self.assertEqual(fetch(), "v1")
        self.attach(process.pid)
        self.assertEqual(fetch(), "v1")
        self.save_v2(script)
        self.assertEqual(fetch(), "v2")

    def test_cpu_busy_and_multithreaded_targets(self):
        for mode in ("busy", "threads"):
            with self.subTest(mode=mode):
                script, process = self.launch(mode)
                self.wait_output(process, "v1")
                self.attach(process.pid, "--timeout", "20")  # a loaded 2-core machine starves the agent
                self.save_v2(script)
                self.wait_output(process, "v2")
                if mode == "threads":  # the agent did not become the main thread
                    self.assertNotIn("False", self.output(process))
                process.kill()
                process.wait()
                self.write("target.py", TARGET)

    def test_interpreter_matrix(self):
        for name, python in interpreters():
            with self.subTest(python=name):
                if python is None:
                    self.skipTest("pyenv %s is not installed" % name)
                script, process = self.launch("idle", python=python)
                self.wait_output(process, "v1")
                self.attach(process.pid)
                self.save_v2(script)
                self.wait_output(process, "v2")
                process.kill()
                process.wait()
                self.write("target.py", TARGET)

    def test_target_in_a_venv(self):
        venv = os.path.join(self.work, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv], check=True, timeout=60)
        script, process = self.launch("idle", python=os.path.join(venv, "bin", "python3"))
        self.wait_output(process, "v1")
        self.attach(process.pid)
        self.save_v2(script)
        self.wait_output(process, "v2")

    def test_gil_held_forever_times_out_with_the_reason_and_the_target_survives(self):
        script = self.write("hold.py", "import ctypes, time\nprint('holding', flush=True)\n"
                                       "ctypes.PyDLL(None).sleep(4)\nprint('released', flush=True)\n"
                                       "while True:\n    time.sleep(0.05)\n")
        process = subprocess.Popen([PYTHON, script], stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        process.out_file = process.err_file = None
        self.assertEqual(process.stdout.readline().strip(), "holding")
        result = self.attach(process.pid, "--timeout", "1.5", check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("never released the GIL", result.stderr)
        self.assertRegex(result.stderr, r"blocked in the system call (clock_nanosleep|nanosleep|restart_syscall)")
        self.assertEqual(process.stdout.readline().strip(), "released")
        wait_for(lambda: process.pid in self.attached_pids(), message="registration once the GIL is free")
        process.stdout.close()

    def test_failures_leave_the_target_alive_and_unchanged(self):
        result = self.attach(999999, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("no process with pid 999999", result.stderr)
        sleeper = subprocess.Popen(["sleep", "30"])
        self.processes.append(sleeper)
        sleeper.out_file = sleeper.err_file = None
        result = self.attach(sleeper.pid, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("is not a Python process", result.stderr)
        self.assertIsNone(sleeper.poll())

    @unittest.skipIf(PYTHON36 is None, "pyenv 3.6 is not installed")
    def test_python_3_6_is_refused_and_the_target_runs_on(self):
        script, process = self.launch("idle", python=PYTHON36)
        self.wait_output(process, "v1")
        result = self.attach(process.pid, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("3.6", result.stderr)
        self.next_lines(process, len(self.output(process)))  # it runs on
        self.assertIsNone(process.poll())

    def test_target_with_a_private_tmp(self):
        # The target sees its own /tmp: the runtime directory there is invisible to it, and hotd says
        # so; with a runtime directory both can see, attaching works.
        shared = tempfile.mkdtemp(prefix="hotd-shared-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, shared, True)
        script = os.path.join(shared, "target.py")
        with open(script, "w") as out:
            out.write(TARGET)
        # hotd's own Python directory is hidden from the target too, so the agent's package has to be
        # staged into the target's file system, wherever this checkout lives.
        hotd_python = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "python"))
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             # hotd's directory first: when the checkout is under /tmp, the second mount hides it anyway.
             "mount -t tmpfs tmpfs %s && mount -t tmpfs tmpfs /tmp && exec %s %s idle" % (hotd_python, PYTHON, script)],
            stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        process.out_file = process.err_file = None
        self.assertEqual(process.stdout.readline().strip(), "v1")
        result = self.attach(process.pid, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("another mount namespace", result.stderr)
        self.assertIn("socket", result.stderr)
        self.assertIsNone(process.poll())
        self.hotd("stop")
        self.env["HOTD_RUNTIME_DIR"] = os.path.join(shared, "runtime")
        self.runtime = self.env["HOTD_RUNTIME_DIR"]
        self.attach(process.pid)
        with open(script, "w") as out:
            out.write(TARGET.replace('return "v1"', 'return "v2"'))
        self.hotd("patch", script)
        wait_for(lambda: process.stdout.readline().strip() == "v2", message="v2 from the namespaced target")
        process.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
