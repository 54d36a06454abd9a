"""The Python half of the agent's connection to the daemon.

The native agent (runtime/agent/hotd_agent.c) owns the socket and calls these functions with the GIL
held, from its own thread: `registration` once per connection, `handle` for each message from the
daemon, `drain` when the import hook signalled new modules. Each returns the JSON-RPC message body to
send (bytes, possibly empty). Runs on a foreign thread: no `threading`, `logging` or `asyncio` imports.
"""

import json
import os
import sys
import time

# Read by the native agent after every call: true once the daemon asked this agent to detach.
stop_requested = False

_settings = {}
_reported_files = {}  # file path -> module names already reported to the daemon
_next_request_id = [1]
_hook_installed = [False]
_excluded_prefixes = []


def _parse_config(config):
    settings = {}
    for line in config.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            settings.setdefault(key, []).append(value)
    return settings


def _setting(name, default=None):
    values = _settings.get(name)
    return values[-1] if values else default


def _message(method, params, request=False):
    message = {"jsonrpc": "2.0", "method": method, "params": params}
    if request:
        message["id"] = _next_request_id[0]
        _next_request_id[0] += 1
    return json.dumps(message).encode("utf-8")


def _compute_excluded_prefixes():
    # The standard library and installed packages are not the user's code: they are neither reported
    # nor patched, which keeps the daemon's copies of baselines to the project's own files.
    prefixes = set()
    stdlib = os.path.dirname(os.path.abspath(os.__file__))
    prefixes.add(stdlib + os.sep)
    prefixes.add(os.path.dirname(os.path.abspath(__file__)) + os.sep)
    return tuple(prefixes)


def _is_user_file(path):
    if not path or not path.endswith(".py"):
        return False
    if "site-packages" in path or "dist-packages" in path:
        return False
    return not path.startswith(_excluded_prefixes[0])


def _new_user_modules():
    """Modules loaded from the user's .py files that the daemon has not heard of yet."""
    if not _excluded_prefixes:
        _excluded_prefixes.append(_compute_excluded_prefixes())
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        path = os.path.abspath(path)
        if not _is_user_file(path):
            continue
        names = _reported_files.setdefault(path, [])
        if name not in names:
            names.append(name)
            found.append({"name": name, "file": path})
    return found


class _ImportSignal(object):
    """A meta path entry that finds nothing: it only tells the agent thread that an import is
    happening, so that it drains new modules once the importer lets go of the GIL."""

    def __init__(self, wake_fd):
        self.wake_fd = wake_fd

    def find_spec(self, fullname, path=None, target=None):
        try:
            os.write(self.wake_fd, b"i")
        except OSError:
            pass  # the pipe is full: a drain is already pending
        return None

    def find_module(self, fullname, path=None):  # Python < 3.4 protocol, kept for odd importers
        return None


def registration(config):
    global stop_requested
    stop_requested = False
    _settings.clear()
    _settings.update(_parse_config(config))
    _reported_files.clear()
    if not _hook_installed[0]:
        wake_fd = int(_setting("wake_fd", "-1"))
        if wake_fd >= 0:
            sys.meta_path.insert(0, _ImportSignal(wake_fd))
            _hook_installed[0] = True
    params = {
        "pid": os.getpid(),
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "modules": _new_user_modules(),
        "watch": _settings.get("watch", []),
        "launcher": _setting("launcher", "attach"),
    }
    return _message("agent/register", params, request=True)


def drain(_unused=b""):
    modules = _new_user_modules()
    if not modules:
        return b""
    return _message("agent/imported", {"modules": modules})


def _reply(request_id, result=None, error=None):
    message = {"jsonrpc": "2.0", "id": request_id}
    if error is not None:
        message["error"] = error
    else:
        message["result"] = result
    return json.dumps(message).encode("utf-8")


def _modules_for(path, names):
    modules = []
    for name in names:
        module = sys.modules.get(name)
        if module is not None and os.path.abspath(getattr(module, "__file__", "") or "") == path:
            modules.append(module)
    return modules


def _describe(module_name, result):
    where = result.get("qualname") or result.get("label") or result.get("kind", "")
    if module_name and result.get("qualname"):
        where = module_name + "." + where
    return "%s %s (line %s)" % (result.get("status"), where, result.get("line"))


def _print_events(path, modules, outcome):
    verbosity = _setting("verbosity", "normal")
    if verbosity == "quiet" or _setting("launcher") != "run":
        return
    module_name = modules[0].__name__ if modules else os.path.basename(path)
    if module_name == "__main__":
        module_name = os.path.splitext(os.path.basename(path))[0]
    lines = []
    for result in outcome.get("results", []):
        status = result.get("status")
        if status in ("skipped", "shifted") and verbosity != "verbose":
            continue
        line = "hotd: " + _describe(module_name, result)
        if status in ("rude", "failed") or verbosity == "verbose":
            if result.get("message"):
                line += ": " + result["message"]
            error = result.get("error")
            if error:
                line += ": %s: %s" % (error.get("type"), error.get("message"))
        lines.append(line)
    if verbosity == "verbose":
        lines.append("hotd: %s patched in %.2f ms" % (path, outcome.get("elapsed_ms", 0.0)))
    if lines:
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()


def _patch(params):
    from . import patcher

    path = params["file"]
    names = params.get("modules") or _reported_files.get(path, [])
    modules = _modules_for(path, names)
    if not modules:
        return {"ok": False, "elapsed_ms": 0.0, "results": [], "error": "no module of this process runs " + path}
    started = time.perf_counter()
    outcome = patcher.apply_plan(params["plan"], path, modules)
    outcome.setdefault("elapsed_ms", (time.perf_counter() - started) * 1000.0)
    _print_events(path, modules, outcome)
    return outcome


def handle(body):
    global stop_requested
    try:
        message = json.loads(body.decode("utf-8"))
    except ValueError as error:
        return _reply(None, error={"code": -32700, "message": "invalid JSON from the daemon: %s" % error})
    method = message.get("method")
    request_id = message.get("id")
    if method is None:
        return b""  # a response to our registration
    try:
        if method == "agent/patch":
            return _reply(request_id, _patch(message.get("params") or {}))
        if method == "agent/ping":
            return _reply(request_id, {"pid": os.getpid()})
        if method == "agent/detach":
            stop_requested = True
            return _reply(request_id, {"detached": True})
    except Exception as error:  # the daemon gets the error; the target process carries on
        import traceback

        return _reply(request_id, error={"code": -32603, "message": "%s: %s" % (type(error).__name__, error),
                                         "data": traceback.format_exc()})
    if request_id is None:
        return b""
    return _reply(request_id, error={"code": -32601, "message": "unknown method " + str(method)})
