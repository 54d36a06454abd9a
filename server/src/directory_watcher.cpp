#include "directory_watcher.hpp"

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hotd::server {

namespace {
constexpr std::uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR;
constexpr std::size_t kMaxDirectories = 20000;  // a runaway tree (a whole home directory) stops here
// One root's walk runs on the daemon's loop: a process asking for "/" must not stall it for seconds.
constexpr int kMaxDirectoriesPerRoot = 4096;
}  // namespace

bool is_ignored_directory(const std::string& name, const std::string& path) {
  if (name.empty() || name[0] == '.' || name == "__pycache__" || name == "node_modules" || name == "site-packages" ||
      name == "dist-packages") {
    return true;
  }
  struct stat info {};
  return stat((path + "/pyvenv.cfg").c_str(), &info) == 0;  // a virtual environment
}

DirectoryWatcher::DirectoryWatcher() : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}

DirectoryWatcher::~DirectoryWatcher() {
  if (fd_ >= 0) close(fd_);
}

void DirectoryWatcher::add_directory(const std::string& path) {
  if (directories_.size() >= kMaxDirectories) return;
  const int wd = inotify_add_watch(fd_, path.c_str(), kEvents & ~IN_ONLYDIR);
  if (wd >= 0) directories_[wd] = path;
}

int DirectoryWatcher::add_tree(const std::string& root, std::string& warning) {
  int added = 0;
  std::vector<std::string> stack{root};
  while (!stack.empty()) {
    if (directories_.size() >= kMaxDirectories || added >= kMaxDirectoriesPerRoot) {
      warning = "watching only the first " + std::to_string(added) + " directories under " + root +
                ": watch a narrower directory (hotd run --watch) or poll (--poll)";
      break;
    }
    const std::string directory = stack.back();
    stack.pop_back();
    add_directory(directory);
    ++added;
    DIR* listing = opendir(directory.c_str());
    if (!listing) continue;
    while (const dirent* entry = readdir(listing)) {
      const std::string name = entry->d_name;
      if (name == "." || name == ".." || entry->d_type != DT_DIR) continue;
      const std::string child = directory + "/" + name;
      if (!is_ignored_directory(name, child)) stack.push_back(child);
    }
    closedir(listing);
  }
  return added;
}

int DirectoryWatcher::watch(std::uint64_t owner, const std::string& root, std::string& error) {
  if (fd_ < 0) {
    error = std::string("inotify is not available: ") + std::strerror(errno);
    return -1;
  }
  struct stat info {};
  if (stat(root.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    error = "cannot watch " + root + ": not a directory";
    return -1;
  }
  auto& owners = roots_[root];
  const bool first = owners.empty();
  owners.insert(owner);
  if (!first) return 0;
  return add_tree(root, error);
}

void DirectoryWatcher::unwatch(std::uint64_t owner) {
  for (auto it = roots_.begin(); it != roots_.end();) {
    it->second.erase(owner);
    it = it->second.empty() ? roots_.erase(it) : std::next(it);
  }
  // Drop watches no remaining root covers.
  for (auto it = directories_.begin(); it != directories_.end();) {
    bool covered = false;
    for (const auto& [root, owners] : roots_) {
      if (it->second == root || it->second.starts_with(root + "/")) covered = true;
    }
    if (covered) {
      ++it;
    } else {
      inotify_rm_watch(fd_, it->first);
      it = directories_.erase(it);
    }
  }
}

std::vector<std::string> DirectoryWatcher::read_saves() {
  std::vector<std::string> saves;
  alignas(inotify_event) char buffer[64 * 1024];
  for (;;) {
    const ssize_t length = read(fd_, buffer, sizeof buffer);
    if (length <= 0) break;
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      const auto directory = directories_.find(event->wd);
      if (directory == directories_.end() || event->len == 0) continue;
      const std::string name = event->name;
      const std::string path = directory->second + "/" + name;
      if (event->mask & IN_ISDIR) {
        std::string ignored;  // a new directory past the limits stays unwatched; its root said so already
        if ((event->mask & (IN_CREATE | IN_MOVED_TO)) && !is_ignored_directory(name, path)) add_tree(path, ignored);
        continue;
      }
      if (!(event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) || !name.ends_with(".py")) continue;
      bool seen = false;
      for (const auto& existing : saves) seen |= existing == path;
      if (!seen) saves.push_back(path);
    }
  }
  return saves;
}

}  // namespace hotd::server
