"""Floods of the web port by peers without the token (issue 14, points 6 and 7): requests that are
refused must not fill the daemon's log, and half-sent requests of another uid must not lock the
token holder out."""

import os
import re
import socket
import subprocess
import threading
import time
import unittest

from web_testing import HotdTestCase, http_get, wait_for, web_info

FOREIGN_ORIGIN = "http://evil.example/" + "x" * 7000


def refused_request(port):
    """One request from a foreign Origin, read to its end (403)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("GET /status HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n\r\n" % FOREIGN_ORIGIN).encode())
        while sock.recv(65536):
            pass


class FloodTestCase(HotdTestCase):
    serve_options = ()

    def setUp(self):
        super().setUp()
        self.hotd("serve", "--quiet", *self.serve_options)
        info = wait_for(self.fresh_info, message="web.json of the daemon")
        self.port, self.token = info["port"], info["token"]

    def fresh_info(self):
        try:
            info = web_info(self.runtime)
        except (OSError, ValueError):
            return None
        return info if info["pid"] == self.daemon_pid() else None

    def log_size(self):
        return os.path.getsize(os.path.join(self.runtime, "daemon.log"))


class LogAmplification(FloodTestCase):
    def test_thousands_of_refused_requests_with_a_7_kb_origin_add_a_few_lines_to_the_log(self):
        before = self.log_size()
        threads = [threading.Thread(target=lambda: [refused_request(self.port) for _ in range(1250)]) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertLess(self.log_size() - before, 4096, "5,000 refusals grew the log by that much")
        self.hotd("stop")  # says what it counted and had not logged yet
        log = self.daemon_log()
        first = [line for line in log.splitlines() if "refused a request from origin" in line]
        self.assertEqual(len(first), 1, first)
        self.assertIn("http://evil.example/xxx", first[0])
        self.assertIn("(7020 bytes)", first[0])  # cut, with its length
        self.assertLess(len(first[0]), 400)
        counted = sum(int(count) for count in re.findall(r"(\d+) from a foreign Origin", log))
        self.assertEqual(counted, 4999, log[-2000:])


if __name__ == "__main__":
    unittest.main()
