"""A TCP agent trusts only the daemon (issue 14, point 1): after `hotd stop`, another uid binds the
port a `hotd run --connect` agent reconnects to, answers its upgrade with 101 and sends a patch that
runs its code. The agent must not send it the token or anything derived from it, must not run the
patch, and must connect to the real daemon once it is back."""

import json
import os
import subprocess
import unittest

from web_testing import APP, HOTD, HotdTestCase, wait_for, web_info

# The impostor: accepts the agent's connections on the daemon's port and records what each sent.
# Every other connection answers with a 101 without any proof, the others with a made-up nonce and
# proof; each then sends an `agent/patch` at once, as a listener that cannot prove anything would.
IMPOSTOR = r"""
import json, os, socket, sys
port, patch = int(sys.argv[1]), sys.argv[2].encode()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(16)
print("listening", flush=True)
for attempt in range(1000):
    connection, _ = listener.accept()
    connection.settimeout(5)
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = connection.recv(4096)
        if not chunk:
            break
        request += chunk
    proof = "" if attempt % 2 == 0 else "Hotd-Daemon-Nonce: %s\r\nHotd-Daemon-Proof: %s\r\n" % (
        os.urandom(32).hex(), os.urandom(32).hex())
    after = b""
    try:
        connection.sendall(("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: hotd-agent\r\n"
                            "%s\r\n" % proof).encode() + b"Content-Length: %d\r\n\r\n" % len(patch) + patch)
        connection.settimeout(1)
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            after += chunk
    except OSError:
        pass
    connection.close()
    print(json.dumps({"request": request.decode("latin-1"), "after": after.decode("latin-1")}), flush=True)
"""


def as_another_uid():
    """setpriv's prefix to run as nobody when the test runs as root, else nothing: the agent cannot
    tell one uid from another on a TCP port, so the same attack also runs as the test's own uid."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []


class ImpostorOnTheAgentPort(HotdTestCase):
    def setUp(self):
        super().setUp()
        self.impostor = None
        self.hotd("serve", "--quiet", "--listen", "127.0.0.1:0")
        info = wait_for(self.daemon_info, message="the daemon's web.json")
        self.port = int(info["agent_listen"][0].rsplit(":", 1)[1])
        self.first_token = info["token"]

    def tearDown(self):
        if self.impostor:
            self.impostor.kill()
            self.impostor.wait()
            self.impostor_log.close()
        super().tearDown()

    def daemon_info(self):
        try:
            info = web_info(self.runtime)
        except (OSError, ValueError):
            return None
        return info if info["pid"] == self.daemon_pid() and info["agent_listen"] else None

    def remote_pids(self):
        listing = self.hotd("ps", "--json", check=False)
        if listing.returncode != 0:
            return []
        return [p["pid"] for p in json.loads(listing.stdout)["processes"] if "remote" in p]

    def start_impostor(self, patch):
        self.impostor_log = open(os.path.join(self.work, "impostor.txt"), "w+")
        self.impostor = subprocess.Popen(as_another_uid() + ["/usr/bin/python3", "-c", IMPOSTOR, str(self.port), patch],
                                         stdout=self.impostor_log, stderr=subprocess.STDOUT)
        wait_for(lambda: "listening" in self.impostor_connections(raw=True), message="the impostor to listen")

    def impostor_connections(self, raw=False):
        with open(self.impostor_log.name) as log:
            text = log.read()
        return text if raw else [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def test_an_impostor_learns_nothing_runs_nothing_and_the_real_daemon_gets_the_agent_back(self):
        app = self.write("app.py", APP)
        marker = os.path.join(self.work, "impostor-ran-code")
        evil = APP.replace('    return "before"', '    open(%r, "w").close()\n    return "pwned"' % marker)
        evil_path = self.write("evil.py", evil)
        plan = json.loads(self.hotd("diff", "--json", app, evil_path).stdout)
        patch = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "agent/patch",
                            "params": {"file": app, "modules": ["__main__"], "plan": plan, "source": evil}})
        process = self.start(app, options=["--no-watch", "--connect", "127.0.0.1:%d" % self.port,
                                           "--token-file", os.path.join(self.runtime, "web.json")])
        self.wait_output(process, "value=before")
        wait_for(lambda: process.pid in self.remote_pids(), message="the agent to register over TCP")

        self.hotd("stop")
        self.start_impostor(patch)
        # Both kinds of answer, twice each: the agent keeps refusing while the impostor listens.
        connections = wait_for(lambda: len(self.impostor_connections()) >= 4 and self.impostor_connections(),
                               timeout=20, message="the agent to try the impostor four times")
        for connection in connections:
            self.assertNotIn(self.first_token, connection["request"] + connection["after"])
            self.assertNotIn("Authorization", connection["request"])
            self.assertEqual(connection["after"], "", "the agent sent something after an unproven 101")
        self.assertIsNone(process.poll())
        self.assertFalse(os.path.exists(marker), "the agent ran the impostor's patch")
        self.assertNotIn("pwned", self.output(process))
        self.assertIn("did not prove it holds the token of token_file", self.errors(process))

        self.impostor.kill()
        self.impostor.wait()
        self.hotd("serve", "--quiet", "--listen", "127.0.0.1:%d" % self.port)
        self.assertNotEqual(wait_for(self.daemon_info, message="the new daemon's web.json")["token"], self.first_token)
        wait_for(lambda: process.pid in self.remote_pids(), message="the agent to register with the real daemon")
        self.write("app.py", APP.replace('"before"', '"after"'))
        self.assertIn("pid %d: applied" % process.pid, self.hotd("patch", app).stdout)
        self.wait_output(process, "value=after")
        self.assertFalse(os.path.exists(marker))


if __name__ == "__main__":
    unittest.main()
