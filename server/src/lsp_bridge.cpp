#include "lsp_bridge.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon_client.hpp"
#include "hotd/protocol/framing.hpp"
#include "source_commands.hpp"

namespace hotd::cli {

namespace {

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

// Watches both directions (without changing them), to end as LSP asks: exit status 0 only when the
// daemon accepted a `shutdown` request before `exit` came (not one it refused, not a notification),
// and to tell the editor's own framing error from the daemon going away.
class SessionWatcher {
 public:
  void from_editor(std::string_view bytes) {
    editor_.feed(bytes);
    while (auto body = editor_.next()) {
      const auto message = nlohmann::json::parse(*body, nullptr, false);
      if (!message.is_object() || !message.contains("method") || !message["method"].is_string()) continue;
      if (message["method"] == "shutdown" && message.contains("id")) shutdown_requests_.push_back(message["id"]);
      if (message["method"] == "exit") exit_ = true;
    }
  }
  void from_daemon(std::string_view bytes) {
    daemon_.feed(bytes);
    while (auto body = daemon_.next()) {
      if (shutdown_requests_.empty()) continue;
      const auto message = nlohmann::json::parse(*body, nullptr, false);
      if (!message.is_object() || message.contains("method") || !message.contains("id")) continue;
      const auto asked = std::find(shutdown_requests_.begin(), shutdown_requests_.end(), message["id"]);
      if (asked == shutdown_requests_.end()) continue;
      shutdown_requests_.erase(asked);
      if (message.contains("result")) shutdown_accepted_ = true;
    }
  }
  bool exit_sent() const { return exit_; }
  int status() const { return shutdown_accepted_ && exit_ ? kExitOk : kExitFailed; }
  // Why the editor's bytes stopped being LSP messages, or empty.
  const std::string& editor_framing_error() const { return editor_.error(); }

 private:
  protocol::FrameDecoder editor_;
  protocol::FrameDecoder daemon_;
  std::vector<nlohmann::json> shutdown_requests_;  // ids the daemon has not answered yet
  bool shutdown_accepted_ = false;
  bool exit_ = false;
};

}  // namespace

int run_lsp_bridge() {
  std::signal(SIGPIPE, SIG_IGN);
  std::string error;
  auto client = DaemonClient::connect(true, error);
  if (!client) {
    std::cerr << "hotd lsp: " << error << "\n";
    return kExitUsage;
  }
  const int daemon = connect_unix_socket(client->runtime_dir().socket());
  if (daemon < 0) {
    std::cerr << "hotd lsp: cannot connect to " << client->runtime_dir().socket() << ": " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  SessionWatcher watcher;
  bool editor_open = true;
  char buffer[65536];
  for (;;) {
    pollfd fds[2] = {{daemon, POLLIN, 0}, {editor_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::cerr << "hotd lsp: poll failed: " << std::strerror(errno) << "\n";
      return kExitFailed;
    }
    if (fds[0].revents) {
      const ssize_t received = ::recv(daemon, buffer, sizeof buffer, 0);
      if (received < 0 && errno == EINTR) continue;
      if (received <= 0) {
        if (watcher.exit_sent() || !editor_open) return watcher.status();
        if (!watcher.editor_framing_error().empty()) {
          std::cerr << "hotd lsp: the editor sent bytes that are not an LSP message ("
                    << watcher.editor_framing_error() << "), so the daemon ended the session\n";
          return kExitFailed;
        }
        std::cerr << "hotd lsp: the hotd daemon closed the connection (it was stopped or crashed; see "
                  << client->runtime_dir().log() << "); restart the language server to reconnect\n";
        return kExitFailed;
      }
      const std::string_view bytes(buffer, static_cast<std::size_t>(received));
      watcher.from_daemon(bytes);
      if (!write_all(STDOUT_FILENO, bytes)) {
        return kExitFailed;  // the editor is gone
      }
    }
    if (editor_open && fds[1].revents) {
      const ssize_t received = ::read(STDIN_FILENO, buffer, sizeof buffer);
      if (received < 0 && errno == EINTR) continue;
      if (received <= 0) {
        // The editor closed our stdin: let the daemon see the end, then finish its replies.
        editor_open = false;
        ::shutdown(daemon, SHUT_WR);
        continue;
      }
      const std::string_view bytes(buffer, static_cast<std::size_t>(received));
      watcher.from_editor(bytes);
      if (!write_all(daemon, bytes)) {
        std::cerr << "hotd lsp: lost the connection to the hotd daemon: " << std::strerror(errno)
                  << "; restart the language server to reconnect\n";
        return kExitFailed;
      }
    }
  }
}

}  // namespace hotd::cli
