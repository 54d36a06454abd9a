"""Apply a hotd patch plan (docs/PROTOCOL.md) to the live modules of one file.

Semantics and the result schema are documented for users in docs/PATCHING.md. In short:
compile everything first (a compile error applies nothing), then prepare the changes in plan order
and apply their swaps together (see _SwapBatch), so other threads see a save at once.
Changed functions keep their identity (new ``__code__`` in the old object); statements re-run only
when they changed; rude edits and skips change nothing.

Cost: everything here is proportional to the size of the file, its module and class namespaces and
the threads' stacks (a rebind also reads every module's namespace, for from-imports of the object it
replaced), never to the number of objects in the process, except for updates of functions
nested in functions (``in_function``) and of lambdas in updated functions, whose existing closures
are found with gc.get_referrers.
"""

import itertools
import operator
import os
import sys
import time
import types

from . import hooks

_KEEP = "__hotd_keep__"  # the identity decorator that stands in for decorators on update
_COLLECT = "__hotd_collect__"  # wraps each decorator of a rebind: records its value, applies nothing
# What a def evaluates into a function object; put into the old object by updates.
_FUNCTION_STATE = ("__code__", "__defaults__", "__kwdefaults__", "__doc__", "__annotations__")
# Switch interval while swaps are applied. The swaps run inside one C call, which never drops the GIL;
# the raise only covers the few bytecodes around it. Kept small: a thread that loses the GIL anyway
# (a drop request made before the raise) waits this long to get it back.
_SWITCH_INTERVAL = 0.02
_MAX_UNWRAP = 16  # wrapper chains are short; bound the walk in case of self-referencing objects
_MAX_WRAPPERS_SEARCHED = 64  # objects looked into for the function behind a binding

# Names a class body stores for itself; never copied onto the live class.
_CLASS_BOOKKEEPING = frozenset(
    ("__module__", "__qualname__", "__classcell__", "__firstlineno__", "__static_attributes__", "__doc__")
)

_MISSING = object()

_RESTART = "Restart the process to apply it."

_OP_STATUS = {"update": "updated", "add": "added", "delete": "deleted", "shift": "shifted", "exec": "executed"}


class _Failure(Exception):
    """A change that cannot be applied, with the status to report (``skipped``, ``rude``, ``failed``)."""

    def __init__(self, status, message, stale=()):
        Exception.__init__(self, message)
        self.status = status
        self.message = message
        self.stale = list(stale)


def apply_plan(plan, filename, modules):
    """Apply ``plan`` (parsed ``hotd diff --json``) to each module loaded from ``filename``.

    Returns ``{"ok", "elapsed_ms", "results"}``; see docs/PATCHING.md for the result schema.
    """
    start = time.perf_counter()
    changes = plan.get("changes") or []
    if not plan.get("ok", True):
        results = [_plan_syntax_result(error, filename) for error in plan.get("errors") or [{}]]
        return _finish(start, results)

    # How each module's code was compiled: its future flags, and the file name its code objects carry.
    compile_keys = [(_future_flags(module), _code_filename(module, filename)) for module in modules]
    compiled = {}  # (change index, compile key) -> code object
    for key in compile_keys:
        for index, change in enumerate(changes):
            text = _text_to_compile(change)
            if text is None or (index, key) in compiled:
                continue
            try:
                compiled[(index, key)] = compile(text, key[1], "exec", key[0], True)
            except SyntaxError as error:
                return _finish(start, _compile_failure(changes, modules, error))

    running = _running_code_counts() if any(c.get("op") == "update" for c in changes) else {}
    results = []
    notifications = []
    swaps = _SwapBatch()
    script_copies = [(module, copy, set(vars(module))) for module, copy in _script_copies(modules)]
    with hooks.patching():
        for module, key in zip(modules, compile_keys):
            results.extend(_hook_failures("before_patch", hooks.run_module_hooks("before", module, changes), module))
            session = _ModulePatch(module, key[1], running, notifications, swaps)
            for index, change in enumerate(changes):
                results.append(session.apply(change, compiled.get((index, key))))
        try:
            swaps.flush()
        except Exception as error:  # e.g. an audit hook refusing a __code__ assignment
            failure = _result({"kind": "module"}, None, "failed", "applying the prepared swaps failed")
            failure["error"] = _error_dict(error)
            results.append(failure)
        for module, copy, names_before in script_copies:
            _mirror(vars(module), copy, names_before)
        _notify(notifications)
        for module in modules:
            own = [result for result in results if result["module"] == module.__name__]
            results.extend(_hook_failures("after_patch", hooks.run_module_hooks("after", module, own), module))
    linecache = sys.modules.get("linecache")
    if linecache is not None:
        for code_filename in set(key[1] for key in compile_keys) | {filename}:
            linecache.checkcache(code_filename)
    return _finish(start, results)


def _script_copies(modules):
    """(module, namespace) for each module whose functions read their globals from a namespace other
    than the module's: multiprocessing's spawn children run the script with runpy.run_path, which
    copies the namespace it ran in into `__mp_main__`, while the script's functions keep the original."""
    for module in modules:
        if module.__name__ != "__mp_main__":
            continue
        namespace = vars(module)
        for value in list(namespace.values()):
            candidates = [value] if isinstance(value, types.FunctionType) else (
                list(vars(value).values()) if isinstance(value, type) else [])
            copy = next((f.__globals__ for f in candidates if isinstance(f, types.FunctionType)
                         and f.__globals__ is not namespace and f.__globals__.get("__name__") == module.__name__), None)
            if copy is not None:
                yield module, copy
                break


