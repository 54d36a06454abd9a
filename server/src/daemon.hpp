// The hotd daemon: one per user, serving editors, agents and the command line on one Unix socket.
// All Boost.Asio code lives in daemon.cpp, the one translation unit that includes it.
#pragma once

#include <string>
#include <vector>

#include "runtime_dir.hpp"

namespace hotd::server {

struct DaemonOptions {
  int patch_timeout_ms = 10000;  // how long a process may take to answer a patch
  std::vector<std::string> listen;           // "ADDR:PORT" endpoints for agents over TCP (`--listen`)
  std::vector<std::string> allowed_origins;  // browser origins allowed on the WebSocket (`--allow-origin`)
  // Connections at once on the Unix socket plus agents over TCP, and again on the web port (`--max-connections`).
  std::size_t max_connections = 1024;
};

// Runs until `hotd stop`, SIGTERM or SIGINT. `listen_fd` is a bound, listening Unix socket;
// the lock is held for the whole run. Returns the process exit status.
int run_daemon(const RuntimeDir& dir, InstanceLock lock, int listen_fd, const DaemonOptions& options);

}  // namespace hotd::server
