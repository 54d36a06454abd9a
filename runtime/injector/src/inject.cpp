// inject: borrow the main thread at a safe point, make it call dlopen/dlsym/function, give it back.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "arch.hpp"
#include "hotd/injector/injector.hpp"
#include "proc.hpp"
#include "target_modules.hpp"
#include "tracee.hpp"

namespace hotd::injector {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxArgument = 64 * 1024;
constexpr size_t kMaxFunctionName = 255;
constexpr uint64_t kRtldNow = 2;
constexpr uint64_t kRtldDlopenInternal = 0x80000000;  // glibc's __RTLD_DLOPEN for __libc_dlopen_mode

std::string pid_text(pid_t pid) { return "process " + std::to_string(pid); }

Error errno_error(InjectError code, const std::string& what, int error) {
  return Error{code, what + ": " + std::strerror(error)};
}

// ---- Staging: make the library visible to a target in another mount namespace. ----

bool mounted_noexec(pid_t pid, const std::string& dir) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/mountinfo");
  std::string line, best_mount, best_options;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, options;
    fields >> id >> parent >> device >> root >> mount_point >> options;
    bool covers = mount_point == "/" || dir == mount_point || dir.rfind(mount_point + "/", 0) == 0;
    if (covers && mount_point.size() >= best_mount.size()) {
      best_mount = mount_point;
      best_options = options;
    }
  }
  std::istringstream options(best_options);
  std::string option;
  while (std::getline(options, option, ',')) {
    if (option == "noexec") return true;
  }
  return false;
}

bool read_whole_file(const std::string& path, std::string& content) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  content = buffer.str();
  return !in.bad();
}

