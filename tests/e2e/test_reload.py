"""`hotd reload`: a whole-module reload for edits a save cannot apply (rude edits), in a real process
under `hotd run`: re-executed modules, functions updated in place, instances moved to re-created
classes, dependents reloaded after what they import from, the entry point's main block never re-run."""

import json
import os
import unittest

from hotd_testing import HotdTestCase, RpcClient, wait_for

SHOP = """\
import dataclasses
import enum

LIMIT = 1


@dataclasses.dataclass
class Point:
    x: int

    def double(self):
        return self.x * 2


class Color(enum.Enum):
    RED = 1


class Slotted:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a


def f():
    return "f1"
"""

# Imports names from shop: reloaded after it.
DEP = """\
from shop import LIMIT, Color, f


def call():
    return f() + " limit=%d" % LIMIT
"""

# Holds the program's objects; imports shop as a module (no names), so it is not reloaded.
STATE = """\
import shop

point = shop.Point(1)
double = point.double
red = shop.Color.RED
slotted = shop.Slotted(7)
old_f = shop.f
"""

# The entry point imports a name from dep: reloaded last; its main block reads stdin and must not
# run again (it would block the reload).
MAIN = """\
import sys
import dep, shop, state
from dep import call

TOP_LEVEL_RUNS = globals().get("TOP_LEVEL_RUNS", 0) + 1

if __name__ == "__main__":
    print("ready", flush=True)
    for line in sys.stdin:
        print(repr(eval(line)), flush=True)
"""


