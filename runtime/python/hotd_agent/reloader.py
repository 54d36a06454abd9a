"""Whole-module reload (`hotd reload`): re-execute a module from disk, then make the old objects follow.

A save applies only what changed (patcher.py); an edit it cannot apply faithfully (a dataclass field,
an enum member, new bases, `__slots__`) is rude. When the user asks for it, this module instead:

1. re-executes the module's file from disk in its own module dict (`hotd_agent.is_patching()` is
   true meanwhile, so guarded state is kept); in `__main__`, the main block and driver code (loops,
   bare calls) are left out;
2. puts the new code of each re-created function into the old function object and binds the old
   object again, so from-imports, bound methods and stored callbacks run the new code;
3. keeps each re-created class as a fresh import would make it, and moves the instances of the old
   class to it (`__class__` assignment) when the layout allows; the others are reported. Enum members
   that still exist keep their identity. Subclasses elsewhere get the new class as their base;
4. does the same for every user module that imports names from a reloaded one (`from mod import f`),
   each after the modules it imports from, `__main__` last.

Cost: finding the instances of a re-created class scans the heap (gc.get_referrers, gc.get_objects
before Python 3.9), once per reload for all re-created classes of a module: proportional to the number
of objects in the process. This runs only when the user asks for a reload, never on a save.
Runs on the agent's thread with the GIL held: no `threading`, `logging` or `asyncio` imports.
"""

import ast
import gc
import sys
import time

from . import hooks
from .patcher import (_code_filename, _error_dict, _finish, _function_named, _mirror, _result, _script_copies,
                      _SwapBatch, _transplant, _transplantable, _unwrap)

# Top-level statements of `__main__` that drive the program rather than define it: re-running them
# would start the program again inside the agent.
_DRIVER_STATEMENTS = (ast.For, ast.While, ast.AsyncFor)


def reload(path, user_modules, executed):
    """Re-execute the module(s) loaded from `path` and the user modules that import names from them.

    `user_modules` maps each user file to the module objects loaded from it. Returns the result of
    docs/PATCHING.md plus `files`: the files that were re-executed (the daemon's new baselines).
    Fills `executed` with the text each re-executed file had (None when it is not UTF-8)."""
    start = time.perf_counter()
    order = _reload_order(path, user_modules)
    results = []
    files = []
    failed = None
    with hooks.patching():
        for file, module in order:
            if failed is not None:
                result = _module_result(module, file, "skipped", "not reloaded: %s failed" % failed)
                results.append(result)
                continue
            script_copies = list(_script_copies([module]))
            names_before = set(vars(module))
            module_results = _reload_module(module, file, executed)
            for _, copy in script_copies:
                _mirror(vars(module), copy, names_before)
            results.extend(module_results)
            if module_results[0]["status"] == "failed":
                failed = module.__name__
            elif file not in files:
                files.append(file)
    outcome = _finish(start, results)
    outcome["files"] = files
    return outcome


def _module_result(module, file, status, message=""):
    result = _result({"op": "reload", "kind": "module", "line": 1}, module.__name__, status, message)
    result["label"] = module.__name__
    result["file"] = file
    return result


# -- which modules, in which order -----------------------------------------------------------------


def _imported_from(module, file):
    """Names of the modules `module` does `from X import ...` of, resolved to absolute names."""
    try:
        with open(file, "rb") as source:
            tree = ast.parse(source.read(), file)
    except (OSError, SyntaxError, ValueError):
        return set()
    package = getattr(module, "__package__", None) or ""
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: max(len(package.split(".")) - node.level + 1, 0)] if package else []
            names.add(".".join(base + ([node.module] if node.module else [])))
        elif node.module:
            names.add(node.module)
    return names


def _reload_order(path, user_modules):
    """(file, module) pairs: `path`'s modules, then their dependents, each after what it imports from."""
    imports = {}  # file -> names of modules it imports names from
    names_of = {}  # file -> every name its modules have in sys.modules
    for file, modules in user_modules.items():
        imports[file] = set().union(*(_imported_from(m, file) for m in modules)) if modules else set()
        names_of[file] = {name for name, m in sys.modules.items() if any(m is each for each in modules)}
    reloaded = {path}
    changed = True
    while changed:  # dependents of dependents
        changed = False
        for file in user_modules:
            if file not in reloaded and any(imports[file] & names_of[other] for other in reloaded):
                reloaded.add(file)
                changed = True
    ordered = [path]
    remaining = sorted(reloaded - {path}, key=lambda f: (_is_main(user_modules[f]), f))
    while remaining:
        # The first one whose reloaded imports are all done; a cycle falls back to the given order.
        ready = next((f for f in remaining if not any(imports[f] & names_of[o] for o in remaining if o != f)),
                     remaining[0])
        ordered.append(ready)
        remaining.remove(ready)
    return [(file, module) for file in ordered for module in user_modules.get(file, [])]