// The name depends only on the content: injecting the same library again reuses the name, and glibc's
// dlopen finds the already-loaded object by name (no second copy, no second constructor run).
std::string staged_name(const std::string& content, const std::string& ours) {
  uint64_t hash = 14695981039346656037ULL;  // FNV-1a
  for (unsigned char c : content) hash = (hash ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::string("hotd-") + hex + "-" + basename_of(ours);
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Returns the path the target must dlopen; sets `copy_to_remove` (our path to the copy) if staged.
// The copy is written under a temporary name and renamed in a directory open_staging_dir trusts: in a
// sticky directory nobody else can replace it between our rename and the target's dlopen.
Result<std::string> stage_library(pid_t pid, const TargetInfo& info, const std::string& ours,
                                  const InjectOptions& options, std::string& copy_to_remove) {
  if (!info.other_mount_namespace) return ours;
  struct stat mine {}, theirs {};
  if (stat(ours.c_str(), &mine) == 0 && stat(in_target_root(pid, ours).c_str(), &theirs) == 0 &&
      mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino) {
    return ours;  // another namespace, but the same file at the same path
  }
  std::string content;
  if (!read_whole_file(ours, content)) return errno_error(InjectError::LibraryNotFound, "cannot read " + ours, errno);
  std::string name = staged_name(content, ours);
  std::string tried;
  for (const std::string& dir : options.staging_dirs) {
    std::string host_dir = in_target_root(pid, dir);
    struct stat st {};
    if (stat(host_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (mounted_noexec(pid, dir)) {
      tried += " " + dir + " (noexec)";
      continue;
    }
    auto trusted = open_staging_dir(pid, info.uid, dir);
    if (!trusted) {
      tried += " " + dir + " (" + trusted.error().message + ")";
      continue;
    }
    const int dir_fd = *trusted;
    std::string temporary = name + ".tmp" + std::to_string(getpid());
    int fd = ::openat(dir_fd, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      tried += " " + dir + " (" + std::strerror(errno) + ")";
      ::close(dir_fd);
      continue;
    }
    bool written = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
                   fchmod(fd, 0644) == 0;
    written = (::close(fd) == 0) && written;
    if (!written || renameat(dir_fd, temporary.c_str(), dir_fd, name.c_str()) != 0) {
      tried += " " + dir + " (" + std::strerror(errno) + ")";
      unlinkat(dir_fd, temporary.c_str(), 0);
      ::close(dir_fd);
      continue;
    }
    ::close(dir_fd);
    copy_to_remove = host_dir + "/" + name;
    return dir + "/" + name;
  }
  return Error{InjectError::StagingFailed,
               pid_text(pid) + " is in another mount namespace and cannot see " + ours +
                   "; copying it into the target's filesystem failed:" + (tried.empty() ? " no staging directory exists" : tried)};
}

}  // namespace

Result<int> open_staging_dir(pid_t pid, uid_t target_uid, const std::string& dir) {
  if (dir.empty() || dir[0] != '/') return Error{InjectError::InvalidArgument, "not an absolute path: " + dir};
  const auto untrusted = [&](const std::string& shown, const struct stat& st) -> std::optional<Error> {
    if (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != target_uid) {
      return Error{InjectError::StagingFailed, shown + " belongs to uid " + std::to_string(st.st_uid)};
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
      return Error{InjectError::StagingFailed, shown + " is writable by others and not sticky (mode " +
                                                   mode_text(st.st_mode) + ")"};
    }
    return std::nullopt;
  };
  const std::string root = in_target_root(pid, "");
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(InjectError::StagingFailed, "cannot open " + root, errno);
  std::string reached;
  std::istringstream parts(dir);
  for (std::string part; ; ) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int error = errno;
      ::close(fd);
      return errno_error(InjectError::StagingFailed, "cannot inspect " + (reached.empty() ? "/" : reached), error);
    }
    if (auto bad = untrusted(reached.empty() ? "/" : reached, st)) {
      ::close(fd);
      return *bad;
    }
    do {
      if (!std::getline(parts, part, '/')) return fd;
    } while (part.empty() || part == ".");
    reached += "/" + part;
    if (part == "..") {
      ::close(fd);
      return Error{InjectError::InvalidArgument, "a staging directory may not contain ..: " + dir};
    }
    const int next = ::openat(fd, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int error = errno;
    ::close(fd);
    if (next < 0) {
      const bool not_directory = error == ENOTDIR || error == ELOOP;
      return errno_error(InjectError::StagingFailed, reached + (not_directory ? " is a symlink or not a directory" : ""),
                         error);
    }
    fd = next;
  }
}

namespace {

// ---- Safe points. ----

std::string syscall_name(long nr) {
  struct Named { long nr; const char* name; };
  static const Named names[] = {
      {SYS_read, "read"}, {SYS_write, "write"}, {SYS_futex, "futex"}, {SYS_clock_nanosleep, "clock_nanosleep"},
      {SYS_nanosleep, "nanosleep"}, {SYS_pselect6, "pselect6"}, {SYS_ppoll, "ppoll"}, {SYS_epoll_pwait, "epoll_pwait"},
      {SYS_accept, "accept"}, {SYS_accept4, "accept4"}, {SYS_recvfrom, "recvfrom"}, {SYS_wait4, "wait4"},
      {SYS_brk, "brk"}, {SYS_mmap, "mmap"}, {SYS_munmap, "munmap"}, {SYS_mremap, "mremap"},
      {SYS_mprotect, "mprotect"}, {SYS_madvise, "madvise"}, {SYS_openat, "openat"}, {SYS_connect, "connect"},
#ifdef SYS_select
      {SYS_select, "select"}, {SYS_poll, "poll"}, {SYS_epoll_wait, "epoll_wait"}, {SYS_pause, "pause"},
#endif
  };
  for (const Named& n : names) {
    if (n.nr == nr) return n.name;
  }
  return "#" + std::to_string(nr);
}

// Memory management calls are made from inside malloc with an arena lock held.
bool is_memory_syscall(long nr) {
  return nr == SYS_brk || nr == SYS_mmap || nr == SYS_munmap || nr == SYS_mremap || nr == SYS_mprotect ||
         nr == SYS_madvise;
}

struct ThreadState {
  bool safe = false;
  std::string description;  // "blocked in the read system call", "running code inside libc.so.6 (memset)"
};

ThreadState classify(const arch::Registers& regs, const std::vector<UnsafeRange>& unsafe, const LoadedModule& libc) {
  long nr = arch::current_syscall(regs);
  uint64_t pc = arch::instruction_pointer(regs);
  const UnsafeRange* inside = nullptr;
  for (const UnsafeRange& range : unsafe) {
    if (pc >= range.start && pc < range.end) inside = &range;
  }
  if (nr >= 0) {
    std::string call = "in the " + syscall_name(nr) + " system call";
    if (is_memory_syscall(nr)) return {false, call + " (memory management, possibly inside malloc)"};
    if (inside && inside->name.rfind("ld-", 0) == 0) return {false, call + " inside the dynamic loader " + inside->name};
    return {true, "blocked " + call};
  }
  if (!inside) return {true, "running program code"};
  std::string where = "running code inside " + inside->name;
  if (inside->name.rfind("libc", 0) == 0 && pc >= libc.bias) {
    if (auto symbol = libc.elf->symbol_containing(pc - libc.bias)) where += " (" + *symbol + ")";
  }
  return {false, where};
}

// ---- The hijacked calls. ----

struct CallOutcome {
  enum Kind { Returned, Died, Crashed, Failed } kind;
  uint64_t value = 0;
  std::string what;
};

std::string describe_address(pid_t pid, uint64_t address) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(address));
  if (auto maps = read_maps(pid)) {
    for (const Mapping& m : *maps) {
      if (address >= m.start && address < m.end && !m.path.empty()) return std::string(hex) + " in " + basename_of(m.path);
    }
  }
  return hex;
}

bool is_fault(const siginfo_t& info) {
  int s = info.si_signo;
  return (s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE || s == SIGTRAP || s == SIGSYS) && info.si_code > 0;
}

class Hijack {
 public:
  Hijack(Tracee& tracee, const arch::Registers& saved, uint64_t frame_top)
      : tracee_(tracee), saved_(saved), frame_top_(frame_top) {}

  CallOutcome call(uint64_t function, std::initializer_list<uint64_t> args) {
    arch::Registers regs = saved_;
    std::optional<uint64_t> return_slot = arch::setup_call(regs, function, std::span(args.begin(), args.size()), frame_top_);
    const uint64_t zero = 0;
    if (return_slot && !tracee_.write_memory(*return_slot, &zero, sizeof zero)) {
      return {CallOutcome::Failed, 0, std::string("writing the call frame: ") + std::strerror(errno)};
    }
    if (!arch::set_registers(tracee_.tid(), regs)) return {CallOutcome::Failed, 0, std::string("setting registers: ") + std::strerror(errno)};
    modified_ = true;
    if (int error = tracee_.resume(0)) return {CallOutcome::Failed, 0, std::string("resuming: ") + std::strerror(error)};
    for (;;) {
      Tracee::Stop stop = tracee_.wait();
      switch (stop.kind) {
        case Tracee::Stop::Exited:
          return {CallOutcome::Died, 0, {}};
        case Tracee::Stop::Failed:
          return {CallOutcome::Failed, 0, std::string("waitpid: ") + std::strerror(stop.status)};
        case Tracee::Stop::Interrupted:
        case Tracee::Stop::GroupStop:
          // A job-control stop of the process while we hold its thread: finish our call first; the
          // kernel stops the thread again after we detach if the stop is still in effect.
          tracee_.resume(0);
          continue;
        case Tracee::Stop::Signal:
          break;
      }
      arch::Registers now{};
      if (!arch::get_registers(tracee_.tid(), now)) return {CallOutcome::Failed, 0, std::string("reading registers: ") + std::strerror(errno)};
      if (stop.signal == SIGSEGV && arch::instruction_pointer(now) == 0) return {CallOutcome::Returned, arch::return_value(now), {}};
      if (is_fault(stop.info)) {
        // An abort() of the injected code itself is part of the crash we contain, not a signal for
        // the target to receive later.
        std::erase_if(pending_, [&](const siginfo_t& info) {
          return info.si_signo == SIGABRT && info.si_pid == tracee_.tid();
        });
        return {CallOutcome::Crashed, 0,
                std::string(strsignal(stop.signal)) + " at " + describe_address(tracee_.tid(), arch::instruction_pointer(now))};
      }
      // Asynchronous signal for the target: hold it back and re-deliver it after the restore.
      pending_.push_back(stop.info);
      tracee_.resume(0);
    }
  }

  bool modified() const { return modified_; }
  const std::vector<siginfo_t>& pending_signals() const { return pending_; }

 private:
  Tracee& tracee_;
  arch::Registers saved_;
  uint64_t frame_top_;
  bool modified_ = false;
  std::vector<siginfo_t> pending_;
};

Error call_failure(pid_t pid, const char* step, const CallOutcome& outcome) {
  if (outcome.kind == CallOutcome::Died) {
    return Error{InjectError::TargetDied, pid_text(pid) + " exited while running " + step};
  }
  if (outcome.kind == CallOutcome::Crashed) {
    return Error{InjectError::CallCrashed, pid_text(pid) + " faulted in " + step + " (" + outcome.what +
                                               "); its registers were restored and the fault suppressed, but "
                                               "the injected code may have left it inconsistent"};
  }
  return Error{InjectError::SystemError, std::string(step) + ": " + outcome.what};
}

}  // namespace

