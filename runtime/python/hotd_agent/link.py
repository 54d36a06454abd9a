"""The Python half of the agent's connection to the daemon.

The native agent (runtime/agent/hotd_agent.c) owns the socket and calls these functions with the GIL
held, from its own thread: `registration` once per connection, `handle` for each message from the
daemon, `drain` when the import hook signalled new modules (and again every few milliseconds while
`drain_again` is true). Each returns the JSON-RPC message body to send (bytes, possibly empty).
Runs on a foreign thread: no `threading`, `logging` or `asyncio` imports.
"""

import json
import os
import sys
import time

# Read by the native agent after every call: true once the daemon asked this agent to detach.
stop_requested = False
# Read by the native agent after every call: true while an import that was signalled has not yet put
# its module in sys.modules, so the agent drains again shortly instead of waiting for the next import.
drain_again = False

# The import hook signals when an import starts: the agent thread often drains while the importer
# is still searching the path (stat releases the GIL), before the module exists. Names stay awaited
# until their module is in sys.modules, or until no import happened for this long (a failed import).
AWAIT_IMPORT_SECONDS = 2.0
# Sources travel with the modules reported to the daemon; a message stays far below the daemon's
# 64 MiB cap, and a larger program is reported over several messages.
MAX_SOURCE_BYTES = 8 << 20
MAX_REPORT_BYTES = 16 << 20
# Under `hotd run`, the program's __main__ is awaited like an import: the bootstrap is `__main__` until
# it hands over to the program (runpy keeps the module object and changes its __file__), and in a
# child interpreter __main__ gets its file after the agent started (multiprocessing's spawned children
# replace it with `__mp_main__`).
_BOOTSTRAP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hotd_run.py")

_settings = {}
_config_for_children = [b""]  # the starter's config lines, to start an agent in a forked child
_fork_hook_installed = [False]
_reported_files = {}  # file path -> module names already reported to the daemon
# file path -> the text this process runs (str): read when the module was first reported, replaced by
# each save applied and each reload. Kept across daemon restarts (and inherited by forked children),
# so that a new daemon diffs the next save against what runs, not against what is on disk by then.
_running_sources = {}
_next_request_id = [1]
_import_signal = []  # the meta path entry, once installed
_awaited_imports = {}  # module name -> True, while its import may still be running
_last_import = [0.0]  # time.monotonic() of the latest import signal
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
    # hotd's own Python files (the agent package and the bootstrap) are excluded the same way.
    stdlib = os.path.dirname(os.path.abspath(os.__file__))
    hotd_python = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return (stdlib + os.sep, hotd_python + os.sep)


def _is_user_file(path):
    if not path or not path.endswith(".py"):
        return False
    if "site-packages" in path or "dist-packages" in path:
        return False
    return not path.startswith(_excluded_prefixes[0])


def _read_source(path):
    """The file's text, or None when it cannot be read, is not UTF-8 (JSON carries text only) or is
    too large to send; the daemon then reads the file itself."""
    try:
        with open(path, "rb") as source:
            data = source.read(MAX_SOURCE_BYTES + 1)
        return data.decode("utf-8") if len(data) <= MAX_SOURCE_BYTES else None
    except (OSError, UnicodeDecodeError):
        return None


def _new_user_modules():
    """Modules loaded from the user's .py files that the daemon has not heard of yet, each with the
    text the process runs. Stops at MAX_REPORT_BYTES of text and asks for another drain."""
    global drain_again
    if not _excluded_prefixes:
        _excluded_prefixes.append(_compute_excluded_prefixes())
    found = []
    budget = MAX_REPORT_BYTES
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        path = os.path.abspath(path)
        if not _is_user_file(path):
            continue
        names = _reported_files.setdefault(path, [])
        if name in names:
            continue
        if budget <= 0:
            drain_again = True  # the rest goes in the next message
            break
        names.append(name)
        if path not in _running_sources:
            _running_sources[path] = _read_source(path)
        entry = {"name": name, "file": path}
        if _running_sources[path] is not None:
            entry["source"] = _running_sources[path]
            budget -= len(entry["source"])
        found.append(entry)
    return found