def _is_main(modules):
    return any(m.__name__ == "__main__" for m in modules)


# -- one module ------------------------------------------------------------------------------------


def _code_to_run(module, file, code_file):
    """The module's code from disk, compiled as `code_file`; for `__main__`, without the main block and
    driver statements. Returns (code, number of statements left out, line of each class by name, the
    text as str or None)."""
    with open(file, "rb") as source:
        text = source.read()
    tree = ast.parse(text, file)
    class_lines = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            class_lines.setdefault(node.name, node.lineno)
    left_out = 0
    if module.__name__ == "__main__":
        kept = [node for node in tree.body if not _is_driver(node)]
        left_out = len(tree.body) - len(kept)
        tree.body = kept
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    return compile(tree, code_file, "exec", dont_inherit=True), left_out, class_lines, decoded


def _is_driver(node):
    if isinstance(node, _DRIVER_STATEMENTS):
        return True
    if isinstance(node, ast.Expr):
        return not isinstance(node.value, ast.Constant)  # a call; a docstring stays
    if isinstance(node, ast.If):
        test = node.test
        return (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
                and {_literal(test.left), _literal(test.comparators[0])} == {"name:__name__", "str:__main__"})
    return False


def _literal(node):
    if isinstance(node, ast.Name):
        return "name:" + node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "str:" + node.value
    return None


def _reload_module(module, file, executed):
    """Returns this module's results, the module's own first."""
    summary = _module_result(module, file, "reloaded")
    namespace = vars(module)
    before = dict(namespace)
    code_file = _code_filename(module, file)  # a relative script path on Python 3.8
    try:
        code, left_out, class_lines, text = _code_to_run(module, file, code_file)
        exec(code, namespace)
    except BaseException as error:  # SyntaxError, or the module's code raised: put the old dict back
        namespace.clear()
        namespace.update(before)
        summary["status"] = "failed"
        summary["message"] = "re-executing %s raised %s: %s; the module is as it was" % (
            module.__name__, type(error).__name__, error)
        summary["error"] = _error_dict(error)
        return [summary]
    executed[file] = text
    swaps = _SwapBatch()
    results = []
    class_pairs = []
    for name, old in before.items():
        new = namespace.get(name)
        if new is old or new is None:
            continue
        if isinstance(old, type) and isinstance(new, type) and old.__module__ == module.__name__:
            class_pairs.append((old, new))
            _update_methods(old, new, code_file, swaps)
        elif _update_function(old, new, code_file, swaps):
            swaps.set(module, name, old)
            result = _result({"op": "reload", "kind": "function", "qualname": old.__qualname__,
                              "line": old.__code__.co_firstlineno}, module.__name__, "updated",
                             "updated in place: references to it run the new code")
            results.append(result)
    swaps.flush()
    results.extend(_migrate(class_pairs, module, class_lines))
    counts = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    summary["message"] = "re-executed from disk; %d function(s) updated in place, %d class(es) re-created" % (
        counts.get("updated", 0), len(class_pairs))
    if left_out:
        summary["message"] += "; %d statement(s) of the main block and driver code not re-run" % left_out
    return [summary] + results


def _update_function(old, new, file, swaps):
    """Put `new`'s code into `old` (through wrappers such as lru_cache); false when they do not match."""
    if type(old) is not type(new):
        return False
    old_chain = _unwrap(old, None, _function_named(getattr(old, "__name__", ""), file))
    new_chain = _unwrap(new, None, _function_named(getattr(new, "__name__", ""), file))
    if old_chain is None or new_chain is None or not _transplantable(old_chain[-1], new_chain[-1], file):
        return False
    _transplant(old_chain[-1], new_chain[-1], swaps)
    for wrapper in old_chain[:-1]:
        if callable(getattr(wrapper, "cache_clear", None)):
            swaps.clear_cache(wrapper)
    return True


