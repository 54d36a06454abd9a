"""Ways a save reaches the daemon. Each sender's `save` returns the monotonic ns at which the save
left the harness; `finish` waits until the daemon is done with it where the path has a reply (the
summary of the save, with each process's result), and returns None where it has none (the watcher).
"""

import os
import socket
import subprocess

from .harness import RpcClient, frame, now_ns, write_by_rename, write_file


def uri(path):
    return "file://" + path


class SocketConnection(RpcClient):
    """The daemon socket's JSON-RPC client over an already connected socket (a bridge's stdio)."""

    def __init__(self, sock):  # pylint: disable=super-init-not-called
        self.sock = sock
        self.buffer = b""
        self.next_id = 1

    def notify(self, method, params):
        self.sock.sendall(frame({"jsonrpc": "2.0", "method": method, "params": params}))

    def discard_pending(self):
        """Drops what arrived unasked: the daemon tells every editor about every save (also those
        sent by the other senders), and unread messages would fill the socket and stall the server."""
        self.sock.setblocking(False)
        try:
            while self.sock.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        self.buffer = b""


class PatchFileSender(object):
    """`hotd/patchFile` with the text, on the daemon socket (what `hotd patch` sends)."""

    name = "hotd/patchFile (socket)"

    def __init__(self, bench):
        self.client = bench.client()
        self.pending = None

    def open(self, path, text):
        pass

    def save(self, path, text):
        write_file(path, text)
        started = now_ns()
        self.pending = self.client.send("hotd/patchFile", {"path": path, "text": text})
        return started

    def finish(self, path, timeout=30.0):
        while True:
            reply = self.client.receive(timeout)
            if reply.get("id") == self.pending:
                return reply.get("result")

    def close(self):
        self.client.close()


class LspSender(object):
    """An editor: didOpen once, then per save didChange (while typing, untimed) and didSave with the
    text. `via` is "bridge" (`hotd lsp` on stdio, how editors launch it) or "socket" (connecting to
    the daemon socket directly)."""

    def __init__(self, bench, via):
        self.name = "LSP didSave (%s)" % ("hotd lsp" if via == "bridge" else "daemon socket")
        self.bridge = None
        if via == "bridge":
            ours, theirs = socket.socketpair()
            self.bridge = subprocess.Popen([bench.hotd_binary, "lsp"], env=bench.env, stdin=theirs, stdout=theirs)
            theirs.close()
        else:
            ours = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ours.connect(bench.socket_path())
        self.connection = SocketConnection(ours)
        self.connection.call("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
        self.connection.notify("initialized", {})
        self.versions = {}

    def open(self, path, text):
        self.versions[path] = 1
        self.connection.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri(path), "languageId": "python", "version": 1, "text": text}})

    def save(self, path, text):
        if path not in self.versions:
            self.open(path, text)
        self.versions[path] += 1
        self.connection.discard_pending()
        self.connection.notify("textDocument/didChange", {
            "textDocument": {"uri": uri(path), "version": self.versions[path]}, "contentChanges": [{"text": text}]})
        write_file(path, text)
        started = now_ns()
        self.connection.notify("textDocument/didSave", {"textDocument": {"uri": uri(path)}, "text": text})
        return started

    def finish(self, path, timeout=30.0):
        while True:
            message = self.connection.receive(timeout)
            if message.get("method") == "hotd/patched" and message["params"].get("uri") == uri(path):
                return message["params"]

    def close(self):
        try:
            self.connection.call("shutdown", None, timeout=5.0)
            self.connection.notify("exit", None)
        except (OSError, EOFError):
            pass
        self.connection.close()
        if self.bridge:
            self.bridge.wait(timeout=10)


class WatcherSender(object):
    """The harness writes the file; the daemon's watcher (`hotd run`) picks it up. No reply."""

    def __init__(self, by_rename):
        self.name = "file watcher, %s" % ("temp file + rename" if by_rename else "write in place")
        self.write = write_by_rename if by_rename else write_file

    def open(self, path, text):
        pass

    def save(self, path, text):
        started = now_ns()
        self.write(path, text)
        return started

    def finish(self, path, timeout=30.0):
        return None

    def close(self):
        pass
