# Code lenses ("live in N processes · patched T ago") exist only on definitions a save patched in an
# attached process (tests/lsp/test_lsp_editor.py drives one); with none, every document has no lens.
>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {"workspace": {"codeLens": {"refreshSupport": true}}}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
>>>
{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "file://${WORK}/app.py", "languageId": "python", "version": 1, "text": "def f():\n    return 1\n"}}}
{"jsonrpc": "2.0", "id": 2, "method": "textDocument/codeLens", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}}}
{"jsonrpc": "2.0", "id": 3, "method": "textDocument/codeLens", "params": {"textDocument": {"uri": "file://${WORK}/closed.py"}}}
{"jsonrpc": "2.0", "id": 4, "method": "textDocument/codeLens", "params": {"textDocument": {"uri": "untitled:Untitled-1"}}}
{"jsonrpc": "2.0", "id": 5, "method": "textDocument/codeLens", "params": {}}
<<<
{"id": 2, "jsonrpc": "2.0", "result": []}
<<<
{"id": 3, "jsonrpc": "2.0", "result": []}
<<<
{"id": 4, "jsonrpc": "2.0", "result": []}
<<<
{"error": {"code": -32602, "message": "missing field `textDocument`"}, "id": 5, "jsonrpc": "2.0"}
# A save that patched nothing (no process runs the file) changes no lens: no refresh is asked for.
>>>
{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}, "text": "def f():\n    return 2\n"}}
<<<
{"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"diagnostics": [], "uri": "file://${WORK}/app.py"}}
<<<
{"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "hotd: app.py saved; no attached process runs it", "type": 3}}
<<<
{"jsonrpc": "2.0", "method": "hotd/patched", "params": {"errors": [], "file": "${WORK}/app.py", "ok": true, "processes": [], "uri": "file://${WORK}/app.py"}}
>>>
{"jsonrpc": "2.0", "id": 6, "method": "textDocument/codeLens", "params": {"textDocument": {"uri": "file://${WORK}/app.py"}}}
{"jsonrpc": "2.0", "id": 7, "method": "shutdown"}
<<<
{"id": 6, "jsonrpc": "2.0", "result": []}
<<<
{"id": 7, "jsonrpc": "2.0", "result": null}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
