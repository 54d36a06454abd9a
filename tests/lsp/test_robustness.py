"""Malformed and hostile input on the daemon socket: each case gets the reply it is owed, the
connection is closed only when the byte stream cannot be resynchronised, and the daemon keeps
serving everyone (checked after every case and at the end)."""

import json
import os
import socket
import unittest

from lsp_testing import HotdTestCase, LspConnection, frame, socket_connection, uri

INIT = frame({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {"capabilities": {}}})
PROBE = frame({"jsonrpc": "2.0", "id": "probe", "method": "shutdown"})


def raw(body):
    """A correctly framed body given as bytes or str (which may be invalid JSON)."""
    body = body.encode() if isinstance(body, str) else body
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def msg(**fields):
    return frame(dict({"jsonrpc": "2.0"}, **fields))


def request(method, params=None, id=1):
    message = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return frame(message)


def notify(method, params):
    return frame({"jsonrpc": "2.0", "method": method, "params": params})


# Expected outcomes: the error codes of the replies that come before the probe's answer (None for a
# successful result); CLOSED: a parse error (-32700) then the connection ends; WAITING: the daemon
# waits for the rest of a message (nothing comes back, the connection stays open).
CLOSED = "closed"
WAITING = "waiting"
PARSE, INVALID, NOT_FOUND, PARAMS, NOT_INITIALIZED, FAILED = -32700, -32600, -32601, -32602, -32002, -32803

DID_OPEN = {"textDocument": {"uri": "file:///tmp/r.py", "languageId": "python", "version": 1, "text": "x = 1\n"}}


def change(changes, uri="file:///tmp/r.py", version=2):
    return notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes})


def at(line, character):
    return {"line": line, "character": character}


