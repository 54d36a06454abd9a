# Requests before `initialize` are refused with ServerNotInitialized; notifications are dropped.
>>>
{"jsonrpc": "2.0", "id": 1, "method": "workspace/executeCommand", "params": {"command": "hotd.listProcesses"}}
{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "file:///x.py", "languageId": "python", "version": 1, "text": ""}}}
<<<
{"error": {"code": -32002, "message": "the server is not initialized: send `initialize` first"}, "id": 1, "jsonrpc": "2.0"}
# The capabilities every client relies on.
>>>
{"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"processId": null, "rootUri": null, "capabilities": {}}}
<<<
{"id": 2, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
>>>
{"jsonrpc": "2.0", "method": "initialized", "params": {}}
{"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"error": {"code": -32600, "message": "`initialize` may be sent only once"}, "id": 3, "jsonrpc": "2.0"}
# Unknown requests get MethodNotFound; unknown notifications (and `$/` ones) are ignored.
>>>
{"jsonrpc": "2.0", "id": "hover-1", "method": "textDocument/hover", "params": {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 0}}}
{"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {}}}
{"jsonrpc": "2.0", "method": "$/setTrace", "params": {"value": "off"}}
<<<
{"error": {"code": -32601, "message": "method not found: textDocument/hover"}, "id": "hover-1", "jsonrpc": "2.0"}
# Responses to requests hotd never sent are ignored.
>>>
{"jsonrpc": "2.0", "id": 99, "result": null}
{"jsonrpc": "2.0", "id": 4, "method": "shutdown"}
<<<
{"id": 4, "jsonrpc": "2.0", "result": null}
# After shutdown, requests are invalid; `exit` ends the session and `hotd lsp` exits 0.
>>>
{"jsonrpc": "2.0", "id": 5, "method": "workspace/executeCommand", "params": {"command": "hotd.listProcesses"}}
<<<
{"error": {"code": -32600, "message": "the server is shutting down"}, "id": 5, "jsonrpc": "2.0"}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 0
