// How `hotd run` asked the daemon to watch its directories: which files, how soon, and how.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hotd::server {

inline constexpr double kMinPollSeconds = 0.1;

struct WatchOptions {
  int debounce_ms = 0;       // wait this long after the last change of a file before saving it
  double poll_seconds = 0;   // > 0: poll the loaded files' mtimes instead of inotify (network file systems)
  std::vector<std::string> include;  // globs; empty means every .py file
  std::vector<std::string> exclude;  // globs, applied after include

  // From the agent's registration (`watch_options`); absent fields keep their defaults.
  static WatchOptions from_json(const nlohmann::json& options);
  nlohmann::json to_json() const;

  // Whether a change of `path`, found under the watched directory `root`, should become a save. A
  // glob matches the path relative to `root` or the file name (`tests/*`, `*_pb2.py`).
  bool wants(const std::string& root, const std::string& path) const;
};

}  // namespace hotd::server
