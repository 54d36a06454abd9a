"""hotd's agent package, loaded by path inside a running Python process.

The native agent registers this package in ``sys.modules`` as ``hotd_agent`` and calls
``hotd_agent.patcher.apply_plan`` while holding the GIL, from a thread Python did not create.
User code may ``import hotd_agent`` to use the hooks below (see docs/PATCHING.md).

Nothing here imports threading, logging, asyncio or concurrent: importing threading first from a
foreign thread makes that thread ``threading.main_thread()`` (docs: shared/notes/attach.md).
"""

from .hooks import after_patch, before_patch, is_patching, on_patch, remove_patch_hook

# Patching from code (client.py) is loaded on first use, like the patcher.
_CLIENT_NAMES = ("patch_file", "patch_function", "revert", "PatchError")

__all__ = ["is_patching", "on_patch", "before_patch", "after_patch", "remove_patch_hook", "patcher"] + list(
    _CLIENT_NAMES)


def __getattr__(name):
    # The patcher is imported on first use (the agent warms it up right after registering), so that
    # attaching is not slowed down by compiling it.
    import sys

    if name == "patcher":
        __import__(__name__ + ".patcher")  # not `from . import`: its fromlist check would call us again
        return sys.modules[__name__ + ".patcher"]
    if name in _CLIENT_NAMES:
        __import__(__name__ + ".client")
        return getattr(sys.modules[__name__ + ".client"], name)
    raise AttributeError("module 'hotd_agent' has no attribute %r" % name)
