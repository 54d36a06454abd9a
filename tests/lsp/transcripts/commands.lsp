>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
>>>
{"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {"command": "hotd.listProcesses"}}
{"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand", "params": {"command": "hotd.detach", "arguments": [4194304]}}
{"jsonrpc": "2.0", "id": 4, "method": "workspace/executeCommand", "params": {"command": "hotd.detach", "arguments": ["1"]}}
{"jsonrpc": "2.0", "id": 5, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [-3]}}
{"jsonrpc": "2.0", "id": 6, "method": "workspace/executeCommand", "params": {"command": "hotd.attach"}}
{"jsonrpc": "2.0", "id": 7, "method": "workspace/executeCommand", "params": {"command": "hotd.patchFile", "arguments": ["untitled:Untitled-1"]}}
{"jsonrpc": "2.0", "id": 8, "method": "workspace/executeCommand", "params": {"command": "hotd.patchFile", "arguments": ["file://${WORK}/missing.py"]}}
{"jsonrpc": "2.0", "id": 9, "method": "workspace/executeCommand", "params": {"command": "hotd.restart"}}
{"jsonrpc": "2.0", "id": 10, "method": "workspace/executeCommand", "params": {"arguments": []}}
{"jsonrpc": "2.0", "id": 11, "method": "workspace/executeCommand", "params": "hotd.listProcesses"}
<<<
{"id": 2, "jsonrpc": "2.0", "result": {"processes": []}}
<<<
{"error": {"code": -32803, "message": "no attached process with pid 4194304"}, "id": 3, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "pid must be a positive integer"}, "id": 4, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "pid must be a positive integer"}, "id": 5, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "expected arguments [pid]"}, "id": 6, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "not a local file URI: untitled:Untitled-1"}, "id": 7, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32803, "message": "cannot read ${WORK}/missing.py"}, "id": 8, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "unknown command: hotd.restart"}, "id": 9, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "missing field `command`"}, "id": 10, "jsonrpc": "2.0"}
<<<
{"error": {"code": -32602, "message": "`params` must be an object or an array"}, "id": 11, "jsonrpc": "2.0"}
# A request cancelled before its answer gets RequestCancelled, and nothing else for that id: the
# attach runs `hotd attach`, whose late result is dropped.
>>>
{"jsonrpc": "2.0", "id": 12, "method": "workspace/executeCommand", "params": {"command": "hotd.attach", "arguments": [4194304]}}
{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 12}}
<<<
{"error": {"code": -32800, "message": "cancelled"}, "id": 12, "jsonrpc": "2.0"}
# Cancelling what was already answered, or never asked, changes nothing.
>>>
{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 2}}
{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "never"}}
{"jsonrpc": "2.0", "id": 13, "method": "shutdown"}
<<<
{"id": 13, "jsonrpc": "2.0", "result": null}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
