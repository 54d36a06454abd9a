#include "runtime_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>

namespace hotd::server {

std::string runtime_dir_path() {
  if (const char* explicit_dir = std::getenv("HOTD_RUNTIME_DIR"); explicit_dir && *explicit_dir) return explicit_dir;
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/hotd";
  return "/tmp/hotd-" + std::to_string(geteuid());
}

namespace {

bool trusted_owner(uid_t uid) { return uid == 0 || uid == geteuid(); }

std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (end > start) parts.emplace_back(path, start, end - start);
    start = end + 1;
  }
  return parts;
}

// Follows `path` one component at a time, as the kernel does, and checks that nobody but us and root
// can change where it leads: every symlink followed and every directory passed on the way belongs to
// one of us, and such a directory that others may write is sticky (nobody else can rename or replace
// what we keep in it). Returns the path without symlinks, "." or ".."; its last component (the runtime
// directory) may not exist yet, and is checked by the caller.
std::optional<std::string> resolve_trusted(const std::string& path, std::string& error) {
  std::deque<std::string> pending = components(path);
  if (path.empty() || path[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
      error = std::string("cannot resolve ") + path + ": " + std::strerror(errno);
      return std::nullopt;
    }
    const auto base = components(cwd);
    pending.insert(pending.begin(), base.begin(), base.end());
  }
  std::string resolved;  // "" is the root
  int links = 0;
  const auto passed = [&](const std::string& directory, const struct stat& info) -> bool {
    const std::string shown = directory.empty() ? "/" : directory;
    if (!trusted_owner(info.st_uid)) {
      error = "the runtime directory " + path + " is inside " + shown + ", which belongs to uid " +
              std::to_string(info.st_uid) + ": its owner could move the runtime directory away and put theirs there";
      return false;
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (info.st_mode & S_ISVTX) == 0) {
      error = "the runtime directory " + path + " is inside " + shown +
              ", which others may write and is not sticky: they could replace the runtime directory";
      return false;
    }
    return true;
  };
  struct stat info {};
  if (lstat("/", &info) != 0 || !passed("", info)) return std::nullopt;
  while (!pending.empty()) {
    const std::string part = pending.front();
    pending.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      resolved.erase(resolved.rfind('/') == std::string::npos ? 0 : resolved.rfind('/'));
      continue;
    }
    const std::string next = resolved + "/" + part;
    if (lstat(next.c_str(), &info) != 0) {
      if (errno == ENOENT && pending.empty()) return next;  // the runtime directory, to be created
      error = "cannot create the runtime directory " + path + ": " + next + ": " + std::strerror(errno) +
              " (set HOTD_RUNTIME_DIR to a writable place)";
      return std::nullopt;
    }
    if (S_ISLNK(info.st_mode)) {
      if (!trusted_owner(info.st_uid)) {
        error = "the runtime directory " + path + " goes through the symlink " + next + " of uid " +
                std::to_string(info.st_uid) + ", who could point it elsewhere: refusing it";
        return std::nullopt;
      }
      char target[PATH_MAX];
      const ssize_t size = readlink(next.c_str(), target, sizeof target - 1);
      if (size < 0 || ++links > 40) {
        error = "cannot resolve " + next + ": " + std::strerror(size < 0 ? errno : ELOOP);
        return std::nullopt;
      }
      const std::string link(target, static_cast<std::size_t>(size));
      if (link.starts_with('/')) resolved.clear();
      const auto parts = components(link);
      pending.insert(pending.begin(), parts.begin(), parts.end());
      continue;
    }
    if (!S_ISDIR(info.st_mode)) {
      error = next + " is not a directory (a file is in the way); remove it or set HOTD_RUNTIME_DIR";
      return std::nullopt;
    }
    if (!pending.empty() && !passed(next, info)) return std::nullopt;
    resolved = next;
  }
  return resolved.empty() ? "/" : resolved;
}

}  // namespace

std::optional<RuntimeDir> prepare_runtime_dir(std::string& error) {
  const auto resolved = resolve_trusted(runtime_dir_path(), error);
  if (!resolved) return std::nullopt;
  RuntimeDir dir{*resolved};
  if (mkdir(dir.path.c_str(), 0700) != 0 && errno != EEXIST) {
    error = "cannot create the runtime directory " + dir.path + ": " + std::strerror(errno) +
            " (set HOTD_RUNTIME_DIR to a writable place)";
    return std::nullopt;
  }
  struct stat info {};
  if (lstat(dir.path.c_str(), &info) != 0) {
    error = "cannot inspect " + dir.path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (!S_ISDIR(info.st_mode)) {
    error = dir.path + " is not a directory (a symlink or file is in the way); remove it or set HOTD_RUNTIME_DIR";
    return std::nullopt;
  }
  if (info.st_uid != geteuid()) {
    error = "the runtime directory " + dir.path + " belongs to uid " + std::to_string(info.st_uid) +
            ", not to you (uid " + std::to_string(geteuid()) +
            "): refusing to use it, since its owner could reach a daemon that runs code in your processes";
    return std::nullopt;
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    error = "the runtime directory " + dir.path + " is writable by group or others (mode " +
            std::to_string((info.st_mode >> 6) & 7) + std::to_string((info.st_mode >> 3) & 7) +
            std::to_string(info.st_mode & 7) + "): refusing to use it; run `chmod 700 " + dir.path + "`";
    return std::nullopt;
  }
  return dir;
}

std::optional<InstanceLock> InstanceLock::acquire(const RuntimeDir& dir, bool& held_by_another, std::string& error) {
  held_by_another = false;
  const int fd = open(dir.lock().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot open " + dir.lock() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    held_by_another = true;
    char buffer[32] = {};
    int holder_pid = 0;
    if (pread(fd, buffer, sizeof buffer - 1, 0) > 0) holder_pid = std::atoi(buffer);
    error = "another hotd daemon is running" + (holder_pid ? " (pid " + std::to_string(holder_pid) + ")" : std::string()) +
            " for " + dir.path;
    close(fd);
    return std::nullopt;
  }
  InstanceLock lock(fd);
  if (!lock.record_pid()) {
    error = "cannot write " + dir.lock() + ": " + std::strerror(errno) + " (disk full?)";
    return std::nullopt;
  }
  return lock;
}

bool InstanceLock::record_pid() const {
  const std::string pid = std::to_string(getpid()) + "\n";
  return ftruncate(fd_, 0) == 0 && pwrite(fd_, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size());
}

InstanceLock::~InstanceLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace hotd::server
