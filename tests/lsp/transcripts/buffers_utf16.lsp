>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
# A buffer with characters of 1, 2, 3 and 4 UTF-8 bytes; positions count UTF-16 code units, so the
# emoji is two. Incremental changes in one notification apply in order.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "file://${WORK}/doc.py", "languageId": "python", "version": 1, "text": "s = 'aé€😀z'\nt = 1\n"}}}
{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": "file://${WORK}/doc.py", "version": 2}, "contentChanges": [
  {"range": {"start": {"line": 0, "character": 10}, "end": {"line": 0, "character": 12}}, "text": "Z' + ("},
  {"range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 5}}, "text": "2"}]}}
{"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {"command": "hotd.patchFile", "arguments": ["file://${WORK}/doc.py"]}}
<<<
{"id": 2, "jsonrpc": "2.0", "result": {"errors": [{"column": 1, "end_column": 6, "end_line": 2, "line": 1, "message": "invalid syntax near 's = 'aé€😀Z' + ('"}], "file": "${WORK}/doc.py", "ok": false, "processes": []}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "syntax-error", "message": "invalid syntax near 's = 'aé€😀Z' + (' (nothing was applied)", "range": {"end": {"character": 5, "line": 1}, "start": {"character": 0, "line": 0}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/doc.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: doc.py has syntax errors; nothing was applied", "type": 2}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [{"column": 1, "end_column": 6, "end_line": 2, "line": 1, "message": "invalid syntax near 's = 'aé€😀Z' + ('"}], "file": "${WORK}/doc.py", "ok": false, "processes": [], "uri": "file://${WORK}/doc.py"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [{"code": "python-syntax-error", "message": "SyntaxError: '(' was never closed (nothing was applied)", "range": {"end": {"character": 16, "line": 0}, "start": {"character": 15, "line": 0}}, "severity": 1, "source": "hotd"}], "uri": "file://${WORK}/doc.py"}}
# Patching the buffer (not the file) shows the edited text: line 0 is now `s = 'aé€😀Z' + (`, and
# the diagnostic's columns count the emoji as two units.
# A full replacement (no range) fixes it: the diagnostics are cleared.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": "file://${WORK}/doc.py", "version": 3}, "contentChanges": [{"text": "s = '😀'\n"}]}}
{"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand", "params": {"command": "hotd.patchFile", "arguments": [{"uri": "file://${WORK}/doc.py"}]}}
<<<
{"id": 3, "jsonrpc": "2.0", "result": {"errors": [], "file": "${WORK}/doc.py", "ok": true, "processes": []}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [], "uri": "file://${WORK}/doc.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: doc.py saved; no attached process runs it", "type": 3}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [], "file": "${WORK}/doc.py", "ok": true, "processes": [], "uri": "file://${WORK}/doc.py"}}
# A change whose range ends before it starts is refused (logged) and leaves the buffer as it was.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": "file://${WORK}/doc.py", "version": 4}, "contentChanges": [{"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 1}}, "text": "("}]}}
{"jsonrpc": "2.0", "id": 4, "method": "workspace/executeCommand", "params": {"command": "hotd.patchFile", "arguments": ["file://${WORK}/doc.py"]}}
<<<
{"id": 4, "jsonrpc": "2.0", "result": {"errors": [], "file": "${WORK}/doc.py", "ok": true, "processes": []}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [], "uri": "file://${WORK}/doc.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: doc.py saved; no attached process runs it", "type": 3}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [], "file": "${WORK}/doc.py", "ok": true, "processes": [], "uri": "file://${WORK}/doc.py"}}
>>>
{"jsonrpc": "2.0", "id": 5, "method": "shutdown"}
{"jsonrpc": "2.0", "method": "exit"}
<<<
{"id": 5, "jsonrpc": "2.0", "result": null}
=== exit 0
