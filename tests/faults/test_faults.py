"""Faults, and what must hold after each: clients that disconnect mid-message or stop reading, a patch
that never finishes, a target killed mid-patch, the daemon killed while processes are attached, a full
or read-only runtime directory at start, and a daemon lifecycle that ends in a clean exit (under the
sanitizer build, LeakSanitizer checks that exit)."""

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from hotd_testing import HOTD, HotdTestCase, RpcClient, frame, process_gone, wait_for  # noqa: E402
from test_daemon import LOOP_APP, loop_app  # noqa: E402

QUEUE_LIMIT = 64 * 1024 * 1024  # the daemon's cap on replies queued for one connection


def with_statement(value, statement):
    """LOOP_APP returning `value`, with one more module-level statement before main()."""
    return loop_app(value).replace("def main():", statement + "\n\ndef main():")


def with_added_function(value, default):
    """LOOP_APP returning `value`, with a new function whose default is `default`: adding it to a
    running script evaluates the default inside the patch (its top-level statements are not re-run)."""
    return with_statement(value, "def added(x=%s):\n    return x" % default)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def resident_bytes(pid):
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def peak_memory_bytes(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for pid %d" % pid)


class FaultTestCase(HotdTestCase):
    def socket_path(self):
        return os.path.join(self.runtime, "daemon.sock")

    def attached_app(self, name, value):
        path = self.write(name, loop_app(value))
        process = self.start(path, options=["--no-watch"])
        self.wait_output(process, "value=%r" % (value,))
        return path, process

    def assert_serving(self, within=2.0):
        started = time.monotonic()
        self.hotd("ps")
        self.assertLess(time.monotonic() - started, within, "the daemon answered `hotd ps` too slowly")

    def patch_in_background(self, path):
        return subprocess.Popen([HOTD, "patch", path], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)


class Clients(FaultTestCase):
    def test_clients_disconnecting_mid_message_change_nothing(self):
        app, process = self.attached_app("app.py", 1)
        daemon = self.daemon_pid()
        save = frame({"jsonrpc": "2.0", "id": 1, "method": "hotd/patchFile", "params": {"path": app, "text": loop_app(2)}})
        editor = frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None}})
        body_start = save.index(b"\r\n\r\n") + 4
        for message, cut in [(save, 7), (save, body_start - 2), (save, body_start), (save, len(save) - 1),
                             (editor, len(editor) // 2)]:
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(self.socket_path())
            client.sendall(message[:cut])
            client.close()
        self.assert_serving()
        self.assertEqual(self.daemon_pid(), daemon)
        self.write("app.py", loop_app(3))
        self.assertIn("applied", self.hotd("patch", app).stdout)
        self.wait_output(process, "value=3")
        # Saves apply in order: a half-received save taken for whole would be in the log before this one.
        self.assertEqual(len(self.saves()), 1, self.saves())
        self.assertNotIn("value=2", self.output(process))

    def test_client_that_stops_reading_is_dropped_and_others_are_served(self):
        self.hotd("serve")
        daemon = self.daemon_pid()
        app, process = self.attached_app("app.py", 1)
        # Each request's error reply quotes its 1 MiB method name; never reading them, this client would
        # make the daemon queue 256 MiB without the limit.
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.connect(self.socket_path())
        request = frame({"jsonrpc": "2.0", "id": 1, "method": "hotd/" + "x" * (1 << 20)})
        sent = []

        def flood():
            try:
                for _ in range(256):
                    stalled.sendall(request)
                    sent.append(len(request))
            except OSError:  # the daemon closed the connection
                pass

        flooding = threading.Thread(target=flood)
        flooding.start()
        wait_for(lambda: sum(sent) > 16 << 20 or not flooding.is_alive(), timeout=60, message="the flood to start")
        self.assert_serving(within=5.0)  # others are served while the stalled client's replies pile up
        flooding.join(timeout=120)
        self.assertFalse(flooding.is_alive(), "the daemon never closed the client that stopped reading")
        self.assertLess(sum(sent), 200 << 20)
        wait_for(lambda: "it stopped reading" in self.daemon_log(), message="the log to say why it was closed")
        self.assertLess(peak_memory_bytes(daemon), QUEUE_LIMIT + (96 << 20))
        stalled.close()
        self.write("app.py", loop_app(2))
        self.assertIn("applied", self.hotd("patch", app).stdout)
        self.wait_output(process, "value=2")


class Patches(FaultTestCase):
    def test_patch_that_never_finishes_times_out_and_others_are_still_patched(self):
        # Policy (docs/RELIABILITY.md): the daemon reports a timeout after --patch-timeout-ms and
        # carries on; the target is never killed, and its own threads keep running.
        self.hotd("serve", "--patch-timeout-ms", "1000")
        stuck = self.write("stuck.py", with_statement(1, "LIMIT = 1"))
        stuck_process = self.start(stuck, options=["--no-watch"])
        other, other_process = self.attached_app("other.py", 1)
        self.wait_attached(stuck_process)
        self.write("stuck.py", with_added_function(1, "any(False for _ in iter(int, 1))"))  # never ends
        started = time.monotonic()
        result = self.hotd("patch", stuck, check=False)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("pid %d: timeout" % stuck_process.pid, result.stdout)
        self.assertLess(time.monotonic() - started, 10)
        self.assert_serving()
        self.write("other.py", loop_app(2))
        self.assertIn("pid %d: applied" % other_process.pid, self.hotd("patch", other).stdout)
        self.wait_output(other_process, "value=2")
        self.next_lines(stuck_process, len(self.output(stuck_process)))  # alive, and its main thread runs
        self.assertIsNone(stuck_process.poll())

    def test_texts_the_parser_cannot_read_are_refused_and_the_daemon_keeps_serving(self):
        # libtree-sitter 0.20 corrupts its heap on 65,535 comment lines in a row (the daemon died), and
        # tree-sitter-python takes minutes over 60,000 of them inside a block (the daemon hung).
        app, process = self.attached_app("app.py", 1)
        self.write("app.py", "#\n" * 70000 + loop_app(2))
        result = self.hotd("patch", app, check=False)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("comment or line-continuation lines in a row", result.stdout)
        self.assert_serving()
        self.write("app.py", loop_app(3).replace("    return 3", "    #\n" * 59990 + "    return 3"))
        result = self.hotd("patch", app, check=False)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("the parser gave up", result.stdout)
        self.assert_serving()
        self.write("app.py", loop_app(4))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.wait_output(process, "value=4")

    def test_target_killed_mid_patch_is_reported_before_the_timeout(self):
        self.hotd("serve", "--patch-timeout-ms", "30000")
        app, process = self.attached_app("app.py", 1)
        self.write("app.py", with_added_function(1, "print('in the patch', flush=True) or __import__('time').sleep(60)"))
        patch = self.patch_in_background(app)
        self.wait_output(process, "in the patch")  # the process evaluates the default, for a minute
        process.kill()
        output, _ = patch.communicate(timeout=10)  # long before the 30 s timeout
        self.assertEqual(patch.returncode, 1, output)
        self.assertIn("pid %d: exited" % process.pid, output)
        wait_for(lambda: process.pid not in self.attached_pids(), message="the killed process to leave the list")
        self.assert_serving()


class ScriptedAgent(object):
    """An agent on the daemon's socket that answers patches as a test tells it to: a process whose
    agent is broken or hostile."""

    def __init__(self, socket_path, file, text):
        self.rpc = RpcClient(socket_path)
        reply = self.rpc.call("agent/register", {"pid": os.getpid(), "modules": [
            {"name": "app", "file": file, "source": text}]})
        assert "result" in reply, reply

    def next_patch(self):
        """The next agent/patch the daemon sends: (request id, save number)."""
        while True:
            message = self.rpc.receive(timeout=20)
            if message.get("method") == "agent/patch":
                return message["id"], message["params"]["save"]

    def answer(self, request_id, result):
        self.rpc.sock.sendall(frame({"jsonrpc": "2.0", "id": request_id, "result": result}))


class AgentAnswers(FaultTestCase):
    MALFORMED = [{"results": 5}, {"results": [5]}, {"results": [{"status": 3}]}, {"ok": "yes", "results": []},
                 {"results": [{"status": "updated", "qualname": 7}]}, {"error": 5}, "applied", [1, 2],
                 {"results": [{"status": "updated", "stale": "x"}]}]

    def test_a_malformed_result_fails_its_save_at_once_and_the_queue_stays_in_order(self):
        # The policy of docs/RELIABILITY.md: a malformed answer is a failed save, reported at once; the
        # file's queue carries on, and no older save is ever applied after a newer one.
        self.hotd("serve", "--patch-timeout-ms", "20000")
        path = self.write("app.py", loop_app(0))
        agent = ScriptedAgent(self.socket_path(), path, loop_app(0))
        self.addCleanup(agent.rpc.close)
        for malformed in self.MALFORMED:
            with self.subTest(result=malformed):
                self.write("app.py", loop_app(1))
                first = self.patch_in_background(path)
                request, save = agent.next_patch()
                self.write("app.py", loop_app(2))
                queued = self.patch_in_background(path)  # waits behind the first
                started = time.monotonic()
                agent.answer(request, malformed)
                output, _ = first.communicate(timeout=10)
                self.assertLess(time.monotonic() - started, 5, "waited for the timeout instead")
                self.assertEqual(first.returncode, 1, output)
                self.assertIn("malformed result", output)
                request, queued_save = agent.next_patch()  # the queued save goes out next
                self.assertGreater(queued_save, save)
                agent.answer(request, {"ok": True, "results": [{"status": "updated", "qualname": "value"}]})
                output, _ = queued.communicate(timeout=10)
                self.assertEqual(queued.returncode, 0, output)
                # Back to version 0 for the next round: the process applied version 2.
                self.write("app.py", loop_app(0))
                back = self.patch_in_background(path)
                request, _ = agent.next_patch()
                agent.answer(request, {"ok": True, "results": [{"status": "updated", "qualname": "value"}]})
                back.communicate(timeout=10)
                self.assertEqual(back.returncode, 0)
        self.assert_serving()

    def test_a_save_queued_behind_an_unanswered_patch_times_out_too_and_late_answers_reach_the_log(self):
        self.hotd("serve", "--patch-timeout-ms", "1000")
        path = self.write("app.py", loop_app(0))
        agent = ScriptedAgent(self.socket_path(), path, loop_app(0))
        self.addCleanup(agent.rpc.close)
        self.write("app.py", loop_app(1))
        first = self.hotd("patch", path, check=False)  # the agent does not answer
        self.assertIn("pid %d: timeout" % os.getpid(), first.stdout)
        request, _ = agent.next_patch()
        self.write("app.py", loop_app(2))
        started = time.monotonic()
        queued = self.hotd("patch", path, check=False)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(queued.returncode, 1, queued.stdout)
        self.assertIn("queued behind a patch the process has not answered", queued.stdout)
        agent.answer(request, {"ok": True, "results": [{"status": "updated", "qualname": "value"}]})
        request, _ = agent.next_patch()  # the late answer lets the queued save go out
        agent.answer(request, {"ok": True, "results": [{"status": "updated", "qualname": "value"}]})
        wait_for(lambda: self.hotd("log", path).stdout.count("pid %d applied" % os.getpid()) == 2,
                 message="`hotd log` to show both saves applied (it said %r)" % self.hotd("log", path).stdout)


class AgentResources(FaultTestCase):
    """What an agent can make the daemon hold or do: bounded, and freed when it leaves."""

    def test_memory_of_the_files_an_agent_reported_is_freed_when_it_leaves(self):
        self.hotd("serve")
        daemon = self.daemon_pid()
        text = "X = %r\n" % ("x" * (2 << 20))  # 2 MiB a file, 20 MiB a round

        def one_round(number):
            agent = RpcClient(self.socket_path())
            modules = [{"name": "m%d_%d" % (number, i), "file": os.path.join(self.work, "r%d_%d.py" % (number, i)),
                        "source": text} for i in range(10)]
            self.assertIn("result", agent.call("agent/register", {"pid": os.getpid(), "modules": modules}))
            agent.close()
            wait_for(lambda: not json.loads(self.hotd("ps", "--json").stdout)["processes"], message="the agent to leave")

        for number in range(4):  # the allocator's own pools settle first
            one_round(number)
        settled = resident_bytes(daemon)
        for number in range(4, 10):
            one_round(number)
        self.assertLess(resident_bytes(daemon) - settled, 40 << 20, "the daemon kept what agents that left reported")

    def test_polling_is_bounded(self):
        self.hotd("serve")
        daemon = self.daemon_pid()
        agent = RpcClient(self.socket_path())
        self.addCleanup(agent.close)
        source = self.write("polled.py", "X = 1\n")
        reply = agent.call("agent/register", {
            "pid": os.getpid(), "modules": [{"name": "polled", "file": source, "source": "X = 1\n"}],
            "watch": [self.work], "watch_options": {"poll_seconds": 1e-9}})
        self.assertEqual(reply["result"]["watching"]["options"]["poll_seconds"], 0.1)
        before, started = cpu_seconds(daemon), time.monotonic()
        wait_for(lambda: time.monotonic() - started > 1.0, message="a second of polling")  # the span measured
        self.assertLess(cpu_seconds(daemon) - before, 0.5, "polling at 1e-9 s pins a core")

    def test_a_huge_tree_to_watch_is_watched_in_part_and_the_daemon_keeps_serving(self):
        self.hotd("serve")
        tree = os.path.join(self.work, "tree")
        for i in range(70):
            for j in range(70):
                os.makedirs(os.path.join(tree, str(i), str(j)))
        agent = RpcClient(self.socket_path())
        self.addCleanup(agent.close)
        reply = agent.call("agent/register", {"pid": os.getpid(), "modules": [], "watch": [tree]})
        self.assertEqual(reply["result"]["watching"]["directories"], 4096)
        self.assertIn("watching only the first 4096 directories under " + tree, self.daemon_log())
        self.assert_serving()


class DaemonRestart(FaultTestCase):
    def kill_daemon_and_wait(self):
        self.kill_daemon()
        wait_for(lambda: self.hotd("status", check=False).returncode == 1, message="the daemon to be gone")

    def test_save_made_while_the_daemon_was_down_is_applied_after_it_returns(self):
        # The process reports the text it runs (version 2, patched in by the first daemon), so the new
        # daemon diffs the save against it rather than taking the disk (version 3) for what runs.
        app, process = self.attached_app("app.py", 1)
        self.write("app.py", loop_app(2))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.wait_output(process, "value=2")
        self.kill_daemon_and_wait()
        self.write("app.py", loop_app(3))  # saved with no daemon: the process still runs version 2
        self.hotd("ps")
        self.wait_attached(process)
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.wait_output(process, "value=3", timeout=5)

    def test_watched_file_saved_while_the_daemon_was_down_is_applied_when_it_returns(self):
        app = self.write("app.py", loop_app(1))
        process = self.start(app)  # watches the script's directory
        self.wait_output(process, "value=1")
        self.kill_daemon_and_wait()
        self.write("app.py", loop_app(2))
        self.hotd("ps")
        self.wait_output(process, "value=2", timeout=10)  # nobody saved again: the daemon caught up
        wait_for(lambda: "changed since process %d loaded it: applying the version on disk" % process.pid
                 in self.daemon_log(), message="the log to say why it patched")

    def test_daemon_killed_twice_with_several_processes_then_each_is_patched(self):
        apps = [self.attached_app("app%d.py" % i, 1) for i in range(3)]
        for restart in range(2):
            self.kill_daemon_and_wait()
            self.hotd("ps")
            for _, process in apps:
                self.wait_attached(process)
        for index, (path, process) in enumerate(apps):
            self.write(os.path.basename(path), loop_app(10 + index))
            self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", path).stdout)
            self.wait_output(process, "value=%d" % (10 + index))
            self.assertIsNone(process.poll())


class Limits(FaultTestCase):
    def test_connections_over_the_limit_are_refused_with_a_reason_and_the_others_served(self):
        self.hotd("serve", "--max-connections", "3")
        app, process = self.attached_app("app.py", 1)
        idle = [RpcClient(self.socket_path()) for _ in range(2)]  # with the process: 3
        refused = self.hotd("ps", check=False)
        self.assertEqual(refused.returncode, 2, refused.stdout)  # like any daemon that cannot be reached
        self.assertIn("too many connections (3, hotd serve --max-connections)", refused.stderr)
        self.assertIn("refused pid", self.daemon_log())
        idle.pop().close()
        wait_for(lambda: self.hotd("ps", check=False).returncode == 0, message="a connection to be admitted again")
        self.write("app.py", loop_app(2))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.wait_output(process, "value=2")
        for client in idle:
            client.close()


    def test_out_of_descriptors_the_daemon_waits_instead_of_spinning_and_recovers(self):
        if os.environ.get("HOTD_SANITIZED"):
            # The sanitizer runtime opens descriptors to check memory: with none left it reports false
            # "invalid vptr" errors. The plain build's run of this suite checks this fault.
            self.skipTest("not under the sanitizers: they need descriptors of their own")
        self.hotd("serve")
        daemon = self.daemon_pid()
        in_use = len(os.listdir("/proc/%d/fd" % daemon))
        soft, hard = resource.prlimit(daemon, resource.RLIMIT_NOFILE)
        resource.prlimit(daemon, resource.RLIMIT_NOFILE, (in_use + 2, hard))
        clients = [RpcClient(self.socket_path()) for _ in range(6)]  # the last ones wait in the backlog
        wait_for(lambda: "accepting a connection failed: Too many open files; retrying every 100 ms" in self.daemon_log(),
                 message="the daemon to run out of descriptors")
        cpu_before = cpu_seconds(daemon)
        time.sleep(1.0)  # the span measured
        self.assertLess(cpu_seconds(daemon) - cpu_before, 0.3, "the daemon spins on accept")
        resource.prlimit(daemon, resource.RLIMIT_NOFILE, (soft, hard))
        for client in clients:
            client.close()
        self.assert_serving()
        self.assertEqual(self.daemon_log().count("accepting a connection failed"), 1, "logged once, not every retry")
        self.assertIn("accepting connections again", self.daemon_log())


class RuntimeDirectory(FaultTestCase):
    def in_private_mounts(self, script):
        """Runs `script` with sh as root in a private mount namespace; the test's variables are exported."""
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        env = dict(self.env, WORK=self.work, HOTD=HOTD)
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script], env=env,
                              capture_output=True, text=True, timeout=60)

    def start_on_full_filesystem(self, command):
        return self.in_private_mounts("""
            mkdir "$WORK/full"
            mount -t tmpfs -o size=64k tmpfs "$WORK/full"
            mkdir -m 700 "$WORK/full/run"
            dd if=/dev/zero of="$WORK/full/filler" bs=4k 2>/dev/null || true
            HOTD_RUNTIME_DIR="$WORK/full/run" timeout 20 "$HOTD" %s
        """ % command)

    def test_full_filesystem_at_start_is_a_clear_error(self):
        result = self.start_on_full_filesystem("serve")
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn("cannot write %s/full/run/daemon.lock: No space left on device (disk full?)" % self.work,
                      result.stderr)

    def test_full_filesystem_when_a_command_starts_the_daemon_says_why(self):
        result = self.start_on_full_filesystem("ps")
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("No space left on device", result.stderr)

    def test_read_only_runtime_directory_at_start_is_a_clear_error(self):
        result = self.in_private_mounts("""
            mkdir -p "$WORK/ro/existing" && chmod 700 "$WORK/ro/existing"
            mount --bind "$WORK/ro" "$WORK/ro" && mount -o remount,bind,ro "$WORK/ro"
            HOTD_RUNTIME_DIR="$WORK/ro/missing" timeout 20 "$HOTD" serve || echo "exit $?"
            HOTD_RUNTIME_DIR="$WORK/ro/existing" timeout 20 "$HOTD" serve || echo "exit $?"
        """)
        self.assertEqual(result.stdout.count("exit 2"), 2, result.stdout + result.stderr)
        self.assertIn("cannot create the runtime directory %s/ro/missing: Read-only file system" % self.work,
                      result.stderr)
        self.assertIn("cannot open %s/ro/existing/daemon.lock: Read-only file system" % self.work, result.stderr)


class Lifecycle(FaultTestCase):
    def test_daemon_lifecycle_ends_in_a_clean_exit(self):
        self.hotd("serve")
        daemon = self.daemon_pid()
        app, process = self.attached_app("app.py", 1)
        self.write("app.py", loop_app(2))
        self.hotd("patch", app)
        client = RpcClient(self.socket_path())
        client.call("hotd/status")
        client.sock.sendall(b"Content-Length: 100\r\n\r\n{")  # left mid-message
        process.kill()
        self.hotd("stop")
        wait_for(lambda: process_gone(daemon), timeout=30, message="the daemon to exit")
        client.close()
        log = self.daemon_log()
        for problem in ("Sanitizer", "runtime error:", "terminate called"):
            self.assertNotIn(problem, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
