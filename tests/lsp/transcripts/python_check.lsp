>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
# With no process attached, CPython still checks every save. An over-indented field in a class body is
# accepted by hotd's parser, but Python raises IndentationError: once the save's own diagnostics are
# out, CPython's error follows, at the indented line up to its end.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "class A:\n    x: int = 1\n        y: int = 2\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py saved; no attached process runs it", "type": 3}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [], "file": "${WORK}/app.py", "ok": true, "processes": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "python-syntax-error", "message": "IndentationError: unexpected indent (nothing was applied)", "range": {"end": {"character": 18, "line": 2}, "start": {"character": 7, "line": 2}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
# A syntax error of the parser: CPython's error replaces it from its line on.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "x = 1\ndef f(:\n    return 2\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "syntax-error", "message": "expected ')' (nothing was applied)", "range": {"end": {"character": 6, "line": 1}, "start": {"character": 6, "line": 1}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py has syntax errors; nothing was applied", "type": 2}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [{"column": 7, "end_column": 7, "end_line": 2, "line": 2, "message": "expected ')'"}], "file": "${WORK}/app.py", "ok": false, "processes": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "python-syntax-error", "message": "SyntaxError: invalid syntax (nothing was applied)", "range": {"end": {"character": 7, "line": 1}, "start": {"character": 6, "line": 1}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
# Columns: Python's count code points, LSP's UTF-16 units (each emoji is two).
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "s = '😀😀' + (1 2)\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "syntax-error", "message": "invalid syntax near '2' (nothing was applied)", "range": {"end": {"character": 17, "line": 0}, "start": {"character": 16, "line": 0}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py has syntax errors; nothing was applied", "type": 2}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [{"column": 15, "end_column": 16, "end_line": 1, "line": 1, "message": "invalid syntax near '2'"}], "file": "${WORK}/app.py", "ok": false, "processes": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "python-syntax-error", "message": "SyntaxError: invalid syntax. Perhaps you forgot a comma? (nothing was applied)", "range": {"end": {"character": 17, "line": 0}, "start": {"character": 14, "line": 0}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
# A NUL byte: Python 3.11 refuses the text with a ValueError without a position; it is placed at the byte.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "x = 1\ny = 'é\u0000'\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "syntax-error", "message": "invalid syntax near 'y = 'é\u0000'' (nothing was applied)", "range": {"end": {"character": 8, "line": 1}, "start": {"character": 0, "line": 1}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py has syntax errors; nothing was applied", "type": 2}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [{"column": 1, "end_column": 9, "end_line": 2, "line": 2, "message": "invalid syntax near 'y = 'é\u0000''"}], "file": "${WORK}/app.py", "ok": false, "processes": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "python-syntax-error", "message": "ValueError: source code string cannot contain null bytes (nothing was applied)", "range": {"end": {"character": 8, "line": 1}, "start": {"character": 6, "line": 1}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
# The next clean save clears everything, and CPython adds nothing.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "class A:\n    x: int = 1\n    y: int = 2\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py saved; no attached process runs it", "type": 3}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [], "file": "${WORK}/app.py", "ok": true, "processes": [], "uri": "file://${WORK}/app.py"}}
>>>
{"jsonrpc": "2.0", "id": 2, "method": "shutdown"}
<<<
{"id": 2, "jsonrpc": "2.0", "result": null}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
