"""The file watcher's options under `hotd run`: include and exclude globs, debounce, polling, and
-v saying what is watched (the watcher options users know from jurigged)."""

import json
import time
import unittest

from hotd_testing import HotdTestCase, wait_for

LOOP = """\
import time
import helper_gen

def value():
    return 1

while True:
    print("value=%s gen=%s" % (value(), helper_gen.gen()), flush=True)
    time.sleep(0.05)
"""
GEN = "def gen():\n    return 1\n"


class WatchOptions(HotdTestCase):
    def start_app(self, *options):
        self.write("helper_gen.py", GEN)
        app = self.write("app.py", LOOP)
        process = self.start(app, options=list(options))
        self.wait_output(process, "value=1 gen=1")
        return process

    def test_exclude_and_include_globs(self):
        process = self.start_app("--exclude", "*_gen.py", "-v")
        self.assertIn("not *_gen.py", self.errors(process))  # -v says what is watched
        self.assertIn("hotd: watching " + self.work, self.errors(process))
        self.write("helper_gen.py", GEN.replace("1", "2"))
        self.write("app.py", LOOP.replace("return 1", "return 2"))
        # Saves apply in order: an applied helper_gen.py save would have come first (gen=2 with value=2).
        self.wait_output(process, "value=2 gen=1")
        self.assertEqual([save["file"] for save in self.saves()], [self.work + "/app.py"])  # excluded: not patched
        process.kill()

        other = self.start_app("--include", "helper_*.py")
        self.write("app.py", LOOP.replace("return 1", "return 3"))
        self.write("helper_gen.py", GEN.replace("1", "4"))
        # Only the included file was picked up: an applied app.py save would have come first (value=3).
        self.wait_output(other, "value=1 gen=4")
        self.assertNotIn("value=3", self.output(other))

    def test_debounce_turns_a_burst_into_one_save(self):
        process = self.start_app("--debounce", "1000")  # wide: a loaded machine stretches the 50 ms pauses
        for number in (2, 3, 4):  # saves 50 ms apart, as a user's burst: well inside the debounce
            self.write("app.py", LOOP.replace("return 1", "return %d" % number))
            time.sleep(0.05)
        self.wait_output(process, "value=4")
        # A later save, once applied, is the barrier: a save of the burst still to come would be in the log by then.
        self.write("app.py", LOOP.replace("return 1", "return 5"))
        self.wait_output(process, "value=5")
        saves = self.saves()
        self.assertEqual(len(saves), 2, saves)
        self.assertNotIn("value=2", self.output(process))
        self.assertNotIn("value=3", self.output(process))

    def test_polling_sees_saves_without_inotify(self):
        process = self.start_app("--poll", "0.1", "-v")
        self.assertIn("polling every 0.1 s", self.errors(process))
        status = json.loads(self.hotd("status", "--json").stdout)
        self.assertEqual(status["watched_directories"], 0)  # no inotify watch was set
        self.write("app.py", LOOP.replace("return 1", "return 5"))
        self.wait_output(process, "value=5", timeout=5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
