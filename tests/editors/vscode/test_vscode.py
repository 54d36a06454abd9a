"""The VS Code extension in a real VS Code (code-server, driven by headless Chromium): saving a module
of a running app patches the app, and a rude edit shows up in the Problems view. Real daemon
(`hotd lsp` started by the extension), real process, the extension installed from its .vsix."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(HERE))  # tests/editors: the app both editor tests edit

from editor_app import APP  # noqa: E402
from hotd_testing import HotdTestCase, wait_for  # noqa: E402

TOOLS_ENV = os.path.join(os.environ.get("HOTD_CACHE_DIR") or os.path.expanduser("~/.cache/hotd"), "editors", "tools.env")
ARTIFACTS = os.environ.get("HOTD_ARTIFACTS_DIR") or os.path.join(HERE, "artifacts")
CHROMIUM = shutil.which("chromium")


def editor_tools():
    """What scripts/install-editors.sh installed: node 24 and code-server."""
    try:
        with open(TOOLS_ENV) as tools:
            return dict(line.rstrip("\n").split("=", 1) for line in tools if "=" in line)
    except OSError:
        return {}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class VSCodeExtension(HotdTestCase):
    def setUp(self):
        super().setUp()
        tools = editor_tools()
        missing = [name for name in ("HOTD_NODE24", "HOTD_CODE_SERVER", "HOTD_VSCODE_EXTENSION_READY") if name not in tools]
        if missing or not CHROMIUM:
            self.fail("not installed: %s; run scripts/install-editors.sh (and install-deps.sh for chromium)"
                      % ", ".join(missing + ([] if CHROMIUM else ["chromium"])))
        self.node24, self.code_server_entry = tools["HOTD_NODE24"], tools["HOTD_CODE_SERVER"]
        self.code_server = None
        os.makedirs(ARTIFACTS, exist_ok=True)

    def tearDown(self):
        if self.code_server and self.code_server.poll() is None:
            os.killpg(self.code_server.pid, signal.SIGKILL)  # its children linger otherwise
            self.code_server.wait()
        super().tearDown()

    def code_server_command(self, *args):
        home = os.path.join(self.work, "code-server")
        return [self.node24, self.code_server_entry, "--user-data-dir", os.path.join(home, "data"),
                "--extensions-dir", os.path.join(home, "extensions"), "--config", os.path.join(home, "config.yaml")] + list(args)

    def code_server_env(self):
        home = os.path.join(self.work, "code-server")
        return dict(self.env, XDG_CONFIG_HOME=os.path.join(home, "xdg-config"), XDG_DATA_HOME=os.path.join(home, "xdg-data"))

    def install_extension(self):
        vsix = os.path.join(self.work, "hotd.vsix")
        subprocess.run(["npm", "run", "--silent", "package", "--", "--out", vsix], cwd=os.path.join(ROOT, "editors", "vscode"),
                       check=True, capture_output=True, timeout=180)
        subprocess.run(self.code_server_command("--install-extension", vsix), env=self.code_server_env(),
                       check=True, capture_output=True, timeout=120)
        settings = {"hotd.path": os.environ["HOTD_BINARY"], "workbench.startupEditor": "none",
                    "workbench.tips.enabled": False, "telemetry.telemetryLevel": "off",
                    "extensions.autoCheckUpdates": False, "extensions.autoUpdate": False,
                    "security.workspace.trust.enabled": False, "chat.disableAIFeatures": True,
                    "workbench.secondarySideBar.defaultVisibility": "hidden"}
        # The extension host of code-server is remote: machine settings are read from Machine/.
        for scope in ("User", "Machine"):
            path = os.path.join(self.work, "code-server", "data", scope, "settings.json")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as out:
                json.dump(settings, out)

    def start_code_server(self):
        port = free_port()
        log = open(os.path.join(self.work, "code-server.log"), "w")
        self.code_server = subprocess.Popen(
            self.code_server_command("--bind-addr", "127.0.0.1:%d" % port, "--auth", "none", "--disable-telemetry",
                                     "--disable-update-check", "--disable-workspace-trust",
                                     "--disable-getting-started-override"),
            env=self.code_server_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        url = "http://127.0.0.1:%d" % port

        def healthy():
            try:
                return urllib.request.urlopen(url + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=60, message="code-server to answer /healthz")
        return url

    def test_save_patches_the_running_app_and_a_rude_edit_shows_in_problems(self):
        app = self.write("project/app.py", APP)
        # The file watcher on, as by default: each save reaches the daemon twice, from the watcher and
        # from the extension's didSave, and the rude edit must survive both.
        process = self.start(app)
        self.wait_output(process, "hello\n")
        self.install_extension()
        url = self.start_code_server()

        lines = APP.splitlines()
        spec = {
            "url": url, "folder": os.path.dirname(app), "file": "app.py", "chromium": CHROMIUM,
            "profile": os.path.join(self.work, "chromium-profile"), "screenshotDir": ARTIFACTS,
            "waitReady": "hotd: 1 process",
            "steps": [
                {"line": lines.index('    return "hello"') + 1, "text": 'return "hello from vscode"',
                 "waitStatus": "app.py: 1 updated", "screenshot": "vscode-patched.png"},
                # A new dataclass field cannot be applied to existing instances: a rude edit.
                {"line": lines.index("    x: int = 0") + 1, "text": "x: int = 0\ny: int = 0",  # the editor indents the new line
                 "waitStatus": "app.py: 1 rude", "waitProblems": "rude", "screenshot": "vscode-rude-edit.png"},
            ],
        }
        spec_path, result_path = os.path.join(self.work, "spec.json"), os.path.join(self.work, "result.json")
        with open(spec_path, "w") as out:
            json.dump(spec, out)
        subprocess.run(["node", os.path.join(HERE, "drive.mjs"), spec_path, result_path], cwd=HERE, timeout=300)
        with open(result_path) as result_file:
            result = json.load(result_file)
        self.assertIsNone(result["failure"], "%s\ncode-server log:\n%s" % (result["failure"], self.code_server_log()))

        patched, rude = result["steps"]
        self.assertIn("1 updated", patched["status"])
        self.wait_output(process, "hello from vscode\n")  # the running app changed behaviour
        self.assertIn("1 rude", rude["status"])
        self.assertTrue(any("not applied" in row for row in rude["problems"]), rude["problems"])
        with open(app) as saved:
            self.assertEqual(saved.read(), APP.replace('"hello"', '"hello from vscode"')
                             .replace("    x: int = 0\n", "    x: int = 0\n    y: int = 0\n"))
        self.assertIsNone(process.poll(), "the app kept running")

    def code_server_log(self):
        with open(os.path.join(self.work, "code-server.log")) as log:
            return log.read()[-3000:]


CHECK_FIND_HOTD = r"""
const assert = require("assert");
const fs = require("fs");
const path = require("path");
const { findHotd, notFoundMessage } = require(process.argv[2]);
const [home, folder] = process.argv.slice(3);
const installed = path.join(home, ".local", "bin", "hotd");
const built = path.join(folder, "build", "server", "hotd");

