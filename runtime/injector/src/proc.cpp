#include "proc.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hotd::injector {

std::optional<std::vector<Mapping>> read_maps(pid_t pid) {
  std::string file = "/proc/" + std::to_string(pid) + "/maps";
  FILE* in = std::fopen(file.c_str(), "re");
  if (!in) return std::nullopt;
  std::vector<Mapping> maps;
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t length;
  while ((length = getline(&line, &capacity, in)) > 0) {
    Mapping m;
    char perms[8] = {};
    unsigned long long start, end, offset, inode;
    int path_at = 0;
    if (std::sscanf(line, "%llx-%llx %7s %llx %*x:%*x %llu %n", &start, &end, perms, &offset, &inode,
                    &path_at) < 5)
      continue;
    m.start = start;
    m.end = end;
    m.offset = offset;
    m.inode = inode;
    m.executable = perms[2] == 'x';
    std::string path(line + path_at, static_cast<size_t>(length - path_at));
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    constexpr std::string_view deleted_suffix = " (deleted)";
    if (path.size() > deleted_suffix.size() && path.ends_with(deleted_suffix)) {
      path.resize(path.size() - deleted_suffix.size());
      m.deleted = true;
    }
    m.path = std::move(path);
    maps.push_back(std::move(m));
  }
  bool read_error = std::ferror(in);
  int saved_errno = errno;
  std::free(line);
  std::fclose(in);
  // Reading maps of a process we may not inspect fails on the first read, not on open.
  if (read_error || maps.empty()) {
    errno = read_error ? saved_errno : EACCES;
    return std::nullopt;
  }
  return maps;
}

std::optional<ProcStatus> read_status(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  ProcStatus status;
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    any = true;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "Name:") {
      fields >> status.name;
    } else if (key == "State:") {
      fields >> status.state;
    } else if (key == "TracerPid:") {
      fields >> status.tracer;
    } else if (key == "Uid:") {
      fields >> status.real_uid >> status.effective_uid >> status.saved_uid;
    } else if (key == "Gid:") {
      fields >> status.real_gid >> status.effective_gid >> status.saved_gid;
    }
  }
  if (!any) {
    errno = ESRCH;
    return std::nullopt;
  }
  return status;
}

bool have_cap_sys_ptrace() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
      return caps & (1ULL << 19);  // CAP_SYS_PTRACE
    }
  }
  return false;
}

namespace {

int read_int_file(const char* path, int fallback) {
  std::ifstream in(path);
  int value;
  return (in >> value) ? value : fallback;
}

int own_seccomp_mode() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Seccomp:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

}  // namespace

std::string explain_ptrace_denied(pid_t pid) {
  std::string who = "process " + std::to_string(pid);
  auto status = read_status(pid);
  if (!status) return who + " cannot be inspected: " + std::strerror(errno);
  if (status->tracer != 0) {
    return who + " is already traced by pid " + std::to_string(status->tracer) +
           " (a debugger, strace or profiler); detach it first";
  }
  const bool privileged = have_cap_sys_ptrace();
  const uid_t me = geteuid();
  const bool setid = status->real_uid != status->effective_uid ||
                     status->effective_uid != status->saved_uid ||
                     status->real_gid != status->effective_gid ||
                     status->effective_gid != status->saved_gid;
  if (!privileged && setid) {
    return who + " runs with changed credentials (setuid/setgid: uids " +
           std::to_string(status->real_uid) + "/" + std::to_string(status->effective_uid) + "/" +
           std::to_string(status->saved_uid) +
           "); only root (CAP_SYS_PTRACE) may attach to it";
  }
  if (!privileged && status->real_uid != me) {
    return who + " runs as uid " + std::to_string(status->real_uid) + " and you are uid " +
           std::to_string(me) + ": run hotd as that user (sudo -u '#" +
           std::to_string(status->real_uid) + "' hotd attach " + std::to_string(pid) +
           ") or as root";
  }
  // The kernel gives the files in /proc/PID to root when the process is not dumpable.
  struct stat proc_file {};
  std::string file = "/proc/" + std::to_string(pid) + "/status";
  if (!privileged && stat(file.c_str(), &proc_file) == 0 && proc_file.st_uid == 0 &&
      status->effective_uid != 0) {
    return who + " is not dumpable (it called prctl(PR_SET_DUMPABLE, 0) or changed credentials); "
           "only root (CAP_SYS_PTRACE) may attach to it";
  }
  int scope = read_int_file("/proc/sys/kernel/yama/ptrace_scope", 0);
  if (scope == 1 && !privileged) {
    return "kernel.yama.ptrace_scope is 1, so only a parent process may ptrace " + who +
           ": run `sudo sysctl kernel.yama.ptrace_scope=0`, or give hotd CAP_SYS_PTRACE "
           "(sudo setcap cap_sys_ptrace+ep \"$(command -v hotd)\"), or start the program with "
           "`hotd run`";
  }
  if (scope == 2 && !privileged) {
    return "kernel.yama.ptrace_scope is 2 (admin only): attaching to " + who +
           " needs CAP_SYS_PTRACE (run hotd as root, or setcap cap_sys_ptrace+ep on it)";
  }
  if (scope == 3) {
    return "kernel.yama.ptrace_scope is 3: ptrace is disabled on this machine until reboot; "
           "start the program with `hotd run` instead";
  }
  if (own_seccomp_mode() == 2) {
    return "ptrace of " + who + " was refused and hotd runs under a seccomp filter (a container?): "
           "allow ptrace, e.g. docker run --cap-add=SYS_PTRACE";
  }
  if (me == 0 && !privileged) {
    return "ptrace of " + who + " was refused: you are root but without CAP_SYS_PTRACE "
           "(a container?): add it, e.g. docker run --cap-add=SYS_PTRACE";
  }
  return "ptrace of " + who + " was refused by the kernel (a security module such as AppArmor or "
         "SELinux may forbid it)";
}

std::string in_target_root(pid_t pid, const std::string& path) {
  return "/proc/" + std::to_string(pid) + "/root" + path;
}

bool other_mount_namespace(pid_t pid) {
  struct stat ours {}, theirs {};
  std::string target = "/proc/" + std::to_string(pid) + "/ns/mnt";
  if (stat("/proc/self/ns/mnt", &ours) != 0 || stat(target.c_str(), &theirs) != 0) return true;
  return ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev;
}

}  // namespace hotd::injector
