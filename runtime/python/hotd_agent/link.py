"""The Python half of the agent's connection to the daemon.

The native agent (runtime/agent/hotd_agent.c) owns the socket and calls these functions with the GIL
held, from its own thread: `registration` once per connection, `handle` for each message from the
daemon, `drain` when the import hook signalled new modules (and again every few milliseconds while
`drain_again` is true), `set_wake_pipe` when it replaced a wake pipe the program closed. Each returns the JSON-RPC message body to send (bytes, possibly empty).
Runs on a foreign thread: no `threading`, `logging` or `asyncio` imports.
"""

import importlib.machinery
import json
import os
import sys
import time
import types

# Read by the native agent after every call: true once the daemon asked this agent to detach.
stop_requested = False
# Read by the native agent after every call: true while a report is owed that no wake-up will bring:
# a module imported by a loader hotd does not watch (it signals the start of the import only), or a
# watched import the daemon is waiting for; the agent then drains again every few milliseconds.
drain_again = False

# Names of imports by loaders hotd does not watch stay awaited until their module is in sys.modules,
# or until no import happened for this long (a failed import).
AWAIT_IMPORT_SECONDS = 2.0
# A module whose top level is still running this long after its import started is reported anyway:
# the program's main loop runs inside that import, and saves patch it as a running script. Long
# enough for a slow import (a module importing torch, a busy machine): reported before its top level
# has defined everything, a save of it would be overwritten by the old definitions that follow.
LONG_IMPORT_SECONDS = 5.0
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
_registered = [False]  # the daemon answered this connection's registration
_reported_files = {}  # file path -> module names already reported to the daemon
# file path -> the text this process runs (str, or None when it cannot be known): captured by the
# loader when the module's code was made (_CapturingLoader), replaced by each save applied and each
# reload. Kept across daemon restarts (and inherited by forked children), so that a new daemon diffs
# the next save against what runs, not against what is on disk by then.
_running_sources = {}
# file path -> {"differs": [...], "missing": [...]}: definitions whose running code is not what the
# text of _running_sources compiles to (the file changed between the import and the report, as when
# hotd attaches to a process whose file was edited since). Kept until a save of the file applies.
_drifts = {}
_unverified = set()  # files whose text was read after their import: compared with the live code
_importing = {}  # file path -> time.monotonic() when its module's top level started running
_unwatched_running_since = {}  # file path -> when a drain first saw an unwatched import unfinished
_next_request_id = [1]
_import_watch = []  # the meta path entry, once installed
_awaited_imports = {}  # module name -> True, while an unwatched import may still be running
_last_import = [0.0]  # time.monotonic() of the latest unwatched import signal
_excluded_prefixes = []
_process_start = []  # the process's start time (epoch seconds), once read


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
    if not _excluded_prefixes:
        _excluded_prefixes.append(_compute_excluded_prefixes())
    if not path or not path.endswith(".py"):
        return False
    if "site-packages" in path or "dist-packages" in path:
        return False
    return not path.startswith(_excluded_prefixes[0])


def _decode_source(data):
    """The text of a module file's bytes, or None when JSON cannot carry it (not UTF-8) or it is too
    large to send; the daemon then reads the file itself."""
    if data is None or len(data) > MAX_SOURCE_BYTES:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _read_source(path):
    try:
        with open(path, "rb") as source:
            return _decode_source(source.read(MAX_SOURCE_BYTES + 1))
    except OSError:
        return None


def _started_at():
    """When this process started (seconds since the epoch), from /proc; 0 where it cannot be read,
    which makes every file count as possibly changed since."""
    if not _process_start:
        started = 0.0
        try:
            with open("/proc/self/stat", "rb") as stat:
                ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])
            with open("/proc/stat", "rb") as system:
                boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
            started = boot + ticks / float(os.sysconf("SC_CLK_TCK"))
        except (OSError, ValueError, IndexError, StopIteration):
            pass
        _process_start.append(started)
    return _process_start[0]


def _changed_since_start(path):
    """Whether the file may have been written after this process started (and so after it imported
    the module): its text on disk is then not known to be what runs. The slack covers the clock tick
    of the start time; a file written just before the start costs only a needless comparison."""
    try:
        return os.stat(path).st_mtime >= _started_at() - 0.1
    except OSError:
        return True


def _compiled_plainly(module):
    """Whether the module's code is what compile() makes of its text: not a loader that rewrites it
    (pytest's assertion rewriting), whose code can never be compared with the text."""
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    return type(loader) in (importlib.machinery.SourceFileLoader, _CapturingLoader) or (
        loader is None and module.__name__ == "__main__")


