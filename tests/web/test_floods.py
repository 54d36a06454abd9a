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

from web_testing import ServedTestCase, http_get, wait_for

FOREIGN_ORIGIN = "http://evil.example/" + "x" * 7000

# Slowloris: keeps up to argv[2] connections to port argv[1] open, each with a request header that
# never ends, reopening every one the daemon closes, for argv[3] seconds. Prints "attacking" once it
# has opened argv[2], and at the end how many it opened.
SLOWLORIS = r"""
import resource, selectors, socket, sys, time
port, wanted, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
selector = selectors.DefaultSelector()
opened = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    while len(selector.get_map()) < wanted:
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            break
        selector.register(sock, selectors.EVENT_READ)
        opened += 1
        if opened == wanted:
            print("attacking", flush=True)
    for key, _ in selector.select(timeout=0.05):
        selector.unregister(key.fileobj)
        key.fileobj.close()
print("opened", opened, flush=True)
"""


def as_uid(uid):
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]


def refused_request(port):
    """One request from a foreign Origin, read to its end (403)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("GET /status HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n\r\n" % FOREIGN_ORIGIN).encode())
        while sock.recv(65536):
            pass


class FloodTestCase(ServedTestCase):
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


class SlowlorisTestCase(FloodTestCase):
    def attack(self, uid, connections, seconds):
        """Starts a slowloris of `uid` and returns once it has opened its connections."""
        log = open(os.path.join(self.work, "slowloris-%d.txt" % uid), "w+")
        attacker = subprocess.Popen(as_uid(uid) + ["/usr/bin/python3", "-c", SLOWLORIS, str(self.port), str(connections),
                                                   str(seconds)], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(log.close)
        self.addCleanup(attacker.wait)
        self.addCleanup(attacker.kill)
        wait_for(lambda: "attacking" in open(log.name).read(), message="uid %d to open its connections" % uid)
        return attacker

    def status_answered(self):
        started = time.monotonic()
        try:
            answered = http_get(self.port, "/status", {"Authorization": "Bearer " + self.token}, timeout=5)[0] == 200
        except (OSError, IndexError, ValueError):  # closed without an answer
            answered = False
        return answered, time.monotonic() - started

    def assert_holder_served(self, seconds):
        """Asks for /status every 100 ms for `seconds`: every request answered, none slower than 2 s."""
        deadline, slowest = time.monotonic() + seconds, 0.0
        while time.monotonic() < deadline:
            answered, took = self.status_answered()
            self.assertTrue(answered, "the token holder was refused")
            slowest = max(slowest, took)
            time.sleep(0.1)
        self.assertLess(slowest, 2.0)


class Slowloris(SlowlorisTestCase):
    def test_a_half_sent_request_is_closed_after_about_a_second(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            self.assertEqual(sock.recv(100), b"")
            self.assertLess(time.monotonic() - started, 3.0)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to attack as another uid (setpriv)")
    def test_1200_half_sent_requests_of_another_uid_do_not_lock_the_token_holder_out(self):
        attacker = self.attack(65534, 1200, 8)
        self.assert_holder_served(5)
        attacker.wait(timeout=30)
        self.hotd("stop")
        log = self.daemon_log()
        self.assertIn("web: refused a connection from uid 65534: it has 16 connections open", log)
        self.assertLess(len(log), 64 * 1024)


class SlowlorisFromSeveralUids(SlowlorisTestCase):
    serve_options = ("--max-connections", "40")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to attack as other uids (setpriv)")
    def test_half_of_the_connections_stay_for_the_token_holder_whatever_other_uids_keep_open(self):
        attackers = [self.attack(uid, 100, 8) for uid in (60001, 60002, 60003)]
        self.assert_holder_served(3)
        for attacker in attackers:
            attacker.wait(timeout=30)
        self.assertIn("connections that have not proved the token fill half of --max-connections (40)", self.daemon_log())


if __name__ == "__main__":
    unittest.main()
