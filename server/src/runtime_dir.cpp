#include "runtime_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hotd::server {

std::string runtime_dir_path() {
  if (const char* explicit_dir = std::getenv("HOTD_RUNTIME_DIR"); explicit_dir && *explicit_dir) return explicit_dir;
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/hotd";
  return "/tmp/hotd-" + std::to_string(geteuid());
}

std::optional<RuntimeDir> prepare_runtime_dir(std::string& error) {
  RuntimeDir dir{runtime_dir_path()};
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
