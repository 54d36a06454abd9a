# An editor with `window.workDoneProgress`: hotd asks it for a token with
# `window/workDoneProgress/create`, and the attach starts once the editor answered.
>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {"window": {"workDoneProgress": true}}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
>>>
{"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [4194304]}}
<<<
{"id": 1, "jsonrpc": "2.0", "method": "window/workDoneProgress/create", "params": {"token": "hotd-attach-1"}}
>>>
{"jsonrpc": "2.0", "id": 1, "result": null}
<<<
{"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "hotd-attach-1", "value": {"kind": "begin", "message": "hotd attach 4194304", "title": "Attaching to pid 4194304"}}}
<<<
{"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "hotd-attach-1", "value": {"kind": "end", "message": "failed: hotd attach: no process with pid 4194304"}}}
<<<
{"error": {"code": -32803, "message": "hotd attach 4194304 failed: hotd attach: no process with pid 4194304"}, "id": 2, "jsonrpc": "2.0"}
# The editor refuses the token: the attach runs without progress.
>>>
{"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [4194304]}}
<<<
{"id": 2, "jsonrpc": "2.0", "method": "window/workDoneProgress/create", "params": {"token": "hotd-attach-2"}}
>>>
{"jsonrpc": "2.0", "id": 2, "error": {"code": -32603, "message": "no progress here"}}
<<<
{"error": {"code": -32803, "message": "hotd attach 4194304 failed: hotd attach: no process with pid 4194304"}, "id": 3, "jsonrpc": "2.0"}
# A token in the params is used as it is: nothing is created.
>>>
{"jsonrpc": "2.0", "id": 4, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [4194304], "workDoneToken": 7}}
<<<
{"jsonrpc": "2.0", "method": "$/progress", "params": {"token": 7, "value": {"kind": "begin", "message": "hotd attach 4194304", "title": "Attaching to pid 4194304"}}}
<<<
{"jsonrpc": "2.0", "method": "$/progress", "params": {"token": 7, "value": {"kind": "end", "message": "failed: hotd attach: no process with pid 4194304"}}}
<<<
{"error": {"code": -32803, "message": "hotd attach 4194304 failed: hotd attach: no process with pid 4194304"}, "id": 4, "jsonrpc": "2.0"}
# Cancelled before the editor answered: the attach never starts, and no progress is sent.
>>>
{"jsonrpc": "2.0", "id": 5, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [4194304]}}
<<<
{"id": 3, "jsonrpc": "2.0", "method": "window/workDoneProgress/create", "params": {"token": "hotd-attach-3"}}
>>>
{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 5}}
<<<
{"error": {"code": -32800, "message": "cancelled"}, "id": 5, "jsonrpc": "2.0"}
>>>
{"jsonrpc": "2.0", "id": 3, "result": null}
{"jsonrpc": "2.0", "id": 6, "method": "shutdown"}
<<<
{"id": 6, "jsonrpc": "2.0", "result": null}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
