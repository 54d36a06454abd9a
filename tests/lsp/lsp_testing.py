"""An LSP client for tests: JSON-RPC with Content-Length framing over the daemon socket or over the
stdio of `hotd lsp`, with the daemon and runtime directory of tests/e2e/hotd_testing.py."""

import json
import os
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from hotd_testing import HOTD, HotdTestCase, JsonRpcPeer, frame, wait_for  # noqa: E402,F401


class LspConnection(JsonRpcPeer):
    def __init__(self, read_fd, write_fd):
        self.read_fd, self.write_fd = read_fd, write_fd
        self.buffer = b""
        self.next_id = 1
        self.unclaimed = []  # messages received while waiting for another one, oldest first

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view):]

    def send(self, message):
        self.write(frame(message))

    def _take_message(self):
        header_end = self.buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return None
        length = int(self.buffer[:header_end].split(b":")[1])
        if len(self.buffer) < header_end + 4 + length:
            return None
        body = self.buffer[header_end + 4:header_end + 4 + length]
        self.buffer = self.buffer[header_end + 4 + length:]
        return json.loads(body)

    def receive(self, timeout=10.0):
        """The next message; TimeoutError when none comes, EOFError when the peer closed."""
        deadline = time.monotonic() + timeout
        while True:
            message = self._take_message()
            if message is not None:
                return message
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("no message within %.1f s" % timeout)
            try:
                chunk = os.read(self.read_fd, 65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buffer += chunk

    def wait_for(self, predicate, timeout=10.0, what="message"):
        """The first message, received earlier or now, that matches; the others stay unclaimed."""
        for index, message in enumerate(self.unclaimed):
            if predicate(message):
                return self.unclaimed.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.receive(max(left, 0))
            except TimeoutError:
                raise AssertionError("timed out waiting for %s; unclaimed: %r" % (what, self.unclaimed[-10:]))
            if predicate(message):
                return message
            self.unclaimed.append(message)

    def call(self, method, params=None, timeout=10.0):
        request_id = self.request(method, params)
        return self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, timeout, "reply to " + method)

    def notification(self, method, timeout=10.0, where=lambda params: True):
        return self.wait_for(lambda m: m.get("method") == method and where(m.get("params")), timeout, method)["params"]

    def initialize(self):
        reply = self.call("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
        self.notify("initialized")
        return reply


def socket_connection(runtime):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.path.join(runtime, "daemon.sock"))
    connection = LspConnection(sock.fileno(), sock.fileno())
    connection.sock = sock
    return connection


def bridge_process(env):
    """`hotd lsp` as an editor launches it; returns (process, connection)."""
    process = subprocess.Popen([HOTD, "lsp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    return process, LspConnection(process.stdout.fileno(), process.stdin.fileno())


def uri(path):
    return "file://" + path
