// `hotd lsp`: the language server as a command, for editors that launch one and talk over stdio.
// It connects to the daemon (starting it when none runs) and copies bytes both ways; the daemon's
// LspSession does all of LSP. When the daemon goes away it says so on stderr and exits 1, so the
// editor can restart it. Plain POSIX (poll): no Asio.
#pragma once

namespace hotd::cli {

int run_lsp_bridge();

}  // namespace hotd::cli
