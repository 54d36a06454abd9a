"""Processes in other places (issue 9): an agent reaches the daemon over TCP with the token, and the
daemon maps the process's paths to the editor's.

The target runs in a network namespace and a mount namespace of its own: the only way to the daemon
is a veth pair to the daemon's own (private) network namespace, and its files live under /srv/app,
a bind mount of the project directory that only exists inside its mount namespace. Nothing leaves
this machine: both network namespaces are created here and hold only the veth pair and loopback.
"""

import json
import os
import shutil
import subprocess
import unittest

from web_testing import APP, HOTD, PYTHON, HotdTestCase, wait_for, web_info

DAEMON_ADDRESS, TARGET_ADDRESS = "10.211.0.1", "10.211.0.2"  # a /30 inside the test's own namespaces
REMOTE_DIR = "/srv/app"


def have_namespaces():
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip", "mount"))


@unittest.skipUnless(have_namespaces(), "needs root, unshare, nsenter and ip to build network namespaces")
class TargetInOtherNamespaces(HotdTestCase):
    def setUp(self):
        super().setUp()
        self.holders = []
        self.project = os.path.join(self.work, "project")
        self.app = self.write("project/app.py", APP)
        # Namespace holders: the namespaces live as long as these sleep.
        self.daemon_ns = self.hold(["unshare", "--net", "sleep", "600"])
        self.target_ns = self.hold(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
                                    "mount -t tmpfs hotd-test /srv && mkdir %s && mount --bind %s %s && "
                                    "touch /srv/web.json && exec sleep 600" % (REMOTE_DIR, self.project, REMOTE_DIR)])
        wait_for(lambda: self.in_target(["test", "-f", REMOTE_DIR + "/app.py"]).returncode == 0,
                 message="the target's mount namespace")
        suffix = str(os.getpid() % 100000)
        daemon_link, target_link = "hdd" + suffix, "hdt" + suffix
        self.in_daemon(["ip", "link", "add", daemon_link, "type", "veth", "peer", "name", target_link,
                        "netns", str(self.target_ns.pid)], check=True)
        for run, link, address in ((self.in_daemon, daemon_link, DAEMON_ADDRESS),
                                   (self.in_target, target_link, TARGET_ADDRESS)):
            run(["ip", "link", "set", "lo", "up"], check=True)
            run(["ip", "addr", "add", address + "/30", "dev", link], check=True)
            run(["ip", "link", "set", link, "up"], check=True)
        self.daemon_log_path = os.path.join(self.work, "daemon-stderr.txt")
        with open(self.daemon_log_path, "w") as log:
            self.holders.append(subprocess.Popen(
                ["nsenter", "-t", str(self.daemon_ns.pid), "-n", HOTD, "serve", "--foreground", "--listen",
                 DAEMON_ADDRESS + ":0"], env=self.env, stdout=log, stderr=log))
        info = wait_for(self.agent_endpoint, message="the daemon's web.json")
        self.endpoint, self.token_port = info["agent_listen"][0], info["port"]
        # The target sees only a copy of web.json's inode, mounted where a container would have it.
        self.in_target(["mount", "--bind", os.path.join(self.runtime, "web.json"), "/srv/web.json"], check=True)

    def tearDown(self):
        for holder in self.holders:
            holder.kill()
            holder.wait()
        super().tearDown()

    def hold(self, command):
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self.holders.append(process)
        return process

    def in_daemon(self, command, check=False):
        return subprocess.run(["nsenter", "-t", str(self.daemon_ns.pid), "-n"] + command, check=check,
                              capture_output=True)

    def in_target(self, command, check=False):
        return subprocess.run(["nsenter", "-t", str(self.target_ns.pid), "-n", "-m"] + command, check=check,
                              capture_output=True)

    def agent_endpoint(self):
        try:
            info = web_info(self.runtime)
        except (OSError, ValueError):
            return None
        return info if info["agent_listen"] else None

    def start_target(self, token_file="/srv/web.json"):
        out = open(os.path.join(self.work, "target-out.txt"), "w+")
        err = open(os.path.join(self.work, "target-err.txt"), "w+")
        command = ["nsenter", "-t", str(self.target_ns.pid), "-n", "-m", HOTD, "run", "--python", PYTHON,
                   "--connect", self.endpoint, "--token-file", token_file, "--map", REMOTE_DIR + ":" + self.project,
                   REMOTE_DIR + "/app.py"]
        process = subprocess.Popen(command, env=self.env, stdout=out, stderr=err, stdin=subprocess.PIPE)
        process.out_path, process.err_path, process.out_file, process.err_file = out.name, err.name, out, err
        self.processes.append(process)
        return process

    def remote_processes(self):
        listing = self.hotd("ps", "--json", check=False)
        return [p for p in json.loads(listing.stdout)["processes"] if "remote" in p] if listing.returncode == 0 else []

    def test_the_target_cannot_reach_the_daemon_other_than_through_the_veth(self):
        probe = "import socket; socket.create_connection(('127.0.0.1', %d), timeout=2)" % self.token_port
        self.assertNotEqual(self.in_target([PYTHON, "-c", probe]).returncode, 0)
        probe = "import socket; socket.create_connection(('%s', %s), timeout=2)" % tuple(self.endpoint.split(":"))
        self.assertEqual(self.in_target([PYTHON, "-c", probe]).returncode, 0)

    def test_a_save_on_the_host_patches_the_process_in_the_namespaces(self):
        process = self.start_target()
        self.wait_output(process, "value=before")
        remote = wait_for(self.remote_processes, message="the target to register over TCP")
        self.assertEqual(remote[0]["remote"].rsplit(":", 1)[0], TARGET_ADDRESS)
        self.assertEqual([f["file"] for f in remote[0]["files"]], [self.app])  # the editor's path, not /srv/app
        # Saved on the host as any editor would: the daemon watches the mapped directory (the process
        # asked to watch /srv/app) and patches the process under its own path.
        self.write("project/app.py", APP.replace('"before"', '"after"'))
        self.wait_output(process, "value=after")
        self.assertIn("hotd: updated app.value (line 3)", self.errors(process))

    def test_a_wrong_token_is_refused_and_said_on_stderr(self):
        # Neither side can tell a wrong token from an impostor: the agent finds the daemon's proof wrong
        # and sends nothing; the daemon sees the agent leave without its proof.
        self.in_target(["sh", "-c", "echo %s > /srv/wrong-token" % ("ab" * 32)], check=True)
        process = self.start_target("/srv/wrong-token")
        self.wait_output(process, "value=before")
        wait_for(lambda: "did not prove it holds the token of token_file" in self.errors(process),
                 message="the refusal on the target's stderr")
        self.assertEqual(self.remote_processes(), [])
        with open(self.daemon_log_path) as log:
            self.assertIn("refused an agent that did not prove it holds the token", log.read())


if __name__ == "__main__":
    unittest.main()
