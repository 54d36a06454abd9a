// The command line's side of the daemon socket: connect (starting the daemon when none runs, as
// watchman does: connect, else spawn, retry with growing delays), send a request, wait for its reply.
// Plain blocking POSIX I/O: the command line does not need Asio.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "hotd/protocol/framing.hpp"
#include "runtime_dir.hpp"

namespace hotd::cli {

class DaemonClient {
 public:
  // With `autostart`, spawns `hotd serve` when no daemon answers. On failure returns nullopt and
  // sets `error` to what went wrong and what to do.
  static std::optional<DaemonClient> connect(bool autostart, std::string& error);

  DaemonClient(DaemonClient&& other) noexcept;
  DaemonClient& operator=(DaemonClient&&) = delete;
  ~DaemonClient();

  // Sends a request and waits for its reply's `result`; a JSON-RPC error becomes `error`.
  std::optional<nlohmann::json> request(const std::string& method, const nlohmann::json& params,
                                        std::chrono::milliseconds timeout, std::string& error);
  const server::RuntimeDir& runtime_dir() const { return dir_; }

 private:
  DaemonClient(int fd, server::RuntimeDir dir) : fd_(fd), dir_(std::move(dir)) {}
  int fd_;
  server::RuntimeDir dir_;
  protocol::FrameDecoder decoder_;
  int next_id_ = 1;
};

// Connects to the daemon socket at `path`; -1 when nobody listens.
int connect_unix_socket(const std::string& path);

// The path of this executable, for spawning the daemon and locating the runtime next to it.
std::string self_executable();

}  // namespace hotd::cli
