"""The daemon's log under pressure (issue 14, point 7): it is rotated so that it never holds more than
twice its limit, a line is cut to a few KiB, and a full disk loses lines, not the log: once space is
back the daemon logs again and says how many lines it lost."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from hotd_testing import HOTD, HotdTestCase, RpcClient, wait_for  # noqa: E402

LOG_LIMIT = 64 * 1024
MAX_LINE = 4096
NESTED = b"[" * 300 + b"]" * 300  # refused and logged once per message (deeper than 256 levels)

# Sends one nested message to the daemon socket given as argv[1] and waits for its answer.
SEND_NESTED = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "s.connect(sys.argv[1])\n"
    "body = b'[' * 300 + b']' * 300\n"
    "s.sendall(b'Content-Length: %d\\r\\n\\r\\n' % len(body) + body)\n"
    "s.recv(100)\n"
)


def framed(body):
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class DaemonLog(HotdTestCase):
    def log_path(self, suffix=""):
        return os.path.join(self.runtime, "daemon.log" + suffix)

    def test_the_log_is_rotated_and_never_holds_more_than_twice_its_limit(self):
        self.env["HOTD_LOG_MAX_BYTES"] = str(LOG_LIMIT)
        self.hotd("serve")
        client = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        for _ in range(2500):  # about 200 KB of log lines
            client.sock.sendall(framed(NESTED))
            self.assertEqual(client.receive()["error"]["code"], -32600)
        client.close()
        for suffix in ("", ".1"):
            self.assertLessEqual(os.path.getsize(self.log_path(suffix)), LOG_LIMIT + MAX_LINE, suffix)
        with open(self.log_path(".1")) as older, open(self.log_path()) as newer:
            kept = older.read() + newer.read()
        self.assertNotIn("hotd daemon %d serving" % self.daemon_pid(), kept)  # the oldest lines are gone
        self.assertIn("refused a message nested deeper than 256 levels", kept.splitlines()[-1])
        self.hotd("ps")

    def test_a_line_is_cut_and_says_how_much_was_cut(self):
        self.hotd("serve")
        client = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        method = "x" * 20000
        client.sock.sendall(framed(json.dumps({"jsonrpc": "2.0", "method": method, "params": 5}).encode()))
        line = wait_for(lambda: [l for l in self.daemon_log().splitlines() if "xxxxxxxx" in l],
                        message="the editor's notification in the log")[0]
        client.close()
        self.assertLessEqual(len(line), MAX_LINE + 64)
        self.assertRegex(line, r"\.\.\. \(\d+ more bytes cut\)$")
        self.hotd("ps")

    def test_after_a_full_disk_the_daemon_logs_again_once_there_is_space(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        script = """
            mkdir "$WORK/small"
            mount -t tmpfs -o size=256k tmpfs "$WORK/small"
            mkdir -m 700 "$WORK/small/run"
            export HOTD_RUNTIME_DIR="$WORK/small/run"
            "$HOTD" serve
            dd if=/dev/zero of="$WORK/small/filler" bs=4k 2>/dev/null || true
            # The log's last block too, so that the daemon's next line cannot be written.
            while printf 'filler line\\n' >> "$HOTD_RUNTIME_DIR/daemon.log" 2>/dev/null; do :; done
            /usr/bin/python3 -c "$SEND_NESTED" "$HOTD_RUNTIME_DIR/daemon.sock"
            rm "$WORK/small/filler"
            "$HOTD" stop
            grep -v '^filler line' "$HOTD_RUNTIME_DIR/daemon.log"
        """
        env = dict(self.env, WORK=self.work, HOTD=HOTD, SEND_NESTED=SEND_NESTED)
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script], env=env,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        log = result.stdout
        self.assertNotIn("refused a message nested", log)  # written while the disk was full: lost
        self.assertIn("(1 log line(s) lost: No space left on device)", log)
        self.assertIn("stop requested by pid", log)
        self.assertIn("stopped", log.splitlines()[-1])


if __name__ == "__main__":
    unittest.main()
