# `$/progress` around `hotd.attach` (LSP work-done progress). This editor does not create tokens
# (no `window.workDoneProgress`): progress only on a `workDoneToken` it passes.
>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
>>>
{"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [4194304], "workDoneToken": "attach-1"}}
<<<
{"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "attach-1", "value": {"kind": "begin", "message": "hotd attach 4194304", "title": "Attaching to pid 4194304"}}}
<<<
{"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "attach-1", "value": {"kind": "end", "message": "failed: hotd attach: no process with pid 4194304"}}}
<<<
{"error": {"code": -32803, "message": "hotd attach 4194304 failed: hotd attach: no process with pid 4194304"}, "id": 2, "jsonrpc": "2.0"}
# Without a token: no progress.
>>>
{"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [{"pid": 4194304}]}}
<<<
{"error": {"code": -32803, "message": "hotd attach 4194304 failed: hotd attach: no process with pid 4194304"}, "id": 3, "jsonrpc": "2.0"}
# An answer to a request hotd never sent is ignored (and logged).
>>>
{"jsonrpc": "2.0", "id": 99, "result": null}
{"jsonrpc": "2.0", "id": 4, "method": "shutdown"}
<<<
{"id": 4, "jsonrpc": "2.0", "result": null}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
