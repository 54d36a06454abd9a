"""The Neovim plugin in a real, headless Neovim: a :write of a module of a running app patches the app,
and a rude edit shows up as a diagnostic in the buffer. Real daemon (`hotd lsp`), real process."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(HERE))  # tests/editors: the app both editor tests edit

from editor_app import APP  # noqa: E402
from hotd_testing import HotdTestCase, wait_for  # noqa: E402

NVIM = shutil.which("nvim")
ARTIFACTS = os.environ.get("HOTD_ARTIFACTS_DIR") or os.path.join(HERE, "artifacts")

EDITS = [
    {"find": '    return "hello"', "replace": '    return "hello from neovim"'},
    # A new dataclass field cannot be applied to existing instances: a rude edit.
    {"find": "    x: int = 0", "replace": "    x: int = 0\n    y: int = 0"},
    # :write again, nothing changed: the app still runs the old dataclass, so the rude edit stays.
    {"find": "    y: int = 0", "replace": "    y: int = 0"},
]


def read_json(path):
    with open(path) as source:
        return json.load(source)


class NeovimPlugin(HotdTestCase):
    def setUp(self):
        super().setUp()
        if not NVIM:
            self.fail("nvim is not installed (scripts/install-deps.sh installs it)")
        self.app = self.write("app.py", APP)
        # --no-watch: only the editor's save (LSP didSave) can patch the app, not the file watcher.
        self.process = self.start(self.app, options=["--no-watch"])
        self.wait_attached(self.process)
        self.wait_output(self.process, "hello\n")
        self.result_path = os.path.join(self.work, "nvim-result.json")
        edits_path = os.path.join(self.work, "edits.json")
        with open(edits_path, "w") as out:
            json.dump(EDITS, out)
        self.nvim_env = dict(self.env, HOTD_NVIM_PLUGIN=os.path.join(ROOT, "editors", "nvim"),
                             HOTD_BINARY=os.environ["HOTD_BINARY"], HOTD_NVIM_EDITS=edits_path,
                             HOTD_NVIM_RESULT=self.result_path, XDG_STATE_HOME=self.work, XDG_DATA_HOME=self.work,
                             XDG_CONFIG_HOME=self.work)
        self.nvim_command = [NVIM, "-n", "-i", "NONE", "-u", os.path.join(HERE, "drive.lua"), self.app]


    def test_write_patches_the_running_app_and_a_rude_edit_is_a_diagnostic(self):
        nvim = subprocess.run(self.nvim_command[:1] + ["--headless"] + self.nvim_command[1:], env=self.nvim_env,
                              cwd=self.work, timeout=90, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        self.assertEqual(nvim.returncode, 0, nvim.stdout + nvim.stderr)
        seen = read_json(self.result_path)
        self.assertIsNone(seen.get("failure"), seen)
        process = self.process

        update, rude, again = seen["steps"]
        self.assertEqual([p["pid"] for p in update["patched"]["processes"]], [process.pid])
        self.assertEqual(update["patched"]["processes"][0]["status"], "applied")
        self.wait_output(process, "hello from neovim\n")  # the running app changed behaviour
        self.assertEqual(update["diagnostics"], [])
        # One line for a clean save: a :write must not end in a "Press ENTER" prompt.
        self.assertEqual(update["messages"], ["hotd: app.py: applied in pid %d: updated greeting" % process.pid])
        self.assertEqual(update["statusline"], "hotd 1")

        self.assertEqual(rude["patched"]["processes"][0]["status"], "partial")
        [diagnostic] = rude["diagnostics"]
        self.assertEqual(diagnostic["code"], "rude-edit")
        self.assertEqual(diagnostic["line"], APP.splitlines().index("    x: int = 0") + 2)  # the new field
        self.assertIn("fields of dataclass `Point` changed", diagnostic["message"])
        self.assertEqual(again["patched"]["processes"][0]["status"], "partial")
        self.assertEqual(again["diagnostics"], rude["diagnostics"])
        self.assertEqual(rude["statusline"], "hotd 1!")  # the rude edit needs attention
        self.assertEqual(seen["bad_pid_messages"], ["hotd: expected a process id, got `1.5`"])
        self.assertIsNone(process.poll(), "the app kept running")

    def test_screen_in_a_terminal_shows_the_patch_and_the_rude_edit(self):
        """The same session in a real terminal (tmux): what a user sees, saved as a screenshot."""
        tmux = ["tmux", "-S", os.path.join(self.work, "tmux.sock")]
        command = " ".join(shlex.quote(part) for part in self.nvim_command + ["-c", "set cmdheight=4 signcolumn=yes"])
        stay = dict(self.nvim_env, HOTD_NVIM_STAY="1")  # keep Neovim open for the screenshot
        environment = [arg for name, value in stay.items() if name.startswith(("HOTD", "XDG")) for arg in ("-e", name + "=" + value)]
        subprocess.run(tmux + ["new-session", "-d", "-x", "100", "-y", "24"] + environment + [command], check=True,
                       env=dict(self.nvim_env, TERM="xterm-256color"), cwd=self.work)
        try:
            self.check_screen(tmux)
        finally:
            subprocess.run(tmux + ["kill-server"], check=False)

    def check_screen(self, tmux):
        wait_for(lambda: os.path.exists(self.result_path), timeout=60, message="the Neovim session to finish its edits")
        seen = read_json(self.result_path)
        self.assertIsNone(seen.get("failure"), seen)
        expected = ['return "hello from neovim"',
                    "W     y: int = 0     ■ fields of dataclass `Point` changed",  # sign and virtual text
                    "hotd: app.py in pid %d: partial\n  rude statement (line 8)" % self.process.pid]
        screens = []

        def drawn():  # the last message and the diagnostic's virtual text come after the edits end
            screens.append(subprocess.run(tmux + ["capture-pane", "-p"], check=True, capture_output=True, text=True).stdout)
            return all(text in screens[-1] for text in expected)

        try:
            wait_for(drawn, message="the screen to show the patch and its diagnostic")
        except AssertionError as error:
            raise AssertionError("%s; the screen:\n%s" % (error, screens[-1])) from None
        screen = subprocess.run(tmux + ["capture-pane", "-p", "-e"], check=True, capture_output=True, text=True).stdout
        self.save_screenshot(screen, "nvim-rude-edit.png")

    def save_screenshot(self, ansi_screen, name):
        """Renders the terminal's screen (ANSI colours) to HTML with aha, then to PNG with Chromium."""
        html = subprocess.run(["aha", "--black", "--title", "hotd in Neovim"], input=ansi_screen, check=True,
                              capture_output=True, text=True).stdout
        html_path = os.path.join(self.work, "screen.html")
        with open(html_path, "w") as out:
            out.write(html.replace("<pre>", '<pre style="font: 15px DejaVu Sans Mono, monospace; margin: 8px">'))
        os.makedirs(ARTIFACTS, exist_ok=True)
        subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--user-data-dir=" + os.path.join(self.work, "chromium"), "--window-size=940,460",
                        "--screenshot=" + os.path.join(ARTIFACTS, name), "file://" + html_path],
                       check=True, capture_output=True, timeout=60)


if __name__ == "__main__":
    unittest.main()