# --- Comparing running code with a text -----------------------------------------------------------

_CO_OPTIMIZED = 0x1  # set on function code, not on class bodies and modules


def _fingerprint(code):
    """What a code object does and where: bytecode, constants (nested code by fingerprint), names,
    argument shape, flags and first line. Equal for code compiled from the same definition text."""
    consts = tuple(_fingerprint(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c))
                   for c in code.co_consts)
    shape = (code.co_argcount, getattr(code, "co_posonlyargcount", 0), code.co_kwonlyargcount, code.co_flags)
    return (code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
            shape, code.co_firstlineno)


def _codes_by_qualname(code, prefix, found):
    """{qualname: [fingerprint, ...]} of the functions a module's code defines, classes included."""
    for const in code.co_consts:
        if not isinstance(const, types.CodeType) or const.co_name.startswith("<"):
            continue
        qualname = prefix + const.co_name
        if const.co_flags & _CO_OPTIMIZED:
            found.setdefault(qualname, []).append(_fingerprint(const))
            _codes_by_qualname(const, qualname + ".<locals>.", found)
        else:  # a class body
            found.setdefault(qualname, [])
            _codes_by_qualname(const, qualname + ".", found)
    return found


def _live_functions(namespace, filename, module_name, found, seen):
    """{qualname: [fingerprint, ...]} of the functions of `filename` bound in a module or class
    namespace (through staticmethod, classmethod, property and __wrapped__), and its classes."""
    for value in list(namespace.values()):
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, type):
            if getattr(value, "__module__", None) == module_name:
                found.setdefault(value.__qualname__, [])
                _live_functions(vars(value), filename, module_name, found, seen)
            continue
        candidates = [value.fget, value.fset, value.fdel] if isinstance(value, property) else [value]
        for candidate in candidates:
            for _ in range(8):  # wrapper chains are short; the bound guards against cycles
                inner = getattr(candidate, "__func__", None) or getattr(candidate, "__wrapped__", None)
                if inner is None:
                    break
                candidate = inner
            code = getattr(candidate, "__code__", None)
            if isinstance(candidate, types.FunctionType) and code.co_filename == filename:
                found.setdefault(candidate.__qualname__, []).append(_fingerprint(code))


def _top_level_frames():
    """Every `<module>` frame running now, on any thread: top levels of imports, scripts, exec()."""
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == "<module>":
                yield frame
            frame = frame.f_back


def _top_level_codes(module):
    """The code of each `<module>` frame running `module`'s namespace now."""
    return [frame.f_code for frame in _top_level_frames() if frame.f_globals is vars(module)]


def _drift_of(module, text):
    """Which definitions of `module` do not run `text`: {"differs": functions whose code is not what
    `text` compiles to, "missing": definitions of `text` the module lacks}; None when `text` does
    not compile (nothing can be told)."""
    filename = getattr(module, "__file__", None) or ""
    try:
        code = compile(text, filename, "exec", 0, True)
    except (SyntaxError, ValueError):
        return None
    on_disk = _codes_by_qualname(code, "", {})
    running = {}
    _live_functions(vars(module), filename, module.__name__, running, set())
    # A top level still running (a long import) has not bound its later definitions yet: they run
    # as its code says, not missing.
    for top_level in _top_level_codes(module):
        for name, prints in _codes_by_qualname(top_level, "", {}).items():
            running.setdefault(name, prints)
    differs = sorted(name for name, prints in running.items()
                     if name in on_disk and any(p not in on_disk[name] for p in prints))
    # A definition is missing where its module or class is there to take it.
    missing = sorted(name for name in on_disk if name not in running and "<locals>" not in name
                     and ("." not in name or name.rpartition(".")[0] in running))
    return {"differs": differs, "missing": missing}


# --- What the process imports ----------------------------------------------------------------------

