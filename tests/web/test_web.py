"""The daemon's HTTP status and WebSocket editors (issue 4): token, Origin, size cap, and an editor
over WebSocket patching a real process exactly as one on the Unix socket does."""

import json
import os
import socket
import stat
import struct
import unittest
import urllib.parse

from web_testing import (APP, OP_CLOSE, ServedTestCase, WebSocket, WebSocketRefused, agent_handshake, http_get,
                         wait_for)


class WebTestCase(ServedTestCase):
    def setUp(self):
        super().setUp()
        self.bearer = {"Authorization": "Bearer " + self.token}

    def websocket(self, headers=None, query=None):
        target = "/lsp" + ("?" + urllib.parse.urlencode(query) if query else "")
        return WebSocket(self.port, target, headers)

    def assert_daemon_serves(self):
        status, body = http_get(self.port, "/status", self.bearer)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["pid"], self.daemon_pid())


class Status(WebTestCase):
    def test_web_json_is_private_and_names_a_loopback_port_and_a_256_bit_token(self):
        mode = stat.S_IMODE(os.stat(os.path.join(self.runtime, "web.json")).st_mode)
        self.assertEqual(mode, 0o600)
        self.assertEqual(self.info["address"], "127.0.0.1")
        self.assertRegex(self.token, "^[0-9a-f]{64}$")

    def test_status_with_the_token_is_what_hotd_status_json_prints(self):
        status, body = http_get(self.port, "/status", self.bearer)
        self.assertEqual(status, 200)
        over_http = json.loads(body)
        on_socket = json.loads(self.hotd("status", "--json").stdout)
        for changing in ("uptime_seconds", "clients"):  # `hotd status` is itself a client while it asks
            over_http.pop(changing), on_socket.pop(changing)
        self.assertEqual(over_http, on_socket)

    def test_status_without_the_token_or_with_another_is_refused(self):
        self.assertEqual(http_get(self.port, "/status")[0], 401)
        self.assertEqual(http_get(self.port, "/status", {"Authorization": "Bearer " + "0" * 64})[0], 401)
        self.assertEqual(http_get(self.port, "/status?token=" + self.token[:-1])[0], 401)
        self.assertEqual(http_get(self.port, "/status?token=" + self.token)[0], 200)


