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
import tempfile
import unittest

from hotd_testing import HOTD, PYTHON, HotdTestCase, RpcClient, wait_for

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

    def register(self, agent, params):
        before, reply = agent.call_seeing("agent/register", params)
        self.assertIn("result", reply, reply)
        return before

    def sent_until_now(self, agent):
        """Everything the daemon sent `agent` so far: an unknown request's error reply comes after it."""
        before, reply = agent.call_seeing("agent/fence")
        self.assertEqual(reply["error"]["code"], -32601)
        return before


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

    def test_a_module_over_8_mib_is_neither_read_nor_saved(self):
        big = self.big_module()
        self.register(self.unix_agent(), registration(modules=[module(big)]))
        self.assertIn("not reading %s: larger than 8 MiB" % big, self.daemon_log())
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
