"""hotd's sitecustomize: Python runs it at start-up in each interpreter started by a `hotd run` program
(subprocess, multiprocessing's spawn method and forkserver), whose environment names this directory
first on PYTHONPATH (hotd_start.hand_down). It starts the child's own agent, so that the child
registers with the daemon and a save patches it like its parent; then it leaves sys.path as it would
be without hotd and runs the sitecustomize it hides (the distribution's, a virtualenv's, the user's).

Any Python on the machine may inherit the environment: this file parses as Python 2, and nothing
here may stop the child from running as it would without hotd.
"""

import os
import sys

_SITE_DIR = os.path.dirname(os.path.abspath(__file__))


def _start_agent():
    if sys.version_info < (3, 7) or sys.implementation.name != "cpython":
        return  # an interpreter the agent does not serve
    config = None
    try:
        import hotd_start

        library = os.environ.get(hotd_start.LIBRARY_VARIABLE)
        config = os.environ.get(hotd_start.CONFIG_VARIABLE)
        if not library or not config:
            return  # not started by a `hotd run` program, or it was detached
        started = hotd_start.start_agent(library, config)
        if started:
            hotd_start.wait_for_registration()
    except Exception:
        started = False
    if not started and "verbosity=verbose" in (config or "").splitlines():
        sys.stderr.write("hotd: no agent in %s (pid %d); it runs without live patching\n" % (sys.executable, os.getpid()))


def _leave_sys_path():
    for index, entry in enumerate(sys.path):
        if os.path.abspath(entry) == _SITE_DIR:
            del sys.path[index]
            return


def _run_hidden_sitecustomize():
    """Python imports the first sitecustomize on sys.path, this one: import the next one, now that this
    directory is off sys.path. It takes this module's place in sys.modules, where Python's import of
    this module picks it up; its errors reach Python's site module as they would without hotd."""
    this = sys.modules["sitecustomize"]
    del sys.modules["sitecustomize"]
    try:
        import sitecustomize  # noqa: F401
    except ImportError as error:
        if getattr(error, "name", "sitecustomize") != "sitecustomize":  # Python 2 has no name
            raise
        sys.modules["sitecustomize"] = this  # there is none


_start_agent()
_leave_sys_path()
_run_hidden_sitecustomize()
