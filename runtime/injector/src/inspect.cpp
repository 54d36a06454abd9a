// inspect_target: is the process a CPython we can attach to, and where are its pieces.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cerrno>
#include <cstring>

#include "arch.hpp"
#include "hotd/injector/injector.hpp"
#include "proc.hpp"
#include "target_modules.hpp"

namespace hotd::injector {

const char* to_string(InjectError code) {
  switch (code) {
    case InjectError::NoSuchProcess: return "no_such_process";
    case InjectError::NotPermitted: return "not_permitted";
    case InjectError::AlreadyTraced: return "already_traced";
    case InjectError::TargetStopped: return "target_stopped";
    case InjectError::NotPython: return "not_python";
    case InjectError::UnsupportedPython: return "unsupported_python";
    case InjectError::UnsupportedArchitecture: return "unsupported_architecture";
    case InjectError::LoaderNotFound: return "loader_not_found";
    case InjectError::LibraryNotFound: return "library_not_found";
    case InjectError::StagingFailed: return "staging_failed";
    case InjectError::NoSafePoint: return "no_safe_point";
    case InjectError::LoaderFailed: return "loader_failed";
    case InjectError::FunctionNotFound: return "function_not_found";
    case InjectError::CallCrashed: return "call_crashed";
    case InjectError::TargetDied: return "target_died";
    case InjectError::InvalidArgument: return "invalid_argument";
    case InjectError::SystemError: return "system_error";
  }
  return "unknown";
}

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// "3.11" from "libpython3.11.so.1.0", "python3.11", "libpython3.7m.so"; {0, 0} if absent.
std::pair<int, int> version_from_name(const std::string& name) {
  auto at = name.find("python");
  if (at == std::string::npos) return {0, 0};
  int major = 0, minor = 0;
  if (std::sscanf(name.c_str() + at, "python%d.%d", &major, &minor) == 2) return {major, minor};
  return {0, 0};
}

// PY_VERSION is a NUL-terminated string literal ("3.8.18", "3.13.0rc1") in the runtime's read-only
// data, used by Py_GetVersion(). Find the one matching major.minor (or any if unknown).
std::string version_string_in(std::string_view rodata, int major, int minor) {
  for (size_t i = 0; i + 5 < rodata.size(); ++i) {
    char c = rodata[i];
    if ((c != '2' && c != '3') || rodata[i + 1] != '.') continue;
    if (i > 0 && (std::isdigit(static_cast<unsigned char>(rodata[i - 1])) || rodata[i - 1] == '.')) continue;
    size_t end = i;
    while (end < rodata.size() && end - i < 16 &&
           (std::isalnum(static_cast<unsigned char>(rodata[end])) || rodata[end] == '.' || rodata[end] == '+'))
      ++end;
    if (end >= rodata.size() || rodata[end] != '\0') continue;
    std::string candidate(rodata.substr(i, end - i));
    int a = 0, b = 0, c3 = 0, consumed = 0;
    if (std::sscanf(candidate.c_str(), "%d.%d.%d%n", &a, &b, &c3, &consumed) != 3) continue;
    // Only a release tag may follow the micro version: a1, b2, rc1, +.
    std::string tail = candidate.substr(static_cast<size_t>(consumed));
    if (!tail.empty() && !(tail[0] == 'a' || tail[0] == 'b' || starts_with(tail, "rc") || tail[0] == '+')) continue;
    if (major == 0 || (a == major && b == minor)) return candidate;
  }
  return {};
}

struct PythonRuntime {
  std::string module_path;
  bool shared_library = false;
  PythonVersion version;
};

// The ELF (executable or libpython) that defines the CPython C API, and its version: Py_Version
// (3.11+) or the PY_VERSION string in its read-only data, cross-checked with the file name.
Result<PythonRuntime> find_python_runtime(pid_t pid, const std::vector<Mapping>& maps, const std::string& executable) {
  // Candidates: the executable (static libpython, as Debian builds it) and any libpython.
  std::vector<std::string> candidates{executable};
  for (const Mapping& m : maps) {
    if (starts_with(basename_of(m.path), "libpython") &&
        std::find(candidates.begin(), candidates.end(), m.path) == candidates.end())
      candidates.push_back(m.path);
  }
  for (const std::string& path : candidates) {
    auto module = open_module(pid, maps, path);
    if (!module) continue;
    const ElfFile& elf = *module->elf;
    if (!elf.dynamic_symbol("Py_IsInitialized") || !elf.dynamic_symbol("PyGILState_Ensure")) continue;

    PythonRuntime runtime;
    runtime.module_path = path;
    runtime.shared_library = path != executable;
    auto [major, minor] = version_from_name(basename_of(path));
    // 3.11+ exports Py_Version, the PY_VERSION_HEX of the build.
    if (auto hex_symbol = elf.dynamic_symbol("Py_Version")) {
      if (auto bytes = elf.bytes_at(hex_symbol->value, 4)) {
        uint32_t hex = 0;
        std::memcpy(&hex, bytes->data(), 4);
        major = static_cast<int>(hex >> 24);
        minor = static_cast<int>((hex >> 16) & 0xff);
        runtime.version.micro = static_cast<int>((hex >> 8) & 0xff);
      }
    }
    runtime.version.text = version_string_in(elf.section(".rodata"), major, minor);
    if (!runtime.version.text.empty()) {
      std::sscanf(runtime.version.text.c_str(), "%d.%d.%d", &major, &minor, &runtime.version.micro);
    }
    runtime.version.major = major;
    runtime.version.minor = minor;
    if (runtime.version.text.empty() && major > 0) {
      runtime.version.text = std::to_string(major) + "." + std::to_string(minor);
    }
    return runtime;
  }
  return Error{InjectError::NotPython,
               "process " + std::to_string(pid) + " (" + executable +
                   ") is not a Python process: no CPython runtime (Py_IsInitialized) in its executable "
                   "or in a libpython it has loaded"};
}

}  // namespace

