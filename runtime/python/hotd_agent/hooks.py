"""Hooks user code can use to cooperate with live patching."""

import _thread
import weakref

# Threads currently applying a patch: module code they run sees is_patching() true,
# other threads of the process keep seeing false.
_patching_threads = set()

# function object -> callbacks; the function is held weakly, so registering does not keep it alive.
_callbacks = weakref.WeakKeyDictionary()


def is_patching():
    """True while this thread runs module or class code because hotd is applying a save.

    Module code can use it to keep state across saves, e.g.
    ``if not hotd_agent.is_patching(): CONNECTIONS = {}``.
    """
    return _thread.get_ident() in _patching_threads


def on_patch(func, callback):
    """Call ``callback(func, event)`` after a save updates or deletes ``func``.

    ``event`` is ``"updated"`` (new code in the same object, or a new object installed in its place,
    see docs/PATCHING.md) or ``"deleted"``. ``func`` is held weakly; ``callback`` strongly.
    Registering the same callback twice calls it twice. Returns ``func``.
    """
    _callbacks.setdefault(func, []).append(callback)
    return func


class patching:
    """Context manager marking the current thread as applying a patch (re-entrant)."""

    def __enter__(self):
        self._ident = _thread.get_ident()
        self._outer = self._ident in _patching_threads
        _patching_threads.add(self._ident)
        return self

    def __exit__(self, *exc):
        if not self._outer:
            _patching_threads.discard(self._ident)
        return False


def callbacks_for(obj):
    """The callbacks registered for ``obj`` (a copy), or an empty list."""
    try:
        return list(_callbacks.get(obj, ()))
    except TypeError:  # not weak-referenceable or not hashable: nothing can be registered for it
        return []


# Module hooks: (when, module name or None for every module, callback), in registration order.
_module_hooks = []


def before_patch(callback=None, module=None):
    """Call ``callback(module, changes)`` before a save is applied to a module (every module, or the
    one named ``module``); ``changes`` is the plan's list of changes. Usable as a decorator, with or
    without ``module=``. Returns ``callback``."""
    return _register("before", callback, module)


def after_patch(callback=None, module=None):
    """Call ``callback(module, results)`` after a save was applied to a module (every module, or the
    one named ``module``): re-run an init function, re-render a screen, re-run a failed test.
    ``results`` are the per-change results for that module (docs/PATCHING.md). Returns ``callback``."""
    return _register("after", callback, module)


def remove_patch_hook(callback):
    """Forget every registration of ``callback`` made with before_patch or after_patch."""
    _module_hooks[:] = [entry for entry in _module_hooks if entry[2] is not callback]


def _register(when, callback, module):
    if callback is None:  # used as @before_patch(module="app") / @after_patch(module=...)
        return lambda function: _register(when, function, module)
    _module_hooks.append((when, module, callback))
    return callback


def run_module_hooks(when, module, argument):
    """Runs the hooks registered for ``module``; returns the exceptions they raised, with the hook."""
    failures = []
    for hook_when, name, callback in list(_module_hooks):
        if hook_when != when or (name is not None and name != module.__name__):
            continue
        try:
            callback(module, argument)
        except Exception as error:  # a hook must not undo or hide the patch
            failures.append((callback, error))
    return failures
