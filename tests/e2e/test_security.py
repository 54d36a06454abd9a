"""The attacks of issue 14, each run for real against the daemon (docs/SECURITY.md lists them): raw
agents on the Unix socket and over TCP (`hotd serve --listen`), FIFOs, devices and oversized files
named as modules or saved, another uid (65534 through `setpriv`) preparing traps in shared
directories, and a target in a private mount namespace attached with ptrace."""

import glob
import json
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

from hotd_testing import HOTD, PYTHON, HotdTestCase, RpcClient, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web"))
from web_testing import agent_handshake  # noqa: E402

OTHER_UID = 65534
SECRET = "s3cr3t-only-on-this-disk"
IDLE_TARGET = "import time\nwhile True:\n    print('ready', flush=True)\n    time.sleep(0.05)\n"


def can_switch_uid():
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def as_other_uid(*command):
    """Runs `command` as uid and gid 65534 without supplementary groups or capabilities."""
    return subprocess.run(["setpriv", "--reuid=%d" % OTHER_UID, "--regid=%d" % OTHER_UID, "--clear-groups"] +
                          list(command), capture_output=True, text=True, timeout=30, check=True)


def limit_memory():
    """For processes that would read without bound before the fix: fail at 3 GiB, not at the machine's
    end. Sanitizers reserve terabytes of address space, so they run without the limit."""
    if not os.environ.get("HOTD_SANITIZED"):
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def registration(pid=None, modules=(), watch=()):
    """agent/register params as the Python agent sends them."""
    params = {"python_version": "3.11.2", "implementation": "cpython", "executable": PYTHON, "argv": ["app.py"],
              "cwd": "/", "launcher": "run", "modules": list(modules), "watch": list(watch)}
    if pid is not None:
        params["pid"] = pid
    return params


def module(path, source=None):
    entry = {"name": os.path.splitext(os.path.basename(path))[0], "file": path}
    if source is not None:
        entry["source"] = source
    return entry


class SecurityTestCase(HotdTestCase):
    serve_options = ()

    def setUp(self):
        super().setUp()
        self.hotd("serve", "--quiet", *self.serve_options)
        self.agents = []

    def tearDown(self):
        for agent in self.agents:
            agent.close()
        super().tearDown()

    def unix_agent(self):
        agent = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        self.agents.append(agent)
        return agent

    def tcp_agent(self):
        """An agent stream over `--listen`, holding the token as any reader of web.json does."""
        with open(os.path.join(self.runtime, "web.json")) as info_file:
            info = json.load(info_file)
        host, port = info["agent_listen"][0].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=10)
        self.assertEqual(agent_handshake(sock, info["token"]), 101)  # the proof of the token, as agents make it
        agent = RpcClient(sock=sock)
        self.agents.append(agent)
        return agent

    def register(self, agent, params):
        before, reply = agent.call_seeing("agent/register", params)
        self.assertIn("result", reply, reply)
        return before

    def sent_until_now(self, agent):
        """Everything the daemon sent `agent` so far: an unknown request's error reply comes after it."""
        before, reply = agent.call_seeing("agent/fence")
        self.assertEqual(reply["error"]["code"], -32601)
        return before

    def start_idle_target(self):
        target = subprocess.Popen([PYTHON, "-c", IDLE_TARGET], stdout=subprocess.PIPE, text=True)
        target.out_file = target.err_file = None
        self.processes.append(target)
        self.assertEqual(target.stdout.readline().strip(), "ready")
        self.addCleanup(target.stdout.close)
        return target

    def processes_listed(self):
        return json.loads(self.hotd("ps", "--json").stdout)["processes"]


