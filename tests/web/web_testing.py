"""Clients for the daemon's TCP side (server/src/web_server.cpp), standard library only: plain HTTP
requests and a minimal WebSocket client (RFC 6455 handshake and framing), written here so that the
tests check the bytes on the wire rather than a library's idea of them."""

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from hotd_testing import HOTD, PYTHON, HotdTestCase, JsonRpcPeer, wait_for  # noqa: E402,F401

# A target that prints what value() returns, forever: a save turning "before" into "after" shows.
APP = """\
import time

def value():
    return "before"

while True:
    print("value=%s" % value(), flush=True)
    time.sleep(0.05)
"""

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def web_info(runtime):
    with open(os.path.join(runtime, "web.json")) as info:
        return json.load(info)


class ServedTestCase(HotdTestCase):
    """A daemon of the test's own, started with `serve_options`; `info`, `port` and `token` are its web.json."""

    serve_options = ()

    def setUp(self):
        super().setUp()
        self.hotd("serve", "--quiet", *self.serve_options)
        self.info = wait_for(self.fresh_info, message="web.json of the daemon")
        self.port, self.token = self.info["port"], self.info["token"]

    def fresh_info(self):
        try:
            info = web_info(self.runtime)
        except (OSError, ValueError):
            return None
        return info if info["pid"] == self.daemon_pid() else None


def read_headers(sock):
    """The status code and the raw header block of an HTTP response; reads nothing past it."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        data += byte
    status_line = data.split(b"\r\n", 1)[0]
    return (int(status_line.split()[1]) if status_line else 0), data.decode("latin-1")


def header_lines(headers):
    """`headers` as request lines: a dict, or a list of (name, value) pairs for a name sent twice."""
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    return ["%s: %s" % pair for pair in pairs]


def http_get(port, target, headers=None, host="127.0.0.1", timeout=10.0):
    """(status, body) of a GET; the daemon closes after each response."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        lines = ["GET %s HTTP/1.1" % target, "Host: %s:%d" % (host, port)]
        lines += header_lines(headers)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def handshake_proof(token, role, agent_nonce, daemon_nonce):
    """A proof of runtime/agent/agent_handshake.h, computed with Python's own HMAC."""
    message = "hotd %s proof %s %s" % (role, agent_nonce, daemon_nonce)
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def header_value(head, name):
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def agent_handshake(sock, token):
    """Upgrades `sock` to an agent stream as the native agent does: checks the daemon's proof, then
    sends the agent's. Returns the daemon's response status."""
    agent_nonce = os.urandom(32).hex()
    sock.sendall(("GET /agent HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: hotd-agent\r\n"
                  "Hotd-Agent-Nonce: %s\r\n\r\n" % agent_nonce).encode())
    status, head = read_headers(sock)
    if status == 101:
        daemon_nonce = header_value(head, "Hotd-Daemon-Nonce")
        expected = handshake_proof(token, "daemon", agent_nonce, daemon_nonce)
        if header_value(head, "Hotd-Daemon-Proof") != expected:
            raise AssertionError("the daemon's proof is wrong in %r" % head)
        sock.sendall(b"Hotd-Agent-Proof: %s\r\n" % handshake_proof(token, "agent", agent_nonce, daemon_nonce).encode())
    return status


class WebSocketRefused(Exception):
    def __init__(self, status):
        super().__init__("handshake refused with HTTP %d" % status)
        self.status = status


class WebSocket(JsonRpcPeer):
    def __init__(self, port, target="/lsp", headers=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % target, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += header_lines(headers)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, head = read_headers(self.sock)
        if status != 101:
            self.sock.close()
            raise WebSocketRefused(status)
        accept = base64.b64encode(hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest()).decode()
        if ("sec-websocket-accept: " + accept.lower()) not in head.lower():
            raise AssertionError("wrong Sec-WebSocket-Accept in %r" % head)
        self.next_id = 1

    def send_frame(self, opcode, payload, announced_length=None):
        """A masked frame, as clients must send; `announced_length` lies about the size (tests)."""
        length = len(payload) if announced_length is None else announced_length
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _exactly(self, size):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError("the daemon closed the connection")
            data += chunk
        return data

    def receive_frame(self):
        """(opcode, payload) of the next frame, answering pings on the way."""
        while True:
            first, second = self._exactly(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._exactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exactly(8))[0]
            if second & 0x80:
                raise AssertionError("the server masked a frame")
            payload = self._exactly(length)
            if first & 0x0F == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            return first & 0x0F, payload

    def send(self, message):
        self.send_frame(OP_TEXT, json.dumps(message).encode())

    def receive(self):
        opcode, payload = self.receive_frame()
        if opcode == OP_CLOSE:
            raise EOFError("closed by the daemon with code %d" % struct.unpack("!H", payload[:2])[0])
        return json.loads(payload)

    def wait_for(self, predicate, what="message"):
        while True:
            message = self.receive()
            if predicate(message):
                return message

    def call(self, method, params=None):
        request_id = self.request(method, params)
        return self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, "reply %d" % request_id)

    def close(self):
        self.sock.close()
