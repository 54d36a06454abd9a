"""pytest plugin: fix a failing test without restarting pytest.

    hotd run -m pytest -p hotd_agent.pytest_plugin --hotd-loop [--hotd-package-root src] [pytest args]

With ``--hotd-loop``, a failing test is not reported at once: its failure is shown, and the test waits
for a save that patches the code (any file of the project, in any editor, or ``hotd patch``). Then it
runs again in the same process, with the state of every fixture and import intact, until it passes or
you quit with Ctrl+C. Tests that pass run as usual.
"""

import _thread
import os
import sys

import pytest
from _pytest.runner import runtestprotocol

from . import hooks


def pytest_addoption(parser):
    group = parser.getgroup("hotd", "live patching with hotd")
    group.addoption("--hotd-loop", action="store_true", default=False,
                    help="on a failure, wait for a save that patches the code and run the test again")
    group.addoption("--hotd-package-root", default=None, metavar="DIR",
                    help="directory to import the code under test from (a src/ layout)")


def pytest_configure(config):
    root = config.getoption("hotd_package_root")
    if root:
        root = os.path.abspath(root)
        if root not in sys.path:
            sys.path.insert(0, root)
    if config.getoption("hotd_loop") and "hotd_agent.link" not in sys.modules:
        raise pytest.UsageError("--hotd-loop needs live patching: run `hotd run -m pytest ... --hotd-loop`")


class _PatchSignal(object):
    """Released by an after_patch hook (on the agent's thread); waited for by the test's thread."""

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        hooks.after_patch(self._patched)

    def _patched(self, module, results):
        if self._lock.locked() and any(r["status"] in ("updated", "added", "deleted", "executed") for r in results):
            self._lock.release()

    def wait(self):
        # Short timeouts keep Ctrl+C responsive while waiting.
        while not self._lock.acquire(True, 0.2):
            pass

    def close(self):
        hooks.remove_patch_hook(self._patched)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    if not item.config.getoption("hotd_loop"):
        return None
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    attempt = 1
    while True:
        signal = _PatchSignal()
        try:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            failed = [report for report in reports if report.failed]
            if not failed:
                break
            if reporter is not None:
                reporter.write_line("")
                reporter.write_sep("-", "%s failed (attempt %d)" % (item.nodeid, attempt), red=True)
                for report in failed:
                    reporter.write_line(report.longreprtext)
                reporter.write_line("hotd: edit and save to run %s again (Ctrl+C to stop)" % item.nodeid,
                                    yellow=True)
            signal.wait()
            attempt += 1
        finally:
            signal.close()
    if attempt > 1 and reporter is not None:
        reporter.write_line("hotd: %s passed after %d attempts" % (item.nodeid, attempt), green=True)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
