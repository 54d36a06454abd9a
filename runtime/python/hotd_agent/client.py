"""Patching from code: a thin client of the daemon, for programs that drive hotd themselves.

Each call sends a save to the daemon over its socket, exactly as an editor would, and returns the
daemon's answer: per process, what it applied (docs/PROTOCOL.md, `hotd/patchFile`). Every process that
runs the file is patched, this one included. Do not call these from a patch hook: the agent is busy
applying that patch and could not take the next one.
"""

import json
import os
import socket as _socket
import sys

from . import hooks


class PatchError(Exception):
    """The daemon could not be reached or refused the request."""


def patch_file(path, text=None, timeout=30.0):
    """Send ``text`` (default: the file's content on disk) as a save of ``path``; return the result."""
    if hooks.is_patching():
        raise PatchError("patch_file cannot be called while a patch is being applied (from a patch hook)")
    params = {"path": os.path.abspath(path)}
    if text is not None:
        params["text"] = text
    return _request("hotd/patchFile", params, timeout)


def revert(target, timeout=30.0):
    """Bring a module (or a file path) back to its source on disk, undoing patch_function/patch_file
    calls whose text never reached the disk."""
    path = getattr(target, "__file__", target)
    return patch_file(path, None, timeout)


def patch_function(func, source, timeout=30.0):
    """Replace the definition of ``func`` by ``source`` (a complete ``def``, decorators included) in
    every process running its module. The rest of the file stays as it is on disk."""
    import inspect  # only here: it is a large import and most programs never call this

    path = inspect.getsourcefile(func)
    lines, first = inspect.getsourcelines(func)
    with open(path) as source_file:
        current = source_file.read().splitlines(True)
    start = first - 1
    replacement = source if source.endswith("\n") else source + "\n"
    indentation = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    if indentation:  # a method: indent the new text like the old one
        replacement = "".join(indentation + line if line.strip() else line for line in replacement.splitlines(True))
    text = "".join(current[:start]) + replacement + "".join(current[start + len(lines):])
    return patch_file(path, text, timeout)


def _request(method, params, timeout):
    link = sys.modules.get("hotd_agent.link")
    socket_path = link._setting("socket") if link is not None else None
    if not socket_path:
        raise PatchError("this process is not attached to a hotd daemon")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode("utf-8")
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(socket_path)
        connection.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = _read_message(connection)
    except OSError as error:
        raise PatchError("cannot reach the hotd daemon at %s: %s" % (socket_path, error))
    finally:
        connection.close()
    if "error" in reply:
        raise PatchError(reply["error"].get("message", "the daemon refused the request"))
    return reply.get("result")


def _read_message(connection):
    data = b""
    while b"\r\n\r\n" not in data:
        data += _receive(connection)
    header, _, data = data.partition(b"\r\n\r\n")
    length = 0
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(data) < length:
        data += _receive(connection)
    return json.loads(data[:length].decode("utf-8"))


def _receive(connection):
    chunk = connection.recv(65536)
    if not chunk:
        raise OSError("the daemon closed the connection")
    return chunk
