"""Emacs 28 with eglot 1.9 (Debian's) on `hotd lsp`, as a user drives it: batch Emacs opens a module
of a running app, saves a body change (the app changes behaviour), a rude edit and a syntax error
(flymake shows each), and shuts the server down with eglot's messages (exit status 0)."""

import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(HERE))  # tests/editors: the app the editor tests edit

from editor_app import APP  # noqa: E402
from hotd_testing import HotdTestCase  # noqa: E402

EMACS = shutil.which("emacs")
ARTIFACTS = os.environ.get("HOTD_ARTIFACTS_DIR") or os.path.join(HERE, "artifacts")


class EmacsEglot(HotdTestCase):
    def setUp(self):
        super().setUp()
        if not EMACS:
            self.fail("emacs is not installed (scripts/install-deps.sh installs emacs-nox and elpa-eglot)")
        self.app = self.write("app.py", APP)
        # --no-watch: only the editor's save (LSP didSave) can patch the app, not the file watcher.
        self.process = self.start(self.app, options=["--no-watch"])
        self.wait_output(self.process, "hello\n")

    def test_saves_patch_the_app_flymake_shows_rude_edits_and_syntax_errors_and_shutdown_exits_0(self):
        result_path = os.path.join(self.work, "emacs-result.json")
        events_path = os.path.join(ARTIFACTS, "emacs-eglot-events.txt")
        os.makedirs(ARTIFACTS, exist_ok=True)
        # HOME: no init file of the user's; Debian's site start still activates elpa-eglot.
        env = dict(self.env, HOTD_BINARY=os.environ["HOTD_BINARY"], HOTD_EMACS_RESULT=result_path,
                   HOTD_EMACS_EVENTS=events_path, HOME=self.work)
        emacs = subprocess.run([EMACS, "--batch", "-l", os.path.join(HERE, "drive.el"), self.app], env=env,
                               cwd=self.work, timeout=150, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if not os.path.exists(result_path):
            self.fail("emacs wrote no result (exit %d): %s" % (emacs.returncode, emacs.stderr[-3000:]))
        with open(result_path) as source:
            seen = json.load(source)
        self.assertIsNone(seen["failure"], "%s\n%s (eglot's events: %s)" % (seen, emacs.stderr[-3000:], events_path))
        self.assertEqual(emacs.returncode, 0, emacs.stderr[-3000:])

        update, rude, syntax = seen["steps"]
        self.wait_output(self.process, "hello from emacs\n")  # the running app changed behaviour
        self.assertEqual(update["diagnostics"], [])
        [diagnostic] = rude["diagnostics"]
        self.assertEqual(diagnostic["line"], APP.splitlines().index("    x: int = 0") + 2)  # the new field
        self.assertIn("fields of dataclass `Point` changed", diagnostic["text"])
        broken_line = APP.splitlines().index("def greeting():") + 2  # 1-based, below the new field
        self.assertIn(broken_line, [d["line"] for d in syntax["diagnostics"]], syntax)
        self.assertEqual(seen["exit_status"], 0)
        self.assertIsNone(self.process.poll(), "the app kept running")


if __name__ == "__main__":
    unittest.main()