class Reload(HotdTestCase):
    def setUp(self):
        HotdTestCase.setUp(self)
        self.shop = self.write("shop.py", SHOP)
        self.write("dep.py", DEP)
        self.write("state.py", STATE)
        main = self.write("main.py", MAIN)
        self.process = self.start(main, options=("--no-watch",))
        self.wait_output(self.process, "ready")
        self.asked = 0

    def ask(self, expression):
        """Evaluates `expression` in the program's __main__ and returns the repr it printed."""
        self.process.stdin.write((expression + "\n").encode())
        self.process.stdin.flush()
        self.asked += 1
        wait_for(lambda: len(self.output(self.process).splitlines()) > self.asked,
                 message="an answer to %r (stderr: %s)" % (expression, self.errors(self.process)[-500:]))
        return self.output(self.process).splitlines()[self.asked]

    def edit_shop(self, old, new):
        with open(self.shop) as source:
            text = source.read()
        self.assertIn(old, text)
        self.write("shop.py", text.replace(old, new))

    def reload(self, *args):
        return self.hotd("reload", *args, check=False)

    def test_dataclass_field_added_is_rude_for_a_save_then_reload_migrates_instances(self):
        self.edit_shop("    x: int\n", "    x: int\n    y: int = 5\n")
        patched = self.hotd("patch", self.shop, check=False)
        self.assertEqual(patched.returncode, 1, patched.stdout)
        self.assertIn("fields of dataclass `Point` changed", patched.stdout)

        result = self.reload("shop")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("reloaded shop (line 1): re-executed from disk", result.stdout)
        self.assertIn("migrated Point (line 8): re-created; 1 instance(s) migrated", result.stdout)
        self.assertEqual(self.ask("state.point"), "Point(x=1, y=5)")
        self.assertEqual(self.ask("type(state.point) is shop.Point"), "True")
        self.assertEqual(self.ask("shop.Point(2, 3)"), "Point(x=2, y=3)")
        self.assertEqual(self.ask("state.double()"), "2")  # a bound method taken before the reload
        # The baseline is the disk text now: saving it again changes nothing.
        again = self.hotd("patch", "--json", self.shop, check=False)
        self.assertEqual(json.loads(again.stdout)["processes"][0]["status"], "unchanged", again.stdout)

    def test_enum_member_added_keeps_existing_members(self):
        self.edit_shop("    RED = 1\n", "    RED = 1\n    BLUE = 2\n")
        self.assertIn("fields of enum `Color` changed", self.hotd("patch", self.shop, check=False).stdout)
        result = self.reload(self.shop)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.ask("shop.Color.BLUE.value"), "2")
        self.assertEqual(self.ask("state.red is shop.Color.RED is shop.Color(1)"), "True")
        self.assertEqual(self.ask("[c.name for c in shop.Color]"), "['RED', 'BLUE']")
        self.assertEqual(self.ask("dep.Color is shop.Color"), "True")  # the dependent was reloaded

    def test_dependents_see_the_new_names_in_dependency_order_and_main_block_never_reruns(self):
        self.edit_shop('return "f1"', 'return "f2"')
        self.edit_shop("LIMIT = 1", "LIMIT = 2")
        result = self.reload("--json", "shop")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        process = json.loads(result.stdout)["processes"][0]
        self.assertEqual(process["status"], "applied")
        reloaded = [r["module"] for r in process["result"]["results"] if r["status"] == "reloaded"]
        self.assertEqual(reloaded, ["shop", "dep", "__main__"])
        self.assertEqual(self.ask("dep.f is state.old_f"), "True")  # updated in place, not replaced
        self.assertEqual(self.ask("state.old_f()"), "'f2'")
        self.assertEqual(self.ask("call()"), "'f2 limit=2'")
        self.assertEqual(self.ask("TOP_LEVEL_RUNS"), "2")  # re-executed, except the main block
        self.assertEqual(self.output(self.process).count("ready"), 1)

    def test_instances_of_a_class_with_incompatible_slots_are_reported(self):
        self.edit_shop('__slots__ = ("a",)', '__slots__ = ("a", "b")')
        result = self.reload("shop")
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("rude Slotted", result.stdout)
        self.assertIn("1 instance(s) could not be migrated", result.stdout)
        self.assertEqual(self.ask("type(state.slotted) is shop.Slotted, state.slotted.a"), "(False, 7)")
        self.assertEqual(self.ask("shop.Slotted.__slots__"), "('a', 'b')")

    def test_a_module_that_raises_is_put_back_and_its_dependents_are_not_reloaded(self):
        self.edit_shop('return "f1"', 'return "f2"')
        self.edit_shop("LIMIT = 1\n", "LIMIT = 1\nraise RuntimeError('broken')\n")
        result = self.reload("shop")
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("RuntimeError: broken", result.stdout)
        self.assertIn("skipped dep", result.stdout)
        self.assertEqual(self.ask("shop.f()"), "'f1'")

    def test_unknown_module_is_an_error(self):
        result = self.reload("no_such_module")
        self.assertEqual(result.returncode, 2)
        self.assertIn("no attached process has loaded a module named no_such_module", result.stderr)

    def test_editor_code_action_on_a_rude_edit_reloads_the_module(self):
        editor = RpcClient(os.path.join(self.runtime, "daemon.sock"))
        self.addCleanup(editor.close)
        capabilities = editor.call("initialize", {"capabilities": {}})["result"]["capabilities"]
        self.assertIn("hotd.reloadModule", capabilities["executeCommandProvider"]["commands"])
        uri = "file://" + self.shop
        rude = {"range": {"start": {"line": 6, "character": 0}, "end": {"line": 6, "character": 11}},
                "severity": 2, "source": "hotd", "code": "rude-edit", "message": "dataclass fields changed"}
        actions = editor.call("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": rude["range"],
            "context": {"diagnostics": [rude, dict(rude, code="syntax-error")]}})["result"]
        self.assertEqual(len(actions), 1)
        self.assertEqual(actions[0]["command"]["command"], "hotd.reloadModule")
        self.edit_shop("    x: int\n", "    x: int\n    y: int = 5\n")
        reply = editor.call("workspace/executeCommand", actions[0]["command"], timeout=30)
        self.assertEqual(reply["result"]["processes"][0]["status"], "applied", reply)
        self.assertEqual(self.ask("state.point"), "Point(x=1, y=5)")


if __name__ == "__main__":
    unittest.main()