Result<TargetInfo> inspect_target(pid_t pid) {
  if (pid <= 0) return Error{InjectError::InvalidArgument, "invalid pid " + std::to_string(pid)};
  auto status = read_status(pid);
  if (!status || status->state == 'Z' || status->state == 'X') {
    return Error{InjectError::NoSuchProcess, "no process with pid " + std::to_string(pid) +
                                                 (status ? " (it has exited and is a zombie)" : "")};
  }
  TargetInfo info;
  info.pid = pid;
  info.uid = status->effective_uid;
  info.root = "/proc/" + std::to_string(pid) + "/root";
  info.other_mount_namespace = other_mount_namespace(pid);

  char exe[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1);
  auto maps = read_maps(pid);
  if (n < 0 || !maps) {
    int error = errno;
    if (error == ENOENT || error == ESRCH) {
      return Error{InjectError::NoSuchProcess, "no process with pid " + std::to_string(pid)};
    }
    if (error == EACCES || error == EPERM) {
      return Error{InjectError::NotPermitted, explain_ptrace_denied(pid)};
    }
    return Error{InjectError::SystemError, "cannot read /proc/" + std::to_string(pid) + ": " + std::strerror(error)};
  }
  exe[n] = '\0';
  info.executable = exe;
  constexpr std::string_view deleted_suffix = " (deleted)";
  if (info.executable.ends_with(deleted_suffix)) info.executable.resize(info.executable.size() - deleted_suffix.size());

  auto executable = open_module(pid, *maps, info.executable);
  if (executable && executable->elf->machine() != arch::kElfMachine) {
    return Error{InjectError::UnsupportedArchitecture,
                 "process " + std::to_string(pid) + " (" + info.executable + ") is not an x86_64 program"};
  }
  if (!executable && executable.error().message.find("64-bit") != std::string::npos) {
    return Error{InjectError::UnsupportedArchitecture,
                 "process " + std::to_string(pid) + " (" + info.executable + ") is a 32-bit program; only 64-bit targets are supported"};
  }

  auto python = find_python_runtime(pid, *maps, info.executable);
  if (!python) return python.error();
  info.python_module = python->module_path;
  info.python_shared_lib = python->shared_library;
  info.python_version = python->version;
  const PythonVersion& v = info.python_version;
  if (v.major < 3 || (v.major == 3 && v.minor < 7)) {
    return Error{InjectError::UnsupportedPython,
                 "process " + std::to_string(pid) + " runs Python " + (v.text.empty() ? "of unknown version" : v.text) +
                     "; hotd attach needs CPython 3.7 or newer (older interpreters create the GIL lazily "
                     "and crash when a thread appears)"};
  }
  info.supports_remote_exec = v.major > 3 || (v.major == 3 && v.minor >= 14);

  for (const Mapping& m : *maps) {
    std::string name = basename_of(m.path);
    if (starts_with(name, "libc.so") || starts_with(name, "libc-2.") || starts_with(name, "ld-musl-")) {
      info.libc = m.path;
      break;
    }
  }
  return info;
}

}  // namespace hotd::injector
