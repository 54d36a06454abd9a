// What /proc says about a process: its mappings, its status line, and why we may not trace it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hotd::injector {

struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;
  bool executable = false;
  uint64_t inode = 0;
  std::string path;  // as the target sees it; "(deleted)" suffix removed, see `deleted`
  bool deleted = false;
};

// Parses /proc/PID/maps. On failure returns nullopt and sets errno.
std::optional<std::vector<Mapping>> read_maps(pid_t pid);

struct ProcStatus {
  std::string name;
  char state = '?';  // R, S, D, T (stopped), t (traced), Z, X
  pid_t tracer = 0;
  uid_t real_uid = 0, effective_uid = 0, saved_uid = 0;
  gid_t real_gid = 0, effective_gid = 0, saved_gid = 0;
};

// Parses /proc/PID/status (readable by everyone). On failure returns nullopt and sets errno.
std::optional<ProcStatus> read_status(pid_t pid);

// A message explaining why we (this process) may not ptrace `pid`, naming the rule that applies
// (other uid, Yama ptrace_scope, non-dumpable or setuid target, missing CAP_SYS_PTRACE, seccomp)
// and what to do about it.
std::string explain_ptrace_denied(pid_t pid);

// True if the calling process has CAP_SYS_PTRACE in its effective set.
bool have_cap_sys_ptrace();

// "/proc/PID/root" + path.
std::string in_target_root(pid_t pid, const std::string& path);

// True if the target's mount namespace differs from ours (or cannot be compared).
bool other_mount_namespace(pid_t pid);

}  // namespace hotd::injector