class RemoteAgentsReadNoFiles(SecurityTestCase):
    """Point 4: an agent over TCP claims files with an empty text; the daemon must never send it a
    file's text from the disk, which it did not send itself (docs/SECURITY.md: a TCP peer reads no
    file)."""

    serve_options = ("--listen", "127.0.0.1:0")

    def setUp(self):
        super().setUp()
        wait_for(lambda: os.path.exists(os.path.join(self.runtime, "web.json")), message="web.json")
        self.project = os.path.join(self.work, "project")
        self.settings = self.write("project/settings.py", 'PASSWORD = "%s"\n' % SECRET)
        self.creds = self.write("project/creds.env", "TOKEN=%s\n" % SECRET)

    def assert_nothing_disclosed(self, messages):
        for message in messages:
            self.assertNotIn(SECRET, json.dumps(message))

    def test_files_claimed_with_an_empty_text_or_a_drift_are_not_caught_up_from_the_disk(self):
        drifting = dict(module(self.settings, "PASSWORD = None\n"), differs=["PASSWORD"])  # "update it from disk"
        for claimed in ([module(self.settings, ""), module(self.creds, "")], [drifting]):
            rogue = self.tcp_agent()
            received = self.register(rogue, registration(4242, claimed, [self.project]))
            received += self.sent_until_now(rogue)
            self.assert_nothing_disclosed(received)
            self.assertEqual([m.get("method") for m in received], [])

    def test_a_catch_up_goes_to_the_local_process_that_missed_it_and_nobody_else(self):
        rogue = self.tcp_agent()
        self.register(rogue, registration(4242, [module(self.settings, "")]))
        local = self.unix_agent()
        self.register(local, registration(modules=[module(self.settings, 'PASSWORD = "old"\n')], watch=[self.project]))
        catch_up = local.receive()
        self.assertEqual(catch_up["method"], "agent/patch")
        self.assertIn(SECRET, catch_up["params"]["source"])  # the same uid may read the file anyway
        self.assert_nothing_disclosed(self.sent_until_now(rogue))

    def test_revert_never_sends_the_text_a_remote_agent_claimed(self):
        # The remote agent is first to report the file: its claim must not become a version of the file
        # that `hotd revert` sends to every process.
        rogue = self.tcp_agent()
        self.register(rogue, registration(4242, [module(self.settings, 'import os\nos.system("id")\n')]))
        local = self.unix_agent()
        self.register(local, registration(modules=[module(self.settings, 'PASSWORD = "%s"\n' % SECRET)]))
        self.write("project/settings.py", 'PASSWORD = "changed"\n')

        def save(*command):
            running = subprocess.Popen([HOTD] + list(command), env=self.env, stdout=subprocess.PIPE, text=True)
            for agent in (local, rogue):  # both run the file: the save goes to both, as saves do
                patch = agent.receive()
                self.assertEqual(patch["method"], "agent/patch")
                agent.reply(patch["id"], {"ok": True, "elapsed_ms": 1, "results": [{"status": "applied"}]})
                if agent is local:
                    sent = patch["params"]["source"]
            output = running.communicate(timeout=30)[0]
            self.assertEqual(running.returncode, 0, output)
            return sent

        self.assertEqual(save("patch", self.settings), 'PASSWORD = "changed"\n')
        self.assertEqual(save("revert", self.settings), 'PASSWORD = "%s"\n' % SECRET)


class AgentPids(SecurityTestCase):
    """Point 11: the pid an agent claims decides nothing on the Unix socket (the kernel's is taken)
    and must be a pid over TCP; neither makes `hotd attach` of a real process a no-op."""

    serve_options = ("--listen", "127.0.0.1:0")

    def setUp(self):
        super().setUp()
        wait_for(lambda: os.path.exists(os.path.join(self.runtime, "web.json")), message="web.json")

    def test_an_agent_on_the_socket_is_the_process_the_kernel_names(self):
        target = self.start_idle_target()
        for claimed in (0, -1, 1, 2 ** 31, target.pid):
            self.register(self.unix_agent(), registration(claimed))
        self.assertEqual([p["pid"] for p in self.processes_listed()], [os.getpid()] * 5)
        result = self.hotd("attach", str(target.pid))
        self.assertIn("attached to %d" % target.pid, result.stdout)
        self.assertIn(target.pid, [p["pid"] for p in self.processes_listed()])

    def test_over_tcp_the_pid_must_be_one_and_never_stands_for_a_local_process(self):
        for claimed in (0, -1, 2 ** 31, 2 ** 32 + 5, 1.5, "12", None):
            before, reply = self.tcp_agent().call_seeing("agent/register", registration(claimed))
            self.assertEqual(reply.get("error", {}).get("code"), -32602, "pid %r: %r" % (claimed, reply))
        target = self.start_idle_target()
        self.register(self.tcp_agent(), registration(target.pid))  # another place may have that pid
        result = self.hotd("attach", str(target.pid))
        self.assertIn("attached to %d" % target.pid, result.stdout)
        listed = [(p["pid"], "remote" in p) for p in self.processes_listed()]
        self.assertEqual(sorted(listed), [(target.pid, False), (target.pid, True)])


