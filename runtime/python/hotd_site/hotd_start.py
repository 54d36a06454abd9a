"""Starting the agent in the processes of a `hotd run` program: the program itself (hotd_run.py) and
each Python interpreter it starts, directly or not (sitecustomize.py, beside this file), which finds
the agent in the environment it inherits."""

import os
import sys

LIBRARY_VARIABLE = "HOTD_AGENT_LIB"
CONFIG_VARIABLE = "HOTD_AGENT_CONFIG"
SITE_DIR = os.path.dirname(os.path.abspath(__file__))

_fork_hook_installed = [False]


def start_agent(library, config):
    """Starts the native agent with `config` (text); false when it could not. A child forked later
    (os.fork, multiprocessing's fork method, forkserver workers) has no agent thread and starts its
    own, unless the daemon detached this process. Installed now, not when the agent registers, as the
    program may fork at once."""
    import ctypes

    try:
        start = ctypes.CDLL(library).hotd_agent_start
    except (OSError, AttributeError):  # a missing library, or not hotd's
        return False
    start.argtypes = [ctypes.c_char_p]
    config = config.encode("utf-8")
    if start(config) < 0:
        return False
    if not _fork_hook_installed[0]:  # once: `hotd run` in a child of a `hotd run` program starts twice
        os.register_at_fork(after_in_child=lambda: _start_in_forked_child(start, config))
        _fork_hook_installed[0] = True
    return True


def _start_in_forked_child(start, config):
    link = sys.modules.get("hotd_agent.link")
    if not getattr(link, "stop_requested", False):
        start(config)


def hand_down(library, config):
    """Lets the Python interpreters the program starts (subprocess, multiprocessing's spawn method and
    forkserver) start agents of their own: Python runs this directory's sitecustomize.py at start-up
    when PYTHONPATH names it, and that finds the agent in the variables set here."""
    os.environ[LIBRARY_VARIABLE] = library
    os.environ[CONFIG_VARIABLE] = config
    path = os.environ.get("PYTHONPATH", "")
    if path.split(os.pathsep)[0] != SITE_DIR:  # not when a `hotd run` program's child runs `hotd run`
        os.environ["PYTHONPATH"] = SITE_DIR + os.pathsep + path if path else SITE_DIR



def wait_for_registration(limit=3.0):
    """Let the daemon take the agent's registration before the program goes on: a save made as soon
    as the program is ready then reaches it (the daemon asks every registered process about a file
    it has no report of), and `import hotd_agent` (hooks, the pytest plugin) works from the first
    line. Bounded: a daemon that does not answer only costs the program live patching, not its start."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        link = sys.modules.get("hotd_agent.link")
        registered = getattr(link, "_registered", None)  # the module may be half-imported
        if registered and registered[0]:
            return
        time.sleep(0.002)  # releases the GIL to the agent's thread
