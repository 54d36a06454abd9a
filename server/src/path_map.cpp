#include "path_map.hpp"

namespace hotd::server {

namespace {

// "/app" matches "/app" and "/app/x.py", not "/apple.py"; a trailing slash on the prefix is ignored.
std::string_view trimmed(const std::string& prefix) {
  std::string_view view = prefix;
  while (view.size() > 1 && view.back() == '/') view.remove_suffix(1);
  return view;
}

bool under(const std::string& path, std::string_view prefix) {
  if (prefix == "/") return true;
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

std::string replace(const std::string& path, const std::vector<PathMap::Prefix>& prefixes,
                    std::string PathMap::Prefix::*from, std::string PathMap::Prefix::*to) {
  const PathMap::Prefix* best = nullptr;
  for (const auto& prefix : prefixes) {
    if (under(path, trimmed(prefix.*from)) && (!best || trimmed(prefix.*from).size() > trimmed(best->*from).size())) {
      best = &prefix;
    }
  }
  if (!best) return path;
  const std::string_view source = trimmed(best->*from);
  const std::string_view target = trimmed(best->*to);
  std::string rest = path.substr(source == "/" ? 0 : source.size());
  if (target == "/") return rest.empty() ? "/" : rest;
  return std::string(target) + rest;
}

}  // namespace

std::optional<PathMap::Prefix> PathMap::parse(const std::string& text, std::string& error) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    error = "a path mapping is REMOTE_PREFIX:LOCAL_PREFIX, got '" + text + "'";
    return std::nullopt;
  }
  Prefix prefix{text.substr(0, colon), text.substr(colon + 1)};
  if (!prefix.remote.starts_with('/') || !prefix.local.starts_with('/')) {
    error = "both prefixes of a path mapping must be absolute, got '" + text + "'";
    return std::nullopt;
  }
  return prefix;
}

void PathMap::add(Prefix prefix) { prefixes_.push_back(std::move(prefix)); }

std::string PathMap::to_local(const std::string& remote_path) const {
  return replace(remote_path, prefixes_, &Prefix::remote, &Prefix::local);
}

std::string PathMap::to_remote(const std::string& local_path) const {
  return replace(local_path, prefixes_, &Prefix::local, &Prefix::remote);
}

}  // namespace hotd::server
