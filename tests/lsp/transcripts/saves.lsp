=== file app.py
def f():
    return 1
>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
# didSave with text: a syntax error is an error diagnostic, nothing is applied, and hotd/patched says so.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "def f(:\n    return 2\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "syntax-error", "message": "expected ')' (nothing was applied)", "range": {"end": {"character": 6, "line": 0}, "start": {"character": 6, "line": 0}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py has syntax errors; nothing was applied", "type": 2}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [{"column": 7, "end_column": 7, "end_line": 1, "line": 1, "message": "expected ')'"}], "file": "${WORK}/app.py", "ok": false, "processes": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "python-syntax-error", "message": "SyntaxError: invalid syntax (nothing was applied)", "range": {"end": {"character": 7, "line": 0}, "start": {"character": 6, "line": 0}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/app.py"}}
# didSave without text reads the file: the next clean save clears the diagnostics.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py saved; no attached process runs it", "type": 3}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [], "file": "${WORK}/app.py", "ok": true, "processes": [], "uri": "file://${WORK}/app.py"}}
# A file that does not exist cannot be read: nothing happens (the daemon logs why).
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/missing.py"}}}
{"jsonrpc": "2.0", "id": 2, "method": "shutdown"}
<<<
{"id": 2, "jsonrpc": "2.0", "result": null}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
