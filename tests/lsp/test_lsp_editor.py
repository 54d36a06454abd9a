"""An editor on `hotd lsp` and a real Python process under `hotd run`: edits, saves, diagnostics."""

import json
import subprocess
import sys
import unittest

from lsp_testing import HotdTestCase, bridge_process, uri, wait_for

APP = """\
import time
from dataclasses import dataclass

@dataclass
class Point:
    x: int = 0

def value():
    return "before"

def main():
    while True:
        print("value=%s" % value(), flush=True)
        time.sleep(0.05)

if __name__ == "__main__":
    main()
"""


def utf16(text):
    return len(text.encode("utf-16-le")) // 2


class EditorSession(HotdTestCase):
    run_options = ["--no-watch"]  # saves come from the editor only

    def setUp(self):
        super().setUp()
        self.app = self.write("app.py", APP)
        self.process = self.start(self.app, options=self.run_options)
        self.wait_output(self.process, "value=before")
        self.bridge, self.editor = bridge_process(self.env)
        self.initialized = self.editor.initialize()
        self.uri = uri(self.app)
        self.editor.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": "python", "version": 1, "text": APP}})

    def tearDown(self):
        if self.bridge.poll() is None:
            self.bridge.kill()
        self.bridge.wait()
        self.bridge.stdin.close()
        self.bridge.stdout.close()
        self.bridge.stderr.close()
        super().tearDown()

    def change(self, version, line, start, end, text):
        self.editor.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": line, "character": start},
                                          "end": {"line": line, "character": end}}, "text": text}]})

    def save(self, text=None):
        params = {"textDocument": {"uri": self.uri}}
        if text is not None:
            params["text"] = text
        self.editor.notify("textDocument/didSave", params)

    def patched(self):
        return self.editor.notification("hotd/patched", where=lambda p: p["uri"] == self.uri)

    def diagnostics(self):
        return self.editor.notification("textDocument/publishDiagnostics",
                                        where=lambda p: p["uri"] == self.uri)["diagnostics"]

    def test_edit_and_save_patches_the_process_and_reports_hotd_patched(self):
        line = APP.splitlines().index('    return "before"')
        self.change(2, line, len('    return "'), len('    return "before'), "after")
        self.write("app.py", APP.replace('"before"', '"after"'))  # the editor writes the file, then says so
        self.save()  # without text: the daemon reads the file
        patched = self.patched()
        self.assertEqual([p["pid"] for p in patched["processes"]], [self.process.pid])
        self.assertEqual(patched["processes"][0]["status"], "applied", patched)
        self.assertEqual(patched["processes"][0]["result"]["results"][0]["qualname"], "value")
        self.wait_output(self.process, "value=after")
        self.assertEqual(self.diagnostics(), [])
        self.assertIsNone(self.process.poll())
        self.assertEqual(json.loads(self.hotd("status", "--json").stdout)["editors"], 1)

    def test_a_buffer_with_lone_carriage_returns_is_patched_as_cpython_reads_it(self):
        # Classic Mac line endings: one line for tree-sitter-python, many for CPython.
        text = APP.replace('"before"', '"after"').replace("\n", "\r")
        self.editor.notify("textDocument/didChange", {"textDocument": {"uri": self.uri, "version": 2},
                                                      "contentChanges": [{"text": text}]})
        self.save(text)
        patched = self.patched()
        self.assertEqual(patched["processes"][0]["status"], "applied", patched)
        self.assertEqual([r["qualname"] for r in patched["processes"][0]["result"]["results"]], ["value"])
        self.wait_output(self.process, "value=after")

    def test_patch_file_command_applies_the_edited_buffer(self):
        line = APP.splitlines().index('    return "before"')
        self.change(2, line, len('    return "'), len('    return "before'), "ünïcødé 😀")
        after_emoji = utf16('    return "ünïcødé 😀')  # LSP counts UTF-16 code units: the emoji is two
        self.change(3, line, after_emoji, after_emoji, "!")
        reply = self.editor.call("workspace/executeCommand", {"command": "hotd.patchFile", "arguments": [self.uri]})
        self.assertEqual(reply["result"]["processes"][0]["status"], "applied", reply)
        self.wait_output(self.process, "value=ünïcødé 😀!")

    def test_revert_command_goes_back_to_the_previous_version(self):
        missing = self.editor.call("workspace/executeCommand", {"command": "hotd.revert", "arguments": [self.uri]})
        self.assertIn("only version", missing["error"]["message"])  # nothing was applied yet
        self.save(APP.replace('"before"', '"after"'))
        self.wait_output(self.process, "value=after")
        reply = self.editor.call("workspace/executeCommand", {"command": "hotd.revert", "arguments": [self.uri]})
        self.assertEqual(reply["result"]["processes"][0]["status"], "applied", reply)
        self.wait_output(self.process, "value=before")

    def test_rude_edit_is_a_warning_at_the_definitions_line_and_the_rest_applies(self):
        text = APP.replace("    x: int = 0\n", "    x: int = 0\n    y: int = 1\n").replace('"before"', '"rest"')
        self.save(text)
        rude = [d for d in self.diagnostics() if d["code"] == "rude-edit"]
        self.assertEqual(len(rude), 1, rude)
        self.assertEqual(rude[0]["range"]["start"]["line"], text.splitlines().index("    y: int = 1"))
        self.assertEqual(rude[0]["severity"], 2)
        self.assertEqual(rude[0]["source"], "hotd")
        self.assertIn("fields of dataclass `Point` changed", rude[0]["message"])
        self.assertIn("restart", rude[0]["message"].lower())
        self.wait_output(self.process, "value=rest")
        shown = self.editor.notification("window/showMessage")
        self.assertIn("pid %d partial" % self.process.pid, shown["message"])
        # The process still runs the old dataclass: the next save reports the rude edit again...
        self.save(text.replace('"rest"', '"again"'))
        self.assertEqual([d["code"] for d in self.diagnostics()], ["rude-edit"])
        self.wait_output(self.process, "value=again")
        # ...until the field is gone again: then it runs what the editor shows.
        self.save(APP.replace('"before"', '"clean"'))
        self.assertEqual(self.diagnostics(), [])
        self.wait_output(self.process, "value=clean")

    def test_syntax_error_is_an_error_diagnostic_and_applies_nothing(self):
        broken = APP.replace("def value():", "def value(:").replace('"before"', '"broken"')
        self.save(broken)
        diagnostics = self.diagnostics()
        self.assertEqual([d["code"] for d in diagnostics], ["syntax-error"], diagnostics)
        self.assertEqual(diagnostics[0]["range"]["start"]["line"], broken.splitlines().index("def value(:"))
        self.assertEqual(diagnostics[0]["severity"], 1)
        patched = self.patched()
        self.assertFalse(patched["ok"])
        self.assertEqual(patched["processes"], [])
        printed = len(self.output(self.process))
        wait_for(lambda: len(self.output(self.process)) > printed + 40, message="more output")
        self.assertNotIn("broken", self.output(self.process))

    def test_python_rejects_an_over_indented_field_the_parser_accepts(self):
        text = APP.replace("    x: int = 0\n", "    x: int = 0\n        y: int = 1\n")
        self.save(text)
        # The save's own diagnostics come first; CPython's error joins them, on its own thread.
        diagnostics = self.editor.notification(
            "textDocument/publishDiagnostics",
            where=lambda p: p["uri"] == self.uri and any(d["code"] == "python-syntax-error" for d in p["diagnostics"]),
            timeout=20)["diagnostics"]
        python = diagnostics[0]
        self.assertEqual(python["code"], "python-syntax-error", diagnostics)
        self.assertTrue(python["message"].startswith("IndentationError: unexpected indent ("), python)
        line = text.splitlines().index("        y: int = 1")
        self.assertEqual(python["range"], {"start": {"line": line, "character": 7},
                                           "end": {"line": line, "character": len("        y: int = 1")}})
        self.assertEqual(python["severity"], 1)
        self.assertEqual([d["code"] for d in diagnostics[1:]], ["rude-edit"], diagnostics)
        # The next clean save clears CPython's error; the new field stays a rude edit the process has
        # not applied (what is left unclaimed belongs to the save above).
        self.editor.unclaimed.clear()
        self.save(text.replace("        y: int = 1", "    y: int = 1").replace('"before"', '"clean"'))
        self.wait_output(self.process, "value=clean")
        self.assertEqual([d["code"] for d in self.diagnostics()], ["rude-edit"])

    def lenses(self, editor=None):
        reply = (editor or self.editor).call("textDocument/codeLens", {"textDocument": {"uri": self.uri}})
        return reply["result"]

    def test_code_lens_says_where_a_patched_definition_is_live(self):
        # A second editor that takes refresh requests; the first one does not announce it.
        bridge, watcher = bridge_process(self.env)
        self.addCleanup(lambda: (bridge.kill(), bridge.wait(), bridge.stdin.close(), bridge.stdout.close(),
                                 bridge.stderr.close()))
        watcher.call("initialize", {"capabilities": {"workspace": {"codeLens": {"refreshSupport": True}}}})
        watcher.notify("initialized")
        watcher.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": "python", "version": 1, "text": APP}})
        self.assertEqual(self.lenses(), [])  # nothing patched yet
        text = APP.replace('"before"', '"lens"')
        self.save(text)
        self.wait_output(self.process, "value=lens")
        refresh = watcher.wait_for(lambda m: m.get("method") == "workspace/codeLens/refresh", what="a refresh")
        watcher.send({"jsonrpc": "2.0", "id": refresh["id"], "result": None})
        self.assertNotIn("params", refresh)
        line = text.splitlines().index("def value():")
        lenses = self.lenses()
        self.assertEqual(len(lenses), 1, lenses)
        self.assertEqual(lenses[0]["range"]["start"], {"line": line, "character": 0})
        self.assertRegex(lenses[0]["command"]["title"], r"^live in 1 process · patched \d+ s ago$")
        # A command the server announced (generic clients run it as is): the processes running the file.
        command = lenses[0]["command"]
        announced = self.initialized["result"]["capabilities"]["executeCommandProvider"]["commands"]
        self.assertIn(command["command"], announced)
        listing = self.editor.call("workspace/executeCommand", {"command": command["command"],
                                                                "arguments": command["arguments"]})
        self.assertEqual([p["pid"] for p in listing["result"]["processes"]], [self.process.pid])
        elsewhere = self.editor.call("workspace/executeCommand", {"command": command["command"],
                                                                  "arguments": [uri(self.write("other.py", ""))]})
        self.assertEqual(elsewhere["result"]["processes"], [])
        self.assertEqual(len(self.lenses(watcher)), 1)
        # Lenses follow the buffer: two lines inserted above move it down.
        self.change(2, 0, 0, 0, "\n\n")
        self.assertEqual([lens["range"]["start"]["line"] for lens in self.lenses()], [line + 2])
        # Once no attached process runs it, the lens goes.
        self.process.kill()
        self.process.wait()
        wait_for(lambda: self.lenses() == [], message="the lens to go with the process")

    def test_patch_failure_names_the_process_and_the_error(self):
        text = APP.replace("def main():", "def main(a, a):")
        self.save(text)
        failed = [d for d in self.diagnostics() if d["code"] == "patch-failed"]
        self.assertTrue(failed, "expected a patch-failed diagnostic")
        self.assertIn("pid %d: SyntaxError" % self.process.pid, failed[0]["message"])
        self.assertEqual(failed[0]["range"]["start"]["line"], text.splitlines().index("def main(a, a):"))

    def test_commands_list_and_detach_the_process(self):
        listing = self.editor.call("workspace/executeCommand", {"command": "hotd.listProcesses"})
        self.assertEqual([p["pid"] for p in listing["result"]["processes"]], [self.process.pid])
        detached = self.editor.call("workspace/executeCommand", {"command": "hotd.detach", "arguments": [self.process.pid]})
        self.assertEqual(detached["result"], {"pid": self.process.pid, "detached": True})
        missing = self.editor.call("workspace/executeCommand", {"command": "hotd.detach", "arguments": [1]})
        self.assertEqual(missing["error"]["code"], -32803)

    def test_a_cancelled_attach_ends_its_progress_first_and_leaves_the_process_unattached(self):
        # The regex holds the GIL for a second or more: the attach waits for it, so the cancel comes
        # while the attach runs, however fast the machine.
        target = subprocess.Popen([sys.executable, "-c", "import re, sys\nprint('ready', flush=True)\n"
                                   "re.match('(a*)*b', 'a' * 23)\nsys.stdin.read()"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (target.kill(), target.wait(), target.stdin.close(), target.stdout.close()))
        self.assertEqual(target.stdout.readline(), "ready\n")
        request_id = self.editor.request("workspace/executeCommand", {"command": "hotd.attach", "arguments": [target.pid],
                                                                      "workDoneToken": "attach"})
        begin = self.editor.wait_for(lambda m: m.get("method") == "$/progress", what="the attach's progress")
        self.assertEqual(begin["params"]["value"]["kind"], "begin")
        self.editor.notify("$/cancelRequest", {"id": request_id})
        end = self.editor.wait_for(lambda m: m.get("method") == "$/progress" or m.get("id") == request_id,
                                   what="the end of the progress, before the reply")
        self.assertEqual(end.get("params", {}).get("value", {}).get("kind"), "end", end)
        reply = self.editor.wait_for(lambda m: m.get("id") == request_id, what="the reply")
        self.assertEqual(reply["error"]["code"], -32800)
        # The attach could not be stopped midway: once it is done, hotd detaches the process again.
        wait_for(lambda: "was cancelled while it ran: detached it again" in self.daemon_log(), timeout=30,
                 message="the cancelled attach to be undone")
        listed = json.loads(self.hotd("ps", "--json").stdout)
        self.assertNotIn(target.pid, [p["pid"] for p in listed.get("processes", listed)])
        self.assertIsNone(target.poll(), "the target kept running")

    def test_editors_are_told_when_processes_come_and_go(self):
        def pids_announced():
            changed = self.editor.notification("hotd/processesChanged")
            return sorted(process["pid"] for process in changed["processes"])

        second = self.start(self.app, options=self.run_options)
        self.assertEqual(pids_announced(), sorted([self.process.pid, second.pid]))
        second.kill()
        second.wait()
        self.assertEqual(pids_announced(), [self.process.pid])

    def test_the_bridge_exits_non_zero_when_the_daemon_goes_away(self):
        self.hotd("stop")
        self.assertEqual(self.bridge.wait(10), 1)
        self.assertIn("the hotd daemon closed the connection", self.bridge.stderr.read().decode())


class BridgeEnding(HotdTestCase):
    """How `hotd lsp` ends, as LSP asks: exit status 0 only after an accepted `shutdown`, then `exit`."""

    def setUp(self):
        super().setUp()
        self.hotd("serve", "--quiet")
        self.bridge, self.editor = bridge_process(self.env)

    def tearDown(self):
        if self.bridge.poll() is None:
            self.bridge.kill()
        self.bridge.communicate()
        super().tearDown()

    def raw(self, message):
        body = json.dumps(message).encode()
        self.editor.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def test_shutdown_and_exit_with_null_params_as_eglot_sends_them_exit_0(self):
        self.editor.initialize()
        self.raw({"jsonrpc": "2.0", "id": 90, "method": "shutdown", "params": None})
        reply = self.editor.wait_for(lambda m: m.get("id") == 90, what="the reply to shutdown")
        self.assertEqual(reply.get("result", "missing"), None, reply)
        self.raw({"jsonrpc": "2.0", "method": "exit", "params": None})
        self.assertEqual(self.bridge.wait(10), 0, self.bridge.stderr.read().decode())

    def test_exit_after_a_refused_shutdown_exits_1(self):
        refused = self.editor.call("shutdown")  # before initialize: -32002
        self.assertEqual(refused["error"]["code"], -32002)
        self.editor.notify("exit")
        self.assertEqual(self.bridge.wait(10), 1)

    def test_exit_after_shutdown_sent_as_a_notification_exits_1(self):
        self.editor.initialize()
        self.editor.notify("shutdown")
        self.editor.notify("exit")
        self.assertEqual(self.bridge.wait(10), 1)

    def test_a_framing_error_of_the_editor_is_named_as_such(self):
        self.editor.initialize()
        self.editor.write(b"Content-Length: many\r\n\r\n{}")
        self.assertEqual(self.bridge.wait(10), 1)
        printed = self.bridge.stderr.read().decode()
        self.assertIn("the editor sent bytes that are not an LSP message", printed)
        self.assertNotIn("stopped or crashed", printed)


class WatchedEditorSession(EditorSession):
    """The same with the file watcher on, as `hotd run` has it by default: each file the editor writes
    is a save of its own too, besides the editor's didSave."""

    run_options = []

    def test_the_rude_edit_diagnostic_stays_after_the_watchers_save_and_the_editors(self):
        text = APP.replace("    x: int = 0\n", "    x: int = 0\n    y: int = 1\n").replace('"before"', '"rest"')
        self.write("app.py", text)  # the editor writes the file (the watcher's save), then says so
        self.save(text)
        for _ in range(2):  # one answer per save, in either order
            self.patched()
        published = [p for p in self.editor.unclaimed if p.get("method") == "textDocument/publishDiagnostics"
                     and p["params"]["uri"] == self.uri]
        self.assertTrue(published, self.editor.unclaimed)
        self.assertEqual([d["code"] for d in published[-1]["params"]["diagnostics"]], ["rude-edit"])
        self.wait_output(self.process, "value=rest")

    def test_the_second_save_of_the_same_text_does_not_replace_what_the_editor_shows(self):
        text = APP.replace('"before"', '"after"')
        self.write("app.py", text)
        self.save(text)
        self.assertEqual(self.patched()["processes"][0]["status"], "applied")
        # Both saves are done (as `hotd log` tells a user), and all the daemon sent before the reply to a
        # request is here: no second notification says "unchanged".
        wait_for(lambda: self.hotd("log", self.app).stdout.count("pid %d " % self.process.pid) == 2,
                 message="both saves to complete")
        self.editor.call("workspace/executeCommand", {"command": "hotd.listProcesses", "arguments": []})
        self.assertEqual([m for m in self.editor.unclaimed if m.get("method") == "hotd/patched"], [])
        self.wait_output(self.process, "value=after")

    def test_a_watched_file_no_process_runs_is_not_reported_to_the_editor(self):
        notes = self.write("notes.py", "TODO = 1\n")  # beside the app, in the watched directory
        wait_for(lambda: "no process runs it" in self.hotd("log", notes).stdout, message="the watcher's save")
        self.editor.call("workspace/executeCommand", {"command": "hotd.listProcesses", "arguments": []})
        self.assertEqual([m for m in self.editor.unclaimed if m.get("method") in (
            "hotd/patched", "window/logMessage") and "notes.py" in json.dumps(m)], [])


if __name__ == "__main__":
    unittest.main()
