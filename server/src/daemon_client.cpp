#include "daemon_client.hpp"

#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace hotd::cli {

using nlohmann::json;

int connect_unix_socket(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) return -1;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string self_executable() {
  char buffer[4096];
  const ssize_t length = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  return length > 0 ? std::string(buffer, static_cast<std::size_t>(length)) : std::string("hotd");
}

namespace {

// Runs `hotd serve`, which returns once the daemon listens (or says why it cannot).
bool spawn_daemon(std::string& error) {
  const std::string executable = self_executable();
  char* argv[] = {const_cast<char*>(executable.c_str()), const_cast<char*>("serve"), const_cast<char*>("--quiet"), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv, environ) != 0) {
    error = "cannot start the daemon (" + executable + " serve): " + std::strerror(errno);
    return false;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Exit status 3: another daemon won the race to start, which is as good as ours.
  if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) return true;
  error = "the daemon did not start (see the messages above)";
  return false;
}

}  // namespace

std::optional<DaemonClient> DaemonClient::connect(bool autostart, std::string& error) {
  auto dir = server::prepare_runtime_dir(error);
  if (!dir) return std::nullopt;
  int fd = connect_unix_socket(dir->socket());
  if (fd >= 0) return DaemonClient(fd, *dir);
  if (!autostart) {
    error = "no hotd daemon is running (socket " + dir->socket() + ")";
    return std::nullopt;
  }
  // Twice: the start is lost to a daemon that holds the lock while it exits (stopped a moment ago).
  for (int start = 0; start < 2; ++start) {
    if (!spawn_daemon(error)) return std::nullopt;
    auto delay = std::chrono::milliseconds(5);
    for (int attempt = 0; attempt < 10; ++attempt) {
      fd = connect_unix_socket(dir->socket());
      if (fd >= 0) return DaemonClient(fd, *dir);
      std::this_thread::sleep_for(delay);
      delay *= 2;
    }
  }
  error = "the daemon was started but does not accept connections on " + dir->socket() + "; see " + dir->log();
  return std::nullopt;
}

DaemonClient::DaemonClient(DaemonClient&& other) noexcept
    : fd_(other.fd_), dir_(std::move(other.dir_)), decoder_(std::move(other.decoder_)), next_id_(other.next_id_) {
  other.fd_ = -1;
}

DaemonClient::~DaemonClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<json> DaemonClient::request(const std::string& method, const json& params,
                                          std::chrono::milliseconds timeout, std::string& error) {
  const int id = next_id_++;
  const std::string framed = protocol::frame_message(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump());
  // A daemon that refused the connection (over its limit) said why before closing: when sending
  // fails, what it said is still read below and reported instead of the broken pipe.
  std::string send_failure;
  for (std::size_t sent = 0; sent < framed.size();) {
    const ssize_t written = ::send(fd_, framed.data() + sent, framed.size() - sent, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      send_failure = std::string("lost the connection to the daemon: ") + std::strerror(errno);
      break;
    }
    sent += static_cast<std::size_t>(written);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    while (auto body = decoder_.next()) {
      json reply = json::parse(*body, nullptr, false);
      if (reply.is_discarded()) continue;
      // An error without an id is about the connection itself (e.g. refused over the limit).
      const json reply_id = reply.value("id", json());
      if (reply_id != json(id) && !(reply_id.is_null() && reply.contains("error"))) continue;
      if (reply.contains("error")) {
        error = reply["error"].value("message", "the daemon reported an error");
        return std::nullopt;
      }
      return reply.value("result", json());
    }
    if (decoder_.failed()) {
      error = "malformed reply from the daemon: " + decoder_.error();
      return std::nullopt;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error = "the daemon did not answer " + method + " within " + std::to_string(timeout.count() / 1000.0).substr(0, 4) + " s";
      return std::nullopt;
    }
    pollfd ready{fd_, POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      error = std::string("poll failed: ") + std::strerror(errno);
      return std::nullopt;
    }
    if (!(ready.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buffer[65536];
    const ssize_t received = ::recv(fd_, buffer, sizeof buffer, 0);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) {
      error = send_failure.empty() ? "the daemon closed the connection before answering " + method : send_failure;
      return std::nullopt;
    }
    decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(received)));
  }
}

}  // namespace hotd::cli