def _imports_under_way():
    """Files of user modules whose import began less than LONG_IMPORT_SECONDS ago and has not ended.
    Watched imports say so themselves (they wake the agent when they end). Any other (an import
    before the agent registered, a loader called by hand as importlib's docs show) is found as a
    module in sys.modules whose top level has not started (exec puts `__builtins__` in its namespace
    first) or as a `<module>` frame running its namespace; it is polled for (`drain_again`)."""
    global drain_again
    now = time.monotonic()
    under_way = {path for path, started in _importing.items() if now - started < LONG_IMPORT_SECONDS}
    unfinished = set()
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        path = getattr(module, "__file__", None)
        if isinstance(namespace, dict) and "__builtins__" not in namespace and isinstance(path, str) \
                and path.endswith(".py"):
            unfinished.add(os.path.abspath(path))
    for frame in _top_level_frames():
        name = frame.f_globals.get("__name__")
        module = sys.modules.get(name) if isinstance(name, str) else None
        path = getattr(module, "__file__", None)
        # A running script's top level is its main loop, never an import under way.
        if (name not in ("__main__", "__mp_main__") and isinstance(path, str)
                and getattr(module, "__dict__", None) is frame.f_globals):
            unfinished.add(os.path.abspath(path))
    for path in list(_unwatched_running_since):
        if path not in unfinished:
            del _unwatched_running_since[path]
    for path in unfinished - set(_importing):
        if now - _unwatched_running_since.setdefault(path, now) < LONG_IMPORT_SECONDS:
            under_way.add(path)
            drain_again = True
    return under_way


def _new_user_modules(budget=MAX_REPORT_BYTES, under_way=None):
    """Modules loaded from the user's .py files that the daemon has not heard of yet, each with the
    text the process runs. A module whose import is still running is left for a later report: its
    namespace lacks what the rest of its top level defines. Stops at `budget` bytes of text and
    asks for another drain."""
    global drain_again
    if under_way is None:
        under_way = _imports_under_way()
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        path = os.path.abspath(path)
        if not _is_user_file(path) or path in under_way:
            continue
        names = _reported_files.setdefault(path, [])
        if name in names:
            continue
        if budget <= 0:
            drain_again = True  # the rest goes in the next message
            break
        names.append(name)
        if path not in _running_sources:  # imported before the agent watched imports (an attach)
            _running_sources[path] = _read_source(path)
            if _changed_since_start(path) and _compiled_plainly(module):
                _unverified.add(path)
        entry = {"name": name, "file": path}
        text = _running_sources[path]
        if text is not None:
            entry["source"] = text
            budget -= len(text)
            if path in _unverified:
                _unverified.discard(path)
                drift = _drift_of(module, text)
                if drift and (drift["differs"] or drift["missing"]):
                    _drifts[path] = drift
        if path in _drifts:
            entry.update(_drifts[path])
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


def _wake_agent():
    watch = _import_watch[0] if _import_watch else None
    if watch is None or watch.wake_fd < 0:
        return
    try:
        # The program may have closed the pipe and reused its number for a file of its own
        # (os.closerange): write only when the number is still the agent's pipe.
        status = os.fstat(watch.wake_fd)
        if (status.st_dev, status.st_ino) == watch.wake_identity:
            os.write(watch.wake_fd, b"i")
    except OSError:
        pass  # closed, or the pipe is full: a drain is already pending


class _CapturingLoader(importlib.machinery.SourceFileLoader):
    """The standard loader of .py files, keeping the text the module's code was made from: the bytes
    it compiled, or, when a valid .pyc was used, the file read back and checked against the stat
    the .pyc was validated with (else compared with the code itself). When the module's top level has
    run, the agent is woken to report it: the report goes out before any later save is planned."""

    _source = None  # bytes of the file, when get_code read them to compile
    _stats = None  # path_stats of the file, as get_code validated the .pyc against them
    captured = None

    def path_stats(self, path):
        stats = importlib.machinery.SourceFileLoader.path_stats(self, path)
        if path == self.path:
            self._stats = stats
        return stats

    def get_data(self, path):
        data = importlib.machinery.SourceFileLoader.get_data(self, path)
        if path == self.path:
            self._source = data
        return data

    def get_code(self, fullname):
        self._source = self._stats = None
        code = importlib.machinery.SourceFileLoader.get_code(self, fullname)
        self.captured = self._text_of(code)
        path = os.path.abspath(self.path)
        if path not in _running_sources:  # runpy (`-m`) runs the code without exec_module
            _running_sources[path] = self.captured
        return code

    def _text_of(self, code):
        if self._source is not None:
            return _decode_source(self._source)
        try:
            with open(self.path, "rb") as source:
                data = source.read(MAX_SOURCE_BYTES + 1)
                now = os.fstat(source.fileno())
        except OSError:
            return None
        text = _decode_source(data)
        stats = self._stats or {}
        if text is None or (stats.get("mtime") == now.st_mtime and stats.get("size") == now.st_size):
            return text
        try:  # written in between: the text counts only if it compiles to this very code
            same = _fingerprint(compile(data, code.co_filename, "exec", 0, True)) == _fingerprint(code)
        except (SyntaxError, ValueError):
            same = False
        if not same:
            _unverified.add(os.path.abspath(self.path))
        return text

    def exec_module(self, module):
        path = os.path.abspath(self.path)
        _importing[path] = time.monotonic()
        try:
            importlib.machinery.SourceFileLoader.exec_module(self, module)
        finally:
            _importing.pop(path, None)
            _running_sources[path] = self.captured
            _reported_files.pop(path, None)  # reported (again) with this text: a reload is news too
            _wake_agent()