def _update_methods(old_cls, new_cls, file, swaps):
    """The old class's functions get the new code: bound methods and references taken before the reload
    run it (instances that cannot move to the new class too)."""
    for key, old in vars(old_cls).items():
        new = vars(new_cls).get(key)
        if isinstance(old, property) and isinstance(new, property):
            for accessor in ("fget", "fset", "fdel"):
                old_f, new_f = getattr(old, accessor), getattr(new, accessor)
                if old_f is not None and new_f is not None:
                    _update_function(old_f, new_f, file, swaps)
        elif new is not None:  # functions generated elsewhere (dataclass __init__) are not of `file`
            _update_function(old, new, file, swaps)


# -- instances of re-created classes ---------------------------------------------------------------


def _instances(classes):
    """Objects whose type is one of `classes` (ids), found by scanning the heap."""
    if sys.version_info >= (3, 9):  # instances of heap types refer to their type since 3.9
        candidates = gc.get_referrers(*[cls for cls in classes.values()])
    else:
        candidates = gc.get_objects()
    return [obj for obj in candidates if id(type(obj)) in classes and type(obj) is classes[id(type(obj))]]


def _migrate(class_pairs, module, class_lines):
    results = []
    if not class_pairs:
        return results
    old_classes = {id(old): old for old, _ in class_pairs}
    new_for = {id(old): new for old, new in class_pairs}
    instances = _instances(old_classes)
    for old, new in class_pairs:
        result = _result({"op": "reload", "kind": "class", "qualname": old.__qualname__,
                          "line": class_lines.get(old.__name__)}, module.__name__, "migrated")
        result["migrated"] = 0
        members = _enum_members(old, new)
        for obj in instances:
            if type(obj) is not old:
                continue
            try:  # past a custom __setattr__ (frozen dataclasses)
                object.__setattr__(obj, "__class__", new)
                result["migrated"] += 1
            except TypeError as error:  # "object layout differs": other __slots__ or base layout
                result["stale"].append("%s at %#x: %s" % (old.__qualname__, id(obj), error))
        for name, member in members:
            _keep_enum_member(new, name, member)
        rebased = _rebase_subclasses(old, new, new_for, result)
        result["message"] = "re-created; %d instance(s) migrated" % result["migrated"]
        if rebased:
            result["message"] += "; %d subclass(es) now derive from the new class" % rebased
        if result["stale"]:
            result["status"] = "rude"
            result["message"] += "; %d instance(s) could not be migrated (their layout differs: `__slots__` " \
                                 "or bases changed) and keep the old class: restart to apply" % len(result["stale"])
        results.append(result)
    return results


def _enum_members(old, new):
    """(name, old member) for enum members that still exist with the same value."""
    old_map = getattr(old, "_member_map_", None)
    new_map = getattr(new, "_member_map_", None)
    if not isinstance(old_map, dict) or not isinstance(new_map, dict):
        return []
    return [(name, member) for name, member in old_map.items()
            if name in new_map and getattr(new_map[name], "_value_", None) == getattr(member, "_value_", None)]


def _keep_enum_member(cls, name, member):
    """The migrated member replaces its twin in the new enum: `Color.RED is stored_red` stays true."""
    if type(member) is not cls:
        return
    twin = cls._member_map_[name]
    cls._member_map_[name] = member
    values = getattr(cls, "_value2member_map_", {})
    try:
        if values.get(member._value_) is twin:
            values[member._value_] = member
    except TypeError:  # an unhashable value is not in the map
        pass
    if vars(cls).get(name) is twin:
        type.__setattr__(cls, name, member)
    if "__objclass__" in vars(member):
        member.__objclass__ = cls


def _rebase_subclasses(old, new, new_for, result):
    """Subclasses of the old class that were not re-created (in modules not reloaded) get the new base."""
    rebased = 0
    for subclass in old.__subclasses__():
        if id(subclass) in new_for:
            continue
        try:
            subclass.__bases__ = tuple(new if base is old else base for base in subclass.__bases__)
            rebased += 1
        except TypeError as error:
            result["stale"].append("subclass %s.%s keeps the old base: %s" % (
                subclass.__module__, subclass.__qualname__, error))
    return rebased