def _imported(name):
    module = sys.modules.get(name)
    if name != "__main__":
        return module is not None
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and os.path.abspath(path) != _BOOTSTRAP


def _settle_awaited_imports():
    """Forgets awaited names whose module arrived, or whose import must have failed; sets drain_again.
    Call it before scanning sys.modules, so that every module it forgets is seen by the scan."""
    global drain_again
    expired = time.monotonic() - _last_import[0] > AWAIT_IMPORT_SECONDS
    for name in list(_awaited_imports):
        if expired or _imported(name):
            del _awaited_imports[name]
    drain_again = bool(_awaited_imports)


class _ImportSignal(object):
    """A meta path entry that finds nothing: it only tells the agent thread that an import is
    happening, so that it drains new modules once the importer lets go of the GIL."""

    def __init__(self, wake_fd):
        self.wake_fd = wake_fd

    def find_spec(self, fullname, path=None, target=None):
        _awaited_imports[fullname] = True
        _last_import[0] = time.monotonic()
        try:
            os.write(self.wake_fd, b"i")
        except OSError:
            pass  # the pipe is full: a drain is already pending
        return None

    def find_module(self, fullname, path=None):  # Python < 3.4 protocol, kept for odd importers
        return None


def _start_agent_in_forked_child():
    """After os.fork in an attached process: the agent thread did not survive, and the native half
    forgot it. Start a new one, so that the child registers as a process of its own (under `hotd run`,
    hotd_site/hotd_start.py installs the hook before the first fork can happen). Never raises: a child
    without an agent still runs, without live patching."""
    library = _setting("library")
    if stop_requested or not library:
        return
    try:
        import ctypes

        start = ctypes.CDLL(library).hotd_agent_start
        start.argtypes = [ctypes.c_char_p]
        start(_config_for_children[0])
    except Exception:
        pass


def registration(config):
    global stop_requested
    stop_requested = False
    _settings.clear()
    _settings.update(_parse_config(config))
    # The native half adds `library=` and `wake_fd=` to the starter's lines: a child's adds its own.
    _config_for_children[0] = b"\n".join(line for line in config.splitlines()
                                         if not line.startswith((b"library=", b"wake_fd=")))
    if not _fork_hook_installed[0] and _setting("launcher") != "run":
        os.register_at_fork(after_in_child=_start_agent_in_forked_child)
        _fork_hook_installed[0] = True
    _reported_files.clear()
    wake_fd = int(_setting("wake_fd", "-1"))
    if _import_signal:
        _import_signal[0].wake_fd = wake_fd
    elif wake_fd >= 0:
        _import_signal.append(_ImportSignal(wake_fd))
        sys.meta_path.insert(0, _import_signal[0])
    if _setting("launcher") == "run":
        _awaited_imports["__main__"] = True
        _last_import[0] = time.monotonic()
    _settle_awaited_imports()
    params = {
        "pid": os.getpid(),
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "modules": _new_user_modules(),
        "watch": _settings.get("watch", []),
        "watch_options": {
            "debounce_ms": int(_setting("debounce", "0")),
            "poll_seconds": float(_setting("poll", "0")),
            "include": _settings.get("include", []),
            "exclude": _settings.get("exclude", []),
        },
        "path_map": _settings.get("path_map", []),  # the daemon translates this process's paths to the editor's
        "launcher": _setting("launcher", "attach"),
    }
    return _message("agent/register", params, request=True)


def warm_up(_unused=b""):
    """Called once after registering: import the patcher now rather than on the first save."""
    from . import patcher  # noqa: F401

    return b""


