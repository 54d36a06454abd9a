// Watches directory trees for saved .py files with inotify, for editors without hotd integration.
// A save is a completed write (IN_CLOSE_WRITE: so a truncate-then-write save never shows an empty
// version) or a file renamed into place (IN_MOVED_TO: editors that write a temporary file in the
// same directory and rename it over the original). No I/O loop here: the daemon polls fd().
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace hotd::server {

class DirectoryWatcher {
 public:
  DirectoryWatcher();
  ~DirectoryWatcher();
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  int fd() const { return fd_; }
  // Watches `root` recursively on behalf of `owner` (an agent); returns the number of directories
  // now watched under it, or -1 with `error` set. A tree past the limits is watched in part, with
  // `error` saying so.
  int watch(std::uint64_t owner, const std::string& root, std::string& error);
  void unwatch(std::uint64_t owner);
  // Reads pending events; returns the .py files saved since the last call (deduplicated, in order).
  std::vector<std::string> read_saves();
  std::size_t directory_count() const { return directories_.size(); }

 private:
  int add_tree(const std::string& root, std::string& warning);
  void add_directory(const std::string& path);

  int fd_ = -1;
  std::map<int, std::string> directories_;       // watch descriptor -> directory
  std::map<std::string, std::set<std::uint64_t>> roots_;  // root -> owners
};

// Directories never worth watching: hidden ones, caches, virtual environments, dependencies.
bool is_ignored_directory(const std::string& name, const std::string& path);

}  // namespace hotd::server
