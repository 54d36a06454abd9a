#include "target_modules.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hotd::injector {

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

namespace {

const Mapping* first_mapping_of(const std::vector<Mapping>& maps, const std::string& path) {
  const Mapping* first = nullptr;
  for (const Mapping& m : maps) {
    if (m.path == path && (!first || m.start < first->start)) first = &m;
  }
  return first;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool is_libc(const std::string& name) {
  return starts_with(name, "libc.so") || starts_with(name, "libc-2.") || starts_with(name, "ld-musl-");
}

}  // namespace

Result<LoadedModule> open_module(pid_t pid, const std::vector<Mapping>& maps, const std::string& path) {
  const Mapping* first = first_mapping_of(maps, path);
  if (!first) return Error{InjectError::SystemError, path + " is not mapped in process " + std::to_string(pid)};
  std::string error;
  std::optional<ElfFile> elf;
  int fd = -1;
  if (!first->deleted) {
    fd = ::open(in_target_root(pid, path).c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_ino != first->inode)) {
      ::close(fd);
      fd = -1;
    }
  }
  if (fd < 0) {
    // Replaced on disk since the target mapped it (a package upgrade): the mapping's own file.
    char name[96];
    std::snprintf(name, sizeof name, "/proc/%d/map_files/%llx-%llx", pid,
                  static_cast<unsigned long long>(first->start), static_cast<unsigned long long>(first->end));
    fd = ::open(name, O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    return Error{InjectError::SystemError,
                 path + " in process " + std::to_string(pid) +
                     " was replaced on disk since the process started (a package upgrade?) and the "
                     "original cannot be read; restart the process to attach to it"};
  }
  elf = ElfFile::open_fd(fd, error);
  ::close(fd);
  if (!elf) return Error{InjectError::SystemError, path + ": " + error};
  LoadedModule module;
  module.path = path;
  // The mapping at file offset 0 holds the lowest PT_LOAD segment.
  module.bias = first->start - elf->first_load_address();
  if (first->offset != 0) {
    return Error{InjectError::SystemError, path + ": unexpected mapping layout in process " + std::to_string(pid)};
  }
  module.elf = std::move(elf);
  return module;
}

std::vector<UnsafeRange> unsafe_code_ranges(const std::vector<Mapping>& maps) {
  std::vector<UnsafeRange> ranges;
  for (const Mapping& m : maps) {
    if (!m.executable || m.path.empty() || m.path[0] != '/') continue;
    std::string name = basename_of(m.path);
    if (is_libc(name) || starts_with(name, "ld-linux") || starts_with(name, "ld-2.") ||
        starts_with(name, "libpthread") || starts_with(name, "libdl.") || starts_with(name, "libdl-")) {
      ranges.push_back({m.start, m.end, name});
    }
  }
  return ranges;
}

Result<LoaderApi> resolve_loader(pid_t pid, const std::vector<Mapping>& maps) {
  std::string libc_path, libdl_path;
  for (const Mapping& m : maps) {
    std::string name = basename_of(m.path);
    if (libc_path.empty() && is_libc(name)) libc_path = m.path;
    if (libdl_path.empty() && (starts_with(name, "libdl.") || starts_with(name, "libdl-"))) libdl_path = m.path;
  }
  if (libc_path.empty()) {
    return Error{InjectError::LoaderNotFound,
                 "process " + std::to_string(pid) + " has no C library mapped (statically linked?): cannot load a library into it"};
  }
  auto libc = open_module(pid, maps, libc_path);
  if (!libc) return libc.error();

  LoaderApi api;
  auto from = [](const LoadedModule& module, const char* name) -> uint64_t {
    auto symbol = module.elf->dynamic_symbol(name);
    return symbol ? module.address_of(*symbol) : 0;
  };
  // glibc >= 2.34 and musl: the loader API lives in libc itself.
  api.dlopen = from(*libc, "dlopen");
  api.dlsym = from(*libc, "dlsym");
  api.dlerror = from(*libc, "dlerror");
  api.dlclose = from(*libc, "dlclose");
  if ((!api.dlopen || !api.dlsym) && !libdl_path.empty()) {
    auto libdl = open_module(pid, maps, libdl_path);
    if (!libdl) return libdl.error();
    api.dlopen = from(*libdl, "dlopen");
    api.dlsym = from(*libdl, "dlsym");
    api.dlerror = from(*libdl, "dlerror");
    api.dlclose = from(*libdl, "dlclose");
  }
  if (!api.dlopen || !api.dlsym) {
    // Older glibc without libdl loaded: its internal entry points, which report no error text.
    api.dlopen = from(*libc, "__libc_dlopen_mode");
    api.dlsym = from(*libc, "__libc_dlsym");
    api.dlerror = 0;
    api.dlclose = from(*libc, "__libc_dlclose");
    api.libc_internal = true;
  }
  if (!api.dlopen || !api.dlsym) {
    return Error{InjectError::LoaderNotFound,
                 "cannot find dlopen/dlsym in " + libc_path + " of process " + std::to_string(pid)};
  }
  api.libc = std::move(*libc);
  return api;
}

}  // namespace hotd::injector
