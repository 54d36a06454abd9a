// The per-user runtime directory: where the daemon's socket, lock, pid and log live.
// $HOTD_RUNTIME_DIR, else $XDG_RUNTIME_DIR/hotd, else /tmp/hotd-<uid>; created 0700 and refused when
// owned by someone else or writable by group or others, because whoever can write there can talk to
// a daemon that executes code in processes.
#pragma once

#include <optional>
#include <string>

namespace hotd::server {

struct RuntimeDir {
  std::string path;
  std::string socket() const { return path + "/daemon.sock"; }
  std::string lock() const { return path + "/daemon.lock"; }
  std::string log() const { return path + "/daemon.log"; }
};

// The directory's path from the environment, without touching the file system.
std::string runtime_dir_path();

// Creates the directory if needed and checks owner and mode. On failure returns nullopt and sets
// `error` to a message that says what is wrong and what to do.
std::optional<RuntimeDir> prepare_runtime_dir(std::string& error);

// Holds the single-instance lock (flock on daemon.lock) for the daemon's lifetime.
class InstanceLock {
 public:
  // Returns nullopt with `error` set when it cannot be taken; `held_by_another` then says whether another
  // daemon holds it (whose pid may not be written yet) rather than the file failing.
  static std::optional<InstanceLock> acquire(const RuntimeDir& dir, bool& held_by_another, std::string& error);
  // Writes the current pid into the lock file: called again by the daemon after it forked.
  bool record_pid() const;
  InstanceLock(InstanceLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  InstanceLock& operator=(InstanceLock&&) = delete;
  ~InstanceLock();

 private:
  explicit InstanceLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace hotd::server
