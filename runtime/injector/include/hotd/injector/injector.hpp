// Loads a shared library into a running CPython process with ptrace and calls one exported function
// in it with a string argument, then restores the thread it borrowed and detaches.
//
// The mechanism and its rules (safe points, syscall restart, XSTATE, staging for other mount
// namespaces, permissions) are described in docs/ATTACH.md. No function here throws; every failure is
// an `Error` with a code for programs and a message for people.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace hotd::injector {

enum class InjectError {
  NoSuchProcess,           // no process with that pid, or it is a zombie
  NotPermitted,            // ptrace or /proc access refused; the message says which rule applies
  AlreadyTraced,           // another tracer (a debugger, strace, py-spy) is attached
  TargetStopped,           // job-control stopped (SIGSTOP, Ctrl-Z): resume it first
  NotPython,               // no CPython runtime in the process
  UnsupportedPython,       // CPython older than 3.7 (or 2.x)
  UnsupportedArchitecture, // not an x86_64 process (e.g. a 32-bit interpreter)
  LoaderNotFound,          // no dlopen/dlsym in the target's C library
  LibraryNotFound,         // the library to inject is not a readable file on our side
  StagingFailed,           // could not copy the library where a target in another mount namespace sees it
  NoSafePoint,             // the thread never stopped at a safe point within the timeout
  LoaderFailed,            // dlopen failed in the target; the message carries dlerror()
  FunctionNotFound,        // dlsym failed in the target; the message carries dlerror()
  CallCrashed,             // the injected call faulted; registers were restored, the target lives
  TargetDied,              // the target exited or was killed while we were attached
  InvalidArgument,         // bad pid, path, function name or an over-long argument
  SystemError,             // an unexpected system call failure on our side (message has errno text)
};

// Stable lower-case name of a code ("no_such_process"), for logs and JSON.
const char* to_string(InjectError code);

struct Error {
  InjectError code;
  std::string message; // one or two sentences: what happened, and what to do about it
};

// An expected-like result: either a value or an Error.
template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

struct InjectOptions {
  // How long to look for a safe point (the thread outside libc/ld.so and outside malloc-related
  // system calls) before giving up with NoSafePoint. The injected calls themselves are not bounded:
  // abandoning dlopen half-way would kill the target (see docs/ATTACH.md).
  std::chrono::milliseconds timeout{2000};
  // Where to copy the library when the target cannot see our path (another mount namespace).
  // Tried in order, as paths inside the target; a noexec mount is skipped.
  std::vector<std::string> staging_dirs{"/dev/shm", "/tmp", "/var/tmp"};
};

struct PythonVersion {
  int major = 0;
  int minor = 0;
  int micro = 0;
  std::string text; // "3.11.2", "3.13.0rc1"; empty if only major.minor could be read
};

struct TargetInfo {
  pid_t pid = 0;
  uid_t uid = 0;                     // effective uid of the target
  std::string executable;            // as the target sees it (/proc/PID/exe)
  PythonVersion python_version;
  std::string python_module;         // the ELF holding the C API: the executable or libpython3.X.so
  bool python_shared_lib = false;    // true if python_module is a libpython shared library
  std::string libc;                  // path of the target's C library, as the target sees it
  std::string root;                  // "/proc/PID/root": prefix to reach the target's files from here
  bool other_mount_namespace = false;// true if the target's mount namespace differs from ours
  // PEP 768 (Python 3.14+): sys.remote_exec can run code in the target without ptrace code
  // execution. The caller may prefer it; inject() itself always uses ptrace.
  bool supports_remote_exec = false;
};

struct InjectReport {
  TargetInfo target;
  std::string library_path_in_target;  // the path dlopen saw (differs from ours if staged)
  bool staged = false;                 // the library was copied into the target's filesystem
  int start_result = 0;                // low 32 bits of what `function` returned
  int safe_point_attempts = 0;         // interrupts until a safe point was found (1 = first try)
  std::chrono::microseconds duration{}; // from the start of inject() to detach
  int redelivered_signals = 0;         // signals that arrived during the hijack and were re-sent
};

// Reads /proc/PID and the target's ELF files without stopping it: is it CPython >= 3.7, which
// version, where are libc and libpython, is it in another mount namespace.
Result<TargetInfo> inspect_target(pid_t pid);

// Makes the main thread of `pid` call dlopen(library_path, RTLD_NOW), then function(argument), then
// restores it exactly and detaches. `library_path` is a path on our side; `function` must have C
// linkage, take one `const char*`, and return promptly (the agent's start function only spawns a
// thread). Calling it twice is safe if `function` is: dlopen of the same path returns the same handle.
Result<InjectReport> inject(pid_t pid, const std::string& library_path, const std::string& function,
                            const std::string& argument, const InjectOptions& options = {});

// Opens `dir` (a path as the target sees it) of the target's file system where nobody but root, us
// and `target_uid` can change it: every component from the target's root down is a directory, not a
// symlink, owned by one of them, and one that others may write is sticky (/tmp, /dev/shm), so that
// nobody else can rename, replace or remove what we make in it. Returns an O_PATH descriptor for the
// *at calls (the caller closes it), or StagingFailed naming the component that is not safe.
Result<int> open_staging_dir(pid_t pid, uid_t target_uid, const std::string& dir);

}  // namespace hotd::injector