// Not on the extension host's PATH, not installed anywhere: every place looked at is named.
let search = findHotd("hotd", [folder], "/nonexistent-bin", home);
assert.strictEqual(search.found, undefined);
assert.ok(search.tried.includes(installed) && search.tried.includes(built), search.tried.join(" "));
const message = notFoundMessage("hotd", search, "/nonexistent-bin");
assert.ok(message.includes("PATH") && message.includes(installed) && message.includes(built), message);

// The build of a checkout among the workspace folders.
fs.mkdirSync(path.dirname(built), { recursive: true });
fs.writeFileSync(built, "#!/bin/sh\n", { mode: 0o755 });
assert.strictEqual(findHotd("hotd", [folder], "/nonexistent-bin", home).found, built);
// ~/.local/bin (the setup script's prefix) comes first: an installed hotd over a build.
fs.mkdirSync(path.dirname(installed), { recursive: true });
fs.writeFileSync(installed, "#!/bin/sh\n", { mode: 0o755 });
assert.strictEqual(findHotd("hotd", [folder], "/nonexistent-bin", home).found, installed);
// An explicit path is the only place looked at.
search = findHotd("/nowhere/hotd", [folder], "/nonexistent-bin", home);
assert.deepStrictEqual(search, { tried: ["/nowhere/hotd"] });
assert.ok(notFoundMessage("/nowhere/hotd", search, "/bin").includes("(looked in /nowhere/hotd)"));
console.log("ok");
"""


class FindHotd(unittest.TestCase):
    """Where the extension looks for hotd when it is not on the extension host's PATH (which VS Code
    reads from the login shell, not from the shell that started the editor): the extension's own
    module, bundled as the extension is, run by node."""

    def test_installed_and_checkout_builds_are_found_and_a_miss_names_every_place_looked_at(self):
        work = tempfile.mkdtemp(prefix="hotd-find-")
        self.addCleanup(shutil.rmtree, work, True)
        bundle = os.path.join(work, "find_hotd.cjs")
        extension = os.path.join(ROOT, "editors", "vscode")
        subprocess.run([os.path.join(extension, "node_modules", ".bin", "esbuild"), "src/hotdExecutable.ts", "--bundle",
                        "--platform=node", "--format=cjs", "--outfile=" + bundle], cwd=extension, check=True,
                       capture_output=True, timeout=60)
        check = subprocess.run(["node", "-e", CHECK_FIND_HOTD, "node", bundle, os.path.join(work, "home"),
                                os.path.join(work, "project")], capture_output=True, text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertEqual(check.stdout, "ok\n")


if __name__ == "__main__":
    unittest.main()