def _mirror(namespace, copy, names_before):
    """After a patch wrote `namespace`: the same names and objects in `copy`, names it deleted gone."""
    for name, value in namespace.items():
        if copy.get(name, _MISSING) is not value:
            copy[name] = value
    for name in names_before - set(namespace):
        copy.pop(name, None)


class _SwapBatch:
    """The mutations of a save that other threads can observe, applied together.

    Updates, shifts and deletes only prepare objects and queue their swaps here. ``flush`` applies the
    queue in one call into C (map over setattr/delattr), during which no bytecode runs, so no other
    thread can take the GIL and see half of it; the raised switch interval keeps the step from being
    cut right before it starts. Changes that run user code (exec, add) flush first, so that code sees
    the earlier changes of the save, and flush after, so later changes see theirs."""

    _clear_cache = operator.methodcaller("cache_clear")

    def __init__(self):
        self.deletes = []  # (owner, name)
        self.sets = []  # (object, attribute, value)
        self.caches = []  # lru_cache wrappers to clear after the swaps

    def set(self, obj, name, value):
        self.sets.append((obj, name, value))

    def delete(self, obj, name):
        self.deletes.append((obj, name))

    def clear_cache(self, wrapper):
        self.caches.append(wrapper)

    def flush(self):
        if not (self.deletes or self.sets or self.caches):
            return
        deletes, sets, caches = self.deletes, self.sets, self.caches
        self.deletes, self.sets, self.caches = [], [], []
        saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL)
        try:
            list(itertools.chain(
                map(delattr, [d[0] for d in deletes], [d[1] for d in deletes]),
                map(setattr, [s[0] for s in sets], [s[1] for s in sets], [s[2] for s in sets]),
                map(self._clear_cache, caches)))
        finally:
            sys.setswitchinterval(saved_interval)


def _finish(start, results):
    ok = all(r["status"] not in ("rude", "failed") for r in results)
    return {"ok": ok, "elapsed_ms": (time.perf_counter() - start) * 1000.0, "results": results}


def _result(change, module_name, status, message=""):
    return {
        "op": change.get("op"),
        "kind": change.get("kind"),
        "qualname": change.get("qualname"),
        "line": change.get("line"),
        "status": status,
        "message": message,
        "module": module_name,
        "stale": [],
        "running_frames": 0,
        "caches_cleared": [],
        "error": None,
    }


def _plan_syntax_result(error, filename):
    result = _result({"op": None, "kind": "module", "line": error.get("line")}, None, "failed",
                     "the new text has a syntax error: nothing was applied")
    result["error"] = {
        "type": "SyntaxError",
        "message": "%s (%s, line %s)" % (error.get("message", "syntax error"), filename, error.get("line")),
        "traceback": "",
    }
    return result


def _compile_failure(changes, modules, error):
    described = _error_dict(error)
    results = []
    for module in modules:
        for change in changes or [{"kind": "module"}]:
            result = _result(change, module.__name__, "failed",
                             "line %s: %s: nothing was applied" % (error.lineno, error.msg))
            result["error"] = described
            results.append(result)
    return results


def _error_dict(error):
    import traceback  # only on failure; imports nothing thread-related

    return {
        "type": type(error).__name__,
        "message": str(error),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }


def _code_filename(module, filename):
    """The file name the module's code objects carry: ``filename``, or the module's relative
    ``__file__`` naming it. Python 3.8 keeps a script's path as given on the command line
    (``python main.py``), in ``__file__`` and ``co_filename``; recompiled code keeps that name too, so
    tracebacks look as in a plain run. Resolved against the working directory, as the agent resolved
    ``__file__`` to ``filename``."""
    path = getattr(module, "__file__", None)
    if isinstance(path, str) and not os.path.isabs(path) and os.path.abspath(path) == filename:
        return path
    return filename


def _future_flags(module):
    """Compiler flags of the module's ``from __future__`` imports, so recompiled code behaves the same."""
    import __future__

    flags = 0
    for value in vars(module).values():
        if isinstance(value, __future__._Feature):
            flags |= value.compiler_flag
    return flags


def _text_to_compile(change):
    """The padded text of docs/PROTOCOL.md, with decorators neutralized for updates; None if no source."""
    source = change.get("source")
    if source is None or change.get("in_function") or change.get("op") not in ("update", "add", "exec"):
        return None
    scope = change.get("scope") or []
    line = change["line"]
    if change["op"] == "update" and change.get("rebind"):
        source = _collecting_decorators(change)
    elif change["op"] == "update" and change.get("header_line", line) > line:
        # Decorators must not run again: one identity decorator keeps co_firstlineno on `line`,
        # blank lines keep every later line where it is.
        lines = source.splitlines(True)
        decorator_count = change["header_line"] - line
        first = lines[0]
        indent = first[: len(first) - len(first.lstrip())]
        source = indent + "@" + _KEEP + "\n" + "\n" * (decorator_count - 1) + "".join(lines[decorator_count:])
    return "\n" * (line - 1 - len(scope)) + "".join(h + "\n" for h in scope) + source