class _ImportWatch(object):
    """The first entry of sys.meta_path. It finds each module by asking the entries after it, and
    gives the .py files of the user's code a _CapturingLoader; other imports only wake the agent,
    which drains new modules once the importer lets go of the GIL. Inert once detached."""

    wake_fd = -1
    wake_identity = None  # (st_dev, st_ino) of the agent's pipe

    def find_spec(self, fullname, path=None, target=None):
        if stop_requested:
            return None
        finders = sys.meta_path
        spec = None
        for finder in finders[finders.index(self) + 1:] if self in finders else ():
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is None:
            return None  # the import system asks the others again and reports the failure
        loader = spec.loader
        if type(loader) is importlib.machinery.SourceFileLoader and _is_user_file(os.path.abspath(loader.path)):
            spec.loader = _CapturingLoader(loader.name, loader.path)
        else:  # drained once it is there: another loader of the user's code (pytest's assertion
            # rewriting), or a module whose import adds names for user modules (multiprocessing's
            # `__mp_main__`)
            _awaited_imports[fullname] = True
            _last_import[0] = time.monotonic()
            _wake_agent()
        return spec


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


def set_wake_pipe(lines):
    """The native half's wake pipe (`wake_fd=N`, `wake_inode=DEV:INO`): given at registration, and
    again whenever the agent replaced a pipe the program had closed. Installs the import watch."""
    settings = _parse_config(lines)
    wake_fd = int(settings.get("wake_fd", ["-1"])[-1])
    device, _, inode = settings.get("wake_inode", ["0:0"])[-1].partition(":")
    if not _import_watch:
        if wake_fd < 0:
            return b""
        _import_watch.append(_ImportWatch())
        sys.meta_path.insert(0, _import_watch[0])
    _import_watch[0].wake_identity = (int(device), int(inode))
    _import_watch[0].wake_fd = wake_fd
    return b""


def registration(config):
    global stop_requested
    stop_requested = False
    _settings.clear()
    _settings.update(_parse_config(config))
    # The native half adds `library=` and the wake pipe's lines to the starter's: a child's adds its own.
    _config_for_children[0] = b"\n".join(line for line in config.splitlines()
                                         if not line.startswith((b"library=", b"wake_fd=", b"wake_inode=")))
    if not _fork_hook_installed[0] and _setting("launcher") != "run":
        os.register_at_fork(after_in_child=_start_agent_in_forked_child)
        _fork_hook_installed[0] = True
    _reported_files.clear()
    _registered[0] = False
    set_wake_pipe(config)
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


_owed_imports = set()  # files a sync asked for while their import was running


def drain(_unused=b""):
    global drain_again
    _settle_awaited_imports()
    under_way = _imports_under_way()
    modules = _new_user_modules(under_way=under_way)
    _owed_imports.intersection_update(under_way)
    drain_again = drain_again or bool(_owed_imports)
    if not modules:
        return b""
    return _message("agent/imported", {"modules": modules})


def _sync(params):
    """A save of `file` came to the daemon, which has no report of it from this process: the barrier
    that makes every import that finished before the save reach the daemon before it is planned.
    `importing`: the file's module is being imported right now; its report follows when that ends."""
    global drain_again
    _settle_awaited_imports()
    wanted = os.path.realpath(params.get("file") or "")
    under_way = _imports_under_way()
    importing = [path for path in under_way if os.path.realpath(path) == wanted]
    if importing:
        _owed_imports.update(importing)
        drain_again = True
    return {"modules": _new_user_modules(budget=float("inf"), under_way=under_way), "importing": bool(importing)}


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
        lines.extend("hotd:   warning: %s" % stale for stale in result.get("stale") or [])
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
        _drifts.pop(path, None)  # the daemon sent the definitions that differed with this plan
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
        _registered[0] = True
        _announce_watching((message.get("result") or {}).get("watching"))
        return b""
    try:
        if method == "agent/patch":
            return _reply(request_id, _patch(message.get("params") or {}))
        if method == "agent/reload":
            return _reply(request_id, _reload(message.get("params") or {}))
        if method == "agent/sync":
            return _reply(request_id, _sync(message.get("params") or {}))
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
