// Paths of a process that runs somewhere else (a container, another machine) and the editor's paths
// of the same files: `REMOTE_PREFIX:LOCAL_PREFIX` pairs. The daemon keeps local paths everywhere and
// translates at the edge: module files and watched directories when an agent reports them, the file
// of each patch it sends. No I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace hotd::server {

class PathMap {
 public:
  struct Prefix {
    std::string remote;
    std::string local;
  };

  // Parses "REMOTE:LOCAL" (split at the first colon; both absolute). nullopt with `error` otherwise.
  static std::optional<Prefix> parse(const std::string& text, std::string& error);

  void add(Prefix prefix);
  bool empty() const { return prefixes_.empty(); }

  // The longest prefix that matches whole path components is replaced; other paths are unchanged.
  std::string to_local(const std::string& remote_path) const;
  std::string to_remote(const std::string& local_path) const;

 private:
  std::vector<Prefix> prefixes_;
};

}  // namespace hotd::server