Result<InjectReport> inject(pid_t pid, const std::string& library_path, const std::string& function,
                            const std::string& argument, const InjectOptions& options) {
  const auto started = Clock::now();
  if (library_path.empty()) return Error{InjectError::InvalidArgument, "no library path given"};
  if (function.empty() || function.size() > kMaxFunctionName || function.find('\0') != std::string::npos) {
    return Error{InjectError::InvalidArgument, "invalid function name '" + function + "'"};
  }
  if (argument.size() > kMaxArgument || argument.find('\0') != std::string::npos) {
    return Error{InjectError::InvalidArgument, "the argument must be a C string of at most 64 KiB"};
  }

  auto info = inspect_target(pid);
  if (!info) return info.error();
  InjectReport report;
  report.target = *info;

  char resolved[PATH_MAX];
  if (!realpath(library_path.c_str(), resolved) || access(resolved, R_OK) != 0) {
    return errno_error(InjectError::LibraryNotFound, "cannot read the library " + library_path, errno);
  }

  auto status = read_status(pid);
  if (!status) return Error{InjectError::NoSuchProcess, "no process with pid " + std::to_string(pid)};
  if (status->tracer != 0) {
    return Error{InjectError::AlreadyTraced, pid_text(pid) + " is already traced by pid " + std::to_string(status->tracer) +
                                                 " (a debugger, strace or profiler); detach it first"};
  }
  if (status->state == 'T') {
    return Error{InjectError::TargetStopped, pid_text(pid) + " is stopped (SIGSTOP or Ctrl-Z); resume it with `kill -CONT " +
                                                 std::to_string(pid) + "` and retry"};
  }
  auto maps = read_maps(pid);
  if (!maps) return Error{InjectError::NotPermitted, explain_ptrace_denied(pid)};
  auto loader = resolve_loader(pid, *maps);
  if (!loader) return loader.error();
  const std::vector<UnsafeRange> unsafe = unsafe_code_ranges(*maps);

  std::string copy_to_remove;
  auto target_path = stage_library(pid, *info, resolved, options, copy_to_remove);
  if (!target_path) return target_path.error();
  struct RemoveCopy {
    const std::string& path;
    ~RemoveCopy() { if (!path.empty()) unlink(path.c_str()); }
  } remove_copy{copy_to_remove};
  report.library_path_in_target = *target_path;
  report.staged = !copy_to_remove.empty();

  // ---- Attach and find a safe point. ----
  Tracee tracee(pid);
  if (int error = tracee.seize()) {
    if (error == ESRCH) return Error{InjectError::NoSuchProcess, "no process with pid " + std::to_string(pid)};
    if (error == EPERM || error == EACCES) {
      auto now = read_status(pid);
      if (now && now->tracer != 0) return Error{InjectError::AlreadyTraced, explain_ptrace_denied(pid)};
      return Error{InjectError::NotPermitted, explain_ptrace_denied(pid)};
    }
    return errno_error(InjectError::SystemError, "ptrace(PTRACE_SEIZE, " + std::to_string(pid) + ")", error);
  }

  std::minstd_rand random(static_cast<unsigned>(pid) ^ static_cast<unsigned>(started.time_since_epoch().count()));
  std::uniform_int_distribution<int> pause_us(200, 600);
  const auto deadline = started + options.timeout;
  arch::Registers saved{};
  ThreadState state;
  int unsafe_code = 0, unsafe_syscall = 0;
  for (;;) {
    if (int error = tracee.interrupt()) {
      if (error == ESRCH) return Error{InjectError::TargetDied, pid_text(pid) + " exited before it could be stopped"};
      return errno_error(InjectError::SystemError, "ptrace(PTRACE_INTERRUPT)", error);
    }
    Tracee::Stop stop = tracee.wait();
    // Signals that were already on their way are delivered as usual; our interrupt stop follows.
    while (stop.kind == Tracee::Stop::Signal) {
      tracee.resume(stop.signal);
      stop = tracee.wait();
    }
    if (stop.kind == Tracee::Stop::Exited) return Error{InjectError::TargetDied, pid_text(pid) + " exited while we were attaching"};
    if (stop.kind == Tracee::Stop::Failed) return errno_error(InjectError::SystemError, "waitpid", stop.status);
    if (stop.kind == Tracee::Stop::GroupStop) {
      return Error{InjectError::TargetStopped, pid_text(pid) + " was stopped by job control (" + strsignal(stop.signal) +
                                                   "); resume it with `kill -CONT " + std::to_string(pid) + "` and retry"};
    }
    ++report.safe_point_attempts;
    if (!arch::get_registers(pid, saved)) return errno_error(InjectError::SystemError, "reading registers", errno);
    state = classify(saved, unsafe, loader->libc);
    if (state.safe) break;
    (arch::current_syscall(saved) >= 0 ? unsafe_syscall : unsafe_code)++;
    if (Clock::now() >= deadline) {
      return Error{InjectError::NoSafePoint,
                   "the main thread of " + pid_text(pid) + " never reached a safe point in " +
                       std::to_string(options.timeout.count()) + " ms (" + std::to_string(report.safe_point_attempts) +
                       " tries: " + std::to_string(unsafe_code) + " inside libc/ld.so code, " +
                       std::to_string(unsafe_syscall) + " in memory-management system calls; last seen " +
                       state.description + "). It is left running unharmed; retry when it is idle or raise the timeout"};
    }
    if (int error = tracee.resume(0)) return errno_error(InjectError::SystemError, "ptrace(PTRACE_CONT)", error);
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us(random)));
  }

  std::vector<uint8_t> saved_extended;
  if (!arch::get_extended_state(pid, saved_extended)) {
    return errno_error(InjectError::SystemError, "reading the FPU/vector state", errno);
  }

  // ---- Strings and call frame below the red zone of the interrupted stack. ----
  std::string blob = *target_path;
  blob.push_back('\0');
  const uint64_t function_offset = blob.size();
  blob += function;
  blob.push_back('\0');
  const uint64_t argument_offset = blob.size();
  blob += argument;
  blob.push_back('\0');
  const uint64_t data = (arch::stack_pointer(saved) - arch::kRedZone - blob.size()) & ~uint64_t{15};
  const uint64_t frame_top = data - 64;
  if (!tracee.write_memory(data, blob.data(), blob.size())) {
    return errno_error(InjectError::SystemError, "writing to the target's stack", errno);
  }

  Hijack hijack(tracee, saved, frame_top);
  auto run = [&]() -> Result<int> {
    uint64_t mode = kRtldNow | (loader->libc_internal ? kRtldDlopenInternal : 0);
    CallOutcome opened = hijack.call(loader->dlopen, {data, mode});
    if (opened.kind != CallOutcome::Returned) return call_failure(pid, "dlopen", opened);
    auto loader_error = [&](const char* fallback) -> std::string {
      if (!loader->dlerror) return fallback;
      CallOutcome message = hijack.call(loader->dlerror, {});
      if (message.kind != CallOutcome::Returned || message.value == 0) return fallback;
      return tracee.read_c_string(message.value, 2048);
    };
    if (opened.value == 0) {
      std::string why = loader_error("dlopen failed (this C library has no dlerror to say why)");
      return Error{InjectError::LoaderFailed, pid_text(pid) + " could not load " + *target_path + ": " + why};
    }
    CallOutcome symbol = hijack.call(loader->dlsym, {opened.value, data + function_offset});
    if (symbol.kind != CallOutcome::Returned) return call_failure(pid, "dlsym", symbol);
    if (symbol.value == 0) {
      std::string why = loader_error("symbol not found");
      if (loader->dlclose) hijack.call(loader->dlclose, {opened.value});
      return Error{InjectError::FunctionNotFound,
                   "function '" + function + "' not found in " + *target_path + " (" + why + ")"};
    }
    CallOutcome started_call = hijack.call(symbol.value, {data + argument_offset});
    if (started_call.kind != CallOutcome::Returned) return call_failure(pid, function.c_str(), started_call);
    return static_cast<int>(static_cast<uint32_t>(started_call.value));
  };
  Result<int> outcome = run();
  if (!outcome && outcome.error().code == InjectError::TargetDied) return outcome.error();

  // ---- Give the thread back exactly as it was. ----
  if (!arch::set_registers(pid, saved) || !arch::set_extended_state(pid, saved_extended)) {
    int error = errno;
    if (error == ESRCH && kill(pid, 0) != 0) return Error{InjectError::TargetDied, pid_text(pid) + " exited during the injection"};
    return errno_error(InjectError::SystemError, "restoring the registers of " + pid_text(pid), error);
  }
  const std::vector<siginfo_t>& pending = hijack.pending_signals();
  for (size_t i = 1; i < pending.size(); ++i) syscall(SYS_tgkill, pid, pid, pending[i].si_signo);
  int detach_error = pending.empty() ? tracee.detach() : tracee.detach(pending[0].si_signo, &pending[0]);
  if (detach_error) return errno_error(InjectError::SystemError, "ptrace(PTRACE_DETACH)", detach_error);
  report.redelivered_signals = static_cast<int>(pending.size());
  if (!outcome) return outcome.error();
  report.start_result = *outcome;
  report.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  return report;
}

}  // namespace hotd::injector