def drain(_unused=b""):
    _settle_awaited_imports()
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
    """The distinct module objects of `path`: one module can be in sys.modules under two names
    (multiprocessing aliases `__main__` as `__mp_main__`), and must be patched once."""
    modules = []
    for name in names:
        module = sys.modules.get(name)
        if module is not None and os.path.abspath(getattr(module, "__file__", "") or "") == path:
            if not any(module is seen for seen in modules):
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
    if module_name in ("__main__", "__mp_main__"):
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


def _something_applied(outcome):
    """The daemon's rule (patch_coordinator.cpp, nothing_applied) for when a save becomes the baseline."""
    if outcome.get("error") is not None:
        return False
    results = outcome.get("results") or []
    return not results or any(result.get("status") != "failed" for result in results)


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
    if "source" in params and _something_applied(outcome):
        _running_sources[path] = params["source"]
    _print_events(path, modules, outcome)
    return outcome


def _reload(params):
    """`hotd reload`: re-execute the file's module(s) and their dependents (reloader.py)."""
    from . import reloader

    path = params["file"]
    modules = _modules_for(path, params.get("modules") or _reported_files.get(path, []))
    if not modules:
        return {"ok": False, "elapsed_ms": 0.0, "results": [], "error": "no module of this process runs " + path}
    user_modules = {file: _modules_for(file, names) for file, names in _reported_files.items()}
    user_modules[path] = modules
    executed = {}
    outcome = reloader.reload(path, user_modules, executed)
    for file in outcome["files"]:
        _running_sources[file] = executed.get(file)
    _print_events(path, modules, outcome)
    return outcome


def _announce_watching(watching):
    """With `hotd run -v`: what the daemon watches for this program (jurigged's verbose start)."""
    if not watching or not watching.get("roots") or _setting("verbosity") != "verbose" or _setting("launcher") != "run":
        return
    options = watching.get("options") or {}
    details = []
    if watching.get("mode") == "poll":
        details.append("polling every %g s" % options.get("poll_seconds", 0))
    else:
        details.append("%d directories" % watching.get("directories", 0))
    for key, label in (("include", "only"), ("exclude", "not")):
        if options.get(key):
            details.append("%s %s" % (label, ", ".join(options[key])))
    if options.get("debounce_ms"):
        details.append("debounce %d ms" % options["debounce_ms"])
    sys.stderr.write("hotd: watching %s (%s)\n" % (", ".join(watching["roots"]), "; ".join(details)))
    sys.stderr.flush()


def _forget_children():
    """After a detach, Python interpreters this process starts get no agent: the variables of
    hotd_start.hand_down go (forked children check stop_requested)."""
    os.environ.pop("HOTD_AGENT_LIB", None)
    os.environ.pop("HOTD_AGENT_CONFIG", None)


def handle(body):
    global stop_requested
    try:
        message = json.loads(body.decode("utf-8"))
    except ValueError as error:
        return _reply(None, error={"code": -32700, "message": "invalid JSON from the daemon: %s" % error})
    method = message.get("method")
    request_id = message.get("id")
    if method is None:  # the answer to our registration
        _announce_watching((message.get("result") or {}).get("watching"))
        return b""
    try:
        if method == "agent/patch":
            return _reply(request_id, _patch(message.get("params") or {}))
        if method == "agent/reload":
            return _reply(request_id, _reload(message.get("params") or {}))
        if method == "agent/ping":
            return _reply(request_id, {"pid": os.getpid()})
        if method == "agent/detach":
            stop_requested = True
            _forget_children()
            return _reply(request_id, {"detached": True})
    except Exception as error:  # the daemon gets the error; the target process carries on
        import traceback

        return _reply(request_id, error={"code": -32603, "message": "%s: %s" % (type(error).__name__, error),
                                         "data": traceback.format_exc()})
    if request_id is None:
        return b""
    return _reply(request_id, error={"code": -32601, "message": "unknown method " + str(method)})