class WebSocketEditor(WebTestCase):
    def test_initialize_round_trip_with_the_token_in_the_query(self):
        editor = self.websocket(query={"token": self.token})
        reply = editor.call("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.assertEqual(reply["result"]["serverInfo"]["name"], "hotd")
        self.assertEqual(reply["result"]["capabilities"]["textDocumentSync"]["change"], 2)
        editor.notify("initialized")
        wait_for(lambda: json.loads(http_get(self.port, "/status", self.bearer)[1])["editors"] == 1,
                 message="the WebSocket editor in the daemon's status")
        editor.close()
        wait_for(lambda: json.loads(http_get(self.port, "/status", self.bearer)[1])["editors"] == 0,
                 message="the closed editor to leave the daemon's status")

    def test_upgrade_without_the_token_is_refused(self):
        with self.assertRaises(WebSocketRefused) as refused:
            self.websocket()
        self.assertEqual(refused.exception.status, 401)

    def test_upgrade_from_a_foreign_origin_is_refused_even_with_the_token(self):
        for origin in ("http://evil.example", "null", "http://127.0.0.1:%d" % self.port):
            with self.assertRaises(WebSocketRefused) as refused:
                self.websocket(dict(self.bearer, Origin=origin))
            self.assertEqual(refused.exception.status, 403, origin)
        self.websocket(dict(self.bearer, Origin="vscode-webview://1b2c3d")).close()

    def test_a_second_origin_header_is_checked_too(self):
        allowed, foreign = ("Origin", "vscode-webview://1b2c3d"), ("Origin", "http://evil.example")
        for origins in ([allowed, foreign], [foreign, allowed]):
            headers = list(self.bearer.items()) + origins
            with self.assertRaises(WebSocketRefused) as refused:
                self.websocket(headers)
            self.assertEqual(refused.exception.status, 403, origins)
            self.assertEqual(http_get(self.port, "/status", headers)[0], 403, origins)
        self.assert_daemon_serves()

    def test_an_oversized_message_closes_that_websocket_and_the_daemon_keeps_serving(self):
        editor = self.websocket(self.bearer)
        # Only the frame header: the daemon must refuse on the announced size, not after 64 MiB.
        editor.send_frame(0x1, b"", announced_length=64 * 1024 * 1024 + 1)
        opcode, payload = editor.receive_frame()
        self.assertEqual((opcode, struct.unpack("!H", payload[:2])[0]), (OP_CLOSE, 1009))
        editor.close()
        other = self.websocket(self.bearer)
        self.assertIn("result", other.call("initialize", {"processId": None, "capabilities": {}}))
        other.close()
        self.assert_daemon_serves()
        self.assertIn("exceeded the locally configured limit", self.daemon_log())

    def test_a_save_over_websocket_patches_a_process_as_on_the_socket(self):
        app = self.write("app.py", APP)
        process = self.start(app, options=["--no-watch"])
        self.wait_output(process, "value=before")
        editor = self.websocket(self.bearer)
        editor.call("initialize", {"processId": None, "capabilities": {}})
        editor.notify("initialized")
        uri = "file://" + app
        editor.notify("textDocument/didSave", {"textDocument": {"uri": uri}, "text": APP.replace("before", "after")})
        patched = editor.wait_for(lambda m: m.get("method") == "hotd/patched")["params"]
        self.assertTrue(patched["ok"], patched)
        self.assertEqual([(p["pid"], p["status"]) for p in patched["processes"]], [(process.pid, "applied")])
        self.wait_output(process, "value=after")


class AllowedOrigins(WebTestCase):
    serve_options = ("--allow-origin", "http://localhost:8080")

    def test_a_configured_origin_is_allowed_and_only_that_one(self):
        self.websocket(dict(self.bearer, Origin="http://localhost:8080")).close()
        with self.assertRaises(WebSocketRefused) as refused:
            self.websocket(dict(self.bearer, Origin="http://localhost:8081"))
        self.assertEqual(refused.exception.status, 403)


class ConnectionLimit(WebTestCase):
    serve_options = ("--max-connections", "2")

    def test_connections_over_the_limit_are_closed_and_served_again_once_others_close(self):
        editor = self.websocket(self.bearer)
        idle = socket.create_connection(("127.0.0.1", self.port))  # accepted before the next: a backlog is in order
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as refused:
            refused.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = refused.recv(65536)
            except ConnectionResetError:  # closed with the request unread
                answer = b""
            self.assertEqual(answer, b"")  # closed without an answer
        wait_for(lambda: "web: refused a connection: too many connections (2" in self.daemon_log(),
                 message="the refusal in the log")
        idle.close()
        wait_for(lambda: self.status_answered(), message="a slot to free up")
        editor.close()

    def status_answered(self):
        try:
            return http_get(self.port, "/status", self.bearer)[0] == 200
        except (OSError, IndexError, ValueError):  # refused: closed without a status line
            return False


class AgentPort(WebTestCase):
    serve_options = ("--listen", "127.0.0.1:0")

    def agent_port(self):
        return int(self.info["agent_listen"][0].rsplit(":", 1)[1])

    def test_the_listen_port_serves_agents_only(self):
        self.assertEqual(http_get(self.agent_port(), "/status", self.bearer)[0], 404)
        with self.assertRaises(WebSocketRefused) as refused:
            WebSocket(self.agent_port(), "/lsp", self.bearer)
        self.assertEqual(refused.exception.status, 404)
        self.assertEqual(http_get(self.agent_port(), "/agent")[0], 401)

    def test_an_upgraded_agent_stream_that_speaks_as_a_client_is_closed(self):
        with socket.create_connection(("127.0.0.1", self.agent_port()), timeout=10) as sock:
            self.assertEqual(agent_handshake(sock, self.token), 101)
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "hotd/stop"}).encode()
            sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.assertEqual(sock.recv(100), b"")
        self.assert_daemon_serves()
        self.assertIn("only agents connect over TCP", self.daemon_log())


if __name__ == "__main__":
    unittest.main()
