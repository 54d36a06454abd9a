// The daemon's TCP side (Boost.Beast, confined to web_server.cpp): `GET /status`, editors speaking
// JSON-RPC over WebSocket (`/lsp`), and agents of processes in other places (`/agent`: an HTTP
// upgrade, then the same LSP base framing as on the Unix socket). Every request needs the token;
// requests from a browser Origin that is not allowed are refused. Sessions live in the daemon, which
// this file reaches only through WebHost.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lsp_session.hpp"

namespace boost::asio {
class io_context;
}

namespace hotd::server {

// What the web server needs from the daemon. Called on the daemon's thread.
class WebHost {
 public:
  virtual ~WebHost() = default;
  // As `hotd status --json` prints it.
  virtual nlohmann::json status() = 0;
  // An editor session that receives every save's results until close_editor.
  virtual std::shared_ptr<LspSession> open_editor(LspSession::Send send, LspSession::Close close,
                                                  const std::string& who) = 0;
  virtual void close_editor(const std::shared_ptr<LspSession>& session) = 0;
  // A TCP stream upgraded to the agent protocol: its descriptor (now the daemon's), the bytes already
  // read past the upgrade request, and the peer's address for logs and `hotd ps`.
  virtual void adopt_agent(int fd, const std::string& buffered, const std::string& peer) = 0;
  virtual void log(const std::string& line) = 0;
};

struct WebOptions {
  // Editors, status and agents on a loopback port chosen by the system; agents only on each
  // `hotd serve --listen` endpoint ("ADDR:PORT").
  std::string address = "127.0.0.1";
  std::vector<std::string> agent_listen;
  // Origins allowed besides `vscode-webview://` and `vscode-file://` ones: exact `scheme://host[:port]`.
  std::vector<std::string> allowed_origins;
  std::string info_path;  // web.json: the ports and the token, mode 0600
  // HTTP requests and WebSockets open at once, over all ports; a connection over it is closed at once.
  std::size_t max_connections = 1024;
};

class WebServer {
 public:
  // Binds every endpoint, makes a token and writes `info_path`. nullptr with `error` on failure.
  static std::unique_ptr<WebServer> start(boost::asio::io_context& io, WebHost& host, const WebOptions& options,
                                          std::string& error);
  ~WebServer();
  // Stops accepting and closes every WebSocket (agent streams belong to the daemon).
  void stop();

  struct Impl;

 private:
  explicit WebServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Splits "ADDR:PORT", "[v6]:PORT" or "PORT" (then ADDR is 127.0.0.1). False with `error` otherwise.
bool parse_endpoint(const std::string& text, std::string& address, unsigned short& port, std::string& error);
bool is_loopback_address(const std::string& address);

}  // namespace hotd::server