class BoundedReads(SecurityTestCase):
    """Point 5 and parts of 12: a path someone names is read only when it is a regular file of at most
    8 MiB, without blocking the daemon's one thread, and why not is said."""

    def big_module(self):
        return self.write("big.py", "x = 1\n" * ((8 << 20) // 6 + 100))  # just over 8 MiB

    def test_a_fifo_named_as_a_module_or_saved_does_not_block_the_daemon(self):
        fifo = os.path.join(self.work, "fifo.py")
        os.mkfifo(fifo)
        self.register(self.unix_agent(), registration(modules=[module(fifo)]))
        client = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        self.agents.append(client)
        reply = client.call("hotd/patchFile", {"path": fifo})
        self.assertIn("cannot read %s: a FIFO" % fifo, reply["error"]["message"])
        self.assertEqual(self.hotd("status", "--json", timeout=10).returncode, 0)
        self.assertIn("not reading %s: a FIFO" % fifo, self.daemon_log())
        result = self.hotd("patch", fifo, check=False, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertIn("a FIFO", result.stderr)

    def test_a_device_named_as_a_module_or_saved_is_not_read(self):
        self.hotd("stop")
        subprocess.run([HOTD, "serve", "--quiet"], env=self.env, check=True, preexec_fn=limit_memory)
        self.register(self.unix_agent(), registration(modules=[module("/dev/zero")]))
        self.assertIn("not reading /dev/zero: a device", self.daemon_log())
        self.assertEqual(self.hotd("status", "--json").returncode, 0)
        result = subprocess.run([HOTD, "patch", "/dev/zero"], env=self.env, capture_output=True, text=True,
                                timeout=30, preexec_fn=limit_memory)
        self.assertEqual(result.returncode, 2)
        self.assertIn("cannot read '/dev/zero': a device", result.stderr)

    def test_a_module_over_8_mib_is_neither_read_nor_taken_nor_saved(self):
        big = self.big_module()
        self.register(self.unix_agent(), registration(modules=[module(big)]))
        self.assertIn("not reading %s: larger than 8 MiB" % big, self.daemon_log())
        with open(big) as text:  # an agent sends none so large: the daemon would parse any size
            self.register(self.unix_agent(), registration(modules=[module(big, text.read())]))
        self.assertIn("not taking the text of %s that process %d reported: larger than 8 MiB" % (big, os.getpid()),
                      self.daemon_log())
        result = self.hotd("patch", big, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("larger than 8 MiB", result.stderr)

    def test_a_program_importing_a_module_over_8_mib_stays_attached_and_patchable(self):
        self.big_module()
        app = self.write("app.py", "import time, big\n\ndef value():\n    return 1\n\nwhile True:\n"
                                   "    print('value=%d' % value(), flush=True)\n    time.sleep(0.05)\n")
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=1")
        wait_for(lambda: "not reading %s" % os.path.join(self.work, "big.py") in self.daemon_log(),
                 message="the daemon to say why it does not read big.py")
        with open(app) as source:
            self.write("app.py", source.read().replace("return 1", "return 2"))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.wait_output(process, "value=2")

    def test_a_directory_is_not_a_file_to_save(self):
        directory = os.path.join(self.work, "package")
        os.mkdir(directory)
        self.assertIn("a directory", self.hotd("patch", directory, check=False).stderr)
        editor = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        self.agents.append(editor)
        editor.call("initialize", {"capabilities": {}})
        editor.notify("initialized")
        uri = "file://" + directory
        editor.notify("textDocument/didSave", {"textDocument": {"uri": uri}})  # before the fix: "applied"
        before, reply = editor.call_seeing("workspace/executeCommand",
                                           {"command": "hotd.patchFile", "arguments": [uri]})
        self.assertIn("cannot read " + directory, reply["error"]["message"])
        self.assertEqual([m for m in before if m.get("method") == "hotd/patched"], [])
        self.assertIn("not reading %s: a directory" % directory, self.daemon_log())


@unittest.skipUnless(can_switch_uid(), "needs root and setpriv to act as another uid")
class OtherUsersTraps(HotdTestCase):
    """Points 2 and 12: another uid prepares paths in shared directories before hotd uses them."""

    def test_a_runtime_dir_through_another_uids_symlink_is_refused(self):
        ours = os.path.join(self.work, "ours")
        os.mkdir(ours, 0o700)
        link = os.path.join(tempfile.gettempdir(), "hotd-trap-%d" % os.getpid())
        as_other_uid("ln", "-s", ours, link)
        self.addCleanup(os.unlink, link)
        for given in (link + "/", link):  # the slash made lstat follow the link
            self.env["HOTD_RUNTIME_DIR"] = given
            result = self.hotd("serve", "--quiet", check=False)
            self.assertEqual(result.returncode, 2, given)
            self.assertIn("goes through the symlink %s of uid %d" % (link, OTHER_UID), result.stderr)
        self.assertFalse(os.path.exists(os.path.join(ours, "daemon.sock")))

    def test_a_runtime_dir_inside_another_uids_directory_is_refused(self):
        theirs = os.path.join(tempfile.gettempdir(), "hotd-trap-dir-%d" % os.getpid())
        as_other_uid("mkdir", "-m", "0777", theirs)
        self.addCleanup(shutil.rmtree, theirs, True)
        self.env["HOTD_RUNTIME_DIR"] = os.path.join(theirs, "runtime")
        result = self.hotd("serve", "--quiet", check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("inside %s, which belongs to uid %d" % (theirs, OTHER_UID), result.stderr)

    def test_the_agent_package_staged_for_another_mount_namespace_is_nobody_elses(self):
        # The target sees its own /tmp and not hotd's Python directory, so `hotd attach` stages the
        # package in /dev/shm, which every uid shares. Before the fix it went to a name another uid could
        # compute (a hash of the package) and reused what it found there.
        shared = tempfile.mkdtemp(prefix="hotd-shared-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, shared, True)
        self.env["HOTD_RUNTIME_DIR"] = self.runtime = os.path.join(shared, "runtime")
        script = os.path.join(shared, "target.py")
        with open(script, "w") as out:
            out.write(IDLE_TARGET)
        package = os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "python", "hotd_agent")
        marker = os.path.join("/dev/shm", "hotd-trap-ran-%d" % os.getpid())
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        trap = os.path.join("/dev/shm", "hotd-agent-%d-%x" % (os.geteuid(), package_hash(package)), "hotd_agent")
        if os.path.lexists(os.path.dirname(trap)):  # left by an earlier hotd: put back afterwards
            aside = os.path.dirname(trap) + ".aside-%d" % os.getpid()
            os.rename(os.path.dirname(trap), aside)
            self.addCleanup(os.rename, aside, os.path.dirname(trap))
        as_other_uid("mkdir", "-m", "0777", "-p", os.path.join(trap, "link"))
        self.addCleanup(shutil.rmtree, os.path.dirname(trap), True)
        trap_code = "open(%r, 'w').write('the other uid ran code in the target')\n" % marker
        as_other_uid("sh", "-c", 'printf "%%s" "$0" > %s/link/__init__.py && chmod 0777 %s/link/__init__.py'
                     % (trap, trap), trap_code)
        hotd_python = os.path.abspath(os.path.join(package, ".."))

        def attach_new_target():
            """The directory staged for a new target in its own mount namespace, after attaching."""
            target = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 "mount -t tmpfs tmpfs %s && mount -t tmpfs tmpfs /tmp && exec %s %s" % (hotd_python, PYTHON, script)],
                stdout=subprocess.PIPE, text=True)
            self.processes.append(target)
            target.out_file = target.err_file = None
            self.addCleanup(target.stdout.close)
            self.assertEqual(target.stdout.readline().strip(), "ready")
            staged_before = set(glob.glob("/dev/shm/hotd-agent-%d-*" % target.pid))
            result = self.hotd("attach", str(target.pid), check=False)
            staged = set(glob.glob("/dev/shm/hotd-agent-%d-*" % target.pid)) - staged_before
            for path in staged:
                self.addCleanup(shutil.rmtree, path, True)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(len(staged), 1)
            return target, staged.pop()

        target, staged = attach_new_target()
        self.assertFalse(os.path.exists(marker), "the trap ran in the target")
        made = os.lstat(staged)
        self.assertEqual((made.st_uid, stat.S_IMODE(made.st_mode)), (os.geteuid(), 0o700))
        # Each attach stages its own copy; the next one removes those of processes that have exited.
        target.kill()
        target.wait()
        attach_new_target()
        self.assertFalse(os.path.exists(staged))


def package_hash(package):
    """The name hotd once gave the staged package: FNV-1a over each .py file's name, a NUL and its
    content, in path order; what another uid computes to lay the trap."""
    value = 1469598103934665603
    for path in sorted(glob.glob(os.path.join(package, "*.py"))):
        with open(path, "rb") as source:
            data = os.path.basename(path).encode() + b"\0" + source.read()
        for byte in data:
            value = ((value ^ byte) * 1099511628211) % (1 << 64)
    return value


if __name__ == "__main__":
    unittest.main(verbosity=2)
