"""hotd's agent package, loaded by path inside a running Python process.

The native agent registers this package in ``sys.modules`` as ``hotd_agent`` and calls
``hotd_agent.patcher.apply_plan`` while holding the GIL, from a thread Python did not create.
User code may ``import hotd_agent`` to use the hooks below (see docs/PATCHING.md).

Nothing here imports threading, logging, asyncio or concurrent: importing threading first from a
foreign thread makes that thread ``threading.main_thread()`` (docs: shared/notes/attach.md).
"""

from .hooks import is_patching, on_patch
from . import patcher

__all__ = ["is_patching", "on_patch", "patcher"]