def _collecting_decorators(change):
    """The source of a rebind with each decorator ``@EXPR`` turned into ``@__hotd_collect__(EXPR)``: the
    expressions are evaluated where and as the def would (lines, class scope), their values recorded,
    and the agent applies them to the function it chooses. A class keeps only its decorators, over a
    stub: its body is updated by the changes inside it."""
    lines = change["source"].splitlines(True)
    decorator_count = change["header_line"] - change["line"]
    head = "".join(lines[:decorator_count])
    pieces = []
    position = 0
    for decorator in change.get("decorators") or []:
        at = head.index("@", position)
        while head[head.rfind("\n", 0, at) + 1:at].strip():  # an `@` inside a comment or an expression
            at = head.index("@", at + 1)
        start = head.index(decorator, at + 1)
        pieces.append(head[position:start] + _COLLECT + "(" + decorator + ")")
        position = start + len(decorator)
    pieces.append(head[position:])
    body = "".join(lines[decorator_count:])
    if change["kind"] == "class":
        indent = body[: len(body) - len(body.lstrip())]
        body = indent + "class " + change["qualname"].rsplit(".", 1)[-1] + ":\n" + indent + "    pass\n"
    return "".join(pieces) + body


def _collector(collected):
    def collect(decorator):
        collected.append(decorator)
        return _identity
    return collect


def _apply_decorators(decorators, obj):
    """Decorators in source order, applied as a def applies them: the innermost first."""
    for decorator in reversed(decorators):
        obj = decorator(obj)
    return obj


def _running_code_counts():
    """How many frames of all threads currently execute each code object (bounded by stack depth)."""
    counts = {}
    for frame in sys._current_frames().values():
        while frame is not None:
            counts[frame.f_code] = counts.get(frame.f_code, 0) + 1
            frame = frame.f_back
    return counts


def _hook_failures(kind, failures, module):
    """A failed result per before_patch/after_patch hook that raised: the patch itself stands."""
    results = []
    for callback, error in failures:
        result = _result({"kind": "module"}, module.__name__, "failed", "%s hook %s raised %s: %s" % (
            kind, getattr(callback, "__qualname__", repr(callback)), type(error).__name__, error))
        result["error"] = _error_dict(error)
        results.append(result)
    return results


def _notify(notifications):
    for obj, event, result in notifications:
        for callback in hooks.callbacks_for(obj):
            try:
                callback(obj, event)
            except Exception as error:  # a hook must not undo or hide the patch
                result["message"] = (result["message"] + "; " if result["message"] else "") + \
                    "on_patch callback raised %s: %s" % (type(error).__name__, error)
                if result["error"] is None:
                    result["error"] = _error_dict(error)


def _class_path(scope):
    """Names of the classes in a change's scope (``if True:`` block headers are transparent)."""
    names = []
    for header in scope:
        header = header.strip()
        if header.startswith("class "):
            names.append(header[len("class "):].split("(")[0].split(":")[0].strip())
    return names


def _mangle(name, class_name):
    """The key under which a class body stores ``name`` (private name mangling)."""
    if class_name and name.startswith("__") and not name.endswith("__"):
        stripped = class_name.lstrip("_")
        if stripped:
            return "_" + stripped + name
    return name


