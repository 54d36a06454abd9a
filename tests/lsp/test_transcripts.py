"""Recorded LSP sessions (tests/lsp/transcripts/*.lsp) run through the real `hotd lsp` and daemon.

Format, one block per marker line:

    # a comment (kept when expectations are regenerated)
    === file NAME        the lines up to the next marker are written to ${WORK}/NAME first
    >>>                  JSON messages the editor sends, in one write
    <<<                  one JSON message the server must send next (compared as JSON)
    === exit N           `hotd lsp` must exit with status N once the transcript is done

`${WORK}` stands for the test's work directory. HOTD_UPDATE_TRANSCRIPTS=1 rewrites every `<<<` block
with what the server actually sent (review the diff before committing it).
"""

import glob
import json
import os
import re
import unittest

from lsp_testing import HotdTestCase, bridge_process

TRANSCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transcripts")
UPDATE = os.environ.get("HOTD_UPDATE_TRANSCRIPTS") == "1"
QUIET_SECONDS = 0.5  # when regenerating: the server is done once it is quiet this long


def parse(text):
    """[(kind, argument, comments, body)] with kind one of file, send, expect, exit."""
    blocks, comments = [], []
    for line in text.splitlines(keepends=True):
        marker = re.match(r"^(>>>|<<<|=== file (\S+)|=== exit (\d+))\s*$", line)
        if marker:
            kind = {">>>": "send", "<<<": "expect"}.get(marker.group(1))
            if marker.group(2):
                kind, argument = "file", marker.group(2)
            elif marker.group(3):
                kind, argument = "exit", int(marker.group(3))
            else:
                argument = None
            blocks.append([kind, argument, comments, ""])
            comments = []
        elif line.startswith("#") and (not blocks or blocks[-1][0] != "file"):
            comments.append(line)
        elif blocks:
            blocks[-1][3] += line
    return blocks


def json_values(text):
    decoder, values, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return values
        value, index = decoder.raw_decode(text, index)
        values.append(value)


def render(blocks):
    out = []
    for kind, argument, comments, body in blocks:
        out.extend(comments)
        out.append({"send": ">>>\n", "expect": "<<<\n"}.get(kind) or
                   ("=== file %s\n" % argument if kind == "file" else "=== exit %d\n" % argument))
        out.append(body if body.endswith("\n") or not body else body + "\n")
    return "".join(out)


class Transcripts(HotdTestCase):
    def check(self, path):
        """Runs one transcript; with HOTD_UPDATE_TRANSCRIPTS=1 rewrites its expectations instead."""
        with open(path) as source:
            blocks = parse(source.read())
        substitute = lambda text: text.replace("${WORK}", self.work)
        unsubstitute = lambda text: text.replace(self.work, "${WORK}")
        for kind, argument, _, body in blocks:
            if kind == "file":
                self.write(argument, substitute(body))
        process, editor = bridge_process(self.env)
        recorded = []
        try:
            for index, (kind, argument, comments, body) in enumerate(blocks):
                if kind == "send":
                    editor.write(b"".join(json_to_frame(value) for value in json_values(substitute(body))))
                    if UPDATE:
                        recorded.append([kind, argument, comments, body])
                        recorded.extend(["expect", None, [], unsubstitute(json.dumps(message, ensure_ascii=False)) + "\n"]
                                        for message in drain(editor))
                elif kind == "expect" and not UPDATE:
                    expected = json.loads(substitute(body))
                    try:
                        actual = editor.receive(10)
                    except (TimeoutError, EOFError) as error:
                        self.fail("%s, block %d: expected %s, got %s" % (os.path.basename(path), index, body.strip(), error))
                    self.assertEqual(actual, expected, "%s, block %d" % (os.path.basename(path), index))
                elif kind == "exit":
                    process.stdin.close()
                    status = process.wait(10)
                    if UPDATE:
                        argument = status
                    else:
                        self.assertEqual(status, argument, process.stderr.read().decode())
                    recorded.append([kind, argument, comments, body])
                elif kind == "file" and UPDATE:
                    recorded.append([kind, argument, comments, body])
            if not UPDATE:
                with self.assertRaises((TimeoutError, EOFError), msg="the server sent more than the transcript expects"):
                    editor.receive(QUIET_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                stream.close()
        if UPDATE:
            with open(path, "w") as out:
                out.write(render(recorded))


def json_to_frame(value):
    body = json.dumps(value, ensure_ascii=False).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def drain(editor):
    messages = []
    while True:
        try:
            messages.append(editor.receive(QUIET_SECONDS))
        except (TimeoutError, EOFError):
            return messages


def add_tests():
    paths = sorted(glob.glob(os.path.join(TRANSCRIPTS, "*.lsp")))
    assert paths, "no transcripts in " + TRANSCRIPTS
    for path in paths:
        name = "test_" + os.path.splitext(os.path.basename(path))[0]
        setattr(Transcripts, name, lambda self, path=path: self.check(path))


add_tests()

if __name__ == "__main__":
    unittest.main()
