"""Runs inside the interpreter under test, one process per case; the runner talks to it.

Protocol: one JSON object per line on stdin and stdout. The runner sends a `load` request, then
either an `apply` request (the in-process applier) or nothing (under `hotd run`, the daemon patches
the process through its agent), then `check` with the patch result. Every reply is
{"ok": bool, ...}; a failure carries "traceback".

`load` with `agent` (a package path) loads hotd_agent itself and executes the case file; without
it the real agent is already in the process, and the file is imported through the import system
(and run as `__main__` the way `hotd run`'s bootstrap does), so the agent sees it load.

Only stdlib modules that the agent also tolerates are imported here: no threading, so cases can check
that patching does not import it.
"""

import _thread
import json
import sys
import traceback
import types

_protocol_out = sys.stdout
sys.stdout = sys.stderr  # prints of user code must not corrupt the protocol

RESULT_KEYS = {"op", "kind", "qualname", "line", "status", "message", "module", "stale",
               "running_frames", "caches_cleared", "error"}
STATUSES = {"updated", "added", "deleted", "shifted", "executed", "skipped", "rude", "failed"}


def send(obj):
    _protocol_out.write(json.dumps(obj) + "\n")
    _protocol_out.flush()


def load_agent(package_dir):
    """Load hotd_agent by path, not via sys.path, and register it: what the native agent does.
    (Not with importlib.util, which imports threading on some versions.)"""
    agent = types.ModuleType("hotd_agent")
    agent.__file__ = package_dir + "/__init__.py"
    agent.__path__ = [package_dir]
    agent.__package__ = "hotd_agent"
    sys.modules["hotd_agent"] = agent
    with open(agent.__file__) as f:
        exec(compile(f.read(), agent.__file__, "exec"), vars(agent))
    return agent


def load_module(name, path):
    """Execute the case file as a module named `name` (`__main__` runs its main block). It is put
    in sys.modules, where the agent looks for loaded modules."""
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    with open(path) as f:
        code = compile(f.read(), path, "exec")
    exec(code, vars(module))
    return module


def check_schema(result):
    assert set(result) == {"ok", "elapsed_ms", "results"}, sorted(result)
    assert isinstance(result["ok"], bool) and isinstance(result["elapsed_ms"], float)
    for r in result["results"]:
        assert set(r) == RESULT_KEYS, sorted(r)
        assert r["status"] in STATUSES, r["status"]
        assert isinstance(r["stale"], list) and isinstance(r["caches_cleared"], list)
        assert isinstance(r["running_frames"], int)
        assert r["error"] is None or set(r["error"]) == {"type", "message", "traceback"}
    assert result["ok"] == all(r["status"] not in ("rude", "failed") for r in result["results"])


def make_helpers(ns):
    def results(module="mod", **filters):
        """Results of the patch for `module` whose fields equal `filters`."""
        return [r for r in ns["result"]["results"]
                if (module is None or r["module"] == module)
                and all(r.get(k) == v for k, v in filters.items())]

    def only(module="mod", **filters):
        """The one result matching `filters`."""
        found = results(module, **filters)
        assert len(found) == 1, "expected one result for %r, got %r" % (filters, ns["result"]["results"])
        return found[0]

    def statuses(module="mod"):
        return sorted(r["status"] for r in results(module))

    def raises(exc_type, func, *args, **kwargs):
        try:
            func(*args, **kwargs)
        except exc_type as error:
            return error
        raise AssertionError("%s not raised" % exc_type.__name__)

    def last_line(func, *args):
        """The line of the innermost frame of the exception that `func(*args)` raises."""
        try:
            func(*args)
        except Exception as error:
            return traceback.extract_tb(error.__traceback__)[-1].lineno
        raise AssertionError("no exception raised")

    return {"results": results, "only": only, "statuses": statuses, "raises": raises, "last_line": last_line}


def apply_in_thread(agent, plan, filename, modules):
    """Call apply_plan from a thread Python did not start through `threading`, like the native agent."""
    done = _thread.allocate_lock()
    done.acquire()
    box = {}

    def run():
        try:
            box["result"] = agent.patcher.apply_plan(plan, filename, modules)
        except BaseException:
            box["traceback"] = traceback.format_exc()
        finally:
            done.release()

    _thread.start_new_thread(run, ())
    done.acquire()
    return box


def main():
    ns = {}
    modules = []
    agent = None
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        try:
            if cmd == "load":
                path = request["path"]
                sys.path.insert(0, request["workdir"])
                agent = load_agent(request["agent"]) if request.get("agent") else sys.modules["hotd_agent"]
                if request.get("as_main"):
                    modules.append(load_module("__main__", path))
                mod = load_module("mod", path) if request.get("agent") else __import__("mod")
                modules.append(mod)
                ns.update(mod=mod, main=modules[0] if request.get("as_main") else None, hotd_agent=agent,
                          sys=sys, modules_before=set(sys.modules))
                ns.update(make_helpers(ns))
                exec(compile(request["setup"], "<setup>", "exec"), ns)
                send({"ok": True})
            elif cmd == "apply":
                box = apply_in_thread(agent, request["plan"], request["filename"], modules)
                if "traceback" in box:
                    send({"ok": False, "traceback": "apply_plan raised:\n" + box["traceback"]})
                else:
                    send({"ok": True, "result": box["result"]})
            elif cmd == "check":
                ns["result"] = request["result"]
                check_schema(ns["result"])
                exec(compile(request["check"], "<check>", "exec"), ns)
                send({"ok": True})
            else:
                send({"ok": False, "traceback": "unknown command %r" % cmd})
        except BaseException:
            send({"ok": False, "traceback": traceback.format_exc()})


if __name__ == "__main__":
    main()
