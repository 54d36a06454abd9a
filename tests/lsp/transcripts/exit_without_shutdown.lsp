# `exit` without `shutdown`: the server goes away and `hotd lsp` exits 1, as LSP specifies.
>>>
{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
<<<
{"id": 1, "jsonrpc": "2.0", "result": {"capabilities": {"codeActionProvider": {"codeActionKinds": ["quickfix"]}, "codeLensProvider": {"resolveProvider": false}, "executeCommandProvider": {"commands": ["hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"]}, "experimental": {"hotd": {"patchedNotification": "hotd/patched"}}, "positionEncoding": "utf-16", "textDocumentSync": {"change": 2, "openClose": true, "save": {"includeText": true}}}, "serverInfo": {"name": "hotd", "version": "0.1.0"}}}
>>>
{"jsonrpc": "2.0", "method": "exit"}
=== exit 1