# (name, initialize first, bytes sent, expected)
CASES = [
    # --- framing: headers ---
    ("no header at all", False, b"{}\r\n\r\n", CLOSED),
    ("header without colon", False, b"Content-Length 5\r\n\r\n{...}", CLOSED),
    ("missing content length", False, b"Content-Type: application/json\r\n\r\n{}", CLOSED),
    ("negative length", False, b"Content-Length: -5\r\n\r\nhello", CLOSED),
    ("non-numeric length", False, b"Content-Length: five\r\n\r\nhello", CLOSED),
    ("hex length", False, b"Content-Length: 0x10\r\n\r\n", CLOSED),
    ("float length", False, b"Content-Length: 2.5\r\n\r\n{}", CLOSED),
    ("empty length", False, b"Content-Length: \r\n\r\n{}", CLOSED),
    ("length with trailing junk", False, b"Content-Length: 2abc\r\n\r\n{}", CLOSED),
    ("length overflowing 64 bits", False, b"Content-Length: 99999999999999999999999\r\n\r\n{}", CLOSED),
    ("length over the cap", False, b"Content-Length: 67108865\r\n\r\n", CLOSED),
    ("length of 1 GiB", False, b"Content-Length: 1073741824\r\n\r\n", CLOSED),
    ("conflicting lengths", False, b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", CLOSED),
    ("header over 8 KiB without end", False, b"X-Junk: " + b"a" * 9000, CLOSED),
    ("endless header lines", False, b"X-A: b\r\n" * 2000, CLOSED),
    ("binary garbage", False, bytes(range(256)) * 40, CLOSED),
    ("HTTP request on the socket", False, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", CLOSED),
    ("NUL bytes", False, b"\0" * 10000, CLOSED),
    ("lone newlines", False, b"\n" * 9000, CLOSED),
    ("truncated header", False, b"Content-Len", WAITING),
    ("header without the empty line", False, b"Content-Length: 2\r\n", WAITING),
    ("truncated body", False, b"Content-Length: 100\r\n\r\n{\"jsonrpc\"", WAITING),
    ("large length, body still coming", False, b"Content-Length: 60000000\r\n\r\n", WAITING),
    # --- framing that is fine ---
    ("zero length is an empty body: invalid JSON", False, b"Content-Length: 0\r\n\r\n", [PARSE]),
    ("lower-case header name", False, b"content-length: 2\r\n\r\n[]", [INVALID]),
    ("extra Content-Type header", False,
     b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 2\r\n\r\n[]", [INVALID]),
    ("spaces around the length", False, b"Content-Length:    2   \r\n\r\n[]", [INVALID]),
    # --- JSON and UTF-8 ---
    ("truncated JSON", False, raw('{"jsonrpc": "2.0", "id": 1'), [PARSE]),
    ("trailing comma", False, raw('{"jsonrpc": "2.0", "id": 1,}'), [PARSE]),
    ("single quotes", False, raw("{'jsonrpc': '2.0'}"), [PARSE]),
    ("NaN", False, raw('{"jsonrpc": "2.0", "id": NaN, "method": "x"}'), [PARSE]),
    ("two values in one body", False, raw('{} {}'), [PARSE]),
    ("invalid UTF-8 in a string", False, raw(b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}'), [PARSE]),
    ("overlong UTF-8", False, raw(b'{"jsonrpc": "2.0", "id": 1, "method": "\xc0\xaf"}'), [PARSE]),
    ("UTF-8 surrogate half", False, raw(b'{"jsonrpc": "2.0", "id": 1, "method": "\xed\xa0\x80"}'), [PARSE]),
    ("truncated UTF-8", False, raw(b'{"jsonrpc": "2.0", "id": 1, "method": "\xe2\x82"}'), [PARSE]),
    ("UTF-16 body", False, raw('{"jsonrpc": "2.0"}'.encode("utf-16")), [PARSE]),
    ("lone escaped surrogate", False, raw('{"jsonrpc": "2.0", "id": 1, "method": "\\ud800"}'), [PARSE]),
    ("control character in string", False, raw(b'{"jsonrpc": "2.0", "id": 1, "method": "a\x01b"}'), [PARSE]),
    # Nesting is refused before parsing (protocol/json_depth.hpp): parsing it could overflow the stack.
    ("deeply nested arrays, unterminated", False, raw("[" * 100000), [INVALID]),
    ("deeply nested params", True, request("shutdown", None, 7)[:0] + raw('{"jsonrpc": "2.0", "id": 7, "method": "x", "params": ' + "[" * 20000 + "]" * 20000 + "}"), [INVALID]),
    ("a million nested arrays", True, raw('{"jsonrpc": "2.0", "id": 8, "method": "x", "params": ' + "[" * 10 ** 6 + "]" * 10 ** 6 + "}"), [INVALID]),
    ("huge number", False, raw('{"jsonrpc": "2.0", "id": 1e999, "method": "x"}'), [PARSE]),
    # --- JSON-RPC shape: valid JSON that is not a request object is an invalid request ---
    ("a number", False, raw("42"), [INVALID]),
    ("a string", False, raw('"initialize"'), [INVALID]),
    ("null", False, raw("null"), [INVALID]),
    ("a batch", True, raw('[{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}]'), [INVALID]),
    ("empty object", True, raw("{}"), [INVALID]),
    ("missing jsonrpc", True, raw('{"id": 1, "method": "shutdown"}'), [INVALID]),
    ("jsonrpc 1.0", True, raw('{"jsonrpc": "1.0", "id": 1, "method": "shutdown"}'), [INVALID]),
    ("jsonrpc as number", True, raw('{"jsonrpc": 2.0, "id": 1, "method": "shutdown"}'), [INVALID]),
    ("method as number", True, msg(id=1, method=5), [INVALID]),
    ("method as null", True, msg(id=1, method=None), [INVALID]),
    ("method as object", True, msg(id=1, method={"a": 1}), [INVALID]),
    ("id as object", True, msg(id={"a": 1}, method="shutdown"), [INVALID]),
    ("id as array", True, msg(id=[1], method="shutdown"), [INVALID]),
    ("id as float", True, msg(id=1.5, method="shutdown"), [INVALID]),
    ("id as bool", True, msg(id=True, method="shutdown"), [INVALID]),
    ("id as null", True, msg(id=None, method="shutdown"), [INVALID]),
    ("params as string", True, msg(id=1, method="shutdown", params="x"), [PARAMS]),
    ("params as number", True, msg(id=1, method="shutdown", params=3), [PARAMS]),
    ("params as null, for a method without params (eglot's shutdown)", True,
     msg(id=1, method="shutdown", params=None), [None]),
    ("params as null, for a method that needs them", True,
     msg(id=1, method="workspace/executeCommand", params=None), [PARAMS]),
    ("no method and no result", True, msg(id=1), [INVALID]),
    ("response without pending request", True, msg(id=1, result=None), []),
    ("error response", True, msg(id=1, error={"code": 1, "message": "x"}), []),
    ("notification with bad params", True, msg(method="textDocument/didOpen", params=7), []),
    # --- before initialize ---
    ("request before initialize: shutdown", False, request("workspace/executeCommand", {"command": "hotd.listProcesses"}), [NOT_INITIALIZED]),
    ("request before initialize: hover", False, request("textDocument/hover", {}), [NOT_INITIALIZED]),
    ("request before initialize: unknown", False, request("x/y"), [NOT_INITIALIZED]),
    ("string id before initialize", False, request("textDocument/definition", {}, id="a"), [NOT_INITIALIZED]),
    ("notification before initialize", False, notify("textDocument/didOpen", DID_OPEN), []),
    ("cancel before initialize", False, notify("$/cancelRequest", {"id": 1}), []),
    ("initialized before initialize", False, notify("initialized", {}), []),
    ("initialize with array params", False, request("initialize", []), [PARAMS]),
    ("initialize with string params", False, request("initialize", "x"), [PARAMS]),
    ("flood of requests before initialize", False, b"".join(request("x", None, i) for i in range(2000)), [NOT_INITIALIZED] * 2000),
    # --- after initialize: lifecycle and methods ---
    ("second initialize", True, request("initialize", {"capabilities": {}}), [INVALID]),
    ("unknown request", True, request("textDocument/hover", {}), [NOT_FOUND]),
    ("unknown request, empty name", True, request(""), [NOT_FOUND]),
    ("unknown request, huge name", True, request("m" * 100000), [NOT_FOUND]),
    ("unknown notification", True, notify("workspace/didChangeWatchedFiles", {"changes": []}), []),
    ("dollar notification", True, notify("$/setTrace", {"value": "verbose"}), []),
    ("dollar request", True, request("$/unknown", {}), [NOT_FOUND]),
    ("duplicate id while pending", True,
     request("workspace/executeCommand", {"command": "hotd.attach", "arguments": [4194304]}, id=5) +
     request("shutdown", None, id=5) + notify("$/cancelRequest", {"id": 5}), [INVALID, -32800]),
    ("request after shutdown", True, request("shutdown", None, 1) + request("shutdown", None, 2), [None, INVALID]),
    ("cancel with object id", True, notify("$/cancelRequest", {"id": {}}), []),
    ("cancel without id", True, notify("$/cancelRequest", {}), []),
    ("flood of unknown requests", True, b"".join(request("nope", None, i) for i in range(3000)), [NOT_FOUND] * 3000),
    ("flood of notifications", True, b"".join(notify("x/y", {"i": i}) for i in range(5000)), []),
    # --- executeCommand params ---
    ("executeCommand without params", True, request("workspace/executeCommand"), [PARAMS]),
    ("executeCommand, command number", True, request("workspace/executeCommand", {"command": 1}), [PARAMS]),
    ("executeCommand, unknown command", True, request("workspace/executeCommand", {"command": "rm"}), [PARAMS]),
    ("executeCommand, arguments object", True,
     request("workspace/executeCommand", {"command": "hotd.detach", "arguments": {"pid": 1}}), [PARAMS]),
    ("detach with float pid", True, request("workspace/executeCommand", {"command": "hotd.detach", "arguments": [1.5]}), [PARAMS]),
    ("detach with huge pid", True, request("workspace/executeCommand", {"command": "hotd.detach", "arguments": [2 ** 40]}), [PARAMS]),
    ("detach with zero pid", True, request("workspace/executeCommand", {"command": "hotd.detach", "arguments": [0]}), [PARAMS]),
    ("detach with null", True, request("workspace/executeCommand", {"command": "hotd.detach", "arguments": [None]}), [PARAMS]),
    ("detach of nobody", True, request("workspace/executeCommand", {"command": "hotd.detach", "arguments": [{"pid": 4194304}]}), [FAILED]),
    ("patchFile with number uri", True, request("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": [1]}), [PARAMS]),
    ("patchFile with http uri", True, request("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": ["http://x/a.py"]}), [PARAMS]),
    ("patchFile with remote file uri", True, request("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": ["file://host/a.py"]}), [PARAMS]),
    ("patchFile with bad escape", True, request("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": ["file:///a%zz.py"]}), [PARAMS]),
    ("patchFile with NUL escape", True, request("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": ["file:///a%00.py"]}), [PARAMS]),
    ("patchFile of a directory", True, request("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": ["file:///nonexistent-dir/"]}), [FAILED]),
    # --- document notifications with wrong types: logged, no reply, buffer intact ---
    ("didOpen without textDocument", True, notify("textDocument/didOpen", {}), []),
    ("didOpen with text number", True, notify("textDocument/didOpen", {"textDocument": dict(DID_OPEN["textDocument"], text=5)}), []),
    ("didOpen with version string", True, notify("textDocument/didOpen", {"textDocument": dict(DID_OPEN["textDocument"], version="1")}), []),
    ("didChange of unopened document", True, change([{"text": "y"}], uri="file:///tmp/other.py"), []),
    ("didChange with negative line", True, notify("textDocument/didOpen", DID_OPEN) + change([{"range": {"start": at(-1, 0), "end": at(0, 0)}, "text": "a"}]), []),
    ("didChange with float character", True, notify("textDocument/didOpen", DID_OPEN) + change([{"range": {"start": at(0, 0.5), "end": at(0, 1)}, "text": "a"}]), []),
    ("didChange with reversed range", True, notify("textDocument/didOpen", DID_OPEN) + change([{"range": {"start": at(0, 3), "end": at(0, 1)}, "text": "a"}]), []),
    ("didChange far past the end", True, notify("textDocument/didOpen", DID_OPEN) + change([{"range": {"start": at(10 ** 9, 10 ** 9), "end": at(4294967295, 4294967295)}, "text": "a"}]), []),
    ("didChange beyond 32 bits", True, notify("textDocument/didOpen", DID_OPEN) + change([{"range": {"start": at(2 ** 40, 0), "end": at(2 ** 40, 0)}, "text": "a"}]), []),
    ("didChange with contentChanges object", True, notify("textDocument/didOpen", DID_OPEN) + notify("textDocument/didChange", {"textDocument": {"uri": "file:///tmp/r.py", "version": 2}, "contentChanges": {}}), []),
    ("didChange with text missing", True, notify("textDocument/didOpen", DID_OPEN) + change([{"range": {"start": at(0, 0), "end": at(0, 0)}}]), []),
    ("didChange without version", True, notify("textDocument/didOpen", DID_OPEN) + notify("textDocument/didChange", {"textDocument": {"uri": "file:///tmp/r.py"}, "contentChanges": []}), []),
    ("didSave of non-file uri", True, notify("textDocument/didSave", {"textDocument": {"uri": "untitled:1"}, "text": "x"}), []),
    ("didSave with text number", True, notify("textDocument/didSave", {"textDocument": {"uri": "file:///tmp/r.py"}, "text": 1}), []),
    ("didSave of missing file", True, notify("textDocument/didSave", {"textDocument": {"uri": "file:///nonexistent/r.py"}}), []),
    ("didClose of unopened document", True, notify("textDocument/didClose", {"textDocument": {"uri": "file:///nope.py"}}), []),
    ("didClose with uri number", True, notify("textDocument/didClose", {"textDocument": {"uri": 3}}), []),
    ("flood of didChange", True, notify("textDocument/didOpen", DID_OPEN) + b"".join(change([{"range": {"start": at(0, 0), "end": at(0, 0)}, "text": "#"}], version=i) for i in range(3000)), []),
    # --- command-line role (first message hotd/...): wrong types get InvalidParams, not a crash ---
    ("client: detach with string pid", False, request("hotd/detach", {"pid": "12"}), [PARAMS]),
    ("client: patchFile without path", False, request("hotd/patchFile", {}), [PARAMS]),
    ("client: patchFile with path number", False, request("hotd/patchFile", {"path": 12}), [PARAMS]),
    ("client: unknown method", False, request("hotd/nope"), [NOT_FOUND]),
    ("client: params as array", False, msg(id=1, method="hotd/detach", params=[1]), [PARAMS]),
]


