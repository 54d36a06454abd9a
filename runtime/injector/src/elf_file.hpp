// Read-only view of an ELF64 file on disk: dynamic symbols and the bytes behind a virtual address.
// Used on the target's own files (through /proc/PID/root), never on memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hotd::injector {

class ElfFile {
 public:
  // Maps the file behind `fd` (which is not kept) read-only. Returns nullopt with `error` set if it is
  // not an ELF64 file.
  static std::optional<ElfFile> open_fd(int fd, std::string& error);

  ElfFile(ElfFile&& other) noexcept;
  ElfFile& operator=(ElfFile&& other) noexcept;
  ~ElfFile();

  uint16_t machine() const;

  // Virtual address (before the load bias) of the lowest PT_LOAD segment, page aligned.
  uint64_t first_load_address() const;

  struct Symbol {
    uint64_t value = 0;
    uint64_t size = 0;
  };
  // A defined function or object in .dynsym; the default version wins over hidden compat ones.
  std::optional<Symbol> dynamic_symbol(std::string_view name) const;
  // The exported symbol whose [value, value + size) contains `address`, for messages.
  std::optional<std::string> symbol_containing(uint64_t address) const;

  // File bytes backing the virtual address range, if it lies inside one PT_LOAD segment.
  std::optional<std::string_view> bytes_at(uint64_t address, uint64_t size) const;
  // The contents of the first section named `name` (e.g. ".rodata"), or empty.
  std::string_view section(std::string_view name) const;

 private:
  ElfFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  const T* at(uint64_t offset, uint64_t count = 1) const;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hotd::injector
