#include "lsp_bridge.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <string_view>

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

// Watches the editor's messages (without changing them) for `shutdown` and `exit`, to tell a
// normal end from the daemon going away.
class ExitWatcher {
 public:
  void feed(std::string_view bytes) {
    decoder_.feed(bytes);
    while (auto body = decoder_.next()) {
      const auto message = nlohmann::json::parse(*body, nullptr, false);
      if (!message.is_object() || !message.contains("method") || !message["method"].is_string()) continue;
      if (message["method"] == "shutdown") shutdown_ = true;
      if (message["method"] == "exit") exit_ = true;
    }
  }
  bool exit_sent() const { return exit_; }
  // LSP: exit status 0 when `shutdown` came before `exit`, 1 otherwise.
  int status() const { return shutdown_ && exit_ ? kExitOk : kExitFailed; }

 private:
  protocol::FrameDecoder decoder_;
  bool shutdown_ = false;
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
  ExitWatcher watcher;
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
        std::cerr << "hotd lsp: the hotd daemon closed the connection (it was stopped or crashed; see "
                  << client->runtime_dir().log() << "); restart the language server to reconnect\n";
        return kExitFailed;
      }
      if (!write_all(STDOUT_FILENO, std::string_view(buffer, static_cast<std::size_t>(received)))) {
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
      watcher.feed(bytes);
      if (!write_all(daemon, bytes)) {
        std::cerr << "hotd lsp: lost the connection to the hotd daemon: " << std::strerror(errno)
                  << "; restart the language server to reconnect\n";
        return kExitFailed;
      }
    }
  }
}

}  // namespace hotd::cli