class Robustness(HotdTestCase):
    def setUp(self):
        super().setUp()
        self.hotd("ps")  # starts the daemon

    def outcome(self, initialize, payload, expected):
        connection = socket_connection(self.runtime)
        try:
            if initialize:
                connection.write(INIT)
                self.assertIn("result", connection.receive())
            connection.write(payload)
            if expected == WAITING:
                with self.assertRaises(TimeoutError):
                    connection.receive(0.3)
                return
            connection.write(PROBE) if expected != CLOSED else None
            codes = []
            while True:
                try:
                    message = connection.receive(10)
                except EOFError:
                    codes.append(CLOSED)
                    break
                if message.get("id") == "probe":
                    break
                codes.append(message["error"]["code"] if "error" in message else None)
            if expected == CLOSED:
                self.assertEqual(codes, [PARSE, CLOSED])
            else:
                self.assertEqual(codes, expected)
        finally:
            connection.sock.close()

    def test_each_hostile_input_gets_its_expected_outcome_and_the_daemon_keeps_serving(self):
        self.assertGreaterEqual(len(CASES), 100)
        self.assertEqual(len({case[0] for case in CASES}), len(CASES), "case names must be unique")
        bystander = socket_connection(self.runtime)  # another editor, served throughout
        bystander.initialize()
        for name, initialize, payload, expected in CASES:
            with self.subTest(name):
                self.outcome(initialize, payload, expected)
            with self.subTest(name + ": others still served"):
                reply = bystander.call("workspace/executeCommand", {"command": "hotd.listProcesses"})
                self.assertEqual(reply["result"], {"processes": []})
        self.assertEqual(json.loads(self.hotd("status", "--json").stdout)["editors"], 1)
        with open(os.path.join(self.runtime, "daemon.log"), errors="replace") as daemon_log:
            log = daemon_log.read()
        for reason in ("exceeds the limit", "invalid JSON", "not a non-negative integer", "malformed header",
                       "`line` must be a non-negative integer", "sent invalid params for hotd/detach"):
            self.assertTrue(reason in log, "the daemon's log should give the reason " + reason)
        self.assertEqual(log.count("x/y ignored: not supported"), 1, "a flood is logged once")

    def test_a_client_that_stops_reading_is_dropped_and_others_are_served(self):
        greedy = socket_connection(self.runtime)
        greedy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.write(INIT)
        flood = b"".join(request("m" * 2000, None, i) for i in range(1000))
        try:
            for _ in range(40):  # ~80 MB of MethodNotFound replies queued, never read
                greedy.write(flood)
        except (BrokenPipeError, ConnectionResetError):
            pass
        greedy.sock.close()
        self.assertIn("it stopped reading", self.daemon_log())
        other = socket_connection(self.runtime)
        self.assertIn("result", other.initialize())

    def test_buffers_over_the_limits_are_not_kept_and_their_saves_still_patch(self):
        editor = socket_connection(self.runtime)
        editor.initialize()

        def open_document(name, text):
            editor.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri(os.path.join(self.work, name)), "languageId": "python", "version": 1, "text": text}})

        for index in range(1000):
            open_document("m%d.py" % index, "X = %d\n" % index)
        open_document("one_too_many.py", "X = 0\n")
        warning = editor.notification("window/showMessage")
        self.assertIn("one_too_many.py is not kept: more than 1000 documents are open", warning["message"])
        open_document("another.py", "X = 0\n")  # refused silently: told once
        last = os.path.join(self.work, "one_too_many.py")
        editor.notify("textDocument/didSave", {"textDocument": {"uri": uri(last)}, "text": "X = 1\n"})
        self.assertEqual(editor.notification("hotd/patched")["uri"], uri(last))
        self.assertFalse(self.change_kept(editor, "another.py"))
        self.assertTrue(self.change_kept(editor, "m0.py"))
        for index in range(1000):
            editor.notify("textDocument/didClose", {"textDocument": {"uri": uri(os.path.join(self.work, "m%d.py" % index))}})

        big = "#" * (60 << 20) + "\n"  # 4 of these fit in 256 MiB, not 5
        for index in range(5):
            open_document("big%d.py" % index, big)
        # 300 MB of JSON to read first: minutes for a sanitized daemon on a busy machine.
        self.assertFalse(self.change_kept(editor, "big4.py", timeout=180))
        self.assertTrue(self.change_kept(editor, "big3.py"))
        self.assertEqual(self.daemon_log().count("is not kept"), 1)
        editor.sock.close()

    def change_kept(self, editor, name, timeout=10.0):
        """Whether the daemon applied a change to the buffer (it logs a change to one it did not keep)."""
        refused = "change of a document that is not open: " + uri(os.path.join(self.work, name))
        before = self.daemon_log().count(refused)
        editor.notify("textDocument/didChange", {"textDocument": {"uri": uri(os.path.join(self.work, name)), "version": 2},
                                                 "contentChanges": [{"text": "X = 2\n"}]})
        editor.call("workspace/executeCommand", {"command": "hotd.listProcesses"}, timeout)  # handled after the change
        return self.daemon_log().count(refused) == before

if __name__ == "__main__":
    unittest.main()
