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
