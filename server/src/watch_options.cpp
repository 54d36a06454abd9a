#include "watch_options.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace hotd::server {

namespace {

bool matches_any(const std::vector<std::string>& globs, const std::string& relative, const std::string& name) {
  for (const std::string& glob : globs) {
    if (fnmatch(glob.c_str(), relative.c_str(), 0) == 0 || fnmatch(glob.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace

WatchOptions WatchOptions::from_json(const nlohmann::json& options) {
  WatchOptions result;
  if (!options.is_object()) return result;
  if (options.contains("debounce_ms") && options["debounce_ms"].is_number()) {
    result.debounce_ms = std::max(0, options["debounce_ms"].get<int>());
  }
  if (options.contains("poll_seconds") && options["poll_seconds"].is_number()) {
    // Polling stats every loaded file: more often than ten times a second only burns a core.
    const double seconds = options["poll_seconds"].get<double>();
    result.poll_seconds = seconds > 0 ? std::max(kMinPollSeconds, seconds) : 0.0;
  }
  for (const char* key : {"include", "exclude"}) {
    if (!options.contains(key) || !options[key].is_array()) continue;
    for (const auto& glob : options[key]) {
      if (glob.is_string()) (key[0] == 'i' ? result.include : result.exclude).push_back(glob.get<std::string>());
    }
  }
  return result;
}

nlohmann::json WatchOptions::to_json() const {
  return {{"debounce_ms", debounce_ms}, {"poll_seconds", poll_seconds}, {"include", include}, {"exclude", exclude}};
}

bool WatchOptions::wants(const std::string& root, const std::string& path) const {
  if (path.size() <= root.size() || path.compare(0, root.size(), root) != 0 || path[root.size()] != '/') return false;
  const std::string relative = path.substr(root.size() + 1);
  const std::string name = path.substr(path.rfind('/') + 1);
  if (!include.empty() && !matches_any(include, relative, name)) return false;
  return !matches_any(exclude, relative, name);
}

}  // namespace hotd::server
