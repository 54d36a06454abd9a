// The ELF modules of a target that the injector cares about: the Python runtime, the C library with
// the dynamic loader API, and the address ranges where stopping a thread is unsafe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "elf_file.hpp"
#include "hotd/injector/injector.hpp"
#include "proc.hpp"

namespace hotd::injector {

// One ELF file mapped in the target, opened from our side.
struct LoadedModule {
  std::string path;     // as the target sees it
  uint64_t bias = 0;    // add to a symbol value to get its address in the target
  std::optional<ElfFile> elf;

  uint64_t address_of(const ElfFile::Symbol& symbol) const { return bias + symbol.value; }
};

// Opens the file behind the mapping of `path` in `maps`, through /proc/PID/root, and checks that it
// is still the file the target mapped (same inode); falls back to /proc/PID/map_files.
Result<LoadedModule> open_module(pid_t pid, const std::vector<Mapping>& maps, const std::string& path);

// Code ranges of libc, ld.so, libpthread and libdl: a thread interrupted there may hold the malloc
// or loader locks that dlopen needs.
struct UnsafeRange {
  uint64_t start = 0, end = 0;
  std::string name;  // basename, for messages
};
std::vector<UnsafeRange> unsafe_code_ranges(const std::vector<Mapping>& maps);

std::string basename_of(const std::string& path);

// Entry points of the target's dynamic loader API.
struct LoaderApi {
  uint64_t dlopen = 0;
  uint64_t dlsym = 0;
  uint64_t dlerror = 0;     // 0 when only __libc_dlopen_mode is available (glibc < 2.34 without libdl)
  uint64_t dlclose = 0;
  bool libc_internal = false;  // __libc_dlopen_mode needs __RTLD_DLOPEN in its mode
  LoadedModule libc;        // kept for naming addresses in messages
};
Result<LoaderApi> resolve_loader(pid_t pid, const std::vector<Mapping>& maps);

}  // namespace hotd::injector