def _shift_code(code, delta):
    consts = tuple(_shift_code(c, delta) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


def _find_code(code, name, firstlineno):
    """The code object nested (at any depth) in ``code`` with this name and first line."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name and const.co_firstlineno == firstlineno:
                return const
            found = _find_code(const, name, firstlineno)
            if found is not None:
                return found
    return None


def _changed_lambdas(old_code, new_code):
    """(old, new) lambda code objects nested in a function's code that changed, at any depth. A lambda
    with an unchanged twin in the new code is unchanged; the others pair up in order when as many
    changed, else new is None (hotd cannot tell which is which)."""
    old_groups, new_groups = _nested_codes(old_code), _nested_codes(new_code)
    old_lambdas, new_lambdas = old_groups.pop("<lambda>", []), new_groups.pop("<lambda>", [])
    changed = [old for old in old_lambdas if not any(_same_behaviour(old, new) for new in new_lambdas)]
    replacements = [new for new in new_lambdas if not any(_same_behaviour(old, new) for old in old_lambdas)]
    paired = len(changed) == len(replacements)
    for index, old in enumerate(changed):
        new = replacements[index] if paired else None
        yield old, new
        if new is not None:
            yield from _changed_lambdas(old, new)  # lambdas a lambda makes
    for name, olds in old_groups.items():
        for old, new in zip(olds, new_groups.get(name, [])):
            yield from _changed_lambdas(old, new)


def _nested_codes(code):
    groups = {}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            groups.setdefault(const.co_name, []).append(const)
    return groups


def _same_behaviour(old, new):
    """Equal code but for line numbers."""
    fields = operator.attrgetter("co_code", "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_flags",
                                 "co_argcount", "co_kwonlyargcount")
    if fields(old) != fields(new) or len(old.co_consts) != len(new.co_consts):
        return False
    return all(_same_behaviour(a, b) if isinstance(a, types.CodeType) and isinstance(b, types.CodeType) else (
        type(a) is type(b) and a == b) for a, b in zip(old.co_consts, new.co_consts))


def _add_message(result, text):
    result["message"] = result["message"] + "; " + text if result["message"] else text


def _describe(obj):
    name = getattr(obj, "__qualname__", None)
    if not isinstance(name, str):
        return "%s at %#x" % (type(obj).__name__, id(obj))
    kind = "" if isinstance(obj, (types.FunctionType, type)) else type(obj).__name__ + " "
    return "%s%s at %#x" % (kind, name, id(obj))


class _Binding:
    """Where a definition lives: the namespace owner (module or class), its key, and the unwrap chain
    from the bound object down to the function (wrappers, staticmethod, property, ``__wrapped__``)."""

    def __init__(self, owner, key, chain):
        self.owner = owner
        self.key = key
        self.chain = chain

    @property
    def function(self):
        return self.chain[-1]


class _ModulePatch:
    """Applies the changes of one plan to one module, in order."""

    def __init__(self, module, filename, running, notifications, swaps):
        self.module = module
        self.swaps = swaps
        self.namespace = vars(module)
        self.filename = filename
        self.running = running
        self.notifications = notifications
        # qualname -> (old code, new code) of functions updated here, for in_function changes.
        self.swapped = {}
        self.top_level_running = None  # found out at the first module-level statement
        # Qualnames of classes whose new bases could not be assigned: nothing else in them is applied.
        self.refused_classes = set()

    # -- dispatch ------------------------------------------------------------------------------

    def apply(self, change, code):
        op = change.get("op")
        result = _result(change, self.module.__name__, _OP_STATUS.get(op, "skipped"))
        try:
            if op == "rude":
                raise _Failure("rude", change.get("reason", ""))
            if op == "skip":
                raise _Failure("skipped", change.get("reason", ""))
            refused = self._refused_class_around(change)
            if refused is not None:
                raise _Failure("rude", "not applied: the new bases of class `%s` could not be assigned, and the "
                               "class must not be half-updated. %s" % (refused, _RESTART))
            handler = getattr(self, "_" + op, None)
            if handler is None:
                raise _Failure("failed", "unknown op %r" % (op,))
            handler(change, code, result)
        except _Failure as failure:
            result["status"] = failure.status
            result["message"] = failure.message
            result["stale"].extend(failure.stale)
        except Exception as error:  # user code raised (a statement, a default, a decorator)
            result["status"] = "failed"
            result["message"] = "%s: %s" % (type(error).__name__, error)
            result["error"] = _error_dict(error)
        return result

    def _top_level_running(self):
        """Whether some thread is still executing this module's top level: the `__main__` of a running
        program, or a module whose import has not returned. Re-running a changed top-level statement
        there would start a second copy of the program's loop inside the agent."""
        if self.top_level_running is None:
            self.top_level_running = False
            for frame in sys._current_frames().values():
                while frame is not None:
                    if frame.f_code.co_name == "<module>" and frame.f_globals is self.namespace:
                        self.top_level_running = True
                        return True
                    frame = frame.f_back
        return self.top_level_running

    def _refused_class_around(self, change):
        """The refused class that the change is in (or is), or None."""
        where = change.get("qualname") or ".".join(_class_path(change.get("scope") or []))
        for refused in self.refused_classes:
            if where == refused or where.startswith(refused + "."):
                return refused
        return None

    # -- namespaces ----------------------------------------------------------------------------

    def _resolve_class(self, class_names):
        owner = self.module
        for name in class_names:
            namespace = vars(owner)
            key = _mangle(name, owner.__name__ if isinstance(owner, type) else None)
            owner = namespace.get(key)
            if not isinstance(owner, type):
                raise _Failure("skipped", "class `%s` is not defined in the running module" % ".".join(class_names))
        return None if owner is self.module else owner

    def _exec_in_scope(self, code, class_names, extra=None, module_locals=None):
        """Run compiled wrapper ``code`` in the definition's scope without running the class headers.

        In a class: run the innermost class-body code with locals seeded from the live class (so
        class-level names resolve, as at class creation) and point its ``__class__`` cell at the live
        class. At module level: run the module code with ``module_locals`` (the module dict itself
        when None). Returns (class or None, namespace after, namespace before for classes)."""
        cls = self._resolve_class(class_names)
        if cls is None:
            namespace = self.namespace if module_locals is None else module_locals
            if extra:
                namespace.update(extra)
            exec(code, self.namespace, namespace)
            return None, namespace, None
        body = code
        for name in class_names:
            body = next(c for c in body.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
        before = dict(vars(cls))
        namespace = dict(before)
        if extra:
            namespace.update(extra)
        exec(body, self.namespace, namespace)
        cell = namespace.get("__classcell__")
        if cell is not None:
            cell.cell_contents = cls
        return cls, namespace, before

    def _owner_and_key(self, parts):
        """The module or class where a definition's name lives, and its key there (mangled)."""
        cls = self._resolve_class(parts[:-1])
        owner = self.module if cls is None else cls
        return owner, _mangle(parts[-1], cls.__name__ if cls is not None else None)

    def _locate(self, change, unfollowable="rude"):
        """The live binding of a function-like definition, checked to be this very definition.

        A binding hotd cannot follow to it fails with status ``unfollowable`` when it is a wrapper
        made from this definition, and is skipped when it holds something else (a C accelerator)."""
        parts = change["qualname"].split(".")
        owner, key = self._owner_and_key(parts)
        if key not in vars(owner):
            raise _Failure("skipped", "`%s` is not defined in the running module" % change["qualname"])
        bound = vars(owner)[key]
        expected = change.get("old_line", change["line"] if change.get("in_old_file") else None)
        chain = _unwrap(bound, change.get("accessor"), _function_named(parts[-1], self.filename, expected))
        if chain is not None:
            return _Binding(owner, key, chain)
        namesake = _unwrap(bound, change.get("accessor"), _function_named(parts[-1]))
        if namesake is not None:
            code = namesake[-1].__code__
            where = "line %d" % code.co_firstlineno
            if code.co_filename != self.filename:
                where += " of " + code.co_filename
            raise _Failure("skipped", "the running `%s` comes from %s, not from this definition (line %s): "
                           "another definition of the same name is the one in use" % (change["qualname"], where, expected))
        made_here = isinstance(bound, types.FunctionType) and bound.__code__.co_filename == self.filename
        if not made_here and change.get("header_line", change["line"]) == change["line"]:
            raise _Failure("skipped", "`%s` is bound to %s, not to a function of this file" % (
                change["qualname"], _describe(bound)))
        # Decorated, or wrapped by code of this file: the wrapper was made from this definition.
        raise _Failure(unfollowable, "`%s` is bound to %s, a wrapper hotd cannot follow to the function of this "
                       "definition (not through __wrapped__, __func__, closure cells or attributes). %s"
                       % (change["qualname"], _describe(bound), _RESTART),
                       ["%s: made before this save, keeps the old code of `%s`" % (_describe(bound), change["qualname"])])

    # -- ops -----------------------------------------------------------------------------------

    def _update(self, change, code, result):
        if change.get("in_function"):
            return self._update_closures(change, result)
        if change.get("rebind"):
            return (self._rebind_class if change.get("kind") == "class" else self._rebind)(change, code, result)
        if change.get("kind") == "class":
            return self._update_bases(change, result)
        binding = self._locate(change)
        old = binding.function
        parts = change["qualname"].split(".")
        cls, namespace, _ = self._exec_in_scope(code, parts[:-1], {_KEEP: _identity}, module_locals={})
        new = namespace[binding.key]
        if not isinstance(new, types.FunctionType):
            raise _Failure("failed", "recompiling `%s` did not produce a function" % change["qualname"])
        old_code = old.__code__
        result["running_frames"] = self.running.get(old_code, 0)
        if old_code.co_freevars == new.__code__.co_freevars:
            _transplant(old, new, self.swaps)
        else:
            self._replace_function(change, binding, new, cls, result)
        self.swapped[change["qualname"]] = (old_code, new.__code__)
        self._update_lambdas(change["qualname"], old_code, new.__code__, result)
        for obj in binding.chain[:-1]:
            clear = getattr(obj, "cache_clear", None)
            if callable(clear):
                self.swaps.clear_cache(obj)
                result["caches_cleared"].append(getattr(obj, "__qualname__", change["qualname"]))
        if result["running_frames"]:
            _add_message(result, "%d frame(s) still run the old code and finish on it; "
                         "the next call runs the new code" % result["running_frames"])
        for obj in binding.chain:
            self.notifications.append((obj, "updated", result))

    def _update_lambdas(self, qualname, old_code, new_code, result):
        """Lambdas the old code made (a decorator's ``lambda *a: func(*a)`` wrappers) follow a change of
        their own code like closures of nested defs, which the plan lists (``in_function``); the plan
        does not list lambdas. Only when a lambda inside changed is the heap scanned for them."""
        changed = list(_changed_lambdas(old_code, new_code))
        if not changed:
            return
        import gc

        updated = 0
        for old_lambda, new_lambda in changed:
            for referrer in gc.get_referrers(old_lambda):
                if not isinstance(referrer, types.FunctionType) or referrer.__code__ is not old_lambda:
                    continue
                if new_lambda is not None and new_lambda.co_freevars == old_lambda.co_freevars:
                    self.swaps.set(referrer, "__code__", new_lambda)
                    updated += 1
                else:
                    result["stale"].append("%s: a lambda made by `%s` before this save keeps the old code (%s)" % (
                        _describe(referrer), qualname, "hotd cannot tell which lambda of the new code it is"
                        if new_lambda is None else "its free variables changed"))
        if updated:
            _add_message(result, "%d existing lambda(s) made by it updated" % updated)

    def _rebind(self, change, code, result):
        """The decorators changed: run them again and bind the name to what they return, as an import of
        the new text would. They get the old function object with the new code in it when its free
        variables allow (references to the plain function follow it, and so does the next save), else
        the new function. What keeps the old bound object is listed in `stale`."""
        parts = change["qualname"].split(".")
        owner, key = self._owner_and_key(parts)
        try:
            chain = self._locate(change).chain
            old_function = chain[-1]
        except _Failure as failure:
            if failure.status != "rude":
                raise
            chain = [vars(owner)[key]]  # a wrapper hotd cannot follow: replaced all the same
            old_function = None
        old_bound = chain[0]
        self.swaps.flush()  # the decorators are user code: they see what this save changed before
        collected = []
        _, namespace, _ = self._exec_in_scope(code, parts[:-1], {_COLLECT: _collector(collected)}, module_locals={})
        new = namespace[key]
        function = new
        if old_function is not None:
            old_code = old_function.__code__
            result["running_frames"] = self.running.get(old_code, 0)
            self.swapped[change["qualname"]] = (old_code, new.__code__)
            self._update_lambdas(change["qualname"], old_code, new.__code__, result)
        if old_function is not None and _transplantable(old_function, new, self.filename):
            function = old_function
            restore = _SwapBatch()
            for name in _FUNCTION_STATE:
                restore.set(old_function, name, getattr(old_function, name))
            now = _SwapBatch()  # at once: the decorators may read the code or signature
            _transplant(old_function, new, now)
            now.flush()
        try:
            bound = _apply_decorators(collected, function)
        except BaseException:
            if function is old_function:
                restore.flush()
            raise
        self.swaps.set(owner, key, bound)
        self.swaps.flush()
        _add_message(result, "ran the decorators again; `%s` is %s%s" % (
            parts[-1], _describe(bound), ", the function object kept" if function is old_function else ""))
        if function is old_function:
            for obj in chain[:-1]:  # an old lru_cache around it now calls the new code
                if callable(getattr(obj, "cache_clear", None)):
                    self.swaps.clear_cache(obj)
                    result["caches_cleared"].append(getattr(obj, "__qualname__", change["qualname"]))
            for obj in chain:
                self.notifications.append((obj, "updated", result))
        result["stale"].extend(_rebind_warnings(change, old_bound, bound, self.module, function is old_function))

    def _rebind_class(self, change, code, result):
        """The class decorators changed: after the changes inside the class, its new decorators run on the
        live class (instances and subclasses keep it), and the name is bound to what they return."""
        parts = change["qualname"].split(".")
        cls = self._resolve_class(parts)
        owner, key = self._owner_and_key(parts)
        self.swaps.flush()  # the decorators see the class with this save's changes
        collected = []
        self._exec_in_scope(code, parts[:-1], {_COLLECT: _collector(collected)}, module_locals={})
        bound = _apply_decorators(collected, cls)
        self.swaps.set(owner, key, bound)
        self.swaps.flush()
        result["message"] = "ran the decorators again on the live class; `%s` is %s" % (
            parts[-1], "the same class" if bound is cls else _describe(bound))
        result["stale"].extend(_rebind_warnings(change, cls, bound, self.module, True))

    def _update_bases(self, change, result):
        """New positional bases, assigned to ``__bases__``: instances and subclasses follow. Only CPython can
        say whether it accepts them (compatible layouts, a consistent MRO), so this is assigned at once,
        after the swaps before it; when it is refused, nothing else of the class is applied."""
        parts = change["qualname"].split(".")
        cls = self._resolve_class(parts)
        enclosing = self._resolve_class(parts[:-1])
        try:
            bases = (object,)
            if change["bases"]:
                text = "\n" * (change["header_line"] - 1) + "(" + ", ".join(change["bases"]) + ",)"
                scope = None if enclosing is None else dict(vars(enclosing))
                bases = eval(compile(text, self.filename, "eval", _future_flags(self.module), True), self.namespace, scope)
            if bases == cls.__bases__:
                result["message"] = "the new bases are the running ones"
                return
            self.swaps.flush()
            cls.__bases__ = bases
        except Exception as error:
            self.refused_classes.add(change["qualname"])
            if not isinstance(error, TypeError):
                raise
            raise _Failure("rude", "CPython refuses the new bases of `%s` (%s): instances and subclasses keep the old "
                           "ones, and nothing else of the class is applied. %s" % (change["qualname"], error, _RESTART))
        result["message"] = "bases are now %s" % ", ".join(base.__qualname__ for base in bases)

    def _replace_function(self, change, binding, new, cls, result):
        """The new code needs other free variables (e.g. it starts using super()): ``__code__`` cannot be
        swapped, so install a new function object in the class where the old one was."""
        old = binding.function
        container = binding.chain[0] if len(binding.chain) > 1 else None
        if cls is None or len(binding.chain) > 2 or not (
                container is None or isinstance(container, (staticmethod, classmethod, property))):
            raise _Failure("rude", "`%s` now uses other free variables (%s -> %s) and is wrapped where hotd "
                           "cannot reinstall it; restart the process to apply it"
                           % (change["qualname"], ", ".join(old.__code__.co_freevars) or "none",
                              ", ".join(new.__code__.co_freevars) or "none"))
        new.__dict__.update(old.__dict__)
        if container is None:
            installed = new
        elif isinstance(container, property):
            accessor = change.get("accessor")
            installed = {"setter": container.setter, "deleter": container.deleter}.get(accessor, container.getter)(new)
        else:
            installed = type(container)(new)
        self.swaps.set(cls, binding.key, installed)
        result["stale"].append("%s: references taken before this save (bound methods, stored callbacks) keep "
                               "the old function, because its free variables changed (%s -> %s)"
                               % (_describe(old), ", ".join(old.__code__.co_freevars) or "none",
                                  ", ".join(new.__code__.co_freevars) or "none"))
        result["message"] = "installed a new function object: the free variables changed"

    def _update_closures(self, change, result):
        """Existing closures of a changed nested function follow when their free variables did not change.
        Finding them needs gc.get_referrers: the one place whose cost grows with the heap."""
        outer = change["qualname"].split(".<locals>.")[0]
        if outer not in self.swapped:
            raise _Failure("skipped", "the enclosing function `%s` was not updated in this module" % outer)
        outer_old, outer_new = self.swapped[outer]
        name = change["qualname"].rsplit(".", 1)[-1]
        old_inner = _find_code(outer_old, name, change.get("old_line"))
        new_inner = _find_code(outer_new, name, change["line"])
        if old_inner is None or new_inner is None:
            result["message"] = "new closures get the new code with `%s`" % outer
            return
        result["running_frames"] = self.running.get(old_inner, 0)
        import gc

        updated = 0
        for referrer in gc.get_referrers(old_inner):
            if not isinstance(referrer, types.FunctionType) or referrer.__code__ is not old_inner:
                continue
            if old_inner.co_freevars == new_inner.co_freevars:
                self.swaps.set(referrer, "__code__", new_inner)
                updated += 1
                self.notifications.append((referrer, "updated", result))
            else:
                result["stale"].append("%s: an existing closure keeps the old code, its free variables changed "
                                       "(%s -> %s)" % (_describe(referrer), ", ".join(old_inner.co_freevars),
                                                       ", ".join(new_inner.co_freevars)))
        result["message"] = "%d existing closure(s) updated; new closures get the new code with `%s`" % (updated, outer)

    def _add(self, change, code, result):
        if change.get("in_function"):
            result["message"] = "part of the new code of the enclosing function"
            return
        class_names = _class_path(change.get("scope") or [])
        self.swaps.flush()  # the definition's decorators may call what this save changed before
        cls, namespace, _ = self._exec_in_scope(code, class_names)
        if cls is not None:
            key = _mangle(change["qualname"].rsplit(".", 1)[-1], cls.__name__)
            self.swaps.set(cls, key, namespace[key])
            self.swaps.flush()

    def _delete(self, change, code, result):
        if change.get("in_function"):
            result["message"] = "removed from the new code of the enclosing function"
            return
        if change.get("kind") == "statement":
            return self._delete_class_attributes(change, result)
        parts = change["qualname"].split(".")
        if change.get("kind") == "class":
            cls = self._resolve_class(parts[:-1])
            owner = self.module if cls is None else cls
            key = _mangle(parts[-1], cls.__name__ if cls is not None else None)
            if key not in vars(owner):
                raise _Failure("skipped", "`%s` is already gone" % change["qualname"])
            self.swaps.delete(owner, key)
            return
        binding = self._locate(change)
        accessor = change.get("accessor")
        container = binding.chain[0]
        if accessor and isinstance(container, property):
            self.swaps.set(binding.owner, binding.key,
                           property(container.fget, None if accessor == "setter" else container.fset,
                             None if accessor == "deleter" else container.fdel, container.__doc__))
        else:
            self.swaps.delete(binding.owner, binding.key)
        for obj in binding.chain:
            self.notifications.append((obj, "deleted", result))

    def _delete_class_attributes(self, change, result):
        """A statement removed from a class body: the names it bound go from the running class; instances
        keep their own attributes."""
        cls = self._resolve_class(_class_path(change.get("scope") or []))
        if cls is None:
            raise _Failure("skipped", "a removed module statement is not undone")
        present = [name for name in change.get("binds") or [] if _mangle(name, cls.__name__) in vars(cls)]
        if not present:
            raise _Failure("skipped", "already gone from class `%s`" % cls.__qualname__)
        for name in present:
            self.swaps.delete(cls, _mangle(name, cls.__name__))
        result["message"] = "deleted from class `%s`: %s" % (cls.__qualname__, ", ".join(present))
        if change.get("detail"):
            _add_message(result, change["detail"])

    def _shift(self, change, code, result):
        delta = change["line"] - change["old_line"]
        if change.get("in_function"):
            result["message"] = "moved with the enclosing function"
            return
        if change.get("kind") == "class":
            cls = self._resolve_class(change["qualname"].split("."))
            count = _shift_class(cls, delta, self.filename, self.swaps)
            result["message"] = "%d function(s) moved by %+d line(s)" % (count, delta)
            return
        function = self._locate(change, unfollowable="skipped").function
        self.swaps.set(function, "__code__", _shift_code(function.__code__, delta))

    def _exec(self, change, code, result):
        class_names = _class_path(change.get("scope") or [])
        result["message"] = change.get("label", "")
        if not change.get("scope") and not change.get("docstring") and self._top_level_running() \
                and not _harmless_while_running(change.get("source") or ""):
            raise _Failure("skipped", "part of the running script's top level: takes effect at the next run")
        if change.get("docstring"):
            doc = eval(compile(change["source"].strip(), self.filename, "eval"), {})
            cls = self._resolve_class(class_names)
            self.swaps.set(self.module if cls is None else cls, "__doc__", doc)
            return
        cls = self._resolve_class(class_names)
        self.swaps.flush()  # the statement may call what this save changed before it
        before = dict(self.namespace) if cls is None else None
        kept = []
        try:
            cls, namespace, class_before = self._exec_in_scope(code, class_names)
        finally:
            if cls is None:  # also after an error: keep identities of what was rebound before it
                kept = self._keep_rebound_functions(before, self.namespace, result)
                self.swaps.flush()
        if cls is not None:
            before = class_before
            for key, value in namespace.items():
                if key in _CLASS_BOOKKEEPING or before.get(key, _MISSING) is value:
                    continue
                previous = before.get(key)
                if _transplantable(previous, value, self.filename):
                    _transplant(previous, value, self.swaps)
                    kept.append(key)
                    self.notifications.append((previous, "updated", result))
                else:
                    self.swaps.set(cls, key, value)
        self.swaps.flush()
        if kept:
            result["message"] += " (kept the function object of: %s)" % ", ".join(kept)

    def _keep_rebound_functions(self, before, namespace, result):
        """After a module statement ran: names that held a function of this file and now hold a new one
        get the old object back, with the new code in it (identity kept)."""
        kept = []
        for key, value in list(namespace.items()):
            previous = before.get(key)
            if previous is not value and _transplantable(previous, value, self.filename):
                _transplant(previous, value, self.swaps)
                self.swaps.set(self.module, key, previous)
                kept.append(key)
                self.notifications.append((previous, "updated", result))
        return kept



def _identity(function):
    return function


def _harmless_while_running(source):
    """Imports and assignments of literals: what a running script's top level may run again (a new
    import a changed function needs, a changed constant), unlike loops and calls."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            try:
                ast.literal_eval(node.value)
                continue
            except ValueError:
                pass
        return False
    return True


def _unwrap(obj, accessor, is_target):
    """The path from a bound object down to the function ``is_target`` accepts, or None.

    Follows staticmethod/classmethod/bound method ``__func__``, the property accessor, ``__wrapped__``
    (functools.wraps, lru_cache), ``func`` (cached_property, partial), and into wrappers that keep none
    of these: the callables in a wrapper function's closure cells (stacked closures, lambdas) and in a
    callable instance's attributes. Breadth first, so the shortest path wins; bounded in depth and in
    the objects looked into, never a heap scan."""
    paths = [[obj]]
    seen = {id(obj)}
    looked_into = 0
    for path in paths:  # grows while it is walked: breadth first
        if is_target(path[-1]):
            return path
        if len(path) > _MAX_UNWRAP or looked_into >= _MAX_WRAPPERS_SEARCHED:
            continue
        looked_into += 1
        for inner in _inner_objects(path[-1], accessor):
            if id(inner) not in seen:
                seen.add(id(inner))
                paths.append(path + [inner])
    return None


def _inner_objects(obj, accessor):
    """What a wrapper may hold the wrapped function in, most explicit first."""
    if isinstance(obj, (staticmethod, classmethod, types.MethodType)):
        return [obj.__func__]
    if isinstance(obj, property):
        accessor_function = {"setter": obj.fset, "deleter": obj.fdel}.get(accessor, obj.fget)
        return [] if accessor_function is None else [accessor_function]
    if isinstance(obj, types.FunctionType):
        if "__wrapped__" in obj.__dict__:
            return [obj.__dict__["__wrapped__"]]
        return [value for value in map(_cell_value, obj.__closure__ or ()) if _may_wrap(value)]
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None:
        return [wrapped]
    func = getattr(obj, "func", None)  # functools.cached_property, functools.partial
    if isinstance(func, types.FunctionType):
        return [func]
    attributes = getattr(obj, "__dict__", None)  # a class-based decorator keeping the function
    if callable(obj) and isinstance(attributes, dict):
        return [value for value in attributes.values() if _may_wrap(value)]
    return []


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:  # empty cell
        return None


def _may_wrap(value):
    """Worth looking into for a wrapped function: callables other than classes and C functions."""
    return (isinstance(value, (types.FunctionType, staticmethod, classmethod, property))
            or (callable(value) and not isinstance(value, (type, types.BuiltinFunctionType))))


def _function_named(name, filename=None, firstlineno=None):
    """A predicate for _unwrap: a function with this code name (and file and first line, if given)."""
    def accepts(obj):
        if not isinstance(obj, types.FunctionType):
            return False
        code = obj.__code__
        return code.co_name == name and (filename is None or code.co_filename == filename) and (
            firstlineno is None or code.co_firstlineno == firstlineno)
    return accepts


def _rebind_warnings(change, old_bound, bound, module, old_follows):
    """What keeps the object a name was bound to before a rebind, and what the old decorators did."""
    decorators = ", ".join("@" + d for d in change.get("old_decorators") or [])
    if bound is not old_bound:
        holders = _modules_holding(old_bound, module)
        return ["%s: `%s` before this save; %sregistries the old decorators filled and references taken earlier "
                "keep it, %s" % (_describe(old_bound), change["qualname"],
                                 "from-imports in %s, " % ", ".join(holders) if holders else "",
                                 "which runs the new code" if old_follows else "with the old code")]
    if decorators:
        return ["what the old decorators (%s) did is not undone: registries they filled keep `%s`"
                % (decorators, change["qualname"])]
    return []


def _modules_holding(obj, own_module):
    """Names of the other modules whose namespace holds ``obj`` (``from m import f``): proportional to the
    modules' namespaces, not to the heap; only when a rebind leaves the old object behind."""
    holders = []
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if module is not own_module and isinstance(namespace, dict) and any(
                value is obj for value in list(namespace.values())):
            holders.append(name)
    return sorted(holders)


def _transplantable(old, new, filename):
    return (isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType)
            and old.__code__.co_filename == filename and new.__code__.co_filename == filename
            and old.__code__.co_freevars == new.__code__.co_freevars)


def _transplant(old, new, swaps):
    """Queue putting what a def evaluates into the existing function object: references to it follow."""
    for name in _FUNCTION_STATE:
        swaps.set(old, name, getattr(new, name))


def _shift_class(cls, delta, filename, swaps, seen=None):
    """Move every function defined in ``cls`` (and its nested classes) by ``delta`` lines."""
    seen = set() if seen is None else seen
    if id(cls) in seen:
        return 0
    seen.add(id(cls))
    count = 0
    prefix = cls.__qualname__ + "."
    for key, value in list(vars(cls).items()):
        if isinstance(value, type):
            if value.__qualname__.startswith(prefix) and value.__module__ == cls.__module__:
                count += _shift_class(value, delta, filename, swaps, seen)
            continue
        if isinstance(value, property):
            targets = [f for f in (value.fget, value.fset, value.fdel) if f is not None]
        else:
            path = _unwrap(value, None, lambda obj: isinstance(obj, types.FunctionType) and obj.__qualname__.startswith(prefix))
            targets = [] if path is None else [path[-1]]
        for function in targets:
            if function.__code__.co_filename == filename and id(function) not in seen:
                seen.add(id(function))  # an alias (`other = method`) moves it once
                swaps.set(function, "__code__", _shift_code(function.__code__, delta))
                count += 1
    if "__firstlineno__" in vars(cls):  # 3.13+: what inspect.getsource uses for classes
        swaps.set(cls, "__firstlineno__", cls.__firstlineno__ + delta)
    return count
